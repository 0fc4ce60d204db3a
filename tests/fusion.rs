//! Fusion: kernel counts per chunk, no materialized random arrays, and results identical to the
//! unfused path (fusion switched off).

use tessera::chunk::ChunkOp;
use tessera::{Axes, DType, Session};

fn count(cg: &tessera::chunk::ChunkGraph, name: &str) -> usize {
    cg.nodes.iter().filter(|n| n.op.name() == name).count()
}

fn both<T>(f: impl Fn(&Session) -> T) -> (T, T) {
    let s = tessera::cpu_session();
    let fused = f(&s);
    s.set_fusion(false);
    (fused, f(&s))
}

#[test]
fn add_mul_sum_is_one_kernel_per_chunk_plus_the_combine() {
    let s = tessera::cpu_session();
    let x = s
        .random(1)
        .rand(&[64_000], DType::F32)
        .with_chunks(&[4000])
        .unwrap();
    let t = ((&x + 1.0) * 2.0).sum(Axes::All, false).unwrap();
    let (cg, _) = s.plan(&[&t]).unwrap();
    assert_eq!(count(&cg, "fused"), 16, "one kernel per chunk");
    assert_eq!(count(&cg, "reduce_combine"), 4 + 1);
    assert_eq!(count(&cg, "reduce_final"), 1);
    assert_eq!(
        cg.len(),
        16 + 5 + 1,
        "nothing else: no separate add, mul or random tasks"
    );
    for n in &cg.nodes {
        if let ChunkOp::Fused { ir, .. } = &n.op {
            assert!(ir.reduce.is_some(), "the sum is the kernel's tail");
            assert!(
                ir.inputs.is_empty(),
                "the random source is generated inside the kernel"
            );
        }
    }
}

#[test]
fn monte_carlo_pi_materializes_no_random_array() {
    let s = tessera::cpu_session();
    let n = 1_000_000;
    let rng = s.random(9);
    let x = rng.rand(&[n], DType::F32).with_chunks(&[100_000]).unwrap();
    let y = rng.rand(&[n], DType::F32).with_chunks(&[100_000]).unwrap();
    let inside = (&x * &x + &y * &y)
        .lt(1.0)
        .unwrap()
        .sum(Axes::All, false)
        .unwrap();
    let (cg, _) = s.plan(&[&inside]).unwrap();
    let kernels: Vec<_> = cg.nodes.iter().filter(|n| n.op.name() == "fused").collect();
    assert_eq!(kernels.len(), 10, "one kernel per chunk");
    assert_eq!(count(&cg, "random"), 0);
    for k in kernels {
        let ChunkOp::Fused { ir, .. } = &k.op else {
            unreachable!()
        };
        assert!(
            k.inputs.is_empty() && ir.inputs.is_empty(),
            "no loads: randoms drawn in-kernel"
        );
        let randoms = ir
            .insts
            .iter()
            .filter(|i| matches!(i.kind, tessera::ir::InstKind::Random { .. }))
            .count();
        assert_eq!(
            randoms, 2,
            "x and y, each drawn once (x*x shares one value)"
        );
    }
}

#[test]
fn a_value_read_twice_is_stored_once() {
    let s = tessera::cpu_session();
    let x = s
        .random(2)
        .rand(&[1000], DType::F64)
        .with_chunks(&[250])
        .unwrap();
    let shared = x.exp().unwrap();
    let a = (&shared + 1.0).sum(Axes::All, false).unwrap();
    let b = (&shared * 3.0).max(Axes::All, false).unwrap();
    let (cg, _) = s.plan(&[&a, &b]).unwrap();
    // exp is stored (one kernel per chunk) and loaded by the two reduction kernels.
    assert_eq!(count(&cg, "fused"), 4 * 3);
}

#[test]
fn fused_results_are_bit_identical_to_unfused() {
    let seed: u64 = rand::random();
    let (f, u) = both(|s| {
        let rng = s.random(seed);
        let x = rng
            .randn(&[37, 53], DType::F32)
            .with_chunks(&[10, 16])
            .unwrap();
        let y = rng
            .uniform(-2.0, 2.0, &[53], DType::F64)
            .with_chunks(&[7])
            .unwrap();
        let z = ((&x * 2.0 + &y).abs().unwrap().sqrt().unwrap() - 1.5)
            .clip(-1.0, 1.0)
            .unwrap();
        let w = z.gt(0.0).unwrap().where_(&z, &y).unwrap();
        let outs = [
            w.clone(),
            w.sum(Axes::All, false).unwrap(),
            w.mean(1, true).unwrap(),
            w.var(0, false, 1).unwrap(),
            w.std(Axes::All, false, 0).unwrap(),
            w.min(0, false).unwrap(),
            w.argmax(Some(1)).unwrap(),
            w.argmin(None).unwrap(),
            w.astype(DType::I32).unwrap().prod(0, false).unwrap(),
            w.gt(0.5).unwrap().any(1, false).unwrap(),
        ];
        outs.iter()
            .map(|t| t.execute().unwrap())
            .collect::<Vec<_>>()
    });
    for (i, (a, b)) in f.iter().zip(&u).enumerate() {
        assert_eq!(
            a, b,
            "output {i} differs between fused and unfused (seed {seed})"
        );
    }
}

