//! The `tessera` command: `info` lists backends and devices; `run` runs a headline workload.

use clap::{Parser, Subcommand};
use std::time::Instant;
use tessera::workloads;

#[derive(Parser)]
#[command(name = "tessera", version, about = "GPU-first tensor compute runtime")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the backends compiled in, whether each is usable, and their devices.
    Info,
    /// Benchmark the headline workloads against NumPy (and CuPy where present), same run.
    Bench {
        /// Comma list of workloads: add_mul, add_mul_sum, pi, std_expr, sgemm, dgemm, svd, tsqr, knn, sort,
        /// argsort, topk.
        #[arg(long, default_value = "add_mul,add_mul_sum,pi,std_expr,sgemm")]
        workloads: String,
        /// Size override, `workload=N` (repeatable; accepts 2e8).
        #[arg(long)]
        size: Vec<String>,
        /// Backend: auto, cpu, cuda, wgpu.
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Timed runs after the warm-up.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Untimed runs first (module loads, kernel compilation).
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// The harness's backends run beside Tessera (benches/harness.py --backends):
        /// numpy, cupy, cupy-fused, cupy-raw, dask.
        #[arg(long, default_value = "numpy,cupy")]
        baselines: String,
        /// Skip the NumPy/CuPy side.
        #[arg(long)]
        no_python: bool,
        /// Memory budgets for Tessera's side (the out-of-core sizes).
        #[command(flatten)]
        memory: MemoryArgs,
        /// Output folder for results.json.
        #[arg(long, default_value = "target/bench")]
        out: String,
    },
    /// Run a workload: all, pi, std-expr, add-mul-sum.
    Run {
        /// Workload name.
        workload: String,
        /// Problem size (elements, points, or matrix side); accepts 1e8.
        #[arg(long, default_value = "1e7")]
        n: String,
        /// Chunk size (elements per axis); default: chosen from the chunk budget.
        #[arg(long)]
        chunk: Option<String>,
        /// Backend: auto, cpu, cuda, wgpu.
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print execution statistics (tiers, links, spills, kernel and copy time per device).
        #[arg(long)]
        stats: bool,
        /// Read the input from a .npy file or a Zarr array (a folder, or a name ending in
        /// .zarr) instead of drawing it (add-mul-sum: a vector, std-expr: a square matrix);
        /// --n is then the file's size.
        #[arg(long)]
        input: Option<std::path::PathBuf>,
        /// Write the array the workload reduces to this .npy file or Zarr array (.zarr), chunk
        /// by chunk (add-mul-sum: (x + 1) * 2; std-expr: a.dot(a.T)), then reduce the written
        /// file.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        memory: MemoryArgs,
    },
}

/// Memory budgets: any of them switches the run to the out-of-core Scheduler.
#[derive(clap::Args, Default)]
struct MemoryArgs {
    /// Device memory budget per device (e.g. 512MiB, 2GiB).
    #[arg(long)]
    device_budget: Option<String>,
    /// Host memory budget (default with a budget set: half of RAM).
    #[arg(long)]
    host_budget: Option<String>,
    /// Disk budget for spill files (default: the free space).
    #[arg(long)]
    disk_budget: Option<String>,
    /// Spill directory, used as given (default: $TMPDIR/tessera-spill-<uid>, private).
    #[arg(long)]
    spill_dir: Option<String>,
    /// Number of devices (the CPU backend exposes this many virtual devices).
    #[arg(long, value_parser = parse_count)]
    devices: Option<usize>,
    /// Kernel order: depth-first (default) or breadth-first.
    #[arg(long)]
    order: Option<String>,
}

