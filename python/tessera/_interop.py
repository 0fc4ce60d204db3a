"""numpy's dispatch protocols: ``np.sin(t)``, ``np.sum(t, axis=0)``, ``np.matmul(a, b)`` on
tensors return lazy tensors. A numpy function Tessera lacks raises ``TypeError`` naming it; a
huge lazy array is never converted to numpy behind the user's back."""

import numpy as np

from . import _api

# numpy ufunc name -> tessera function name, where they differ.
_UFUNC_ALIASES = {
    "divide": "true_divide",
    "invert": "bitwise_invert",
    "left_shift": "bitwise_left_shift",
    "right_shift": "bitwise_right_shift",
    "absolute": "absolute",
    "conjugate": "conj",
    "rint": "round",
    "positive": "positive",
}

_REDUCE_UFUNCS = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
                  "logical_and": "all", "logical_or": "any"}


def array_ufunc(ufunc, method, inputs, kwargs):
    name = _UFUNC_ALIASES.get(ufunc.__name__, ufunc.__name__)
    if kwargs.get("out") is not None:
        raise TypeError(
            f"numpy.{ufunc.__name__} with out= is not supported on tessera tensors (they are "
            "immutable; assign the result instead)"
        )
    extra = {k: v for k, v in kwargs.items() if k != "out"}
    if method == "__call__":
        f = getattr(_api, name, None)
        if f is None or extra:
            raise TypeError(
                f"tessera does not implement numpy.{ufunc.__name__}"
                + (f" with {sorted(extra)}" if extra else "")
            )
        return f(*inputs)
    if method == "reduce" and ufunc.__name__ in _REDUCE_UFUNCS:
        f = getattr(_api, _REDUCE_UFUNCS[ufunc.__name__])
        axis = extra.pop("axis", 0)
        keepdims = extra.pop("keepdims", False)
        dtype = extra.pop("dtype", None)
        if extra:
            raise TypeError(f"tessera does not implement numpy.{ufunc.__name__}.reduce with {sorted(extra)}")
        if dtype is not None:
            return f(inputs[0], axis=axis, keepdims=keepdims, dtype=dtype)
        return f(inputs[0], axis=axis, keepdims=keepdims)
    raise TypeError(f"tessera does not implement numpy.{ufunc.__name__}.{method}")


