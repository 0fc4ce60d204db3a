"""Creation functions, random draws and conversion from numpy."""

import numpy as np
import pytest

import tessera as ts
from conftest import close


def test_creation(mode):
    close(ts.zeros((3, 4)), np.zeros((3, 4)))
    close(ts.ones(5, dtype=ts.int32), np.ones(5, dtype=np.int32))
    close(ts.full((2, 2), 7), np.full((2, 2), 7))
    close(ts.full((2, 2), 1.5, dtype=ts.float32), np.full((2, 2), 1.5, dtype=np.float32))
    close(ts.arange(10, chunk_size=3), np.arange(10))
    close(ts.arange(1.0, 2.0, 0.1), np.arange(1.0, 2.0, 0.1))
    close(ts.arange(5, 0, -1), np.arange(5, 0, -1))
    close(ts.linspace(0, 1, 7), np.linspace(0, 1, 7))
    close(ts.linspace(0, 1, 7, endpoint=False), np.linspace(0, 1, 7, endpoint=False))
    close(ts.eye(4, 5, k=1), np.eye(4, 5, k=1))
    x = ts.ones((2, 3), dtype=ts.float32)
    close(ts.zeros_like(x), np.zeros((2, 3), np.float32))
    close(ts.full_like(x, 4), np.full((2, 3), 4, np.float32))
    close(ts.empty((2, 0)), np.empty((2, 0)))


def test_asarray(rng, mode):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    close(ts.asarray(x), x)
    close(ts.asarray(x[::2, ::-1]), x[::2, ::-1])  # any strides
    close(ts.asarray([[1, 2], [3, 4]]), np.asarray([[1, 2], [3, 4]]))
    close(ts.asarray(2.5), np.asarray(2.5))
    close(ts.asarray([True, False]), np.asarray([True, False]))
    close(ts.asarray(x, dtype=ts.float64), x.astype(np.float64))
    with pytest.raises(TypeError, match="int8"):
        ts.asarray(np.zeros(3, dtype=np.int8))
    with pytest.raises(OverflowError):
        ts.asarray(2**70)


def test_random_is_reproducible_and_chunking_independent():
    a = ts.random.default_rng(7).random((50, 40), chunk_size=7).to_numpy()
    b = ts.random.default_rng(7).random((50, 40), chunk_size=(50, 40)).to_numpy()
    assert (a == b).all()
    assert 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.05
    g = ts.random.default_rng(1)
    n = g.standard_normal(100_000).to_numpy()
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    i = g.integers(3, 9, size=1000).to_numpy()
    assert i.min() == 3 and i.max() == 8 and i.dtype == np.int64
    ts.random.seed(3)
    u = ts.random.rand(4, 4).to_numpy()
    ts.random.seed(3)
    assert (ts.random.rand(4, 4).to_numpy() == u).all()


def test_monte_carlo_pi():
    g = ts.random.default_rng(0)
    n = 1_000_000
    x = g.random(n, dtype=ts.float32, chunk_size=250_000)
    y = g.random(n, dtype=ts.float32, chunk_size=250_000)
    pi = 4 * ((x * x + y * y) < 1).sum() / n
    assert abs(float(pi) - np.pi) < 0.01


def test_asarray_copy_is_not_rebound_by_setitem():
    x = ts.asarray(np.zeros(3))
    y = ts.asarray(x, copy=True)
    x[0] = 1.0
    assert float(y[0]) == 0.0 and float(x[0]) == 1.0
