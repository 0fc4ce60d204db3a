"""Random draws: numpy.random's names. Values come from Philox keyed by (seed, draw number,
element index): the same whatever the chunking, thread count or backend. Not the same values
as numpy's generators."""

import operator
import os

from . import _api, _dtypes
from . import _tessera as _raw
from ._tensor import Tensor


def _shape(size):
    return [] if size is None else _api._shape(size)


def _chunk(chunk_size, ndim):
    return _api._chunk(chunk_size, ndim)


class Generator:
    """numpy's ``Generator`` API over Tessera's counter-based draws."""

    def __init__(self, seed=None):
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        seed = operator.index(seed)
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self._g = _raw.RawGenerator(seed % 2**64)

    def random(self, size=None, dtype="float64", *, chunk_size=None):
        s = _shape(size)
        return Tensor(self._g.draw("uniform", s, _dtypes.dtype_name(dtype), 0.0, 1.0, _chunk(chunk_size, len(s))))

    def uniform(self, low=0.0, high=1.0, size=None, dtype="float64", *, chunk_size=None):
        s = _shape(size)
        return Tensor(
            self._g.draw("uniform", s, _dtypes.dtype_name(dtype), float(low), float(high), _chunk(chunk_size, len(s)))
        )

    def standard_normal(self, size=None, dtype="float64", *, chunk_size=None):
        return self.normal(0.0, 1.0, size, dtype, chunk_size=chunk_size)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype="float64", *, chunk_size=None):
        s = _shape(size)
        return Tensor(
            self._g.draw("normal", s, _dtypes.dtype_name(dtype), float(loc), float(scale), _chunk(chunk_size, len(s)))
        )

    def integers(self, low, high=None, size=None, dtype="int64", endpoint=False, *, chunk_size=None):
        if high is None:
            low, high = 0, low
        if endpoint:
            high += 1
        s = _shape(size)
        return Tensor(self._g.integers(int(low), int(high), s, _dtypes.dtype_name(dtype), _chunk(chunk_size, len(s))))


def default_rng(seed=None):
    return Generator(seed)


_global = Generator()


def seed(s=None):
    """Reseeds the module's generator (numpy.random.seed)."""
    global _global
    _global = Generator(s)


def rand(*shape, dtype="float64", chunk_size=None):
    return _global.random(shape, dtype, chunk_size=chunk_size)


def random(size=None, dtype="float64", *, chunk_size=None):
    return _global.random(size, dtype, chunk_size=chunk_size)


random_sample = random


def randn(*shape, dtype="float64", chunk_size=None):
    return _global.standard_normal(shape, dtype, chunk_size=chunk_size)


def standard_normal(size=None, dtype="float64", *, chunk_size=None):
    return _global.standard_normal(size, dtype, chunk_size=chunk_size)


def uniform(low=0.0, high=1.0, size=None, dtype="float64", *, chunk_size=None):
    return _global.uniform(low, high, size, dtype, chunk_size=chunk_size)


def normal(loc=0.0, scale=1.0, size=None, dtype="float64", *, chunk_size=None):
    return _global.normal(loc, scale, size, dtype, chunk_size=chunk_size)


def randint(low, high=None, size=None, dtype="int64", *, chunk_size=None):
    return _global.integers(low, high, size, dtype, chunk_size=chunk_size)
