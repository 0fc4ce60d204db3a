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
        /// Comma list of workloads: add_mul, add_mul_sum, pi, std_expr, sgemm.
        #[arg(long, default_value = "add_mul,add_mul_sum,pi,std_expr,sgemm")]
        workloads: String,
        /// Size override, `workload=N` (repeatable; accepts 2e8).
        #[arg(long)]
        size: Vec<String>,
        /// Backend: auto, cpu, wgpu.
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Timed runs after one warm-up.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Skip the NumPy/CuPy side.
        #[arg(long)]
        no_python: bool,
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
        /// Backend: auto, cpu, wgpu.
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print execution statistics.
        #[arg(long)]
        stats: bool,
    },
}

fn parse_count(s: &str) -> Result<usize, String> {
    let v: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
    if !(v >= 1.0 && v.is_finite()) {
        return Err(format!("need a positive count, got {s}"));
    }
    Ok(v as usize)
}

fn main() {
    if let Err(e) = real_main() {
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
            no_python,
            out,
        } => {
            let s = tessera::session(&backend).map_err(|e| e.to_string())?;
            let mem = s
                .backend()
                .devices()
                .first()
                .map_or(8 << 30, |d| d.memory_bytes);
            let mut rows = Vec::new();
            for w in workloads.split(',').filter(|w| !w.is_empty()) {
                let n = match size.iter().find_map(|kv| kv.strip_prefix(&format!("{w}="))) {
                    Some(v) => parse_count(v)?,
                    None => tessera::bench::default_size(w, mem),
                };
                eprintln!("tessera: {w} n={n} on {}", s.backend().name());
                rows.push(
                    tessera::bench::run_workload(&s, w, n, repeat).map_err(|e| e.to_string())?,
                );
            }
            let out = std::path::PathBuf::from(out);
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let py = if no_python {
                Err("--no-python".to_string())
            } else {
                eprintln!("numpy/cupy: running benches/harness.py at the same sizes");
                tessera::bench::run_python(&rows, repeat, &out)
            };
            let copy = tessera::bench::host_copy_bandwidth();
            let (table, doc) = tessera::bench::report(&rows, &py, copy);
            print!("{table}");
            let path = out.join("results.json");
            let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            println!("results: {}", path.display());
            Ok(())
        }
        Cmd::Run {
            workload,
            n,
            chunk,
            backend,
            seed,
            stats,
        } => {
            let s = tessera::session(&backend).map_err(|e| e.to_string())?;
            let chunk = chunk.map(|c| parse_count(&c)).transpose()?;
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
        for (op, c) in st.per_op {
            println!("    {op}: {c}");
        }
    }
    Ok(())
}
