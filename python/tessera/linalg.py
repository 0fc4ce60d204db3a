"""numpy.linalg and the Array API linalg extension.

Factorizations and solves run as dense kernels (faer on the CPU; GPU backends run them on the
host) on the last two axes, batched over the leading ones. Integer and bool inputs are
computed in float64, as numpy does. A singular matrix (``solve``, ``inv``), one that is not
positive definite (``cholesky``) or non-finite input to ``svd``/``eigh`` raises numpy's own
``LinAlgError`` when the result is computed."""

from collections import namedtuple

import numpy as np

from . import _api
from ._api import matmul, tensordot, vecdot, matrix_transpose, outer  # noqa: F401
from ._api import _t
from ._tensor import Tensor

LinAlgError = np.linalg.LinAlgError

QRResult = namedtuple("QRResult", ["Q", "R"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
LstsqResult = namedtuple("LstsqResult", ["x", "residuals", "rank", "s"])


def _k(x, name, other=None, **kw):
    other = None if other is None else _t(other)._t
    return [Tensor(r) for r in _t(x)._t.linalg(name, other, **kw)]


def _tol(v):
    """A cutoff: a float, or a tensor of per-matrix cutoffs (broadcast against the batch)."""
    if v is None:
        return None
    if isinstance(v, Tensor):
        return float(v) if v.ndim == 0 else v
    a = np.asarray(v)
    return float(a) if a.ndim == 0 else _api.asarray(a)


def _kept(x, rtol):
    """The singular values of x and which of them are above ``rtol * max(s)`` (rtol a tensor
    of per-matrix cutoffs)."""
    u, s, vh = svd(x, full_matrices=False)
    cut = _api.expand_dims(_api.astype(rtol, s.dtype), axis=-1) * _api.max(s, axis=-1, keepdims=True)
    return u, s, vh, s > cut


def cholesky(x, /, *, upper=False):
    return _k(x, "cholesky", flag=bool(upper))[0]


def qr(x, /, mode="reduced"):
    if mode not in ("reduced", "complete", "r"):
        raise NotImplementedError(f"qr: mode={mode!r} is not supported (reduced, complete, r)")
    if mode == "r":
        return _k(x, "qr_r")[0]
    q, r = _k(x, "qr", flag=mode == "complete")
    return QRResult(q, r)


def svd(x, /, full_matrices=True, compute_uv=True, hermitian=False):
    if not compute_uv:
        return svdvals(x)
    return SVDResult(*_k(x, "svd", flag=bool(full_matrices)))


def svdvals(x, /):
    return _k(x, "svdvals")[0]


def _lower(x, UPLO):
    """x with the triangle UPLO names in its lower half (the kernels read the lower one)."""
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    x = _t(x)
    return matrix_transpose(x) if UPLO == "U" else x


def eigh(x, /, UPLO="L"):
    return EighResult(*_k(_lower(x, UPLO), "eigh"))


def eigvalsh(x, /, UPLO="L"):
    return _k(_lower(x, UPLO), "eigvalsh")[0]


def solve(x1, x2, /):
    return _k(x1, "solve", x2)[0]


def inv(x, /):
    return _k(x, "inv")[0]


def det(x, /):
    return _k(x, "det")[0]


def slogdet(x, /):
    return SlogdetResult(*_k(x, "slogdet"))


def pinv(x, /, rcond=None, hermitian=False, *, rtol=None):
    tol = _tol(rtol if rtol is not None else rcond)
    if isinstance(tol, Tensor):
        u, s, vh, keep = _kept(x, tol)
        inv = _api.where(keep, 1.0 / s, 0.0)
        return (matrix_transpose(vh) * _api.expand_dims(inv, axis=-2)) @ matrix_transpose(u)
    return _k(x, "pinv", tol=tol)[0]


def matrix_rank(x, /, tol=None, hermitian=False, *, rtol=None):
    x = _t(x)
    if x.ndim < 2:
        # numpy: a vector's rank is 1 unless it is all zeros.
        return _api.astype(_api.any(x != 0), "int64")
    if tol is not None:
        t = _tol(tol)
        if isinstance(t, Tensor):
            t = _api.expand_dims(t, axis=-1)
        return _api.sum(svdvals(x) > t, axis=-1)
    r = _tol(rtol)
    if isinstance(r, Tensor):
        return _api.sum(_kept(x, r)[3], axis=-1)
    return _k(x, "matrix_rank", tol=r)[0]


def lstsq(a, b, rcond=None):
    x, resid, rank, s = _k(a, "lstsq", b, tol=_tol(rcond))
    a = _t(a)
    m, n = a.shape
    # numpy's rule: residuals only for a full-rank, overdetermined system.
    if int(rank) < n or m <= n:
        resid = _api.asarray(np.empty((0,), dtype=np.dtype(resid.dtype.name)))
    elif _t(b).ndim == 1:
        resid = _api.reshape(resid, (1,))
    return LstsqResult(x, resid, rank, s)


def matrix_power(x, n, /):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError("exponent must be an integer")
    return _k(x, "matrix_power", n=int(n))[0]


def diagonal(x, /, *, offset=0):
    return _k(x, "diagonal", n=int(offset))[0]


def trace(x, /, *, offset=0, dtype=None):
    return _api.sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def cross(x1, x2, /, *, axis=-1):
    x1, x2 = _t(x1), _t(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("cross: operands must have at least one dimension")
    nd = max(x1.ndim, x2.ndim)
    if not -nd <= axis < nd:
        raise ValueError(f"cross: axis {axis} is out of bounds for {nd} dimensions")
    ax = axis % nd
    sh1 = (1,) * (nd - x1.ndim) + tuple(x1.shape)
    sh2 = (1,) * (nd - x2.ndim) + tuple(x2.shape)
    if sh1[ax] != 3 or sh2[ax] != 3:
        raise ValueError(f"cross: both operands must have size 3 along axis {axis} "
                         f"(shapes {tuple(x1.shape)} and {tuple(x2.shape)})")
    x1, x2 = _api.broadcast_arrays(_api.reshape(x1, sh1), _api.reshape(x2, sh2))
    a = _api.moveaxis(x1, ax, -1)
    b = _api.moveaxis(x2, ax, -1)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    c = _api.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return _api.moveaxis(c, -1, ax)


def _float(x):
    x = _t(x)
    if x.dtype.kind not in "f":
        x = _api.astype(x, "float64")
    return x


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    x = _float(x)
    a = _api.abs(x)
    inf = float("inf")
    if ord == 2:
        return _api.sqrt(_api.sum(x * x, axis=axis, keepdims=keepdims))
    if ord == 1:
        return _api.sum(a, axis=axis, keepdims=keepdims)
    if ord == inf:
        return _api.max(a, axis=axis, keepdims=keepdims)
    if ord == -inf:
        return _api.min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return _api.astype(_api.sum(a != 0, axis=axis, keepdims=keepdims), x.dtype)
    p = float(ord)
    return _api.sum(a ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
    x = _float(x)
    if x.ndim < 2:
        raise ValueError(f"matrix_norm: the array must be at least two-dimensional (shape {x.shape})")
    inf = float("inf")

    def keep(r):
        return _api.expand_dims(_api.expand_dims(r, axis=-1), axis=-1) if keepdims else r

    if ord == "fro":
        return keep(_api.sqrt(_api.sum(x * x, axis=(-2, -1))))
    if ord == "nuc":
        return keep(_api.sum(svdvals(x), axis=-1))
    if ord in (2, -2):
        s = svdvals(x)
        return keep(_api.max(s, axis=-1) if ord == 2 else _api.min(s, axis=-1))
    if ord in (1, -1):
        c = _api.sum(_api.abs(x), axis=-2)
        return keep(_api.max(c, axis=-1) if ord == 1 else _api.min(c, axis=-1))
    if ord in (inf, -inf):
        r = _api.sum(_api.abs(x), axis=-1)
        return keep(_api.max(r, axis=-1) if ord == inf else _api.min(r, axis=-1))
    raise ValueError(f"matrix_norm: invalid norm order {ord!r}")


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    """numpy.linalg.norm."""
    x = _t(x)
    if axis is None:
        if ord is None:
            return vector_norm(_api.reshape(x, (-1,)), ord=2, keepdims=False) if not keepdims else \
                _api.reshape(vector_norm(x, ord=2, axis=None), (1,) * x.ndim)
        if x.ndim == 1:
            return vector_norm(x, ord=ord, keepdims=keepdims)
        if x.ndim == 2:
            return matrix_norm(x, ord=ord, keepdims=keepdims)
        raise ValueError("Improper number of dimensions to norm.")
    if isinstance(axis, int) or (isinstance(axis, tuple) and len(axis) == 1):
        return vector_norm(x, ord=2 if ord is None else ord, axis=axis, keepdims=keepdims)
    if isinstance(axis, tuple) and len(axis) == 2:
        a0, a1 = (ax % x.ndim for ax in axis)
        if a0 == a1:
            raise ValueError("Duplicate axes given.")
        m = _api.moveaxis(x, (a0, a1), (-2, -1))
        r = matrix_norm(m, ord="fro" if ord is None else ord, keepdims=False)
        if keepdims:
            for ax in sorted((a0, a1)):
                r = _api.expand_dims(r, axis=ax)
        return r
    raise ValueError("Improper number of dimensions to norm.")
