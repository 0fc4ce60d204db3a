"""searchsorted, bincount, histogram, partition/argpartition against numpy: random inputs,
ties and NaN, chunked operands (down to one element per chunk); numpy's functions and methods
on tensors; numpy's errors."""

import warnings

import numpy as np
import pytest

import tessera as ts

CHUNKS = [None, 3, 1]


def values(rng, dtype, shape):
    if dtype == np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if np.dtype(dtype).kind == "i":
        return np.asarray(rng.integers(-4, 5, shape)).astype(dtype)
    x = np.asarray((rng.integers(-4, 5, shape) * 0.5)).astype(dtype)
    x[np.asarray(rng.random(shape) < 0.1)] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_matches_numpy(rng, dtype, chunk, side):
    for n in [0, 1, 19]:
        a = np.sort(values(rng, dtype, n))
        t = ts.asarray(a, chunk_size=chunk)
        for vshape in [(), (7,), (3, 4), (0,)]:
            v = values(rng, dtype, vshape)
            tv = ts.asarray(v, chunk_size=None if chunk is None or v.ndim == 0 else chunk)
            got = ts.searchsorted(t, tv, side=side)
            want = np.searchsorted(a, v, side=side)
            assert got.dtype == np.int64 and got.shape == want.shape
            np.testing.assert_array_equal(np.asarray(got), want)


def test_searchsorted_promotes_and_scalars(rng):
    a = np.sort(rng.integers(-10, 10, 30))
    v = rng.uniform(-11, 11, 12)
    t = ts.asarray(a, chunk_size=4)
    np.testing.assert_array_equal(np.asarray(ts.searchsorted(t, ts.asarray(v))), np.searchsorted(a, v))
    for x in [2.5, 3, -100, 100.0]:
        assert int(ts.searchsorted(t, x, side="right")) == np.searchsorted(a, x, side="right")
    f = np.sort(rng.standard_normal(25).astype(np.float32))
    np.testing.assert_array_equal(
        np.asarray(ts.searchsorted(ts.asarray(f, chunk_size=6), v)), np.searchsorted(f, v))


def test_searchsorted_numpy_dispatch_method_and_sorter(rng):
    a = rng.standard_normal(40)
    order = np.argsort(a, kind="stable")
    v = rng.standard_normal(9)
    t = ts.asarray(np.sort(a), chunk_size=7)
    r = np.searchsorted(t, v, side="right")
    assert isinstance(r, ts.Tensor)
    np.testing.assert_array_equal(np.asarray(r), np.searchsorted(np.sort(a), v, side="right"))
    np.testing.assert_array_equal(np.asarray(t.searchsorted(v)), np.sort(a).searchsorted(v))
    got = ts.searchsorted(ts.asarray(a, chunk_size=7), v, sorter=ts.asarray(order))
    np.testing.assert_array_equal(np.asarray(got), np.searchsorted(a, v, sorter=order))


def test_searchsorted_errors():
    t = ts.asarray(np.arange(6.0))
    with pytest.raises(ValueError, match="side"):
        ts.searchsorted(t, 1.0, side="middle")
    with pytest.raises(ValueError, match="1-D"):
        ts.searchsorted(ts.reshape(t, (2, 3)), 1.0)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_bincount_matches_numpy(rng, chunk):
    for dtype in [np.int32, np.int64, np.bool_]:
        for n in [0, 1, 50]:
            x = rng.integers(0, 13, n).astype(dtype)
            t = ts.asarray(x, chunk_size=chunk)
            for minlength in [0, 4, 30]:
                got = ts.bincount(t, minlength=minlength)
                want = np.bincount(x, minlength=minlength)
                assert got.dtype == np.int64
                np.testing.assert_array_equal(np.asarray(got), want)
                w = rng.standard_normal(n)
                got = np.bincount(t, weights=ts.asarray(w, chunk_size=chunk), minlength=minlength)
                assert isinstance(got, ts.Tensor) and got.dtype == np.float64
                np.testing.assert_allclose(np.asarray(got), np.bincount(x, w, minlength), rtol=1e-12, atol=1e-12)


