//! CUDA C -> PTX through NVRTC, with a compile cache in memory and on disk. Needs no driver
//! and no GPU (only libnvrtc), so it is tested on any machine where NVRTC exists.
//!
//! A PTX file is named `<kernel>-<source hash>-<arch>.ptx`: the hash covers the CUDA C text and
//! the NVRTC options, so a renderer change never picks up stale PTX, and two runs (or two
//! processes) that render the same kernel compile it once. Files are written to a temporary
//! name and renamed, so a reader never sees half a file.
//!
//! PTX is code, so it is read only from a folder of this user's that other users cannot write
//! (`tessera_cpu::cachedir`; else there is no disk cache), and only when it proves to be this
//! kernel: each file starts with a header line naming the signature of its source, options,
//! architecture and entry, and the length and SHA-256 of the PTX after it. A file that fails
//! (cut short, another kernel's PTX, an older format) is removed and compiled again.

use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tessera_cpu::cachedir;
use tessera_runtime::{Error, Result};

/// Counters of a [`PtxCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Served from memory.
    pub memory_hits: u64,
    /// Read from the disk cache.
    pub disk_hits: u64,
    /// Compiled by NVRTC.
    pub compiled: u64,
}

/// PTX by kernel, source and architecture: in memory, and in `dir` when one is given.
#[derive(Debug)]
pub struct PtxCache {
    dir: Option<PathBuf>,
    mem: Mutex<HashMap<String, Arc<str>>>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiled: AtomicU64,
}

/// NVRTC options of every Tessera kernel besides the architecture: the defaults (IEEE division
/// and square root, no fast math; generated code already avoids FMA contraction where results
/// must round like the CPU's).
const OPTIONS: &str = "default";

fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn nvrtc_err(msg: impl Into<String>) -> Error {
    Error::Backend {
        backend: "cuda".into(),
        msg: msg.into(),
    }
}

/// The virtual architecture NVRTC compiles for (`compute_90` for compute capability 9.0).
pub fn arch_for(cc: (i32, i32)) -> &'static str {
    match cc {
        (7, 0) => "compute_70",
        (7, 5) => "compute_75",
        (8, 0) => "compute_80",
        (8, 6) => "compute_86",
        (8, 9) => "compute_89",
        (9, 0) => "compute_90",
        (10, 0) => "compute_100",
        (12, 0) => "compute_120",
        // An architecture this table lacks: leaked once per process (a handful of bytes).
        (ma, mi) => Box::leak(format!("compute_{ma}{mi}").into_boxed_str()),
    }
}

/// Makes libnvrtc loadable, or says why not. `TESSERA_NVRTC_LIB_DIR` names a directory holding
/// `libnvrtc.so*` (e.g. the `nvidia-cuda-nvrtc-cu12` wheel's `lib`), loaded by path first;
/// otherwise the dynamic loader's path is searched.
pub fn nvrtc_available() -> std::result::Result<(), String> {
    if let Some(dir) = std::env::var_os("TESSERA_NVRTC_LIB_DIR") {
        let dir = PathBuf::from(dir);
        let lib = std::fs::read_dir(&dir)
            .map_err(|e| format!("TESSERA_NVRTC_LIB_DIR {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                n.is_some_and(|n| n.starts_with("libnvrtc.so"))
            })
            .min()
            .ok_or_else(|| format!("no libnvrtc.so* in {}", dir.display()))?;
        // SAFETY: loading NVIDIA's NVRTC runs only its (trusted) initializers. The handle is
        // leaked so the library stays loaded; cudarc's later dlopen by soname finds it.
        let handle = unsafe { libloading::Library::new(&lib) }
            .map_err(|e| format!("loading {}: {e}", lib.display()))?;
        std::mem::forget(handle);
    }
    // SAFETY: only tries to dlopen libnvrtc under its usual names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err("libnvrtc not found (set TESSERA_NVRTC_LIB_DIR or LD_LIBRARY_PATH)".into())
    }
}

