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
pub use tessera_runtime::*;

/// A session on the CPU backend.
pub fn cpu_session() -> Session {
    Session::new(Arc::new(CpuBackend::new()))
}

/// A backend compiled into this build: its name, and the backend or why it is unusable here.
pub type BackendEntry = (String, std::result::Result<Arc<dyn Backend>, Error>);

/// The backends compiled into this build, with whether each is usable here and why not.
pub fn backends() -> Vec<BackendEntry> {
    vec![(
        "cpu".to_string(),
        Ok(Arc::new(CpuBackend::new()) as Arc<dyn Backend>),
    )]
}

/// A session on the named backend ("cpu"), or on the best one present for "auto".
///
/// # Errors
/// `BackendUnavailable` for an unknown or absent backend.
pub fn session(kind: &str) -> Result<Session> {
    let all = backends();
    let pick = if kind == "auto" {
        all.into_iter().find_map(|(_, b)| b.ok())
    } else {
        match all.into_iter().find(|(n, _)| n == kind) {
            Some((_, b)) => Some(b?),
            None => None,
        }
    };
    pick.map(Session::new)
        .ok_or_else(|| Error::BackendUnavailable {
            backend: kind.to_string(),
            reason: "not compiled into this build".into(),
        })
}
