//! Zarr arrays (v2 and v3, on the local file system) read and written chunk by chunk through
//! the `zarrs` crate: codecs zstd, gzip/zlib, crc32c checksums and sharding.
//!
//! Reads decode whole store chunks (shards, when sharded) and cut the box a Tessera chunk needs
//! out of them: a checksum is then always checked (zarrs's partial decoders skip it). By default
//! Tessera's chunks are the store's chunks, so each Tessera chunk decodes one store chunk.
//!
//! Writes go to a temporary folder beside the target: every chunk first, the metadata last,
//! then one rename puts the finished array in place. A failed or interrupted job leaves no
//! array that looks complete (and removes the temporary folder it created).

use super::{host_of, FileWriterFinish};
use crate::array::{HostArray, Region};
use crate::dtype::DType;
use crate::error::{Error, FileError, Result};
use crate::external::{check_region, ChunkSink, ExternalArray};
use crate::session::Session;
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zarrs::array::{Array, ArrayBuilder, ArrayMetadata, ArrayMetadataOptions, DataType};
use zarrs::filesystem::{FilesystemStore, FilesystemStoreOptions};
use zarrs::plugin::ExtensionName;

/// A Zarr array in a folder, read chunk by chunk.
pub struct ZarrArray {
    path: PathBuf,
    array: Array<FilesystemStore>,
    shape: Vec<usize>,
    dtype: DType,
    /// The store's (regular) chunk shape: shards, when sharded.
    chunk: Vec<usize>,
    version: u8,
}

impl std::fmt::Debug for ZarrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

fn zerr(path: &Path, kind: FileError, what: &str, e: impl std::fmt::Display) -> Error {
    Error::file(path, kind, format!("{what}: {e}"))
}

fn dtype_of(path: &Path, dt: &DataType) -> Result<DType> {
    use zarrs::array::data_type as z;
    Ok(if dt.is::<z::BoolDataType>() {
        DType::Bool
    } else if dt.is::<z::Int32DataType>() {
        DType::I32
    } else if dt.is::<z::Int64DataType>() {
        DType::I64
    } else if dt.is::<z::Float32DataType>() {
        DType::F32
    } else if dt.is::<z::Float64DataType>() {
        DType::F64
    } else {
        return Err(Error::file(
            path,
            FileError::Unsupported,
            format!("data type {dt} is not one Tessera has (bool, int32, int64, float32, float64)"),
        ));
    })
}

fn zarr_dtype(dtype: DType) -> DataType {
    use zarrs::array::data_type as z;
    match dtype {
        DType::Bool => z::bool(),
        DType::I32 => z::int32(),
        DType::I64 => z::int64(),
        DType::F32 => z::float32(),
        DType::F64 => z::float64(),
    }
}