def test_bincount_errors():
    with pytest.raises(ValueError, match="negative"):
        ts.bincount(ts.asarray(np.array([1, -1, 2]), chunk_size=1))
    with pytest.raises(TypeError):
        ts.bincount(ts.asarray(np.array([1.0, 2.0])))
    with pytest.raises(ValueError):
        ts.bincount(ts.asarray(np.zeros((2, 2), dtype=np.int64)))
    with pytest.raises(ValueError):
        ts.bincount(ts.asarray(np.array([1, 2])), weights=ts.asarray(np.ones(3)))
    with pytest.raises(ValueError):
        ts.bincount(ts.asarray(np.array([1, 2])), minlength=-1)


def hist_data(rng, dtype, shape):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind == "i":
        return rng.integers(-50, 50, shape).astype(dtype)
    # Values on (or an ulp from) bin edges, and a spread: the index arithmetic's corner cases.
    x = rng.standard_normal(shape).astype(dtype)
    k = rng.random(shape) < 0.3
    x[k] = (rng.integers(-20, 21, k.sum()) / 10).astype(dtype)
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("chunk", CHUNKS)
def test_histogram_matches_numpy(rng, dtype, chunk):
    for shape in [(0,), (1,), (301,), (13, 11)]:
        x = hist_data(rng, dtype, shape)
        t = ts.asarray(x, chunk_size=chunk if len(shape) == 1 or chunk is None else (chunk, 4))
        for bins in [1, 7, 10, 64]:
            for rng_ in [None, (-1.5, 2.0), (0, 1)]:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # numpy's bool -> uint8
                    want, want_e = np.histogram(x, bins=bins, range=rng_)
                h, e = ts.histogram(t, bins=bins, range=rng_)
                assert e.dtype == want_e.dtype and h.dtype == want.dtype
                np.testing.assert_array_equal(np.asarray(e), want_e)
                np.testing.assert_array_equal(np.asarray(h), want)
        w = rng.standard_normal(shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want, _ = np.histogram(x, bins=5, weights=w)
            want_d, _ = np.histogram(x, bins=5, density=True)
        h, _ = np.histogram(t, bins=5, weights=ts.asarray(w))
        assert isinstance(h, ts.Tensor)
        np.testing.assert_allclose(np.asarray(h), want, rtol=1e-12, atol=1e-12)
        if x.size:
            d, _ = ts.histogram(t, bins=5, density=True)
            np.testing.assert_allclose(np.asarray(d), want_d, rtol=1e-12, atol=0)


def test_histogram_float32_near_edges(rng):
    # float32 data whose range comes from the data: numpy's edges and index arithmetic run in
    # float32; many values sit exactly on edges.
    for _ in range(5):
        edges32 = np.linspace(np.float32(-1.3), np.float32(2.9), 11, dtype=np.float32)
        x = rng.choice(edges32, 500).astype(np.float32)
        x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))])
        t = ts.asarray(x, chunk_size=97)
        for bins in [10, 3, 29]:
            for r in [None, (-1.3, 2.9)]:
                want, want_e = np.histogram(x, bins=bins, range=r)
                h, e = ts.histogram(t, bins=bins, range=r)
                np.testing.assert_array_equal(np.asarray(e), want_e)
                np.testing.assert_array_equal(np.asarray(h), want)


def test_histogram_nan_inf_and_explicit_edges(rng):
    x = rng.standard_normal(200)
    x[::17] = np.nan
    x[5] = np.inf
    t = ts.asarray(x, chunk_size=13)
    with pytest.raises(ValueError, match="not finite"):
        ts.histogram(t)
    want, _ = np.histogram(x, bins=6, range=(-2, 2))
    np.testing.assert_array_equal(np.asarray(ts.histogram(t, bins=6, range=(-2, 2))[0]), want)
    for edges in [[-2, -0.5, 0, 0, 1.5, 3], np.array([-1.0, 1.0]), [-3, -2, -1, 0, 1, 2, 3]]:
        want, want_e = np.histogram(x, bins=edges)
        h, e = ts.histogram(t, bins=edges)
        np.testing.assert_array_equal(np.asarray(h), want)
        np.testing.assert_array_equal(np.asarray(e), want_e)
        w = rng.standard_normal(200)
        np.testing.assert_allclose(
            np.asarray(ts.histogram(t, bins=edges, weights=w)[0]), np.histogram(x, bins=edges, weights=w)[0],
            rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="monotonically"):
        ts.histogram(t, bins=[0, 2, 1])
    with pytest.raises(ValueError, match="positive"):
        ts.histogram(t, bins=0)
    with pytest.raises(ValueError):
        ts.histogram(t, bins=3, range=(2, 1))
    with pytest.raises(ValueError):
        ts.histogram(t, bins=3, range=(0, 1), weights=np.ones(5))
    with pytest.raises(NotImplementedError):
        ts.histogram(t, bins="auto")


