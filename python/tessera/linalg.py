"""numpy.linalg / the Array API linalg extension: the matrix products Tessera has. The
factorizations (qr, svd, cholesky, solve, ...) are issue 18 and raise NotImplementedError."""

from ._api import matmul, tensordot, vecdot, matrix_transpose, outer  # noqa: F401
from ._api import _t, sum as _sum, multiply as _multiply, sqrt as _sqrt, abs as _abs  # noqa: F401


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    x = _t(x)
    if ord == 2:
        return _sqrt(_sum(_multiply(x, x), axis=axis, keepdims=keepdims))
    if ord == 1:
        return _sum(_abs(x), axis=axis, keepdims=keepdims)
    raise NotImplementedError(f"vector_norm: ord={ord!r} is not supported yet (issue 18)")


def _missing(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"linalg.{name} is not implemented yet (issue 18: factorizations)")

    f.__name__ = name
    return f


for _n in """cholesky qr svd svdvals eigh eigvalsh inv solve lstsq det slogdet pinv matrix_rank
matrix_power matrix_norm norm trace diagonal cross""".split():
    globals()[_n] = _missing(_n)
del _n
