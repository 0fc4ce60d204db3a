"""Dtype objects and the Array API's data type functions.

Tessera's dtypes are numpy's dtype objects (``ts.float32 is np.dtype("float32")``), so numpy
code that compares ``x.dtype == np.float64`` keeps working. Tessera computes in bool, int32,
int64, float32 and float64; the other numpy dtypes are named so that code mentioning them
imports, and a tensor of one of them is a ``TypeError`` naming the dtype (issue 22 adds them).
"""

import numpy as np

bool = np.dtype("bool")  # noqa: A001 - the Array API's name
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
uint16 = np.dtype("uint16")
uint32 = np.dtype("uint32")
uint64 = np.dtype("uint64")
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
complex64 = np.dtype("complex64")
complex128 = np.dtype("complex128")

SUPPORTED = (bool, int32, int64, float32, float64)
_SUPPORTED_NAMES = frozenset(d.name for d in SUPPORTED)

# What a Python scalar becomes when nothing else decides (numpy's defaults).
DEFAULT_INT = int64
DEFAULT_FLOAT = float64


def dtype_name(dtype):
    """The runtime's name of ``dtype`` (a dtype object, a numpy type, or a name); ``TypeError``
    for a dtype Tessera does not compute in."""
    if dtype is None:
        return None
    try:
        d = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"data type {dtype!r} not understood") from e
    if d.name not in _SUPPORTED_NAMES:
        raise TypeError(
            f"dtype {d.name} is not supported by tessera (it computes in bool, int32, int64, "
            "float32 and float64)"
        )
    return d.name


def as_dtype(dtype):
    return np.dtype(dtype_name(dtype))


class finfo_object:
    """Machine limits of a float dtype (the Array API's ``finfo`` fields)."""

    def __init__(self, dtype):
        f = np.finfo(dtype)
        self.bits = int(f.bits)
        self.eps = float(f.eps)
        self.max = float(f.max)
        self.min = float(f.min)
        self.smallest_normal = float(f.smallest_normal)
        self.dtype = np.dtype(dtype)

    def __repr__(self):
        return f"finfo(dtype={self.dtype.name}, bits={self.bits}, eps={self.eps}, max={self.max})"


class iinfo_object:
    """Machine limits of an integer dtype (the Array API's ``iinfo`` fields)."""

    def __init__(self, dtype):
        i = np.iinfo(dtype)
        self.bits = int(i.bits)
        self.max = int(i.max)
        self.min = int(i.min)
        self.dtype = np.dtype(dtype)

    def __repr__(self):
        return f"iinfo(dtype={self.dtype.name}, bits={self.bits}, min={self.min}, max={self.max})"


def _dtype_of(x):
    d = getattr(x, "dtype", None)
    if d is not None:
        return np.dtype(d)
    return np.dtype(x)


def finfo(type, /):  # noqa: A002
    d = _dtype_of(type)
    if d.kind not in "fc":
        raise ValueError(f"finfo: {d.name} is not a floating-point dtype")
    return finfo_object(d)


def iinfo(type, /):  # noqa: A002
    d = _dtype_of(type)
    if d.kind not in "iu":
        raise ValueError(f"iinfo: {d.name} is not an integer dtype")
    return iinfo_object(d)


_KINDS = {
    "bool": lambda d: d.kind == "b",
    "signed integer": lambda d: d.kind == "i",
    "unsigned integer": lambda d: d.kind == "u",
    "integral": lambda d: d.kind in "iu",
    "real floating": lambda d: d.kind == "f",
    "complex floating": lambda d: d.kind == "c",
    "numeric": lambda d: d.kind in "iufc",
}


def isdtype(dtype, kind):
    """The Array API's ``isdtype``: is ``dtype`` of ``kind`` (a dtype, a kind name, or a tuple
    of them)."""
    if not isinstance(dtype, np.dtype):
        raise TypeError(f"isdtype: expected a dtype object, got {type(dtype).__name__}")
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ValueError(f"isdtype: unknown kind {kind!r}")
        return _KINDS[kind](dtype)
    return dtype == np.dtype(kind)


def _np_operand(x):
    """What numpy's promotion functions should see for ``x``: a dtype for tensors and arrays,
    the Python scalar itself (a "weak" scalar under NEP 50)."""
    if isinstance(x, (builtins_bool, int, float, complex)):
        return x
    return _dtype_of(x)


import builtins  # noqa: E402

builtins_bool = builtins.bool


def result_type(*arrays_and_dtypes):
    """The dtype numpy 2 (NEP 50) gives an operation on these operands; Python scalars are
    weak."""
    if not arrays_and_dtypes:
        raise ValueError("result_type: at least one array or dtype is required")
    ops = [_np_operand(x) for x in arrays_and_dtypes]
    if all(isinstance(o, (builtins_bool, int, float, complex)) for o in ops):
        raise ValueError("result_type: at least one array or dtype is required")
    return np.result_type(*ops)


def can_cast(from_, to, /):
    """Whether ``from_`` casts to ``to`` under the "safe" rule."""
    return builtins_bool(np.can_cast(_dtype_of(from_), np.dtype(to), casting="safe"))
