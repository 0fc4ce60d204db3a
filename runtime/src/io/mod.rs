//! Arrays in files, read and written chunk by chunk: `.npy` files (numpy's format) and raw
//! binary files of a given dtype, shape and offset.
//!
//! A file source is an [`ExternalArray`]: each chunk a kernel needs is read from the file when
//! it runs (positioned reads, from any thread), so an array larger than memory is never whole
//! in memory. A sink writes each chunk of a result where it belongs in the file as the chunk
//! finishes, into a temporary file that is renamed into place only once every chunk is written
//! and synced: a failed or interrupted job leaves no file that looks complete.

pub mod npy;
#[cfg(feature = "zarr")]
pub mod zarr;

#[cfg(feature = "zarr")]
pub use zarr::{from_zarr, to_zarr, ZarrArray, ZarrCompressor, ZarrOptions, ZarrWriter};

use crate::array::{HostArray, Region};
use crate::dtype::DType;
use crate::error::{Error, FileError, Result};
use crate::external::{check_region, ExternalArray};
use crate::session::Session;
use crate::tensor::Tensor;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An array stored in a file: `.npy` data or a raw binary file.
#[derive(Debug)]
pub struct FileArray {
    path: PathBuf,
    file: File,
    shape: Vec<usize>,
    dtype: DType,
    big_endian: bool,
    fortran: bool,
    offset: u64,
    kind: &'static str,
}

fn checked_bytes(path: &Path, shape: &[usize], dtype: DType) -> Result<u64> {
    shape
        .iter()
        .try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d as u64))
        .ok_or_else(|| {
            Error::file(
                path,
                FileError::Malformed,
                format!("shape {shape:?} of {dtype} overflows a byte count"),
            )
        })
}

impl FileArray {
    /// Checks that the file holds `offset` bytes then the data of `shape`.
    fn checked(self) -> Result<FileArray> {
        let (path, kind, shape, dtype, offset) =
            (&self.path, self.kind, &self.shape, self.dtype, self.offset);
        let need = checked_bytes(path, shape, dtype)?
            .checked_add(offset)
            .ok_or_else(|| Error::file(path, FileError::Malformed, "offset overflows"))?;
        let have = self
            .file
            .metadata()
            .map_err(|e| Error::file_io(path, "stat", &e))?
            .len();
        if have < need {
            return Err(Error::file(
                path,
                FileError::Malformed,
                format!(
                    "truncated: {kind} data of shape {shape:?} {dtype} from byte {offset} needs \
                     {need} bytes, the file has {have}"
                ),
            ));
        }
        Ok(self)
    }

    /// The file it reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the C-order box `region` of an array of `shape` stored from `self.offset` into
    /// `out` (the box's bytes): one positioned read per contiguous run.
    fn read_into(&self, shape: &[usize], region: &Region, out: &mut [u8]) -> Result<()> {
        let es = self.dtype.size();
        let mut pos = 0usize;
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for_each_run(shape, region, |first, run| {
            let at = self.offset + (first * es) as u64;
            let buf = &mut out[pos..pos + run * es];
            pos += run * es;
            lo = lo.min(at);
            hi = hi.max(at + buf.len() as u64);
            self.file.read_exact_at(buf, at).map_err(|e| {
                Error::file_io(
                    &self.path,
                    &format!("reading the chunk {region:?} (byte {at})"),
                    &e,
                )
            })
        })?;
        if hi > lo && hi - lo >= 1 << 20 && self.streams() {
            self.drop_cached(lo, hi - lo);
        }
        Ok(())
    }

    /// True for data larger than half the machine's memory: it cannot stay in the page cache,
    /// so the pages of each chunk are dropped from it once read. Otherwise streaming it evicts
    /// everything else and every read pays for reclaiming pages (measured: 47 s of system
    /// time reading 25.6 GB on the CPU box).
    fn streams(&self) -> bool {
        let data = self
            .shape
            .iter()
            .try_fold(self.dtype.size(), |a, &d| a.checked_mul(d));
        data.is_none_or(|b| b > crate::hostpool::physical_memory() / 2)
    }

