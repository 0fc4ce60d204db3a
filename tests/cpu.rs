//! The conformance and out-of-core suites on the CPU backend (always available).
// Test tables spell their row types out in place.
#![allow(clippy::type_complexity)]

mod conformance;
mod ooc;

conformance_suite!(cpu, || Some(tessera::cpu_session()));
ooc_suite!(cpu_ooc, |n| Some(
    std::sync::Arc::new(tessera::CpuBackend::with_devices(n))
        as std::sync::Arc<dyn tessera::Backend>
));
// The same suite through the Scheduler: two virtual devices, so every op also runs with
// placement, device-to-device copies and the lane executor.
conformance_suite!(cpu_two_devices, || Some(tessera::Session::new(
    std::sync::Arc::new(tessera::CpuBackend::with_devices(2))
)));
