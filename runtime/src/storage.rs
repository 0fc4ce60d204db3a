//! Storage: the memory tiers the Scheduler plans against (device, host, disk), their budgets,
//! and the spill directory. Input: a `MemoryConfig`; output: budgets per tier and spill files
//! that prove which run and chunk they belong to, so a damaged, foreign or misplaced file is
//! detected instead of being read as data.
//!
//! On-disk layout (Tessera deletes only what it can prove it created):
//!
//! ```text
//! <root>/                          default $TMPDIR/tessera-spill-<uid>: created 0700, used only
//!                                  when owned by us and not writable by group or others
//!   tessera-run-<token>/           one per run, 0700; token: 32 hex digits of 16 random bytes
//!     tessera-run.marker           "tessera spill run 1\ntoken <token>\nhost <h>\npid <p>\n",
//!                                  flock()ed by the live run for its whole life
//!     chunk-<id>.spill             one spilled chunk
//!     chunk-<id>.spill.tmp         the same while it is written; renamed into place when whole
//! ```
//!
//! A run folder is stale, and removed when another run starts under the same root, only when
//! its name has that form, it is ours (uid), its marker is valid, names the folder's token and
//! this host, and the marker's lock can be taken (its owner is gone). Inside it only files with
//! the names above are deleted, then the folder is rmdir()ed: anything else a user put there
//! keeps it. Every other entry of the root (user folders, older layouts) is left alone.
//!
//! Spill file layout (little-endian): `b"TSP2"`, the 16-byte run token, u32 chunk id, u32 field
//! count, then per field: u8 dtype code, u32 rank, u64 per dimension, the raw row-major bytes;
//! last, the CRC-32 of everything before it. `read` accepts a file only with this run's token,
//! the asked chunk id, and the dtypes and shapes that were written.

use crate::array::HostArray;
use crate::chunk::{ChunkData, ChunkId};
use crate::dtype::DType;
use crate::error::{Error, Result, Tier};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

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
    /// Where run folders go (used as given; created if missing); `None`: the per-user
    /// [`default_spill_root`], `$TMPDIR/tessera-spill-<uid>`.
    pub spill_dir: Option<PathBuf>,
    /// Kernel order.
    pub order: Order,
    /// Test hook run after every spill write.
    pub spill_hook: Option<SpillHook>,
}

impl MemoryConfig {
    /// The host budget in bytes: `host_bytes`, else half of the machine's RAM.
    pub fn host_budget(&self) -> u64 {
        self.host_bytes.unwrap_or_else(|| host_memory() / 2)
    }
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

/// Total RAM of this machine in bytes (Linux `/proc/meminfo`; 8 GiB when unknown). Read once:
/// every run asks (devices' sizes), and a small run should not pay a file read for it.
pub fn host_memory() -> u64 {
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(read_host_memory)
}

fn read_host_memory() -> u64 {
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

/// Name of the marker file inside a run folder.
const MARKER: &str = "tessera-run.marker";
/// Prefix of run folder names; the rest is the run token in hex.
const RUN_PREFIX: &str = "tessera-run-";
/// First line of a marker.
const MARKER_MAGIC: &str = "tessera spill run 1";
/// First bytes of a spill file.
const FILE_MAGIC: &[u8; 4] = b"TSP2";

/// Dtype and shape of one field of a chunk.
type FieldLayout = (DType, Vec<usize>);

/// The spill directory of one run: a folder of its own under the spill root, with a marker
/// that proves Tessera made it and a lock that says the run is alive. Its own files are removed
/// when the run ends (drop), or by a later run once the lock shows the owner is gone.
#[derive(Debug)]
pub struct SpillDir {
    dir: PathBuf,
    token: [u8; 16],
    capacity: u64,
    used: AtomicU64,
    // The fields of each chunk as written: a file must give back the same to be accepted.
    written: Mutex<HashMap<u32, Vec<FieldLayout>>>,
    // The marker, flock()ed for as long as this value lives (`None` only in tests).
    _lock: Option<File>,
}

// Folders of this process's live runs, for `cleanup_live_spill_dirs`. `CLOSING` turns true
// when that cleanup starts; spill writes hold its read side, so none is half-way meanwhile.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CLOSING: RwLock<bool> = RwLock::new(false);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 16 random bytes: from the OS, so two runs never share a folder, even in separate PID
/// namespaces or on separate hosts sharing a volume.
pub(crate) fn random_token() -> [u8; 16] {
    let mut t = [0u8; 16];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut t))
        .is_ok()
    {
        return t;
    }
    // No /dev/urandom: std seeds each RandomState from the OS; time, pid, a counter and an
    // address are mixed in so two calls never agree.
    use std::hash::{BuildHasher, Hasher};
    static N: AtomicU64 = AtomicU64::new(0);
    for half in t.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        h.write_u128(now);
        h.write_u32(std::process::id());
        h.write_u64(N.fetch_add(1, Ordering::Relaxed));
        h.write_usize(half.as_ptr() as usize);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    t
}