impl ZarrArray {
    /// Opens the array at `path` (a folder holding `zarr.json` or `.zarray`).
    ///
    /// # Errors
    /// A missing folder or metadata, a malformed one, a data type Tessera lacks or an irregular
    /// chunk grid ([`Error::File`]).
    pub fn open(path: &Path) -> Result<ZarrArray> {
        if !path.is_dir() {
            return Err(Error::file(
                path,
                FileError::NotFound,
                "no Zarr array here (not a folder)",
            ));
        }
        // Chunk files are read with direct I/O where the file system takes it (a probe read
        // of the metadata file through O_DIRECT): through the page cache, reads of large chunk
        // files stopped at 40% of the disk's bandwidth; direct, they reach it.
        let mut so = FilesystemStoreOptions::default();
        so.direct_io(direct_read_works(path));
        let store = Arc::new(
            FilesystemStore::new_with_options(path, so)
                .map_err(|e| zerr(path, FileError::Io, "open", e))?,
        );
        let array = Array::open(store, "/").map_err(|e| {
            let has_meta = path.join("zarr.json").exists() || path.join(".zarray").exists();
            let text = format!("{e} ({e:?})");
            if !has_meta {
                zerr(path, FileError::NotFound, "opening the Zarr array", e)
            } else if text.to_lowercase().contains("unsupported") || text.contains("not supported")
            {
                Error::file(
                    path,
                    FileError::Unsupported,
                    format!(
                        "opening the Zarr array: {e} (Tessera reads the codecs blosc, zstd, \
                         gzip, zlib, crc32c and sharding)"
                    ),
                )
            } else {
                zerr(path, FileError::Malformed, "opening the Zarr array", e)
            }
        })?;
        let version = match array.metadata() {
            ArrayMetadata::V3(_) => 3,
            ArrayMetadata::V2(_) => 2,
        };
        let dtype = dtype_of(path, array.data_type())?;
        let shape: Vec<usize> = array.shape().iter().map(|&d| d as usize).collect();
        if array.chunk_grid().name_v3().as_deref() != Some("regular") {
            return Err(Error::file(
                path,
                FileError::Unsupported,
                "only regular chunk grids are read",
            ));
        }
        let chunk: Vec<usize> = array
            .chunk_shape(&vec![0; shape.len()])
            .map_err(|e| zerr(path, FileError::Malformed, "chunk shape", e))?
            .iter()
            .map(|d| d.get() as usize)
            .collect();
        Ok(ZarrArray {
            path: path.to_path_buf(),
            array,
            shape,
            dtype,
            chunk,
            version,
        })
    }

    /// The store's chunk shape (the shard shape when sharded).
    pub fn chunk_shape(&self) -> &[usize] {
        &self.chunk
    }

    /// Zarr format version (2 or 3).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The bytes (this machine's order) of store chunk `idx`, whole (padded at the edges).
    fn chunk_bytes(&self, idx: &[u64], region: &Region) -> Result<Vec<u8>> {
        let err = |e: &dyn std::fmt::Display| {
            zerr(
                &self.path,
                FileError::Malformed,
                &format!("store chunk {idx:?} (for the box {region:?})"),
                e,
            )
        };
        let bytes: zarrs::array::ArrayBytes<'_> =
            self.array.retrieve_chunk(idx).map_err(|e| err(&e))?;
        let fixed = bytes.into_fixed().map_err(|e| err(&e))?;
        let n: usize = self.chunk.iter().product();
        if fixed.len() != n * self.dtype.size() {
            return Err(err(&format!(
                "decoded to {} bytes, {} expected",
                fixed.len(),
                n * self.dtype.size()
            )));
        }
        Ok(fixed.into_owned())
    }
}