/// A byte size: a count in the syntax of [`parse_count`] (`1e9`, `4096`) with an optional unit
/// (`64KB`, `512MiB`, `1.5GiB`, `2t`); the product must be a whole number of bytes that fits u64.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    // The unit is the trailing run of letters, so an exponent (`1e9`) stays in the number.
    let num = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[num.len()..];
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        u => {
            return Err(format!(
                "unknown unit {u:?} in byte size {s:?} (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)"
            ))
        }
    };
    let num = num.trim();
    // Exact for whole numbers (no rounding through f64), checked against u64.
    if let Ok(v) = num.parse::<u64>() {
        return v
            .checked_mul(mult)
            .ok_or_else(|| format!("byte size {s:?} is larger than {} bytes", u64::MAX));
    }
    let v: f64 = num
        .parse()
        .map_err(|_| format!("not a byte size: {s:?} (e.g. 4096, 1e9, 512MiB, 1.5GiB)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("byte size {s:?} must be a finite number >= 0"));
    }
    let bytes = v * mult as f64;
    let whole = bytes.round();
    if (bytes - whole).abs() > 1e-9 * whole.max(1.0) {
        return Err(format!("byte size {s:?} is not a whole number of bytes"));
    }
    // 2**64 as f64: every f64 below it converts to u64 exactly.
    if whole >= 18_446_744_073_709_551_616.0 {
        return Err(format!("byte size {s:?} is larger than {} bytes", u64::MAX));
    }
    Ok(whole as u64)
}

impl MemoryArgs {
    fn config(&self) -> Result<Option<tessera::MemoryConfig>, String> {
        let any = self.device_budget.is_some()
            || self.host_budget.is_some()
            || self.disk_budget.is_some()
            || self.spill_dir.is_some()
            || self.devices.is_some()
            || self.order.is_some();
        if !any {
            return Ok(None);
        }
        let bytes = |o: &Option<String>| o.as_deref().map(parse_bytes).transpose();
        Ok(Some(tessera::MemoryConfig {
            device_bytes: bytes(&self.device_budget)?,
            host_bytes: bytes(&self.host_budget)?,
            disk_bytes: bytes(&self.disk_budget)?,
            spill_dir: self.spill_dir.as_ref().map(std::path::PathBuf::from),
            devices: self.devices,
            order: match self.order.as_deref() {
                None | Some("depth-first") => tessera::Order::DepthFirst,
                Some("breadth-first") => tessera::Order::BreadthFirst,
                Some(o) => return Err(format!("unknown order {o} (depth-first, breadth-first)")),
            },
            spill_hook: None,
        }))
    }
}

/// A count (elements, points, chunk extent, devices): a whole number >= 1, written as an
/// integer or in float syntax with an integral value (`1e8`, `2.5e3`). Fractions, negatives,
/// NaN, infinities and values past usize are refused, never rounded or clamped.
fn parse_count(s: &str) -> Result<usize, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<u128>() {
        return match usize::try_from(v) {
            Ok(0) => Err(format!("need a count of at least 1, got {s:?}")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "count {s:?} is larger than the largest count ({})",
                usize::MAX
            )),
        };
    }
    let v: f64 = t
        .parse()
        .map_err(|_| format!("not a number: {s:?} (e.g. 1000, 1e8)"))?;
    if v.is_nan() || v.is_infinite() {
        return Err(format!("need a finite count, got {s:?}"));
    }
    if v.fract() != 0.0 {
        return Err(format!("need a whole number, got {s:?}"));
    }
    if v < 1.0 {
        return Err(format!("need a count of at least 1, got {s:?}"));
    }
    // usize::MAX + 1 as f64 (exact): every integral f64 below it converts exactly.
    if v >= (usize::MAX as f64) {
        return Err(format!(
            "count {s:?} is larger than the largest count ({})",
            usize::MAX
        ));
    }
    Ok(v as usize)
}

/// Large host buffers (chunk outputs) are reused instead of being zeroed again by the OS.
#[global_allocator]
static ALLOC: tessera::PooledAlloc = tessera::PooledAlloc;

