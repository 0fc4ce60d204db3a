//! Storage: the memory tiers the Scheduler plans against (device, host, disk), their budgets,
//! and the spill directory. Input: a `MemoryConfig`; output: budgets per tier and spill files
//! that carry a checksum, so a damaged file is detected instead of being read as data.
//!
//! Spill file layout (little-endian): `b"TSPL"`, u32 field count, then per field: u8 dtype
//! code, u32 rank, u64 per dimension, the raw row-major bytes; last, the CRC-32 of everything
//! before it.

use crate::array::HostArray;
use crate::chunk::{ChunkData, ChunkId};
use crate::dtype::DType;
use crate::error::{Error, Result, Tier};
use ndarray::{ArrayD, IxDyn};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The order in which the Scheduler runs kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Depth-first from the outputs: a consumer runs as soon as its inputs exist, so they can
    /// be freed early (Mars's rule).
    #[default]
    DepthFirst,
    /// Level by level (every source first): for comparison.
    BreadthFirst,
}

/// Called after each spill file is written, with the chunk and the file (fault injection in
/// tests).
pub type SpillHook = Arc<dyn Fn(ChunkId, &Path) + Send + Sync>;

/// Memory budgets and the spill directory of scheduled runs.
#[derive(Clone, Default)]
pub struct MemoryConfig {
    /// Bytes per device; `None`: the device's own memory (`DeviceInfo::memory_bytes`).
    pub device_bytes: Option<u64>,
    /// Number of devices to use; `None`: every device of the backend.
    pub devices: Option<usize>,
    /// Host bytes; `None`: half of the machine's RAM.
    pub host_bytes: Option<u64>,
    /// Disk bytes; `None`: the free space of the spill directory's file system.
    pub disk_bytes: Option<u64>,
    /// Where spill files go; `None`: `$TMPDIR/tessera-spill`.
    pub spill_dir: Option<PathBuf>,
    /// Kernel order.
    pub order: Order,
    /// Test hook run after every spill write.
    pub spill_hook: Option<SpillHook>,
}

impl std::fmt::Debug for MemoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryConfig")
            .field("device_bytes", &self.device_bytes)
            .field("devices", &self.devices)
            .field("host_bytes", &self.host_bytes)
            .field("disk_bytes", &self.disk_bytes)
            .field("spill_dir", &self.spill_dir)
            .field("order", &self.order)
            .field("spill_hook", &self.spill_hook.is_some())
            .finish()
    }
}

/// Total RAM of this machine in bytes (Linux `/proc/meminfo`; 8 GiB when unknown).
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(8 << 30, |kb| kb * 1024)
}

/// Free bytes of the file system holding `path`.
pub fn free_disk_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
        // right type; statvfs fills it on success and we read it only then.
        let st = unsafe {
            if libc::statvfs(c.as_ptr(), st.as_mut_ptr()) != 0 {
                return None;
            }
            st.assume_init()
        };
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The spill directory of one run: a folder of its own under the spill root, removed when the
/// run ends (drop). Folders left by a crashed process are removed when the next one starts.
#[derive(Debug)]
pub struct SpillDir {
    dir: PathBuf,
    capacity: u64,
    used: AtomicU64,
}

static RUNS: AtomicU64 = AtomicU64::new(0);

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

