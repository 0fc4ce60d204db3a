"""The namespace functions: numpy's names and keyword arguments, and the Array API's."""

import builtins
import collections
import operator

import numpy as np

from . import _dtypes
from . import _tessera as _raw
from ._tensor import Tensor, _chunk_list, _is_scalar, _norm_axis

# ---- devices -----------------------------------------------------------------------------


class Device:
    """Where a tensor's chunks run: the session's backend (``cpu``, ``wgpu`` or ``cuda``)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"Device({self.name!r})"


def _device():
    return Device(_raw.backend_name())


def _check_device(device):
    if device is not None and device != _device():
        raise ValueError(f"unknown device {device!r}; tessera runs on {_device()!r}")


# ---- conversion --------------------------------------------------------------------------


def _chunk(chunk_size, ndim):
    return None if chunk_size is None else _chunk_list(chunk_size, ndim)


def _from_numpy(a, chunk_size=None):
    if a.dtype.name not in _dtypes._SUPPORTED_NAMES:
        _dtypes.dtype_name(a.dtype)  # raises TypeError naming the dtype
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))  # the same values in this machine's order
    if not a.flags.aligned:
        # The extension reads elements as typed values, which must be aligned: an aligned copy.
        a = np.require(a, requirements="A")
    return Tensor(_raw.from_numpy(a, _chunk(chunk_size, a.ndim)))


def asarray(obj, /, dtype=None, device=None, copy=None, *, chunk_size=None):
    """A tensor from a tensor, a numpy array, a buffer, nested sequences or a Python scalar.
    ``chunk_size=`` (an int, or one per axis) sets how the data is cut into chunks.

    A numpy array of a tessera dtype is read in place, as ``numpy.asarray`` shares it: no
    copy is made, each chunk is read from the array's buffer when a kernel needs it, and the
    tensor keeps the array alive. Like a numpy view, the tensor sees writes to the array made
    before it is executed; ``copy=True`` takes a copy instead."""
    return _asarray(obj, dtype, device, copy, chunk_size, share=copy is not True)


def _asarray(obj, dtype, device, copy, chunk_size, share):
    _check_device(device)
    if isinstance(obj, Tensor):
        # A new tensor object on the same (immutable) node: `copy=True` means later in-place
        # updates of `obj`, which rebind `obj`, do not show through the result.
        t = Tensor(obj._t, obj._value) if copy else obj
        if dtype is not None and np.dtype(dtype) != t.dtype:
            if copy is False:
                raise ValueError("asarray: a dtype change needs a copy but copy=False")
            t = astype(t, dtype)
        if chunk_size is not None:
            t = t.rechunk(chunk_size)
        return t
    if dtype is not None:
        dtype = _dtypes.as_dtype(dtype)
    if copy is False and not isinstance(obj, np.ndarray) and not hasattr(obj, "__array__"):
        if not hasattr(obj, "__buffer__") and not isinstance(obj, memoryview):
            raise ValueError("asarray: copy=False but the object is not an array or buffer")
    if isinstance(obj, (list, tuple)) and _has_tensor(obj):
        obj = _nested_numpy(obj)
    if _is_scalar(obj) and dtype is None:
        dtype = (
            _dtypes.bool
            if isinstance(obj, builtins.bool)
            else _dtypes.DEFAULT_INT
            if isinstance(obj, int)
            else _dtypes.DEFAULT_FLOAT
        )
    if isinstance(obj, int) and not isinstance(obj, builtins.bool):
        info = np.iinfo(dtype) if dtype.kind in "iu" else None
        if info is not None and not info.min <= obj <= info.max:
            raise OverflowError(f"Python integer {obj} out of bounds for {dtype.name}")
    if (
        share
        and type(obj) is np.ndarray
        and (dtype is None or dtype == obj.dtype)
        and obj.dtype.name in _dtypes._SUPPORTED_NAMES
    ):
        t = _raw.from_numpy_shared(obj, _chunk(chunk_size, obj.ndim))
        if t is not None:
            return Tensor(t)
    a = np.asarray(obj, dtype=dtype, copy=copy) if copy is not None else np.asarray(obj, dtype=dtype)
    if a.dtype.kind == "U" or a.dtype.kind == "O":
        raise TypeError(f"asarray: cannot make a numeric tensor from {type(obj).__name__}")
    if dtype is None and a.dtype.kind == "c":
        raise TypeError("complex numbers are not supported by tessera yet (issue 22)")
    return _from_numpy(a, chunk_size)


def array(obj, /, dtype=None, *, copy=True, device=None, chunk_size=None):
    """numpy.array: a copy by default (``copy=False`` shares a numpy array as ``asarray``)."""
    if isinstance(obj, Tensor):
        return _asarray(obj, dtype, device, copy, chunk_size, share=False)
    return _asarray(obj, dtype, device, None if copy else copy, chunk_size, share=not copy)


def _has_tensor(seq):
    for x in seq:
        if isinstance(x, Tensor):
            return True
        if isinstance(x, (list, tuple)) and _has_tensor(x):
            return True
    return False


def _nested_numpy(seq):
    return [
        x.to_numpy() if isinstance(x, Tensor) else _nested_numpy(x) if isinstance(x, (list, tuple)) else x
        for x in seq
    ]


def _t(x):
    """``x`` as a tensor (numpy arrays and Python scalars converted: copied, so a later write
    to the array does not change an operation recorded before it)."""
    if isinstance(x, Tensor):
        return x
    return _asarray(x, None, None, None, None, share=False)


def astype(x, dtype, /, *, copy=True, device=None):
    _check_device(device)
    x = _t(x)
    d = _dtypes.dtype_name(dtype)
    if x.dtype.name == d and not copy:
        return x
    return Tensor(x._t.astype(d))


# ---- creation ----------------------------------------------------------------------------


def _shape(shape):
    if isinstance(shape, int) or hasattr(shape, "__index__"):
        return [operator.index(shape)]
    out = [operator.index(s) for s in shape]
    for s in out:
        if s < 0:
            raise ValueError(f"negative dimensions are not allowed: {tuple(out)}")
    return out


def _default_float(dtype):
    return _dtypes.dtype_name(dtype) if dtype is not None else "float64"


def full(shape, fill_value, *, dtype=None, device=None, chunk_size=None):
    _check_device(device)
    sh = _shape(shape)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if isinstance(fill_value, np.generic):
        if dtype is None:
            dtype = fill_value.dtype
        fill_value = fill_value.item()
    if dtype is None:
        if isinstance(fill_value, builtins.bool):
            dtype = "bool"
        elif isinstance(fill_value, int):
            dtype = "int64"
        elif isinstance(fill_value, float):
            dtype = "float64"
        else:
            raise TypeError(f"full: unsupported fill value {fill_value!r}")
    return Tensor(_raw.full(sh, fill_value, _dtypes.dtype_name(dtype), _chunk(chunk_size, len(sh))))


def zeros(shape, *, dtype=None, device=None, chunk_size=None):
    d = _default_float(dtype)
    return full(shape, False if d == "bool" else 0, dtype=d, device=device, chunk_size=chunk_size)


def ones(shape, *, dtype=None, device=None, chunk_size=None):
    d = _default_float(dtype)
    return full(shape, True if d == "bool" else 1, dtype=d, device=device, chunk_size=chunk_size)


def empty(shape, *, dtype=None, device=None, chunk_size=None):
    # A lazy graph has nothing to leave uninitialized: zeros cost nothing until executed.
    return zeros(shape, dtype=dtype, device=device, chunk_size=chunk_size)


def _like(x, dtype):
    x = _t(x)
    return x.shape, (x.dtype if dtype is None else dtype)


def zeros_like(x, /, *, dtype=None, device=None, chunk_size=None):
    s, d = _like(x, dtype)
    return zeros(s, dtype=d, device=device, chunk_size=chunk_size)


def ones_like(x, /, *, dtype=None, device=None, chunk_size=None):
    s, d = _like(x, dtype)
    return ones(s, dtype=d, device=device, chunk_size=chunk_size)


def empty_like(x, /, *, dtype=None, device=None, chunk_size=None):
    s, d = _like(x, dtype)
    return empty(s, dtype=d, device=device, chunk_size=chunk_size)


def full_like(x, /, fill_value, *, dtype=None, device=None, chunk_size=None):
    s, d = _like(x, dtype)
    return full(s, fill_value, dtype=d, device=device, chunk_size=chunk_size)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None, chunk_size=None):
    _check_device(device)
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ZeroDivisionError("arange: step is 0")
    if dtype is None:
        dtype = (
            "int64"
            if builtins.all(isinstance(v, int) for v in (start, stop, step))
            else "float64"
        )
    return Tensor(
        _raw.arange(float(start), float(stop), float(step), _dtypes.dtype_name(dtype), _chunk(chunk_size, 1))
    )


def linspace(start, stop, /, num=50, *, dtype=None, device=None, endpoint=True, chunk_size=None):
    _check_device(device)
    if num < 0:
        raise ValueError(f"linspace: number of samples, {num}, must be non-negative")
    if isinstance(start, complex) or isinstance(stop, complex):
        raise TypeError("complex numbers are not supported by tessera yet (issue 22)")
    return Tensor(
        _raw.linspace(
            float(start), float(stop), int(num), builtins.bool(endpoint), _default_float(dtype), _chunk(chunk_size, 1)
        )
    )


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None, chunk_size=None):
    _check_device(device)
    return Tensor(_raw.eye(n_rows, n_cols, k, _default_float(dtype), _chunk(chunk_size, 2)))


def identity(n, dtype=None, *, chunk_size=None):
    return eye(n, dtype=dtype, chunk_size=chunk_size)


def from_dlpack(x, /, *, device=None, copy=None):
    _check_device(device)
    return asarray(np.from_dlpack(x))


# ---- elementwise -------------------------------------------------------------------------


def _unary(name):
    def f(x, /):
        return Tensor(_t(x)._t.unary(name))

    f.__name__ = name
    f.__doc__ = f"numpy's ``{name}``, lazily."
    return f


def _binary(name):
    def f(x1, x2, /):
        if isinstance(x1, Tensor):
            return x1._bin(name, x2)
        if isinstance(x2, Tensor):
            return x2._bin(name, x1 if _is_scalar(x1) else _t(x1), True)
        return _t(x1)._bin(name, _t(x2))

    f.__name__ = name
    f.__doc__ = f"numpy's ``{name}``, lazily (broadcasting, NEP 50 promotion)."
    return f


_UNARY = """negative absolute sign sqrt exp log log1p expm1 sin cos tan tanh arcsin arccos arctan
floor ceil round logical_not isnan isinf isfinite sinh cosh arcsinh arccosh arctanh log2 log10
exp2 trunc cbrt square reciprocal signbit bitwise_invert""".split()
_BINARY = """add subtract multiply true_divide floor_divide remainder power maximum minimum equal
not_equal less less_equal greater greater_equal logical_and logical_or logical_xor arctan2 hypot
copysign nextafter logaddexp bitwise_and bitwise_or bitwise_xor bitwise_left_shift
bitwise_right_shift""".split()

_g = globals()
for _n in _UNARY:
    _g[_n] = _unary(_n)
for _n in _BINARY:
    _g[_n] = _binary(_n)
del _g, _n

# The Array API's names and numpy's aliases.
abs = absolute  # noqa: A001, F821
acos, asin, atan = arccos, arcsin, arctan  # noqa: F821
acosh, asinh, atanh = arccosh, arcsinh, arctanh  # noqa: F821
atan2 = arctan2  # noqa: F821
divide = true_divide  # noqa: F821
pow = power  # noqa: A001, F821
mod = remainder  # noqa: F821
invert = bitwise_invert  # noqa: F821
left_shift, right_shift = bitwise_left_shift, bitwise_right_shift  # noqa: F821
_round = round  # noqa: F821


def round(x, /, decimals=0):  # noqa: A001
    if decimals != 0:
        s = 10.0**decimals
        return _round(_t(x) * s) / s
    return _round(x)


around = round


def positive(x, /):
    return Tensor(_t(x)._t.positive())


def conj(x, /):
    return _t(x)


conjugate = conj


def real(x, /):
    return _t(x)


def imag(x, /):
    x = _t(x)
    return zeros_like(x)


def where(condition, x1=None, x2=None, /):
    if x1 is None and x2 is None:
        # numpy: where(condition) is nonzero(condition).
        return nonzero(condition)
    c = _t(condition)
    if c.dtype != _dtypes.bool:
        c = astype(c, "bool")
    a = x1 if _is_scalar(x1) else _t(x1)._t
    b = x2 if _is_scalar(x2) else _t(x2)._t
    return Tensor(c._t.where_(a, b))


def clip(x, /, min=None, max=None):  # noqa: A002
    x = _t(x)
    out = x
    if min is not None:
        m = min if _is_scalar(min) else _t(min)
        out = maximum(out, m)  # noqa: F821
    if max is not None:
        m = max if _is_scalar(max) else _t(max)
        out = minimum(out, m)  # noqa: F821
    if out.dtype != x.dtype and (
        (min is None or _is_scalar(min)) and (max is None or _is_scalar(max))
    ):
        out = astype(out, x.dtype)
    return out


# ---- reductions --------------------------------------------------------------------------


def _axes(axis):
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        return [operator.index(a) for a in axis]
    return [operator.index(axis)]


def _reduce(name, x, axis, keepdims, ddof=0, dtype=None):
    x = _t(x)
    if dtype is not None:
        d = _dtypes.as_dtype(dtype)
        if d.kind == "f" or x.dtype.kind == "f":
            x = astype(x, d)
            r = Tensor(x._t.reduce(name, _axes(axis), builtins.bool(keepdims), ddof))
            return r if r.dtype == d else astype(r, d)
        r = Tensor(x._t.reduce(name, _axes(axis), builtins.bool(keepdims), ddof))
        return r if r.dtype == d else astype(r, d)
    return Tensor(x._t.reduce(name, _axes(axis), builtins.bool(keepdims), ddof))


def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001
    return _reduce("sum", x, axis, keepdims, dtype=dtype)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    return _reduce("prod", x, axis, keepdims, dtype=dtype)


def mean(x, /, *, axis=None, dtype=None, keepdims=False):
    return _reduce("mean", x, axis, keepdims, dtype=dtype)


def _ddof(correction, ddof):
    c = ddof if correction is None else correction
    if c is None:
        c = 0
    if c < 0:
        raise ValueError(f"var/std: correction {c} is negative")
    return c


def _var(name, x, axis, keepdims, c, dtype):
    if float(c).is_integer():
        return _reduce(name, x, axis, keepdims, int(c), dtype)
    # A fractional correction: the population variance times n / (n - c).
    x = _t(x)
    axes = range(x.ndim) if axis is None else [_norm_axis(a, x.ndim) for a in _axes(axis)]
    n = 1
    for a in axes:
        n *= x.shape[a]
    v = _reduce("var", x, axis, keepdims, 0, dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = float(np.float64(n) / np.float64(n - c)) if n - c != 0 else float("inf")
    v = v * scale
    return sqrt(v) if name == "std" else v  # noqa: F821


def var(x, /, *, axis=None, correction=None, keepdims=False, ddof=None, dtype=None):
    return _var("var", x, axis, keepdims, _ddof(correction, ddof), dtype)


def std(x, /, *, axis=None, correction=None, keepdims=False, ddof=None, dtype=None):
    return _var("std", x, axis, keepdims, _ddof(correction, ddof), dtype)


def max(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _reduce("max", x, axis, keepdims)


def min(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _reduce("min", x, axis, keepdims)


amax, amin = max, min


def any(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _reduce("any", x, axis, keepdims)


def all(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _reduce("all", x, axis, keepdims)


def _arg(name, x, axis, keepdims):
    x = _t(x)
    if axis is None:
        r = Tensor(x._t.argreduce(name, None))
        if keepdims:
            r = r.reshape([1] * x.ndim)
        return r
    axis = operator.index(axis)
    r = Tensor(x._t.argreduce(name, axis))
    if keepdims:
        r = Tensor(r._t.expand_dims(_norm_axis(axis, x.ndim)))
    return r


def argmax(x, /, *, axis=None, keepdims=False):
    return _arg("argmax", x, axis, keepdims)


def argmin(x, /, *, axis=None, keepdims=False):
    return _arg("argmin", x, axis, keepdims)


# ---- movement ----------------------------------------------------------------------------


def reshape(x, /, shape, *, copy=None):
    if copy is False:
        raise ValueError("reshape: copy=False cannot be guaranteed for a lazy tensor")
    return _t(x).reshape(shape)


def permute_dims(x, /, axes):
    return Tensor(_t(x)._t.transpose([operator.index(a) for a in axes]))


def transpose(x, /, axes=None):
    return Tensor(_t(x)._t.transpose(None if axes is None else [operator.index(a) for a in axes]))


def matrix_transpose(x, /):
    return Tensor(_t(x)._t.matrix_transpose())


def swapaxes(x, a, b):
    return _t(x).swapaxes(a, b)


def squeeze(x, /, axis=None):
    x = _t(x)
    return Tensor(x._t.squeeze(_axes(axis)))


def expand_dims(x, /, axis=0):
    return Tensor(_t(x)._t.expand_dims_axes(_axes(axis)))


def broadcast_to(x, /, shape):
    return Tensor(_t(x)._t.broadcast_to(_shape(shape)))


def broadcast_shapes(*shapes):
    return np.broadcast_shapes(*shapes)


def broadcast_arrays(*arrays):
    return [Tensor(r) for r in _raw.broadcast_arrays([_t(a)._t for a in arrays])]


def concat(arrays, /, *, axis=0):
    ts = [_t(a) for a in arrays]
    if axis is None:
        ts = [t.reshape(-1) for t in ts]
        axis = 0
    ts = _promote_all(ts)
    return Tensor(_raw.concatenate([t._t for t in ts], operator.index(axis)))


def concatenate(arrays, axis=0, out=None, dtype=None):
    if out is not None:
        raise NotImplementedError("concatenate: out= is not supported (tensors are immutable)")
    r = concat(arrays, axis=axis)
    return r if dtype is None else astype(r, dtype)


def stack(arrays, /, *, axis=0):
    ts = _promote_all([_t(a) for a in arrays])
    return Tensor(_raw.stack([t._t for t in ts], operator.index(axis)))


def _promote_all(ts):
    if not ts:
        return ts
    d = _dtypes.result_type(*ts)
    return [t if t.dtype == d else astype(t, d) for t in ts]


def moveaxis(x, source, destination, /):
    return Tensor(_t(x)._t.moveaxis(_axes(source), _axes(destination)))


def flip(x, /, *, axis=None):
    return Tensor(_t(x)._t.flip(_axes(axis)))


def roll(x, /, shift, *, axis=None):
    return Tensor(_t(x)._t.roll(_axes(shift), _axes(axis)))


def tile(x, repetitions, /):
    reps = repetitions if isinstance(repetitions, (tuple, list)) else [repetitions]
    reps = [operator.index(r) for r in reps]
    if builtins.any(r < 0 for r in reps):
        raise ValueError(f"tile: negative repetitions {tuple(reps)}")
    return Tensor(_t(x)._t.tile(reps))


def repeat(x, repeats, /, *, axis=None):
    if not isinstance(repeats, int):
        if isinstance(repeats, (Tensor, np.ndarray)) and getattr(repeats, "ndim", 1) == 0:
            repeats = int(repeats)
        else:
            # Per-element counts: computed first (their sum is the length), then one take.
            x = _t(x)
            if axis is None:
                x = reshape(x, (-1,))
                axis = 0
            axis = _norm_axis(axis, x.ndim)
            counts = np.asarray(repeats)
            if counts.dtype.kind not in "iu":
                raise TypeError(f"repeat: repeats must be integers (got {counts.dtype})")
            n = x.shape[axis]
            if counts.ndim > 1 or counts.size not in (1, n):
                raise ValueError(
                    f"repeat: {counts.size} repeat counts for an axis of {n} (shape {x.shape})"
                )
            if (counts < 0).any():
                raise ValueError("repeat: negative repeat counts")
            pos = np.repeat(np.arange(n, dtype=np.int64), np.broadcast_to(counts.reshape(-1), (n,)))
            return take(x, pos, axis=axis)
    return Tensor(_t(x)._t.repeat(repeats, None if axis is None else operator.index(axis)))


def unstack(x, /, *, axis=0):
    return tuple(Tensor(r) for r in _t(x)._t.unstack(operator.index(axis)))


def tril(x, /, *, k=0):
    return Tensor(_t(x)._t.tril(operator.index(k)))


def triu(x, /, *, k=0):
    return Tensor(_t(x)._t.triu(operator.index(k)))


def meshgrid(*arrays, indexing="xy"):
    return [Tensor(r) for r in _raw.meshgrid([_t(a)._t for a in arrays], indexing)]


def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    if n < 0:
        raise ValueError(f"diff: order n={n} must be non-negative")
    pre = None if prepend is None else _t(prepend)._t
    app = None if append is None else _t(append)._t
    return Tensor(_t(x)._t.diff(n, operator.index(axis), pre, app))


def count_nonzero(x, /, *, axis=None, keepdims=False):
    return Tensor(_t(x)._t.count_nonzero(_axes(axis), builtins.bool(keepdims)))


# ---- sorting -----------------------------------------------------------------------------


def _sort(x, axis, descending, stable, arg):
    x = _t(x)
    if x.ndim == 0:
        from numpy.exceptions import AxisError

        raise AxisError("sort of a 0-d array: it has no axis")
    # Every sort is stable; stable=False allows any order of equal elements, so it is one too.
    return Tensor(x._t.sort(operator.index(axis), builtins.bool(descending), arg))


def sort(x, /, *, axis=-1, descending=False, stable=True):
    """The values sorted along `axis` (stable; NaN last, or first when descending)."""
    return _sort(x, axis, descending, stable, False)


def argsort(x, /, *, axis=-1, descending=False, stable=True):
    """The int64 positions that sort `x` along `axis` (stable)."""
    return _sort(x, axis, descending, stable, True)


# ---- searching and counting --------------------------------------------------------------


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    """For every element of `x2`, its int64 insertion position in the sorted 1-D `x1`: the
    number of elements before it (``side='right'``: before or equal), in numpy's sort order
    (NaN after every number); operands compared in their promoted dtype. ``sorter``: positions
    that sort `x1`. A chunked `x1` is searched chunk by chunk and the positions summed."""
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right' (got {side!r})")
    a = _t(x1)
    if a.ndim != 1:
        raise ValueError(f"searchsorted: x1 must be a 1-D array, got shape {a.shape}")
    if sorter is not None:
        a = take(a, _t(sorter))
    if _is_scalar(x2):
        # A Python number is weak (NEP 50): compared in the dtype numpy would pick.
        v = _asarray(x2, _dtypes.result_type(a, x2), None, None, None, share=False)
    else:
        v = _t(x2)
    return Tensor(a._t.searchsorted(v._t, side == "right"))


def bincount(x, /, weights=None, minlength=0):
    """numpy's bincount: int64 counts of each value ``0..max(x)`` of the 1-D non-negative
    integers `x` (at least `minlength` of them), or float64 sums of `weights`. The length
    depends on the data: `x`'s min and max are executed first."""
    x = _t(x)
    minlength = operator.index(minlength)
    if minlength < 0:
        raise ValueError("'minlength' must not be negative")
    w = None if weights is None else _t(weights)._t
    return Tensor(x._t.bincount(w, minlength))