def _wrap_axis_fn(name):
    f = getattr(_api, name)

    def g(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
        if out is not None:
            raise TypeError(f"numpy.{name} with out= is not supported on tessera tensors")
        kw = {k: v for k, v in kw.items() if k not in ("where", "initial") or v is None}
        extra = {k: v for k, v in kw.items() if k not in ("ddof", "correction")}
        if extra:
            raise TypeError(f"tessera does not implement numpy.{name} with {sorted(extra)}")
        args = {"axis": axis, "keepdims": keepdims}
        if dtype is not None:
            args["dtype"] = dtype
        args.update(kw)
        return f(a, **args)

    return g


def _minmax(name):
    f = getattr(_api, name)

    def g(a, axis=None, out=None, keepdims=False, **kw):
        if out is not None or kw:
            raise TypeError(f"tessera does not implement numpy.{name} with {sorted(kw) or ['out']}")
        return f(a, axis=axis, keepdims=keepdims)

    return g


def _arg(name):
    f = getattr(_api, name)

    def g(a, axis=None, out=None, *, keepdims=False):
        if out is not None:
            raise TypeError(f"numpy.{name} with out= is not supported on tessera tensors")
        return f(a, axis=axis, keepdims=keepdims)

    return g


def _np_sort(a, axis, kind, order, arg):
    """numpy.sort/argsort: always stable (any `kind` gives a valid order); axis=None flattens."""
    if order is not None:
        raise TypeError("tessera does not implement numpy.sort with order= (structured arrays)")
    if kind not in (None, "stable", "mergesort", "quicksort", "heapsort"):
        raise ValueError(f"sort kind must be one of 'quicksort', 'heapsort' or 'stable' (got {kind!r})")
    if axis is None:
        a, axis = _api.reshape(a, (-1,)), 0
    return (_api.argsort if arg else _api.sort)(a, axis=axis)


_HANDLED = {
    np.sum: _wrap_axis_fn("sum"),
    np.prod: _wrap_axis_fn("prod"),
    np.mean: _wrap_axis_fn("mean"),
    np.var: _wrap_axis_fn("var"),
    np.std: _wrap_axis_fn("std"),
    np.max: _minmax("max"),
    np.min: _minmax("min"),
    np.amax: _minmax("max"),
    np.amin: _minmax("min"),
    np.any: _minmax("any"),
    np.all: _minmax("all"),
    np.sort: lambda a, axis=-1, kind=None, order=None, *, stable=None: _np_sort(a, axis, kind, order, False),
    np.argsort: lambda a, axis=-1, kind=None, order=None, *, stable=None: _np_sort(a, axis, kind, order, True),
    np.searchsorted: lambda a, v, side="left", sorter=None: _api.searchsorted(a, v, side=side, sorter=sorter),
    np.bincount: lambda x, weights=None, minlength=0: _api.bincount(x, weights, minlength),
    np.histogram: lambda a, bins=10, range=None, density=None, weights=None: _api.histogram(a, bins, range, density, weights),
    np.partition: lambda a, kth, axis=-1, kind="introselect", order=None: _api.partition(a, kth, axis, kind, order),
    np.argpartition: lambda a, kth, axis=-1, kind="introselect", order=None: _api.argpartition(a, kth, axis, kind, order),
    np.argmax: _arg("argmax"),
    np.argmin: _arg("argmin"),
    np.round: lambda a, decimals=0, out=None: _api.round(a, decimals),
    np.around: lambda a, decimals=0, out=None: _api.round(a, decimals),
    np.transpose: lambda a, axes=None: _api.transpose(a, axes),
    np.reshape: lambda a, shape=None, order="C", **kw: _api._t(a).reshape(shape if shape is not None else kw["newshape"], order=order),
    np.squeeze: lambda a, axis=None: _api.squeeze(a, axis),
    np.expand_dims: lambda a, axis: _api.expand_dims(a, axis),
    np.concatenate: lambda arrays, axis=0, out=None, dtype=None, casting="same_kind": _api.concatenate(arrays, axis, out, dtype),
    np.stack: lambda arrays, axis=0, out=None, dtype=None, casting="same_kind": _api.stack(arrays, axis=axis) if dtype is None else _api.astype(_api.stack(arrays, axis=axis), dtype),
    np.where: lambda c, x=None, y=None: _api.where(c, x, y),
    np.clip: lambda a, a_min=None, a_max=None, out=None, **kw: _api.clip(a, kw.get("min", a_min), kw.get("max", a_max)),
    np.dot: lambda a, b, out=None: _api.dot(a, b, out),
    np.tensordot: lambda a, b, axes=2: _api.tensordot(a, b, axes=axes),
    np.broadcast_to: lambda a, shape, subok=False: _api.broadcast_to(a, shape),
    np.broadcast_arrays: lambda *a, subok=False: _api.broadcast_arrays(*a),
    np.shape: lambda a: _api._t(a).shape,
    np.ndim: lambda a: _api._t(a).ndim,
    np.size: lambda a, axis=None: _api._t(a).size if axis is None else _api._t(a).shape[axis],
    np.swapaxes: lambda a, a1, a2: _api.swapaxes(a, a1, a2),
    np.moveaxis: lambda a, s, d: _api.moveaxis(a, s, d),
    np.flip: lambda a, axis=None: _api.flip(a, axis=axis),
    np.roll: lambda a, shift, axis=None: _api.roll(a, shift, axis=axis),
    np.tile: lambda a, reps: _api.tile(a, reps),
    np.repeat: lambda a, repeats, axis=None: _api.repeat(a, repeats, axis=axis),
    np.tril: lambda m, k=0: _api.tril(m, k=k),
    np.triu: lambda m, k=0: _api.triu(m, k=k),
    np.diff: lambda a, n=1, axis=-1, prepend=None, append=None: _api.diff(a, n=n, axis=axis, prepend=prepend, append=append),
    np.cumsum: lambda a, axis=None, dtype=None, out=None: _api.cumsum(a, axis, dtype, out),
    np.cumprod: lambda a, axis=None, dtype=None, out=None: _api.cumprod(a, axis, dtype, out),
    np.cumulative_sum: lambda x, /, *, axis=None, dtype=None, out=None, include_initial=False: _api.cumulative_sum(x, axis=axis, dtype=dtype, include_initial=include_initial),
    np.cumulative_prod: lambda x, /, *, axis=None, dtype=None, out=None, include_initial=False: _api.cumulative_prod(x, axis=axis, dtype=dtype, include_initial=include_initial),
    np.take: lambda a, indices, axis=None, out=None, mode="raise": _api.take(a, indices, axis=axis, out=out, mode=mode),
    np.take_along_axis: lambda arr, indices, axis=-1: _api.take_along_axis(arr, indices, axis=axis),
    np.nonzero: lambda a: _api.nonzero(a),
    np.flatnonzero: lambda a: _api.flatnonzero(a),
    np.argwhere: lambda a: _api.argwhere(a),
    np.unique: _api.unique,
    np.unique_values: lambda x: _api.unique_values(x),
    np.unique_counts: lambda x: _api.unique_counts(x),
    np.unique_inverse: lambda x: _api.unique_inverse(x),
    np.unique_all: lambda x: _api.unique_all(x),
    np.count_nonzero: lambda a, axis=None, *, keepdims=False: _api.count_nonzero(a, axis=axis, keepdims=keepdims),
    np.zeros_like: lambda a, dtype=None, **kw: _api.zeros_like(a, dtype=dtype),
    np.ones_like: lambda a, dtype=None, **kw: _api.ones_like(a, dtype=dtype),
    np.full_like: lambda a, fill_value, dtype=None, **kw: _api.full_like(a, fill_value, dtype=dtype),
    np.empty_like: lambda a, dtype=None, **kw: _api.empty_like(a, dtype=dtype),
    np.outer: lambda a, b, out=None: _api.outer(a, b),
    np.inner: lambda a, b: _api.inner(a, b),
    np.meshgrid: lambda *xi, indexing="xy", **kw: _api.meshgrid(*xi, indexing=indexing),
    np.result_type: lambda *a: _api._dtypes.result_type(*a),
    np.linalg.norm: lambda x, ord=None, axis=None, keepdims=False: _linalg().norm(x, ord, axis, keepdims),
}


def _linalg():
    from . import linalg

    return linalg


# numpy.linalg's functions on tensors run Tessera's (same names, numpy's signatures).
for _name in """qr svd cholesky eigh eigvalsh solve inv det slogdet pinv matrix_rank lstsq
matrix_power cross matrix_norm vector_norm svdvals diagonal trace""".split():
    _f = getattr(np.linalg, _name, None)
    if _f is not None:
        _HANDLED[_f] = (lambda n: lambda *a, **k: getattr(_linalg(), n)(*a, **k))(_name)
del _name, _f


def array_function(func, types, args, kwargs):
    from ._tensor import Tensor

    if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
        return NotImplemented
    f = _HANDLED.get(func)
    if f is None:
        mod = getattr(func, "__module__", "numpy") or "numpy"
        mod = "numpy" if mod.startswith("numpy") and mod.count(".") <= 1 and "linalg" not in mod else mod
        raise TypeError(
            f"tessera does not implement {mod}.{func.__name__}; convert explicitly with "
            "np.asarray(t) if the tensor is small enough to compute in numpy"
        )
    return f(*args, **kwargs)
