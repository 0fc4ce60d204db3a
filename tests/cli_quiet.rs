//! The `tessera` command with `--backend cpu` opens no GPU backend: no GPU driver library is
//! loaded (seen through the dynamic loader's `LD_DEBUG=libs` log) and no GPU stack's message
//! (such as `XDG_RUNTIME_DIR is invalid or not set`) reaches the user's terminal.

use std::process::Command;

#[test]
fn a_cpu_run_probes_no_gpu_backend() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["run", "pi", "--n", "1e5", "--backend", "cpu"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("LD_DEBUG", "libs")
        // The interpreter: this test is about backends, not the kernel compiler's cache.
        .env("TESSERA_CPU_JIT", "off")
        .output()
        .expect("run tessera");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("backend=cpu"),
        "{stderr}"
    );
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    // The loader logs every library it looks for; a probe of CUDA or wgpu looks for these.
    for lib in ["libcuda.so", "libvulkan", "libEGL", "libGL", "libnvrtc"] {
        let hits: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("find library=") && l.contains(lib))
            .collect();
        assert!(hits.is_empty(), "--backend cpu looked for {lib}: {hits:?}");
    }
}

/// `auto` probes the GPU stacks but keeps their loaders' messages off the terminal (where a
/// Vulkan loader is installed, as in CI's lavapipe, it prints an XDG_RUNTIME_DIR error when
/// probed without that variable).
#[test]
fn an_auto_run_keeps_gpu_probe_noise_off_stderr() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["run", "pi", "--n", "1e5"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("TESSERA_CPU_JIT", "off")
        .output()
        .expect("run tessera");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pi n=100000"),
        "{stderr}"
    );
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
}