// SIGINT/SIGTERM: the handler only writes the signal number into a pipe (async-signal-safe);
// a thread reads it, removes this process's live spill folders, and exits with 128 + signal.
#[cfg(unix)]
static SIGNAL_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    let b = sig as u8;
    let fd = SIGNAL_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: write(2) is async-signal-safe; `fd` is the pipe's write end, never closed, and
    // `b` lives across the call. errno is kept for the code the signal interrupted.
    unsafe {
        #[cfg(target_os = "linux")]
        let errno = *libc::__errno_location();
        libc::write(fd, (&b as *const u8).cast(), 1);
        #[cfg(target_os = "linux")]
        {
            *libc::__errno_location() = errno;
        }
    }
}

#[cfg(unix)]
fn install_signal_cleanup() {
    use std::io::Read;
    use std::os::unix::io::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes; FD_CLOEXEC keeps them out
    // of child processes (no other thread exists yet to fork in between).
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return;
        }
        libc::fcntl(fds[0], libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(fds[1], libc::F_SETFD, libc::FD_CLOEXEC);
    }
    // SAFETY: fds[0] is the read end just opened; nothing else owns it.
    let mut rx = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    SIGNAL_PIPE.store(fds[1], std::sync::atomic::Ordering::Relaxed);
    let watcher = std::thread::Builder::new()
        .name("tessera-signals".into())
        .spawn(move || {
            let mut b = [0u8; 1];
            if rx.read_exact(&mut b).is_ok() {
                SIGNALLED.store(i32::from(b[0]), std::sync::atomic::Ordering::SeqCst);
                tessera::storage::cleanup_live_spill_dirs();
                std::process::exit(128 + i32::from(b[0]));
            }
        });
    if watcher.is_err() {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with an empty mask is valid; the handler only calls
        // write(2) and touches errno, both allowed in a signal handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

#[cfg(not(unix))]
fn install_signal_cleanup() {}

fn main() {
    install_signal_cleanup();
    // TESSERA_HOST_POOL=0 turns the host buffer pool off (every large buffer comes fresh from
    // the OS), for comparing against allocators that do not reuse memory.
    if std::env::var("TESSERA_HOST_POOL").is_ok_and(|v| v == "0") {
        tessera::hostpool::set_limit(0);
    }
    if let Err(e) = real_main() {
        if SIGNALLED.load(std::sync::atomic::Ordering::SeqCst) != 0 {
            // The run failed because its spill folder went away on a signal: the signal
            // thread is exiting with the signal's status.
            loop {
                std::thread::park();
            }
        }
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Info => {
            for (name, b) in tessera::backends() {
                match b {
                    Ok(b) => {
                        println!("backend {name}: available");
                        for d in b.devices() {
                            println!(
                                "  device: {} [{}], memory {:.1} GiB",
                                d.name,
                                d.kind,
                                d.memory_bytes as f64 / (1u64 << 30) as f64
                            );
                            for (k, v) in d.details {
                                println!("    {k}: {v}");
                            }
                        }
                    }
                    Err(e) => println!("backend {name}: unavailable ({e})"),
                }
            }
            Ok(())
        }
        Cmd::Bench {
            workloads,
            size,
            backend,
            repeat,
            warmup,
            baselines,
            no_python,
            memory,
            out,
        } => {
            let budgets = memory.config()?;
            let s = tessera::session(&backend).map_err(|e| e.to_string())?;
            let mem = s
                .backend()
                .devices()
                .first()
                .map_or(8 << 30, |d| d.memory_bytes);
            let mut rows = Vec::new();
            let list: Vec<&str> = workloads.split(',').filter(|w| !w.is_empty()).collect();
            // One step per workload plus the Python side; hidden when stderr is not a terminal.
            let bar = indicatif::ProgressBar::new(list.len() as u64 + u64::from(!no_python));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
                    .map_err(|e| e.to_string())?,
            );
            for w in list {
                let n = match size.iter().find_map(|kv| kv.strip_prefix(&format!("{w}="))) {
                    Some(v) => parse_count(v)?,
                    None => tessera::bench::default_size(w, mem),
                };
                let msg = format!("tessera: {w} n={n} on {}", s.backend().name());
                bar.set_message(msg.clone());
                if bar.is_hidden() {
                    eprintln!("{msg}");
                }
                // A fresh session per workload: the graph of the previous one (and the data it
                // holds) is gone, so each row's peak RSS is its own.
                let ws = tessera::Session::new(s.backend().clone());
                ws.set_memory(budgets.clone());
                rows.push(
                    tessera::bench::run_workload(&ws, w, n, warmup, repeat, out.as_ref())
                        .map_err(|e| e.to_string())?,
                );
                bar.inc(1);
            }
            let out = std::path::PathBuf::from(out);
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let py = if no_python {
                Err("--no-python".to_string())
            } else {
                let msg = "numpy/cupy: running benches/harness.py at the same sizes";
                bar.set_message(msg);
                if bar.is_hidden() {
                    eprintln!("{msg}");
                }
                let py = tessera::bench::run_python(&rows, repeat, &baselines, &out);
                bar.inc(1);
                py
            };
            bar.finish_and_clear();
            let copy = tessera::bench::host_copy_bandwidth();
            let (table, doc) = tessera::bench::report(&rows, &py, copy);
            print!("{table}");
            let path = out.join("results.json");
            let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            println!("results: {}", path.display());
            let png = out.join("ratios.png");
            let title = format!(
                "Tessera ({}) speedup, same run as NumPy/CuPy",
                s.backend().name()
            );
            match tessera::chart::write_png(&doc, &title, &png) {
                Ok(()) => println!("chart: {}", png.display()),
                Err(e) => eprintln!("chart not written: {e}"),
            }
            Ok(())
        }
        Cmd::Run {
            workload,
            n,
            chunk,
            backend,
            seed,
            stats,
            input,
            output,
            memory,
        } => {
            let mut s = tessera::session(&backend).map_err(|e| e.to_string())?;
            if let (Some(n), "cpu") = (memory.devices, s.backend().name()) {
                // Virtual CPU devices for multi-device runs without GPUs.
                s = tessera::Session::new(std::sync::Arc::new(tessera::CpuBackend::with_devices(
                    n,
                )));
            }
            s.set_memory(memory.config()?);
            let chunk = chunk.map(|c| parse_count(&c)).transpose()?;
            if input.is_some() || output.is_some() {
                return run_files(
                    &s,
                    &workload,
                    input.as_deref(),
                    output.as_deref(),
                    chunk,
                    stats,
                );
            }
            if workload == "all" {
                // The headline workloads at sizes that suit a workstation.
                for (w, n) in [
                    ("pi", 100_000_000),
                    ("add-mul-sum", 100_000_000),
                    ("std-expr", 4000),
                ] {
                    run_one(&s, w, n, chunk, seed, stats)?;
                }
                return Ok(());
            }
            run_one(&s, &workload, parse_count(&n)?, chunk, seed, stats)
        }
    }
}