def histogram(a, bins=10, range=None, density=None, weights=None):
    """numpy's histogram: (counts, edges) over `bins` equal bins of `range` (default: the
    data's min and max, executed first) or over explicit monotonic edges. numpy's arithmetic
    for each element's bin (the last bin includes its right edge; elements outside the range
    count nowhere); counts are int64, or sums in the weights' dtype; ``density=True`` gives
    float64 densities. Bin estimators (``bins='auto'``, ...) are not supported."""
    a = _t(a)
    w = None if weights is None else _t(weights)._t
    if isinstance(bins, str):
        raise NotImplementedError(
            f"histogram: the bin estimator {bins!r} is not supported; pass a bin count or edges"
        )
    if isinstance(bins, Tensor) or np.ndim(bins) > 0:
        edges = _t(bins)
        if edges.ndim != 1:
            raise ValueError("`bins` must be 1d, when an array")
        h, e = a._t.histogram_edges(edges._t, w, builtins.bool(density))
        return Tensor(h), Tensor(e)
    try:
        n = operator.index(bins)
    except TypeError as err:
        raise TypeError("`bins` must be an integer, a string, or an array") from err
    if n < 1:
        raise ValueError("`bins` must be positive, when an integer")
    if range is not None:
        lo, hi = range
        range = (builtins.float(lo), builtins.float(hi))
    h, e = a._t.histogram(n, range, w, builtins.bool(density))
    return Tensor(h), Tensor(e)


