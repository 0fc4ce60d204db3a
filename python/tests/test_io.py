"""ts.load / ts.save / ts.fromfile / tofile: files numpy writes are read by Tessera chunk by
chunk and files Tessera writes chunk by chunk are read by numpy, bit for bit; errors are
numpy's exceptions naming the file; a failed write leaves no file behind."""

import os

import numpy as np
import pytest

import tessera as ts

DTYPES = ["bool", "int32", "int64", "float32", "float64"]


def _data(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) * 1e3
    return (a > 0) if dtype == "bool" else a.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "big"])
@pytest.mark.parametrize("chunk", [None, 7, (5, 30)])
def test_numpy_files_read_chunk_by_chunk(tmp_path, dtype, layout, chunk):
    a = _data((40, 30), dtype, 1)
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "big" and dtype != "bool":
        a = a.astype(a.dtype.newbyteorder(">"))
    p = tmp_path / "a.npy"
    np.save(p, a)
    t = ts.load(p, chunk_size=chunk)
    assert t.shape == a.shape and t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(t.to_numpy(), a)
    if dtype != "bool":
        want = ((a.astype(np.float64) + 1) * 2).sum(axis=0)
        np.testing.assert_allclose(((t + 1) * 2).sum(axis=0).to_numpy(), want, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (1000,), (17, 3, 11)])
def test_tensors_saved_chunk_by_chunk_read_by_numpy(tmp_path, dtype, shape):
    a = _data(shape, dtype, 2)
    t = ts.asarray(a, chunk_size=4)
    ts.save(tmp_path / "t", t)  # numpy appends .npy
    assert os.listdir(tmp_path) == ["t.npy"]
    got = np.load(tmp_path / "t.npy")
    assert got.dtype == a.dtype and got.shape == a.shape
    np.testing.assert_array_equal(got, a)
    # A numpy array goes through numpy; a tensor method writes the same file.
    t.to_npy(tmp_path / "u.npy")
    assert (tmp_path / "u.npy").read_bytes() == (tmp_path / "t.npy").read_bytes()


def test_expressions_over_files_and_file_to_file(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.random((500, 300))
    np.save(tmp_path / "a.npy", a)
    x = ts.load(tmp_path / "a.npy", chunk_size=(128, 300))
    ts.save(tmp_path / "b.npy", (x - x.mean(axis=0)) / x.std(axis=0))
    want = (a - a.mean(axis=0)) / a.std(axis=0)
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["int32", ">i4", "float64", ">f8", "bool"])
def test_fromfile_and_tofile_match_numpy(tmp_path, dtype):
    a = _data((24,), "bool" if dtype == "bool" else np.dtype(dtype).newbyteorder("=").name, 4)
    p = tmp_path / "r.bin"
    a.astype(dtype).tofile(p)
    np.testing.assert_array_equal(ts.fromfile(p, dtype=dtype).to_numpy(), np.fromfile(p, dtype=dtype))
    np.testing.assert_array_equal(
        ts.fromfile(p, dtype=dtype, count=5, offset=np.dtype(dtype).itemsize * 3).to_numpy(),
        np.fromfile(p, dtype=dtype, count=5, offset=np.dtype(dtype).itemsize * 3),
    )
    t = ts.fromfile(p, dtype=dtype, shape=(4, 6), chunk_size=(3, 4))
    np.testing.assert_array_equal(t.to_numpy(), np.fromfile(p, dtype=dtype).reshape(4, 6))
    t.tofile(tmp_path / "s.bin")  # file to file, chunk by chunk
    native = np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(np.fromfile(tmp_path / "s.bin", dtype=native), a.astype(native))