impl SpillDir {
    /// Creates this run's folder under `root` (default `$TMPDIR/tessera-spill`) after removing
    /// folders of dead processes. `capacity`: the disk budget, capped by the free space.
    ///
    /// # Errors
    /// `Io` when the folder cannot be created.
    pub fn create(root: Option<&Path>, capacity: Option<u64>) -> Result<SpillDir> {
        let root = root.map_or_else(
            || std::env::temp_dir().join("tessera-spill"),
            Path::to_path_buf,
        );
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::Io(format!("spill root {}: {e}", root.display())))?;
        Self::remove_stale(&root);
        let dir = root.join(format!(
            "{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Io(format!("spill dir {}: {e}", dir.display())))?;
        let free = free_disk_bytes(&dir).unwrap_or(u64::MAX);
        Ok(SpillDir {
            dir,
            capacity: capacity.map_or(free, |c| c.min(free)),
            used: AtomicU64::new(0),
        })
    }

    /// Removes run folders under `root` whose process no longer exists.
    pub fn remove_stale(root: &Path) {
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !process_alive(pid) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The disk budget in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The file of a chunk.
    pub fn file(&self, id: ChunkId) -> PathBuf {
        self.dir.join(format!("chunk-{}.spill", id.0))
    }

    /// Writes a chunk; returns the bytes written.
    ///
    /// # Errors
    /// `OutOfMemory { tier: Disk }` past the capacity; `Io` on write failures (a full disk).
    pub fn write(&self, id: ChunkId, data: &ChunkData) -> Result<u64> {
        let bytes = encoded_len(data);
        let used = self.used.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if used > self.capacity {
            self.used.fetch_sub(bytes, Ordering::SeqCst);
            return Err(Error::OutOfMemory {
                tier: Tier::Disk,
                requested: bytes,
                available: self.capacity.saturating_sub(used - bytes),
            });
        }
        let path = self.file(id);
        let r = (|| -> std::io::Result<()> {
            let f = std::fs::File::create(&path)?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let mut crc = crc32fast::Hasher::new();
            let mut put = |w: &mut BufWriter<std::fs::File>, b: &[u8]| -> std::io::Result<()> {
                crc.update(b);
                w.write_all(b)
            };
            put(&mut w, b"TSPL")?;
            put(&mut w, &(data.len() as u32).to_le_bytes())?;
            for a in data {
                put(&mut w, &[dtype_code(a.dtype())])?;
                put(&mut w, &(a.shape().len() as u32).to_le_bytes())?;
                for &d in a.shape() {
                    put(&mut w, &(d as u64).to_le_bytes())?;
                }
                with_bytes(a, |b| put(&mut w, b))?;
            }
            let sum = crc.finalize();
            w.write_all(&sum.to_le_bytes())?;
            w.flush()
        })();
        r.map_err(|e| {
            self.used.fetch_sub(bytes, Ordering::SeqCst);
            let _ = std::fs::remove_file(&path);
            Error::Io(format!("spill write {}: {e}", path.display()))
        })?;
        Ok(bytes)
    }

    /// Reads a chunk back and checks its checksum.
    ///
    /// # Errors
    /// `Io` for a missing file, a checksum mismatch or a malformed file.
    pub fn read(&self, id: ChunkId) -> Result<ChunkData> {
        let path = self.file(id);
        let mut buf = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| Error::Io(format!("spill read {}: {e}", path.display())))?;
        decode(&buf).map_err(|m| Error::Io(format!("spill file {}: {m}", path.display())))
    }

    /// Deletes a chunk's file and gives its bytes back.
    pub fn remove(&self, id: ChunkId, bytes: u64) {
        let _ = std::fs::remove_file(self.file(id));
        self.used.fetch_sub(bytes, Ordering::SeqCst);
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dtype_code(d: DType) -> u8 {
    match d {
        DType::Bool => 0,
        DType::I32 => 1,
        DType::I64 => 2,
        DType::F32 => 3,
        DType::F64 => 4,
    }
}

/// Bytes of a chunk's spill file.
pub fn encoded_len(data: &ChunkData) -> u64 {
    let fields: usize = data
        .iter()
        .map(|a| 1 + 4 + 8 * a.shape().len() + a.len() * a.dtype().size())
        .sum();
    (4 + 4 + fields + 4) as u64
}

fn with_bytes<R>(a: &HostArray, f: impl FnOnce(&[u8]) -> R) -> R {
    fn raw<T: bytemuck::Pod + Clone, R>(x: &ArrayD<T>, f: impl FnOnce(&[u8]) -> R) -> R {
        match x.as_slice() {
            Some(s) => f(bytemuck::cast_slice(s)),
            None => {
                let v: Vec<T> = x.iter().cloned().collect();
                f(bytemuck::cast_slice(&v))
            }
        }
    }
    match a {
        HostArray::Bool(x) => {
            let v: Vec<u8> = x.iter().map(|&b| b as u8).collect();
            f(&v)
        }
        HostArray::I32(x) => raw(x, f),
        HostArray::I64(x) => raw(x, f),
        HostArray::F32(x) => raw(x, f),
        HostArray::F64(x) => raw(x, f),
    }
}

fn decode(buf: &[u8]) -> std::result::Result<ChunkData, String> {
    if buf.len() < 12 {
        return Err("truncated".into());
    }
    let (body, tail) = buf.split_at(buf.len() - 4);
    let want = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != want {
        return Err("checksum mismatch".into());
    }
    if &body[..4] != b"TSPL" {
        return Err("bad magic".into());
    }
    let mut pos = 4;
    let mut take = |n: usize| -> std::result::Result<&[u8], String> {
        let s = body.get(pos..pos + n).ok_or("truncated")?;
        pos += n;
        Ok(s)
    };
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    let fields = u32_of(take(4)?);
    let mut out = Vec::new();
    for _ in 0..fields {
        let code = take(1)?[0];
        let rank = u32_of(take(4)?) as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize);
        }
        let n: usize = shape.iter().product();
        fn arr<T: bytemuck::Pod>(
            shape: &[usize],
            b: &[u8],
        ) -> std::result::Result<ArrayD<T>, String> {
            let v: Vec<T> = bytemuck::pod_collect_to_vec(b);
            ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| e.to_string())
        }
        let a = match code {
            0 => HostArray::Bool(
                ArrayD::from_shape_vec(IxDyn(&shape), take(n)?.iter().map(|&b| b != 0).collect())
                    .map_err(|e| e.to_string())?,
            ),
            1 => HostArray::I32(arr(&shape, take(n * 4)?)?),
            2 => HostArray::I64(arr(&shape, take(n * 8)?)?),
            3 => HostArray::F32(arr(&shape, take(n * 4)?)?),
            4 => HostArray::F64(arr(&shape, take(n * 8)?)?),
            c => return Err(format!("unknown dtype code {c}")),
        };
        out.push(a);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChunkData {
        vec![
            HostArray::F32(
                ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.5, f32::NAN, -0.0, 3.0, 1e-38, 7.0])
                    .unwrap(),
            ),
            HostArray::I64(ArrayD::from_shape_vec(IxDyn(&[3]), vec![-1, i64::MAX, 5]).unwrap()),
            HostArray::Bool(ArrayD::from_shape_vec(IxDyn(&[2]), vec![true, false]).unwrap()),
        ]
    }

    fn bits(d: &ChunkData) -> String {
        serde_json::to_string(d).unwrap()
    }

    #[test]
    fn spill_round_trips_bit_exactly_and_is_removed() {
        let root = std::env::temp_dir().join(format!("tessera-spill-test-{}", std::process::id()));
        let dir = SpillDir::create(Some(&root), None).unwrap();
        let d = sample();
        let n = dir.write(ChunkId(7), &d).unwrap();
        assert_eq!(n, std::fs::metadata(dir.file(ChunkId(7))).unwrap().len());
        assert_eq!(bits(&dir.read(ChunkId(7)).unwrap()), bits(&d));
        let p = dir.path().to_path_buf();
        drop(dir);
        assert!(!p.exists());
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn corruption_and_missing_files_are_errors() {
        let root = std::env::temp_dir().join(format!("tessera-spill-test2-{}", std::process::id()));
        let dir = SpillDir::create(Some(&root), None).unwrap();
        dir.write(ChunkId(1), &sample()).unwrap();
        let f = dir.file(ChunkId(1));
        let mut b = std::fs::read(&f).unwrap();
        b[20] ^= 0x40;
        std::fs::write(&f, b).unwrap();
        let e = dir.read(ChunkId(1)).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        std::fs::remove_file(&f).unwrap();
        assert!(matches!(dir.read(ChunkId(1)), Err(Error::Io(_))));
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn disk_budget_is_a_typed_error() {
        let root = std::env::temp_dir().join(format!("tessera-spill-test3-{}", std::process::id()));
        let dir = SpillDir::create(Some(&root), Some(40)).unwrap();
        let e = dir.write(ChunkId(1), &sample()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::OutOfMemory {
                    tier: Tier::Disk,
                    ..
                }
            ),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn stale_folders_of_dead_processes_are_removed() {
        let root = std::env::temp_dir().join(format!("tessera-spill-test4-{}", std::process::id()));
        // A pid far above any live one: its folder is a crash leftover.
        let stale = root.join("4000000000-0");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("chunk-1.spill"), b"x").unwrap();
        let dir = SpillDir::create(Some(&root), None).unwrap();
        assert!(!stale.exists() || !cfg!(target_os = "linux"));
        assert!(dir.path().exists());
        drop(dir);
        let _ = std::fs::remove_dir_all(root);
    }
}