def _partition(a, kth, axis, kind, order, arg):
    name = "argpartition" if arg else "partition"
    if order is not None:
        raise TypeError(f"tessera does not implement numpy.{name} with order= (structured arrays)")
    if kind != "introselect":
        raise ValueError(f"{name}: kind must be 'introselect' (got {kind!r})")
    a = _t(a)
    if axis is None:
        a, axis = reshape(a, (-1,)), 0
    if a.ndim == 0:
        from numpy.exceptions import AxisError

        raise AxisError(f"{name} of a 0-d array: it has no axis")
    ks = np.asarray(kth.to_numpy() if isinstance(kth, Tensor) else kth)
    if ks.dtype == np.bool_ or not np.issubdtype(ks.dtype, np.integer) or ks.ndim > 1:
        raise TypeError(f"{name}: kth must be an integer or a 1-D sequence of integers")
    return Tensor(a._t.partition([builtins.int(k) for k in ks.reshape(-1)], operator.index(axis), arg))


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """numpy's partition: each `kth` element where a sort would put it, smaller ones before
    it and larger ones after. Tessera returns the stable sort along `axis`, which satisfies
    numpy's invariants for every `kth` at once (numpy leaves the order within each side
    unspecified). `kth` out of range is a ValueError; ``axis=None`` flattens."""
    return _partition(a, kth, axis, kind, order, False)


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    """numpy's argpartition: int64 positions that partition `a` (the stable argsort, see
    :func:`partition`)."""
    return _partition(a, kth, axis, kind, order, True)


