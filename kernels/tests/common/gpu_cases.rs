//! What the tests running generated CUDA kernels share (`cuda_run.rs` on a GPU, `cuda_emu.rs`
//! on the CPU): test inputs, how closely each kernel must match the CPU interpreter and the
//! comparison itself, and kernels for the contiguous (vectorizable) paths.

use super::{col, B};
use tessera_runtime::dtype::F64;
use tessera_runtime::ir::{KernelIr, ReduceKind};
use tessera_runtime::op::{BinaryOp, Dist, ReduceOp, UnaryOp};
use tessera_runtime::{DType, HostArray};

/// Values as f64 (bool as 0/1) for comparison.
pub fn host_values(a: &HostArray) -> Vec<f64> {
    match a {
        HostArray::Bool(x) => x.iter().map(|&v| v as u8 as f64).collect(),
        HostArray::I32(x) => x.iter().map(|&v| v as f64).collect(),
        HostArray::I64(x) => x.iter().map(|&v| v as f64).collect(),
        HostArray::F32(x) => x.iter().map(|&v| v as f64).collect(),
        HostArray::F64(x) => x.iter().copied().collect(),
    }
}

/// Deterministic test data with the special values every op must handle.
pub fn input(d: DType, n: usize, salt: usize) -> HostArray {
    let r = |i: usize| ((i * 7919 + salt * 104_729) % 2003) as i64 - 1001;
    match d {
        DType::Bool => HostArray::Bool(col((0..n).map(|i| r(i) % 3 == 0).collect())),
        DType::I32 => HostArray::I32(col((0..n)
            .map(|i| match i % 97 {
                5 => 0,
                6 => -1,
                7 => i32::MIN,
                _ => (r(i) / 7) as i32,
            })
            .collect())),
        DType::I64 => HostArray::I64(col((0..n).map(|i| r(i) * 1_000_003).collect())),
        DType::F32 => HostArray::F32(col((0..n)
            .map(|i| match i % 101 {
                3 => f32::NAN,
                4 => f32::INFINITY,
                5 => f32::NEG_INFINITY,
                6 => -0.0,
                7 => 0.5,
                8 => 0.0,
                _ => r(i) as f32 / 137.0,
            })
            .collect())),
        DType::F64 => HostArray::F64(col((0..n)
            .map(|i| match i % 101 {
                3 => f64::NAN,
                4 => f64::INFINITY,
                6 => -0.0,
                8 => 0.0,
                9 => 1e300,
                _ => r(i) as f64 / 13.0,
            })
            .collect())),
    }
}

/// How closely a kernel must match the CPU.
#[derive(Clone, Copy, Debug)]
pub enum Tol {
    Exact,
    Rel(f64),
}

