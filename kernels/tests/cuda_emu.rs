//! The generated CUDA C run on the CPU: every kernel `cuda_run.rs` runs on a GPU (the shared list
//! `common::cuda_all`, which includes the contiguous vector-path cases) is rendered with
//! `CudaRenderer`, compiled as C++ by the system `g++` (or `c++`) with a shim header for what
//! NVRTC provides built in (`cuda_emu/shim.h`), launched by an emulator (`cuda_emu/driver.cpp`)
//! and compared with the CPU backend's interpreter by the rules of `cuda_run.rs` (bit for bit
//! where it requires that, within its tolerance otherwise). Without a C++ compiler it prints
//! `skipped: <reason>` and passes.
//!
//! What is emulated:
//! - the kernel ABI of `cuda.rs`: buffers and parameter words in order, input pointers that the
//!   kernel offsets by `load_off` elements; every buffer starts 256-byte aligned as
//!   cudaMalloc's do, so the load offsets alone decide which inputs are 16-byte aligned;
//! - launches as the CUDA backend makes them (`backends/cuda/src/ops.rs`) and other legal
//!   grids, each kernel in several configurations (`CONFIGS`): elementwise kernels with the
//!   backend's grid on a GPU with few and with many multiprocessors (the first smaller than the
//!   work: the loops stride), one thread per element, and a 2-D grid; reductions with one block
//!   per row (1-D, and 2-D with a spare block);
//! - inputs 16-byte aligned, misaligned (load offsets 3, 1, 5 ...) and mixed within one kernel;
//!   random draws with `base` words of each residue mod 4; element counts not multiples of 4;
//! - `__syncthreads()`: a block's 256 threads run as fibers that switch at each barrier, so no
//!   thread passes a barrier before all reach it; a barrier not reached by all, or threads
//!   waiting at different barriers, is an error;
//! - rounding: the `_rn` intrinsics are IEEE operations compiled with `-ffp-contract=off`
//!   (no FMA contraction, no fast-math), conversions saturate like the GPU's;
//! - misaligned vector accesses (a fault on the GPU) stop the run: the emulator is built with
//!   `-fsanitize=alignment` where the compiler has the runtime for it;
//! - writes past an output's end are found (a poisoned zone after it); gross reads past an
//!   input's end fault (a guard page after each buffer's 256-byte-rounded end);
//! - the shim counts `make_<vector>` calls per launch: with every pointer aligned (config 0)
//!   the `vec_` kernels must have taken their 4-element path.
//!
//! What is not: warps and their timing (threads of a block run one after another between
//! barriers, so a race the barriers do not order reads one particular interleaving), the GPU
//! memory model and caches, warp intrinsics, occupancy and launch limits, and CUDA's math
//! library: transcendental functions are the host libm's (mostly what the CPU interpreter
//! uses), so the ulp differences `cuda_run.rs`'s tolerances allow for are not reproduced here.
//! Fibers switch with a few lines of x86-64 assembly, elsewhere with ucontext (slower).
#![cfg(unix)]

mod common;

use common::emu::{cxx, Scratch};

use common::gpu_cases::{compare, host_values, input, tolerance};
use common::{run_cpu, span};

use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;
use tessera_cpu::CpuBackend;
use tessera_kernels::{
    elements_per_thread, kernel_name, num_random_params, output_dtypes, pack_params, CudaRenderer,
};
use tessera_runtime::ir::{KernelIr, KernelParams, RandomParam, Renderer};
use tessera_runtime::{DType, HostArray};

const SHIM: &str = include_str!("cuda_emu/shim.h");
const DRIVER: &str = include_str!("cuda_emu/driver.cpp");

/// Threads per block (the ABI's).
const BLOCK: usize = 256;
/// `32 * SMs` of the first configuration's launch (ops.rs: `min(ceil(n / (256 * ept)),
/// 32 * SMs)` blocks): this small, the grid-stride loops stride several times at every test
/// size.
const STRIDE_CAP: usize = 2;
/// Bytes after each output checked for stray writes.
const GUARD: usize = 64;
const POISON: u8 = 0xA5;