TopKResult = collections.namedtuple("TopKResult", ["values", "indices"])


def topk(x, k, /, *, axis=-1, largest=True):
    """The `k` largest (or smallest) elements along `axis`, best first, and their int64
    positions (ties to the lower position; NaN counts as the largest). A chunked axis is
    reduced chunk by chunk, so only `k` candidates per chunk travel."""
    x = _t(x)
    if x.ndim == 0:
        from numpy.exceptions import AxisError

        raise AxisError("topk of a 0-d array: it has no axis")
    k = operator.index(k)
    if k < 0:
        raise ValueError(f"topk: k must be >= 0 (got {k})")
    v, i = x._t.topk(k, operator.index(axis), builtins.bool(largest))
    return TopKResult(Tensor(v), Tensor(i))


# ---- cumulative sums, gathers, data-dependent lengths ------------------------------------


def _scan_dtype(dtype):
    return None if dtype is None else _dtypes.dtype_name(dtype)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """Running sums along `axis` (required when `x` has more than one dimension)."""
    return _cumulative(x, axis, dtype, include_initial, False)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """Running products along `axis` (required when `x` has more than one dimension)."""
    return _cumulative(x, axis, dtype, include_initial, True)


def _cumulative(x, axis, dtype, include_initial, prod):
    x = _t(x)
    if axis is None:
        if x.ndim > 1:
            raise ValueError(
                f"axis must be given for an array of {x.ndim} dimensions (shape {x.shape})"
            )
        if x.ndim == 0:
            raise ValueError("cumulative sums and products need at least 1 dimension")
        axis = 0
    raw = x._t.scan(prod, operator.index(axis), _scan_dtype(dtype), builtins.bool(include_initial))
    return Tensor(raw)


