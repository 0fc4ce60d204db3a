"""The lazy tensor: numpy's operators, properties and methods over the runtime's graph."""

import builtins
import operator

import numpy as np

from . import _dtypes
from . import _tessera as _raw

_SCALARS = (builtins.bool, int, float)
# repr shows values of tensors up to this many elements whose graph computes at most
# _REPR_WORK elements; anything larger shows shape, dtype and chunking only.
_REPR_VALUES = 100
_REPR_WORK = 100_000


def _is_scalar(x):
    return isinstance(x, _SCALARS)


class Tensor:
    """A lazy n-d array: operations record a graph; ``execute()`` (or any conversion to numpy
    or a Python scalar) runs it. Mars's verb: ``t.execute()`` materializes and returns ``t``."""

    __slots__ = ("_raw", "_value", "_pending", "__weakref__")
    # numpy defers to Tensor in mixed operations (ndarray + Tensor -> Tensor.__radd__).
    __array_priority__ = 1000

    def __init__(self, raw, value=None):
        self._raw = raw
        self._value = value
        self._pending = None

    @classmethod
    def _data_dependent(cls, shape, dtype, stage, i):
        """A tensor whose length is known only once its inputs have run (``nonzero``,
        ``x[mask]``, ``unique``): its shape shows ``None`` there until something uses it
        (an operation, a conversion, ``execute()``), which runs the measuring stage
        ``stage`` (shared by the stage's outputs) and takes its output ``i``."""
        t = cls.__new__(cls)
        t._raw = None
        t._value = None
        t._pending = (tuple(shape), np.dtype(dtype), stage, i)
        return t

    @property
    def _t(self):
        p = self._pending
        if p is not None:
            self._raw = p[2].output(p[3])
            self._pending = None
        return self._raw

    @_t.setter
    def _t(self, raw):
        self._raw = raw
        self._pending = None

    # ---- properties ----------------------------------------------------------------------
    @property
    def shape(self):
        if self._pending is not None:
            return self._pending[0]
        return self._t.shape

    @property
    def dtype(self):
        if self._pending is not None:
            return self._pending[1]
        return np.dtype(self._t.dtype)

    @property
    def ndim(self):
        if self._pending is not None:
            return len(self._pending[0])
        return self._t.ndim

    @property
    def size(self):
        if self._pending is not None:
            return None
        return self._t.size

    @property
    def nbytes(self):
        size = self.size
        return None if size is None else size * self.dtype.itemsize

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def device(self):
        from . import _api

        return _api._device()

    @property
    def chunks(self):
        """The requested chunk shape (``chunk_size=``), or None when chunks are sized from the
        session's byte budget."""
        return self._t.chunks

    @property
    def T(self):
        # numpy reverses every axis (the Array API asks for 2-D only; numpy allows any).
        return Tensor(self._t.transpose(None))

    @property
    def mT(self):
        if self.ndim < 2:
            raise ValueError(f"matrix transpose of a tensor of shape {self.shape} needs 2 dims")
        axes = list(range(self.ndim))
        axes[-1], axes[-2] = axes[-2], axes[-1]
        return Tensor(self._t.transpose(axes))

    # ---- execution -----------------------------------------------------------------------
    def execute(self):
        """Runs the graph behind this tensor and keeps the result: later conversions and later
        graphs that use this tensor read it instead of recomputing. Returns ``self``."""
        if self._value is None:
            self._kept()
        return self

    def _kept(self):
        # With a memory budget the session holds the kept result (charged to the budget, and
        # spilled to disk past its share), so this object keeps no view of it.
        v = self._t.execute()
        if not _raw.memory_budgeted():
            self._value = v
        return v

    def to_npy(self, file):
        """Writes this tensor to the ``.npy`` file ``file`` chunk by chunk (as ``ts.save``)."""
        from ._io import save

        return save(file, self)

    def to_zarr(self, url, component=None, overwrite=False, **kwargs):
        """Writes this tensor to a Zarr array chunk by chunk (as ``ts.to_zarr``)."""
        from ._io import to_zarr

        return to_zarr(self, url, component, overwrite, **kwargs)

    def tofile(self, fid, sep="", format="%s"):
        """numpy's ``tofile``: the raw data, C order, this machine's byte order, chunk by chunk
        (text output, ``sep`` other than '', is not supported)."""
        if sep != "":
            raise NotImplementedError("tofile: text output (sep != '') is not supported")
        from ._io import tofile

        return tofile(self, fid)

    def to_numpy(self):
        """The value as a numpy array (runs the graph if needed)."""
        if self._value is not None:
            return self._value
        return self._kept()

    def __array__(self, dtype=None, copy=None):
        a = self.to_numpy()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        if copy:
            return a.copy()
        return a

    def _scalar(self, kind):
        if self.size != 1:
            raise TypeError(
                f"only tensors of one element can be converted to Python scalars; this one has "
                f"shape {self.shape}"
            )
        return kind(self.to_numpy().reshape(()).item())

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        if self.dtype.kind == "f":
            v = float(self._scalar(float))
            return int(v)
        return self._scalar(int)

    def __bool__(self):
        return self._scalar(builtins.bool)

    def __complex__(self):
        return complex(self._scalar(float))

    def __index__(self):
        if self.dtype.kind not in "iu" or self.ndim != 0:
            raise TypeError("only 0-d integer tensors can be used as an index")
        return int(self._scalar(int))

    def item(self):
        return self.to_numpy().item()

    def tolist(self):
        return self.to_numpy().tolist()

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        # A data-dependent length is a number once its stage has run: len() needs one.
        return self._t.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        if self._pending is not None:
            return (
                f"tessera.Tensor(shape={self.shape}, dtype={self.dtype.name}, "
                "length known once it runs)"
            )
        chunks = self._t.chunks
        ch = "auto" if chunks is None else str(tuple(chunks))
        value = self._value
        if value is None and self.size <= _REPR_VALUES and (
            self._t.is_materialized or self._t.pending_elements <= _REPR_WORK
        ):
            # Tiny and cheap: showing the values runs almost nothing.
            value = self.to_numpy()
        if value is not None:
            body = np.array2string(value, separator=", ", threshold=100)
            return f"tessera.Tensor({body}, dtype={self.dtype.name}, chunks={ch})"
        # A value held by the session (data, a result kept under a memory budget, possibly on
        # disk) is not read just to be shown.
        state = "held" if self._t.is_materialized else "not executed"
        return f"tessera.Tensor(shape={self.shape}, dtype={self.dtype.name}, chunks={ch}, {state})"

    __str__ = __repr__

    def __hash__(self):
        raise TypeError("unhashable type: 'tessera.Tensor'")

    # ---- Array API protocol --------------------------------------------------------------
    def __array_namespace__(self, *, api_version=None):
        if api_version is not None and api_version not in ("2021.12", "2022.12", "2023.12", "2024.12"):
            raise ValueError(f"unsupported Array API version {api_version!r}")
        import tessera

        return tessera

    def to_device(self, device, /, *, stream=None):
        from . import _api

        if device != _api._device():
            raise ValueError(f"unknown device {device!r}; tessera has {_api._device()!r}")
        return self

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        a = self.to_numpy()
        if max_version is None:
            return a.__dlpack__(stream=stream)
        return a.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)

    def __dlpack_device__(self):
        return (1, 0)

    # ---- numpy protocols -----------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from . import _interop

        return _interop.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import _interop

        return _interop.array_function(func, types, args, kwargs)

    # ---- methods -------------------------------------------------------------------------
    def astype(self, dtype, copy=True):
        from . import _api

        return _api.astype(self, dtype, copy=copy)

    def reshape(self, *shape, order="C", copy=None):
        if order != "C":
            raise NotImplementedError("reshape: only order='C' is supported")
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return Tensor(self._t.reshape([operator.index(s) for s in shape]))

    def flatten(self):
        return self.reshape(-1)

    ravel = flatten

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], int)):
            axes = axes[0]
        return Tensor(self._t.transpose(None if not axes else [operator.index(a) for a in axes]))

    def swapaxes(self, a, b):
        axes = list(range(self.ndim))
        a, b = _norm_axis(a, self.ndim), _norm_axis(b, self.ndim)
        axes[a], axes[b] = axes[b], axes[a]
        return Tensor(self._t.transpose(axes))

    def squeeze(self, axis=None):
        from . import _api

        return _api.squeeze(self, axis)

    def rechunk(self, chunk_size):
        """The same data in chunks of ``chunk_size`` (an int for every axis or one per axis)."""
        return Tensor(self._t.with_chunks(_chunk_list(chunk_size, self.ndim)))

    def dot(self, other):
        from . import _api

        return _api.dot(self, other)

    def clip(self, min=None, max=None):  # noqa: A002
        from . import _api

        return _api.clip(self, min, max)

    def argsort(self, axis=-1, kind=None, order=None, *, stable=None):
        """numpy's ndarray.argsort (always stable)."""
        from ._interop import _np_sort

        return _np_sort(self, axis, kind, order, True)

    def sort(self, axis=-1, kind=None, order=None, *, stable=None):
        """numpy's ndarray.sort: sorts in place (the tensor becomes its sorted values)."""
        from ._interop import _np_sort

        r = _np_sort(self, axis, kind, order, False)
        self._t = r._t
        self._value = None

    def searchsorted(self, v, side="left", sorter=None):
        """numpy's ndarray.searchsorted: int64 insertion positions of `v` in this sorted 1-D
        tensor."""
        from . import _api

        return _api.searchsorted(self, v, side=side, sorter=sorter)

    def partition(self, kth, axis=-1, kind="introselect", order=None):
        """numpy's ndarray.partition, in place: the tensor becomes its stable sort along
        `axis` (which satisfies numpy's partition invariants for every `kth`)."""
        from . import _api

        r = _api.partition(self, kth, axis, kind, order)
        self._t = r._t
        self._value = None

    def argpartition(self, kth, axis=-1, kind="introselect", order=None):
        """numpy's ndarray.argpartition (the stable argsort)."""
        from . import _api

        return _api.argpartition(self, kth, axis, kind, order)

    def __getattr__(self, name):
        # Reductions and the other numpy methods: t.sum(axis=0) is ts.sum(t, axis=0).
        from . import _api

        if name in _METHODS:
            f = getattr(_api, name)
            return lambda *a, **k: f(self, *a, **k)
        raise AttributeError(f"'tessera.Tensor' object has no attribute {name!r}")

    # ---- indexing ------------------------------------------------------------------------
    def __getitem__(self, key):
        arr = _array_key(key)
        if arr is not None:
            from . import _api

            if arr.dtype == np.bool_:
                return _api._mask_select(self, arr)
            return _api.take(self, arr, axis=0)
        if isinstance(key, tuple) and builtins.any(_is_array(k) for k in key):
            # One integer array along one axis, full slices elsewhere: a take along it.
            arrays = [i for i, k in enumerate(key) if _is_array(k)]
            rest_full = builtins.all(
                (i in arrays) or (isinstance(k, slice) and k == slice(None)) for i, k in enumerate(key)
            )
            if len(arrays) == 1 and rest_full and not builtins.any(k is Ellipsis for k in key):
                from . import _api

                a = _array_key(key[arrays[0]])
                if a is not None and a.dtype != np.bool_:
                    return _api.take(self, a, axis=arrays[0])
            if builtins.all(_is_array(k) or _is_int(k) for k in key):
                return _vector_index(self, key)
            raise IndexError(
                "advanced indexing supports one integer or boolean array as the whole key, or "
                "one integer array with full slices ':' on the other axes"
            )
        return Tensor(self._t.index(_index_items(key)))

    def __setitem__(self, key, value):
        from . import _api

        new = _api._setitem(self, key, value)
        self._t = new._t
        self._value = None

    # ---- operators -----------------------------------------------------------------------
    def _bin(self, name, other, reflected=False):
        o = _operand(other)
        if o is NotImplemented:
            return NotImplemented
        if name in _LOGICAL and self._t.dtype == "bool":
            # On booleans the bitwise operators are the logical ones (numpy's result too).
            if isinstance(o, builtins.bool) or (
                isinstance(o, _raw.RawTensor) and o.dtype == "bool"
            ):
                name = _LOGICAL[name]
        return Tensor(self._t.binary(name, o, reflected))

    def __add__(self, o):
        return self._bin("add", o)

    def __radd__(self, o):
        return self._bin("add", o, True)

    def __sub__(self, o):
        return self._bin("subtract", o)

    def __rsub__(self, o):
        return self._bin("subtract", o, True)

    def __mul__(self, o):
        return self._bin("multiply", o)

    def __rmul__(self, o):
        return self._bin("multiply", o, True)

    def __truediv__(self, o):
        return self._bin("true_divide", o)

    def __rtruediv__(self, o):
        return self._bin("true_divide", o, True)

    def __floordiv__(self, o):
        return self._bin("floor_divide", o)

    def __rfloordiv__(self, o):
        return self._bin("floor_divide", o, True)

    def __mod__(self, o):
        return self._bin("remainder", o)

    def __rmod__(self, o):
        return self._bin("remainder", o, True)

    def __pow__(self, o):
        return self._bin("power", o)

    def __rpow__(self, o):
        return self._bin("power", o, True)

    def __and__(self, o):
        return self._bin("bitwise_and", o)

    def __rand__(self, o):
        return self._bin("bitwise_and", o, True)

    def __or__(self, o):
        return self._bin("bitwise_or", o)

    def __ror__(self, o):
        return self._bin("bitwise_or", o, True)

    def __xor__(self, o):
        return self._bin("bitwise_xor", o)

    def __rxor__(self, o):
        return self._bin("bitwise_xor", o, True)

    def __lshift__(self, o):
        return self._bin("bitwise_left_shift", o)

    def __rlshift__(self, o):
        return self._bin("bitwise_left_shift", o, True)

    def __rshift__(self, o):
        return self._bin("bitwise_right_shift", o)

    def __rrshift__(self, o):
        return self._bin("bitwise_right_shift", o, True)

    def __eq__(self, o):
        return self._bin("equal", o)

    def __ne__(self, o):
        return self._bin("not_equal", o)

    def __lt__(self, o):
        return self._bin("less", o)

    def __le__(self, o):
        return self._bin("less_equal", o)

    def __gt__(self, o):
        return self._bin("greater", o)

    def __ge__(self, o):
        return self._bin("greater_equal", o)

    def __matmul__(self, o):
        from . import _api

        o = _operand(o)
        if o is NotImplemented or not isinstance(o, _raw.RawTensor):
            return NotImplemented
        return _api.matmul(self, Tensor(o))

    def __rmatmul__(self, o):
        from . import _api

        o = _operand(o)
        if o is NotImplemented or not isinstance(o, _raw.RawTensor):
            return NotImplemented
        return _api.matmul(Tensor(o), self)

    def __neg__(self):
        return Tensor(self._t.unary("negative"))

    def __pos__(self):
        from . import _api

        return _api.positive(self)

    def __abs__(self):
        return Tensor(self._t.unary("absolute"))

    def __invert__(self):
        from . import _api

        return _api.bitwise_invert(self)

    # In-place forms rebind this Python object to the new lazy node (the graph is immutable);
    # numpy's rule holds: the result keeps the left operand's dtype.
    def _inplace(self, name, o):
        r = self._bin(name, o)
        if r is NotImplemented:
            return NotImplemented
        if r.dtype != self.dtype:
            from . import _api

            if not _dtypes.can_cast(r.dtype, self.dtype) and not (
                _is_scalar(o) and r.dtype == self.dtype
            ):
                raise TypeError(
                    f"Cannot cast ufunc '{name}' output from dtype('{r.dtype}') to "
                    f"dtype('{self.dtype}') with casting rule 'same_kind'"
                )
            r = _api.astype(r, self.dtype)
        if r.shape != self.shape:
            raise ValueError(
                f"non-broadcastable output operand with shape {self.shape} doesn't match the "
                f"broadcast shape {r.shape}"
            )
        self._t = r._t
        self._value = None
        return self

    def __iadd__(self, o):
        return self._inplace("add", o)

    def __isub__(self, o):
        return self._inplace("subtract", o)

    def __imul__(self, o):
        return self._inplace("multiply", o)

    def __itruediv__(self, o):
        return self._inplace("true_divide", o)

    def __ifloordiv__(self, o):
        return self._inplace("floor_divide", o)

    def __imod__(self, o):
        return self._inplace("remainder", o)

    def __ipow__(self, o):
        return self._inplace("power", o)

    def __iand__(self, o):
        return self._inplace("bitwise_and", o)

    def __ior__(self, o):
        return self._inplace("bitwise_or", o)

    def __ixor__(self, o):
        return self._inplace("bitwise_xor", o)

    def __ilshift__(self, o):
        return self._inplace("bitwise_left_shift", o)

    def __irshift__(self, o):
        return self._inplace("bitwise_right_shift", o)

    def __imatmul__(self, o):
        from . import _api

        r = _api.matmul(self, o)
        if r.shape != self.shape:
            raise ValueError(f"in-place matmul changes the shape {self.shape} to {r.shape}")
        self._t = r._t
        self._value = None
        return self