impl ExternalArray for ZarrArray {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn read(&self, region: &Region) -> Result<HostArray> {
        check_region("zarr", region, &self.shape)?;
        let es = self.dtype.size();
        let out_shape: Vec<usize> = region.iter().map(|&(s, e)| e - s).collect();
        // Decoded bytes are in this machine's order.
        let big = cfg!(target_endian = "big");
        // The box is exactly one whole store chunk (the default chunking, away from the
        // edges): its decoded bytes are the result, with no copy between.
        let whole = !self.chunk.is_empty()
            && out_shape == self.chunk
            && region
                .iter()
                .zip(&self.chunk)
                .all(|(&(s, _), &c)| s.is_multiple_of(c));
        if whole {
            let idx: Vec<u64> = region
                .iter()
                .zip(&self.chunk)
                .map(|(&(s, _), &c)| (s / c) as u64)
                .collect();
            let bytes = self.chunk_bytes(&idx, region)?;
            return Ok(host_of(&bytes, self.dtype, big, &out_shape));
        }
        let n: usize = out_shape.iter().product();
        let mut out = vec![0u8; n * es];
        if n > 0 {
            let nd = self.shape.len();
            // Store chunks the box touches, per axis.
            let ranges: Vec<(usize, usize)> = region
                .iter()
                .zip(&self.chunk)
                .map(|(&(s, e), &c)| (s / c, (e - 1) / c + 1))
                .collect();
            let counts: Vec<usize> = ranges.iter().map(|&(a, b)| b - a).collect();
            let out_strides = crate::ir::row_major_strides(&out_shape);
            let chunk_strides = crate::ir::row_major_strides(&self.chunk);
            for rel in crate::chunk::grid_indices(&counts) {
                let idx: Vec<usize> = rel.iter().zip(&ranges).map(|(i, r)| i + r.0).collect();
                let idx64: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
                let bytes = self.chunk_bytes(&idx64, region)?;
                // The part of the box inside this chunk, in global coordinates.
                let part: Region = (0..nd)
                    .map(|a| {
                        let c0 = idx[a] * self.chunk[a];
                        (region[a].0.max(c0), region[a].1.min(c0 + self.chunk[a]))
                    })
                    .collect();
                let part_shape: Vec<usize> = part.iter().map(|&(s, e)| e - s).collect();
                let row = part_shape.last().copied().unwrap_or(1);
                for r in crate::chunk::grid_indices(&part_shape[..nd.saturating_sub(1)]) {
                    // Offsets of the row's first element in the chunk and in the box.
                    let mut src = 0usize;
                    let mut dst = 0usize;
                    for a in 0..nd {
                        let g = part[a].0 + if a + 1 < nd { r[a] } else { 0 };
                        src += (g - idx[a] * self.chunk[a]) * chunk_strides[a];
                        dst += (g - region[a].0) * out_strides[a];
                    }
                    out[dst * es..(dst + row) * es]
                        .copy_from_slice(&bytes[src * es..(src + row) * es]);
                }
            }
        }
        Ok(host_of(&out, self.dtype, big, &out_shape))
    }
    fn describe(&self) -> String {
        format!(
            "Zarr v{} array {} of shape {:?} {}",
            self.version,
            self.path.display(),
            self.shape,
            self.dtype
        )
    }
}

/// A lazy tensor over the Zarr array at `path` (v2 or v3), read chunk by chunk; its chunks are
/// the store's chunks unless `chunks` says otherwise.
///
/// # Errors
/// As [`ZarrArray::open`].
pub fn from_zarr(s: &Session, path: impl AsRef<Path>, chunks: Option<&[usize]>) -> Result<Tensor> {
    let a = ZarrArray::open(path.as_ref())?;
    let store_chunks = a.chunk.clone();
    let t = s.from_external(Arc::new(a));
    match chunks {
        Some(c) => t.with_chunks(c),
        None if store_chunks.is_empty() => Ok(t),
        None => t.with_chunks(&store_chunks),
    }
}

/// The compression of a written Zarr array's chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZarrCompressor {
    /// Uncompressed.
    None,
    /// zstd at a level (zarr-python's default codec).
    Zstd(i32),
    /// gzip at a level (0 to 9).
    Gzip(u32),
    /// blosc with lz4 and byte shuffling at a level (0 to 9): zarr-python 2's default codec.
    Blosc(u8),
}

/// How [`to_zarr`] writes an array.
#[derive(Debug, Clone, PartialEq)]
pub struct ZarrOptions {
    /// Zarr format: 3 (default) or 2.
    pub version: u8,
    /// The store's chunk shape (default: the tensor's own chunks).
    pub chunks: Option<Vec<usize>>,
    /// Chunk compression (default zstd level 3).
    pub compressor: ZarrCompressor,
    /// A crc32c checksum after the codecs (v3 only): a damaged chunk is an error naming it.
    pub checksum: bool,
    /// Shards (v3 only): each shard of this shape holds chunks of `chunks`; Tessera then
    /// writes whole shards.
    pub shards: Option<Vec<usize>>,
    /// Replace an existing Zarr array at the target.
    pub overwrite: bool,
}

impl Default for ZarrOptions {
    fn default() -> Self {
        ZarrOptions {
            version: 3,
            chunks: None,
            compressor: ZarrCompressor::Zstd(3),
            checksum: false,
            shards: None,
            overwrite: false,
        }
    }
}