def cumsum(a, axis=None, dtype=None, out=None):
    """numpy's cumsum: running sums along `axis` (None: of the flattened array). A chunked
    axis is scanned chunk by chunk in parallel, each chunk starting from the totals of the
    chunks before it."""
    if out is not None:
        raise NotImplementedError("cumsum: out= is not supported (tensors are immutable)")
    a = _t(a)
    ax = None if axis is None else operator.index(axis)
    return Tensor(a._t.scan(False, ax, _scan_dtype(dtype), False))


def cumprod(a, axis=None, dtype=None, out=None):
    """numpy's cumprod: running products along `axis` (None: of the flattened array)."""
    if out is not None:
        raise NotImplementedError("cumprod: out= is not supported (tensors are immutable)")
    a = _t(a)
    ax = None if axis is None else operator.index(axis)
    return Tensor(a._t.scan(True, ax, _scan_dtype(dtype), False))


def _index_tensor(indices):
    if isinstance(indices, Tensor):
        return indices
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise IndexError(
                f"arrays used as indices must be of integer type (got {arr.dtype})"
            )
    return _asarray(arr.astype(np.int64, copy=False), None, None, None, None, share=False)


def take(x, indices, /, *, axis=None, out=None, mode="raise"):
    """numpy's and the Array API's take: elements (slices) of `x` along `axis` (None: of the
    flattened array) at the integer `indices`; negative ones count from the end. The indices
    are computed first when they are lazy; each result chunk then reads only the chunks of
    `x` its indices touch."""
    if out is not None:
        raise NotImplementedError("take: out= is not supported (tensors are immutable)")
    if mode != "raise":
        raise NotImplementedError(f"take: mode={mode!r} is not supported (only 'raise')")
    x = _t(x)
    ax = None if axis is None else operator.index(axis)
    return Tensor(x._t.take(_index_tensor(indices)._t, ax))