/// How a kernel is launched and fed in one run.
struct Config {
    label: &'static str,
    /// Load offset (elements) of input `i`.
    offset: fn(usize) -> u64,
    /// `base` of random param `k`, mod 4.
    base_mod4: fn(usize) -> u64,
    /// Grid of an elementwise kernel over `n` elements taking `ept` per thread
    /// (`elements_per_thread`, 4 where the renderer takes groups of 4, else 1).
    elementwise: fn(usize, usize) -> (usize, usize),
    /// Grid of a reduction with `rows` rows; None: reductions are not run in this config.
    reduction: Option<fn(usize) -> (usize, usize)>,
}

const CONFIGS: &[Config] = &[
    Config {
        label: "aligned inputs, grid-stride grid, bases = 0 mod 4",
        // 4 elements: 16 bytes for f32/i32, 32 for f64/i64, 4 for bool.
        offset: |_| 4,
        base_mod4: |_| 0,
        elementwise: |n, ept| (n.div_ceil(BLOCK * ept).clamp(1, STRIDE_CAP), 1),
        // ops.rs: one block per row.
        reduction: Some(|rows| (rows, 1)),
    },
    Config {
        label: "misaligned and mixed inputs, one element per thread, bases = 1, 3 mod 4",
        // f32/i32 at 12, 4, 8 (aligned for f64: 16), 20, 28 bytes ...
        offset: |i| [3, 1, 2, 5, 7][i % 5],
        base_mod4: |k| [1, 3][k % 2],
        elementwise: |n, _| (n.div_ceil(BLOCK).max(1), 1),
        // cuda_run.rs: rows over a 2-D grid, a spare block where `rows` is odd.
        reduction: Some(|rows| (rows.div_ceil(2), 2)),
    },
    Config {
        label: "offset 0, ops.rs grid on a large GPU, bases = 2, 3 mod 4",
        offset: |_| 0,
        base_mod4: |k| [2, 3][k % 2],
        elementwise: |n, ept| (n.div_ceil(BLOCK * ept).max(1), 1),
        reduction: None,
    },
    Config {
        label: "inputs at 1, 6, 8 .., 2-D grid of 3 blocks, bases = 1, 2 mod 4",
        offset: |i| [1, 6, 8][i % 3],
        base_mod4: |k| [1, 2][k % 2],
        elementwise: |_, _| (1, 3),
        reduction: None,
    },
];

/// C element type of a buffer (the ABI's).
fn cty(d: DType) -> &'static str {
    match d {
        DType::Bool => "unsigned char",
        DType::I32 => "int",
        DType::I64 => "long long",
        DType::F32 => "float",
        DType::F64 => "double",
    }
}

fn elem_bytes(d: DType) -> usize {
    match d {
        DType::Bool => 1,
        DType::I32 | DType::F32 => 4,
        DType::I64 | DType::F64 => 8,
    }
}

