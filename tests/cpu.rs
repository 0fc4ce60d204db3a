//! The conformance suite on the CPU backend (always available).

mod conformance;

conformance_suite!(cpu, || Some(tessera::cpu_session()));
