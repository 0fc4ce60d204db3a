//! Hand-built representative kernels shared by the kernel tests.
#![allow(dead_code)]

#[cfg(unix)]
pub mod emu;
pub mod gpu_cases;

use tessera_runtime::dtype::{Scalar, F64};
use tessera_runtime::ir::{
    row_major_strides, Inst, InstKind, IrInput, IrReduce, KernelIr, ReduceKind, ValueId,
};
use tessera_runtime::op::{ArgOp, BinaryOp, Dist, ReduceOp, UnaryOp};
use tessera_runtime::DType;

/// A 1-D array of `v`.
pub fn col<T>(v: Vec<T>) -> ndarray::ArrayD<T> {
    let n = v.len();
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n]), v).expect("1-D")
}

/// Elements of input `i`'s buffer (largest offset + 1).
pub fn span(ir: &KernelIr, i: usize) -> usize {
    1 + ir
        .shape
        .iter()
        .zip(&ir.inputs[i].strides)
        .map(|(&s, &w)| s.saturating_sub(1) * w)
        .sum::<usize>()
}

/// Runs `ir` with `params` on `cpu` as a fused chunk task, one input chunk per IR input (the
/// reference GPU kernels are compared with).
pub fn run_cpu(
    cpu: &tessera_cpu::CpuBackend,
    ir: &KernelIr,
    params: &tessera_runtime::ir::KernelParams,
    inputs: &[tessera_runtime::HostArray],
) -> tessera_runtime::Result<Vec<tessera_runtime::HostArray>> {
    use tessera_runtime::chunk::{ChunkNode, ChunkOp};
    use tessera_runtime::Backend;
    let node = ChunkNode {
        op: ChunkOp::Fused {
            ir: std::sync::Arc::new(ir.clone()),
            params: Box::new(params.clone()),
            bound: vec![],
        },
        inputs: Default::default(),
        shape: ir.out_shape().into(),
        dtype: tessera_kernels::output_dtypes(ir)[0],
    };
    let data: Vec<Vec<tessera_runtime::HostArray>> =
        inputs.iter().map(|a| vec![a.clone()]).collect();
    let refs: Vec<&Vec<tessera_runtime::HostArray>> = data.iter().collect();
    cpu.run_chunk(&node, &refs)
}

/// A small SSA builder.
pub struct B {
    pub ir: KernelIr,
}

impl B {
    pub fn new(shape: &[usize]) -> B {
        B {
            ir: KernelIr {
                shape: shape.to_vec(),
                inputs: vec![],
                insts: vec![],
                result: 0,
                reduce: None,
            },
        }
    }
    fn push(&mut self, kind: InstKind, dtype: DType) -> ValueId {
        self.ir.insts.push(Inst { kind, dtype });
        (self.ir.insts.len() - 1) as ValueId
    }
    fn dt(&self, v: ValueId) -> DType {
        self.ir.insts[v as usize].dtype
    }
    /// A new input with the given strides, loaded.
    pub fn input(&mut self, dtype: DType, strides: &[usize]) -> ValueId {
        self.ir.inputs.push(IrInput {
            dtype,
            strides: strides.to_vec(),
        });
        let i = (self.ir.inputs.len() - 1) as u32;
        self.push(InstKind::Load(i), dtype)
    }
    /// A contiguous input of the index-space shape.
    pub fn contiguous(&mut self, dtype: DType) -> ValueId {
        let s = row_major_strides(&self.ir.shape);
        self.input(dtype, &s)
    }
    pub fn cnst(&mut self, v: impl Into<Scalar>, dtype: DType) -> ValueId {
        self.push(InstKind::Const(v.into()), dtype)
    }
    pub fn un(&mut self, op: UnaryOp, a: ValueId) -> ValueId {
        let d = match op {
            UnaryOp::LogicalNot
            | UnaryOp::IsNan
            | UnaryOp::IsInf
            | UnaryOp::IsFinite
            | UnaryOp::Signbit => DType::Bool,
            _ => self.dt(a),
        };
        self.push(InstKind::Unary(op, a), d)
    }
    pub fn bin(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
        let d = if op.is_predicate() {
            DType::Bool
        } else {
            self.dt(a)
        };
        self.push(InstKind::Binary(op, a, b), d)
    }
    pub fn select(&mut self, c: ValueId, a: ValueId, b: ValueId) -> ValueId {
        let d = self.dt(a);
        self.push(InstKind::Where(c, a, b), d)
    }
    pub fn cast(&mut self, a: ValueId, to: DType) -> ValueId {
        self.push(InstKind::Cast(a), to)
    }
    pub fn random(&mut self, dist: Dist, dtype: DType, gstrides: &[u64], param: u32) -> ValueId {
        self.push(
            InstKind::Random {
                dist,
                gstrides: gstrides.to_vec(),
                param,
            },
            dtype,
        )
    }
    pub fn reduce(mut self, result: ValueId, kind: ReduceKind, axes: &[usize]) -> KernelIr {
        self.ir.result = result;
        self.ir.reduce = Some(IrReduce {
            kind,
            axes: axes.to_vec(),
        });
        self.ir
    }
    pub fn finish(mut self, result: ValueId) -> KernelIr {
        self.ir.result = result;
        self.ir
    }
}

