"""Estimators in the shape of scikit-learn's API, running on Tessera tensors.

``NearestNeighbors(n_neighbors=k).fit(X).kneighbors(Y)``: brute-force k nearest neighbours by
Euclidean distance. The squared distances are ``|y|^2 - 2 y.x + |x|^2`` (a matrix product and
two row norms) and each tile of them is reduced to its k best per query as it is made
(``Tensor.topk``), so the distance matrix is never whole: data and queries may be chunked and
larger than memory. Results are lazy tensors (``np.asarray`` computes them).
"""

from . import _api
from ._tensor import Tensor


class NearestNeighbors:
    """Unsupervised nearest neighbours, brute force, Euclidean metric (scikit-learn's names)."""

    def __init__(self, n_neighbors=5, *, algorithm="brute", metric="euclidean"):
        if algorithm not in ("brute", "auto"):
            raise NotImplementedError(f"NearestNeighbors: algorithm={algorithm!r} (only 'brute')")
        if metric not in ("euclidean", "l2", "minkowski"):
            raise NotImplementedError(f"NearestNeighbors: metric={metric!r} (only 'euclidean')")
        self.n_neighbors = int(n_neighbors)
        self.algorithm = algorithm
        self.metric = metric
        self._fit_X = None

    def fit(self, X, y=None):
        X = _api.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D array of samples, got shape {X.shape}")
        self._fit_X = X
        self.n_samples_fit_ = X.shape[0]
        self.n_features_in_ = X.shape[1]
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """(distances, indices) of the ``n_neighbors`` nearest fitted rows to each row of X,
        nearest first; ties go to the lower row. Both are lazy: ``ts.execute(dist, ind)``
        computes them in one run, the distances and the selection once."""
        if self._fit_X is None:
            raise ValueError("This NearestNeighbors instance is not fitted yet; call fit first")
        if X is None:
            raise NotImplementedError("kneighbors(X=None) (each fitted point's neighbours but itself)")
        k = self.n_neighbors if n_neighbors is None else int(n_neighbors)
        if k <= 0:
            raise ValueError(f"Expected n_neighbors > 0, got {k}")
        Y = _api.asarray(X)
        if Y.ndim != 2 or Y.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has shape {Y.shape}; {self.n_features_in_} features per row were fitted")
        x, y = self._fit_X, Y
        if x.dtype != y.dtype:
            dt = _api.result_type(x.dtype, y.dtype)
            x, y = _api.astype(x, dt), _api.astype(y, dt)
        d2, idx = x._t.knn(y._t, k)
        idx = Tensor(idx)
        if not return_distance:
            return idx
        return _api.sqrt(Tensor(d2)), idx
