"""cumsum/cumprod, take/take_along_axis, integer and boolean indexing, nonzero/argwhere and
unique against numpy on chunked inputs; data-dependent shapes show None until used."""

import numpy as np
import pytest

import tessera as ts


def ties(rng, shape, dtype=np.float64):
    x = (rng.integers(-3, 4, shape) * 0.5).astype(dtype)
    if np.dtype(dtype).kind == "f":
        x[rng.random(shape) < 0.1] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
def test_cumsum_cumprod_match_numpy(rng, dtype):
    if dtype == np.bool_:
        x = rng.random((7, 9)) < 0.5
    elif np.dtype(dtype).kind == "i":
        x = rng.integers(-3, 4, (7, 9)).astype(dtype)
    else:
        x = rng.uniform(0.5, 1.5, (7, 9)).astype(dtype)
    t = ts.asarray(x, chunk_size=(3, 4))
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
    for axis in (None, 0, 1, -1):
        for f in ("cumsum", "cumprod"):
            want = getattr(np, f)(x, axis=axis)
            got = np.asarray(getattr(ts, f)(t, axis=axis))
            assert got.dtype == want.dtype, (f, axis)
            np.testing.assert_allclose(got, want, **tol)
            # numpy's function and the method on a tensor
            np.testing.assert_allclose(np.asarray(getattr(np, f)(t, axis=axis)), want, **tol)
            np.testing.assert_allclose(np.asarray(getattr(t, f)(axis=axis)), want, **tol)
    # The Array API's names: include_initial, axis required past 1-D.
    got = np.asarray(ts.cumulative_sum(t, axis=1, include_initial=True))
    want = np.concatenate([np.zeros((7, 1), dtype=np.cumsum(x).dtype), np.cumsum(x, axis=1)], axis=1)
    np.testing.assert_allclose(got, want, **tol)
    with pytest.raises(ValueError):
        ts.cumulative_sum(t)


def test_take_and_integer_indexing(rng):
    x = rng.standard_normal((13, 7))
    t = ts.asarray(x, chunk_size=(4, 3))
    idx = rng.integers(-13, 13, 10)
    np.testing.assert_array_equal(np.asarray(ts.take(t, idx, axis=0)), np.take(x, idx, axis=0))
    np.testing.assert_array_equal(np.asarray(t[idx]), x[idx])
    np.testing.assert_array_equal(np.asarray(t[list(idx)]), x[list(idx)])
    cols = rng.integers(0, 7, (2, 3))
    np.testing.assert_array_equal(np.asarray(t[:, cols]), x[:, cols])
    np.testing.assert_array_equal(np.asarray(np.take(t, cols, axis=1)), np.take(x, cols, axis=1))
    np.testing.assert_array_equal(np.asarray(t.take(idx)), x.take(idx))
    # The indices may be a lazy tensor (computed first).
    lazy = ts.asarray(idx) * 1
    np.testing.assert_array_equal(np.asarray(ts.take(t, lazy, axis=0)), x[idx])
    assert np.asarray(ts.take(t, 3)).shape == np.take(x, 3).shape
    with pytest.raises(IndexError, match="out of bounds"):
        ts.take(t, [13], axis=0)
    with pytest.raises(IndexError):
        t[np.array([0.5])]


def test_take_along_axis_with_argsort(rng):
    x = ties(rng, (6, 11))
    t = ts.asarray(x, chunk_size=(2, 4))
    for axis in (0, 1):
        p = ts.argsort(t, axis=axis)
        got = np.asarray(ts.take_along_axis(t, p, axis=axis))
        np.testing.assert_array_equal(got, np.sort(x, axis=axis))
    idx = rng.integers(-11, 11, (6, 3))
    np.testing.assert_array_equal(
        np.asarray(np.take_along_axis(t, idx, axis=1)), np.take_along_axis(x, idx, axis=1)
    )
    with pytest.raises(IndexError):
        np.asarray(ts.take_along_axis(t, np.full((6, 1), 11), axis=1))


@pytest.mark.parametrize("shape,chunks", [((29,), (6,)), ((5, 6, 7), (2, 3, 4))])
def test_nonzero_argwhere_and_masks(rng, shape, chunks):
    x = rng.integers(-1, 2, shape).astype(np.float32)
    t = ts.asarray(x, chunk_size=chunks)
    nz = ts.nonzero(t)
    assert len(nz) == len(shape)
    # The length is not known until the stage runs: None, never a wrong number.
    assert nz[0].shape == (None,) and nz[0].size is None
    for g, w in zip(nz, np.nonzero(x)):
        got = np.asarray(g)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, w)
    np.testing.assert_array_equal(np.asarray(np.argwhere(t)), np.argwhere(x))
    np.testing.assert_array_equal(np.asarray(np.flatnonzero(t)), np.flatnonzero(x))
    np.testing.assert_array_equal(np.asarray(ts.where(t > 0)[0]), np.where(x > 0)[0])
    m = t[t > 0]
    assert m.shape == (None,)
    # len() needs a number: it runs the measuring stage, after which the shape is known.
    k = t[t > 0]
    assert len(k) == int((x > 0).sum()) and k.shape == (int((x > 0).sum()),)
    np.testing.assert_array_equal(np.asarray(m), x[x > 0])
    # Downstream ops on a data-dependent result.
    np.testing.assert_allclose(float((t[t > 0] * 2).sum()), float((x[x > 0] * 2).sum()))
    # A mask over the leading axis keeps rows.
    rows = rng.random(shape[0]) < 0.5
    np.testing.assert_array_equal(np.asarray(t[rows]), x[rows])
    np.testing.assert_array_equal(np.asarray(t[ts.asarray(rows)]), x[rows])
    with pytest.raises(IndexError, match="did not match"):
        t[np.ones(shape[0] + 1, bool)]
    with pytest.raises(ValueError):
        ts.nonzero(ts.asarray(1.0))


