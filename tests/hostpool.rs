//! The host buffer pool as this test binary's global allocator: large buffers are reused (the
//! counters say so), the limit is honoured, and fused kernels whose outputs land in reused,
//! dirty buffers still compute every element (each output is checked against an f64
//! reference). One test function, so no other test allocates concurrently and the counters
//! are exact.

use tessera::hostpool::{self, POOL_MIN};
use tessera::{Axes, DType, HostArray};

#[global_allocator]
static ALLOC: tessera::PooledAlloc = tessera::PooledAlloc;

fn f32s(a: &HostArray) -> Vec<f32> {
    a.as_array::<f32>()
        .expect("f32 result")
        .iter()
        .copied()
        .collect()
}

#[test]
fn pooled_buffers_are_reused_and_results_stay_exact() {
    hostpool::set_limit(1 << 30);
    hostpool::release();
    let before = hostpool::stats();

    // A large buffer freed and requested again comes back from the pool, same address.
    let big = 64 << 20;
    let v = vec![7u8; big];
    let p = v.as_ptr() as usize;
    drop(v);
    assert_eq!(hostpool::stats().cached_bytes, big);
    let mut w: Vec<u8> = Vec::with_capacity(big);
    assert_eq!(
        w.as_ptr() as usize,
        p,
        "the pooled block is handed out again"
    );
    w.resize(big, 1);
    assert!(w.iter().all(|&b| b == 1));
    let s = hostpool::stats();
    assert_eq!(s.hits, before.hits + 1);
    assert_eq!(s.cached_bytes, 0);
    drop(w);

    // A much smaller request (below three quarters of the block) does not take it.
    let small: Vec<u8> = Vec::with_capacity(POOL_MIN);
    assert_ne!(small.as_ptr() as usize, p);
    drop(small);

    // The limit: a block larger than it goes back to the system at once.
    hostpool::set_limit(40 << 20);
    assert_eq!(
        hostpool::stats().cached_bytes,
        0,
        "lowering the limit releases"
    );
    drop(vec![0u8; 48 << 20]);
    assert_eq!(hostpool::stats().cached_bytes, 0);
    hostpool::set_limit(1 << 30);

    // Fused kernels writing into reused buffers: each run's output lands in the previous
    // run's (dirty) memory; every element must still be the kernel's.
    let s = tessera::cpu_session();
    let n = 12_000_001; // 48 MB of f32: pooled; odd, so blocks and sub-blocks end short
    let hits0 = hostpool::stats().hits;
    for (k, c) in [(1u64, 1.5f64), (2, -0.25), (3, 3.0)] {
        let x = s
            .random(k)
            .rand(&[n], DType::F32)
            .with_chunks(&[n])
            .unwrap();
        let xs = f32s(&x.execute().unwrap());
        let y = f32s(&((&x + c) * 2.0).execute().unwrap());
        assert_eq!(y.len(), n);
        for (i, (&a, &b)) in xs.iter().zip(&y).enumerate() {
            let want = ((a as f64 + c) * 2.0) as f32;
            assert_eq!(b, want, "run {k}, element {i}");
        }
    }
    assert!(
        hostpool::stats().hits > hits0,
        "later runs reuse earlier buffers"
    );

    // A reduction over a pooled input agrees with f64.
    let x = s
        .random(9)
        .rand(&[n], DType::F64)
        .with_chunks(&[n])
        .unwrap();
    let ref_sum: f64 = x
        .execute()
        .unwrap()
        .as_array::<f64>()
        .unwrap()
        .iter()
        .map(|v| (v + 1.0) * 2.0)
        .sum();
    let got = ((&x + 1.0) * 2.0)
        .sum(Axes::All, false)
        .unwrap()
        .item()
        .unwrap();
    assert!(
        (got - ref_sum).abs() <= 1e-9 * ref_sum.abs(),
        "{got} vs {ref_sum}"
    );

    // An out-of-core run caps the pool at a quarter of its host budget while it lasts: blocks
    // over the cap go back to the system, and the limit is restored after.
    let limit = hostpool::stats().limit_bytes;
    {
        let _cap = hostpool::cap(16 << 20);
        assert_eq!(hostpool::stats().limit_bytes, 16 << 20);
        drop(vec![1u8; 24 << 20]);
        assert!(
            hostpool::stats().cached_bytes <= 16 << 20,
            "a capped pool holds at most its cap"
        );
    }
    assert_eq!(hostpool::stats().limit_bytes, limit, "the cap is lifted");
    let s2 = tessera::cpu_session();
    s2.set_memory(Some(tessera::MemoryConfig {
        host_bytes: Some(64 << 20),
        device_bytes: Some(64 << 20),
        ..Default::default()
    }));
    let y = (s2
        .random(3)
        .rand(&[1 << 22], DType::F32)
        .with_chunks(&[1 << 18])
        .unwrap()
        * 2.0)
        .execute()
        .unwrap();
    assert_eq!(y.shape(), &[1 << 22]);
    assert!(s2.last_stats().memory.is_some(), "a scheduled run");
    assert!(
        hostpool::stats().cached_bytes <= limit,
        "the pool is back under its own limit after the run"
    );
    assert_eq!(
        hostpool::stats().limit_bytes,
        limit,
        "the run's cap is lifted"
    );

    hostpool::release();
    assert_eq!(hostpool::stats().cached_bytes, 0);
}
