//! Timings of generated CUDA kernels on a GPU (the CUDA-backend issue's benchmarks). Every test
//! here is `#[ignore]`: run them on a machine with a CUDA driver and GPU, one at a time:
//!
//! ```text
//! cargo test --release -p tessera-kernels --test cuda_bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! (`scripts/gpu_bench.sh` builds the binary and PTX here and prints the device command.)
//! Without a CUDA driver each test prints `skipped: <reason>` and passes.
//!
//! The kernels are built by hand as `KernelIr` (as the Fuser would emit them), rendered by
//! `CudaRenderer` and launched under the ABI of `cuda.rs`:
//! - `add_mul`: `(x + 1) * 2`, f32, n = 2^30, input in device memory, separate output buffer;
//!   the ABI's suggested grid `min(ceil(n / 256), 32 * SMs)` and a one-element-per-thread grid.
//! - `add_mul_sum`: the same with a Sum tail over shape `[n]` (the ABI runs it as ONE block), and
//!   over `[4096, 2^18]` reducing axis 1 (4096 blocks, one partial per row: what a chunked graph
//!   would launch; the 4096 partials are summed on the host, untimed).
//! - `mc_pi`: `sum(u^2 + v^2 < 1)` with u, v uniform f32 `Random`s over `[16384, cols]` reducing
//!   axis 1 (16384 blocks), about 1e10 points in one launch, nothing materialized.
//! - `copy`: `cuMemcpyDtoDAsync` of 2^30 f32, the bandwidth ceiling.
//!
//! Timing: CUDA events around each launch, one warm-up, median of 10 (fewer when one run takes
//! over a second; the table says how many). GB/s count bytes read + written (1 GB = 1e9 B).
//! Results are checked against host computations: every element of `add_mul` bit for bit, the
//! sums exactly (the pattern input makes every partial sum exact in f64), pi within 1e-3 and two
//! of its rows against the CPU backend's interpreter of the same draws, count for count.
//!
//! PTX comes from NVRTC (`tools`), or from `TESSERA_PTX_DIR/<name>.ptx`. With
//! `TESSERA_PTX_OUT=<dir>` the PTX is written there first (on a machine with NVRTC and no GPU).

mod common;
mod tools;

use common::{uniform01, B};
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtrMut, LaunchConfig, PushKernelArg,
};
use std::sync::Arc;
use tessera_cpu::CpuBackend;
use tessera_kernels::{kernel_name, output_dtypes, pack_params, CudaRenderer};
use tessera_runtime::ir::{KernelIr, KernelParams, RandomParam, ReduceKind, Renderer};
use tessera_runtime::op::{BinaryOp, ReduceOp};
use tessera_runtime::{DType, HostArray};

/// Elements of the add_mul input (2^30 f32 = 4 GiB).
const N: usize = 1 << 30;
/// Rows of the per-chunk-partials reduction (each reduces N / ROWS = 2^18 elements).
const SUM_ROWS: usize = 4096;
/// Blocks (rows) of the pi kernel.
const PI_ROWS: usize = 16384;
/// Points per pi row: PI_ROWS * PI_COLS = 10,000,007,168, the first multiple of PI_ROWS >= 1e10.
const PI_COLS: usize = 10_000_000_000usize.div_ceil(PI_ROWS);
const PI_SEED: u64 = 0x7e55_e7a0_0000_0001;
const REPS: usize = 10;

/// `(x + 1) * 2` on f32 over `shape`, contiguous input; with `axes`, a Sum over them.
fn add_mul(shape: &[usize], axes: Option<&[usize]>) -> KernelIr {
    let mut b = B::new(shape);
    let x = b.contiguous(DType::F32);
    let one = b.cnst(1.0, DType::F32);
    let s = b.bin(BinaryOp::Add, x, one);
    let two = b.cnst(2.0, DType::F32);
    let r = b.bin(BinaryOp::Mul, s, two);
    match axes {
        None => b.finish(r),
        Some(a) => b.reduce(r, ReduceKind::Reduce(ReduceOp::Sum), a),
    }
}

/// `sum(u^2 + v^2 < 1)` over axis 1 of `[rows, cols]`; the draws sit at global index
/// `row * PI_COLS + col` of two `[PI_ROWS, PI_COLS]` uniform tensors (params 0 and 1).
fn mc_pi(rows: usize, cols: usize) -> KernelIr {
    let mut b = B::new(&[rows, cols]);
    let g = [PI_COLS as u64, 1];
    let u = b.random(uniform01(), DType::F32, &g, 0);
    let v = b.random(uniform01(), DType::F32, &g, 1);
    let two = b.cnst(2.0, DType::F32);
    let u2 = b.bin(BinaryOp::Pow, u, two);
    let v2 = b.bin(BinaryOp::Pow, v, two);
    let s = b.bin(BinaryOp::Add, u2, v2);
    let one = b.cnst(1.0, DType::F32);
    let inside = b.bin(BinaryOp::Lt, s, one);
    b.reduce(inside, ReduceKind::Reduce(ReduceOp::Sum), &[1])
}