pub fn uniform01() -> Dist {
    Dist::Uniform {
        low: F64(0.0),
        high: F64(1.0),
    }
}

/// `(x + 1) * 2` on f32.
pub fn add_mul_f32() -> KernelIr {
    let mut b = B::new(&[1000]);
    let x = b.contiguous(DType::F32);
    let one = b.cnst(1.0, DType::F32);
    let s = b.bin(BinaryOp::Add, x, one);
    let two = b.cnst(2.0, DType::F32);
    let r = b.bin(BinaryOp::Mul, s, two);
    b.finish(r)
}

/// (13, 7) + (7,) broadcast.
pub fn broadcast_add() -> KernelIr {
    let mut b = B::new(&[13, 7]);
    let x = b.input(DType::F32, &[7, 1]);
    let y = b.input(DType::F32, &[0, 1]);
    let r = b.bin(BinaryOp::Add, x, y);
    b.finish(r)
}

/// `where((a > b) & (a != 0.5) | isnan(a), a, b * -1)`.
pub fn where_compare() -> KernelIr {
    let mut b = B::new(&[64, 32]);
    let x = b.contiguous(DType::F32);
    let y = b.contiguous(DType::F32);
    let gt = b.bin(BinaryOp::Gt, x, y);
    let half = b.cnst(0.5, DType::F32);
    let ne = b.bin(BinaryOp::Ne, x, half);
    let both = b.bin(BinaryOp::And, gt, ne);
    let nan = b.un(UnaryOp::IsNan, x);
    let c = b.bin(BinaryOp::Or, both, nan);
    let m1 = b.cnst(-1.0, DType::F32);
    let neg = b.bin(BinaryOp::Mul, y, m1);
    let r = b.select(c, x, neg);
    b.finish(r)
}

/// i32 -> f32 cast, then / 3.
pub fn cast_i32_f32() -> KernelIr {
    let mut b = B::new(&[4, 250]);
    let x = b.contiguous(DType::I32);
    let f = b.cast(x, DType::F32);
    let three = b.cnst(3.0, DType::F32);
    let r = b.bin(BinaryOp::Div, f, three);
    b.finish(r)
}

/// Every unary op on an f32 input, and the integer ones on an i32 input, summed as f32.
pub fn unary_all() -> KernelIr {
    use UnaryOp::*;
    let mut b = B::new(&[512]);
    let x = b.contiguous(DType::F32);
    let k = b.contiguous(DType::I32);
    let mut acc = b.cnst(0.0, DType::F32);
    let float_ops = [
        Neg, Abs, Sign, Sqrt, Exp, Log, Log1p, Expm1, Sin, Cos, Tan, Tanh, Arcsin, Arccos, Arctan,
        Floor, Ceil, Round,
    ];
    for op in float_ops {
        let v = b.un(op, x);
        acc = b.bin(BinaryOp::Add, acc, v);
    }
    for op in [LogicalNot, IsNan, IsInf, IsFinite] {
        let v = b.un(op, x);
        let f = b.cast(v, DType::F32);
        acc = b.bin(BinaryOp::Add, acc, f);
    }
    for op in [
        Neg, Abs, Sign, Floor, Ceil, Round, LogicalNot, IsNan, IsInf, IsFinite,
    ] {
        let v = b.un(op, k);
        let f = b.cast(v, DType::F32);
        acc = b.bin(BinaryOp::Add, acc, f);
    }
    let bo = b.cast(k, DType::Bool);
    let nb = b.un(LogicalNot, bo);
    let f = b.cast(nb, DType::F32);
    acc = b.bin(BinaryOp::Add, acc, f);
    b.finish(acc)
}

