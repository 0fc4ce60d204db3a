//! The ABI helpers and the renderers' error paths.

mod common;

use common::B;
use tessera_kernels::{
    kernel_name, output_dtypes, pack_params, pack_params_u32, render_all, uses_f64, CudaRenderer,
    WgslRenderer,
};
use tessera_runtime::ir::{KernelParams, RandomParam, ReduceKind, Renderer};
use tessera_runtime::op::{ArgOp, BinaryOp, ReduceOp, UnaryOp};
use tessera_runtime::{DType, Error};

fn wgsl_unsupported(r: tessera_runtime::Result<String>) -> String {
    match r {
        Err(Error::Unsupported { op, backend }) if backend == "wgsl" => op,
        other => panic!("expected Unsupported on wgsl, got {other:?}"),
    }
}

#[test]
fn kernel_names_come_from_the_key() {
    let ir = common::add_mul_f32();
    let name = kernel_name(&ir);
    assert_eq!(name, format!("tessera_k{:016x}", ir.key().0));
    assert!(CudaRenderer
        .render(&ir)
        .unwrap()
        .contains(&format!("void __launch_bounds__(256) {name}(")));
    assert_ne!(name, kernel_name(&common::broadcast_add()));
}

#[test]
fn params_are_packed_in_abi_order() {
    let ir = common::mc_pi();
    let p = KernelParams {
        random: vec![
            RandomParam {
                seed: 1,
                stream: 2,
                base: 3,
            },
            RandomParam {
                seed: 0x1_0000_0004,
                stream: 5,
                base: 6,
            },
        ],
        arg_base: 9,
        load_offsets: vec![],
    };
    assert_eq!(
        pack_params(&ir, &p),
        vec![1_000_000, 9, 1, 2, 3, 0x1_0000_0004, 5, 6]
    );
    let two = common::broadcast_add();
    let q = KernelParams {
        load_offsets: vec![7],
        ..KernelParams::default()
    };
    assert_eq!(pack_params(&two, &q), vec![91, 0, 7, 0]);
    let w = pack_params_u32(&ir, &p);
    assert_eq!(&w[..6], &[1_000_000, 0, 9, 0, 1, 0]);
    assert_eq!(&w[10..12], &[4, 1]);
    // Missing random entries are zeros.
    assert_eq!(pack_params(&ir, &KernelParams::default()).len(), 8);
}

#[test]
fn output_fields_follow_the_partial_contract() {
    assert_eq!(output_dtypes(&common::add_mul_f32()), vec![DType::F32]);
    assert_eq!(output_dtypes(&common::mc_pi()), vec![DType::I64]);
    assert_eq!(
        output_dtypes(&common::var_axis1()),
        vec![DType::F64, DType::F64]
    );
    assert_eq!(
        output_dtypes(&common::argmax_axis0()),
        vec![DType::F32, DType::I64]
    );
    assert_eq!(output_dtypes(&common::mean_two_axes()), vec![DType::F64]);
    assert_eq!(
        output_dtypes(&common::min_i32_transposed()),
        vec![DType::I32]
    );
    assert!(!uses_f64(&common::mc_pi()) && uses_f64(&common::var_axis1()));
}

#[test]
fn wgsl_rejects_int64_and_f64_transcendentals() {
    let op = wgsl_unsupported(WgslRenderer.render(&common::i64_ops()));
    assert!(op.contains("64-bit"), "{op}");
    let mut b = B::new(&[10]);
    let x = b.contiguous(DType::F64);
    let e = b.un(UnaryOp::Exp, x);
    let ir = b.finish(e);
    let op = wgsl_unsupported(WgslRenderer.render(&ir));
    assert!(op.contains("exp"), "{op}");
    // CUDA has both.
    let (w, c) = render_all(&ir);
    assert!(w.is_err() && c.is_ok());
    assert!(CudaRenderer.render(&common::i64_ops()).is_ok());
}

#[test]
fn argmin_on_bool_and_any_render() {
    let mut b = B::new(&[6, 5]);
    let x = b.contiguous(DType::Bool);
    let ir = b.reduce(x, ReduceKind::Arg(ArgOp::ArgMin), &[1]);
    let (w, c) = render_all(&ir);
    assert!(w.unwrap().contains("array<vec2<u32>>") && c.is_ok());
    let mut b = B::new(&[6, 5]);
    let x = b.contiguous(DType::F32);
    let ir = b.reduce(x, ReduceKind::Reduce(ReduceOp::Any), &[0, 1]);
    let (w, c) = render_all(&ir);
    assert!(w.is_ok() && c.is_ok());
}

#[test]
fn malformed_ir_is_an_error() {
    let mut ir = common::add_mul_f32();
    ir.insts.swap(0, 2); // an operand after its user
    for r in [WgslRenderer.render(&ir), CudaRenderer.render(&ir)] {
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    }
    let mut b = B::new(&[4]);
    let x = b.contiguous(DType::Bool);
    let y = b.contiguous(DType::Bool);
    let s = b.bin(BinaryOp::Sub, x, y);
    let ir = b.finish(s);
    for r in [WgslRenderer.render(&ir), CudaRenderer.render(&ir)] {
        assert!(matches!(r, Err(Error::UnsupportedDType { .. })), "{r:?}");
    }
}

#[test]
fn huge_index_spaces_use_64_bit_indices_in_cuda() {
    let mut b = B::new(&[1 << 20, 1 << 13]);
    let x = b.contiguous(DType::F32);
    let one = b.cnst(1.0, DType::F32);
    let y = b.bin(BinaryOp::Add, x, one);
    let ir = b.finish(y);
    let c = CudaRenderer.render(&ir).unwrap();
    assert!(c.contains("const unsigned long long e = (unsigned long long)e64;"));
    wgsl_unsupported(WgslRenderer.render(&ir));
}
