//! The conformance suite on the CPU backend (always available).
// Test tables spell their row types out in place.
#![allow(clippy::type_complexity)]

mod conformance;

conformance_suite!(cpu, || Some(tessera::cpu_session()));