fn hex(t: &[u8; 16]) -> String {
    t.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut t = [0u8; 16];
    for (i, x) in t.iter_mut().enumerate() {
        *x = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(t)
}

/// The effective user id (0 where there is none).
fn euid() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// This host's name, as written into markers (a lock is no proof across hosts).
fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        #[cfg(unix)]
        {
            let mut buf = [0u8; 256];
            // SAFETY: `buf` is writable for its whole length, which is what we pass.
            if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
                let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                return String::from_utf8_lossy(&buf[..n])
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect();
            }
        }
        "unknown".to_string()
    })
}

/// Takes the exclusive advisory lock of `f` without waiting; false when another open file
/// (in any process) holds it.
fn try_lock(f: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: the descriptor stays open while `f` lives; flock only sets an advisory lock,
        // released when the file is closed.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    }
    #[cfg(not(unix))]
    {
        // No lock, no proof that an owner is gone: nothing is ever stale.
        let _ = f;
        false
    }
}

/// Creates one folder, 0700 on Unix; fails if it exists.
fn create_private_dir(p: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(p)
}

/// Opens a file for reading without following a symlink at its last component.
fn open_nofollow(p: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o.open(p)
}

/// Whether `name` is a file name Tessera gives inside a run folder.
fn is_own_file(name: &str) -> bool {
    if name == MARKER {
        return true;
    }
    let Some(rest) = name.strip_prefix("chunk-") else {
        return false;
    };
    let rest = rest.strip_suffix(".tmp").unwrap_or(rest);
    rest.strip_suffix(".spill")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Deletes the regular files of `dir` that carry Tessera's own names (no recursion, the marker
/// last), then the folder itself, which fails, and is kept, if anything else is in it.
fn remove_own(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name != MARKER && is_own_file(name) && e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let m = dir.join(MARKER);
    if std::fs::symlink_metadata(&m).is_ok_and(|m| m.file_type().is_file()) {
        let _ = std::fs::remove_file(&m);
    }
    let _ = std::fs::remove_dir(dir);
}

/// The marker of run folder `dir`, opened, when it is a regular file that names `token` and
/// this host.
fn valid_marker(dir: &Path, token: &[u8; 16]) -> Option<File> {
    let f = open_nofollow(&dir.join(MARKER)).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    Read::take(&f, 4096).read_to_string(&mut text).ok()?;
    let mut lines = text.lines();
    let ok = lines.next()? == MARKER_MAGIC
        && lines.next()?.strip_prefix("token ")? == hex(token)
        && lines.next()?.strip_prefix("host ")? == host_name()
        && lines.next()?.strip_prefix("pid ")?.parse::<u32>().is_ok();
    ok.then_some(f)
}

fn owned_by_us(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() == euid())
    }
    #[cfg(not(unix))]
    {
        let _ = p;
        true
    }
}

