//! The conformance suite on the wgpu backend (lavapipe in CI; a real GPU where one exists), and
//! random draws bit-identical to the CPU backend's. Without an adapter every test prints
//! `skipped: wgpu: <reason>` and passes.
//!
//! The suite runs with `accept_unsupported`: a case may end with the backend's own
//! `Error::Unsupported` for what the README's dtype matrix documents as missing on wgpu (int64
//! arithmetic, float64 transcendentals); it prints `unsupported: ...`.
// Test tables spell their row types out in place.
#![allow(clippy::type_complexity)]

mod conformance;
mod ooc;

use std::sync::{Arc, OnceLock};
use tessera::{DType, Error, Session, WgpuBackend, WgpuOptions};

/// One backend (one device, one pipeline cache) shared by every test of this binary.
fn backend() -> Result<Arc<WgpuBackend>, String> {
    static B: OnceLock<Result<Arc<WgpuBackend>, String>> = OnceLock::new();
    B.get_or_init(|| WgpuBackend::new().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
}

fn wgpu_session() -> Result<Session, String> {
    backend().map(|b| Session::new(b))
}

conformance_suite!(wgpu, super::wgpu_session, accept_unsupported);
// The out-of-core suite on the one adapter (the four-device case needs four and skips).
ooc_suite!(wgpu_ooc, |n| if n == 1 {
    super::backend()
        .map_err(|e| println!("skipped: wgpu: {e}"))
        .ok()
        .map(|b| b as std::sync::Arc<dyn tessera::Backend>)
} else {
    None
});

/// Uniform and integer draws are bit-identical to the CPU's whatever the chunking (the same
/// Philox4x32-10 bits and the same conversions); normal draws go through WGSL's log/cos/sqrt,
/// which are not correctly rounded, so they match within a few ulps.
#[test]
fn random_bit_identical_to_cpu() {
    let Some(s) = conformance::open("wgpu", wgpu_session) else {
        return;
    };
    let cpu = tessera::cpu_session();
    let shape = [37usize, 53];
    for chunks in [None, Some([10usize, 17])] {
        let draws: Vec<(&str, Box<dyn Fn(&Session) -> tessera::Tensor>)> = vec![
            (
                "rand f32",
                Box::new(|s| s.random(11).rand(&shape, DType::F32)),
            ),
            (
                "rand f64",
                Box::new(|s| s.random(12).rand(&shape, DType::F64)),
            ),
            (
                "uniform f32",
                Box::new(|s| s.random(13).uniform(-2.0, 5.0, &shape, DType::F32)),
            ),
            (
                "randint i32",
                Box::new(|s| s.random(14).randint(-7, 1000, &shape, DType::I32).unwrap()),
            ),
        ];
        for (name, draw) in &draws {
            let run = |s: &Session| {
                let t = draw(s);
                let t = match chunks {
                    Some(c) => t.with_chunks(&c).unwrap(),
                    None => t,
                };
                t.execute()
            };
            let want = run(&cpu).unwrap();
            match run(&s) {
                Ok(got) => assert_eq!(got, want, "{name} (chunks {chunks:?}) differs from the CPU"),
                Err(e) if !backend().unwrap().has_f64() && name.contains("f64") => {
                    println!("unsupported: {name}: {e}")
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        let normal = |s: &Session| s.random(15).randn(&shape, DType::F32).execute();
        let (want, got) = (normal(&cpu).unwrap(), normal(&s).unwrap());
        let (w, g) = (want.to_f64(), got.to_f64());
        for (a, b) in g.iter().zip(w.iter()) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "randn: {a} vs {b}"
            );
        }
    }
}

/// The backend reports its adapters with limits, features and the chunk limit.
#[test]
fn devices_report_limits() {
    let Ok(b) = backend() else {
        println!("skipped: wgpu: no adapter");
        return;
    };
    use tessera::Backend;
    let devs = b.devices();
    assert!(!devs.is_empty());
    let sel = devs
        .iter()
        .find(|d| {
            d.details
                .iter()
                .any(|(k, v)| k == "selected" && v == "true")
        })
        .expect("one selected adapter");
    assert!(sel
        .details
        .iter()
        .any(|(k, _)| k == "max_storage_buffer_binding_size"));
    assert!(b.max_chunk_bytes() > 0);
}

/// No matching adapter is a typed error, not a panic.
#[test]
fn no_adapter_is_a_typed_error() {
    let r = WgpuBackend::with_options(WgpuOptions {
        backends: None,
        adapter: Some("no adapter is called this".into()),
    });
    assert!(matches!(r, Err(Error::BackendUnavailable { .. })), "{r:?}");
    let r = WgpuBackend::with_options(WgpuOptions {
        backends: Some(tessera_wgpu_backends_none()),
        adapter: None,
    });
    assert!(matches!(r, Err(Error::BackendUnavailable { .. })), "{r:?}");
}

fn tessera_wgpu_backends_none() -> tessera::wgpu_crate::Backends {
    tessera::wgpu_crate::Backends::empty()
}

/// A chunk larger than the adapter's storage binding limit is `OutOfMemory` naming the limit.
#[test]
fn oversized_chunk_is_out_of_memory() {
    let Ok(b) = backend() else {
        println!("skipped: wgpu: no adapter");
        return;
    };
    use tessera::chunk::{ChunkNode, ChunkOp};
    use tessera::Backend;
    let limit = b.max_chunk_bytes();
    let node = ChunkNode {
        op: ChunkOp::Full {
            value: tessera::Scalar::Float(1.0),
        },
        inputs: Default::default(),
        shape: [(limit / 4 + 1) as usize].into_iter().collect(),
        dtype: DType::F32,
    };
    let r = b.run_chunk(&node, &[]);
    assert!(
        matches!(r, Err(Error::OutOfMemory { available, .. }) if available == limit),
        "{:?}",
        r.map(|d| d.len())
    );
}

/// The GPU lane sort (bitonic network, float32 and int32) gives the CPU backend's bits: stable,
/// NaN last (first descending), -0.0 equal to 0.0, lanes shorter and longer than a workgroup's
/// 512 entries, along the last axis and another, values and positions; and it ran on the GPU
/// (its three pipelines were compiled).
#[test]
fn gpu_sort_matches_cpu_bitwise() {
    use tessera::chunk::{ChunkNode, ChunkOp};
    use tessera::{Backend, CpuBackend, HostArray};
    let gpu = match WgpuBackend::new() {
        Ok(b) => b,
        Err(e) => {
            println!("skipped: wgpu: {e}");
            return;
        }
    };
    let cpu = CpuBackend::new();
    let before = gpu.pipelines_cached();
    let special = [
        f32::NAN,
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1.5,
        1.5,
        -2.0,
    ];
    let f32_data = |n: usize, seed: u32| -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 7;
                if h.is_multiple_of(11) {
                    special[(h as usize / 11) % special.len()]
                } else {
                    ((h % 2000) as f32 - 1000.0) * 0.25
                }
            })
            .collect()
    };
    let bits = |a: &HostArray| -> Vec<u64> {
        match a {
            HostArray::F32(x) => x.iter().map(|v| v.to_bits() as u64).collect(),
            HostArray::I32(x) => x.iter().map(|&v| v as u32 as u64).collect(),
            HostArray::I64(x) => x.iter().map(|&v| v as u64).collect(),
            other => panic!("unexpected {:?}", other.dtype()),
        }
    };
    let mut cases = 0;
    for (shape, axis) in [
        (vec![3usize, 3000], 1usize),
        (vec![700, 5], 0),
        (vec![40, 37], 1),
        (vec![2, 2], 1),
    ] {
        let n: usize = shape.iter().product();
        let inputs = [
            HostArray::F32(
                ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), f32_data(n, 7)).unwrap(),
            ),
            HostArray::I32(
                ndarray::ArrayD::from_shape_vec(
                    ndarray::IxDyn(&shape),
                    (0..n as i64)
                        .map(|i| match i % 13 {
                            0 => i32::MIN,
                            1 => i32::MAX,
                            _ => ((i * 7919) % 301 - 150) as i32,
                        })
                        .collect(),
                )
                .unwrap(),
            ),
        ];
        for x in &inputs {
            for descending in [false, true] {
                for arg in [false, true] {
                    let node = ChunkNode {
                        op: ChunkOp::Sort {
                            axis,
                            descending,
                            arg,
                        },
                        inputs: Default::default(),
                        shape: shape.iter().copied().collect(),
                        dtype: if arg { DType::I64 } else { x.dtype() },
                    };
                    let data = vec![x.clone()];
                    let want = cpu.run_chunk(&node, &[&data]).unwrap();
                    let got = gpu.run_chunk(&node, &[&data]).unwrap();
                    assert_eq!(
                        bits(&got[0]),
                        bits(&want[0]),
                        "{:?} {shape:?} axis {axis} descending {descending} arg {arg}",
                        x.dtype()
                    );
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 32);
    assert_eq!(
        gpu.pipelines_cached() - before,
        3,
        "the sort ran on the GPU (sort_init, sort_local, sort_step compiled)"
    );
}
