//! Failures inside a run: a panic or an error in one lane (or one chunk task of the in-memory
//! executor) stops the whole run promptly and surfaces as a typed error from `execute`; the
//! session stays usable afterwards; jobs larger than host memory are refused (typed
//! `OutOfMemory`) or moved to the Scheduler before anything is allocated.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::chunk::{ChunkData, ChunkNode};
use tessera::{
    Axes, Backend, CpuBackend, DType, DeviceInfo, Error, MemoryConfig, Session, Tensor, Tier,
};

fn seed() -> u64 {
    let s = std::env::var("TESSERA_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {s}");
    s
}

/// How the faulty backend fails once armed.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Panic,
    Error,
}

/// The CPU backend, failing in the `after`-th chunk task (counted from arming) of op `op`.
struct Faulty {
    inner: CpuBackend,
    op: &'static str,
    fault: Fault,
    armed: AtomicBool,
    /// Panic in `devices()`: outside both executors (the run's set-up).
    devices_panic: AtomicBool,
    after: usize,
    seen: AtomicUsize,
}

impl Faulty {
    fn new(devices: usize, op: &'static str, fault: Fault, after: usize) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner: CpuBackend::with_devices(devices),
            op,
            fault,
            armed: AtomicBool::new(true),
            devices_panic: AtomicBool::new(false),
            after,
            seen: AtomicUsize::new(0),
        })
    }
}

impl Backend for Faulty {
    fn name(&self) -> &str {
        "faulty-cpu"
    }
    fn devices(&self) -> Vec<DeviceInfo> {
        if self.devices_panic.load(Ordering::SeqCst) {
            panic!("injected fault in devices");
        }
        self.inner.devices()
    }
    fn run_chunk(&self, node: &ChunkNode, inputs: &[&ChunkData]) -> tessera::Result<ChunkData> {
        if self.armed.load(Ordering::SeqCst)
            && node.op.name() == self.op
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 >= self.after
        {
            match self.fault {
                Fault::Panic => panic!("injected fault in {}", self.op),
                Fault::Error => {
                    return Err(Error::Backend {
                        backend: "faulty-cpu".into(),
                        msg: format!("injected fault in {}", self.op),
                    })
                }
            }
        }
        self.inner.run_chunk(node, inputs)
    }
}

/// Runs `f` on its own thread; a run that does not return within `limit` is a hang (the
/// thread is left behind, the test fails instead of blocking the suite).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("the run did not return within {limit:?}: hang"),
    }
}

fn f64s(a: &tessera::HostArray) -> Vec<f64> {
    a.to_f64().iter().copied().collect()
}

fn spill_root(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tessera-faults-{name}-{}", std::process::id()))
}