    /// Advises the kernel that bytes `at..at + len` of the file are not needed again.
    fn drop_cached(&self, at: u64, len: u64) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (Ok(at), Ok(len)) = (i64::try_from(at), i64::try_from(len)) else {
                return;
            };
            // SAFETY: posix_fadvise takes no pointers; it only advises the kernel about the
            // cached pages of this open file (clean pages, just read). Its result is advice
            // taken or not: an error changes nothing that was read.
            unsafe {
                libc::posix_fadvise(self.file.as_raw_fd(), at, len, libc::POSIX_FADV_DONTNEED);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (at, len);
    }

    /// The C-order box `region` of an array of `shape`, read straight into the array that
    /// holds it (swapped to this machine's byte order where the file's differs).
    fn read_host(&self, shape: &[usize], region: &Region) -> Result<HostArray> {
        use ndarray::{ArrayD, IxDyn};
        let dims: Vec<usize> = region.iter().map(|&(s, e)| e - s).collect();
        let n: usize = dims.iter().product();
        fn read<T: bytemuck::Pod>(
            f: &FileArray,
            shape: &[usize],
            region: &Region,
            dims: &[usize],
            n: usize,
        ) -> Result<ArrayD<T>> {
            // Cleared, not zero-allocated: a zeroed allocation bypasses the host pool and
            // every chunk would fault in fresh pages; clearing a pooled block costs less.
            let mut v: Vec<T> = Vec::with_capacity(n);
            v.resize(n, T::zeroed());
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut v);
            f.read_into(shape, region, bytes)?;
            if f.big_endian != cfg!(target_endian = "big") {
                for c in bytes.chunks_exact_mut(std::mem::size_of::<T>()) {
                    c.reverse();
                }
            }
            Ok(ArrayD::from_shape_vec(IxDyn(dims), v).expect("box shape"))
        }
        Ok(match self.dtype {
            DType::Bool => {
                let b = read::<u8>(self, shape, region, &dims, n)?;
                HostArray::Bool(b.mapv(|x| x != 0))
            }
            DType::I32 => HostArray::I32(read(self, shape, region, &dims, n)?),
            DType::I64 => HostArray::I64(read(self, shape, region, &dims, n)?),
            DType::F32 => HostArray::F32(read(self, shape, region, &dims, n)?),
            DType::F64 => HostArray::F64(read(self, shape, region, &dims, n)?),
        })
    }
}

/// Calls `f(first, len)` for each contiguous run of the C-order box `region` of an array of
/// `shape`, in the box's row-major order: `first` is the run's first element in the array,
/// `len` its length in elements. Empty boxes have no run.
fn for_each_run(
    shape: &[usize],
    region: &Region,
    mut f: impl FnMut(usize, usize) -> Result<()>,
) -> Result<()> {
    let nd = shape.len();
    if region.iter().any(|&(s, e)| e == s) {
        return Ok(());
    }
    // Axes from `k` on are one run: every axis after `k` is whole.
    let mut k = nd;
    while k > 0 {
        k -= 1;
        if region[k] != (0, shape[k]) {
            break;
        }
    }
    let run: usize = if nd == 0 {
        1
    } else {
        (region[k].1 - region[k].0) * shape[k + 1..].iter().product::<usize>()
    };
    let strides = crate::ir::row_major_strides(shape);
    let mut idx: Vec<usize> = region[..k.min(nd)].iter().map(|r| r.0).collect();
    loop {
        let first: usize = idx
            .iter()
            .chain(region.get(k).map(|r| &r.0))
            .zip(&strides)
            .map(|(i, s)| i * s)
            .sum();
        f(first, run)?;
        // Next index over the axes before `k`.
        let mut a = idx.len();
        loop {
            if a == 0 {
                return Ok(());
            }
            a -= 1;
            idx[a] += 1;
            if idx[a] < region[a].1 {
                break;
            }
            idx[a] = region[a].0;
        }
    }
}