def test_errors_are_numpys_and_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        ts.load(tmp_path / "missing.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an array at all")
    with pytest.raises(ValueError, match="junk.npy"):
        ts.load(tmp_path / "junk.npy")
    np.save(tmp_path / "c.npy", np.ones(3, dtype=np.complex128))
    with pytest.raises(TypeError, match="c.npy"):
        ts.load(tmp_path / "c.npy")
    np.save(tmp_path / "short.npy", np.ones((100, 10)))
    with open(tmp_path / "short.npy", "r+b") as f:
        f.truncate(128 + 8 * 999)
    with pytest.raises(ValueError, match="truncated"):
        ts.load(tmp_path / "short.npy")
    with pytest.raises(FileNotFoundError, match="no-folder"):
        ts.save(tmp_path / "no-folder" / "x.npy", ts.ones(3))
    with pytest.raises(NotImplementedError):
        ts.fromfile(tmp_path / "short.npy", sep=" ")


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    np.save(tmp_path / "src.npy", np.ones((200, 50), dtype=np.float32))
    x = ts.load(tmp_path / "src.npy", chunk_size=(20, 50))
    with open(tmp_path / "src.npy", "r+b") as f:  # cut short after it was opened
        f.truncate(128 + 4 * 5000)
    (tmp_path / "out.npy").write_bytes(b"previous contents")
    with pytest.raises(ValueError, match="src.npy.*chunk.*ends before"):
        ts.save(tmp_path / "out.npy", (x + 1) * 2)
    assert (tmp_path / "out.npy").read_bytes() == b"previous contents"
    assert sorted(os.listdir(tmp_path)) == ["out.npy", "src.npy"]


def _peak_rss_reset():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def test_a_result_larger_than_its_chunks_is_never_whole_in_memory(tmp_path):
    n = 25_000_000  # 200 MB of float64
    x = ts.random.default_rng(5).random(n, chunk_size=1_000_000)
    before = _peak_rss()
    try:
        _peak_rss_reset()
        before = _peak_rss()
    except OSError:
        pytest.skip("the peak RSS cannot be reset here (/proc/self/clear_refs)")
    ts.save(tmp_path / "big.npy", (x + 1) * 2)
    grown = _peak_rss() - before
    assert grown < 100 << 20, f"writing a 200 MB result grew the peak RSS by {grown} bytes"
    assert os.path.getsize(tmp_path / "big.npy") == 128 + 8 * n
    y = np.load(tmp_path / "big.npy", mmap_mode="r")
    assert 1.99 < float(y[:1000].min()) and float(y[:1000].max()) < 4.0
    np.testing.assert_array_equal(y[-5:], ((x + 1) * 2)[-5:].to_numpy())


zarr = pytest.importorskip("zarr")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", [2, 3])
def test_zarr_python_arrays_read_by_tessera(tmp_path, dtype, fmt):
    a = _data((45, 31), dtype, 6)
    z = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=a.shape, chunks=(10, 8), dtype=a.dtype,
                          zarr_format=fmt)
    z[...] = a
    t = ts.from_zarr(tmp_path / "a.zarr")
    assert t.shape == a.shape and t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(t.to_numpy(), a)
    np.testing.assert_array_equal(ts.from_zarr(tmp_path / "a.zarr", chunks=(7, 31))[3:40:2].to_numpy(), a[3:40:2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", [
    dict(zarr_format=3), dict(zarr_format=3, compressor="gzip", checksum=True),
    dict(zarr_format=3, compressor=None, shards=(20, 16)), dict(zarr_format=2),
    dict(zarr_format=2, compressor="gzip"),
])
def test_tessera_arrays_read_by_zarr_python(tmp_path, dtype, opts):
    a = _data((45, 31), dtype, 7)
    t = ts.asarray(a, chunk_size=(10, 8))
    ts.to_zarr(t, tmp_path / "b.zarr", chunks=(10, 8), **opts)
    z = zarr.open_array(str(tmp_path / "b.zarr"), mode="r")
    assert z.shape == a.shape and z.dtype == a.dtype
    np.testing.assert_array_equal(z[...], a)
    assert os.listdir(tmp_path) == ["b.zarr"]


def test_zarr_existing_targets_and_errors(tmp_path):
    a = _data((20, 20), "float64", 8)
    ts.asarray(a).to_zarr(tmp_path / "c.zarr")
    with pytest.raises(OSError, match="c.zarr"):
        ts.to_zarr(ts.asarray(a * 2), tmp_path / "c.zarr")
    ts.to_zarr(ts.asarray(a * 2), tmp_path / "c.zarr", overwrite=True)
    np.testing.assert_array_equal(ts.from_zarr(tmp_path / "c.zarr").to_numpy(), a * 2)
    with pytest.raises(FileNotFoundError, match="missing.zarr"):
        ts.from_zarr(tmp_path / "missing.zarr")
    z = zarr.create_array(store=str(tmp_path / "u.zarr"), shape=(4,), chunks=(2,), dtype="uint8")
    z[...] = np.arange(4, dtype=np.uint8)
    with pytest.raises(TypeError, match="u.zarr"):
        ts.from_zarr(tmp_path / "u.zarr")
    with pytest.raises(NotImplementedError):
        ts.from_zarr("s3://bucket/x.zarr")