/// A headline workload over a .npy input and/or into a .npy output.
fn run_files(
    s: &tessera::Session,
    workload: &str,
    input: Option<&std::path::Path>,
    output: Option<&std::path::Path>,
    chunk: Option<usize>,
    stats: bool,
) -> Result<(), String> {
    let e = |e: tessera::Error| e.to_string();
    let t0 = Instant::now();
    let (n, value) = match workload {
        "add-mul-sum" => {
            let x = match input {
                Some(p) => {
                    workloads::read_array(s, p, chunk.map(|c| vec![c]).as_deref()).map_err(e)?
                }
                None => return Err("add-mul-sum --output needs --input (a .npy vector)".into()),
            };
            if x.ndim() != 1 {
                return Err(format!(
                    "add-mul-sum: the input has shape {:?}, not a vector",
                    x.shape()
                ));
            }
            (
                x.shape()[0],
                workloads::add_mul_sum_over(&x, output).map_err(e)?,
            )
        }
        "std-expr" => {
            let a = match input {
                Some(p) => {
                    workloads::read_array(s, p, Some(&[chunk.unwrap_or(1000)])).map_err(e)?
                }
                None => return Err("std-expr --output needs --input (a square .npy matrix)".into()),
            };
            if a.ndim() != 2 || a.shape()[0] != a.shape()[1] {
                return Err(format!(
                    "std-expr: the input has shape {:?}, not a square matrix",
                    a.shape()
                ));
            }
            (
                a.shape()[0],
                workloads::std_expr_over(&a, output).map_err(e)?,
            )
        }
        w => {
            return Err(format!(
                "--input/--output: workload {w} reads no array (add-mul-sum, std-expr)"
            ))
        }
    };
    report(s, workload, n, value, t0, stats);
    Ok(())
}

