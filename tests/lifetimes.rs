//! Graph lifetimes: nodes no live tensor can reach are dropped with their data; an executed
//! (materialized) tensor keeps its result, which later graphs read instead of recomputing.

use tessera::{cpu_session, Axes, DType, HostArray};

fn matmul_tasks(s: &tessera::Session) -> usize {
    s.last_stats()
        .per_op
        .iter()
        .filter(|(op, _)| op.contains("matmul") || op.contains("dot"))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn eager_loop_holds_only_live_tensors() {
    let s = cpu_session();
    s.set_eager(true);
    // 8 MB of f64; 2,000 eager ops: without dropping, the graph would hold 16 GB.
    let mut x = s.random(1).rand(&[1_000_000], DType::F64);
    for i in 0..2000 {
        x = (&x + 1.0).astype(DType::F64).unwrap();
        if i % 500 == 0 {
            assert!(
                s.held_bytes() <= 2 * 8_000_000,
                "held {} bytes",
                s.held_bytes()
            );
        }
    }
    assert!(
        s.held_bytes() <= 2 * 8_000_000,
        "held {} bytes",
        s.held_bytes()
    );
    assert!(
        s.graph_len() < 10,
        "graph holds {} live nodes",
        s.graph_len()
    );
    let v = x.sum(Axes::All, false).unwrap().item().unwrap();
    let base = s
        .random(1)
        .rand(&[1_000_000], DType::F64)
        .sum(Axes::All, false)
        .unwrap();
    let expected = base.item().unwrap() + 2000.0 * 1e6;
    assert!((v - expected).abs() < 1e-6 * expected, "{v} vs {expected}");
}

#[test]
fn dropped_tensors_leave_the_graph() {
    let s = cpu_session();
    let a = s.from_host(HostArray::zeros(DType::F32, &[1000, 100]));
    let before = s.graph_len();
    {
        let b = (&a + 1.0).exp().unwrap();
        let _c = (&b * 2.0).sum(Axes::All, false).unwrap();
        assert!(s.graph_len() >= before + 3);
    }
    assert_eq!(s.graph_len(), before, "temporaries were not dropped");
    drop(a);
    assert_eq!(s.graph_len(), 0);
    assert_eq!(s.held_bytes(), 0, "the constant's data was not freed");
}

#[test]
fn materialized_result_is_reused_not_recomputed() {
    let s = cpu_session();
    let a = s
        .random(3)
        .rand(&[300, 300], DType::F64)
        .with_chunks(&[100])
        .unwrap();
    let b = a.matmul(&a).unwrap();
    let kept = b.materialize().unwrap();
    assert!(matmul_tasks(&s) > 0, "stats: {:?}", s.last_stats().per_op);
    let total = (&b + 1.0).sum(Axes::All, false).unwrap().item().unwrap();
    assert_eq!(
        matmul_tasks(&s),
        0,
        "the product ran again: {:?}",
        s.last_stats().per_op
    );
    let HostArray::F64(k) = kept.as_ref() else {
        panic!("dtype")
    };
    let direct: f64 = k.iter().map(|v| v + 1.0).sum();
    assert!(
        (total - direct).abs() <= 1e-9 * direct.abs(),
        "{total} vs {direct}"
    );
    // Once the tensor goes, its kept data goes with it.
    let held = s.held_bytes();
    drop(b);
    assert!(s.held_bytes() < held);
}

#[test]
fn kept_results_are_charged_to_the_host_budget_and_spill() {
    // A 64 MiB host budget: kept results may hold 32 MiB in memory. Four kept results of
    // 16 MB each: the largest past that share go to disk and are read back when used.
    let spill = std::env::temp_dir().join(format!("tessera-kept-test-{}", std::process::id()));
    let s = tessera::cpu_session();
    s.set_memory(Some(tessera::MemoryConfig {
        host_bytes: Some(64 << 20),
        spill_dir: Some(spill.clone()),
        ..Default::default()
    }));
    let rng = s.random(21);
    let xs: Vec<tessera::Tensor> = (0..4)
        .map(|_| {
            rng.rand(&[2_000_000], DType::F64)
                .with_chunks(&[250_000])
                .unwrap()
        })
        .collect();
    let mut first = Vec::new();
    for x in &xs {
        let v = x.materialize().unwrap();
        first.push(v.as_ref().clone());
        assert!(
            s.kept_bytes() <= 32 << 20,
            "{} bytes kept in memory",
            s.kept_bytes()
        );
    }
    assert!(s.kept_bytes() > 0, "not everything spilled");
    let on_disk: usize = std::fs::read_dir(&spill).unwrap().count();
    assert!(on_disk > 0, "a spilled result has a run folder");
    // Every kept result gives its values back, spilled or not, and feeds later graphs
    // without recomputation from the random source (the draws are the same either way, so
    // compare with the first values).
    for (x, want) in xs.iter().zip(&first) {
        assert_eq!(&x.execute().unwrap(), want);
        assert!(x.is_materialized());
    }
    let total = xs[0]
        .add(&xs[1])
        .unwrap()
        .add(&xs[2])
        .unwrap()
        .add(&xs[3])
        .unwrap();
    let got = total.sum(Axes::All, false).unwrap().item().unwrap();
    let want: f64 = (0..2_000_000)
        .map(|i| {
            first
                .iter()
                .map(|a| match a {
                    tessera::HostArray::F64(v) => v.as_slice().unwrap()[i],
                    _ => unreachable!(),
                })
                .sum::<f64>()
        })
        .sum();
    assert!((got - want).abs() <= 1e-9 * want.abs(), "{got} vs {want}");
    let per_op = s.last_stats().per_op;
    assert!(
        per_op.iter().any(|(op, _)| op == "external"),
        "spilled results are read back: {per_op:?}"
    );
    let (cg, _) = s.plan(&[&total]).unwrap();
    assert!(
        cg.nodes.iter().all(|n| match &n.op {
            tessera::chunk::ChunkOp::Fused { ir, .. } => !ir
                .insts
                .iter()
                .any(|i| matches!(i.kind, tessera::ir::InstKind::Random { .. })),
            op => op.name() != "random",
        }),
        "nothing is drawn again"
    );
    // The spill folders go with the tensors (and the plan that read them).
    drop(cg);
    drop(total);
    drop(xs);
    let left = std::fs::read_dir(&spill)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(left, 0, "spill folders left behind");
    let _ = std::fs::remove_dir_all(&spill);
}