/// `a // b * 65536 + a % b` on i32 (wrapping).
pub fn divmod_i32() -> KernelIr {
    let mut b = B::new(&[300]);
    let x = b.contiguous(DType::I32);
    let y = b.contiguous(DType::I32);
    let q = b.bin(BinaryOp::FloorDiv, x, y);
    let m = b.bin(BinaryOp::Mod, x, y);
    let k = b.cnst(65536, DType::I32);
    let qs = b.bin(BinaryOp::Mul, q, k);
    let r = b.bin(BinaryOp::Add, qs, m);
    b.finish(r)
}

/// `a // b + a % b` on f64 (numpy's npy_divmod).
pub fn divmod_f64() -> KernelIr {
    let mut b = B::new(&[300]);
    let x = b.contiguous(DType::F64);
    let y = b.contiguous(DType::F64);
    let q = b.bin(BinaryOp::FloorDiv, x, y);
    let m = b.bin(BinaryOp::Mod, x, y);
    let r = b.bin(BinaryOp::Add, q, m);
    b.finish(r)
}

/// Monte Carlo pi: `sum(rand^2 + rand^2 < 1)` over all axes of a (1000, 1000) chunk of a
/// (2000, 1000) tensor (gstrides of the full tensor), f32 randoms.
pub fn mc_pi() -> KernelIr {
    let mut b = B::new(&[1000, 1000]);
    let x = b.random(uniform01(), DType::F32, &[1000, 1], 0);
    let y = b.random(uniform01(), DType::F32, &[1000, 1], 1);
    let two = b.cnst(2.0, DType::F32);
    let x2 = b.bin(BinaryOp::Pow, x, two);
    let y2 = b.bin(BinaryOp::Pow, y, two);
    let s = b.bin(BinaryOp::Add, x2, y2);
    let one = b.cnst(1.0, DType::F32);
    let inside = b.bin(BinaryOp::Lt, s, one);
    b.reduce(inside, ReduceKind::Reduce(ReduceOp::Sum), &[0, 1])
}

/// var over axis 1 of a (64, 100) f32 input (partials: mean, M2 in f64).
pub fn var_axis1() -> KernelIr {
    let mut b = B::new(&[64, 100]);
    let x = b.contiguous(DType::F32);
    b.reduce(x, ReduceKind::Reduce(ReduceOp::Var), &[1])
}

/// argmax over axis 0 of a (50, 30) f32 input.
pub fn argmax_axis0() -> KernelIr {
    let mut b = B::new(&[50, 30]);
    let x = b.contiguous(DType::F32);
    b.reduce(x, ReduceKind::Arg(ArgOp::ArgMax), &[0])
}

/// randint(-5, 17) as i32 for a (100, 10) chunk of a (100, 20) tensor.
pub fn randint_i32() -> KernelIr {
    let mut b = B::new(&[100, 10]);
    let r = b.random(Dist::RandInt { low: -5, high: 17 }, DType::I32, &[20, 1], 0);
    b.finish(r)
}

/// mean over axes (0, 2) of an (8, 16, 32) f32 input.
pub fn mean_two_axes() -> KernelIr {
    let mut b = B::new(&[8, 16, 32]);
    let x = b.contiguous(DType::F32);
    b.reduce(x, ReduceKind::Reduce(ReduceOp::Mean), &[0, 2])
}

/// `1 + 2 * randn` (f32) and f64 `uniform(-1, 3)` cast to f32, added.
pub fn randn_f32() -> KernelIr {
    let mut b = B::new(&[256]);
    let z = b.random(
        Dist::Normal {
            mean: F64(1.0),
            std: F64(2.0),
        },
        DType::F32,
        &[1],
        0,
    );
    let u = b.random(
        Dist::Uniform {
            low: F64(-1.0),
            high: F64(3.0),
        },
        DType::F64,
        &[1],
        1,
    );
    let uf = b.cast(u, DType::F32);
    let r = b.bin(BinaryOp::Add, z, uf);
    b.finish(r)
}

