//! `lower::split_reduction` preserves results: the split kernel, interpreted by the CPU
//! backend, then its slices combined like partials of separate chunks (`ReduceCombine`), equals
//! the unsplit kernel's partial — for sums, moments, extremes and logical reductions, with a
//! broadcast input, a random source and reductions over one or two axes.

mod common;

use common::{run_cpu, uniform01, B};
use rand::{Rng, SeedableRng};
use tessera_cpu::CpuBackend;
use tessera_kernels::lower::split_reduction;
use tessera_runtime::chunk::{ChunkNode, ChunkOp};
use tessera_runtime::ir::{KernelIr, KernelParams, RandomParam, ReduceKind};
use tessera_runtime::op::{BinaryOp, ReduceOp};
use tessera_runtime::{Backend, DType, HostArray};

fn run(ir: &KernelIr, params: &KernelParams, inputs: &[HostArray]) -> Vec<HostArray> {
    run_cpu(&CpuBackend::new(), ir, params, inputs).expect("cpu runs it")
}

fn values(a: &HostArray) -> Vec<f64> {
    a.cast(DType::F64)
        .as_array::<f64>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

#[test]
fn split_then_combine_equals_unsplit() {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (rows, cols) = (8usize, 1200usize);
    let x: Vec<f32> = (0..rows * cols).map(|_| rng.gen_range(-3.0..3.0)).collect();
    let bias: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let inputs = vec![
        HostArray::F32(ndarray::ArrayD::from_shape_vec(vec![rows * cols], x).unwrap()),
        HostArray::F32(ndarray::ArrayD::from_shape_vec(vec![cols], bias).unwrap()),
    ];
    let params = KernelParams {
        random: vec![RandomParam {
            seed,
            stream: 5,
            base: 77,
        }],
        ..Default::default()
    };
    let ops = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Var,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Any,
    ];
    for op in ops {
        for axes in [vec![1usize], vec![0, 1]] {
            // y = x * u + bias (bias broadcast over rows, u a random draw), reduced.
            let mut b = B::new(&[rows, cols]);
            let xv = b.input(DType::F32, &[cols, 1]);
            let bv = b.input(DType::F32, &[0, 1]);
            let u = b.random(uniform01(), DType::F32, &[cols as u64, 1], 0);
            let m = b.bin(BinaryOp::Mul, xv, u);
            let mut y = b.bin(BinaryOp::Add, m, bv);
            if op == ReduceOp::Any {
                let zero = b.cnst(0.5f32, DType::F32);
                y = b.bin(BinaryOp::Gt, y, zero);
            }
            let ir = b.reduce(y, ReduceKind::Reduce(op), &axes);
            let want = run(&ir, &params, &inputs);
            let a = axes[0];
            let splits = 8;
            let split = split_reduction(&ir, splits).expect("8 divides the axis");
            let parts = run(&split, &params, &inputs);
            let shape = parts[0].shape().to_vec();
            let mut out_shape = shape.clone();
            out_shape.remove(a);
            let slices: Vec<Vec<HostArray>> = (0..splits)
                .map(|s| {
                    let region: Vec<(usize, usize)> = shape
                        .iter()
                        .enumerate()
                        .map(|(d, &n)| if d == a { (s, s + 1) } else { (0, n) })
                        .collect();
                    parts
                        .iter()
                        .map(|f| f.slice_region(&region, None).reshape(&out_shape))
                        .collect()
                })
                .collect();
            let per = (ir.len() / want[0].len()) as f64 / splits as f64;
            let node = ChunkNode {
                op: ChunkOp::ReduceCombine {
                    op,
                    counts: vec![per; splits],
                },
                inputs: Default::default(),
                shape: out_shape.clone().into(),
                dtype: want[0].dtype(),
            };
            let refs: Vec<&Vec<HostArray>> = slices.iter().collect();
            let got = CpuBackend::new().run_chunk(&node, &refs).unwrap();
            assert_eq!(got.len(), want.len(), "{op:?} {axes:?}: fields");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.shape(), w.shape(), "{op:?} {axes:?}");
                for (p, q) in values(g).iter().zip(values(w)) {
                    assert!(
                        (p - q).abs() <= 1e-9 * q.abs().max(1.0),
                        "{op:?} over {axes:?}: split {p} unsplit {q}"
                    );
                }
            }
        }
    }
}
