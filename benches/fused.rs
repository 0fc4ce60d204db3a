//! Fused-chain micro benchmarks on the CPU backend (criterion), fused and unfused:
//! `(x+1)*2` over 2e8 f32 with a fresh output, `((x+1)*2).sum()`, Monte Carlo pi with 1e8
//! points. NumPy's figures for the same workloads come from `tessera bench` (same run).
//! Run with `cargo bench --bench fused`; `TESSERA_BENCH_N` scales the vector sizes.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tessera::{Axes, DType};

fn n() -> usize {
    std::env::var("TESSERA_BENCH_N")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(200_000_000, |v| v as usize)
}

fn bench(c: &mut Criterion) {
    let n = n();
    let mut g = c.benchmark_group("fused");
    g.sample_size(10);
    for fusion in [true, false] {
        let s = tessera::cpu_session();
        s.set_fusion(fusion);
        let tag = if fusion { "fused" } else { "unfused" };
        let x = s.from_host(s.random(1).rand(&[n], DType::F32).execute().unwrap());
        let x_one = x.with_chunks(&[n]).unwrap();
        g.throughput(Throughput::Bytes(8 * n as u64));
        g.bench_function(format!("add_mul/{tag}/{n}"), |b| {
            b.iter(|| ((&x_one + 1.0) * 2.0).execute().unwrap())
        });
        g.throughput(Throughput::Bytes(4 * n as u64));
        g.bench_function(format!("add_mul_sum/{tag}/{n}"), |b| {
            b.iter(|| {
                ((&x + 1.0) * 2.0)
                    .sum(Axes::All, false)
                    .unwrap()
                    .item()
                    .unwrap()
            })
        });
        let points = n / 2;
        g.throughput(Throughput::Elements(points as u64));
        g.bench_function(format!("pi/{tag}/{points}"), |b| {
            b.iter(|| tessera::workloads::pi(&s, points, 1 << 22, 7).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
