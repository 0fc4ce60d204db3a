//! Runs the generated CUDA kernels on a GPU and compares every output with the CPU backend's
//! interpreter of the same KernelIr: bit for bit for exact arithmetic, casts, integer ops,
//! npy_divmod and every random draw; within a tolerance for transcendentals and for f64
//! reductions (a different summation order). Without a CUDA driver it prints `skipped: <reason>`.
//!
//! PTX comes from NVRTC (see `tools`), or from `TESSERA_PTX_DIR/<name>.ptx` (written by
//! `TESSERA_PTX_OUT=<dir> cargo test --test nvrtc`) on a machine without NVRTC.

mod common;
mod tools;

use common::{col, run_cpu, span};

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use std::sync::Arc;
use tessera_cpu::CpuBackend;
use tessera_kernels::{kernel_name, output_dtypes, pack_params, CudaRenderer};
use tessera_runtime::ir::{InstKind, KernelParams, RandomParam, Renderer};
use tessera_runtime::{DType, HostArray};

enum Buf {
    U8(CudaSlice<u8>),
    I32(CudaSlice<i32>),
    I64(CudaSlice<i64>),
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
}

fn upload(s: &Arc<CudaStream>, a: &HostArray) -> Buf {
    match a {
        HostArray::Bool(x) => Buf::U8(
            s.clone_htod(&x.iter().map(|&b| b as u8).collect::<Vec<_>>())
                .unwrap(),
        ),
        HostArray::I32(x) => Buf::I32(
            s.clone_htod(&x.iter().copied().collect::<Vec<_>>())
                .unwrap(),
        ),
        HostArray::I64(x) => Buf::I64(
            s.clone_htod(&x.iter().copied().collect::<Vec<_>>())
                .unwrap(),
        ),
        HostArray::F32(x) => Buf::F32(
            s.clone_htod(&x.iter().copied().collect::<Vec<_>>())
                .unwrap(),
        ),
        HostArray::F64(x) => Buf::F64(
            s.clone_htod(&x.iter().copied().collect::<Vec<_>>())
                .unwrap(),
        ),
    }
}

fn alloc(s: &Arc<CudaStream>, d: DType, n: usize) -> Buf {
    match d {
        DType::Bool => Buf::U8(s.alloc_zeros(n).unwrap()),
        DType::I32 => Buf::I32(s.alloc_zeros(n).unwrap()),
        DType::I64 => Buf::I64(s.alloc_zeros(n).unwrap()),
        DType::F32 => Buf::F32(s.alloc_zeros(n).unwrap()),
        DType::F64 => Buf::F64(s.alloc_zeros(n).unwrap()),
    }
}

/// Output values as f64 bit-comparable pairs (value, exact bits) for comparison.
fn download(s: &Arc<CudaStream>, b: &Buf) -> Vec<f64> {
    match b {
        Buf::U8(x) => s
            .clone_dtoh(x)
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        Buf::I32(x) => s
            .clone_dtoh(x)
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        Buf::I64(x) => s
            .clone_dtoh(x)
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        Buf::F32(x) => s
            .clone_dtoh(x)
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        Buf::F64(x) => s.clone_dtoh(x).unwrap(),
    }
}

fn host_values(a: &HostArray) -> Vec<f64> {
    match a {
        HostArray::Bool(x) => x.iter().map(|&v| v as u8 as f64).collect(),
        HostArray::I32(x) => x.iter().map(|&v| v as f64).collect(),
        HostArray::I64(x) => x.iter().map(|&v| v as f64).collect(),
        HostArray::F32(x) => x.iter().map(|&v| v as f64).collect(),
        HostArray::F64(x) => x.iter().copied().collect(),
    }
}