/// min over axis 0 of a transposed (16, 8) i32 view (strides (1, 16)).
pub fn min_i32_transposed() -> KernelIr {
    let mut b = B::new(&[16, 8]);
    let x = b.input(DType::I32, &[1, 16]);
    b.reduce(x, ReduceKind::Reduce(ReduceOp::Min), &[0])
}

/// uniform f32 (one Philox word per value) and uniform f64 (two words) at non-linear global
/// indices: a (100, 10) chunk at column 5 of a (100, 20) tensor, summed in f64 over axis 1.
pub fn rand_strided() -> KernelIr {
    let mut b = B::new(&[100, 10]);
    let u = b.random(uniform01(), DType::F32, &[20, 1], 0);
    let uf = b.cast(u, DType::F64);
    let v = b.random(uniform01(), DType::F64, &[20, 1], 1);
    let s = b.bin(BinaryOp::Add, uf, v);
    b.reduce(s, ReduceKind::Reduce(ReduceOp::Sum), &[1])
}

/// Normal f64 (four Philox words per value), strided; CUDA only (WGSL has no f64 log/cos).
pub fn randn_f64_strided() -> KernelIr {
    let mut b = B::new(&[100, 10]);
    let z = b.random(
        Dist::Normal {
            mean: F64(0.0),
            std: F64(1.0),
        },
        DType::F64,
        &[20, 1],
        0,
    );
    b.finish(z)
}

/// int64 arithmetic (CUDA only): `a // b + a % b * 3 + max(a, b) - -a` and an i64 sum.
pub fn i64_ops() -> KernelIr {
    let mut b = B::new(&[40, 25]);
    let x = b.contiguous(DType::I64);
    let y = b.input(DType::I64, &[0, 1]);
    let q = b.bin(BinaryOp::FloorDiv, x, y);
    let m = b.bin(BinaryOp::Mod, x, y);
    let three = b.cnst(3, DType::I64);
    let m3 = b.bin(BinaryOp::Mul, m, three);
    let s = b.bin(BinaryOp::Add, q, m3);
    let mx = b.bin(BinaryOp::Maximum, x, y);
    let s = b.bin(BinaryOp::Add, s, mx);
    let nx = b.un(UnaryOp::Neg, x);
    let s = b.bin(BinaryOp::Sub, s, nx);
    b.reduce(s, ReduceKind::Reduce(ReduceOp::Sum), &[0])
}

/// Kernels only the CUDA renderer supports (the WGSL renderer says `Unsupported`).
pub fn cuda_only() -> Vec<(&'static str, KernelIr)> {
    vec![
        ("randn_f64_strided", randn_f64_strided()),
        ("i64_ops", i64_ops()),
    ]
}

/// Every representative kernel with its golden-file name.
pub fn all() -> Vec<(&'static str, KernelIr)> {
    vec![
        ("add_mul_f32", add_mul_f32()),
        ("broadcast_add", broadcast_add()),
        ("where_compare", where_compare()),
        ("cast_i32_f32", cast_i32_f32()),
        ("unary_all", unary_all()),
        ("divmod_i32", divmod_i32()),
        ("divmod_f64", divmod_f64()),
        ("mc_pi", mc_pi()),
        ("var_axis1", var_axis1()),
        ("argmax_axis0", argmax_axis0()),
        ("randint_i32", randint_i32()),
        ("mean_two_axes", mean_two_axes()),
        ("randn_f32", randn_f32()),
        ("min_i32_transposed", min_i32_transposed()),
        ("rand_strided", rand_strided()),
    ]
}

