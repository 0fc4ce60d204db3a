//! Fused-chain micro benchmarks on the CPU backend (criterion), fused and unfused:
//! `(x+1)*2` over 2e8 f32 with a fresh output, `((x+1)*2).sum()`, Monte Carlo pi with 1e8
//! points. NumPy's figures for the same workloads come from `tessera bench` (same run).
//! Run with `cargo bench --bench fused`; `TESSERA_BENCH_N` scales the vector sizes. The
//! `philox` group times the random source alone: one block's counters (the best path this CPU
//! has: AVX-512, AVX2 or portable), as words and as uniform f32 values.

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

fn philox(c: &mut Criterion) {
    let mut g = c.benchmark_group("philox");
    let counters = 1024;
    let mut words = vec![[0u32; 4]; counters];
    let mut first = 0u64;
    g.throughput(Throughput::Elements(counters as u64));
    g.bench_function(format!("draw_many/{counters}_counters"), |b| {
        b.iter(|| {
            first = first.wrapping_add(counters as u64);
            tessera::philox::draw_many(7, 3, first, &mut words);
            words[counters - 1][0]
        })
    });
    let mut vals = vec![0f32; 4 * counters];
    g.throughput(Throughput::Elements(counters as u64));
    g.bench_function(format!("uniform_f32/{counters}_counters"), |b| {
        b.iter(|| {
            first = first.wrapping_add(4 * counters as u64);
            tessera::philox::uniform_f32_into(7, 3, first, 0.0, 1.0, &mut vals);
            vals[4 * counters - 1]
        })
    });
    g.finish();
}

criterion_group!(benches, bench, philox);
criterion_main!(benches);