fn host_bytes(a: &HostArray) -> Vec<u8> {
    match a {
        HostArray::Bool(x) => x.iter().map(|&b| b as u8).collect(),
        HostArray::I32(x) => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        HostArray::I64(x) => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        HostArray::F32(x) => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        HostArray::F64(x) => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// Output bytes as (values for `compare`, exact integer values where the dtype is i64).
fn values(d: DType, b: &[u8]) -> (Vec<f64>, Option<Vec<i64>>) {
    match d {
        DType::Bool => (b.iter().map(|&v| v as f64).collect(), None),
        DType::I32 => (
            b.chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            None,
        ),
        DType::I64 => {
            let v: Vec<i64> = b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (v.iter().map(|&x| x as f64).collect(), Some(v))
        }
        DType::F32 => (
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            None,
        ),
        DType::F64 => (
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            None,
        ),
    }
}

fn push_word(buf: &mut Vec<u8>, w: u64) {
    buf.extend_from_slice(&w.to_le_bytes());
}

fn push_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(b);
    buf.resize(buf.len().div_ceil(8) * 8, 0);
}

/// One C++ translation unit: every distinct kernel in its own namespace (helpers are `static`
/// and repeat between kernels), a caller per kernel that passes the ABI's arguments from the
/// job's buffers and words, the table of callers, then the driver.
fn translation_unit(kernels: &[(String, KernelIr)]) -> (String, HashMap<String, usize>) {
    let mut tu = String::from("#include \"shim.h\"\n");
    let mut calls = String::new();
    let mut table = String::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (name, ir) in kernels {
        let kname = kernel_name(ir);
        if index.contains_key(&kname) {
            continue;
        }
        let k = index.len();
        index.insert(kname.clone(), k);
        let src = CudaRenderer.render(ir).expect("cuda renders");
        let _ = write!(
            tu,
            "namespace tk_emu_k{k} {{\n#line 1 \"{name}.cu\"\n{src}}}\n"
        );
        let mut args: Vec<String> = ir
            .inputs
            .iter()
            .enumerate()
            .map(|(i, inp)| format!("(const {}*)b[{i}]", cty(inp.dtype)))
            .collect();
        let outs = output_dtypes(ir);
        for (j, d) in outs.iter().enumerate() {
            args.push(format!("({}*)b[{}]", cty(*d), ir.inputs.len() + j));
        }
        // The ABI's words: n, arg_base, a load offset per input, (seed, stream, base) per draw.
        let nwords = 2 + ir.inputs.len() + 3 * num_random_params(ir);
        args.extend((0..nwords).map(|w| format!("w[{w}]")));
        let _ = writeln!(
            calls,
            "static void tk_call_{k}(void* const* b, const unsigned long long* w) {{\n    \
             tk_emu_k{k}::{kname}({});\n}}",
            args.join(", ")
        );
        let _ = writeln!(
            table,
            "    {{\"{name}\", tk_call_{k}, {}ull, {nwords}ull, {}}},",
            ir.inputs.len() + outs.len(),
            src.contains("__syncthreads")
        );
    }
    let _ = write!(
        tu,
        "#line 1 \"tk_emu_calls.cpp\"\n\
         typedef void (*TkCall)(void* const*, const unsigned long long*);\n\
         struct TkEntry {{\n    const char* name;\n    TkCall call;\n    \
         unsigned long long bufs, words;\n    bool barriers;\n}};\n\
         {calls}\
         static const TkEntry tk_emu_table[] = {{\n{table}}};\n\
         static const unsigned long long tk_emu_count = {};\n\
         #include \"driver.cpp\"\n",
        index.len()
    );
    (tu, index)
}

/// Compiles the translation unit; Err(compiler output) when it fails.
fn compile(cxx: &str, dir: &Path, tu: &Path, exe: &Path, sanitize: bool) -> Result<(), String> {
    let mut cmd = Command::new(cxx);
    cmd.args([
        "-std=c++17",
        "-O1",
        // Rounding as on the GPU: no FMA contraction, no fast-math.
        "-ffp-contract=off",
        "-fno-fast-math",
        // Integer overflow wraps on the GPU; pointer casts to vector types alias.
        "-fwrapv",
        "-fno-strict-aliasing",
        "-w",
    ]);
    if sanitize {
        cmd.args(["-fsanitize=alignment", "-fno-sanitize-recover=alignment"]);
    }
    cmd.arg("-I").arg(dir).arg("-o").arg(exe).arg(tu);
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {cxx}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().take(60).collect();
        Err(tail.join("\n"))
    }
}

/// One emulated launch and what it must produce.
struct Job {
    name: String,
    config: usize,
    kernel: usize,
    grid: (usize, usize),
    words: Vec<u64>,
    inputs: Vec<Vec<u8>>,
    out_dtypes: Vec<DType>,
    out_n: usize,
    want: Vec<HostArray>,
}

