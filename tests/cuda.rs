//! The conformance suite and the out-of-core suite on the CUDA backend, plus CUDA-specific
//! checks (split reductions, virtual devices, cuBLAS against the CPU). Without a CUDA driver
//! or GPU every test prints `skipped: cuda: <reason>` and passes; on a GPU machine they run
//! for real (see README: "GPU runs").
// Test tables spell their row types out in place.
#![allow(clippy::type_complexity)]

mod conformance;
mod ooc;

use std::sync::{Arc, OnceLock};
use tessera::{Axes, Backend, CudaBackend, CudaOptions, DType, Session};

/// One backend (one context per GPU, one kernel cache) shared by every test of this binary.
fn backend() -> Result<Arc<CudaBackend>, String> {
    static B: OnceLock<Result<Arc<CudaBackend>, String>> = OnceLock::new();
    B.get_or_init(|| CudaBackend::new().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
}

/// A backend splitting every GPU into `n` devices.
fn virtual_backend(n: usize) -> Result<Arc<CudaBackend>, String> {
    CudaBackend::with_options(CudaOptions {
        virtual_devices: n,
        ..CudaOptions::from_env()
    })
    .map(Arc::new)
    .map_err(|e| e.to_string())
}

fn cuda_session() -> Result<Session, String> {
    backend().map(|b| Session::new(b))
}

conformance_suite!(cuda, super::cuda_session);
// One GPU gives the four-device case four virtual devices on it.
ooc_suite!(cuda_ooc, |n| {
    let b = if n == 1 {
        super::backend()
    } else {
        super::virtual_backend(n)
    };
    b.map_err(|e| println!("skipped: cuda: {e}"))
        .ok()
        .map(|b| b as std::sync::Arc<dyn tessera::Backend>)
});

fn open() -> Option<Session> {
    conformance::open("cuda", cuda_session)
}

fn fresh_seed() -> u64 {
    let s = rand::random::<u64>();
    println!("seed {s}");
    s
}

/// A whole-chunk sum of many elements runs as a split reduction (many blocks, combined
/// partials); it must agree with the CPU on the same random input.
#[test]
fn split_reductions_agree_with_the_cpu() {
    let Some(s) = open() else { return };
    let cpu = tessera::cpu_session();
    let seed = fresh_seed();
    for (n, op) in [
        (3_000_000usize, "sum"),
        (1 << 22, "mean"),
        (2_000_000, "std"),
        (1 << 21, "max"),
    ] {
        let run = |s: &Session| -> f64 {
            let x = s.random(seed).normal(1.0, 3.0, &[n], DType::F32);
            let y = match op {
                "sum" => x.sum(Axes::All, false),
                "mean" => x.mean(Axes::All, false),
                "std" => x.std(Axes::All, false, 0),
                _ => x.max(Axes::All, false),
            }
            .unwrap();
            y.item().unwrap()
        };
        let (got, want) = (run(&s), run(&cpu));
        let tol = 1e-9 * (n as f64) * 3.0 + 1e-6;
        assert!(
            (got - want).abs() <= tol * want.abs().max(1.0),
            "{op} over {n}: cuda {got} cpu {want}"
        );
    }
}

/// Float32 matrix products on cuBLAS (TF32 off) agree with float64 on the CPU to FP32
/// accuracy, with and without batch axes.
#[test]
fn cublas_sgemm_matches_f64() {
    let Some(s) = open() else { return };
    assert!(!backend().unwrap().options().tf32 || std::env::var("CUPY_TF32").is_ok());
    let cpu = tessera::cpu_session();
    let seed = fresh_seed();
    for (ashape, bshape) in [
        (vec![300usize, 200], vec![200usize, 170]),
        (vec![4, 65, 33], vec![4, 33, 47]),
        (vec![3, 40, 20], vec![20, 9]),
    ] {
        let prod = |s: &Session, d: DType| {
            let a = s.random(seed).normal(0.0, 1.0, &ashape, d);
            let b = s.random(seed + 1).normal(0.0, 1.0, &bshape, d);
            a.matmul(&b)
                .unwrap()
                .astype(DType::F64)
                .unwrap()
                .execute()
                .unwrap()
        };
        let got = prod(&s, DType::F32);
        let want = prod(&cpu, DType::F64);
        let (g, w) = (
            got.as_array::<f64>().unwrap(),
            want.as_array::<f64>().unwrap(),
        );
        let k = ashape[ashape.len() - 1] as f64;
        for (x, y) in g.iter().zip(w.iter()) {
            assert!(
                (x - y).abs() <= 2e-6 * k.sqrt() * 4.0,
                "{ashape:?} @ {bshape:?}: {x} vs {y}"
            );
        }
    }
}

/// Two virtual devices on one GPU: placement uses both and copies between them, results as on
/// the CPU.
#[test]
fn two_virtual_devices_split_the_work() {
    let b = match virtual_backend(2) {
        Ok(b) => b,
        Err(e) => {
            println!("skipped: cuda: {e}");
            return;
        }
    };
    assert_eq!(b.devices().len(), 2 * b.gpu_count());
    let s = Session::new(b);
    let cpu = tessera::cpu_session();
    let seed = fresh_seed();
    let run = |s: &Session| {
        let x = s
            .random(seed)
            .rand(&[4096, 512], DType::F32)
            .with_chunks(&[512, 512])
            .unwrap();
        let y = (&x * 2.0 + 1.0).sum(Axes::Some(vec![1]), false).unwrap();
        y.execute().unwrap()
    };
    let got = run(&s);
    let want = run(&cpu);
    let stats = s.last_stats();
    let m = stats.memory.as_ref().expect("scheduled run");
    assert!(
        m.kernels.iter().all(|&k| k > 0),
        "both devices ran kernels: {:?}",
        m.kernels
    );
    let (g, w) = (got.as_array::<f64>(), want.as_array::<f64>());
    match (g, w) {
        (Some(g), Some(w)) => {
            for (x, y) in g.iter().zip(w.iter()) {
                assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0));
            }
        }
        _ => {
            let (g, w) = (
                got.as_array::<f32>().unwrap(),
                want.as_array::<f32>().unwrap(),
            );
            for (x, y) in g.iter().zip(w.iter()) {
                assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
    }
}
