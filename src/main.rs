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
        /// Backend: auto, cpu.
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
            workloads::std_expr(s, &a)
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