#[cfg(feature = "zarr")]
fn typed<T: bytemuck::Pod, const N: usize>(
    bytes: &[u8],
    big: bool,
    f: impl Fn([u8; N]) -> T,
    g: impl Fn([u8; N]) -> T,
) -> Vec<T> {
    if big == cfg!(target_endian = "big") {
        // This machine's order: one copy into an aligned vector.
        return bytemuck::pod_collect_to_vec(bytes);
    }
    bytes
        .chunks_exact(N)
        .map(|c| {
            let a: [u8; N] = c.try_into().expect("chunks of N");
            if big {
                g(a)
            } else {
                f(a)
            }
        })
        .collect()
}

/// An array of `shape` from its bytes in the file's byte order (`big`).
#[cfg(feature = "zarr")]
fn host_of(bytes: &[u8], dtype: DType, big: bool, shape: &[usize]) -> HostArray {
    use ndarray::{ArrayD, IxDyn};
    fn mk<T>(shape: &[usize], v: Vec<T>) -> ArrayD<T> {
        ArrayD::from_shape_vec(IxDyn(shape), v).expect("box shape")
    }
    match dtype {
        DType::Bool => HostArray::Bool(mk(shape, bytes.iter().map(|&b| b != 0).collect())),
        DType::I32 => HostArray::I32(mk(
            shape,
            typed(bytes, big, i32::from_le_bytes, i32::from_be_bytes),
        )),
        DType::I64 => HostArray::I64(mk(
            shape,
            typed(bytes, big, i64::from_le_bytes, i64::from_be_bytes),
        )),
        DType::F32 => HostArray::F32(mk(
            shape,
            typed(bytes, big, f32::from_le_bytes, f32::from_be_bytes),
        )),
        DType::F64 => HostArray::F64(mk(
            shape,
            typed(bytes, big, f64::from_le_bytes, f64::from_be_bytes),
        )),
    }
}

/// The bytes of a host array in this machine's byte order, row-major (bools as 0 and 1):
/// borrowed from the array itself when it is in standard layout (no copy).
pub fn bytes_of(a: &HostArray) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    fn go<T: bytemuck::Pod>(x: &ndarray::ArrayD<T>) -> Cow<'_, [u8]> {
        match x.as_slice() {
            Some(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
            None => {
                let v: Vec<T> = x.iter().copied().collect();
                Cow::Owned(bytemuck::cast_slice(&v).to_vec())
            }
        }
    }
    match a {
        HostArray::Bool(x) => Cow::Owned(x.iter().map(|&b| b as u8).collect()),
        HostArray::I32(x) => go(x),
        HostArray::I64(x) => go(x),
        HostArray::F32(x) => go(x),
        HostArray::F64(x) => go(x),
    }
}

impl ExternalArray for FileArray {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn read(&self, region: &Region) -> Result<HostArray> {
        check_region(self.kind, region, &self.shape)?;
        if !self.fortran {
            return self.read_host(&self.shape, region);
        }
        // Column-major data is the row-major data of the reversed shape.
        let rshape: Vec<usize> = self.shape.iter().rev().copied().collect();
        let rregion: Region = region.iter().rev().copied().collect();
        let t = self.read_host(&rshape, &rregion)?;
        let back: Vec<usize> = (0..rshape.len()).rev().collect();
        let t = crate::with_array!(t, a => a.permuted_axes(back.clone()));
        let out_shape: Vec<usize> = region.iter().map(|&(s, e)| e - s).collect();
        Ok(t.reshape(&out_shape))
    }
    fn describe(&self) -> String {
        format!(
            "{} file {} of shape {:?} {}",
            self.kind,
            self.path.display(),
            self.shape,
            self.dtype
        )
    }
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::file_io(path, "open", &e))
}