_LOGICAL = {
    "bitwise_and": "logical_and",
    "bitwise_or": "logical_or",
    "bitwise_xor": "logical_xor",
}

# numpy methods that are the namespace function with the tensor first.
_METHODS = frozenset(
    """sum prod mean var std min max any all argmin argmax cumsum cumprod round nonzero
    conj conjugate real imag repeat flip take""".split()
)


def _operand(x):
    """A raw tensor or a Python scalar for the runtime; numpy arrays and numpy scalars become
    tensors (numpy scalars are strong under NEP 50); anything else is NotImplemented."""
    if isinstance(x, Tensor):
        return x._t
    if _is_scalar(x):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        from . import _api

        return _api._asarray(x, None, None, None, None, share=False)._t
    if isinstance(x, complex):
        raise TypeError("complex numbers are not supported by tessera yet (issue 22)")
    return NotImplemented


def _norm_axis(a, ndim):
    a = operator.index(a)
    if not -ndim <= a < ndim:
        from numpy.exceptions import AxisError

        raise AxisError(a, ndim)
    return a % ndim


def _chunk_list(chunk_size, ndim):
    if isinstance(chunk_size, int):
        return [chunk_size] * max(ndim, 1)
    return [int(c) for c in chunk_size]


def _is_int(k):
    return not isinstance(k, (builtins.bool, np.bool_)) and hasattr(k, "__index__")