/// A Zarr array being written chunk by chunk into a temporary folder beside the target.
pub struct ZarrWriter {
    target: PathBuf,
    tmp: PathBuf,
    array: Array<FilesystemStore>,
    shape: Vec<usize>,
    dtype: DType,
    /// The grid Tessera writes in: the store's chunks, or its shards.
    grid: Vec<usize>,
    overwrite: bool,
    finished: bool,
}

impl std::fmt::Debug for ZarrWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

fn nonzero(path: &Path, what: &str, v: &[usize]) -> Result<Vec<std::num::NonZeroU64>> {
    v.iter()
        .map(|&d| {
            std::num::NonZeroU64::new(d as u64).ok_or_else(|| {
                Error::invalid(
                    "to_zarr",
                    format!("{}: {what} {v:?} has a zero extent", path.display()),
                )
            })
        })
        .collect()
}

/// Whether files in `dir` (a folder of ours) can be written with `O_DIRECT`: a probe file
/// written once and removed (tmpfs, for one, refuses the flag).
fn direct_io_works(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        const PAGE: usize = 4096;
        let probe = dir.join(".direct-io-probe");
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe);
        let Ok(mut f) = opened else {
            return false;
        };
        let buf = vec![0u8; 2 * PAGE];
        let start = buf.as_ptr().align_offset(PAGE);
        let ok = start < PAGE && f.write_all(&buf[start..start + PAGE]).is_ok();
        drop(f);
        // The probe is ours: created new (O_EXCL) in a folder we created.
        let _ = std::fs::remove_file(&probe);
        ok
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        false
    }
}

