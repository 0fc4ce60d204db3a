//! A remote worker's task (what a Ray worker runs) with its argument copied into the worker's
//! own array, as workers did before, against read in place where it lies (the object store's
//! shared memory): a fused `x * 2 + 1` over one 64 MiB f32 chunk. Run with
//! `cargo bench --bench remote`; `TESSERA_BENCH_N` sets the elements.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;
use tessera::external::ExternalArray;
use tessera::remote::{run_task, run_task_shared, ArgField, Held, RemotePlan};
use tessera::DType;

fn bench(c: &mut Criterion) {
    let n = std::env::var("TESSERA_BENCH_N")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(16 << 20, |v| v as usize);
    let s = tessera::cpu_session();
    let data = s.random(1).rand(&[n], DType::F32).execute().unwrap();
    let x = s.from_host(data).with_chunks(&[n]).unwrap();
    let y = x * 2.0 + 1.0;
    let (cg, tiled) = s.plan(&[&y]).unwrap();
    let plan = RemotePlan::new(&cg, &tiled[0].chunks, 0).unwrap();
    let g = plan
        .groups()
        .iter()
        .position(|g| !g.on_driver && g.inputs.len() == 1)
        .expect("a task reading the data");
    let arg = plan.run_on_driver(plan.groups()[g].inputs[0], &[]).unwrap();
    let spec = plan.spec(g).unwrap();
    let backend = s.backend().clone();
    let shared = Arc::new(Held(arg[0].clone())) as Arc<dyn ExternalArray>;
    let mut gr = c.benchmark_group("worker_task");
    gr.sample_size(20);
    gr.throughput(Throughput::Bytes(8 * n as u64));
    gr.bench_function(format!("copied/{n}"), |b| {
        b.iter(|| run_task(&spec, backend.as_ref(), vec![arg.clone()]).unwrap())
    });
    gr.bench_function(format!("in_place/{n}"), |b| {
        b.iter(|| {
            run_task_shared(
                &spec,
                backend.as_ref(),
                vec![vec![ArgField::Shared(shared.clone())]],
            )
            .unwrap()
        })
    });
    gr.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