def _vector_index(x, key):
    """Integers and integer arrays on the leading axes (the Array API's vectorized indexing):
    the arrays broadcast together, each index is checked against its axis, and the result is
    one take of the flattened leading axes (the indices are computed first)."""
    from . import _api

    if len(key) > x.ndim:
        raise IndexError(
            f"too many indices for array: array is {x.ndim}-dimensional, but {len(key)} were indexed"
        )
    parts = []
    for a, k in enumerate(key):
        v = np.asarray(k)
        if v.dtype.kind not in "iu":
            raise IndexError("arrays used as indices must be of integer type")
        n = x.shape[a]
        bad = (v < -n) | (v >= n)
        if bad.any():
            i = int(v[bad].flat[0])
            raise IndexError(f"index {i} is out of bounds for axis {a} with size {n}")
        parts.append(np.where(v < 0, v + n, v).astype(np.int64))
    try:
        parts = np.broadcast_arrays(*parts)
    except ValueError:
        shapes = " ".join(str(p.shape) for p in parts)
        raise IndexError(
            f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}"
        ) from None
    flat = np.zeros(parts[0].shape, np.int64)
    for a, p in enumerate(parts):
        flat = flat * x.shape[a] + p
    k = len(key)
    lead = 1
    for d in x.shape[:k]:
        lead *= d
    rows = _api.reshape(x, (lead,) + tuple(x.shape[k:]))
    return _api.take(rows, flat, axis=0)


