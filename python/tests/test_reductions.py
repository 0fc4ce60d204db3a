"""Reductions against numpy: axes, keepdims, dtype, ddof/correction, at several chunkings."""

import numpy as np
import pytest

import tessera as ts
from conftest import CHUNKS, close

AXES = [None, 0, 1, -1, (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("name", ["sum", "prod", "mean", "var", "std", "min", "max"])
def test_float_reductions(rng, mode, name, axis, chunk):
    x = rng.standard_normal((4, 5, 3))
    t = ts.asarray(x, chunk_size=chunk)
    for keepdims in (False, True):
        close(getattr(ts, name)(t, axis=axis, keepdims=keepdims),
              getattr(np, name)(x, axis=axis, keepdims=keepdims), "float32")
    # The method form and numpy's function form.
    close(getattr(t, name)(axis=axis), getattr(np, name)(x, axis=axis), "float32")
    r = getattr(np, name)(t, axis=axis)
    assert isinstance(r, ts.Tensor)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_int_and_bool_reductions(rng, mode, chunk):
    x = rng.integers(-9, 9, (6, 7)).astype(np.int32)
    t = ts.asarray(x, chunk_size=chunk)
    close(ts.sum(t), np.sum(x))  # int64, as numpy
    close(ts.sum(t, axis=0, dtype=ts.int32), np.sum(x, axis=0, dtype=np.int32))
    close(ts.max(t, axis=1), np.max(x, axis=1))
    close(ts.any(t > 5, axis=0), np.any(x > 5, axis=0))
    close(ts.all(t > -9), np.all(x > -9))
    close(ts.argmax(t, axis=1), np.argmax(x, axis=1))
    close(ts.argmin(t), np.argmin(x))
    close(ts.argmax(t, axis=0, keepdims=True), np.argmax(x, axis=0, keepdims=True))
    close(ts.count_nonzero(t, axis=0), np.count_nonzero(x, axis=0))


def test_ddof_and_correction(rng, mode):
    x = rng.standard_normal((9, 4)).astype(np.float32)
    t = ts.asarray(x, chunk_size=2)
    close(ts.var(t, axis=0, correction=1), np.var(x, axis=0, ddof=1))
    close(t.std(ddof=2), x.std(ddof=2))
    close(np.std(t, axis=1, ddof=1), np.std(x, axis=1, ddof=1))


def test_seed_expression(rng, mode):
    a = rng.random((60, 60)).astype(np.float32)
    t = ts.asarray(a, chunk_size=25)
    close((t.dot(t.T) - t).std(), (a.astype(np.float64) @ a.T - a).std().astype(np.float32))


def test_empty_min_is_value_error(mode):
    with pytest.raises(ValueError):
        ts.max(ts.zeros((0, 3)), axis=0).execute()


def test_fractional_correction(rng, mode):
    x = rng.standard_normal((7, 3))
    t = ts.asarray(x, chunk_size=2)
    close(ts.var(t, axis=0, correction=0.5), np.var(x, axis=0, ddof=0.5))
    close(ts.std(t, correction=1.5, keepdims=True), np.std(x, ddof=1.5, keepdims=True))