/// Reads the `.npy` header of `path`.
///
/// # Errors
/// A missing file, a malformed header or a dtype Tessera lacks ([`Error::File`]).
pub fn read_npy_header(path: &Path) -> Result<(File, npy::Header)> {
    let file = open_file(path)?;
    let mut head = vec![0u8; 12];
    let got = read_up_to(&file, &mut head, 0).map_err(|e| Error::file_io(path, "read", &e))?;
    head.truncate(got);
    let len = match head.get(6) {
        Some(1) if head.len() >= 10 => 10 + u16::from_le_bytes([head[8], head[9]]) as usize,
        Some(2 | 3) if head.len() >= 12 => {
            12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize
        }
        _ => head.len(),
    };
    // A header is at most a few KiB in practice; cap what a hostile length can make us read.
    let len = len.min(1 << 24);
    let mut full = vec![0u8; len];
    let got = read_up_to(&file, &mut full, 0).map_err(|e| Error::file_io(path, "read", &e))?;
    full.truncate(got);
    let header = npy::parse_header(path, &full)?;
    Ok((file, header))
}

fn read_up_to(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A lazy tensor over the `.npy` file at `path` (numpy's `np.save` format: both byte orders,
/// C and Fortran order), read chunk by chunk when a run needs it. `chunks`: the chunk shape
/// (default: sized by the session's chunk budget).
///
/// # Errors
/// A missing file, a malformed or truncated file, a dtype Tessera lacks ([`Error::File`]).
pub fn load_npy(s: &Session, path: impl AsRef<Path>, chunks: Option<&[usize]>) -> Result<Tensor> {
    let path = path.as_ref();
    let (file, h) = read_npy_header(path)?;
    let a = FileArray {
        path: path.to_path_buf(),
        file,
        shape: h.shape,
        dtype: h.dtype,
        big_endian: h.big_endian,
        fortran: h.fortran,
        offset: h.data_offset,
        kind: "npy",
    }
    .checked()?;
    with_chunks(s.from_external(Arc::new(a)), chunks)
}

/// A lazy tensor over a raw binary file: `shape` elements of `dtype` in C order from byte
/// `offset`, in this machine's byte order (`big_endian` to say otherwise; bools are one byte,
/// zero for false).
///
/// # Errors
/// A missing file, or one too short for the data ([`Error::File`]).
pub fn from_raw(
    s: &Session,
    path: impl AsRef<Path>,
    dtype: DType,
    shape: &[usize],
    offset: u64,
    big_endian: bool,
    chunks: Option<&[usize]>,
) -> Result<Tensor> {
    let path = path.as_ref();
    let file = open_file(path)?;
    let a = FileArray {
        path: path.to_path_buf(),
        file,
        shape: shape.to_vec(),
        dtype,
        big_endian: big_endian && dtype != DType::Bool,
        fortran: false,
        offset,
        kind: "raw",
    }
    .checked()?;
    with_chunks(s.from_external(Arc::new(a)), chunks)
}

fn with_chunks(t: Tensor, chunks: Option<&[usize]>) -> Result<Tensor> {
    match chunks {
        Some(c) => t.with_chunks(c),
        None => Ok(t),
    }
}

/// A `.npy` or raw file being written chunk by chunk: a temporary file beside the target
/// (created new, never an existing file), renamed onto the target by [`FileWriter::finish`]
/// once every chunk is written and synced. Dropped unfinished (a failed or interrupted run),
/// it removes the temporary file it created, and the target is untouched.
#[derive(Debug)]
pub struct FileWriter {
    target: PathBuf,
    tmp: PathBuf,
    file: File,
    /// The same file opened with `O_DIRECT` where the file system takes it: whole pages of
    /// data bypass the page cache, whose write-back (at the final sync) is otherwise the
    /// write's bottleneck. Partial pages go through `file`.
    direct: Option<File>,
    shape: Vec<usize>,
    dtype: DType,
    data_offset: u64,
    finished: bool,
    kind: &'static str,
}

impl FileWriter {
    /// Creates the temporary file for a `.npy` array of `shape` and `dtype` at `target` and
    /// writes its header.
    ///
    /// # Errors
    /// An unwritable folder, a full disk ([`Error::File`] naming the target).
    pub fn create_npy(target: &Path, shape: &[usize], dtype: DType) -> Result<FileWriter> {
        Self::create(target, shape, dtype, npy::header_bytes(dtype, shape), "npy")
    }

    /// Creates the temporary file for the raw data of `shape` and `dtype` at `target` (C
    /// order, this machine's byte order, bools as one byte; numpy's `tofile`).
    ///
    /// # Errors
    /// As [`FileWriter::create_npy`].
    pub fn create_raw(target: &Path, shape: &[usize], dtype: DType) -> Result<FileWriter> {
        Self::create(target, shape, dtype, Vec::new(), "raw")
    }

    fn create(
        target: &Path,
        shape: &[usize],
        dtype: DType,
        header: Vec<u8>,
        kind: &'static str,
    ) -> Result<FileWriter> {
        use std::io::Write;
        let bytes = checked_bytes(target, shape, dtype)?;
        let tmp = temp_beside(target)?;
        let open_direct = |p: &Path| -> Option<File> {
            #[cfg(target_os = "linux")]
            {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(p)
                    .ok()
            }
            #[cfg(not(target_os = "linux"))]
            {
                let _ = p;
                None
            }
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::file_io(target, "creating a temporary file beside it", &e))?;
        let direct = open_direct(&tmp);
        let mut w = FileWriter {
            target: target.to_path_buf(),
            tmp,
            file: file
                .try_clone()
                .map_err(|e| Error::file_io(target, "open", &e))?,
            direct,
            shape: shape.to_vec(),
            dtype,
            data_offset: 0,
            finished: false,
            kind,
        };
        w.data_offset = header.len() as u64;
        file.write_all(&header)
            .and_then(|()| file.set_len(w.data_offset + bytes))
            .map_err(|e| Error::file_io(target, "writing the header", &e))?;
        Ok(w)
    }

    /// Syncs the data and renames the temporary file onto the target.
    ///
    /// # Errors
    /// A failed sync or rename; the temporary file is removed.
    pub fn finish(mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::file_io(&self.target, "syncing the written data", &e))?;
        std::fs::rename(&self.tmp, &self.target).map_err(|e| {
            Error::file_io(&self.target, "renaming the finished file into place", &e)
        })?;
        self.finished = true;
        if let Some(dir) = self.target.parent() {
            sync_dir(dir);
        }
        Ok(())
    }
}

/// Bytes written through `O_DIRECT` per call, copied into a page-aligned buffer first.
const DIRECT_PIECE: usize = 8 << 20;
const PAGE: u64 = 4096;

impl FileWriter {
    /// Writes `src` at byte `at`: its whole pages through the direct handle (in pieces
    /// copied to a page-aligned part of `bounce`), its partial edge pages buffered.
    fn write_at(&self, src: &[u8], at: u64, bounce: &mut Vec<u8>) -> std::io::Result<()> {
        let end = at + src.len() as u64;
        let (a0, a1) = (at.next_multiple_of(PAGE), end / PAGE * PAGE);
        let Some(direct) = self.direct.as_ref().filter(|_| a1 > a0) else {
            return self.file.write_all_at(src, at);
        };
        self.file.write_all_at(&src[..(a0 - at) as usize], at)?;
        if bounce.is_empty() {
            bounce.resize(DIRECT_PIECE + PAGE as usize, 0);
        }
        let off = bounce.as_ptr().align_offset(PAGE as usize);
        let buf = &mut bounce[off..off + DIRECT_PIECE];
        let mut p = a0;
        while p < a1 {
            // A multiple of the page: a0, a1 and DIRECT_PIECE are.
            let n = (a1 - p).min(DIRECT_PIECE as u64) as usize;
            let piece = &src[(p - at) as usize..][..n];
            buf[..n].copy_from_slice(piece);
            match direct.write_all_at(&buf[..n], p) {
                Ok(()) => {}
                // A file system that opens with O_DIRECT but refuses the write: buffered.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.file.write_all_at(piece, p)?
                }
                Err(e) => return Err(e),
            }
            p += n as u64;
        }
        self.file.write_all_at(&src[(a1 - at) as usize..], a1)
    }
}

