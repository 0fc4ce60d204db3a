//! Cache folders for compiled code (the CPU kernel libraries of `jit.rs`, the CUDA backend's
//! PTX): where they are, and whether code may be loaded from them. Input: the environment;
//! output: a folder proven private to this user (or the reason there is none), digests of
//! cached files, atomic writes and the clean-up of temporaries left by dead writers.
//!
//! The rule: code is loaded only from a folder owned by this user that no other user can
//! write (nor any file in it), because whoever can write there chooses the code Tessera runs.
//! The cache root is `$TESSERA_CACHE_DIR`, else `$XDG_CACHE_HOME/tessera`, else
//! `$HOME/.cache/tessera`, else the per-user `$TMPDIR/tessera-cache-<uid>` (created 0700).

use sha2::{Digest, Sha256};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Temporaries of dead writers younger than this are kept (a writer in another PID namespace
/// may look dead while it works).
pub const STALE_AGE: Duration = Duration::from_secs(600);

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The cache root and whether it is the shared-temp fallback (which must be a real folder,
/// not a link someone else placed there).
pub fn root() -> (PathBuf, bool) {
    if let Some(d) = env_path("TESSERA_CACHE_DIR") {
        return (d, false);
    }
    if let Some(d) = env_path("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return (d.join("tessera"), false);
    }
    if let Some(h) = env_path("HOME") {
        return (h.join(".cache").join("tessera"), false);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    (
        std::env::temp_dir().join(format!("tessera-cache-{uid}")),
        true,
    )
}

/// Checks that `dir` is a folder owned by this user that group and others cannot write.
///
/// # Errors
/// Why not, naming the folder.
pub fn check_dir(dir: &Path, no_link: bool) -> Result<(), String> {
    let m = if no_link {
        std::fs::symlink_metadata(dir)
    } else {
        std::fs::metadata(dir)
    }
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    if !m.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    check_owner(dir, &m)
}

fn check_owner(p: &Path, m: &std::fs::Metadata) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if m.uid() != uid {
        return Err(format!(
            "{} is owned by uid {}, not by this user (uid {uid})",
            p.display(),
            m.uid()
        ));
    }
    let mode = m.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{} is writable by other users (mode {mode:04o})",
            p.display()
        ));
    }
    Ok(())
}

/// Checks an open cache file: a regular file owned by this user that group and others cannot
/// write.
///
/// # Errors
/// Why not, naming `path`.
pub fn check_file(f: &File, path: &Path) -> Result<(), String> {
    let m = f
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    check_owner(path, &m)
}

/// Reads `path` after [`check_file`] proves it is this user's and private; `Ok(None)` when it
/// does not exist. A file larger than `max` bytes is refused, not read (no cache file is).
///
/// # Errors
/// Why not, naming `path`.
pub fn read_private(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    check_file(&f, path)?;
    let mut bytes = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{} is larger than any cache file ({max} bytes)",
            path.display()
        ));
    }
    Ok(Some(bytes))
}

/// `<root>/<sub>`, created 0700 where missing, once the root and it are proven private
/// ([`check_dir`]); temporaries of dead writers in it are removed.
///
/// # Errors
/// Why the folder cannot hold code (then there must be no disk cache).
pub fn private_dir(sub: &str) -> Result<PathBuf, String> {
    let (root, fallback) = root();
    let sub_dir = root.join(sub);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&sub_dir)
        .map_err(|e| format!("{}: {e}", sub_dir.display()))?;
    check_dir(&root, fallback)?;
    check_dir(&sub_dir, fallback)?;
    remove_stale_temps(&sub_dir, STALE_AGE);
    Ok(sub_dir)
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `parts`, each followed by a 0 byte (so `["ab", "c"]` and `["a", "bc"]` differ),
/// in hex.
pub fn signature(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A token unique to this call (process-random keys, the time and a counter): temporaries of
/// two writers never share a name, even with equal pids in two PID namespaces.
pub fn token() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(t.as_nanos());
    h.finish()
}

/// The name of a temporary for `stem.ext`: `<stem>.<pid>-<token>.tmp.<ext>` (the extension
/// last, for tools that go by it, such as a C compiler), the pattern [`remove_stale_temps`]
/// recognizes.
pub fn temp_name(stem: &str, ext: &str) -> String {
    format!("{stem}.{}-{:016x}.tmp.{ext}", std::process::id(), token())
}