def _is_array(k):
    if isinstance(k, (Tensor, np.ndarray)):
        return k.ndim > 0 or k.dtype == np.bool_
    return isinstance(k, list)


def _array_key(key):
    """The key as a tensor when it is one integer or boolean array (a tensor, a numpy array
    or a list; 0-d integer arrays are plain indices), else None."""
    if not _is_array(key):
        return None
    if isinstance(key, Tensor):
        return key
    arr = np.asarray(key)
    if arr.dtype == np.bool_ and arr.ndim == 0:
        raise IndexError("boolean scalar indices are not supported (they add an axis)")
    if arr.dtype.kind not in "iub":
        if arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise IndexError(
                "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and "
                "integer or boolean arrays are valid indices"
            )
    from . import _api

    return _api._asarray(arr, None, None, None, None, share=False)


def _index_items(key):
    if not isinstance(key, tuple):
        key = (key,)
    items = []
    for k in key:
        if isinstance(k, Tensor) or isinstance(k, np.ndarray) or isinstance(k, list):
            d = getattr(k, "dtype", None)
            if d is not None and np.dtype(d).kind in "iu" and getattr(k, "ndim", 1) == 0:
                items.append(int(k))
                continue
            raise IndexError(
                "advanced indexing supports one integer or boolean array as the whole key, or "
                "one integer array with full slices ':' on the other axes"
            )
        if isinstance(k, builtins.bool) or isinstance(k, np.bool_):
            raise IndexError(
                "boolean scalar indices are not supported yet (they make data-dependent shapes, "
                "issue 19)"
            )
        items.append(k)
    return items
