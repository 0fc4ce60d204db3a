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
// The same suite through the remote executor's wire form (what the Ray executor sends): every
// chunk task serialized, read back and run as on a worker, connected tasks merged into groups
// of up to 64 KiB of work, user data read on the driver.
conformance_suite!(cpu_remote, || {
    let s = tessera::cpu_session();
    s.set_remote(Some(std::sync::Arc::new(tessera::remote::Loopback::new(
        s.backend().clone(),
        64 << 10,
    ))));
    Some(s)
});