impl FileWriterFinish for FileWriter {
    fn finish(self) -> Result<()> {
        FileWriter::finish(self)
    }
}

/// A sink whose result is committed (renamed into place) once every chunk is written.
pub(crate) trait FileWriterFinish {
    /// Commits the written result.
    fn finish(self) -> Result<()>;
}

/// A new name beside `target` for a temporary file or folder: `.<name>.tessera-<random>.tmp`.
pub(crate) fn temp_beside(target: &Path) -> Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| Error::file(target, FileError::Io, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let token: String = crate::storage::random_token()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(dir.join(format!(".{name}.tessera-{token}.tmp")))
}

/// Syncs a folder, so that a rename in it is durable (best effort: not every file system lets
/// a folder be opened for it).
pub(crate) fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if !self.finished {
            // The temporary file is ours: created new (O_EXCL) under a random name.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl crate::external::ChunkSink for FileWriter {
    fn write(&self, region: &Region, data: &HostArray) -> Result<()> {
        check_region(self.kind, region, &self.shape)?;
        if data.dtype() != self.dtype {
            return Err(Error::file(
                &self.target,
                FileError::Io,
                format!(
                    "chunk {region:?} is {}, the file holds {}",
                    data.dtype(),
                    self.dtype
                ),
            ));
        }
        let bytes = bytes_of(data);
        let es = self.dtype.size();
        let mut pos = 0usize;
        let mut bounce = Vec::new();
        for_each_run(&self.shape, region, |first, run| {
            let at = self.data_offset + (first * es) as u64;
            let src = &bytes[pos..pos + run * es];
            pos += run * es;
            self.write_at(src, at, &mut bounce).map_err(|e| {
                Error::file_io(
                    &self.target,
                    &format!("writing the chunk {region:?} (byte {at})"),
                    &e,
                )
            })
        })
    }
    fn describe(&self) -> String {
        format!("{} file {}", self.kind, self.target.display())
    }
}