#[test]
fn generated_cuda_runs_on_the_cpu_like_the_interpreter() {
    let cxx = match cxx() {
        Ok(c) => c,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let seed: u64 = std::env::var("TESSERA_EMU_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (rerun with TESSERA_EMU_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let kernels = common::cuda_all();
    let mut scratch = Scratch::new();
    let shim = scratch.path("shim.h");
    let driver = scratch.path("driver.cpp");
    let tu_path = scratch.path("kernels.cpp");
    let exe = scratch.path("driver");
    let jobs_path = scratch.path("jobs.bin");
    let outs_path = scratch.path("outputs.bin");
    std::fs::write(&shim, SHIM).expect("write shim");
    std::fs::write(&driver, DRIVER).expect("write driver");
    let (tu, index) = translation_unit(&kernels);
    std::fs::write(&tu_path, &tu).expect("write kernels");

    // The compiler runs while the CPU computes the references.
    let t0 = Instant::now();
    let dir = scratch.dir.clone();
    let build = {
        let (cxx, tu_path, exe) = (cxx.clone(), tu_path.clone(), exe.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            let r = compile(&cxx, &dir, &tu_path, &exe, true).map(|()| true);
            let r = match r {
                // Only the sanitizer's runtime missing: build without the alignment check.
                Err(e) if e.contains("ubsan") => compile(&cxx, &dir, &tu_path, &exe, false)
                    .map(|()| false)
                    .map_err(|e2| format!("{e}\n(without -fsanitize) {e2}")),
                r => r,
            };
            (r, t.elapsed())
        })
    };

    tessera_cpu::jit::set_mode(tessera_cpu::jit::JitMode::Off);
    let cpu = CpuBackend::new();
    let mut jobs = Vec::new();
    for (name, ir) in &kernels {
        for (c, cfg) in CONFIGS.iter().enumerate() {
            let out_shape = ir.out_shape();
            let out_n: usize = out_shape.iter().product();
            let grid = match &ir.reduce {
                None => (cfg.elementwise)(ir.len(), elements_per_thread(ir)),
                Some(_) => match cfg.reduction {
                    Some(g) => g(out_n),
                    None => continue,
                },
            };
            let nrand = num_random_params(ir);
            let params = KernelParams {
                random: (0..nrand)
                    .map(|k| RandomParam {
                        seed: rng.gen(),
                        stream: rng.gen_range(0..1 << 40),
                        base: 4 * rng.gen_range(0..1u64 << 38) + (cfg.base_mod4)(k),
                    })
                    .collect(),
                arg_base: rng.gen_range(0..1 << 40),
                load_offsets: (0..ir.inputs.len()).map(cfg.offset).collect(),
            };
            let salt = rng.gen_range(0..1 << 20);
            let inputs: Vec<HostArray> = ir
                .inputs
                .iter()
                .enumerate()
                .map(|(i, inp)| {
                    input(
                        inp.dtype,
                        span(ir, i) + params.load_offsets[i] as usize,
                        salt + i,
                    )
                })
                .collect();
            let want = run_cpu(&cpu, ir, &params, &inputs).expect("cpu runs the kernel");
            jobs.push(Job {
                name: name.clone(),
                config: c,
                kernel: index[&kernel_name(ir)],
                grid,
                words: pack_params(ir, &params),
                inputs: inputs.iter().map(host_bytes).collect(),
                out_dtypes: output_dtypes(ir),
                out_n,
                want,
            });
        }
    }
    let t_cpu = t0.elapsed();

    let mut file = b"TKEMU001".to_vec();
    push_word(&mut file, jobs.len() as u64);
    for j in &jobs {
        for w in [
            j.kernel,
            j.grid.0,
            j.grid.1,
            j.inputs.len() + j.out_dtypes.len(),
            j.words.len(),
        ] {
            push_word(&mut file, w as u64);
        }
        for &w in &j.words {
            push_word(&mut file, w);
        }
        for b in &j.inputs {
            push_word(&mut file, b.len() as u64);
            push_word(&mut file, 0);
            push_bytes(&mut file, b);
        }
        for &d in &j.out_dtypes {
            let bytes = j.out_n * elem_bytes(d) + GUARD;
            push_word(&mut file, bytes as u64);
            push_word(&mut file, 1);
            push_bytes(&mut file, &vec![POISON; bytes]);
        }
    }
    std::fs::write(&jobs_path, &file).expect("write jobs");

    let (built, t_build) = build.join().expect("compiler thread");
    let sanitized = match built {
        Ok(s) => s,
        Err(e) => panic!("the generated CUDA C does not compile as C++ with {cxx}:\n{e}"),
    };
    let t1 = Instant::now();
    let run = Command::new(&exe)
        .arg(&jobs_path)
        .arg(&outs_path)
        .env("UBSAN_OPTIONS", "print_stacktrace=0:abort_on_error=1")
        .output();
    let run = match run {
        Ok(r) => r,
        // E.g. a temp folder mounted noexec.
        Err(e) => {
            println!("skipped: cannot run the emulator built in the temp folder: {e}");
            return;
        }
    };
    let t_run = t1.elapsed();
    if !run.status.success() {
        let err = String::from_utf8_lossy(&run.stderr);
        let tail: Vec<&str> = err.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        // The driver names the job it was running: say which configuration that was.
        let job = err
            .split("cuda_emu: job ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| jobs.get(k))
            .map(|j| {
                format!(
                    "{} [config {}: {}]",
                    j.name, j.config, CONFIGS[j.config].label
                )
            })
            .unwrap_or_default();
        panic!(
            "the emulator failed ({}) {job}:\n{}",
            run.status,
            tail.join("\n")
        );
    }
    let outs = std::fs::read(&outs_path).expect("read outputs");

    let mut failures = Vec::new();
    let mut pos = 0;
    // Launches per config that built vectors (make_float4 ...: the 4-element paths ran).
    let mut vectored = vec![0usize; CONFIGS.len()];
    for j in &jobs {
        let tol = tolerance(&j.name);
        let what = format!(
            "{} [config {}: {}]",
            j.name, j.config, CONFIGS[j.config].label
        );
        for (k, (&d, w)) in j.out_dtypes.iter().zip(&j.want).enumerate() {
            let bytes = j.out_n * elem_bytes(d);
            let whole = &outs[pos..pos + bytes + GUARD];
            pos += (bytes + GUARD).div_ceil(8) * 8;
            if whole[bytes..].iter().any(|&b| b != POISON) {
                failures.push(format!("{what} output {k}: written past its end"));
            }
            let (got, exact) = values(d, &whole[..bytes]);
            let exp = host_values(w);
            assert_eq!(got.len(), exp.len(), "{what} output {k} length");
            if let Some((bad, (i, g, e))) = compare(tol, &got, &exp) {
                failures.push(format!(
                    "{what} output {k}: {bad} of {} differ; first at {i}: emulated {g:e} cpu {e:e}",
                    got.len()
                ));
            } else if let (Some(x), HostArray::I64(y)) = (exact, w) {
                if let Some(i) = x.iter().zip(y.iter()).position(|(a, b)| a != b) {
                    failures.push(format!(
                        "{what} output {k}: first i64 difference at {i}: emulated {} cpu {}",
                        x[i],
                        y.iter().nth(i).unwrap()
                    ));
                }
            }
        }
        let made = u64::from_le_bytes(outs[pos..pos + 8].try_into().unwrap());
        pos += 8;
        if made > 0 {
            vectored[j.config] += 1;
        }
        // Every pointer of these is 16-byte aligned in config 0: if the vector path did not
        // run there, this test no longer covers it.
        if j.config == 0 && j.name.starts_with("vec_") && made == 0 {
            failures.push(format!(
                "{what}: no vector built (the 4-element path did not run)"
            ));
        }
    }
    assert_eq!(pos, outs.len(), "outputs file size");
    println!("launches that built vectors, per config: {vectored:?}");
    println!(
        "{} launches of {} kernels ({} distinct) emulated: {cxx} {:.1} s{}, CPU references \
         {:.1} s, emulation {:.1} s",
        jobs.len(),
        kernels.len(),
        index.len(),
        t_build.as_secs_f64(),
        if sanitized {
            " (with -fsanitize=alignment)"
        } else {
            " (no alignment sanitizer runtime: misaligned vector accesses go unseen)"
        },
        t_cpu.as_secs_f64(),
        t_run.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} launches differ:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
}