def test_mask_assignment(rng):
    x = rng.standard_normal((8, 5))
    t = ts.asarray(x, chunk_size=(3, 2))
    t[t < 0] = 0
    y = x.copy()
    y[y < 0] = 0
    np.testing.assert_array_equal(np.asarray(t), y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
def test_unique_family(rng, dtype):
    x = ties(rng, (9, 7), dtype) if dtype != np.bool_ else rng.random((9, 7)) < 0.5
    t = ts.asarray(x, chunk_size=(4, 3))
    # numpy's unique: NaNs are one value.
    v, i, inv, c = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    gv, gi, ginv, gc = ts.unique(t, return_index=True, return_inverse=True, return_counts=True)
    assert gv.shape == (None,)
    np.testing.assert_array_equal(np.asarray(gv), v)
    np.testing.assert_array_equal(np.asarray(gi), i)
    np.testing.assert_array_equal(np.asarray(ginv), inv)
    np.testing.assert_array_equal(np.asarray(gc), c)
    # The Array API's: each NaN its own value.
    ua = ts.unique_all(t)
    wa = np.unique_all(x)
    for f in ("values", "indices", "inverse_indices", "counts"):
        np.testing.assert_array_equal(np.asarray(getattr(ua, f)), getattr(wa, f), err_msg=f)
    # numpy's unique_values may leave integers unsorted (a hash table); the set is the same.
    np.testing.assert_array_equal(np.asarray(ts.unique_values(t)), np.sort(np.unique_values(x)))
    uc, wc = np.unique_counts(t), np.unique_counts(x)
    order = np.argsort(wc.values, kind="stable")
    np.testing.assert_array_equal(np.asarray(uc.counts), wc.counts[order])
    # Empty and one-element inputs.
    for small in (np.zeros(0, dtype), np.ones(1, dtype)):
        np.testing.assert_array_equal(np.asarray(ts.unique(ts.asarray(small))), np.unique(small))


def test_vectorized_indexing_and_repeat_counts(rng):
    x = rng.standard_normal((4, 5, 6))
    t = ts.asarray(x, chunk_size=(3, 2, 4))
    i = rng.integers(-4, 4, (2, 3))
    j = rng.integers(0, 5, (3,))
    np.testing.assert_array_equal(np.asarray(t[i, j]), x[i, j])
    np.testing.assert_array_equal(np.asarray(t[1, j]), x[1, j])
    np.testing.assert_array_equal(np.asarray(t[i, 2, j]), x[i, 2, j])
    with pytest.raises(IndexError, match="out of bounds"):
        t[np.array([0]), np.array([5])]
    with pytest.raises(IndexError, match="broadcast"):
        t[np.array([0, 1]), np.array([0, 1, 2])]
    counts = rng.integers(0, 3, 5)
    np.testing.assert_array_equal(np.asarray(ts.repeat(t, counts, axis=1)), np.repeat(x, counts, axis=1))
    np.testing.assert_array_equal(np.asarray(np.repeat(t, [2], axis=0)), np.repeat(x, [2], axis=0))
    with pytest.raises(ValueError):
        ts.repeat(t, np.array([1, 2]), axis=1)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_sample_sort_past_one_chunk(rng, dtype):
    # 20,000 elements with chunks of 2,000: the sample sort (pivots, counts, buckets).
    x = ties(rng, (20_000,), dtype) if dtype == np.float32 else rng.integers(0, 5, 20_000)
    with ts.config(chunk_size=2_000 * np.dtype(dtype).itemsize):
        t = ts.asarray(x, chunk_size=3_000)
        for descending in (False, True):
            got = np.asarray(ts.argsort(t, descending=descending))
            want = np.argsort(-x if descending else x, kind="stable")
            if dtype == np.float32 and descending:
                # NaN first when descending, ties in input order.
                want = stable_desc(x)
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.asarray(ts.sort(t)), np.sort(x, kind="stable"))
        np.testing.assert_array_equal(np.asarray(ts.unique(t)), np.unique(x))


def stable_desc(x):
    nan = np.isnan(x)
    order = np.argsort(-np.where(nan, 0, x), kind="stable")
    order = order[~nan[order]]
    return np.concatenate([np.flatnonzero(nan), order])