/// Writes `t` to the `.npy` file `path` chunk by chunk as its chunks finish (the value is
/// never whole in memory); the file appears at `path` only once complete.
///
/// # Errors
/// Graph, backend and write errors; on any of them nothing is left at `path` (an existing
/// file there is kept as it was) and the temporary file is removed.
pub fn save_npy(t: &Tensor, path: impl AsRef<Path>) -> Result<()> {
    write_with(
        t,
        FileWriter::create_npy(path.as_ref(), t.shape(), t.dtype())?,
    )
}

/// Writes `t`'s raw data (C order, this machine's byte order) to `path` chunk by chunk, as
/// numpy's `tofile`; as [`save_npy`] otherwise.
///
/// # Errors
/// As [`save_npy`].
pub fn save_raw(t: &Tensor, path: impl AsRef<Path>) -> Result<()> {
    write_with(
        t,
        FileWriter::create_raw(path.as_ref(), t.shape(), t.dtype())?,
    )
}

/// Runs `t` with every chunk written to `w` as it finishes, then commits `w`.
pub(crate) fn write_with<W>(t: &Tensor, w: W) -> Result<()>
where
    W: crate::external::ChunkSink + FileWriterFinish + 'static,
{
    let w = Arc::new(w);
    t.session().write_to(t, w.clone())?;
    let w = Arc::try_unwrap(w)
        .map_err(|_| Error::invalid("write", "the writer is still referenced after the run"))?;
    w.finish()
}

impl Tensor {
    /// Writes this tensor to the `.npy` file `path` chunk by chunk ([`save_npy`]).
    ///
    /// # Errors
    /// As [`save_npy`].
    pub fn to_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        save_npy(self, path)
    }

    /// Writes this tensor's raw data to `path` chunk by chunk ([`save_raw`]).
    ///
    /// # Errors
    /// As [`save_npy`].
    pub fn to_raw(&self, path: impl AsRef<Path>) -> Result<()> {
        save_raw(self, path)
    }
}