/// Checks that the spill root `p` is a real folder of ours that no one else can write.
fn check_private_root(p: &Path) -> Result<()> {
    let m = std::fs::symlink_metadata(p)
        .map_err(|e| Error::Io(format!("spill root {}: {e}", p.display())))?;
    if !m.file_type().is_dir() {
        return Err(Error::Io(format!(
            "spill root {} is not a folder (a symlink or a file): refusing to use it; set a \
             spill directory (--spill-dir, MemoryConfig::spill_dir)",
            p.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if m.uid() != euid() {
            return Err(Error::Io(format!(
                "spill root {} is owned by uid {}, not by this user (uid {}): refusing to use \
                 it; set a spill directory (--spill-dir, MemoryConfig::spill_dir)",
                p.display(),
                m.uid(),
                euid()
            )));
        }
        if m.mode() & 0o022 != 0 {
            return Err(Error::Io(format!(
                "spill root {} is writable by group or others (mode {:o}): refusing to use \
                 it; set a spill directory (--spill-dir, MemoryConfig::spill_dir)",
                p.display(),
                m.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// The default spill root, `$TMPDIR/tessera-spill-<uid>`: one per user, created 0700, used only
/// when it is a folder owned by this user that group and others cannot write.
///
/// # Errors
/// `Io` when it cannot be created or fails those checks (the message says which).
pub fn default_spill_root() -> Result<PathBuf> {
    let root = std::env::temp_dir().join(format!("tessera-spill-{}", euid()));
    match create_private_dir(&root) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Io(format!("spill root {}: {e}", root.display())))
        }
        _ => {}
    }
    check_private_root(&root)?;
    Ok(root)
}

/// Removes this process's live run folders (their own files only), for a process about to exit
/// on a signal. Writes under way finish first; later spill writes fail.
pub fn cleanup_live_spill_dirs() {
    let mut closing = CLOSING.write().unwrap_or_else(PoisonError::into_inner);
    *closing = true;
    for d in lock(&LIVE).iter() {
        remove_own(d);
    }
}

fn layout(data: &ChunkData) -> Vec<FieldLayout> {
    data.iter()
        .map(|a| (a.dtype(), a.shape().to_vec()))
        .collect()
}

impl SpillDir {
    /// Creates this run's folder (0700, a random name, a locked marker) under `root`, default
    /// [`default_spill_root`], after removing stale run folders (see the module header).
    /// `capacity`: the disk budget, capped by the free space.
    ///
    /// # Errors
    /// `Io` when the root or the folder cannot be created, or the default root is not private.
    pub fn create(root: Option<&Path>, capacity: Option<u64>) -> Result<SpillDir> {
        let root = match root {
            Some(r) => {
                std::fs::create_dir_all(r)
                    .map_err(|e| Error::Io(format!("spill root {}: {e}", r.display())))?;
                r.to_path_buf()
            }
            None => default_spill_root()?,
        };
        Self::remove_stale(&root);
        let mut tries = 0;
        loop {
            match Self::create_in(&root, capacity, random_token()) {
                // Only a broken random source repeats a token: try a few more.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 4 => tries += 1,
                r => {
                    return r
                        .map_err(|e| Error::Io(format!("spill dir under {}: {e}", root.display())))
                }
            }
        }
    }

    /// The run folder for `token` under `root`; fails if it exists.
    fn create_in(root: &Path, capacity: Option<u64>, token: [u8; 16]) -> std::io::Result<Self> {
        let dir = root.join(format!("{RUN_PREFIX}{}", hex(&token)));
        create_private_dir(&dir)?;
        // The lock is taken before the marker says anything: a marker that reads as valid has
        // been locked by its owner, so a lock we can take means the owner is gone.
        let marker = (|| {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let mut f = o.open(dir.join(MARKER))?;
            if cfg!(unix) && !try_lock(&f) {
                return Err(std::io::Error::other("cannot lock the run marker"));
            }
            write!(
                f,
                "{MARKER_MAGIC}\ntoken {}\nhost {}\npid {}\n",
                hex(&token),
                host_name(),
                std::process::id()
            )?;
            Ok(f)
        })();
        let marker = marker.inspect_err(|_| remove_own(&dir))?;
        let free = free_disk_bytes(&dir).unwrap_or(u64::MAX);
        lock(&LIVE).push(dir.clone());
        Ok(SpillDir {
            dir,
            token,
            capacity: capacity.map_or(free, |c| c.min(free)),
            used: AtomicU64::new(0),
            written: Mutex::new(HashMap::new()),
            _lock: Some(marker),
        })
    }

    /// Removes stale run folders under `root`: only folders named and marked by Tessera, owned
    /// by this user, made on this host, whose marker lock is free (the run is gone); inside
    /// them only Tessera's own files. Everything else under `root` is left alone.
    pub fn remove_stale(root: &Path) {
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(token) = name
                .to_str()
                .and_then(|n| n.strip_prefix(RUN_PREFIX))
                .and_then(parse_hex)
            else {
                continue;
            };
            let dir = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) || !owned_by_us(&dir) {
                continue;
            }
            let Some(marker) = valid_marker(&dir, &token) else {
                continue;
            };
            if try_lock(&marker) {
                remove_own(&dir);
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

    /// Writes a chunk (to a temporary name, renamed into place once whole); returns the bytes
    /// written.
    ///
    /// # Errors
    /// `OutOfMemory { tier: Disk }` past the capacity; `Io` on write failures (a full disk) or
    /// once the process is cleaning up to exit.
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
        let tmp = self.dir.join(format!("chunk-{}.spill.tmp", id.0));
        let closing = CLOSING.read().unwrap_or_else(PoisonError::into_inner);
        let r = (|| -> std::io::Result<()> {
            if *closing {
                return Err(std::io::Error::other("the process is exiting"));
            }
            let f = File::create(&tmp)?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let mut crc = crc32fast::Hasher::new();
            let mut put = |w: &mut BufWriter<File>, b: &[u8]| -> std::io::Result<()> {
                crc.update(b);
                w.write_all(b)
            };
            put(&mut w, FILE_MAGIC)?;
            put(&mut w, &self.token)?;
            put(&mut w, &id.0.to_le_bytes())?;
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
            w.flush()?;
            drop(w);
            std::fs::rename(&tmp, &path)
        })();
        drop(closing);
        r.map_err(|e| {
            self.used.fetch_sub(bytes, Ordering::SeqCst);
            let _ = std::fs::remove_file(&tmp);
            Error::Io(format!("spill write {}: {e}", path.display()))
        })?;
        lock(&self.written).insert(id.0, layout(data));
        Ok(bytes)
    }

    /// Reads a chunk back. Accepted only with a valid checksum, this run's token, chunk `id`,
    /// and the dtypes and shapes this run wrote for it.
    ///
    /// # Errors
    /// `Io` for a missing, damaged, malformed or foreign file.
    pub fn read(&self, id: ChunkId) -> Result<ChunkData> {
        let path = self.file(id);
        let bad = |m: String| Error::Io(format!("spill file {}: {m}", path.display()));
        let mut buf = Vec::new();
        open_nofollow(&path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| Error::Io(format!("spill read {}: {e}", path.display())))?;
        let (token, chunk, data) = decode(&buf).map_err(bad)?;
        if token != self.token {
            return Err(bad("written by another run (its run token differs)".into()));
        }
        if chunk != id.0 {
            return Err(bad(format!("holds chunk {chunk}, not chunk {}", id.0)));
        }
        match lock(&self.written).get(&id.0) {
            Some(w) if *w == layout(&data) => Ok(data),
            Some(w) => Err(bad(format!(
                "fields {:?}, but {w:?} were written",
                layout(&data)
            ))),
            None => Err(bad("this run wrote no spill of this chunk".into())),
        }
    }

    /// Reads a chunk back (as [`SpillDir::read`]) and checks that its first field has the
    /// dtype and shape the chunk graph gives it.
    ///
    /// # Errors
    /// As `read`, and `Io` when the first field differs from `dtype` and `shape`.
    pub fn read_as(&self, id: ChunkId, dtype: DType, shape: &[usize]) -> Result<ChunkData> {
        let d = self.read(id)?;
        match d.first() {
            Some(a) if a.dtype() == dtype && a.shape() == shape => Ok(d),
            f => Err(Error::Io(format!(
                "spill file {}: holds {:?}, but chunk {} is {dtype:?} {shape:?}",
                self.file(id).display(),
                f.map(|a| (a.dtype(), a.shape().to_vec())),
                id.0
            ))),
        }
    }

    /// Deletes a chunk's file and gives its bytes back.
    pub fn remove(&self, id: ChunkId, bytes: u64) {
        let _ = std::fs::remove_file(self.file(id));
        lock(&self.written).remove(&id.0);
        self.used.fetch_sub(bytes, Ordering::SeqCst);
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        // Own files only, then the folder; the marker's lock is released after (field drop).
        remove_own(&self.dir);
        lock(&LIVE).retain(|p| *p != self.dir);
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
    (4 + 16 + 4 + 4 + fields + 4) as u64
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

/// Splits a spill file into run token, chunk id and fields; checks the CRC and every length.
fn decode(buf: &[u8]) -> std::result::Result<([u8; 16], u32, ChunkData), String> {
    if buf.len() < 32 {
        return Err("truncated".into());
    }
    let (body, tail) = buf.split_at(buf.len() - 4);
    let want = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != want {
        return Err("checksum mismatch".into());
    }
    if &body[..4] != FILE_MAGIC {
        return Err("bad magic".into());
    }
    let mut pos = 4usize;
    let mut take = |n: usize| -> std::result::Result<&[u8], String> {
        let s = pos
            .checked_add(n)
            .and_then(|end| body.get(pos..end))
            .ok_or("truncated")?;
        pos += n;
        Ok(s)
    };
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    let token: [u8; 16] = take(16)?.try_into().expect("16 bytes");
    let chunk = u32_of(take(4)?);
    let fields = u32_of(take(4)?);
    let mut out = Vec::new();
    for _ in 0..fields {
        let code = take(1)?[0];
        let rank = u32_of(take(4)?) as usize;
        let dims = take(rank.checked_mul(8).ok_or("truncated")?)?;
        let shape: Vec<usize> = dims
            .chunks_exact(8)
            .map(|d| usize::try_from(u64::from_le_bytes(d.try_into().expect("8 bytes"))))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| "dimension too large")?;
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or("element count overflows")?;
        let nbytes = |size: usize| n.checked_mul(size).ok_or("byte count overflows");
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
            1 => HostArray::I32(arr(&shape, take(nbytes(4)?)?)?),
            2 => HostArray::I64(arr(&shape, take(nbytes(8)?)?)?),
            3 => HostArray::F32(arr(&shape, take(nbytes(4)?)?)?),
            4 => HostArray::F64(arr(&shape, take(nbytes(8)?)?)?),
            c => return Err(format!("unknown dtype code {c}")),
        };
        out.push(a);
    }
    if pos != body.len() {
        return Err("trailing bytes".into());
    }
    Ok((token, chunk, out))
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

    /// A run folder as a crashed run leaves it: named and marked by Tessera, lock released.
    fn stale_run(root: &Path) -> PathBuf {
        let mut d = SpillDir::create_in(root, None, random_token()).unwrap();
        d.write(ChunkId(1), &sample()).unwrap();
        std::fs::write(d.path().join("chunk-2.spill.tmp"), b"half").unwrap();
        let p = d.path().to_path_buf();
        // Gone without its Drop (a crash): the marker lock goes with the closed file.
        drop(d._lock.take());
        std::mem::forget(d);
        lock(&LIVE).retain(|l| *l != p);
        p
    }

    #[test]
    fn stale_removal_deletes_only_what_tessera_made() {
        let root = std::env::temp_dir().join(format!("tessera-spill-test4-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // User folders whose names start with digits (the old rule deleted them all).
        for u in ["2019", "2020-photos", "12345-backup", "4000000000-0"] {
            std::fs::create_dir_all(root.join(u)).unwrap();
            std::fs::write(root.join(u).join("chunk-1.spill"), b"user data").unwrap();
        }
        // Tessera's naming without a valid marker, and a marker naming another token.
        let fake = root.join(format!("{RUN_PREFIX}{}", hex(&[7; 16])));
        std::fs::create_dir_all(&fake).unwrap();
        std::fs::write(fake.join("chunk-1.spill"), b"user data").unwrap();
        let other = stale_run(&root);
        let forged = root.join(format!("{RUN_PREFIX}{}", hex(&[9; 16])));
        std::fs::rename(&other, &forged).unwrap();
        // A stale run with a user's file inside: Tessera's files go, the user's file and the
        // folder stay.
        let shared = stale_run(&root);
        std::fs::write(shared.join("notes.txt"), b"mine").unwrap();
        let stale = stale_run(&root);
        let live = SpillDir::create(Some(&root), None).unwrap();
        live.write(ChunkId(3), &sample()).unwrap();

        SpillDir::remove_stale(&root);
        let live2 = SpillDir::create(Some(&root), None).unwrap();
        assert!(!stale.exists(), "a stale run folder was kept");
        for u in ["2019", "2020-photos", "12345-backup", "4000000000-0"] {
            assert_eq!(
                std::fs::read(root.join(u).join("chunk-1.spill")).unwrap(),
                b"user data",
                "{u}"
            );
        }
        assert!(
            fake.join("chunk-1.spill").exists(),
            "unmarked folder touched"
        );
        assert!(forged.join(MARKER).exists(), "forged marker accepted");
        assert_eq!(std::fs::read(shared.join("notes.txt")).unwrap(), b"mine");
        assert!(!shared.join("chunk-1.spill").exists() && !shared.join(MARKER).exists());
        assert!(
            !shared.join("chunk-2.spill.tmp").exists(),
            "stale temporary kept"
        );
        // A live run's folder (its marker locked) is not touched.
        assert_eq!(bits(&live.read(ChunkId(3)).unwrap()), bits(&sample()));
        let p = live.path().to_path_buf();
        drop(live);
        drop(live2);
        assert!(!p.exists());
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn own_drop_keeps_user_files_in_the_run_folder() {
        let root = std::env::temp_dir().join(format!("tessera-spill-test5-{}", std::process::id()));
        let dir = SpillDir::create(Some(&root), None).unwrap();
        dir.write(ChunkId(1), &sample()).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub").join("chunk-2.spill"), b"user").unwrap();
        let p = dir.path().to_path_buf();
        drop(dir);
        assert!(!p.join("chunk-1.spill").exists() && !p.join(MARKER).exists());
        assert_eq!(
            std::fs::read(p.join("sub").join("chunk-2.spill")).unwrap(),
            b"user"
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn files_of_another_run_or_chunk_are_rejected() {
        let root = std::env::temp_dir().join(format!("tessera-spill-test6-{}", std::process::id()));
        let a = SpillDir::create(Some(&root), None).unwrap();
        let d = sample();
        a.write(ChunkId(3), &d).unwrap();
        // Another run forced onto the same folder name (as two PID namespaces got before):
        // same folder, other token.
        let b = SpillDir {
            dir: a.path().to_path_buf(),
            token: random_token(),
            capacity: u64::MAX,
            used: AtomicU64::new(0),
            written: Mutex::new(HashMap::from([(3, layout(&d))])),
            _lock: None,
        };
        let e = b.read(ChunkId(3)).unwrap_err();
        assert!(e.to_string().contains("another run"), "{e}");
        // A CRC-valid file of this run's chunk 4 (same size) put where chunk 3 belongs.
        a.write(ChunkId(4), &d).unwrap();
        std::fs::copy(a.file(ChunkId(4)), a.file(ChunkId(3))).unwrap();
        let e = a.read(ChunkId(3)).unwrap_err();
        assert!(e.to_string().contains("chunk 4"), "{e}");
        // The right file, but not what the chunk graph expects.
        a.write(ChunkId(3), &d).unwrap();
        assert_eq!(
            bits(&a.read_as(ChunkId(3), DType::F32, &[2, 3]).unwrap()),
            bits(&d)
        );
        assert!(a.read_as(ChunkId(3), DType::F64, &[2, 3]).is_err());
        assert!(a.read_as(ChunkId(3), DType::F32, &[3, 2]).is_err());
        // Not a run's folder: `b` must not delete `a`'s files when it goes.
        std::mem::forget(b);
        drop(a);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn run_folders_are_private_and_unique() {
        let root = std::env::temp_dir().join(format!("tessera-spill-test7-{}", std::process::id()));
        let a = SpillDir::create(Some(&root), None).unwrap();
        let b = SpillDir::create(Some(&root), None).unwrap();
        assert_ne!(a.path(), b.path());
        assert_ne!(a.token, b.token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(a.path()).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o700, "{m:o}");
        }
        drop((a, b));
        let _ = std::fs::remove_dir_all(root);
    }

    #[cfg(unix)]
    #[test]
    fn default_root_is_per_user_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let root = default_spill_root().unwrap();
        assert!(root.ends_with(format!("tessera-spill-{}", euid())));
        let m = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(m & 0o022, 0, "{m:o}");
        // A root that group or others can write is refused with the reason.
        let open = std::env::temp_dir().join(format!("tessera-spill-test8-{}", std::process::id()));
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_private_root(&open).unwrap_err();
        assert!(
            matches!(&e, Error::Io(m) if m.contains("writable by group or others")),
            "{e}"
        );
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_private_root(&open).unwrap();
        // A symlink is not a root, even to a private folder.
        let link = open.with_extension("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(check_private_root(&link).is_err());
        // Another user's root is refused (as root: one given to nobody; else root's `/`).
        let (theirs, uid) = if euid() == 0 {
            std::os::unix::fs::chown(&open, Some(65534), None).unwrap();
            (open.as_path(), 65534)
        } else {
            (Path::new("/"), 0)
        };
        let e = check_private_root(theirs).unwrap_err();
        assert!(
            e.to_string().contains(&format!("owned by uid {uid}")),
            "{e}"
        );
        let _ = std::fs::remove_file(link);
        let _ = std::fs::remove_dir_all(open);
    }
}
