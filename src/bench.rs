//! `tessera bench`: the headline workloads on the chosen backend, and the same workloads in
//! NumPy (and CuPy where it imports) through `benches/harness.py` in the same run. Each
//! workload checks that the two sides agree before a time is reported.

use crate::{Axes, DType, Error, HostArray, Result, Session, Tensor};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Options of one bench run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Workloads (add_mul, add_mul_sum, pi, std_expr, sgemm, dgemm, svd, tsqr, knn, sort, argsort, topk).
    pub workloads: Vec<String>,
    /// Size overrides `workload=N`.
    pub sizes: Vec<(String, usize)>,
    /// Timed repetitions after one warm-up.
    pub repeat: usize,
    /// Run the Python reference side.
    pub python: bool,
    /// Where the JSON goes.
    pub out_dir: PathBuf,
}

/// One measured row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Workload.
    pub workload: String,
    /// Problem size.
    pub size: usize,
    /// Backend that ran it.
    pub backend: String,
    /// Median seconds.
    pub seconds: f64,
    /// Seconds of the warm-up run (cold caches, no pooled buffers yet).
    pub first_seconds: f64,
    /// Result value (or checksum).
    pub value: f64,
    /// Bytes moved per run (memory-bound workloads).
    pub bytes: Option<f64>,
    /// FLOPs per run (compute-bound workloads).
    pub flops: Option<f64>,
    /// Peak resident memory of the process during the workload.
    pub peak_rss: Option<u64>,
}

/// Default size per workload, fitted to host memory (`mem` bytes).
pub fn default_size(workload: &str, mem: u64) -> usize {
    let gib = (mem >> 30).max(1) as usize;
    match workload {
        // x and a fresh output: 8 bytes per element; keep them under a quarter of memory.
        "add_mul" | "add_mul_sum" => (gib << 30) / 32 / 4 * 4,
        "pi" => 100_000_000,
        "std_expr" | "sgemm" | "dgemm" => 4000,
        "knn" => 20_000,
        "sort" | "argsort" => 100_000_000,
        // The input, and the harness's int64 positions beside it: 12 bytes per element.
        "topk" => 1_000_000_000.min((gib << 30) / 32),
        _ => 1_000_000,
    }
    .min(match workload {
        "add_mul" | "add_mul_sum" => 200_000_000,
        _ => usize::MAX,
    })
}

fn pattern_vector(s: &Session, n: usize) -> Result<Tensor> {
    // x[i] = (i % 1024) / 1024: exact in f32, the harness's pattern.
    let i = s.arange(0.0, n as f64, 1.0, DType::I64)?;
    i.rem(1024)?.astype(DType::F32)?.div(1024.0)
}

fn pattern_matrix(s: &Session, n: usize, k: i64) -> Result<Tensor> {
    // a[i, j] = ((31 i + 17 j + 7 k) % 97) / 97, the harness's --matrix pattern.
    pattern_rect(s, n, n, (31, 17, 7 * k))
}

/// A `rows` x `cols` f32 pattern `((a i + b j + c) % 97) / 97`, exact in f32 (the harness's
/// `pattern_rect`): the matrix workloads' inputs, and the `knn` workload's data (31, 17, 0)
/// and queries (29, 13, 5), which never share a row, so every nearest distance is a clear
/// nonzero number.
fn pattern_rect(
    s: &Session,
    rows: usize,
    cols: usize,
    (a, b, c): (i64, i64, i64),
) -> Result<Tensor> {
    let i = s
        .arange(0.0, rows as f64, 1.0, DType::I64)?
        .reshape(&[rows as isize, 1])?;
    let j = s.arange(0.0, cols as f64, 1.0, DType::I64)?;
    let m = (i * a + j * b + c).rem(97)?;
    m.astype(DType::F32)?.div(97.0)
}

/// Modulus of the sort workloads' pattern: the prime 2^31 - 1.
const SORT_P: i64 = 2_147_483_647;

/// The `sort`, `argsort` and `topk` workloads' input, `q / 2^31` as f32 with
/// `q = ((i^2 mod p) 48271 + 16807 i + 12345) mod p` (the harness's `sort_pattern`): integer
/// arithmetic, one rounding to f32 and a power-of-two scale, so both sides hold the same bits.
/// The quadratic term leaves no long sorted runs for a merge sort to find; the rounding to f32
/// leaves ties (as uniform random f32 values have), which stable orders must keep.
fn sort_pattern(s: &Session, n: usize) -> Result<Tensor> {
    let i = s.arange(0.0, n as f64, 1.0, DType::I64)?;
    let q = ((&i * &i).rem(SORT_P)? * 48271 + &i * 16807 + 12345).rem(SORT_P)?;
    q.astype(DType::F32)?.div(2147483648.0)
}