/// Deterministic test data with the special values every op must handle.
fn input(d: DType, n: usize, salt: usize) -> HostArray {
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
#[derive(Clone, Copy)]
enum Tol {
    Exact,
    Rel(f64),
}

fn tolerance(name: &str) -> Tol {
    const TRANSCENDENTAL: &[&str] = &[
        "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "arcsin", "arccos", "arctan",
        "power", "normal",
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

#[test]
fn cuda_kernels_match_cpu() {
    // SAFETY: only tries to dlopen libcuda under its usual names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        println!("skipped: no CUDA driver (libcuda) on this machine");
        return;
    }
    let ctx = match CudaContext::new(0) {
        Ok(c) => c,
        Err(e) => {
            println!("skipped: no usable CUDA device: {e:?}");
            return;
        }
    };
    let stream = ctx.default_stream();
    let cpu = CpuBackend::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, ir) in common::cuda_all() {
        let name = name.as_str();
        let src = CudaRenderer.render(&ir).expect("cuda renders");
        let ptx = match tools::cuda_ptx(name, &src) {
            Ok(p) => p,
            Err(e) if ran == 0 => {
                println!("skipped: {e}");
                return;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let module = ctx.load_module(ptx).expect("load PTX");
        let f = module
            .load_function(&kernel_name(&ir))
            .expect("kernel function");
        let nrand = tessera_kernels::num_random_params(&ir);
        let params = KernelParams {
            random: (0..nrand)
                .map(|k| RandomParam {
                    seed: 0x1234_5678_9abc_def0 ^ k as u64,
                    stream: 3 + k as u64,
                    base: if k == 0 { 1_000_000 } else { 17 },
                })
                .collect(),
            arg_base: 40,
            // Every input read from 3 elements into its buffer (a window of a larger buffer).
            load_offsets: vec![3; ir.inputs.len()],
        };
        let inputs: Vec<HostArray> = ir
            .inputs
            .iter()
            .enumerate()
            .map(|(i, inp)| input(inp.dtype, span(&ir, i) + 3, i))
            .collect();
        // The reference: the CPU backend's interpreter of the same kernel.
        let want = run_cpu(&cpu, &ir, &params, &inputs).expect("cpu runs the kernel");

        let ins: Vec<Buf> = inputs.iter().map(|a| upload(&stream, a)).collect();
        let out_n: usize = ir.out_shape().iter().product();
        let outs: Vec<Buf> = output_dtypes(&ir)
            .iter()
            .map(|&d| alloc(&stream, d, out_n))
            .collect();
        let words = pack_params(&ir, &params);
        let mut b = stream.launch_builder(&f);
        for x in ins.iter().chain(&outs) {
            match x {
                Buf::U8(s) => b.arg(s),
                Buf::I32(s) => b.arg(s),
                Buf::I64(s) => b.arg(s),
                Buf::F32(s) => b.arg(s),
                Buf::F64(s) => b.arg(s),
            };
        }
        for w in &words {
            b.arg(w);
        }
        // A 2-D grid smaller than the work (elementwise: the grid-stride loop does the rest;
        // reductions: rows spread over x and y, the extra block returns).
        let grid = match &ir.reduce {
            None => ((ir.len().div_ceil(256) / 3 + 1) as u32, 2, 1),
            Some(_) => ((out_n as u32).div_ceil(2), 2, 1),
        };
        let cfg = LaunchConfig {
            grid_dim: grid,
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments follow the kernel ABI (cuda.rs): input and output buffers
        // of the sizes the kernel indexes, then the u64 params words.
        unsafe { b.launch(cfg) }.expect("launch");
        stream.synchronize().expect("kernel ran");
        ran += 1;
        let tol = tolerance(name);
        for (k, (o, w)) in outs.iter().zip(&want).enumerate() {
            let got = download(&stream, o);
            let exp = host_values(w);
            assert_eq!(got.len(), exp.len(), "{name} output {k} length");
            let mut bad = 0;
            let mut first = None;
            for (i, (&g, &e)) in got.iter().zip(&exp).enumerate() {
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
            if let Some((i, g, e)) = first {
                failures.push(format!(
                    "{name} output {k}: {bad} of {} differ; first at {i}: gpu {g:e} cpu {e:e}",
                    got.len()
                ));
            }
        }
        let nrandom = ir
            .insts
            .iter()
            .filter(|i| matches!(i.kind, InstKind::Random { .. }))
            .count();
        println!("{name}: ran ({nrandom} random)");
    }
    println!("{ran} kernels ran on {}", ctx.name().unwrap_or_default());
    if let Some(out) = std::env::var_os("TESSERA_GPU_REPORT") {
        std::fs::write(out, failures.join("\n")).expect("write report");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