/// Whether the metadata file in `dir` can be read with `O_DIRECT` (one aligned page).
fn direct_read_works(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        const PAGE: usize = 4096;
        ["zarr.json", ".zarray"].iter().any(|m| {
            let Ok(mut f) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(dir.join(m))
            else {
                return false;
            };
            let mut buf = vec![0u8; 2 * PAGE];
            let start = buf.as_ptr().align_offset(PAGE);
            start < PAGE && f.read(&mut buf[start..start + PAGE]).is_ok()
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        false
    }
}

impl ZarrWriter {
    /// Creates the temporary folder and the array's description (nothing of the array is
    /// written yet).
    ///
    /// # Errors
    /// A bad option (a chunk shape of the wrong rank, sharding in v2), a target that exists
    /// (without `overwrite`, or not a Zarr array), an unwritable folder.
    pub fn create(
        target: &Path,
        shape: &[usize],
        dtype: DType,
        chunks: &[usize],
        o: &ZarrOptions,
    ) -> Result<ZarrWriter> {
        let bad = |msg: String| Error::invalid("to_zarr", format!("{}: {msg}", target.display()));
        if chunks.len() != shape.len() {
            return Err(bad(format!(
                "chunk shape {chunks:?} does not fit the array's shape {shape:?}"
            )));
        }
        if o.version != 2 && o.version != 3 {
            return Err(bad(format!("Zarr format {} (2 or 3)", o.version)));
        }
        if o.version == 2 && (o.checksum || o.shards.is_some()) {
            return Err(bad("checksums and sharding need Zarr format 3".into()));
        }
        if let Some(sh) = &o.shards {
            let fits = sh.len() == chunks.len()
                && sh
                    .iter()
                    .zip(chunks)
                    .all(|(&s, &c)| c > 0 && s.is_multiple_of(c));
            if !fits {
                return Err(bad(format!(
                    "shard shape {sh:?} is not a whole number of chunks {chunks:?}"
                )));
            }
        }
        if target.exists() {
            let is_zarr = target.join("zarr.json").exists() || target.join(".zarray").exists();
            if !o.overwrite || !is_zarr {
                return Err(Error::file(
                    target,
                    FileError::Io,
                    if is_zarr {
                        "a Zarr array exists there (overwrite it on request only)"
                    } else {
                        "something that is not a Zarr array exists there; it is left alone"
                    },
                ));
            }
        }
        let tmp = super::temp_beside(target)?;
        std::fs::create_dir(&tmp)
            .map_err(|e| Error::file_io(target, "creating a temporary folder beside it", &e))?;
        let cleanup = |e: Error| {
            // The folder is ours: created new under a random name, nothing written in it yet.
            let _ = std::fs::remove_dir_all(&tmp);
            e
        };
        // Chunk files are written with direct I/O where the file system takes it: zarrs syncs
        // every chunk file, and through the page cache that sync is the write's bottleneck.
        let mut store_options = FilesystemStoreOptions::default();
        store_options.direct_io(direct_io_works(&tmp));
        let store = FilesystemStore::new_with_options(&tmp, store_options)
            .map(Arc::new)
            .map_err(|e| cleanup(zerr(target, FileError::Io, "open", e)))?;
        let grid = o.shards.clone().unwrap_or_else(|| chunks.to_vec());
        let shape64: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let array = if o.version == 3 {
            build_v3(store, &shape64, chunks, dtype, o, target)
        } else {
            build_v2(store, &shape64, chunks, dtype, o, target)
        }
        .map_err(cleanup)?;
        Ok(ZarrWriter {
            target: target.to_path_buf(),
            tmp,
            array,
            shape: shape.to_vec(),
            dtype,
            grid,
            overwrite: o.overwrite,
            finished: false,
        })
    }

    /// The grid Tessera must write in (each chunk of the result one cell of it).
    pub fn grid(&self) -> &[usize] {
        &self.grid
    }
}

fn fill_value(dtype: DType) -> zarrs::array::FillValueMetadata {
    let v = match dtype {
        DType::Bool => serde_json::json!(false),
        _ => serde_json::json!(0),
    };
    serde_json::from_value(v).expect("a fill value literal")
}

fn build_v3(
    store: Arc<FilesystemStore>,
    shape: &[u64],
    chunks: &[usize],
    dtype: DType,
    o: &ZarrOptions,
    target: &Path,
) -> Result<Array<FilesystemStore>> {
    use zarrs::array::codec::{
        BytesCodec, Crc32cCodec, GzipCodec, ShardingCodecBuilder, ZstdCodec,
    };
    let err = |e: &dyn std::fmt::Display| zerr(target, FileError::Io, "describing the array", e);
    let mut b2b: Vec<Arc<dyn zarrs::array::codec::api::BytesToBytesCodecTraits>> = Vec::new();
    match o.compressor {
        ZarrCompressor::None => {}
        ZarrCompressor::Zstd(level) => b2b.push(Arc::new(ZstdCodec::new(level, false))),
        ZarrCompressor::Gzip(level) => {
            b2b.push(Arc::new(GzipCodec::new(level).map_err(|e| err(&e))?))
        }
        ZarrCompressor::Blosc(level) => {
            use zarrs::array::codec::BloscCodec;
            use zarrs::metadata_ext::codec::blosc::{BloscCompressor, BloscShuffleMode};
            let level = level
                .min(9)
                .try_into()
                .map_err(|l| err(&format!("blosc level {l}")))?;
            let size = dtype.size();
            b2b.push(Arc::new(
                BloscCodec::new(
                    BloscCompressor::LZ4,
                    level,
                    None,
                    BloscShuffleMode::Shuffle,
                    Some(size),
                )
                .map_err(|e| err(&e))?,
            ))
        }
    }
    if o.checksum {
        b2b.push(Arc::new(Crc32cCodec::new()));
    }
    let grid: Vec<u64> = o
        .shards
        .as_ref()
        .unwrap_or(&chunks.to_vec())
        .iter()
        .map(|&d| d as u64)
        .collect();
    let mut b = ArrayBuilder::new(shape.to_vec(), grid, zarr_dtype(dtype), fill_value(dtype));
    match &o.shards {
        None => {
            b.array_to_bytes_codec(Arc::new(BytesCodec::little()));
            b.bytes_to_bytes_codecs(b2b);
        }
        Some(_) => {
            let inner = nonzero(target, "chunk shape", chunks)?;
            let sharding = ShardingCodecBuilder::new(inner, &zarr_dtype(dtype))
                .bytes_to_bytes_codecs(b2b)
                .build_arc();
            b.array_to_bytes_codec(sharding);
        }
    }
    let mut a = b.build(store, "/").map_err(|e| err(&e))?;
    a.set_metadata_options(ArrayMetadataOptions::default().with_include_zarrs_metadata(false));
    Ok(a)
}

fn build_v2(
    store: Arc<FilesystemStore>,
    shape: &[u64],
    chunks: &[usize],
    dtype: DType,
    o: &ZarrOptions,
    target: &Path,
) -> Result<Array<FilesystemStore>> {
    use zarrs::array::ArrayMetadataV2;
    use zarrs::metadata::v2::MetadataV2;
    use zarrs::metadata::ChunkKeySeparator;
    let err = |e: &dyn std::fmt::Display| zerr(target, FileError::Io, "describing the array", e);
    let compressor = match o.compressor {
        ZarrCompressor::None => None,
        ZarrCompressor::Zstd(level) => Some(serde_json::json!({"id": "zstd", "level": level})),
        ZarrCompressor::Gzip(level) => Some(serde_json::json!({"id": "gzip", "level": level})),
        ZarrCompressor::Blosc(level) => Some(serde_json::json!({
            "id": "blosc", "cname": "lz4", "clevel": level.min(9), "shuffle": 1, "blocksize": 0
        })),
    }
    .map(serde_json::from_value::<MetadataV2>)
    .transpose()
    .map_err(|e| err(&e))?;
    let dtype_v2 = super::npy::descr_of(dtype);
    let meta = ArrayMetadataV2::new(
        shape.to_vec(),
        nonzero(target, "chunk shape", chunks)?,
        dtype_v2.into(),
        fill_value(dtype),
        compressor,
        None,
    )
    .with_dimension_separator(ChunkKeySeparator::Dot);
    let mut a =
        Array::new_with_metadata(store, "/", ArrayMetadata::V2(meta)).map_err(|e| err(&e))?;
    a.set_metadata_options(ArrayMetadataOptions::default().with_include_zarrs_metadata(false));
    Ok(a)
}

impl ChunkSink for ZarrWriter {
    fn write(&self, region: &Region, data: &HostArray) -> Result<()> {
        check_region("to_zarr", region, &self.shape)?;
        let nd = self.shape.len();
        let aligned = (0..nd).all(|a| {
            region[a].0.is_multiple_of(self.grid[a])
                && region[a].1 == (region[a].0 + self.grid[a]).min(self.shape[a])
        });
        if !aligned || data.dtype() != self.dtype || data.shape().len() != nd {
            return Err(Error::file(
                &self.target,
                FileError::Io,
                format!(
                    "chunk {region:?} ({} {:?}) is not one cell of the store's grid {:?} of {}",
                    data.dtype(),
                    data.shape(),
                    self.grid,
                    self.dtype
                ),
            ));
        }
        if region.iter().any(|&(s, e)| s == e) {
            return Ok(());
        }
        let idx: Vec<u64> = (0..nd)
            .map(|a| (region[a].0 / self.grid[a]) as u64)
            .collect();
        // The whole (padded) cell: edge cells are padded with the fill value.
        fn padded<T: Copy + Default>(x: &ndarray::ArrayD<T>, grid: &[usize]) -> Vec<T> {
            if x.shape() == grid {
                return x.iter().copied().collect();
            }
            let mut full = ndarray::ArrayD::<T>::default(ndarray::IxDyn(grid));
            let s: Vec<ndarray::SliceInfoElem> = x
                .shape()
                .iter()
                .map(|&n| ndarray::SliceInfoElem::from(0..n))
                .collect();
            full.slice_mut(s.as_slice()).assign(x);
            full.iter().copied().collect()
        }
        let g = &self.grid;
        let a = &self.array;
        let r = match data {
            HostArray::Bool(x) => a.store_chunk(&idx, padded(x, g)),
            HostArray::I32(x) => a.store_chunk(&idx, padded(x, g)),
            HostArray::I64(x) => a.store_chunk(&idx, padded(x, g)),
            HostArray::F32(x) => a.store_chunk(&idx, padded(x, g)),
            HostArray::F64(x) => a.store_chunk(&idx, padded(x, g)),
        };
        r.map_err(|e| {
            zerr(
                &self.target,
                FileError::Io,
                &format!("writing the chunk {region:?}"),
                e,
            )
        })
    }
    fn describe(&self) -> String {
        format!("Zarr array {}", self.target.display())
    }
}

impl FileWriterFinish for ZarrWriter {
    fn finish(mut self) -> Result<()> {
        let t = &self.target;
        self.array
            .store_metadata()
            .map_err(|e| zerr(t, FileError::Io, "writing the metadata", e))?;
        super::sync_dir(&self.tmp);
        if self.target.exists() && self.overwrite {
            // Replaced on request: the old array moves aside under a new name of ours, the new
            // one takes its place, then the old one goes.
            let old = super::temp_beside(t)?;
            std::fs::rename(t, &old)
                .map_err(|e| Error::file_io(t, "moving the old array aside", &e))?;
            if let Err(e) = std::fs::rename(&self.tmp, t) {
                let _ = std::fs::rename(&old, t);
                return Err(Error::file_io(
                    t,
                    "renaming the finished array into place",
                    &e,
                ));
            }
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&self.tmp, t)
                .map_err(|e| Error::file_io(t, "renaming the finished array into place", &e))?;
        }
        self.finished = true;
        if let Some(dir) = t.parent() {
            super::sync_dir(dir);
        }
        Ok(())
    }
}