fn pi_params(base: u64) -> KernelParams {
    KernelParams {
        random: (0..2)
            .map(|k| RandomParam {
                seed: PI_SEED,
                stream: k,
                base,
            })
            .collect(),
        arg_base: 0,
        load_offsets: vec![],
    }
}

/// The benchmark kernels by PTX file name.
fn kernels() -> Vec<(&'static str, KernelIr)> {
    vec![
        ("bench_add_mul", add_mul(&[N], None)),
        ("bench_add_mul_sum_all", add_mul(&[N], Some(&[0]))),
        (
            "bench_add_mul_sum_rows",
            add_mul(&[SUM_ROWS, N / SUM_ROWS], Some(&[1])),
        ),
        ("bench_mc_pi", mc_pi(PI_ROWS, PI_COLS)),
    ]
}

/// Statistics of one benchmark row (milliseconds).
struct Timing {
    median: f64,
    min: f64,
    max: f64,
    reps: usize,
}

/// Runs `enqueue` once untimed (warm-up), then `REPS` times (3 when the warm-up took over a
/// second), each between two CUDA events; returns the median and spread.
fn time(ctx: &Arc<CudaContext>, s: &Arc<CudaStream>, mut enqueue: impl FnMut()) -> Timing {
    let ev = || {
        ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .unwrap()
    };
    let (a, b) = (ev(), ev());
    a.record(s).unwrap();
    enqueue();
    b.record(s).unwrap();
    let warm = a.elapsed_ms(&b).unwrap() as f64;
    ctx.check_err().expect("warm-up launch");
    let reps = if warm > 1000.0 { 3 } else { REPS };
    let mut ms: Vec<f64> = (0..reps)
        .map(|_| {
            a.record(s).unwrap();
            enqueue();
            b.record(s).unwrap();
            a.elapsed_ms(&b).unwrap() as f64
        })
        .collect();
    s.synchronize().expect("timed launches ran");
    ms.sort_by(f64::total_cmp);
    Timing {
        median: if reps % 2 == 1 {
            ms[reps / 2]
        } else {
            (ms[reps / 2 - 1] + ms[reps / 2]) / 2.0
        },
        min: ms[0],
        max: ms[reps - 1],
        reps,
    }
}

/// Fills a buffer with 0xFF bytes (f32 NaN, i64 -1), so unwritten outputs show.
fn poison<T>(s: &Arc<CudaStream>, buf: &mut CudaSlice<T>) {
    let bytes = buf.len() * std::mem::size_of::<T>();
    let (p, _rec) = buf.device_ptr_mut(s);
    // SAFETY: `p` is a live allocation of `bytes` bytes on this stream's context.
    unsafe { cudarc::driver::result::memset_d8_async(p, 0xff, bytes, s.cu_stream()) }
        .expect("memset");
}