@pytest.mark.parametrize("chunk", CHUNKS)
def test_partition_invariants(rng, chunk):
    for dtype in [np.float64, np.int32]:
        x = values(rng, dtype, (7, 12))
        t = ts.asarray(x, chunk_size=chunk)
        for axis in [0, 1, -1]:
            n = x.shape[axis]
            for kth in [0, n // 2, -1, [1, n - 2]]:
                p = np.asarray(np.partition(t, kth, axis=axis))
                ip = np.asarray(ts.argpartition(t, kth, axis=axis))
                s = np.sort(x, axis=axis)
                for k in np.atleast_1d(kth) % n:
                    pk = np.take(p, [k], axis=axis)
                    np.testing.assert_array_equal(pk, np.take(s, [k], axis=axis))
                    before = np.take(p, range(k), axis=axis)
                    after = np.take(p, range(k + 1, n), axis=axis)
                    if dtype == np.float64:
                        ok = lambda a, b: (a <= b) | np.isnan(b)  # noqa: E731
                    else:
                        ok = lambda a, b: a <= b  # noqa: E731
                    assert ok(before, pk).all() and ok(pk, after).all()
                np.testing.assert_array_equal(np.take_along_axis(x, ip, axis=axis), p)
    flat = np.asarray(np.partition(ts.asarray(x), 3, axis=None))
    assert flat.shape == (x.size,)
    np.testing.assert_array_equal(flat[3], np.sort(x, axis=None)[3])


def test_partition_errors_and_method(rng):
    x = rng.standard_normal(10)
    t = ts.asarray(x)
    with pytest.raises(ValueError):
        ts.partition(t, 10)
    with pytest.raises(ValueError):
        ts.argpartition(t, [-11])
    with pytest.raises(TypeError):
        ts.partition(t, 1.5)
    i = t.argpartition(4)
    np.testing.assert_array_equal(x[np.asarray(i)][4], np.sort(x)[4])
    t.partition(4)
    assert np.asarray(t)[4] == np.sort(x)[4]


def test_lazy_and_eager(rng, mode):
    # The stages of bincount/histogram (min and max run first) in both modes, on an
    # expression rather than data.
    x = rng.integers(0, 20, 64)
    t = ts.asarray(x, chunk_size=9) * 2
    np.testing.assert_array_equal(np.asarray(ts.bincount(t, minlength=3)), np.bincount(x * 2, minlength=3))
    f = rng.standard_normal(64)
    h, e = ts.histogram(ts.asarray(f, chunk_size=9) + 1.0, bins=6)
    wh, we = np.histogram(f + 1.0, bins=6)
    np.testing.assert_array_equal(np.asarray(h), wh)
    np.testing.assert_array_equal(np.asarray(e), we)
    s = np.sort(f)
    np.testing.assert_array_equal(
        np.asarray(ts.searchsorted(ts.asarray(s, chunk_size=5), ts.asarray(f[:7]) * 0.5)),
        np.searchsorted(s, f[:7] * 0.5))


def test_bincount_data_changed_between_stages():
    # The length comes from a first stage; an array read in place that changes before the
    # counts run is an error, never a wrong or truncated result.
    a = np.array([1, 2, 3, 2])
    r = ts.bincount(ts.asarray(a, chunk_size=2))
    a[0] = 10
    with pytest.raises(ValueError, match="10"):
        np.asarray(r)
    b = np.array([1, 2, 3, 2])
    r = ts.bincount(ts.asarray(b, chunk_size=2))
    b[3] = -1
    with pytest.raises(ValueError, match="-1"):
        np.asarray(r)