impl PtxCache {
    /// A cache in memory, and in `dir` when given and private to this user (created 0700
    /// where missing; a folder other users can write is not used, and stderr says so once).
    pub fn new(dir: Option<PathBuf>) -> Self {
        let dir = dir.and_then(|d| match private(&d) {
            Ok(()) => {
                cachedir::remove_stale_temps(&d, cachedir::STALE_AGE);
                Some(d)
            }
            Err(why) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| eprintln!("tessera: PTX cache not used: {why}"));
                None
            }
        });
        PtxCache {
            dir,
            mem: Mutex::new(HashMap::new()),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiled: AtomicU64::new(0),
        }
    }

    /// The default disk cache: `ptx` in the cache root of `tessera_cpu::cachedir::root`
    /// (`$TESSERA_CACHE_DIR`, else `$XDG_CACHE_HOME/tessera`, else `$HOME/.cache/tessera`,
    /// else the per-user `$TMPDIR/tessera-cache-<uid>`).
    pub fn default_dir() -> Option<PathBuf> {
        Some(cachedir::root().0.join("ptx"))
    }

    /// The directory PTX files go to, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
        }
    }

    /// The file name of kernel `name` compiled from `src` for `arch`.
    pub fn file_name(name: &str, src: &str, arch: &str) -> String {
        format!("{name}-{:016x}-{arch}.ptx", fnv(&[src, OPTIONS, arch]))
    }

    /// The PTX of `src` (whose entry points include `name`) for `arch`: from memory, from the
    /// disk cache, or compiled by NVRTC (then stored in both).
    ///
    /// # Errors
    /// `Error::Backend` when NVRTC is missing or rejects the source (its log is included).
    pub fn get(&self, name: &str, src: &str, arch: &'static str) -> Result<Arc<str>> {
        let file = Self::file_name(name, src, arch);
        if let Some(p) = self.mem.lock().expect("ptx cache").get(&file) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p.clone());
        }
        let entry = format!(".entry {name}");
        let sig = cachedir::signature(&[src, OPTIONS, arch, name]);
        if let Some(dir) = &self.dir {
            let path = dir.join(&file);
            match read_verified(&path, &sig) {
                Ok(Some(text)) if text.contains(&entry) => {
                    self.disk_hits.fetch_add(1, Ordering::Relaxed);
                    let p: Arc<str> = text.into();
                    self.mem.lock().expect("ptx cache").insert(file, p.clone());
                    return Ok(p);
                }
                Ok(None) => {}
                // Damaged, or not this kernel's: ours by name in our folder, replaced below.
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        nvrtc_available().map_err(nvrtc_err)?;
        let ptx = compile_ptx_with_opts(
            src,
            CompileOptions {
                arch: Some(arch),
                name: Some(format!("{name}.cu")),
                ..Default::default()
            },
        )
        .map_err(|e| nvrtc_err(format!("NVRTC could not compile {name} for {arch}: {e}")))?
        .to_src();
        if !ptx.contains(&entry) {
            return Err(nvrtc_err(format!(
                "NVRTC output for {name} has no entry point {name}"
            )));
        }
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(dir) = &self.dir {
            // A cache that cannot be written is only slower: the PTX is still returned.
            let _ = cachedir::write_atomic(dir, &file, (header(&sig, &ptx) + &ptx).as_bytes());
        }
        let p: Arc<str> = ptx.into();
        self.mem.lock().expect("ptx cache").insert(file, p.clone());
        Ok(p)
    }
}

/// Creates `dir` (0700) where missing and checks that it, and the cache root above it when
/// it is the default folder, are this user's and closed to other users' writes.
fn private(dir: &Path) -> std::result::Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let (root, fallback) = cachedir::root();
    if dir.parent() == Some(root.as_path()) {
        cachedir::check_dir(&root, fallback)?;
    }
    cachedir::check_dir(dir, fallback && dir.parent() == Some(root.as_path()))
}

/// Most bytes of a cached PTX file read (library PTX is a few MiB).
const MAX_PTX: u64 = 256 << 20;

/// The first line of a cache file: the kernel's signature, the PTX's length and digest.
fn header(sig: &str, ptx: &str) -> String {
    format!(
        "// tessera-ptx 1 {sig} {} {}\n",
        ptx.len(),
        cachedir::sha256_hex(ptx.as_bytes())
    )
}

/// The PTX in `path` when it is this user's private file and its header proves it is kernel
/// `sig` with these exact bytes; `Ok(None)` when there is no file, `Err` when it fails.
fn read_verified(path: &Path, sig: &str) -> std::result::Result<Option<String>, String> {
    let Some(bytes) = cachedir::read_private(path, MAX_PTX)? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let (head, ptx) = text
        .split_once('\n')
        .ok_or_else(|| format!("{}: no header", path.display()))?;
    if format!("{head}\n") != header(sig, ptx) {
        return Err(format!("{} is not this kernel's PTX", path.display()));
    }
    Ok(Some(ptx.to_string()))
}
