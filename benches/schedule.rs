//! Planning overhead of the Scheduler (criterion): order, placement and the memory simulation
//! of a 1,000,000-chunk elementwise graph and of a matmul over a 100 x 100 grid of chunks
//! (10,000 chunks per operand, 1,000,000 chunk products), on 1 and 4 devices, with budgets that
//! fit and with a device budget that forces eviction. The graphs are tiled once, outside the
//! timing. Run with `cargo bench --bench schedule`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Instant;
use tessera::schedule::{plan, Budgets};
use tessera::{DType, Order, Session};

fn budgets(devices: usize, device: u64) -> Budgets {
    Budgets {
        device: vec![device; devices],
        host: 1 << 40,
        disk: 1 << 44,
    }
}

fn chunks() -> usize {
    std::env::var("TESSERA_PLAN_CHUNKS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(1_000_000, |v| v as usize)
}

fn bench(c: &mut Criterion) {
    let chunks = chunks();
    let s = tessera::cpu_session();
    // Unfused, so each chunk is a chain of tasks: random, add, multiply.
    s.set_fusion(false);
    let x = s
        .random(1)
        .rand(&[chunks * 1000], DType::F32)
        .with_chunks(&[1000])
        .unwrap();
    let y = (&x + 1.0) * 2.0;
    let t0 = Instant::now();
    let (ew, ew_tiled) = s.plan(&[&y]).unwrap();
    println!(
        "elementwise: {} output chunks, {} chunk nodes, tiled in {:.2} s",
        ew_tiled[0].chunks.len(),
        ew.len(),
        t0.elapsed().as_secs_f64()
    );
    let ew_out = ew_tiled[0].chunks.clone();

    let s2 = Session::new(std::sync::Arc::new(tessera::CpuBackend::new()));
    let a = s2
        .random(2)
        .rand(&[10_000, 10_000], DType::F32)
        .with_chunks(&[100])
        .unwrap();
    let p = a.matmul(&a).unwrap();
    let t0 = Instant::now();
    let (mm, mm_tiled) = s2.plan(&[&p]).unwrap();
    println!(
        "matmul: {} output chunks, {} chunk nodes, tiled in {:.2} s",
        mm_tiled[0].chunks.len(),
        mm.len(),
        t0.elapsed().as_secs_f64()
    );
    let mm_out = mm_tiled[0].chunks.clone();

    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    for devices in [1, 4] {
        g.bench_function(format!("elementwise_1e6_chunks/{devices}dev"), |b| {
            b.iter(|| plan(&ew, &ew_out, budgets(devices, 1 << 40), Order::DepthFirst).unwrap())
        });
        g.bench_function(format!("matmul_100x100_chunks/{devices}dev"), |b| {
            b.iter(|| plan(&mm, &mm_out, budgets(devices, 1 << 40), Order::DepthFirst).unwrap())
        });
    }
    // A device budget of 64 chunks: eviction to host on every step.
    g.bench_function("elementwise_1e6_chunks/1dev_evicting", |b| {
        b.iter(|| plan(&ew, &ew_out, budgets(1, 64 * 4000), Order::DepthFirst).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