/// The exact check value of a sorted array or of sort positions (the harness's
/// `sort_digest`): the sum over `i` of `(key_i mod 1021) (i mod 1024 + 1)`, key the value
/// times 2^31 (an integer, see [`sort_pattern`]) or the position; any two unequal elements
/// swapped change it, and it stays below 2^53.
fn sort_digest(t: &Tensor) -> Result<f64> {
    let n = t.shape()[0];
    let key = if t.dtype() == DType::I64 {
        t.clone()
    } else {
        (t.astype(DType::F64)? * 2147483648.0).astype(DType::I64)?
    };
    let w = t
        .session()
        .arange(0.0, n as f64, 1.0, DType::I64)?
        .rem(1024)?
        + 1;
    (key.rem(1021)? * w).sum(Axes::All, false)?.item()
}

/// Elements the `topk` workload selects.
pub const TOPK_K: usize = 10;

/// The exact check value of a top-k (the harness's `topk_digest`): the sum over `j` of
/// `(j + 1) (value_j 2^31 + 3 position_j)`, best first.
fn topk_digest(vals: &HostArray, pos: &HostArray) -> Result<f64> {
    let (v, p) = match (vals.as_array::<f32>(), pos.as_array::<i64>()) {
        (Some(v), Some(p)) => (v, p),
        _ => return Err(Error::invalid_arg("bench", "topk returned other dtypes")),
    };
    Ok(v.iter()
        .zip(p.iter())
        .enumerate()
        .map(|(j, (&x, &i))| (j as i64 + 1) * ((x as f64 * 2147483648.0) as i64 + 3 * i))
        .sum::<i64>() as f64)
}

/// Row length and neighbours of the `knn` workload.
pub const KNN_DIM: usize = 64;
/// Neighbours per query of the `knn` workload.
pub const KNN_K: usize = 10;

/// Materializes `t` so timing starts from data in memory.
fn materialize(s: &Session, t: &Tensor) -> Result<Tensor> {
    Ok(s.from_host(t.execute()?))
}

fn checksum(a: &HostArray) -> f64 {
    a.as_array::<f32>()
        .map_or_else(|| a.to_f64().sum(), |x| x.iter().map(|&v| v as f64).sum())
}

fn reset_peak_rss() {
    // Hand the heap pages freed by earlier workloads back to the OS first, so a row's peak is
    // its own and not what the allocator kept from the previous row.
    crate::hostpool::release();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
    // Linux: writing 5 resets the peak RSS (VmHWM) of this process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// Copy bandwidth of host memory: bytes read + written per second, best of three.
pub fn host_copy_bandwidth() -> f64 {
    use rayon::prelude::*;
    let n = 1usize << 27;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t0 = Instant::now();
        dst.par_chunks_mut(1 << 16)
            .zip(src.par_chunks(1 << 16))
            .for_each(|(d, s)| d.copy_from_slice(s));
        best = best.min(t0.elapsed().as_secs_f64());
    }
    std::hint::black_box(&dst);
    2.0 * 4.0 * n as f64 / best
}

/// `warmup` untimed runs, then `repeat` timed runs: (median seconds, last value, seconds of
/// the first run, warm-up or not).
fn time<F: FnMut() -> Result<f64>>(
    warmup: usize,
    repeat: usize,
    mut f: F,
) -> Result<(f64, f64, f64)> {
    let mut value = 0.0;
    let mut first = None;
    for _ in 0..warmup {
        let t0 = Instant::now();
        value = f()?;
        first.get_or_insert(t0.elapsed().as_secs_f64());
    }
    let mut ts = Vec::new();
    for _ in 0..repeat.max(1) {
        let t0 = Instant::now();
        value = f()?;
        ts.push(t0.elapsed().as_secs_f64());
    }
    let first = first.unwrap_or(ts[0]);
    ts.sort_by(f64::total_cmp);
    Ok((ts[ts.len() / 2], value, first))
}

/// Square blocks the matrix workloads cut an `n`×`n` matrix into: 1024 (as the harness's
/// Dask side), 4096 past 16384 so that a 100,000² matrix is 625 blocks, not 9,604.
pub fn matrix_block(n: usize) -> usize {
    if n > 16384 {
        4096
    } else {
        1024
    }
}

/// A file this process creates under a folder and removes when dropped (it made the name:
/// the process id and a counter, created with `create_new`, so it removes only its own file).
struct ScratchFile(PathBuf);

