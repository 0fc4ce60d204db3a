"""ts.linalg against numpy.linalg on fresh random inputs: values where they are unique
(singular values, eigenvalues, solves, inverses, determinants, norms), defining properties
where they are not (Q, R, U, V up to signs); numpy's LinAlgError cases; numpy.linalg called
on tensors dispatches here."""

import numpy as np
import pytest

import tessera as ts

RNG = np.random.default_rng()


def rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def tol(dtype, n=8):
    return (2e-4 if dtype == np.float32 else 1e-10) * n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(9, 4), (4, 9), (6, 6), (3, 5, 4)])
def test_qr_and_svd(dtype, shape):
    a = rand(*shape, dtype=dtype)
    t = ts.asarray(a, chunk_size=tuple(max(1, d // 2) for d in shape))
    for mode in ("reduced", "complete"):
        q, r = ts.linalg.qr(t, mode=mode)
        qn, rn = np.asarray(q), np.asarray(r)
        qw, rw = np.linalg.qr(a.astype(np.float64), mode=mode)
        assert qn.dtype == dtype and qn.shape == qw.shape and rn.shape == rw.shape
        np.testing.assert_allclose(qn @ rn, a, atol=tol(dtype))
        # Unique up to signs: numpy's factors with R's diagonal made non-negative.
        k = min(shape[-2:])
        sgn = np.sign(np.diagonal(rw, axis1=-2, axis2=-1))[..., :k]
        sgn[sgn == 0] = 1
        np.testing.assert_allclose(rn[..., :k, :], rw[..., :k, :] * sgn[..., :, None], atol=tol(dtype, 20))
    # mode="r": R alone (Q never formed), numpy's R with its diagonal made non-negative.
    rr = np.asarray(ts.linalg.qr(t, mode="r"))
    rw = np.linalg.qr(a.astype(np.float64), mode="r")
    assert rr.shape == rw.shape and rr.dtype == dtype
    sgn = np.sign(np.diagonal(rw, axis1=-2, axis2=-1))
    sgn[sgn == 0] = 1
    np.testing.assert_allclose(rr, rw * sgn[..., :, None], atol=tol(dtype, 20))
    u, s, vh = ts.linalg.svd(t, full_matrices=False)
    np.testing.assert_allclose(np.asarray(s), np.linalg.svd(a.astype(np.float64), compute_uv=False),
                               rtol=tol(dtype), atol=tol(dtype))
    un, sn, vn = np.asarray(u), np.asarray(s), np.asarray(vh)
    np.testing.assert_allclose((un * sn[..., None, :]) @ vn, a, atol=tol(dtype, 20))
    np.testing.assert_allclose(np.asarray(ts.linalg.svdvals(t)), sn, rtol=tol(dtype), atol=tol(dtype))
    U, S, Vh = ts.linalg.svd(t)  # full_matrices=True, numpy's default
    assert U.shape == shape[:-1] + (shape[-2],) and Vh.shape == shape[:-2] + (shape[-1], shape[-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_symmetric_and_spd(dtype):
    b = rand(3, 6, 6)
    sym = ((b + np.swapaxes(b, -1, -2)) / 2).astype(dtype)
    spd = (b @ np.swapaxes(b, -1, -2) + 6 * np.eye(6)).astype(dtype)
    w, v = ts.linalg.eigh(sym)
    np.testing.assert_allclose(np.asarray(w), np.linalg.eigvalsh(sym.astype(np.float64)), atol=tol(dtype, 20))
    vn = np.asarray(v)
    np.testing.assert_allclose(sym @ vn, vn * np.asarray(w)[..., None, :], atol=tol(dtype, 20))
    np.testing.assert_allclose(np.asarray(ts.linalg.eigvalsh(sym)), np.asarray(w), atol=tol(dtype, 20))
    # UPLO='U' reads the upper triangle.
    upper_only = np.triu(sym)
    np.testing.assert_allclose(np.asarray(ts.linalg.eigvalsh(upper_only, UPLO="U")),
                               np.linalg.eigvalsh(upper_only.astype(np.float64), UPLO="U"), atol=tol(dtype, 20))
    L = np.asarray(ts.linalg.cholesky(spd))
    np.testing.assert_allclose(L, np.linalg.cholesky(spd.astype(np.float64)), rtol=tol(dtype, 20), atol=tol(dtype, 20))
    np.testing.assert_allclose(np.asarray(ts.linalg.cholesky(spd, upper=True)), np.swapaxes(L, -1, -2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_solve_inv_det(dtype):
    a = (rand(2, 5, 5) + 4 * np.eye(5)).astype(dtype)
    b = rand(2, 5, 3, dtype=dtype)
    a64 = a.astype(np.float64)
    np.testing.assert_allclose(np.asarray(ts.linalg.solve(a, b)), np.linalg.solve(a64, b), rtol=tol(dtype), atol=tol(dtype))
    vec = rand(5, dtype=dtype)
    np.testing.assert_allclose(np.asarray(ts.linalg.solve(a[0], vec)), np.linalg.solve(a64[0], vec), atol=tol(dtype))
    np.testing.assert_allclose(np.asarray(ts.linalg.inv(a)), np.linalg.inv(a64), atol=tol(dtype))
    np.testing.assert_allclose(np.asarray(ts.linalg.det(a)), np.linalg.det(a64), rtol=tol(dtype))
    sign, logabs = ts.linalg.slogdet(a)
    ws, wl = np.linalg.slogdet(a64)
    np.testing.assert_array_equal(np.asarray(sign), ws)
    np.testing.assert_allclose(np.asarray(logabs), wl, rtol=tol(dtype))
    # numpy.linalg called on a tensor runs Tessera's.
    t = ts.asarray(a)
    r = np.linalg.inv(t)
    assert isinstance(r, ts.Tensor)
    np.testing.assert_allclose(np.asarray(r), np.linalg.inv(a64), atol=tol(dtype))


def test_composites():
    low = rand(7, 2) @ rand(2, 5)  # rank 2
    assert int(ts.linalg.matrix_rank(low)) == np.linalg.matrix_rank(low) == 2
    np.testing.assert_allclose(np.asarray(ts.linalg.pinv(low)), np.linalg.pinv(low), atol=1e-10)
    a, b = rand(8, 3), rand(8, 2)
    x, res, rank, s = ts.linalg.lstsq(a, b)
    wx, wres, wrank, ws = np.linalg.lstsq(a, b)
    np.testing.assert_allclose(np.asarray(x), wx, atol=1e-10)
    np.testing.assert_allclose(np.asarray(res), wres, rtol=1e-8)
    assert int(rank) == wrank and np.allclose(np.asarray(s), ws)
    x, res, rank, s = ts.linalg.lstsq(low, b[:7])  # rank-deficient: no residuals, as numpy
    assert np.asarray(res).shape == np.linalg.lstsq(low, b[:7])[1].shape == (0,)
    m = rand(3, 4, 4)
    for n in (0, 1, 2, 5, -1, -3):
        np.testing.assert_allclose(np.asarray(ts.linalg.matrix_power(m, n)), np.linalg.matrix_power(m, n),
                                   rtol=1e-8, atol=1e-8)
    x = rand(2, 4, 6)
    for k in (0, 2, -3, 6, -4):
        np.testing.assert_array_equal(np.asarray(ts.linalg.diagonal(x, offset=k)), np.diagonal(x, k, -2, -1))
        np.testing.assert_allclose(np.asarray(ts.linalg.trace(x, offset=k)), np.trace(x, k, -2, -1))
    u, v = rand(4, 3), rand(3)
    np.testing.assert_allclose(np.asarray(ts.linalg.cross(u, v)), np.cross(u, v))
    np.testing.assert_allclose(np.asarray(ts.linalg.cross(u.T, u.T, axis=0)), np.cross(u.T, u.T, axis=0))
    for ord in (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
        np.testing.assert_allclose(float(ts.linalg.norm(m[0], ord)), np.linalg.norm(m[0], ord), rtol=1e-10)
    for ord in (2, 1, 0, 3, np.inf, -np.inf):
        np.testing.assert_allclose(np.asarray(ts.linalg.vector_norm(x, axis=-1, ord=ord)),
                                   np.linalg.vector_norm(x, axis=-1, ord=ord), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(ts.linalg.matrix_norm(x, ord="nuc", keepdims=True)),
                               np.linalg.matrix_norm(x, ord="nuc", keepdims=True), rtol=1e-10)


def test_linalg_errors_are_numpys():
    sing = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        np.asarray(ts.linalg.solve(sing, np.ones(2)))
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        np.asarray(ts.linalg.inv(sing))
    assert float(ts.linalg.det(sing)) == 0.0
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        np.asarray(ts.linalg.cholesky(np.array([[1.0, 2.0], [2.0, 1.0]])))
    with pytest.raises(np.linalg.LinAlgError):
        np.asarray(ts.linalg.svd(np.array([[np.nan, 1.0], [0.0, 1.0]])).S)
    with pytest.raises(ValueError, match="square"):
        ts.linalg.det(np.ones((2, 3)))
    with pytest.raises(ValueError, match="two-dimensional"):
        ts.linalg.qr(np.ones(3))
    assert ts.linalg.LinAlgError is np.linalg.LinAlgError
    # Integers computed in float64, as numpy.
    d = ts.linalg.det(np.array([[2, 1], [1, 3]]))
    assert d.dtype == ts.float64 and float(d) == pytest.approx(5.0)
