//! Runs the generated CUDA kernels on a GPU and compares every output with the CPU backend's
//! interpreter of the same KernelIr: bit for bit for exact arithmetic, casts, integer ops,
//! npy_divmod and every random draw; within a tolerance for transcendentals and for f64
//! reductions (a different summation order). Without a CUDA driver it prints `skipped: <reason>`.
//!
//! PTX comes from NVRTC (see `tools`), or from `TESSERA_PTX_DIR/<name>.ptx` (written by
//! `TESSERA_PTX_OUT=<dir> cargo test --test nvrtc`) on a machine without NVRTC.

mod common;
mod tools;

use common::gpu_cases::{compare, host_values, input, tolerance};
use common::{run_cpu, span};

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
            if let Some((bad, (i, g, e))) = compare(tol, &got, &exp) {
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
