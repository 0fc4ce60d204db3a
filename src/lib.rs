//! Tessera: a GPU-first tensor compute runtime. Numpy-like lazy tensors are recorded as a graph,
//! tiled into a chunk graph and run on the best backend present.
//!
//! ```
//! let s = tessera::cpu_session();
//! let x = s.random(7).rand(&[1000], tessera::DType::F64).with_chunks(&[300]).unwrap();
//! let y = ((&x + 1.0) * 2.0).sum(tessera::Axes::All, false).unwrap();
//! assert!(y.item().unwrap() > 2000.0);
//! ```

pub mod bench;
pub mod chart;
pub mod workloads;

use std::sync::Arc;

pub use tessera_cpu::CpuBackend;
#[cfg(feature = "cuda")]
pub use tessera_cuda::{CudaBackend, CudaOptions};
pub use tessera_runtime::*;
#[cfg(feature = "wgpu")]
pub use tessera_wgpu::{wgpu as wgpu_crate, WgpuBackend, WgpuOptions};

/// The metrics of a scheduled run as a readable block (for `tessera run --stats`).
pub fn format_memory_stats(m: &MemoryStats) -> String {
    let mib = |b: u64| b as f64 / 1048576.0;
    let mut t = format!(
        "  plan: {:.3} s, {} kernels, {} copies, {} frees\n",
        m.plan_seconds, m.steps.0, m.steps.1, m.steps.2
    );
    t.push_str("  tier          budget MiB   peak MiB  planned MiB\n");
    for ((tier, b), (_, p)) in m.budgets.iter().zip(&m.peak) {
        let planned = m
            .planned_peak
            .iter()
            .find(|x| x.0 == *tier)
            .map_or(0, |x| x.1);
        let budget = if *b == u64::MAX {
            "unlimited".to_string()
        } else {
            format!("{:.1}", mib(*b))
        };
        t.push_str(&format!(
            "  {:<12} {:>11} {:>10.1} {:>12.1}\n",
            format!("{tier:?}"),
            budget,
            mib(*p),
            mib(planned)
        ));
    }
    for (l, b) in &m.moved {
        t.push_str(&format!(
            "  moved {:<16} {:>10.1} MiB\n",
            format!("{l:?}"),
            mib(*b)
        ));
    }
    t.push_str(&format!(
        "  spills {}, unspills {}, recomputed {}, disk {:.3} s\n",
        m.spills, m.unspills, m.recomputed, m.disk_seconds
    ));
    for (d, k) in m.kernels.iter().enumerate() {
        t.push_str(&format!(
            "  device {d}: {k} kernels, {:.3} s in kernels, {:.3} s in copies\n",
            m.kernel_seconds[d], m.copy_seconds[d]
        ));
    }
    t
}

/// A session on the CPU backend.
pub fn cpu_session() -> Session {
    Session::new(Arc::new(CpuBackend::new()))
}

/// A backend compiled into this build: its name, and the backend or why it is unusable here.
pub type BackendEntry = (String, std::result::Result<Arc<dyn Backend>, Error>);

/// A session on the wgpu backend (adapter chosen by `WGPU_BACKEND` / `TESSERA_WGPU_ADAPTER`).
///
/// # Errors
/// `BackendUnavailable` when no adapter exists.
#[cfg(feature = "wgpu")]
pub fn wgpu_session() -> Result<Session> {
    Ok(Session::new(Arc::new(WgpuBackend::new()?)))
}

/// The backends compiled into this build, with whether each is usable here and why not.
pub fn backends() -> Vec<BackendEntry> {
    #[allow(unused_mut)]
    let mut all = vec![(
        "cpu".to_string(),
        Ok(Arc::new(CpuBackend::new()) as Arc<dyn Backend>),
    )];
    #[cfg(feature = "cuda")]
    all.push((
        "cuda".to_string(),
        CudaBackend::new().map(|b| Arc::new(b) as Arc<dyn Backend>),
    ));
    #[cfg(feature = "wgpu")]
    all.push((
        "wgpu".to_string(),
        WgpuBackend::new().map(|b| Arc::new(b) as Arc<dyn Backend>),
    ));
    all
}

/// Runs `f` with the process's stderr sent to /dev/null: `auto` probes the GPU stacks, whose
/// loaders print to fd 2 (Vulkan/EGL: "XDG_RUNTIME_DIR is invalid or not set") although a
/// failed probe only means the CPU runs. Where the redirection cannot be set up, `f` runs as is.
#[cfg(all(unix, feature = "wgpu"))]
fn without_stderr<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return f();
    };
    // SAFETY: dup of fd 2 gives a new descriptor we own (or -1, checked); it does not touch
    // any Rust-owned file.
    let saved = unsafe { libc::dup(2) };
    if saved < 0 {
        return f();
    }
    // SAFETY: both descriptors are open (`null` lives until the end of this function); dup2
    // only makes fd 2 refer to /dev/null.
    unsafe { libc::dup2(null.as_raw_fd(), 2) };
    let out = f();
    // SAFETY: `saved` is the descriptor dup'ed above; restoring it onto fd 2 and closing our
    // copy returns stderr to what it was.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    out
}

#[cfg(all(not(unix), feature = "wgpu"))]
fn without_stderr<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// A session on the named backend ("cpu", "cuda", "wgpu"; only that one is probed), or on the
/// best one present for "auto": CUDA when a driver and GPU exist, else wgpu when its adapter is
/// a real GPU (not a CPU / software adapter such as lavapipe), else the CPU.
///
/// # Errors
/// `BackendUnavailable` for an unknown or absent backend.
pub fn session(kind: &str) -> Result<Session> {
    if kind == "auto" {
        #[cfg(feature = "cuda")]
        if let Ok(b) = CudaBackend::new() {
            return Ok(Session::new(Arc::new(b)));
        }
        #[cfg(feature = "wgpu")]
        if let Ok(b) = without_stderr(WgpuBackend::new) {
            if !b.is_software() {
                return Ok(Session::new(Arc::new(b)));
            }
        }
        return Ok(cpu_session());
    }
    // Only the named backend is opened: probing the others would load their drivers (and put
    // their messages on stderr) for nothing.
    match kind {
        "cpu" => Ok(cpu_session()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Session::new(Arc::new(CudaBackend::new()?))),
        #[cfg(feature = "wgpu")]
        "wgpu" => wgpu_session(),
        _ => Err(Error::BackendUnavailable {
            backend: kind.to_string(),
            reason: "not compiled into this build".into(),
        }),
    }
}