impl ScratchFile {
    fn new(dir: &Path, stem: &str, ext: &str) -> Result<ScratchFile> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir).map_err(|e| Error::file_io(dir, "creating", &e))?;
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = dir.join(format!("{stem}-{}-{k}.{ext}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|e| Error::file_io(&p, "creating", &e))?;
        Ok(ScratchFile(p))
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs one workload on `s`; `scratch` holds inputs that live on disk (removed after).
///
/// # Errors
/// Unknown workloads; graph or backend errors.
pub fn run_workload(
    s: &Session,
    workload: &str,
    n: usize,
    warmup: usize,
    repeat: usize,
    scratch: &Path,
) -> Result<Row> {
    reset_peak_rss();
    let (secs, value, bytes, flops, first) = match workload {
        "add_mul" => {
            // x is in memory already: one chunk, so the kernel writes the fresh output directly
            // (no assembly copy); rayon splits the chunk into blocks.
            let x = materialize(s, &pattern_vector(s, n)?)?.with_chunks(&[n])?;
            let mut last = None;
            let (t, _, first) = time(warmup, repeat, || {
                last = None; // the previous output is freed: each run allocates a fresh one
                last = Some(((&x + 1.0) * 2.0).execute()?);
                Ok(0.0)
            })?;
            (
                t,
                checksum(last.as_ref().expect("ran")),
                Some(8.0 * n as f64),
                None,
                first,
            )
        }
        "add_mul_sum" => {
            let x = materialize(s, &pattern_vector(s, n)?)?;
            let (t, v, first) = time(warmup, repeat, || {
                ((&x + 1.0) * 2.0).sum(Axes::All, false)?.item()
            })?;
            (t, v, Some(4.0 * n as f64), None, first)
        }
        "pi" => {
            let (t, v, first) = time(warmup, repeat, || crate::workloads::pi(s, n, 1 << 22, 0))?;
            (t, v, None, None, first)
        }
        "std_expr" => {
            let a = materialize(s, &pattern_matrix(s, n, 0)?)?.with_chunks(&[matrix_block(n)])?;
            let (t, v, first) = time(warmup, repeat, || crate::workloads::std_expr(&a))?;
            (t, v, None, Some(2.0 * (n as f64).powi(3)), first)
        }
        "knn" => {
            // n data rows and n queries of 64 f32 each; the value is the sum of every query's
            // 10 smallest squared distances (the same numbers whichever of tied rows is picked).
            let block = 8192.min(n.max(1));
            let x = materialize(s, &pattern_rect(s, n, KNN_DIM, (31, 17, 0))?)?
                .with_chunks(&[block, KNN_DIM])?;
            let y = materialize(s, &pattern_rect(s, n, KNN_DIM, (29, 13, 5))?)?
                .with_chunks(&[block, KNN_DIM])?;
            let (t, v, first) = time(warmup, repeat, || {
                let (d2, _) = x.knn(&y, KNN_K)?;
                d2.astype(DType::F64)?.sum(Axes::All, false)?.item()
            })?;
            let flops = 2.0 * (n as f64).powi(2) * KNN_DIM as f64;
            (t, v, None, Some(flops), first)
        }
        "sort" | "argsort" => {
            // n f32 of the sort pattern, ascending, stable; the value is `sort_digest` of the
            // sorted values or positions (equal to NumPy's only if every element is in place).
            let arg = workload == "argsort";
            let bytes = 4 * n as u64;
            let budget = s
                .config()
                .memory
                .and_then(|m| m.host_bytes.into_iter().chain(m.device_bytes).min());
            match budget {
                // Out of core (as `svd`): the input past half the smallest budget is written
                // to a .npy file first (untimed) and read by every run; the result is written
                // chunk by chunk to another file, never whole in memory.
                Some(h) if bytes > h / 2 => {
                    let input = ScratchFile::new(scratch, "sort-input", "npy")?;
                    sort_pattern(s, n)?.to_npy(&input.0)?;
                    let x = crate::io::load_npy(s, &input.0, None)?;
                    let output = ScratchFile::new(scratch, "sort-output", "npy")?;
                    let (t, _, first) = time(warmup, repeat, || {
                        let y = if arg {
                            x.argsort(0, false)?
                        } else {
                            x.sort(0, false)?
                        };
                        y.to_npy(&output.0)?;
                        Ok(0.0)
                    })?;
                    let v = sort_digest(&crate::io::load_npy(s, &output.0, None)?)?;
                    (t, v, Some(bytes as f64), None, first)
                }
                _ => {
                    let x = materialize(s, &sort_pattern(s, n)?)?;
                    let mut last = None;
                    let (t, _, first) = time(warmup, repeat, || {
                        last = None;
                        let y = if arg {
                            x.argsort(0, false)?
                        } else {
                            x.sort(0, false)?
                        };
                        last = Some(y.execute()?);
                        Ok(0.0)
                    })?;
                    let y = s.from_host(last.take().expect("ran"));
                    (t, sort_digest(&y)?, Some(bytes as f64), None, first)
                }
            }
        }
        "topk" => {
            // The 10 largest of n f32 of the sort pattern with their positions (ties to the
            // lower position); the value is `topk_digest`.
            let x = materialize(s, &sort_pattern(s, n)?)?;
            let mut last = None;
            let (t, _, first) = time(warmup, repeat, || {
                last = None;
                let (v, p) = x.topk(TOPK_K, 0, true)?;
                last = Some(s.execute_many(&[&v, &p])?);
                Ok(0.0)
            })?;
            let r = last.expect("ran");
            (
                t,
                topk_digest(&r[0], &r[1])?,
                Some(4.0 * n as f64),
                None,
                first,
            )
        }
        "sgemm" | "dgemm" => {
            let dt = if workload == "sgemm" {
                DType::F32
            } else {
                DType::F64
            };
            let a = materialize(s, &pattern_matrix(s, n, 0)?.astype(dt)?)?
                .with_chunks(&[matrix_block(n)])?;
            let b = materialize(s, &pattern_matrix(s, n, 1)?.astype(dt)?)?
                .with_chunks(&[matrix_block(n)])?;
            let mut last = None;
            let (t, _, first) = time(warmup, repeat, || {
                last = None;
                last = Some(a.matmul(&b)?.execute()?);
                Ok(0.0)
            })?;
            (
                t,
                checksum(last.as_ref().expect("ran")),
                None,
                Some(2.0 * (n as f64).powi(3)),
                first,
            )
        }
        "svd" | "tsqr" => {
            let cols = crate::workloads::SVD_COLS;
            let bytes = 4 * cols as u64 * n as u64;
            let a = s.random(7).rand(&[n, cols], DType::F32);
            // Past half the smallest memory budget the input lives on disk (written once,
            // untimed) and every run streams it from there; else it is held in memory. (On the
            // CPU backend the device tier is host memory too: both budgets bound it.)
            let budget = s
                .config()
                .memory
                .and_then(|m| m.host_bytes.into_iter().chain(m.device_bytes).min());
            let mut file = None;
            let a = match budget {
                Some(h) if bytes > h / 2 => {
                    let f = ScratchFile::new(scratch, "svd-input", "npy")?;
                    a.to_npy(&f.0)?;
                    let t = crate::io::load_npy(s, &f.0, None)?;
                    file = Some(f);
                    t
                }
                _ => materialize(s, &a)?,
            };
            let (t, v, first) = time(warmup, repeat, || {
                if workload == "svd" {
                    crate::workloads::svd_error(&a)
                } else {
                    crate::workloads::largest_singular_value(&a)
                }
            })?;
            drop(a);
            drop(file);
            (t, v, Some(bytes as f64), None, first)
        }
        w => return Err(Error::invalid_arg("bench", format!("unknown workload {w}"))),
    };
    Ok(Row {
        workload: workload.to_string(),
        size: n,
        backend: s.backend().name().to_string(),
        seconds: secs,
        first_seconds: first,
        value,
        bytes,
        flops,
        peak_rss: peak_rss(),
    })
}

/// Runs the Python harness for the same workloads and sizes; returns its records (or why not).
pub fn run_python(
    rows: &[Row],
    repeat: usize,
    baselines: &str,
    out_dir: &Path,
) -> std::result::Result<Vec<Value>, String> {
    // The checkout the command runs in, else the one it was built from.
    let script = [
        PathBuf::from("benches/harness.py"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/harness.py"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or("benches/harness.py not found")?;
    let json_path = out_dir.join("python.json");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg("--workloads")
        .arg(
            rows.iter()
                .map(|r| r.workload.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
        .arg("--backends")
        .arg(baselines)
        .arg("--matrix")
        .arg("pattern")
        .arg("--repeat")
        .arg(repeat.to_string())
        .arg("--json")
        .arg(&json_path);
    for r in rows {
        cmd.arg("--size").arg(format!("{}={}", r.workload, r.size));
    }
    let out = cmd
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "harness failed: {}",
            err.lines().last().unwrap_or("")
        ));
    }
    let text =
        std::fs::read_to_string(&json_path).map_err(|e| format!("no harness output: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("bad harness JSON: {e}"))?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// Whether Tessera's value agrees with a reference for a workload.
pub fn agrees(workload: &str, n: usize, ours: f64, theirs: f64) -> bool {
    match workload {
        // Different random streams: agree within 6 sigma of the estimator.
        "pi" => {
            (ours - theirs).abs()
                < 6.0
                    * 4.0
                    * (0.25 * std::f64::consts::PI * (1.0 - 0.25 * std::f64::consts::PI) / n as f64)
                        .sqrt()
                    * 2.0
        }
        // Reconstruction errors of different random matrices: both at the f32 rounding level.
        "svd" => ours.is_finite() && ours <= (10.0 * theirs).max(1e-5),
        // Exact digests of the order (whole numbers below 2^53).
        "sort" | "argsort" | "topk" => ours == theirs,
        _ => (ours - theirs).abs() <= 1e-3 * theirs.abs().max(1e-12),
    }
}

/// Renders the comparison table and the JSON document.
pub fn report(
    rows: &[Row],
    py: &std::result::Result<Vec<Value>, String>,
    copy_bw: f64,
) -> (String, Value) {
    let find = |w: &str, be: &str| -> Option<&Value> {
        py.as_ref()
            .ok()?
            .iter()
            .find(|r| r["workload"] == w && r["backend"] == be && !r["median_s"].is_null())
    };
    let mut t = String::new();
    t.push_str(&format!(
        "host copy bandwidth (read + write): {:.1} GB/s\n",
        copy_bw / 1e9
    ));
    if let Err(e) = py {
        t.push_str(&format!("NumPy/CuPy side: not run ({e})\n"));
    }
    t.push_str(&format!(
        "{:<12} {:>11} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>14} {:>9} {:>9}  {}\n",
        "workload",
        "size",
        "backend",
        "tessera s",
        "1st run s",
        "numpy s",
        "cupy s",
        "vs np",
        "vs cupy",
        "rate",
        "of limit",
        "peak RSS",
        "check"
    ));
    let mut recs = Vec::new();
    for r in rows {
        let np = find(&r.workload, "numpy");
        let cp = find(&r.workload, "cupy");
        let secs = |v: Option<&Value>| v.and_then(|x| x["median_s"].as_f64());
        let (np_s, cp_s) = (secs(np), secs(cp));
        let reference = np
            .or(cp)
            .and_then(|x| x["value"].as_f64().or(x["expected"].as_f64()));
        let check = match reference {
            Some(v) if agrees(&r.workload, r.size, r.value, v) => "agrees".to_string(),
            Some(v) => format!("DISAGREES ({} vs {v})", r.value),
            None => "no reference".to_string(),
        };
        let (rate, limit) = match (r.bytes, r.flops) {
            (Some(b), _) => (
                format!("{:.1} GB/s", b / r.seconds / 1e9),
                format!("{:.0}%", 100.0 * b / r.seconds / copy_bw),
            ),
            (_, Some(f)) => (format!("{:.1} GFLOP/s", f / r.seconds / 1e9), "-".into()),
            _ => (
                format!("{:.2} Gpt/s", r.size as f64 / r.seconds / 1e9),
                "-".into(),
            ),
        };
        let ratio = |o: Option<f64>| o.map_or("-".into(), |o| format!("{:.2}x", o / r.seconds));
        let fmt_s = |o: Option<f64>| o.map_or("-".into(), |o| format!("{o:.4}"));
        t.push_str(&format!(
            "{:<12} {:>11} {:>7} {:>10.4} {:>10.4} {:>10} {:>10} {:>8} {:>8} {:>14} {:>9} {:>9}  {}\n",
            r.workload,
            r.size,
            r.backend,
            r.seconds,
            r.first_seconds,
            fmt_s(np_s),
            fmt_s(cp_s),
            ratio(np_s),
            ratio(cp_s),
            rate,
            limit,
            r.peak_rss
                .map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0)),
            check
        ));
        recs.push(json!({
            "workload": r.workload, "size": r.size, "backend": r.backend, "tessera_s": r.seconds,
            "tessera_first_s": r.first_seconds,
            "value": r.value, "numpy_s": np_s, "cupy_s": cp_s, "reference_value": reference,
            "agrees": check == "agrees", "gbps": r.bytes.map(|b| b / r.seconds / 1e9),
            "gflops": r.flops.map(|f| f / r.seconds / 1e9), "peak_rss_bytes": r.peak_rss,
        }));
    }
    let doc = json!({
        "host_copy_gbps": copy_bw / 1e9,
        "rows": recs,
        "python": py.as_ref().map(|v| Value::Array(v.clone())).unwrap_or(Value::Null),
        "python_error": py.as_ref().err(),
    });
    (t, doc)
}