def take_along_axis(x, indices, /, *, axis=-1):
    """numpy's and the Array API's take_along_axis (axis=None: of the flattened arrays)."""
    x = _t(x)
    idx = _index_tensor(indices)
    if axis is None:
        x = reshape(x, (-1,))
        idx = reshape(idx, (-1,))
        axis = 0
    return Tensor(x._t.take_along_axis(idx._t, operator.index(axis)))


class _Stage:
    """The measuring run behind data-dependent outputs: runs once, when the first of its
    outputs is used."""

    __slots__ = ("fn", "out")

    def __init__(self, fn):
        self.fn = fn
        self.out = None

    def output(self, i):
        if self.out is None:
            self.out = self.fn()
        return self.out[i]


def _dd(stage, shapes_dtypes):
    return tuple(
        Tensor._data_dependent(shape, dtype, stage, i)
        for i, (shape, dtype) in enumerate(shapes_dtypes)
    )


def nonzero(x, /):
    """The coordinates of the non-zero elements, one int64 tensor per dimension (row-major
    order). Their length depends on the data: each shows shape ``(None,)`` until used, when
    the graph up to ``x`` runs once to measure it."""
    x = _t(x)
    if x.ndim == 0:
        raise ValueError(
            "Calling nonzero on 0d arrays is not allowed. Use np.atleast_1d(scalar).nonzero() "
            "instead."
        )
    raw = x._t
    stage = _Stage(lambda: raw.nonzero())
    return _dd(stage, [((None,), np.int64)] * x.ndim)