impl Drop for ZarrWriter {
    fn drop(&mut self) {
        if !self.finished {
            // The temporary folder is ours (created new under a random name).
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Writes `t` to a Zarr array at `path` chunk by chunk (each chunk of the store, or each shard,
/// written once, as it finishes); the array appears at `path` only once complete.
///
/// # Errors
/// Bad options, an existing target, graph, backend and write errors; on any of them nothing is
/// left at `path` (an existing array is kept) and the temporary folder is removed.
pub fn to_zarr(t: &Tensor, path: impl AsRef<Path>, o: &ZarrOptions) -> Result<()> {
    let chunks = match &o.chunks {
        Some(c) => c.clone(),
        // The tensor's own chunks, as the Tiler cuts it (the first chunk along each axis).
        None => {
            let (_, tiled) = t.session().plan(&[t])?;
            tiled[0]
                .grid
                .iter()
                .map(|g| g.first().copied().unwrap_or(1))
                .collect()
        }
    };
    let chunks: Vec<usize> = chunks
        .iter()
        .zip(t.shape())
        .map(|(&c, &d)| c.min(d.max(1)).max(1))
        .collect();
    let w = ZarrWriter::create(path.as_ref(), t.shape(), t.dtype(), &chunks, o)?;
    let cut = if t.ndim() == 0 {
        t.clone()
    } else {
        t.with_chunks(w.grid())?
    };
    super::write_with(&cut, w)
}

impl Tensor {
    /// Writes this tensor to a Zarr array at `path` chunk by chunk ([`to_zarr`]).
    ///
    /// # Errors
    /// As [`to_zarr`].
    pub fn to_zarr(&self, path: impl AsRef<Path>, o: &ZarrOptions) -> Result<()> {
        to_zarr(self, path, o)
    }
}