fn run_one(
    s: &tessera::Session,
    workload: &str,
    n: usize,
    chunk: Option<usize>,
    seed: u64,
    stats: bool,
) -> Result<(), String> {
    let t0 = Instant::now();
    let value = match workload {
        "pi" => workloads::pi(s, n, chunk.unwrap_or(1 << 22), seed),
        "add-mul-sum" => workloads::add_mul_sum(s, n, chunk.unwrap_or(1 << 22), seed),
        "std-expr" => {
            let a = s.random(seed).rand(&[n, n], tessera::DType::F32);
            let a = a
                .with_chunks(&[chunk.unwrap_or(1000)])
                .map_err(|e| e.to_string())?;
            workloads::std_expr(&a)
        }
        w => {
            return Err(format!(
                "unknown workload {w} (all, pi, std-expr, add-mul-sum)"
            ))
        }
    }
    .map_err(|e| e.to_string())?;
    report(s, workload, n, value, t0, stats);
    Ok(())
}

fn report(s: &tessera::Session, workload: &str, n: usize, value: f64, t0: Instant, stats: bool) {
    let dt = t0.elapsed();
    println!(
        "{workload} n={n} backend={}: {value} in {:.3} s",
        s.backend().name(),
        dt.as_secs_f64()
    );
    if stats {
        let st = s.last_stats();
        println!(
            "  tasks {}, peak live chunk bytes {}",
            st.tasks, st.peak_bytes
        );
        for (op, c) in &st.per_op {
            println!("    {op}: {c}");
        }
        let g = &st.stages;
        println!(
            "  stages: {} chunks; tile {:.3} s, fuse {:.3} s, sizing {:.3} s, run {:.3} s, assemble {:.3} s",
            g.chunks, g.tile, g.fuse, g.size, g.run, g.assemble
        );
        if let Some(m) = &st.memory {
            print!("{}", tessera::format_memory_stats(m));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, parse_count};

    #[test]
    fn counts_are_whole_and_in_range() {
        assert_eq!(parse_count("1e7"), Ok(10_000_000));
        assert_eq!(parse_count("2.5e3"), Ok(2500));
        assert_eq!(parse_count(" 42 "), Ok(42));
        assert_eq!(parse_count("18446744073709551615"), Ok(usize::MAX));
        for bad in [
            "1.9",
            "0.5",
            "0",
            "-5",
            "-1e3",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e30",
            "1e20",
            "18446744073709551616",
            "abc",
            "",
            "1e",
        ] {
            let e = parse_count(bad).expect_err(bad);
            assert!(e.contains(bad.trim()), "{bad}: {e}");
        }
    }

    #[test]
    fn byte_sizes_take_the_count_syntax_and_units() {
        assert_eq!(parse_bytes("1e9"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("64KB"), Ok(64_000));
        assert_eq!(parse_bytes("2e3kib"), Ok(2_048_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("0.3KB"), Ok(300));
        assert_eq!(parse_bytes("16 TiB"), Ok(16 << 40));
        assert_eq!(parse_bytes("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "1e30",
            "20000000TB",
            "18446744073709551615KB",
            "-1MiB",
            "nan",
            "inf",
            "0.5",
            "1.5B",
            "12XB",
            "GiB",
            "1e9e",
            "",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