/// The writer pid of a temporary named by [`temp_name`] (or by the CPU kernel compiler before
/// it used that pattern: `k<hash>.<pid>ThreadId<n>.c` / `.so.tmp`), else `None`.
fn temp_writer(name: &str) -> Option<u32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex16 = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some((rest, ext)) = name.rsplit_once(".tmp.") {
        if let Some((_, tag)) = rest.rsplit_once('.') {
            if let Some((pid, tok)) = tag.split_once('-') {
                if ["c", "so", "meta", "ptx"].contains(&ext) && digits(pid) && hex16(tok) {
                    return pid.parse().ok();
                }
            }
        }
    }
    // The older pattern, only for kernel names (`k` and 16 hex digits).
    let rest = name
        .strip_suffix(".so.tmp")
        .or_else(|| name.strip_suffix(".c"))?;
    let (stem, tag) = rest.split_once('.')?;
    let (pid, thread) = tag.split_once("ThreadId")?;
    if stem.len() == 17 && stem.starts_with('k') && hex16(&stem[1..]) && digits(thread) {
        return pid.parse().ok().filter(|_| digits(pid));
    }
    None
}

/// Whether process `pid` exists (in this PID namespace).
fn alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes temporaries in `dir` (names from [`temp_name`] only) whose writer is not alive and
/// that are older than `min_age`; returns how many.
pub fn remove_stale_temps(dir: &Path, min_age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temp_writer) else {
            continue;
        };
        let old = e
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        if old && pid != std::process::id() && !alive(pid) && std::fs::remove_file(e.path()).is_ok()
        {
            n += 1;
        }
    }
    n
}

/// Writes `bytes` to `dir/name` so that the name only ever holds a complete file: a unique
/// temporary in the same folder, flushed to disk, then renamed over the name.
///
/// # Errors
/// The I/O error; the temporary is removed.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "tmp"));
    let tmp = dir.join(temp_name(stem, ext));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognized_and_nothing_else() {
        let n = temp_name("k0123456789abcdef", "so");
        assert_eq!(temp_writer(&n), Some(std::process::id()));
        assert_eq!(
            temp_writer("k0123456789abcdef.4242ThreadId7.so.tmp"),
            Some(4242)
        );
        assert_eq!(temp_writer("k0123456789abcdef.4242ThreadId7.c"), Some(4242));
        for other in [
            "k0123456789abcdef.so",
            "k0123456789abcdef.c",
            "k0123456789abcdef.meta",
            "notes.txt",
            "photos.12-0123456789abcdef.tmp.jpg",
            "a.12-xyz.tmp.so",
            "k0123456789abcdef.12-0123456789abcdef.so.tmp",
            "kzz.12ThreadId1.c",
        ] {
            assert_eq!(temp_writer(other), None, "{other}");
        }
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(signature(&["ab", "c"]), signature(&["a", "bc"]));
    }

    #[test]
    fn stale_temps_of_dead_writers_go_and_everything_else_stays() {
        let dir = std::env::temp_dir().join(format!("tessera-stale-{:016x}", token()));
        std::fs::create_dir(&dir).unwrap();
        // A pid that is not alive: beyond the largest pid Linux hands out (2^22).
        let dead = format!("k0123456789abcdef.{}-{:016x}.tmp.so", 5_000_000, token());
        let mine = temp_name("k0123456789abcdef", "c");
        for f in [
            dead.as_str(),
            mine.as_str(),
            "k0123456789abcdef.so",
            "keep.txt",
        ] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        // Young files stay, whoever wrote them.
        assert_eq!(remove_stale_temps(&dir, STALE_AGE), 0);
        assert_eq!(remove_stale_temps(&dir, Duration::ZERO), 1);
        assert!(!dir.join(&dead).exists());
        for f in [mine.as_str(), "k0123456789abcdef.so", "keep.txt"] {
            assert!(dir.join(f).exists(), "{f} kept");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn folders_writable_by_others_are_refused() {
        let dir = std::env::temp_dir().join(format!("tessera-perm-{:016x}", token()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check_dir(&dir, true), Ok(()));
        for mode in [0o777, 0o757, 0o770] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = check_dir(&dir, true).unwrap_err();
            assert!(e.contains("writable by other users"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
