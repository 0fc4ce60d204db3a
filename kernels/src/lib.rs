//! tessera-kernels: the Renderer stage. Input: a fused `KernelIr` (from the Fuser). Output:
//! source text for a device compiler: WGSL for wgpu ([`WgslRenderer`]) and CUDA C for NVRTC
//! ([`CudaRenderer`]). The CPU backend interprets the IR directly and needs neither.
//!
//! Both renderers reproduce the CPU backend's numpy semantics (`tessera-cpu` elementwise.rs and
//! reduce.rs) and draw random numbers with the exact Philox4x32-10 bit recipe of
//! `tessera_runtime::philox`, so a value depends only on (seed, stream, global index).
//!
//! The kernel ABI (bindings / arguments, params layout, launch shape) is documented at the top of
//! [`wgsl`] and [`cuda`]; [`output_dtypes`] lists the output buffers and [`pack_params`] /
//! [`pack_params_u32`] build the run-time parameters of one launch in ABI order.
//!
//! # Tests
//! - `tests/golden.rs`: golden files (below), naga validation of every WGSL kernel (f32-only
//!   kernels also without `FLOAT64`), and an op x dtype matrix through naga.
//! - `tests/nvrtc.rs`: every CUDA kernel (representative ones and the matrix) through NVRTC and
//!   `ptxas -arch=sm_90`.
//! - `tests/cuda_run.rs`: where a CUDA driver and GPU exist, runs every CUDA kernel and compares
//!   with `tessera-cpu`'s interpreter of the same IR (bit for bit except transcendentals and f64
//!   accumulation order); prints `skipped: <reason>` elsewhere.
//! - `tests/abi.rs`: params packing, output fields, kernel names, error paths.
//!
//! # Golden files
//! `tests/golden.rs` renders a set of representative kernels and compares them with
//! `golden/<name>.wgsl` and `golden/<name>.cu`; every WGSL file is validated with naga, every
//! CUDA file compiled by NVRTC and assembled by `ptxas -arch=sm_90` where those tools exist
//! (`TESSERA_NVRTC_LIB_DIR`, `TESSERA_PTXAS`, or `LD_LIBRARY_PATH` / `PATH`; otherwise the test
//! prints `skipped: <reason>`). After an intended change to the generated code, regenerate the
//! golden files with:
//!
//! ```text
//! TESSERA_BLESS=1 cargo test -p tessera-kernels
//! ```
#![warn(missing_docs)]

mod common;
pub mod cuda;
mod cuda_helpers;
pub mod lower;
pub mod wgsl;
mod wgsl_helpers;

pub use common::{
    num_random_params, output_dtypes, pack_params, pack_params_u32, uses_f64, WORKGROUP,
};
pub use cuda::{elements_per_thread, CudaRenderer};
pub use wgsl::WgslRenderer;

use tessera_runtime::ir::{InstKind, KernelIr, ReduceKind, Renderer};
use tessera_runtime::Result;

/// The kernel's function name in CUDA C (`tessera_k<16 hex digits of the KernelKey>`); the
/// WGSL entry point is always `main`.
pub fn kernel_name(ir: &KernelIr) -> String {
    format!("tessera_k{:016x}", ir.key().0)
}

/// Renders `ir` with both renderers: `(wgsl, cuda)`.
pub fn render_all(ir: &KernelIr) -> (Result<String>, Result<String>) {
    (WgslRenderer.render(ir), CudaRenderer.render(ir))
}

/// A one-line summary of a kernel for the header comment of generated code.
pub(crate) fn describe(ir: &KernelIr) -> String {
    let ins: Vec<String> = ir
        .inputs
        .iter()
        .map(|i| format!("{} {:?}", i.dtype, i.strides))
        .collect();
    let randoms = ir
        .insts
        .iter()
        .filter(|i| matches!(i.kind, InstKind::Random { .. }))
        .count();
    let tail = match &ir.reduce {
        None => "elementwise".to_string(),
        Some(r) => {
            let k = match r.kind {
                ReduceKind::Reduce(op) => op.name().to_string(),
                ReduceKind::Arg(op) => format!("{op:?}").to_lowercase(),
            };
            format!("{k} over axes {:?}", r.axes)
        }
    };
    format!(
        "shape {:?}; inputs [{}]; {} insts ({randoms} random); {tail} -> {:?}",
        ir.shape,
        ins.join(", "),
        ir.insts.len(),
        output_dtypes(ir)
    )
}
