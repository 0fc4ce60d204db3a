//! The out-of-core suite: jobs larger than their device and host budgets finish through the
//! Scheduler with the same bits as an in-memory run; budgets hold (asserted from the run's
//! metrics); damaged spill files are recomputed; several devices share the work.
//!
//! `ooc_suite!(backend, factory)`: `factory(n)` returns `Option<Arc<dyn Backend>>` with `n`
//! devices (`None` when the backend cannot offer that many here: the test prints why and
//! passes).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tessera::{
    Axes, Backend, DType, Link, MemoryConfig, MemoryStats, Order, Session, Tensor, Tier,
};

/// Instantiates the out-of-core suite for one backend.
#[macro_export]
macro_rules! ooc_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            fn backend(n: usize) -> Option<std::sync::Arc<dyn tessera::Backend>> {
                let f: &dyn Fn(usize) -> Option<std::sync::Arc<dyn tessera::Backend>> = &$factory;
                let b = f(n);
                if b.is_none() {
                    println!("skipped: {}: no backend with {n} device(s) here", stringify!($backend));
                }
                b
            }
            $crate::ooc_suite!(@cases backend;
                spills_through_host_to_disk_bit_identical,
                matmul_job_under_tight_budgets_bit_identical,
                tall_svd_under_tight_budgets,
                sample_sort_under_tight_budgets,
                four_devices_share_the_work,
                depth_first_lowers_peak_memory,
                corrupted_spill_file_is_recomputed,
                missing_spill_file_is_recomputed,
                swapped_spill_file_is_recomputed,
                chunk_larger_than_device_is_a_typed_error,
                full_disk_is_a_typed_error,
            );
        }
    };
    (@cases $b:ident; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::ooc::$case(&$b);
            }
        )*
    };
}

type Factory<'a> = &'a dyn Fn(usize) -> Option<Arc<dyn Backend>>;

fn seed() -> u64 {
    let s = std::env::var("TESSERA_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {s}");
    s
}

/// A spill root of the test's own, so files left behind can be checked.
fn spill_root(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tessera-ooc-{name}-{}", std::process::id()))
}

fn files_under(p: &Path) -> usize {
    walk(p)
}

