//! The conformance and out-of-core suites on the CPU backend (always available).
// Test tables spell their row types out in place.
#![allow(clippy::type_complexity)]

mod conformance;
mod ooc;

conformance_suite!(cpu, || Some(tessera::cpu_session()));
ooc_suite!(cpu_ooc, |n| Some(std::sync::Arc::new(
    tessera::CpuBackend::with_devices(n)
)
    as std::sync::Arc<dyn tessera::Backend>));