fn cfg(grid: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (u32::try_from(grid).expect("grid fits gridDim.x"), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Launches `f` with one f32 input (or none), one output, then the params words.
fn launch<O>(
    s: &Arc<CudaStream>,
    f: &CudaFunction,
    input: Option<&CudaSlice<f32>>,
    out: &mut CudaSlice<O>,
    words: &[u64],
    grid: usize,
) {
    let mut b = s.launch_builder(f);
    if let Some(x) = input {
        b.arg(x);
    }
    b.arg(out);
    for w in words {
        b.arg(w);
    }
    // SAFETY: the arguments follow the kernel ABI (cuda.rs): the input buffer spans the index
    // space, the output holds `out_shape()` elements of `output_dtypes()[0]`, then the params.
    unsafe { b.launch(cfg(grid)) }.expect("launch");
}

struct Row {
    name: String,
    launch: String,
    t: Timing,
    rate: String,
    frac: String,
    check: String,
}

fn gbs(bytes: f64, ms: f64) -> f64 {
    bytes / (ms * 1e-3) / 1e9
}

/// `sum((x + 1) * 2)` of the pattern `x[i] = (i % 1024) / 1024` over `len` elements (a multiple
/// of 1024): every term is a multiple of 2^-9, so f64 holds every partial sum exactly.
fn pattern_sum(len: usize) -> f64 {
    let period: f64 = (0..1024).map(|k| (k as f64 / 1024.0 + 1.0) * 2.0).sum();
    period * (len / 1024) as f64
}

#[test]
#[ignore = "GPU benchmark: run with --ignored on a machine with a CUDA GPU"]
fn generated_kernels_on_gpu() {
    // SAFETY: only tries to dlopen libcuda under its usual names.
    let have_driver = unsafe { cudarc::driver::sys::is_culib_present() };
    let kernels = kernels();
    // PTX first (TESSERA_PTX_OUT on a machine with NVRTC and no GPU).
    let mut ptxs = Vec::new();
    for (name, ir) in &kernels {
        let src = CudaRenderer.render(ir).expect("cuda renders");
        match tools::cuda_ptx(name, &src) {
            Ok(p) => ptxs.push(p),
            Err(e) if !have_driver => {
                println!("skipped: no CUDA driver (libcuda) on this machine; {e}");
                return;
            }
            Err(e) => {
                println!("skipped: {e}");
                return;
            }
        }
    }
    if !have_driver {
        println!("skipped: no CUDA driver (libcuda) on this machine (PTX compiled)");
        return;
    }
    let ctx = match CudaContext::new(0) {
        Ok(c) => c,
        Err(e) => {
            println!("skipped: no usable CUDA device: {e:?}");
            return;
        }
    };
    // SAFETY: one stream only, so cudarc's cross-stream event tracking is not needed.
    unsafe { ctx.disable_event_tracking() };
    let s = ctx.default_stream();
    let sms = ctx
        .attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )
        .unwrap() as usize;
    let dev = ctx.name().unwrap_or_default();
    println!("device: {dev}, {sms} SMs");
    let funcs: Vec<CudaFunction> = kernels
        .iter()
        .zip(ptxs)
        .map(|((_, ir), ptx)| {
            let m = ctx.load_module(ptx).expect("load PTX");
            m.load_function(&kernel_name(ir)).expect("kernel function")
        })
        .collect();
    let mut rows: Vec<Row> = Vec::new();
    let mut failures: Vec<String> = Vec::new();

    // Input: x[i] = (i % 1024) / 1024 (the harness's pattern), in device memory.
    let host: Vec<f32> = (0..N).map(|i| (i % 1024) as f32 / 1024.0).collect();
    let x = s.clone_htod(&host).expect("upload");
    let want_sum = pattern_sum(N);

    // (d) The copy ceiling.
    let mut dst: CudaSlice<f32> = unsafe { s.alloc(N) }.expect("alloc");
    let t = time(&ctx, &s, || s.memcpy_dtod(&x, &mut dst).expect("copy"));
    let copy_gbs = gbs(8.0 * N as f64, t.median);
    rows.push(Row {
        name: "copy (cuMemcpyDtoDAsync)".into(),
        launch: "2^30 f32".into(),
        t,
        rate: format!("{copy_gbs:.0} GB/s"),
        frac: "1.00".into(),
        check: String::new(),
    });
    drop(dst);

    // (a) (x + 1) * 2 into a separate output buffer.
    {
        let (ir, f) = (&kernels[0].1, &funcs[0]);
        let words = pack_params(ir, &KernelParams::default());
        let mut out: CudaSlice<f32> = unsafe { s.alloc(N) }.expect("alloc");
        let abi_grid = N.div_ceil(256).min(32 * sms);
        for (grid, label) in [
            (abi_grid, format!("{abi_grid} blocks (min(n/256, 32*SMs))")),
            (
                N / 256,
                format!("{} blocks (one element per thread)", N / 256),
            ),
        ] {
            poison(&s, &mut out);
            let t = time(&ctx, &s, || launch(&s, f, Some(&x), &mut out, &words, grid));
            let got = s.clone_dtoh(&out).expect("download");
            let bad = got
                .iter()
                .zip(&host)
                .filter(|(g, h)| g.to_bits() != ((**h + 1.0) * 2.0).to_bits())
                .count();
            let sum: f64 = got.iter().map(|&v| v as f64).sum();
            let check = if bad == 0 && sum == want_sum {
                format!("all {N} exact; sum {sum} exact")
            } else {
                failures.push(format!(
                    "add_mul grid {grid}: {bad} elements wrong, sum {sum}"
                ));
                format!("WRONG: {bad} elements differ")
            };
            let r = gbs(8.0 * N as f64, t.median);
            rows.push(Row {
                name: "(a) add_mul (x+1)*2".into(),
                launch: label,
                t,
                rate: format!("{r:.0} GB/s"),
                frac: format!("{:.2}", r / copy_gbs),
                check,
            });
        }
    }

    // (b) add_mul + Sum: one block over [n], then 4096 blocks over [4096, 2^18].
    for (k, label) in [
        (1, "1 block (full reduction of [2^30])".to_string()),
        (2, format!("{SUM_ROWS} blocks x 2^18 (per-chunk partials)")),
    ] {
        let (ir, f) = (&kernels[k].1, &funcs[k]);
        let out_n: usize = ir.out_shape().iter().product();
        assert_eq!(output_dtypes(ir), vec![DType::F64]);
        let words = pack_params(ir, &KernelParams::default());
        let mut out: CudaSlice<f64> = unsafe { s.alloc(out_n) }.expect("alloc");
        poison(&s, &mut out);
        let t = time(&ctx, &s, || {
            launch(&s, f, Some(&x), &mut out, &words, out_n)
        });
        let got = s.clone_dtoh(&out).expect("download");
        let row_want = pattern_sum(N / out_n);
        let bad = got.iter().filter(|&&v| v != row_want).count();
        let total: f64 = got.iter().sum();
        let check = if bad == 0 && total == want_sum {
            format!("sum {total} exact ({out_n} partials)")
        } else {
            failures.push(format!(
                "add_mul_sum {label}: {bad} partials wrong, total {total}"
            ));
            format!("WRONG: total {total}, want {want_sum}")
        };
        let bytes = 4.0 * N as f64 + 8.0 * out_n as f64;
        let r = gbs(bytes, t.median);
        rows.push(Row {
            name: "(b) add_mul_sum".into(),
            launch: label,
            t,
            rate: format!("{r:.0} GB/s"),
            frac: format!("{:.3}", r / copy_gbs),
            check,
        });
    }
    drop(x);
    drop(host);

    // (c) Monte Carlo pi, nothing materialized.
    {
        let (ir, f) = (&kernels[3].1, &funcs[3]);
        assert_eq!(output_dtypes(ir), vec![DType::I64]);
        let words = pack_params(ir, &pi_params(0));
        let mut out: CudaSlice<i64> = unsafe { s.alloc(PI_ROWS) }.expect("alloc");
        poison(&s, &mut out);
        let t = time(&ctx, &s, || {
            let mut b = s.launch_builder(f);
            b.arg(&mut out);
            for w in &words {
                b.arg(w);
            }
            // SAFETY: ABI: no inputs, one i64 output per row, then the params words.
            unsafe { b.launch(cfg(PI_ROWS)) }.expect("launch");
        });
        let got = s.clone_dtoh(&out).expect("download");
        let points = (PI_ROWS * PI_COLS) as f64;
        let inside: i64 = got.iter().sum();
        let pi = 4.0 * inside as f64 / points;
        // Two rows against the CPU backend's interpreter of the same draws.
        let cpu = CpuBackend::new();
        let mut row_bad = Vec::new();
        for r in [0, PI_ROWS - 1] {
            let one = mc_pi(1, PI_COLS);
            let want = common::run_cpu(&cpu, &one, &pi_params((r * PI_COLS) as u64), &[])
                .expect("cpu runs the kernel");
            let w = match &want[0] {
                HostArray::I64(a) => a.iter().copied().next().unwrap(),
                other => panic!("cpu partial dtype {:?}", other.dtype()),
            };
            if w != got[r] {
                row_bad.push(format!("row {r}: gpu {} cpu {w}", got[r]));
            }
        }
        let err = (pi - std::f64::consts::PI).abs();
        let check = if err < 1e-3 && row_bad.is_empty() && got.iter().all(|&c| c >= 0) {
            format!(
                "pi {pi:.7} (|err| {err:.1e}); rows 0, {} == CPU",
                PI_ROWS - 1
            )
        } else {
            failures.push(format!("mc_pi: pi {pi}, {}", row_bad.join("; ")));
            format!("WRONG: pi {pi}; {}", row_bad.join("; "))
        };
        let gp = points / (t.median * 1e-3) / 1e9;
        rows.push(Row {
            name: "(c) mc_pi".into(),
            launch: format!(
                "{PI_ROWS} blocks x {PI_COLS} = {} points",
                PI_ROWS * PI_COLS
            ),
            t,
            rate: format!("{gp:.1} Gpoints/s"),
            frac: String::new(),
            check,
        });
    }

    println!();
    println!("Generated CUDA kernels on {dev} ({sms} SMs); CUDA events, 1 warm-up, median");
    println!(
        "| kernel | launch | median ms | min / max ms | runs | rate | of copy | check |\n|---|---|---:|---:|---:|---:|---:|---|"
    );
    for r in &rows {
        println!(
            "| {} | {} | {:.3} | {:.3} / {:.3} | {} | {} | {} | {} |",
            r.name, r.launch, r.t.median, r.t.min, r.t.max, r.t.reps, r.rate, r.frac, r.check
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