fn walk(p: &Path) -> usize {
    std::fs::read_dir(p).map_or(0, |rd| {
        rd.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

fn assert_within_budgets(m: &MemoryStats) {
    for (t, b) in &m.budgets {
        let p = m.peak_of(*t);
        assert!(p <= *b, "{t:?}: peak {p} over budget {b}");
    }
}

/// `(y - y.mean()).std()` with `y = exp(rand)`: every chunk of `y` is alive between the two
/// passes, so a small budget must spill it.
fn two_pass(s: &Session, seed: u64, rows: usize) -> Tensor {
    let x = s
        .random(seed)
        .rand(&[rows, 512], DType::F32)
        .with_chunks(&[16, 512])
        .unwrap();
    let y = x.exp().unwrap();
    let m = y.mean(Axes::All, false).unwrap();
    (&y - &m).std(Axes::All, false, 0).unwrap()
}

fn in_memory<F: Fn(&Session) -> Tensor>(b: Arc<dyn Backend>, job: F) -> u64 {
    let s = Session::new(b);
    let t = job(&s);
    t.item().unwrap().to_bits()
}

fn budgeted<F: Fn(&Session) -> Tensor>(
    b: Arc<dyn Backend>,
    mem: MemoryConfig,
    job: F,
) -> tessera::Result<(u64, MemoryStats)> {
    let s = Session::new(b);
    s.set_memory(Some(mem));
    let t = job(&s);
    let v = t.item()?;
    Ok((v.to_bits(), s.last_stats().memory.expect("scheduled run")))
}

/// Data 10x the device budget and 4x the host budget: spills device -> host -> disk and
/// reads back, same bits as in memory, every tier within its budget.
pub fn spills_through_host_to_disk_bit_identical(f: Factory) {
    let Some(b) = f(1) else { return };
    let seed = seed();
    let rows = 512; // y: 512 x 512 f32 = 1 MiB in 32 chunks of 32 KiB
    let data = (rows * 512 * 4) as u64;
    let root = spill_root("two-pass");
    let mem = MemoryConfig {
        device_bytes: Some(data / 10),
        host_bytes: Some(data / 4),
        spill_dir: Some(root.clone()),
        ..Default::default()
    };
    let want = in_memory(b.clone(), |s| two_pass(s, seed, rows));
    let (got, m) = budgeted(b, mem, |s| two_pass(s, seed, rows)).unwrap();
    assert_eq!(got, want, "budgeted run differs from the in-memory run");
    assert_within_budgets(&m);
    assert!(m.spills > 0 && m.unspills > 0, "{m:?}");
    assert!(m.moved_over(Link::HostToDisk) >= data / 2, "{m:?}");
    assert!(m.moved_over(Link::DiskToHost) > 0);
    assert!(m.moved_over(Link::DeviceToHost) > 0);
    assert!(m.moved_over(Link::HostToDevice) > 0);
    assert_eq!(m.recomputed, 0);
    assert_eq!(files_under(&root), 0, "spill files left behind");
    let _ = std::fs::remove_dir_all(root);
}

fn std_expr(s: &Session, seed: u64, n: usize, chunk: usize) -> Tensor {
    let a = s
        .random(seed)
        .rand(&[n, n], DType::F32)
        .with_chunks(&[chunk])
        .unwrap();
    let p = a.dot(&a.T().unwrap()).unwrap();
    (&p - &a).std(Axes::All, false, 0).unwrap()
}

/// `(a.dot(a.T) - a).std()` under budgets far below its data: same bits as in memory.
pub fn matmul_job_under_tight_budgets_bit_identical(f: Factory) {
    let Some(b) = f(1) else { return };
    let seed = seed();
    let (n, c) = (256, 32); // a: 256 KiB in 64 chunks of 4 KiB
    let data = (n * n * 4) as u64;
    let root = spill_root("matmul");
    let mem = MemoryConfig {
        device_bytes: Some(data / 10),
        host_bytes: Some(data / 4),
        spill_dir: Some(root.clone()),
        ..Default::default()
    };
    let want = in_memory(b.clone(), |s| std_expr(s, seed, n, c));
    let (got, m) = budgeted(b, mem, |s| std_expr(s, seed, n, c)).unwrap();
    assert_eq!(got, want);
    assert_within_budgets(&m);
    assert!(m.spills > 0, "{m:?}");
    let _ = std::fs::remove_dir_all(root);
}

/// A tall-skinny SVD (TSQR over 64 row blocks) under budgets far below its data: the
/// reconstruction `U S Vt` equals the input and the singular values equal the in-memory run's
/// (to rounding), every tier within its budget.
pub fn tall_svd_under_tight_budgets(f: Factory) {
    let Some(b) = f(1) else { return };
    let seed = seed();
    let (m, n) = (8192usize, 16usize); // 1 MiB of f64 in 64 row blocks of 16 KiB
    let data = (m * n * 8) as u64;
    let job = |s: &Session| {
        let a = s
            .random(seed)
            .rand(&[m, n], DType::F64)
            .with_chunks(&[128, n])
            .unwrap();
        let (u, sv, vt) = a.svd(false).unwrap();
        let rec = u
            .mul(&sv.expand_dims(0).unwrap())
            .unwrap()
            .matmul(&vt)
            .unwrap();
        let err = rec
            .sub(&a)
            .unwrap()
            .abs()
            .unwrap()
            .max(Axes::All, false)
            .unwrap();
        // Both numbers in one scalar pass: the error, and the singular values' sum.
        (err, sv.sum(Axes::All, false).unwrap())
    };
    // Chunks of 64 KiB: the matrix is more than one chunk, so it goes through TSQR.
    let s0 = Session::new(b.clone());
    s0.set_chunk_bytes(64 << 10).unwrap();
    let (e0, t0) = job(&s0);
    let (e0, t0) = (e0.item().unwrap(), t0.item().unwrap());
    let root = spill_root("tall-svd");
    let s = Session::new(b);
    s.set_chunk_bytes(64 << 10).unwrap();
    s.set_memory(Some(MemoryConfig {
        device_bytes: Some(data / 8),
        host_bytes: Some(data / 4),
        spill_dir: Some(root.clone()),
        ..Default::default()
    }));
    let (e, t) = job(&s);
    // The reconstruction needs every block's Q until the tree's top is done: the run that
    // must spill.
    let err = e.item().unwrap();
    let m_stats = s.last_stats().memory.expect("scheduled run");
    let got = t.item().unwrap();
    assert!(
        e0 < 1e-12 && err < 1e-12,
        "reconstruction error {e0:e} / {err:e}"
    );
    assert!(
        (got - t0).abs() <= 1e-12 * t0,
        "singular values {got} vs {t0} in memory"
    );
    assert_within_budgets(&m_stats);
    assert!(
        m_stats.spills > 0,
        "the leaves' Q factors do not fit: {m_stats:?}"
    );
    let _ = std::fs::remove_dir_all(root);
}

/// A 1-D sort 4x the host budget (the sample sort: segments split into buckets, each bucket
/// sorted alone): the sorted data, folded into position-weighted sums, has the same bits as
/// in memory; it is ascending; every tier stays within its budget.
pub fn sample_sort_under_tight_budgets(f: Factory) {
    let Some(b) = f(1) else { return };
    let seed = seed();
    let n = 1usize << 18; // 1 MiB of f32 in 32 segments of 32 KiB
    let data = (n * 4) as u64;
    let job = |s: &Session| {
        let x = s
            .random(seed)
            .randn(&[n], DType::F32)
            .with_chunks(&[8192])
            .unwrap();
        let sorted = x.sort(0, false).unwrap();
        let pos = s.arange(0.0, n as f64, 1.0, DType::F64).unwrap();
        let weighted = sorted
            .astype(DType::F64)
            .unwrap()
            .mul(&pos)
            .unwrap()
            .sum(Axes::All, false)
            .unwrap();
        let lo = sorted.slice(&[tessera::s(None, Some(-1), 1)]).unwrap();
        let hi = sorted.slice(&[tessera::s(Some(1), None, 1)]).unwrap();
        let ascending = hi.ge(&lo).unwrap().all(Axes::All, false).unwrap();
        (weighted, ascending)
    };
    let s0 = Session::new(b.clone());
    s0.set_chunk_bytes(32 << 10).unwrap();
    let (w0, a0) = job(&s0);
    let w0 = w0.item().unwrap();
    assert_eq!(a0.item().unwrap(), 1.0, "the in-memory sort is ascending");
    let root = spill_root("sample-sort");
    let s = Session::new(b);
    s.set_chunk_bytes(32 << 10).unwrap();
    s.set_memory(Some(MemoryConfig {
        device_bytes: Some(data / 4),
        host_bytes: Some(data / 4),
        spill_dir: Some(root.clone()),
        ..Default::default()
    }));
    let (w, a) = job(&s);
    let got = w.item().unwrap();
    let m_stats = s.last_stats().memory.expect("scheduled run");
    assert_eq!(a.item().unwrap(), 1.0, "the budgeted sort is ascending");
    assert_eq!(
        got.to_bits(),
        w0.to_bits(),
        "weighted sum {got} vs {w0} in memory"
    );
    assert_within_budgets(&m_stats);
    assert!(
        m_stats.spills > 0,
        "1 MiB sorted within 256 KiB spills: {m_stats:?}"
    );
    // Each segment is split once and its pieces leave memory once: what is read back from
    // disk stays a small multiple of the data, not segments x buckets of reloads.
    let read = m_stats.moved_over(Link::DiskToHost);
    println!("sample sort: {read} bytes read back from disk for {data} bytes of data");
    assert!(
        read <= 4 * data,
        "{read} bytes read back for {data} of data: {m_stats:?}"
    );
    let _ = std::fs::remove_dir_all(root);
}

/// Four devices: each runs a fair share of the kernels; partials meet on one device through
/// counted device-to-device copies; same bits as one device in memory.
pub fn four_devices_share_the_work(f: Factory) {
    let Some(b4) = f(4) else { return };
    let Some(b1) = f(1) else { return };
    let seed = seed();
    let job = |s: &Session| {
        let x = s
            .random(seed)
            .rand(&[64 * 16, 64], DType::F32)
            .with_chunks(&[16, 64])
            .unwrap();
        ((&x * 2.0) + 1.0).sum(Axes::All, false).unwrap()
    };
    let want = in_memory(b1, job);
    let (got, m) = budgeted(b4, MemoryConfig::default(), job).unwrap();
    assert_eq!(got, want);
    let total: usize = m.kernels.iter().sum();
    assert_eq!(m.kernels.len(), 4);
    for (d, &k) in m.kernels.iter().enumerate() {
        assert!(
            k * 4 * 10 >= total * 7,
            "device {d} ran {k} of {total} kernels: {:?}",
            m.kernels
        );
    }
    assert!(m.moved_over(Link::DeviceToDevice) > 0, "{m:?}");
}

/// Depth-first order keeps less alive than breadth-first on the seed expression.
pub fn depth_first_lowers_peak_memory(f: Factory) {
    let Some(b) = f(1) else { return };
    let seed = seed();
    let peak = |order| {
        let mem = MemoryConfig {
            order,
            ..Default::default()
        };
        let (v, m) = budgeted(b.clone(), mem, |s| std_expr(s, seed, 256, 32)).unwrap();
        (v, m.peak_of(Tier::Device(0)))
    };
    let (v_df, df) = peak(Order::DepthFirst);
    let (v_bf, bf) = peak(Order::BreadthFirst);
    assert_eq!(v_df, v_bf);
    println!("peak device bytes: depth-first {df}, breadth-first {bf}");
    assert!(df * 10 < bf * 9, "depth-first {df} vs breadth-first {bf}");
}

fn damaged_spill(f: Factory, damage: fn(&Path)) {
    let Some(b) = f(1) else { return };
    let seed = seed();
    let rows = 256;
    let data = (rows * 512 * 4) as u64;
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let root = spill_root("damaged");
    let mem = MemoryConfig {
        device_bytes: Some(data / 10),
        host_bytes: Some(data / 4),
        spill_dir: Some(root.clone()),
        spill_hook: Some(Arc::new(move |_c, p: &Path| {
            // Damage every other spill file right after it is written.
            if h.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                damage(p);
            }
        })),
        ..Default::default()
    };
    let want = in_memory(b.clone(), |s| two_pass(s, seed, rows));
    let (got, m) = budgeted(b, mem, |s| two_pass(s, seed, rows)).unwrap();
    assert!(hits.load(Ordering::SeqCst) > 0);
    assert_eq!(got, want, "a damaged spill file was read as data");
    assert!(m.recomputed > 0, "{m:?}");
    let _ = std::fs::remove_dir_all(root);
}

/// A spill file with a flipped byte is detected by its checksum and the chunk recomputed.
pub fn corrupted_spill_file_is_recomputed(f: Factory) {
    damaged_spill(f, |p| {
        let mut bytes = std::fs::read(p).unwrap();
        let k = bytes.len() / 2;
        bytes[k] ^= 0x10;
        std::fs::write(p, bytes).unwrap();
    });
}

/// A spill file that disappears is recomputed from the chunk's lineage.
pub fn missing_spill_file_is_recomputed(f: Factory) {
    damaged_spill(f, |p| std::fs::remove_file(p).unwrap());
}

/// A valid spill file of another chunk of the same size, swapped in mid-run, is not read as
/// data: its header names the other chunk, so this one is recomputed (same bits as in memory).
pub fn swapped_spill_file_is_recomputed(f: Factory) {
    let Some(b) = f(1) else { return };
    let seed = seed();
    let rows = 256;
    let data = (rows * 512 * 4) as u64;
    let first: Arc<std::sync::Mutex<Option<(u32, Vec<u8>)>>> = Default::default();
    let swaps = Arc::new(AtomicUsize::new(0));
    let (keep, n) = (first.clone(), swaps.clone());
    let root = spill_root("swapped");
    let mem = MemoryConfig {
        device_bytes: Some(data / 10),
        host_bytes: Some(data / 4),
        spill_dir: Some(root.clone()),
        spill_hook: Some(Arc::new(move |c, p: &Path| {
            // Keep the first spill file; put it in place of every later one of equal size.
            let mut g = keep.lock().unwrap();
            match &*g {
                None => *g = Some((c.0, std::fs::read(p).unwrap())),
                Some((k, bytes))
                    if *k != c.0 && std::fs::metadata(p).unwrap().len() == bytes.len() as u64 =>
                {
                    std::fs::write(p, bytes).unwrap();
                    n.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
        })),
        ..Default::default()
    };
    let want = in_memory(b.clone(), |s| two_pass(s, seed, rows));
    let (got, m) = budgeted(b, mem, |s| two_pass(s, seed, rows)).unwrap();
    assert!(
        swaps.load(Ordering::SeqCst) > 0,
        "no file was swapped: {m:?}"
    );
    assert_eq!(got, want, "another chunk's spill file was read as data");
    assert!(m.recomputed > 0, "{m:?}");
    assert_eq!(files_under(&root), 0, "spill files left behind");
    let _ = std::fs::remove_dir_all(root);
}

/// Chunks larger than the whole device budget: a typed OutOfMemory, no panic.
pub fn chunk_larger_than_device_is_a_typed_error(f: Factory) {
    let Some(b) = f(1) else { return };
    let mem = MemoryConfig {
        device_bytes: Some(1000),
        ..Default::default()
    };
    // The stored chunks of `y` are 32 KiB each.
    let e = budgeted(b, mem, |s| two_pass(s, 1, 64))
        .map(|r| r.0)
        .unwrap_err();
    assert!(
        matches!(
            e,
            tessera::Error::OutOfMemory {
                tier: Tier::Device(0),
                ..
            }
        ),
        "{e}"
    );
}

/// Spilling past the disk budget is a typed OutOfMemory on the disk tier.
pub fn full_disk_is_a_typed_error(f: Factory) {
    let Some(b) = f(1) else { return };
    let root = spill_root("full-disk");
    let data = 256u64 * 512 * 4;
    let mem = MemoryConfig {
        device_bytes: Some(data / 10),
        host_bytes: Some(data / 4),
        disk_bytes: Some(data / 8),
        spill_dir: Some(root.clone()),
        ..Default::default()
    };
    let e = budgeted(b, mem, |s| two_pass(s, 3, 256))
        .map(|r| r.0)
        .unwrap_err();
    assert!(
        matches!(
            e,
            tessera::Error::OutOfMemory {
                tier: Tier::Disk,
                ..
            }
        ),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(root);
}
