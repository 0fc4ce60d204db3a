"""sort / argsort against numpy: every dtype, ties and NaN, every axis, both directions, chunked
inputs; numpy's functions and methods on tensors."""

import numpy as np
import pytest

import tessera as ts


def stable_desc_argsort(x, axis):
    """Stable descending positions: NaN first, then numbers largest first, ties in input order."""
    def lane(v):
        keyed = [((0 if np.isnan(e) else 1) if v.dtype.kind == "f" else 1,
                  -float(e) if not (v.dtype.kind == "f" and np.isnan(e)) else 0.0, i)
                 for i, e in enumerate(v)]
        return np.array([i for *_, i in sorted(keyed)], dtype=np.int64)
    return np.apply_along_axis(lane, axis, x)


@pytest.fixture
def data(rng):
    def make(dtype, shape):
        if dtype == np.bool_:
            return rng.random(shape) < 0.4
        if np.dtype(dtype).kind == "i":
            return rng.integers(-3, 4, shape).astype(dtype)
        x = (rng.integers(-4, 5, shape) * 0.5).astype(dtype)
        x[rng.random(shape) < 0.1] = np.nan
        return x
    return make


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("shape,chunks", [((23,), (5,)), ((7, 9), (3, 4)), ((3, 4, 5), (2, 4, 2))])
def test_sort_argsort_match_numpy(data, dtype, shape, chunks):
    x = data(dtype, shape)
    t = ts.asarray(x, chunk_size=chunks)
    for axis in range(-len(shape), len(shape)):
        want = np.argsort(x, axis=axis, kind="stable")
        got = np.asarray(ts.argsort(t, axis=axis))
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.asarray(ts.sort(t, axis=axis)), np.sort(x, axis=axis, kind="stable"))
        want_d = stable_desc_argsort(x, axis)
        np.testing.assert_array_equal(np.asarray(ts.argsort(t, axis=axis, descending=True)), want_d)
        np.testing.assert_array_equal(
            np.asarray(ts.sort(t, axis=axis, descending=True)), np.take_along_axis(x, want_d, axis))


def test_numpy_functions_and_methods(rng):
    x = rng.standard_normal((6, 5))
    t = ts.asarray(x)
    r = np.sort(t)
    assert isinstance(r, ts.Tensor)
    np.testing.assert_array_equal(np.asarray(r), np.sort(x))
    np.testing.assert_array_equal(np.asarray(np.sort(t, axis=None)), np.sort(x, axis=None))
    np.testing.assert_array_equal(np.asarray(np.argsort(t, axis=0)), np.argsort(x, axis=0, kind="stable"))
    np.testing.assert_array_equal(np.asarray(t.argsort(0)), np.argsort(x, axis=0, kind="stable"))
    t.sort(axis=0)
    np.testing.assert_array_equal(np.asarray(t), np.sort(x, axis=0))
    with pytest.raises(TypeError, match="order"):
        np.sort(ts.asarray(x), order="f0")


def test_errors():
    with pytest.raises(np.exceptions.AxisError):
        ts.sort(ts.asarray(1.5))
    with pytest.raises(np.exceptions.AxisError):
        ts.argsort(ts.ones((2, 3)), axis=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_topk_matches_a_stable_sort(data, dtype):
    x = data(dtype, (9, 40))
    t = ts.asarray(x, chunk_size=(4, 7))  # 6 chunks along the axis: partials merged up a tree
    for axis in (0, 1, -1):
        n = x.shape[axis]
        for k in (0, 1, 5, n):
            for largest in (True, False):
                order = stable_desc_argsort(x, axis) if largest else np.argsort(x, axis=axis, kind="stable")
                want_i = np.take(order, np.arange(k), axis=axis)
                r = ts.topk(t, k, axis=axis, largest=largest)
                got_i = np.asarray(r.indices)
                assert got_i.dtype == np.int64
                np.testing.assert_array_equal(got_i, want_i)
                np.testing.assert_array_equal(np.asarray(r.values), np.take_along_axis(x, want_i, axis))


def test_topk_errors():
    with pytest.raises(ValueError, match="k = 5"):
        ts.topk(ts.ones((3, 4)), 5, axis=1)
    with pytest.raises(ValueError, match="k must be"):
        ts.topk(ts.ones((3, 4)), -1)
    with pytest.raises(np.exceptions.AxisError):
        ts.topk(ts.asarray(2.0), 1)