#[test]
fn random_values_are_identical_fused_unfused_and_across_chunkings() {
    let seed: u64 = rand::random();
    let s = tessera::cpu_session();
    let draw = |chunk: &[usize], fusion: bool| {
        s.set_fusion(fusion);
        let r = s.random(seed);
        let a = r.rand(&[45, 31], DType::F32).with_chunks(chunk).unwrap();
        let b = r
            .normal(1.0, 3.0, &[45, 31], DType::F64)
            .with_chunks(chunk)
            .unwrap();
        let c = r
            .randint(-5, 9, &[45, 31], DType::I32)
            .unwrap()
            .with_chunks(chunk)
            .unwrap();
        let d = r.randn(&[45, 31], DType::F32).with_chunks(chunk).unwrap();
        // `+ 0` keeps the draws inside a kernel when fusion is on.
        [&a + 0.0, &b + 0.0, &c + 0, &d + 0.0]
            .iter()
            .map(|t| t.execute().unwrap())
            .collect::<Vec<_>>()
    };
    let reference = draw(&[45, 31], false);
    for (chunk, fusion) in [
        (vec![7, 5], true),
        (vec![1, 31], true),
        (vec![16, 16], false),
        (vec![45, 31], true),
    ] {
        assert_eq!(
            draw(&chunk, fusion),
            reference,
            "chunk {chunk:?} fusion {fusion} (seed {seed})"
        );
    }
}

#[test]
fn kernel_limits_cut_long_chains() {
    let s = tessera::cpu_session();
    let x = s.random(4).rand(&[100], DType::F64);
    let mut y = x.clone();
    for i in 0..100 {
        y = (&y + i as f64).sin().unwrap();
    }
    let (cg, _) = s.plan(&[&y]).unwrap();
    for n in &cg.nodes {
        if let ChunkOp::Fused { ir, .. } = &n.op {
            assert!(ir.insts.len() <= tessera::fuse::MAX_INSTS);
        }
    }
    assert!(
        count(&cg, "fused") > 1,
        "a 200-op chain cannot be one kernel"
    );
    s.set_fusion(false);
    let unfused = y.execute().unwrap();
    s.set_fusion(true);
    assert_eq!(y.execute().unwrap(), unfused);
}

#[test]
fn monte_carlo_pi_holds_no_array_in_memory() {
    let s = tessera::cpu_session();
    let n = 20_000_000;
    let pi = tessera::workloads::pi(&s, n, 1 << 22, 3).unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.01, "{pi}");
    let stats = s.last_stats();
    // 20M points would be 160 MB of f32 randoms if materialized; fused, only partials live.
    assert!(
        stats.peak_bytes < 4096,
        "peak live chunk bytes {}",
        stats.peak_bytes
    );
}

#[test]
fn tiling_fuses_chains_so_tiny_chunks_cost_one_node_each() {
    // A million tiny chunks must not hold one chunk node per op and chunk: the Tiler fuses the
    // chain while tiling, so the graph it hands on already has one kernel per chunk.
    let s = tessera::cpu_session();
    let n = 20_000;
    let x = s
        .random(3)
        .rand(&[n], DType::F32)
        .with_chunks(&[1])
        .unwrap();
    let t = ((&x + 1.0) * 2.0).sum(Axes::All, false).unwrap();
    let got = t.item().unwrap();
    let stats = s.last_stats();
    // n kernels, the combine tree (fan-in 4; a lone leftover is passed up, not combined:
    // 5000 + 1250 + 312 + 78 + 20 + 5 + 2 + 1 nodes), the final.
    let combines = 5000 + 1250 + 312 + 78 + 20 + 5 + 2 + 1;
    assert_eq!(stats.stages.chunks, n + combines + 1, "{:?}", stats.per_op);
    assert_eq!(stats.tasks, n + combines + 1);
    // The same value as op by op (bit for bit: the same kernels in the same order).
    s.set_fusion(false);
    assert_eq!(t.item().unwrap(), got);
    s.set_fusion(true);
    let draws = x.to_array::<f32>().unwrap();
    let want: f64 = draws.iter().map(|&v| ((v + 1.0) * 2.0) as f64).sum();
    // The sum of float32 is float32 (accumulated in f64, rounded once at the end).
    assert!((got - want).abs() <= 1e-7 * want.abs(), "{got} vs {want}");
}

#[test]
fn tiling_fusion_reads_user_data_in_place_across_uneven_chunks() {
    // A constant chunked one way, a draw another: the union grid mixes chunks read in place
    // (bound, with per-chunk offsets) and assembled ones (loaded), in one fused group.
    let s = tessera::cpu_session();
    let data: Vec<f64> = (0..1000).map(|i| (i as f64).sin()).collect();
    let c = s
        .from_vec(data.clone(), &[1000])
        .unwrap()
        .with_chunks(&[300])
        .unwrap();
    let r = s
        .random(5)
        .rand(&[1000], DType::F64)
        .with_chunks(&[128])
        .unwrap();
    let y = ((&c * 2.0) + &r).exp().unwrap();
    let total = y.sum(Axes::All, false).unwrap();
    let (fused_y, fused_total) = (y.to_array::<f64>().unwrap(), total.item().unwrap());
    s.set_fusion(false);
    assert_eq!(y.to_array::<f64>().unwrap(), fused_y);
    assert_eq!(total.item().unwrap(), fused_total);
    let rv = r.to_array::<f64>().unwrap();
    for (i, &v) in fused_y.iter().enumerate() {
        let want = (data[i] * 2.0 + rv[i]).exp();
        assert!((v - want).abs() <= 1e-12 * want.abs(), "{i}: {v} vs {want}");
    }
}
