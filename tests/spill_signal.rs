//! The `tessera` binary on SIGINT/SIGTERM: the run's spill folder is removed (its own files
//! only; user folders beside it stay) and the process exits with 128 + the signal.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run folders (`tessera-run-*`) under `root`, and whether any holds a spill file.
fn runs(root: &Path) -> (Vec<PathBuf>, bool) {
    let mut dirs = Vec::new();
    let mut spilled = false;
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("tessera-run-") {
            spilled |= std::fs::read_dir(e.path())
                .into_iter()
                .flatten()
                .flatten()
                .any(|f| f.file_name().to_string_lossy().ends_with(".spill"));
            dirs.push(e.path());
        }
    }
    (dirs, spilled)
}

fn killed_mid_run_cleans_up(sig: libc::c_int, name: &str) {
    let root = std::env::temp_dir().join(format!("tessera-signal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("2019")).unwrap();
    std::fs::write(root.join("2019").join("chunk-1.spill"), b"user data").unwrap();
    // Budgets far below the data: the run spills for many seconds.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "run",
            "std-expr",
            "--n",
            "3000",
            "--chunk",
            "250",
            "--backend",
            "cpu",
        ])
        .args([
            "--device-budget",
            "4MiB",
            "--host-budget",
            "8MiB",
            "--spill-dir",
        ])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let (dirs, spilled) = runs(&root);
        if spilled {
            assert_eq!(dirs.len(), 1, "{dirs:?}");
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the run ended ({st}) before it spilled");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no spill file after 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the child's pid, which is ours to signal and not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + sig),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (dirs, _) = runs(&root);
    assert!(dirs.is_empty(), "run folder left behind: {dirs:?}");
    assert_eq!(
        std::fs::read(root.join("2019").join("chunk-1.spill")).unwrap(),
        b"user data"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn sigterm_removes_the_run_folder() {
    killed_mid_run_cleans_up(libc::SIGTERM, "term");
}

#[test]
fn sigint_removes_the_run_folder() {
    killed_mid_run_cleans_up(libc::SIGINT, "int");
}
