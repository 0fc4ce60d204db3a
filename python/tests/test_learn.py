"""tessera.learn.NearestNeighbors against a brute-force numpy computation in float64."""

import numpy as np
import pytest

import tessera as ts


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_kneighbors_match_numpy(rng, dtype, tol):
    X = rng.standard_normal((300, 16)).astype(dtype)
    Y = rng.standard_normal((50, 16)).astype(dtype)
    x = ts.asarray(X, chunk_size=(64, 16))   # data in 5 row chunks: top-k merged across them
    y = ts.asarray(Y, chunk_size=(20, 16))
    k = 7
    nn = ts.learn.NearestNeighbors(n_neighbors=k).fit(x)
    dist, idx = nn.kneighbors(y)
    dist, idx = np.asarray(dist), np.asarray(idx)
    assert dist.shape == idx.shape == (50, k)
    assert idx.dtype == np.int64
    true = np.sqrt(((Y.astype(np.float64)[:, None, :] - X.astype(np.float64)[None]) ** 2).sum(-1))
    want = np.sort(true, axis=1)[:, :k]
    np.testing.assert_allclose(dist, want, rtol=tol, atol=tol)
    # The returned rows are at the k smallest distances (a near-tie may swap places).
    np.testing.assert_allclose(np.take_along_axis(true, idx, 1), want, rtol=tol, atol=tol)
    assert all(len(set(r)) == k for r in idx.tolist())
    only = nn.kneighbors(Y, n_neighbors=2, return_distance=False)
    np.testing.assert_array_equal(np.asarray(only), idx[:, :2])


def test_errors():
    nn = ts.learn.NearestNeighbors(n_neighbors=3)
    with pytest.raises(ValueError, match="not fitted"):
        nn.kneighbors(np.zeros((2, 2)))
    nn.fit(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="features"):
        nn.kneighbors(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="k = 3"):
        nn.kneighbors(np.zeros((2, 4)))
    with pytest.raises(NotImplementedError):
        ts.learn.NearestNeighbors(metric="cosine")