/// Every op the IR has, per dtype it accepts (the graph's dtype rules in `op.rs`): unary and
/// binary ops, casts, random draws, reductions and arg-reductions. Names say what they hold.
pub fn matrix() -> Vec<(String, KernelIr)> {
    use DType::{Bool, F32, I32, I64};
    let dtypes = [Bool, I32, I64, F32, DType::F64];
    let mut out = Vec::new();
    // Every op, so a new one is rendered (and compiled where a compiler is present) here.
    let unary = UnaryOp::ALL.iter().copied();
    let mut seen = std::collections::HashSet::new();
    for op in unary {
        for d in dtypes {
            let Some((din, _)) = op.dtypes(d) else {
                continue;
            };
            if !seen.insert((op.name(), din)) {
                continue;
            }
            let mut b = B::new(&[1000]);
            let x = b.contiguous(din);
            let r = b.un(op, x);
            out.push((format!("unary_{}_{}", op.name(), din), b.finish(r)));
        }
    }
    let binary = BinaryOp::ALL.iter().copied();
    for op in binary {
        for d in dtypes {
            let Some((din, _)) = op.dtypes(d) else {
                continue;
            };
            if !seen.insert((op.name(), din)) {
                continue;
            }
            // (40, 25) against a broadcast row (25,).
            let mut b = B::new(&[40, 25]);
            let x = b.contiguous(din);
            let y = b.input(din, &[0, 1]);
            let r = b.bin(op, x, y);
            out.push((format!("binary_{}_{}", op.name(), din), b.finish(r)));
        }
    }
    for from in dtypes {
        for to in dtypes {
            if from != to {
                let mut b = B::new(&[1000]);
                let x = b.contiguous(from);
                let r = b.cast(x, to);
                out.push((format!("cast_{from}_{to}"), b.finish(r)));
            }
        }
    }
    let dists = [
        (
            "uniform",
            Dist::Uniform {
                low: F64(-1.0),
                high: F64(3.0),
            },
            vec![F32, DType::F64],
        ),
        (
            "normal",
            Dist::Normal {
                mean: F64(1.0),
                std: F64(2.0),
            },
            vec![F32, DType::F64],
        ),
        (
            "randint",
            Dist::RandInt { low: -5, high: 17 },
            vec![Bool, I32, I64, F32, DType::F64],
        ),
        (
            "randint_wide",
            Dist::RandInt {
                low: -(1 << 40),
                high: 1 << 41,
            },
            vec![I32, I64, DType::F64],
        ),
    ];
    for (dn, dist, ds) in dists {
        for d in ds {
            // A (30, 33) chunk at column 7 of a (.., 50) tensor: non-linear global indices.
            let mut b = B::new(&[30, 33]);
            let r = b.random(dist, d, &[50, 1], 0);
            out.push((format!("random_{dn}_{d}"), b.finish(r)));
        }
    }
    let reductions = [
        ReduceOp::Sum,
        ReduceOp::Prod,
        ReduceOp::Mean,
        ReduceOp::Var,
        ReduceOp::Std,
        ReduceOp::Min,
        ReduceOp::Max,
        ReduceOp::Any,
        ReduceOp::All,
    ];
    for op in reductions {
        for d in dtypes {
            for axes in [vec![1], vec![0, 1]] {
                // (37, 300): the reduced extent is longer than a workgroup.
                let mut b = B::new(&[37, 300]);
                let x = b.contiguous(d);
                let ax = if axes.len() == 1 { "1" } else { "all" };
                out.push((
                    format!("reduce_{}_{d}_{ax}", op.name()),
                    b.reduce(x, ReduceKind::Reduce(op), &axes),
                ));
            }
        }
    }
    for op in [ArgOp::ArgMin, ArgOp::ArgMax] {
        for d in dtypes {
            for axis in [0, 1] {
                let mut b = B::new(&[37, 300]);
                let x = b.contiguous(d);
                out.push((
                    format!("{op:?}_{d}_{axis}").to_lowercase(),
                    b.reduce(x, ReduceKind::Arg(op), &[axis]),
                ));
            }
        }
    }
    out
}

/// Every kernel the CUDA renderer is tested on: the representative ones, the CUDA-only ones,
/// the op matrix and the contiguous (vectorizable) cases.
pub fn cuda_all() -> Vec<(String, KernelIr)> {
    all()
        .into_iter()
        .chain(cuda_only())
        .map(|(n, ir)| (n.to_string(), ir))
        .chain(matrix())
        .chain(
            gpu_cases::vector_cases()
                .into_iter()
                .map(|(n, ir)| (n.to_string(), ir)),
        )
        .collect()
}