def flatnonzero(a):
    """numpy's flatnonzero: positions of the non-zero elements of the flattened array."""
    return nonzero(reshape(_t(a), (-1,)))[0]


def argwhere(a):
    """numpy's argwhere: the coordinates of the non-zero elements, one row each (shape
    ``(None, ndim)`` until used)."""
    a = _t(a)
    if a.ndim == 0:
        return argwhere(reshape(a, (1,)))[:, :0]
    raw = a._t
    nd = a.ndim

    def run():
        cs = [Tensor(c) for c in raw.nonzero()]
        return [stack(cs, axis=1)._t]

    return _dd(_Stage(run), [((None, nd), np.int64)])[0]


def _mask_select(x, mask):
    x = _t(x)
    m = mask if isinstance(mask, Tensor) else _asarray(np.asarray(mask), None, None, None, None, share=False)
    if m.ndim > x.ndim:
        raise IndexError(
            f"too many indices for array: array is {x.ndim}-dimensional, but the boolean "
            f"mask is {m.ndim}-dimensional"
        )
    if tuple(m.shape) != tuple(x.shape[: m.ndim]):
        for a, (d, md) in enumerate(zip(x.shape, m.shape)):
            if d != md:
                raise IndexError(
                    f"boolean index did not match indexed array along axis {a}; size of axis "
                    f"is {d} but size of corresponding boolean axis is {md}"
                )
    raw, mraw = x._t, m._t
    shape = (None,) + tuple(x.shape[m.ndim:])
    return _dd(_Stage(lambda: [raw.mask_select(mraw)]), [(shape, x.dtype)])[0]


UniqueAllResult = collections.namedtuple(
    "UniqueAllResult", ["values", "indices", "inverse_indices", "counts"]
)
UniqueCountsResult = collections.namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = collections.namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


def _unique(x, equal_nan):
    """[values, indices, inverse, counts] as data-dependent tensors sharing one stage."""
    x = _t(x)
    raw = x._t
    stage = _Stage(lambda: raw.unique(builtins.bool(equal_nan)))
    return _dd(
        stage,
        [((None,), x.dtype), ((None,), np.int64), (tuple(x.shape), np.int64), ((None,), np.int64)],
    )


def unique_all(x, /):
    """The Array API's unique_all over the flattened array: sorted distinct values (each NaN
    its own), first indices, inverse indices (the shape of `x`), counts. Lengths depend on
    the data (shape ``(None,)`` until used); the sort runs once."""
    v, i, inv, c = _unique(x, False)
    return UniqueAllResult(v, i, inv, c)


def unique_counts(x, /):
    v, _, _, c = _unique(x, False)
    return UniqueCountsResult(v, c)


def unique_inverse(x, /):
    v, _, inv, _ = _unique(x, False)
    return UniqueInverseResult(v, inv)


