import os

import numpy as np
import pytest

import tessera as ts


@pytest.fixture
def rng(request):
    """A fresh random generator per test; its seed is printed when the test fails
    (TESSERA_TEST_SEED=n repeats one)."""
    seed = int(os.environ.get("TESSERA_TEST_SEED", np.random.SeedSequence().entropy % 2**32))
    request.node.user_properties.append(("seed", seed))
    print(f"seed={seed}")
    return np.random.default_rng(seed)


@pytest.fixture(params=[False, True], ids=["lazy", "eager"])
def mode(request):
    """Every test that takes it runs lazily and in eager mode."""
    with ts.config(eager=request.param):
        yield request.param


# Chunkings: one chunk, several uneven chunks per axis, one element per chunk on small arrays.
CHUNKS = [None, 3, 1]


def tol(dtype):
    return {"float32": dict(rtol=2e-6, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-12)}.get(
        np.dtype(dtype).name, dict(rtol=0, atol=0)
    )


def close(actual, expected, dtype=None):
    """Compares a tensor with numpy's value: dtype and shape exactly, values within the dtype's
    tolerance (NaN equal to NaN)."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    assert a.dtype == e.dtype, f"dtype {a.dtype} != numpy's {e.dtype}"
    assert a.shape == e.shape, f"shape {a.shape} != numpy's {e.shape}"
    if a.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e)
    else:
        np.testing.assert_allclose(a, e, equal_nan=True, **tol(dtype or a.dtype))