pub fn tolerance(name: &str) -> Tol {
    // Not correctly rounded in CUDA's math library (nor all of them in the CPU interpreter,
    // which computes arcsinh/arccosh/arctanh and cbrt its own way).
    const TRANSCENDENTAL: &[&str] = &[
        "exp",
        "log",
        "log1p",
        "expm1",
        "sin",
        "cos",
        "tan",
        "tanh",
        "arcsin",
        "arccos",
        "arctan",
        "power",
        "normal",
        "sinh",
        "cosh",
        "arcsinh",
        "arccosh",
        "arctanh",
        "log2",
        "log10",
        "exp2",
        "cbrt",
        "arctan2",
        "hypot",
        "logaddexp",
    ];

    // Matrix kernels are named `<kind>_<op>_<dtype>[_<axes>]`.
    let op = ["unary_", "binary_", "random_"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .and_then(|r| r.rsplit_once('_'))
        .map(|(op, _)| op);
    let f64_only = name.ends_with("float64") && !name.starts_with("random_normal_float32");
    match name {
        "unary_all" | "randn_f32" => Tol::Rel(2e-5),
        "var_axis1" | "mean_two_axes" | "rand_strided" => Tol::Rel(1e-12),
        // log/cos in f64: a few ulps apart from the host libm.
        "randn_f64_strided" => Tol::Rel(1e-14),
        // CUDA's libdevice and the host libm differ by an ulp or two.
        _ if op.is_some_and(|o| TRANSCENDENTAL.contains(&o)) => {
            if f64_only {
                Tol::Rel(1e-13)
            } else {
                Tol::Rel(1e-5)
            }
        }
        // Welford means of int64 data of magnitude 1e9 whose mean is about 1e2: the rounding
        // error scales with the data, not with the mean.
        _ if name.starts_with("reduce_var_int64") || name.starts_with("reduce_std_int64") => {
            Tol::Rel(1e-6)
        }
        // f64 accumulations in another order.
        _ if [
            "reduce_sum_",
            "reduce_prod_",
            "reduce_mean_",
            "reduce_var_",
            "reduce_std_",
        ]
        .iter()
        .any(|p| name.starts_with(p)) =>
        {
            Tol::Rel(1e-12)
        }
        _ => Tol::Exact,
    }
}

/// Compares a kernel output with the CPU's: `(number differing, (first index, got, want))`, or
/// None when all agree. NaN matches any NaN; exact means the same bits (so -0 differs from 0).
pub fn compare(tol: Tol, got: &[f64], exp: &[f64]) -> Option<(usize, (usize, f64, f64))> {
    let mut bad = 0;
    let mut first = None;
    for (i, (&g, &e)) in got.iter().zip(exp).enumerate() {
        let ok = match tol {
            _ if g.is_nan() || e.is_nan() => g.is_nan() && e.is_nan(),
            Tol::Exact => g.to_bits() == e.to_bits() || (g == e && g != 0.0),
            Tol::Rel(t) => (g - e).abs() <= t * g.abs().max(e.abs()).max(1.0) || g == e,
        };
        if !ok {
            bad += 1;
            first.get_or_insert((i, g, e));
        }
    }
    first.map(|f| (bad, f))
}

/// Contiguous kernels for the paths that handle several elements per thread (16-byte vector
/// loads and stores, one Philox call serving four uniforms): element counts of 4k+1 and 4k+3,
/// each dtype's buffer type, random draws, and row reductions whose rows start unaligned.
pub fn vector_cases() -> Vec<(&'static str, KernelIr)> {
    let mut out = Vec::new();
    // f32: (x + 1) * 2 - y.
    for (name, shape) in [
        ("vec_f32_4k1", vec![4097]),
        ("vec_f32_4k3_2d", vec![3, 341]),
    ] {
        let mut b = B::new(&shape);
        let x = b.contiguous(DType::F32);
        let y = b.contiguous(DType::F32);
        let one = b.cnst(1.0, DType::F32);
        let s = b.bin(BinaryOp::Add, x, one);
        let two = b.cnst(2.0, DType::F32);
        let m = b.bin(BinaryOp::Mul, s, two);
        let r = b.bin(BinaryOp::Sub, m, y);
        out.push((name, b.finish(r)));
    }
    // i32: x * 3 + y, wrapping.
    for (name, n) in [("vec_i32_4k1", 2049), ("vec_i32_4k3", 1031)] {
        let mut b = B::new(&[n]);
        let x = b.contiguous(DType::I32);
        let y = b.contiguous(DType::I32);
        let three = b.cnst(3, DType::I32);
        let m = b.bin(BinaryOp::Mul, x, three);
        let r = b.bin(BinaryOp::Add, m, y);
        out.push((name, b.finish(r)));
    }
    // f64: (x - y) * x + 0.5.
    for (name, n) in [("vec_f64_4k1", 1025), ("vec_f64_4k3", 2051)] {
        let mut b = B::new(&[n]);
        let x = b.contiguous(DType::F64);
        let y = b.contiguous(DType::F64);
        let d = b.bin(BinaryOp::Sub, x, y);
        let m = b.bin(BinaryOp::Mul, d, x);
        let h = b.cnst(0.5, DType::F64);
        let r = b.bin(BinaryOp::Add, m, h);
        out.push((name, b.finish(r)));
    }
    // i64: x + y * -7.
    {
        let mut b = B::new(&[1029]);
        let x = b.contiguous(DType::I64);
        let y = b.contiguous(DType::I64);
        let k = b.cnst(-7, DType::I64);
        let m = b.bin(BinaryOp::Mul, y, k);
        let r = b.bin(BinaryOp::Add, x, m);
        out.push(("vec_i64_4k1", b.finish(r)));
    }
    // bool: (a and not b) or c.
    for (name, n) in [("vec_bool_4k1", 1025), ("vec_bool_4k3", 2047)] {
        let mut b = B::new(&[n]);
        let x = b.contiguous(DType::Bool);
        let y = b.contiguous(DType::Bool);
        let z = b.contiguous(DType::Bool);
        let ny = b.un(UnaryOp::LogicalNot, y);
        let a = b.bin(BinaryOp::And, x, ny);
        let r = b.bin(BinaryOp::Or, a, z);
        out.push((name, b.finish(r)));
    }
    // Mixed buffer types: f32 x > f32(i32 k) stored as bool; f32 x + f32(i32 k).
    {
        let mut b = B::new(&[1027]);
        let x = b.contiguous(DType::F32);
        let k = b.contiguous(DType::I32);
        let kf = b.cast(k, DType::F32);
        let r = b.bin(BinaryOp::Gt, x, kf);
        out.push(("vec_f32_gt_i32_to_bool_4k3", b.finish(r)));
        let mut b = B::new(&[1030]);
        let x = b.contiguous(DType::F32);
        let k = b.contiguous(DType::I32);
        let kf = b.cast(k, DType::F32);
        let r = b.bin(BinaryOp::Add, x, kf);
        out.push(("vec_f32_plus_i32_4k2", b.finish(r)));
    }
    // Random draws over a contiguous index space (the base word decides which Philox word each
    // element takes; the tests pass bases that are not multiples of 4).
    let uniform = Dist::Uniform {
        low: F64(-1.0),
        high: F64(3.0),
    };
    {
        let mut b = B::new(&[1027]);
        let r = b.random(uniform, DType::F32, &[1], 0);
        out.push(("random_uniform_f32_contig_4k3", b.finish(r)));
        let mut b = B::new(&[1029]);
        let r = b.random(uniform, DType::F64, &[1], 0);
        out.push(("random_uniform_f64_contig_4k1", b.finish(r)));
        // Two draws and a load: f32 uniform(0, 1) + x + f32(uniform f64).
        let mut b = B::new(&[2, 513]);
        let x = b.contiguous(DType::F32);
        let u = b.random(super::uniform01(), DType::F32, &[513, 1], 0);
        let v = b.random(uniform, DType::F64, &[513, 1], 1);
        let vf = b.cast(v, DType::F32);
        let s = b.bin(BinaryOp::Add, u, x);
        let r = b.bin(BinaryOp::Add, s, vf);
        out.push(("random_uniform_two_draws_plus_x_4k2", b.finish(r)));
    }
    // Row reductions over contiguous rows whose starts (after the first) are not 16-byte
    // aligned, the row length not a multiple of 4.
    for (name, d, rows, len, op) in [
        (
            "reduce_sum_f32_rows1023",
            DType::F32,
            5,
            1023,
            ReduceOp::Sum,
        ),
        (
            "reduce_mean_f32_rows1023",
            DType::F32,
            5,
            1023,
            ReduceOp::Mean,
        ),
        (
            "reduce_sum_f64_rows1021",
            DType::F64,
            3,
            1021,
            ReduceOp::Sum,
        ),
        (
            "reduce_mean_i32_rows1025",
            DType::I32,
            3,
            1025,
            ReduceOp::Mean,
        ),
    ] {
        let mut b = B::new(&[rows, len]);
        let x = b.contiguous(d);
        out.push((name, b.reduce(x, ReduceKind::Reduce(op), &[1])));
    }
    out
}