_FULL_DISK_CHILD = r"""
import os, sys
import numpy as np
import tessera as ts
d = sys.argv[1]
x = ts.random.default_rng(1).random(2_500_000, chunk_size=250_000)  # 20 MB
for name, write in [("x.npy", lambda p: ts.save(p, x)), ("x.zarr", lambda p: ts.to_zarr(x, p, compressor=None))]:
    try:
        write(os.path.join(d, name))
    except OSError as e:
        print("error:", name, e)
    else:
        print("no error:", name)
print("left:", sorted(os.listdir(d)))
"""


def _write_in_namespace(d, mount):
    """Runs _FULL_DISK_CHILD on folder d after `mount` (shell) in a mount namespace of the
    child's own; skips where no namespace or mount can be had."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) for a mount namespace")
    script = f'{mount} && exec "{sys.executable}" -c "$0" "{d}"'
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, _FULL_DISK_CHILD],
                       capture_output=True, text=True)
    if r.returncode != 0 and "mount" in r.stderr + r.stdout and "error:" not in r.stdout:
        pytest.skip(f"cannot mount here: {r.stderr.strip()[:200]}")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(l.startswith("error: x.npy") and "x.npy" in l for l in lines), r.stdout
    assert any(l.startswith("error: x.zarr") and "x.zarr" in l for l in lines), r.stdout
    return lines


def test_a_full_disk_is_an_error_and_leaves_nothing(tmp_path):
    # A 4 MiB tmpfs: the writes run out of space mid-run.
    d = tmp_path / "small"
    d.mkdir()
    lines = _write_in_namespace(d, f'mount -t tmpfs -o size=4m tmpfs "{d}"')
    assert "left: []" in lines


def test_an_unwritable_folder_is_an_error_and_changes_nothing(tmp_path):
    # The folder bound read-only onto itself: even root cannot write there (EROFS).
    d = tmp_path / "ro"
    d.mkdir()
    (d / "keep.txt").write_text("kept")
    lines = _write_in_namespace(d, f'mount --bind "{d}" "{d}" && mount -o remount,bind,ro "{d}"')
    assert "left: ['keep.txt']" in lines
    assert (d / "keep.txt").read_text() == "kept"


def test_blosc_arrays_both_ways(tmp_path):
    import numcodecs
    from zarr.codecs import BloscCodec

    x = np.random.default_rng(7).standard_normal((40, 30)).astype(np.float32)
    z = zarr.create_array(store=str(tmp_path / "v3.zarr"), shape=x.shape, chunks=(16, 16),
                          dtype=x.dtype, compressors=BloscCodec(cname="zstd", shuffle="bitshuffle"))
    z[...] = x
    z2 = zarr.create_array(store=str(tmp_path / "v2.zarr"), shape=x.shape, chunks=(16, 8),
                           dtype=x.dtype, zarr_format=2,
                           compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1))
    z2[...] = x
    for p in ["v3.zarr", "v2.zarr"]:
        np.testing.assert_array_equal(np.asarray(ts.from_zarr(tmp_path / p)), x)
    t = ts.asarray(x, chunk_size=(16, 16))
    for fmt in (3, 2):
        out = tmp_path / f"out{fmt}.zarr"
        ts.to_zarr(t * 2, out, zarr_format=fmt, compressor="blosc", level=5)
        back = zarr.open_array(str(out), mode="r")
        np.testing.assert_array_equal(back[...], x * 2)
        meta = (out / ("zarr.json" if fmt == 3 else ".zarray")).read_text()
        assert "blosc" in meta


def test_a_codec_tessera_lacks_is_a_type_error_naming_it(tmp_path):
    import numcodecs

    z = zarr.create_array(store=str(tmp_path / "b.zarr"), shape=(8,), chunks=(4,), dtype="float64",
                          zarr_format=2, compressors=numcodecs.BZ2())
    z[...] = np.arange(8.0)
    with pytest.raises(TypeError, match="bz2"):
        ts.from_zarr(tmp_path / "b.zarr")
