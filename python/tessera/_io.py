"""Arrays on disk: ``load``/``save`` (numpy's ``.npy``), ``fromfile``/``tofile`` (raw
binary) and ``from_zarr``/``to_zarr`` (Zarr v2 and v3 on the local file system), read and written chunk by chunk, so an array larger than memory is never whole in
memory. A write goes to a temporary file renamed into place once complete: a failed or
interrupted write leaves no file that looks complete."""

import os

import numpy as np

from . import _dtypes
from . import _tessera as _raw
from ._tensor import Tensor


def _path(file, what):
    if isinstance(file, (str, bytes, os.PathLike)):
        return os.fsdecode(os.fspath(file))
    return None


def load(file, mmap_mode=None, allow_pickle=False, fix_imports=True, encoding="ASCII", *,
         max_header_size=None, chunk_size=None):
    """numpy.load for ``.npy`` files: a lazy tensor over the file, read chunk by chunk when a
    run needs it (``mmap_mode`` is accepted: the file is never read whole anyway). Both byte
    orders and C or Fortran order. ``chunk_size=`` sets the chunks. An open file object is read
    with numpy and wrapped; ``.npz`` archives and pickled object arrays are not supported."""
    path = _path(file, "load")
    if path is None:
        return _from_array(np.load(file, allow_pickle=False), chunk_size)
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"PK"):
        raise NotImplementedError(f"load: {path} is an .npz archive; tessera reads .npy files")
    t = Tensor(_raw.load_npy(path))
    return t.rechunk(chunk_size) if chunk_size is not None else t


def save(file, arr, allow_pickle=True, fix_imports=True):
    """numpy.save: writes ``arr`` to ``file`` (``.npy`` appended to a name without it), chunk by
    chunk as a tensor's chunks are computed. Returns None."""
    path = _path(file, "save")
    if path is None or not isinstance(arr, Tensor):
        np.save(file, np.asarray(arr), allow_pickle=False)
        return None
    if not path.endswith(".npy"):
        path += ".npy"
    _raw.save_file(arr._t, path, False)
    return None


def fromfile(file, dtype=float, count=-1, sep="", offset=0, *, like=None, shape=None,
             chunk_size=None):
    """numpy.fromfile for binary files: a lazy tensor over ``count`` items of ``dtype`` from
    byte ``offset`` (``count=-1``: to the end of the file), in the dtype's byte order, read
    chunk by chunk. ``shape=`` (a Tessera extension) gives the C-order shape of the data
    instead of a flat count. Text files (``sep`` other than '') are not supported."""
    if sep != "":
        raise NotImplementedError("fromfile: text files (sep != '') are not supported")
    path = _path(file, "fromfile")
    if path is None:
        raise TypeError("fromfile: tessera reads files by path (str or os.PathLike)")
    dt = np.dtype(dtype)
    name = _dtypes.dtype_name(dt.newbyteorder("="))
    if offset < 0:
        raise ValueError(f"fromfile: offset {offset} is negative")
    if shape is None:
        if count < 0:
            size = os.stat(path).st_size - offset
            if size < 0:
                raise ValueError(f"fromfile: offset {offset} is past the end of {path}")
            count = size // dt.itemsize
        shape = (int(count),)
    elif count != -1:
        raise ValueError("fromfile: give count or shape, not both")
    shape = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    big = dt.byteorder == ">" or (dt.byteorder == "=" and not np.little_endian)
    t = Tensor(_raw.from_raw(path, name, list(shape), int(offset), bool(big)))
    return t.rechunk(chunk_size) if chunk_size is not None else t


def tofile(arr, file):
    """ndarray.tofile: the raw data (C order, this machine's byte order), chunk by chunk."""
    path = _path(file, "tofile")
    if path is None:
        np.asarray(arr).tofile(file)
        return None
    _raw.save_file(arr._t, path, True)
    return None


def _from_array(a, chunk_size):
    from ._api import asarray

    return asarray(a, chunk_size=chunk_size)


def _zarr_path(url, component, what):
    path = _path(url, what)
    if path is None:
        raise TypeError(f"{what}: tessera reads and writes Zarr arrays by path (str or os.PathLike)")
    if path.startswith("file://"):
        path = path[len("file://"):]
    if "://" in path:
        raise NotImplementedError(f"{what}: only local paths are supported, not {path!r}")
    return os.path.join(path, component) if component else path


def from_zarr(url, component=None, *, chunks=None, chunk_size=None):
    """dask.array.from_zarr: a lazy tensor over the Zarr array (v2 or v3) at ``url`` (a local
    path; ``component`` a path inside it), read chunk by chunk. Tessera's chunks are the
    store's chunks unless ``chunks=`` (or ``chunk_size=``) says otherwise. Codecs: zstd,
    gzip, zlib, crc32c, sharding (blosc is not built in)."""
    path = _zarr_path(url, component, "from_zarr")
    t = Tensor(_raw.from_zarr(path))
    chunks = chunks if chunks is not None else chunk_size
    return t.rechunk(chunks) if chunks is not None else t


def to_zarr(arr, url, component=None, overwrite=False, *, zarr_format=3, chunks=None,
            compressor="zstd", level=None, checksum=False, shards=None):
    """dask.array.to_zarr: writes ``arr`` to a Zarr array at ``url`` (a local path) chunk by
    chunk, each store chunk (or shard) written once as it is computed. The array appears only
    once complete; an existing Zarr array there is replaced only with ``overwrite=True``.
    ``zarr_format`` 3 (default) or 2; ``chunks`` the store's chunk shape (default: the tensor's
    chunks); ``compressor`` 'zstd' (default), 'gzip', 'blosc' (lz4, byte shuffle) or None; ``checksum=True`` adds crc32c
    (v3); ``shards`` a shard shape holding whole chunks (v3)."""
    from ._api import asarray

    path = _zarr_path(url, component, "to_zarr")
    t = arr if isinstance(arr, Tensor) else asarray(arr)
    if chunks is not None:
        chunks = [int(c) for c in (chunks if isinstance(chunks, (tuple, list)) else [chunks] * t.ndim)]
    if shards is not None:
        shards = [int(c) for c in (shards if isinstance(shards, (tuple, list)) else [shards] * t.ndim)]
    name = "none" if compressor is None else str(compressor).lower()
    if level is None:
        level = 3 if name == "zstd" else 5
    _raw.to_zarr(t._t, path, int(zarr_format), chunks, name, int(level), bool(checksum), shards,
                 bool(overwrite))
    return None
