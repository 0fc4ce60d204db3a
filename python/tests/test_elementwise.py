"""Elementwise functions and operators against numpy, at several chunkings, lazy and eager."""

import operator

import numpy as np
import pytest

import tessera as ts
from conftest import CHUNKS, close

UNARY_FLOAT = ["sqrt", "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "arcsin",
               "arccos", "arctan", "floor", "ceil", "round", "negative", "absolute", "sign",
               "isnan", "isinf", "isfinite"]
BINARY = ["add", "subtract", "multiply", "true_divide", "floor_divide", "remainder", "maximum",
          "minimum", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]


def sample(rng, shape, dtype):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in ("int32", "int64"):
        return rng.integers(-50, 50, shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    return x


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("name", UNARY_FLOAT)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary(rng, mode, name, dtype, chunk):
    x = sample(rng, (7, 5), dtype)
    if name in ("sqrt", "log", "log1p"):
        x = np.abs(x)
    if name in ("arcsin", "arccos"):
        x = np.clip(x, -1, 1)
    t = ts.asarray(x, chunk_size=chunk)
    with np.errstate(all="ignore"):
        expected = getattr(np, name)(x)
    close(getattr(ts, name)(t), expected)
    # numpy's functions on a tensor give a lazy tensor.
    r = getattr(np, name)(t)
    assert isinstance(r, ts.Tensor)
    close(r, expected)


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("dtypes", [("float64", "float64"), ("float32", "float32"),
                                    ("int32", "int64"), ("int64", "float32"), ("bool", "int32")])
def test_binary(rng, mode, name, dtypes, chunk):
    a = sample(rng, (6, 4), dtypes[0])
    b = sample(rng, (4,), dtypes[1])
    if name in ("floor_divide", "remainder", "true_divide"):
        b = np.where(b == 0, 3, b).astype(b.dtype)
    ta, tb = ts.asarray(a, chunk_size=chunk), ts.asarray(b)
    with np.errstate(all="ignore"):
        expected = getattr(np, name)(a, b)
    close(getattr(ts, name)(ta, tb), expected)


OPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
       operator.mod, operator.pow, operator.lt, operator.le, operator.gt, operator.ge,
       operator.eq, operator.ne]


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.__name__)
@pytest.mark.parametrize("scalar", [3, 2.5, True])
def test_operators_with_python_scalars(rng, mode, op, scalar):
    # NEP 50: the Python scalar is weak; the tensor's dtype decides.
    for dtype in ["float32", "int32", "int64", "float64"]:
        x = sample(rng, (5, 3), dtype)
        if op is operator.pow and dtype.startswith("int"):
            x = np.abs(x) % 4
        if isinstance(scalar, bool) and op in (operator.truediv, operator.floordiv, operator.mod):
            continue
        t = ts.asarray(x, chunk_size=2)
        with np.errstate(all="ignore"):
            close(op(t, scalar), op(x, scalar))
            if op is not operator.pow:
                y = np.where(x == 0, 1, x).astype(x.dtype)
                close(op(scalar, ts.asarray(y)), op(scalar, y))


def test_inplace_rebinds_and_keeps_dtype(rng, mode):
    x = sample(rng, (4, 4), "float32")
    t = ts.asarray(x)
    before = t
    t += 1
    t *= 2.0
    t -= ts.asarray(x)
    assert t is before and t.dtype == np.float32
    close(t, (x + 1) * 2 - x)
    i = ts.asarray(np.arange(6, dtype=np.int32))
    with pytest.raises(TypeError):
        i += 1.5  # numpy: Cannot cast ufunc 'add' output from float64 to int32


def test_unary_operators(rng, mode):
    x = sample(rng, (3, 5), "float64")
    t = ts.asarray(x, chunk_size=2)
    close(-t, -x)
    close(abs(t), abs(x))
    close(+t, +x)
    b = x > 0
    tb = ts.asarray(b)
    close(~tb, ~b)
    close(tb & (t < 0.5), b & (x < 0.5))
    close(tb | (t < 0.5), b | (x < 0.5))
    close(tb ^ (t < 0.5), b ^ (x < 0.5))


def test_comparisons_with_out_of_range_python_ints(mode):
    y = ts.asarray(np.array([-4, 9, 1], dtype=np.int32))
    close(y >= -(2**63), np.array([-4, 9, 1], dtype=np.int32) >= -(2**63))
    with pytest.raises(OverflowError):
        (y + 2**40).execute()


def test_where_and_clip(rng, mode):
    x = sample(rng, (5, 6), "float32")
    t = ts.asarray(x, chunk_size=(2, 4))
    close(ts.where(t > 0, t, 0.0), np.where(x > 0, x, np.float32(0)))
    close(ts.clip(t, -0.5, 0.5), np.clip(x, -0.5, 0.5))
    close(t.clip(-0.5), np.clip(x, -0.5, None))
    close(np.clip(t, -1, 1), np.clip(x, -1, 1))