def unique_values(x, /):
    return _unique(x, False)[0]


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *, equal_nan=True, sorted=True):
    """numpy's unique over the flattened array (NaNs one value unless ``equal_nan=False``)."""
    if axis is not None:
        raise NotImplementedError("unique: axis= is not supported (only the flattened array)")
    v, i, inv, c = _unique(ar, equal_nan)
    out = [v]
    if return_index:
        out.append(i)
    if return_inverse:
        out.append(inv)
    if return_counts:
        out.append(c)
    return out[0] if len(out) == 1 else tuple(out)


# ---- matrix products ---------------------------------------------------------------------


def matmul(x1, x2, /):
    a, b = _t(x1), _t(x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: operands must not be 0-d (use * for scalars)")
    return Tensor(a._t.matmul(b._t))


def dot(a, b, out=None):
    if out is not None:
        raise NotImplementedError("dot: out= is not supported (tensors are immutable)")
    a, b = _t(a), _t(b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)  # noqa: F821
    return Tensor(a._t.dot(b._t))


def tensordot(x1, x2, /, *, axes=2):
    a, b = _t(x1), _t(x2)
    if isinstance(axes, int):
        if axes < 0:
            raise ValueError("tensordot: axes must be non-negative")
        aa = list(range(a.ndim - axes, a.ndim))
        bb = list(range(axes))
    else:
        aa, bb = axes
        aa = _axes(aa)
        bb = _axes(bb)
    return Tensor(a._t.tensordot(b._t, aa, bb))


def vecdot(x1, x2, /, *, axis=-1):
    return Tensor(_t(x1)._t.vecdot(_t(x2)._t, operator.index(axis)))


def outer(a, b):
    a, b = _t(a).reshape(-1), _t(b).reshape(-1)
    return multiply(a.reshape(-1, 1), b.reshape(1, -1))  # noqa: F821


def inner(a, b):
    return tensordot(a, b, axes=([-1], [-1]))


# ---- misc --------------------------------------------------------------------------------


def shape(x):
    return _t(x).shape


def ndim(x):
    return _t(x).ndim


def size(x):
    return _t(x).size


def _setitem(x, key, value):
    """``x[key] = value`` for basic indexing with unit steps: the new value of ``x`` is built
    by concatenating the untouched slabs around the updated region, axis by axis."""
    from ._tensor import _array_key, _index_items

    mask = _array_key(key)
    if mask is not None and mask.dtype == _dtypes.bool and tuple(mask.shape) == tuple(x.shape):
        # x[mask] = value with a mask of x's shape: a where, no data-dependent length.
        v = value if _is_scalar(value) else _t(value)
        if not _is_scalar(v) and v.ndim > 0:
            raise NotImplementedError(
                "x[mask] = array: only a scalar or 0-d value is supported for a boolean mask"
            )
        return astype(where(mask, v, x), x.dtype, copy=False)
    items = _index_items(key)
    # Expand the key to one slice per axis.
    n_ell = builtins.sum(1 for k in items if k is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if builtins.any(k is None for k in items):
        raise NotImplementedError("setitem: None in the index is not supported")
    consumed = builtins.sum(1 for k in items if k is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for tensor: tensor is {x.ndim}-dimensional, but {consumed} were indexed")
    full_key = []
    for k in items:
        if k is Ellipsis:
            full_key += [slice(None)] * (x.ndim - consumed)
        else:
            full_key.append(k)
    full_key += [slice(None)] * (x.ndim - len(full_key))
    bounds = []
    for ax, k in enumerate(full_key):
        n = x.shape[ax]
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step != 1:
                raise NotImplementedError("setitem: slices with a step other than 1 are not supported yet")
            stop = builtins.max(stop, start)
            bounds.append((start, stop, False))
        else:
            i = operator.index(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {ax} with size {n}")
            i %= n
            bounds.append((i, i + 1, True))
    region = [hi - lo for lo, hi, _ in bounds]
    v = (
        value
        if isinstance(value, Tensor)
        else _asarray(value, x.dtype, None, None, None, share=False)
        if not _is_scalar(value)
        else None
    )
    if v is None:
        v = full(region, value, dtype=x.dtype) if not isinstance(value, float) or x.dtype.kind == "f" else astype(full(region, value), x.dtype)
    else:
        if v.dtype != x.dtype:
            v = astype(v, x.dtype)
        # The value broadcasts against the indexed shape (integer axes dropped).
        kept = [r for r, (_, _, drop) in zip(region, bounds) if not drop]
        v = broadcast_to(v, kept).reshape(region)
    if builtins.any(r == 0 for r in region):
        return x
    # Rebuild from the innermost axis outwards: at each axis, the slab of x around the region.
    def build(ax):
        if ax == x.ndim:
            return v
        lo, hi, _ = bounds[ax]
        inner = build(ax + 1)
        # Slices of x restricted to the region on the axes before `ax`.
        parts = []
        n = x.shape[ax]
        pre = [slice(b[0], b[1]) for b in bounds[:ax]]
        if lo > 0:
            parts.append(x[tuple(pre + [slice(0, lo)])])
        parts.append(inner)
        if hi < n:
            parts.append(x[tuple(pre + [slice(hi, n)])])
        return parts[0] if len(parts) == 1 else concat(parts, axis=ax)

    return build(0)
