"""ts.asarray reads a numpy array in place: no copy, chunk by chunk, kept alive by the tensor."""

import gc

import numpy as np
import pytest

import tessera as ts


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.parametrize("chunk", [None, 1000, (700, 300)])
def test_asarray_makes_no_copy_and_gives_the_values(chunk):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3000, 2500))  # 60 MB
    before = _rss()
    t = ts.asarray(a, chunk_size=chunk)
    grown = _rss() - before
    assert grown < 8 << 20, f"asarray grew RSS by {grown} bytes for a {a.nbytes}-byte array"
    assert repr(t).endswith("held)"), repr(t)  # shown without reading the array
    assert _rss() - before < 8 << 20
    np.testing.assert_allclose(float(t.sum()), a.sum(), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(t[5:9, ::-7]), a[5:9, ::-7])


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[::-1, ::2],  # negative and step strides
        lambda a: np.asfortranarray(a),  # column-major
        lambda a: a.T,
        lambda a: a[3],  # one row
        lambda a: a[:, 1:2],
    ],
)
@pytest.mark.parametrize("dtype", ["bool", "int32", "int64", "float32", "float64"])
def test_strided_views_of_every_dtype(view, dtype):
    rng = np.random.default_rng(5)
    a = (rng.standard_normal((40, 30)) * 50).astype(dtype)
    v = view(a)
    t = ts.asarray(v, chunk_size=7)
    assert t.dtype == v.dtype and t.shape == v.shape
    np.testing.assert_array_equal(t.to_numpy(), v)


def test_the_tensor_keeps_the_array_alive():
    def make():
        a = np.arange(100_000, dtype=np.float64)
        return ts.asarray(a, chunk_size=1000), a.copy()

    t, want = make()
    gc.collect()
    # Overwrite freed memory with other arrays, then read the tensor.
    junk = [np.full(100_000, -1.0) for _ in range(20)]
    np.testing.assert_array_equal(t.to_numpy(), want)
    del junk


def test_shares_like_numpy_asarray_and_copies_on_request():
    a = np.arange(10, dtype=np.int64)
    shared, copied, arr = ts.asarray(a), ts.asarray(a, copy=True), ts.array(a)
    a[0] = 100
    assert int(shared[0]) == 100  # a view, as np.asarray(a) is
    assert int(copied[0]) == 0
    assert int(arr[0]) == 0  # ts.array copies, as np.array does
    # Operands of operations are copied when the operation is recorded.
    b = np.ones(4)
    s = ts.ones(4) + b
    b[:] = 5
    np.testing.assert_array_equal(s.to_numpy(), np.full(4, 2.0))


def test_arrays_that_cannot_be_read_in_place_are_copied():
    raw = np.arange(17, dtype=np.float64).tobytes()
    unaligned = np.frombuffer(b"\0" + raw, dtype=np.float64, offset=1, count=16)
    assert not unaligned.flags.aligned
    np.testing.assert_array_equal(ts.asarray(unaligned).to_numpy(), unaligned)
    big_endian = np.arange(6, dtype=">f8")
    np.testing.assert_array_equal(ts.asarray(big_endian).to_numpy(), big_endian)
    # Bytes viewed as bool read as numpy reads them (any nonzero byte is true).
    flags = np.array([0, 1, 2, 255], dtype=np.uint8).view(bool)
    np.testing.assert_array_equal(ts.asarray(flags).to_numpy(), [False, True, True, True])


def test_lazy_expressions_over_a_shared_array_match_numpy():
    rng = np.random.default_rng(8)
    a = rng.random((500, 400)).astype(np.float32)
    t = ts.asarray(a, chunk_size=128)
    got = ((t * 2 - 1) ** 2).mean(axis=0)
    np.testing.assert_allclose(got.to_numpy(), ((a * 2 - 1) ** 2).mean(axis=0), rtol=1e-5)


def test_executing_a_shared_array_keeps_no_copy():
    a = np.random.default_rng(2).random((2000, 2500))  # 40 MB
    t = ts.asarray(a, chunk_size=500)
    before = ts._tessera.held_bytes()
    ts.execute(t, t + 1)
    # The sum of what the graph holds grew by the result of t + 1 only, not by a copy of a.
    assert ts._tessera.held_bytes() - before <= a.nbytes + (1 << 20)
    np.testing.assert_array_equal(t.to_numpy(), a)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
@pytest.mark.parametrize("chunk", [None, 256, (100, 64)])
def test_fused_kernels_read_a_contiguous_array_in_place(dtype, chunk):
    # A C-contiguous array is read by the fused kernels themselves (as the Rust path reads a
    # constant): no chunk task copies a box out of it first. A strided view is copied per chunk.
    a = (np.random.default_rng(5).random((300, 200)) * 100).astype(dtype)
    t = ts.asarray(a, chunk_size=chunk)
    got = ((t + 1) * 2).sum(axis=0)
    np.testing.assert_allclose(got.to_numpy(), ((a + 1) * 2).sum(axis=0), rtol=1e-5)
    assert ts.last_stats()["per_op"].get("external", 0) == 0, ts.last_stats()
    np.testing.assert_array_equal(((t + 1) * 2).to_numpy(), (a + 1) * 2)
    assert ts.last_stats()["per_op"].get("external", 0) == 0, ts.last_stats()
    v = ts.asarray(a[:, ::2], chunk_size=chunk)
    np.testing.assert_array_equal(((v + 1) * 2).to_numpy(), (a[:, ::2] + 1) * 2)
    assert ts.last_stats()["per_op"].get("external", 0) > 0, ts.last_stats()