fn files_under(p: &Path) -> usize {
    std::fs::read_dir(p).map_or(0, |rd| {
        rd.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    files_under(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

/// `(y - y.mean()).std()` with `y = exp(rand * 2 + 1)`: every chunk of `y` lives between the
/// two passes, so tight budgets spill it.
fn two_pass(s: &Session, seed: u64, rows: usize) -> Tensor {
    let x = s
        .random(seed)
        .rand(&[rows, 512], DType::F32)
        .with_chunks(&[16, 512])
        .unwrap();
    let y = ((&x * 2.0) + 1.0).exp().unwrap();
    let m = y.mean(Axes::All, false).unwrap();
    (&y - &m).std(Axes::All, false, 0).unwrap()
}

fn reference_bits(seed: u64, rows: usize) -> u64 {
    let s = Session::new(Arc::new(CpuBackend::new()));
    two_pass(&s, seed, rows).item().unwrap().to_bits()
}

fn tight(root: &Path) -> MemoryConfig {
    let data = 256 * 512 * 4;
    MemoryConfig {
        device_bytes: Some(data / 10),
        host_bytes: Some(data / 4),
        spill_dir: Some(root.to_path_buf()),
        ..Default::default()
    }
}

/// A fault in the `after`-th kernel of `op` on two budgeted virtual devices: `execute` returns
/// a typed error promptly (no lane left waiting), the spill folder is emptied, and the same
/// session then runs the job again with the right bits.
fn lane_fault(fault: Fault, op: &'static str, after: usize) {
    let seed = seed();
    let root = spill_root(&format!("{op}-{after}-{}", fault == Fault::Panic));
    let b = Faulty::new(2, op, fault, after);
    let s = Session::new(b.clone());
    s.set_memory(Some(tight(&root)));
    let (s2, root2) = (s.clone(), root.clone());
    let t0 = Instant::now();
    let r = within(Duration::from_secs(60), move || {
        let r = two_pass(&s2, seed, 256).item();
        (r, files_under(&root2))
    });
    println!("failed run returned in {:?}", t0.elapsed());
    match (&r.0, fault) {
        (Err(Error::Panic { op: o, message }), Fault::Panic) => {
            assert!(message.contains("injected fault"), "{message}");
            assert!(o.contains(op), "{o} should name {op}");
        }
        (Err(Error::Backend { msg, .. }), Fault::Error) => {
            assert!(msg.contains("injected fault"), "{msg}")
        }
        (other, _) => panic!("expected the injected fault, got {other:?}"),
    }
    assert_eq!(r.1, 0, "spill files left behind after the failed run");
    // The same session, disarmed: the same job gives the in-memory bits.
    b.armed.store(false, Ordering::SeqCst);
    let got = within(Duration::from_secs(60), move || {
        two_pass(&s, seed, 256).item().unwrap().to_bits()
    });
    assert_eq!(got, reference_bits(seed, 256));
    assert_eq!(files_under(&root), 0);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn panic_in_first_kernel_of_a_lane_stops_the_run() {
    lane_fault(Fault::Panic, "fused", 1);
}

#[test]
fn panic_mid_run_in_a_lane_stops_the_run() {
    lane_fault(Fault::Panic, "fused", 9);
}

#[test]
fn panic_in_a_combine_stops_the_run() {
    lane_fault(Fault::Panic, "reduce_combine", 1);
}

#[test]
fn error_mid_run_in_a_lane_stops_the_run() {
    lane_fault(Fault::Error, "fused", 9);
}

/// The in-memory (rayon) executor: a panicking chunk task is a typed error, not a crash, and
/// the session runs the next graph correctly.
#[test]
fn panic_in_the_in_memory_executor_is_an_error() {
    let seed = seed();
    let b = Faulty::new(1, "fused", Fault::Panic, 5);
    let s = Session::new(b.clone());
    let s2 = s.clone();
    let r = within(Duration::from_secs(60), move || {
        two_pass(&s2, seed, 256).item()
    });
    assert!(
        matches!(&r, Err(Error::Panic { message, .. }) if message.contains("injected fault")),
        "{r:?}"
    );
    assert!(s.last_stats().memory.is_none());
    b.armed.store(false, Ordering::SeqCst);
    let got = two_pass(&s, seed, 256).item().unwrap().to_bits();
    assert_eq!(got, reference_bits(seed, 256));
}

/// A panic outside the executors (here in the backend's `devices()`, asked while the run is
/// set up) is a typed error from `execute` too, and the session runs the next graph.
#[test]
fn panic_while_setting_up_a_run_is_an_error() {
    let seed = seed();
    let b = Faulty::new(1, "none", Fault::Panic, 1);
    let s = Session::new(b.clone());
    b.devices_panic.store(true, Ordering::SeqCst);
    let r = two_pass(&s, seed, 64).item();
    assert!(
        matches!(&r, Err(Error::Panic { op, message })
            if op == "execute" && message.contains("injected fault in devices")),
        "{r:?}"
    );
    b.devices_panic.store(false, Ordering::SeqCst);
    let got = two_pass(&s, seed, 64).item().unwrap().to_bits();
    assert_eq!(got, reference_bits(seed, 64));
}

/// `floor_divide(i32::MIN, -1)` on two budgeted virtual devices returns (numpy's value, or a
/// typed error where a backend refuses it) instead of hanging the lanes.
#[test]
fn floor_divide_overflow_on_two_devices_returns() {
    let root = spill_root("floordiv");
    let s = Session::new(Arc::new(CpuBackend::with_devices(2)));
    s.set_memory(Some(MemoryConfig {
        device_bytes: Some(1 << 20),
        spill_dir: Some(root.clone()),
        ..Default::default()
    }));
    let s2 = s.clone();
    let r = within(Duration::from_secs(60), move || {
        let x = s2
            .from_vec(vec![i32::MIN, 7, i32::MIN, -9], &[4])?
            .with_chunks(&[2])?;
        x.floor_divide(-1)?.execute()
    });
    match r {
        Ok(v) => assert_eq!(f64s(&v), vec![i32::MIN as f64, -7.0, i32::MIN as f64, 9.0]),
        Err(e) => println!("typed error: {e}"),
    }
    assert_eq!(files_under(&root), 0);
    // The session still runs.
    let y = s.from_vec(vec![5i32, -7], &[2]).unwrap();
    let v = y.floor_divide(2).unwrap().execute().unwrap();
    assert_eq!(f64s(&v), vec![2.0, -4.0]);
    let _ = std::fs::remove_dir_all(root);
}

/// A result larger than host memory, without budgets: a typed `OutOfMemory` before anything
/// is allocated (24 GB of f32 here: more than a test machine can hold).
#[test]
fn result_larger_than_host_memory_is_out_of_memory() {
    let s = tessera::cpu_session();
    s.set_host_limit(Some(8 << 30));
    let t0 = Instant::now();
    let x = s.random(1).rand(&[6_000_000_000], DType::F32);
    let r = (&x + 1.0).execute();
    match r {
        Err(Error::OutOfMemory {
            tier: Tier::Host,
            requested,
            available,
        }) => {
            assert!(requested >= 24_000_000_000, "{requested}");
            assert_eq!(available, 8 << 30);
        }
        other => panic!(
            "expected OutOfMemory, got {:?}",
            other.map(|a| a.shape().to_vec())
        ),
    }
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
}

/// A one-chunk result of 2^40 f32 (4 TiB) is refused with its real size, not a saturated
/// count (the sizing once reported u64::MAX bytes for chunks of 2^40 elements and more).
#[test]
fn huge_one_chunk_out_of_memory_names_its_size() {
    let s = tessera::cpu_session();
    s.set_host_limit(Some(8 << 30));
    let x = s
        .random(1)
        .rand(&[1 << 40], DType::F32)
        .with_chunks(&[1 << 40])
        .unwrap();
    match (&x + 1.0).execute() {
        Err(Error::OutOfMemory {
            tier: Tier::Host,
            requested,
            available,
        }) => {
            assert_eq!(requested, 4 << 40);
            assert_eq!(available, 8 << 30);
        }
        other => panic!(
            "expected OutOfMemory, got {:?}",
            other.map(|a| a.shape().to_vec())
        ),
    }
}

/// The same with the machine's own available memory (no injected limit): still refused,
/// quickly, because the result alone is larger than any test machine's memory.
#[test]
fn result_larger_than_ram_is_out_of_memory_by_default() {
    let s = tessera::cpu_session();
    let x = s.random(1).rand(&[1 << 38], DType::F32);
    let r = within(Duration::from_secs(60), move || {
        (&x + 1.0).execute().map(|a| a.shape().to_vec())
    });
    assert!(
        matches!(
            r,
            Err(Error::OutOfMemory {
                tier: Tier::Host,
                ..
            })
        ),
        "{r:?}"
    );
}

/// A source that is itself the result, 4 TiB of `zeros`/`ones`/`full` (issue 15: "aborts the
/// process while building the result"): `OutOfMemory` on the host before anything is
/// allocated, in automatic chunks and as one chunk, under an injected host limit and under the
/// machine's own. Checked in a child process whose address space is capped at 8 GiB, so a
/// regression that does allocate fails this test instead of taking the machine down.
#[cfg(target_os = "linux")]
#[test]
fn source_result_larger_than_host_memory_is_out_of_memory() {
    const NAME: &str = "source_result_larger_than_host_memory_is_out_of_memory";
    if std::env::var_os("TESSERA_FAULTS_CHILD").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env("TESSERA_FAULTS_CHILD", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("checked 12 runs"),
            "{:?}\n{text}",
            out.status
        );
        return;
    }
    let cap = libc::rlimit {
        rlim_cur: 8 << 30,
        rlim_max: 8 << 30,
    };
    // SAFETY: setrlimit reads the struct passed by reference; lowering this (child) process's
    // own address-space limit affects nothing else.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &cap) }, 0);
    let n: usize = 1 << 40;
    let mut runs = 0;
    for limit in [Some(8u64 << 30), None] {
        let s = tessera::cpu_session();
        s.set_host_limit(limit);
        for one_chunk in [false, true] {
            for t in [
                s.zeros(&[n], DType::F32),
                s.ones(&[n], DType::F32),
                s.full(&[n], 2.5, DType::F32),
            ] {
                let t = if one_chunk {
                    t.with_chunks(&[n]).unwrap()
                } else {
                    t
                };
                let r = within(Duration::from_secs(60), move || {
                    t.execute().map(|a| a.shape().to_vec())
                });
                match r {
                    Err(Error::OutOfMemory {
                        tier: Tier::Host,
                        requested,
                        available,
                    }) => {
                        assert!(requested >= 4 << 40, "{requested}");
                        assert!(limit.is_none_or(|l| available == l), "{available}");
                    }
                    other => panic!("one chunk {one_chunk}, limit {limit:?}: {other:?}"),
                }
                runs += 1;
            }
        }
        // The session still runs.
        assert_eq!(
            s.ones(&[3], DType::F32)
                .sum(Axes::All, false)
                .unwrap()
                .item()
                .unwrap(),
            3.0
        );
    }
    println!("checked {runs} runs");
}

/// One chunk larger than host memory (the result is a scalar): refused before allocating.
/// Fusion is off so that the chunk is materialized (fused, `rand` feeds the sum's partial
/// without ever existing as a chunk, and the job fits).
#[test]
fn chunk_larger_than_host_memory_is_out_of_memory() {
    let s = tessera::cpu_session();
    s.set_fusion(false);
    s.set_host_limit(Some(1 << 30));
    let x = s
        .random(1)
        .rand(&[40_000, 40_000], DType::F32)
        .with_chunks(&[40_000])
        .unwrap();
    let r = x.sum(Axes::All, false).unwrap().execute();
    match r {
        Err(Error::OutOfMemory {
            tier: Tier::Host,
            requested,
            available,
        }) => {
            assert!(requested >= 6_400_000_000, "{requested}");
            assert_eq!(available, 1 << 30);
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
}

/// A job whose in-memory plan exceeds the host limit while its chunks are small runs on the
/// Scheduler (spilling) with the same bits as the in-memory run; under a generous limit it
/// stays in memory.
#[test]
fn plan_over_host_limit_runs_on_the_scheduler_same_bits() {
    let seed = seed();
    let rows = 1024; // y: 1024 x 512 f32 = 2 MiB, in 64 chunks of 32 KiB
    let want = reference_bits(seed, rows);
    let s = tessera::cpu_session();
    s.set_host_limit(Some(1 << 40));
    assert_eq!(two_pass(&s, seed, rows).item().unwrap().to_bits(), want);
    assert!(
        s.last_stats().memory.is_none(),
        "a fitting job stays in memory"
    );
    s.set_host_limit(Some(1 << 20));
    assert_eq!(two_pass(&s, seed, rows).item().unwrap().to_bits(), want);
    let m = s
        .last_stats()
        .memory
        .expect("a job over the host limit runs on the Scheduler");
    assert!(m.spills > 0, "{m:?}");
    let used: u64 = m
        .peak
        .iter()
        .filter(|p| p.0 != Tier::Disk)
        .map(|p| p.1)
        .sum();
    assert!(
        used <= 1 << 20,
        "memory tiers peaked at {used} bytes: {m:?}"
    );
}
