"""``__array_namespace_info__``: what this Tessera found (backends, devices, dtypes)."""

from . import _dtypes
from . import _tessera as _raw


class _Info:
    def capabilities(self):
        # Boolean masks and nonzero make data-dependent shapes (issue 19).
        return {"boolean indexing": False, "data-dependent shapes": False, "max dimensions": 64}

    def default_device(self):
        from ._api import _device

        return _device()

    def devices(self):
        from ._api import _device

        return [_device()]

    def default_dtypes(self, *, device=None):
        return {
            "real floating": _dtypes.float64,
            "complex floating": _dtypes.complex128,
            "integral": _dtypes.int64,
            "indexing": _dtypes.int64,
        }

    def dtypes(self, *, device=None, kind=None):
        all_ = {d.name: d for d in _dtypes.SUPPORTED}
        if kind is None:
            return all_
        return {n: d for n, d in all_.items() if _dtypes.isdtype(d, kind)}

    def backends(self):
        """The backends compiled in: name -> None when usable, else why not."""
        return {n: (None if ok else why) for n, ok, why in _raw.backends()}


def __array_namespace_info__():
    return _Info()
