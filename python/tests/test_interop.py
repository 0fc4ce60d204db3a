"""numpy interop: __array__, __array_ufunc__, __array_function__, no silent conversions."""

import numpy as np
import pytest

import tessera as ts
from conftest import close


def test_numpy_functions_return_lazy_tensors(rng):
    x = rng.standard_normal((6, 4))
    t = ts.asarray(x, chunk_size=2)
    for r, e in [
        (np.sin(t), np.sin(x)),
        (np.sum(t, axis=0), np.sum(x, axis=0)),
        (np.matmul(t, t.T), x @ x.T),
        (np.add(t, 1), x + 1),
        (np.mean(t, axis=1, keepdims=True), np.mean(x, axis=1, keepdims=True)),
        (np.where(t > 0, t, 0), np.where(x > 0, x, 0)),
        (np.transpose(t), x.T),
        (np.concatenate([t, t]), np.concatenate([x, x])),
        (np.maximum(t, x), np.maximum(x, x)),
        (np.add.reduce(t, axis=0), np.add.reduce(x, axis=0)),
    ]:
        assert isinstance(r, ts.Tensor), type(r)
        close(r, e)
    # ndarray <op> tensor is a tensor too.
    assert isinstance(x + t, ts.Tensor)
    assert isinstance(x > t, ts.Tensor)


def test_missing_numpy_function_is_type_error_naming_it():
    t = ts.ones((3, 3))
    with pytest.raises(TypeError, match="numpy.fft.fft|fft"):
        np.fft.fft(t)
    with pytest.raises(TypeError, match="convolve"):
        np.convolve(t[0], t[1])
    with pytest.raises(TypeError, match="out="):
        np.add(t, 1, out=np.zeros((3, 3)))


def test_conversions(rng):
    x = rng.standard_normal((3, 2)).astype(np.float32)
    t = ts.asarray(x)
    a = np.asarray(t)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    close(t.to_numpy(), x)
    assert t.execute() is t
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_repr_does_not_run_the_graph():
    a = ts.random.default_rng(0).random((20000, 20000), chunk_size=5000)
    s = repr(a @ a)
    assert "(20000, 20000)" in s and "float64" in s and "not executed" in s
    assert ts.last_stats()["tasks"] == 0 or "(20000, 20000)" in s
    small = ts.arange(4).execute()
    assert "[0, 1, 2, 3]" in repr(small)
    # Tiny and cheap: values shown; tiny but expensive (a sum over 4e8 draws): not run.
    assert "[1, 2, 3, 4]" in repr(ts.arange(4) + 1)
    big_sum = ts.random.default_rng(0).random(400_000_000).sum()
    assert "not executed" in repr(big_sum)


def test_array_api_namespace():
    t = ts.ones(3)
    assert t.__array_namespace__() is ts
    assert ts.__array_api_version__ == "2024.12"
    info = ts.__array_namespace_info__()
    assert info.default_device() in info.devices()
    assert info.default_dtypes()["real floating"] == ts.float64
    assert set(info.dtypes()) == {"bool", "int32", "int64", "float32", "float64"}
    assert ts.isdtype(ts.float32, "real floating") and not ts.isdtype(ts.int32, "real floating")
    assert ts.result_type(ts.int32, 1.0) == ts.float64
    assert ts.result_type(ts.float32, 1.0) == ts.float32
    assert ts.can_cast(ts.int32, ts.int64) and not ts.can_cast(ts.float64, ts.float32)
    assert ts.finfo(ts.float32).eps == np.finfo(np.float32).eps
    assert ts.iinfo(ts.int32).max == 2**31 - 1
