"""Errors are numpy's exceptions, with the operands named; nothing crashes the interpreter."""

import numpy as np
import pytest

import tessera as ts


def test_shape_mismatch_is_value_error():
    with pytest.raises(ValueError, match=r"\[3, 4\] and \[5\]"):
        ts.ones((3, 4)) + ts.ones(5)
    with pytest.raises(ValueError):
        ts.ones((3, 4)) @ ts.ones((3, 4))
    with pytest.raises(ValueError):
        ts.ones(12).reshape(5, 3)


def test_axis_error():
    with pytest.raises(np.exceptions.AxisError):
        ts.ones((3, 4)).sum(axis=2)
    with pytest.raises(np.exceptions.AxisError):
        ts.argmax(ts.ones((3, 4)), axis=-3)


def test_bad_dtype_is_type_error():
    with pytest.raises(TypeError):
        ts.ones(3, dtype=ts.complex64)
    with pytest.raises(TypeError):
        -ts.ones(3, dtype=ts.bool)
    with pytest.raises(TypeError):
        ts.ones(3, dtype="float16")


def test_out_of_memory_is_memory_error():
    with ts.config(host_budget="1MiB", device_budget="1MiB", disk_budget="1MiB"):
        a = ts.ones((4000, 4000), chunk_size=2000)
        with pytest.raises(MemoryError, match="(?i)host|disk|device"):
            (a + 1).execute()
    # The session is usable afterwards.
    assert float(ts.ones(3).sum()) == 3.0


def test_unsupported_backend():
    with pytest.raises(RuntimeError, match="nonexistent"):
        ts.set_backend("nonexistent")
    assert ts.set_backend("cpu") == "cpu"


def test_config_errors():
    with pytest.raises(TypeError):
        ts.config(chunksize=3)
    with pytest.raises(ValueError):
        ts.config(chunk_size=0)
    with pytest.raises(ValueError):
        ts.config(device_budget="lots")
