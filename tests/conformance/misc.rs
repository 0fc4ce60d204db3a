//! Zero-size arrays, eager mode, graph serialization.

use super::reference as r;
use super::{values, Chunking, Cx, Dom, Tol};
use ndarray::{ArrayD, IxDyn};
use tessera::op::Op;
use tessera::{s, DType, Graph, HostArray, Result, Session, Tensor};

use DType::{Bool, F32, F64, I32, I64};

fn empty(shape: &[usize], dt: DType) -> HostArray {
    super::to_host(&ArrayD::zeros(IxDyn(shape)), dt)
}

fn full(shape: &[usize], v: f64) -> ArrayD<f64> {
    ArrayD::from_elem(IxDyn(shape), v)
}

/// Reductions of (0, 3) arrays as numpy: sums are zeros, means NaN, min/max over the
/// non-empty axis give empty results.
pub fn zero_size_reductions(cx: &mut Cx) -> Result<()> {
    let x = empty(&[0, 3], F64);
    let nan = f64::NAN;
    type Build = fn(&[Tensor]) -> Result<Tensor>;
    #[rustfmt::skip]
    let cases: Vec<(&str, Build, DType, ArrayD<f64>)> = vec![
        ("sum(axis 0)", |t| t[0].sum(0, false), F64, full(&[3], 0.0)),
        ("sum(axis 0, keepdims)", |t| t[0].sum(0, true), F64, full(&[1, 3], 0.0)),
        ("sum(axis 1)", |t| t[0].sum(1, false), F64, full(&[0], 0.0)),
        ("sum(all)", |t| t[0].sum(tessera::Axes::All, false), F64, r::scalar(0.0)),
        ("prod(axis 0)", |t| t[0].prod(0, false), F64, full(&[3], 1.0)),
        ("mean(axis 0)", |t| t[0].mean(0, false), F64, full(&[3], nan)),
        ("mean(all)", |t| t[0].mean(tessera::Axes::All, false), F64, r::scalar(nan)),
        ("var(axis 0)", |t| t[0].var(0, false, 0), F64, full(&[3], nan)),
        ("any(axis 0)", |t| t[0].any(0, false), Bool, full(&[3], 0.0)),
        ("all(axis 0)", |t| t[0].all(0, false), Bool, full(&[3], 1.0)),
        ("max(axis 1)", |t| t[0].max(1, false), F64, full(&[0], 0.0)),
        ("argmax(axis 1)", |t| t[0].argmax(Some(1)), I64, full(&[0], 0.0)),
        ("int sum(axis 0)", |t| t[0].astype(I32)?.sum(0, false), I64, full(&[3], 0.0)),
    ];
    for (what, build, dt, want) in cases {
        cx.ew(what, &[&x], build, dt, &want)?;
    }
    Ok(())
}

/// Reshape, transpose, slicing, broadcasting, concatenate and stack of empty arrays.
pub fn zero_size_movement(cx: &mut Cx) -> Result<()> {
    let x = empty(&[0, 3], I32);
    let y = cx.host(&[4, 3], Dom::Range(-9.0, 9.0), I32);
    let vy = values(&y);
    type Build = fn(&[Tensor]) -> Result<Tensor>;
    #[rustfmt::skip]
    let cases: Vec<(&str, Build, ArrayD<f64>)> = vec![
        ("reshape (3, 0)", |t| t[0].reshape(&[3, 0]), full(&[3, 0], 0.0)),
        ("reshape (-1,)", |t| t[0].reshape(&[-1]), full(&[0], 0.0)),
        ("reshape (0, 1, 3) -> (2, 0, 3)", |t| t[0].reshape(&[0, 1, 3])?.reshape(&[2, 0, 3]), full(&[2, 0, 3], 0.0)),
        ("transpose", |t| t[0].T(), full(&[3, 0], 0.0)),
        ("expand_dims", |t| t[0].expand_dims(1), full(&[0, 1, 3], 0.0)),
        ("broadcast_to (2, 0, 3)", |t| t[0].broadcast_to(&[2, 0, 3]), full(&[2, 0, 3], 0.0)),
        ("slice", |t| t[0].slice(&[s(None, None, -1), s(Some(1), None, 1)]), full(&[0, 2], 0.0)),
        ("concatenate (0, 3) + (4, 3)", |t| tessera::concatenate(&[&t[0], &t[1], &t[0]], 0), vy.clone()),
        ("concatenate (4, 3) + (0, 3)", |t| tessera::concatenate(&[&t[1], &t[0]], 0), vy.clone()),
        ("concatenate empties", |t| tessera::concatenate(&[&t[0], &t[0]], 0), full(&[0, 3], 0.0)),
        ("concatenate empties axis 1", |t| tessera::concatenate(&[&t[0], &t[0]], 1), full(&[0, 6], 0.0)),
        ("stack empties", |t| tessera::stack(&[&t[0], &t[0]], 0), full(&[2, 0, 3], 0.0)),
        ("slice to empty, concatenate", |t| tessera::concatenate(&[&t[1].slice(&[s(Some(3), Some(1), 1)])?, &t[1]], 0), vy.clone()),
    ];
    for (what, build, want) in cases {
        cx.exact(what, &[&x, &y], build, I32, &want)?;
    }
    Ok(())
}

/// Elementwise ops on empty arrays keep numpy's shapes and dtypes.
pub fn zero_size_elementwise(cx: &mut Cx) -> Result<()> {
    let x = empty(&[0, 3], F32);
    let row = cx.host(&[3], Dom::Range(-9.0, 9.0), F32);
    let one = cx.host(&[1, 3], Dom::Range(-9.0, 9.0), I64);
    type Build = fn(&[Tensor]) -> Result<Tensor>;
    #[rustfmt::skip]
    let cases: Vec<(&str, Build, DType, &[usize])> = vec![
        ("x + x", |t| t[0].add(&t[0]), F32, &[0, 3]),
        ("x * row", |t| t[0].mul(&t[1]), F32, &[0, 3]),
        ("x + (1, 3) i64", |t| t[0].add(&t[2]), F64, &[0, 3]),
        ("exp(x)", |t| t[0].exp(), F32, &[0, 3]),
        ("x < 1", |t| t[0].lt(1.0), Bool, &[0, 3]),
        ("where(x > 0, x, row)", |t| t[0].gt(0.0)?.where_(&t[0], &t[1]), F32, &[0, 3]),
        ("astype(i32)", |t| t[0].astype(I32), I32, &[0, 3]),
        ("(0, 1) * (3,)", |t| t[0].slice(&[tessera::all(), s(None, Some(1), 1)])?.mul(&t[1]), F32, &[0, 3]),
    ];
    for (what, build, dt, shape) in cases {
        cx.ew(what, &[&x, &row, &one], build, dt, &full(shape, 0.0))?;
    }
    Ok(())
}

/// A few expressions give the same results in eager mode as lazily (elementwise: bit for bit).
pub fn eager_matches_lazy(cx: &mut Cx) -> Result<()> {
    let eager = cx.new_session();
    eager.set_eager(true);
    assert!(eager.config().eager && !cx.s.config().eager);
    let a = cx.host(&[13, 7], Dom::Range(-2.0, 2.0), F32);
    let b = cx.host(&[7], Dom::Range(0.5, 3.0), F32);
    let c = cx.host(&[13, 7], Dom::Range(-50.0, 50.0), I32);
    let on = |s: &Session| -> Result<Vec<Tensor>> {
        [&a, &b, &c]
            .iter()
            .enumerate()
            .map(|(k, h)| cx.ch.apply(s.from_host((*h).clone()), k))
            .collect()
    };
    type Build = fn(&[Tensor]) -> Result<Tensor>;
    #[rustfmt::skip]
    let elementwise: [(&str, Build); 4] = [
        ("(a + 1) * b - exp(a)", |t| Ok((&t[0] + 1.0) * &t[1] - t[0].exp()?)),
        ("where(a > 0, sqrt(b), c / 3)", |t| t[0].gt(0.0)?.where_(&t[1].sqrt()?, &t[2].div(3)?)),
        ("slice, transpose, reshape", |t| t[0].slice(&[s(None, None, -2)])?.T()?.reshape(&[-1])?.mul(2.0)),
        ("random + a", |t| t[0].add(&t[0].session().random(7).rand(&[13, 7], F32))),
    ];
    #[rustfmt::skip]
    let reductions: [(&str, Build); 4] = [
        ("sum(a * b, 0)", |t| (&t[0] * &t[1]).sum(0, false)),
        ("var(a, 1, ddof 1)", |t| t[0].var(1, false, 1)),
        ("a @ a.T", |t| t[0].matmul(&t[0].T()?)),
        ("argmax(c, 1)", |t| t[2].argmax(Some(1))),
    ];
    let (lazy_in, eager_in) = (on(&cx.s)?, on(&eager)?);
    for (what, build) in elementwise {
        let lazy = build(&lazy_in)?.execute()?;
        cx.assert_bit_identical(
            &format!("eager {what}"),
            &build(&eager_in)?.execute()?,
            &lazy,
        );
    }
    for (what, build) in reductions {
        let lazy = build(&lazy_in)?.execute()?;
        let got = build(&eager_in)?.execute()?;
        cx.assert_close(
            &format!("eager {what}"),
            &got,
            lazy.dtype(),
            &values(&lazy),
            Tol::accumulated(lazy.dtype(), 13, 4.0),
        );
    }
    Ok(())
}

/// Nodes (and constants) survive `to_json` / `from_json` unchanged, for a graph holding
/// constants, fills, ranges, random sources, elementwise ops, reductions, movement, matmul and
/// chunk hints.
pub fn graph_json_round_trip(cx: &mut Cx) -> Result<()> {
    use rand::Rng;
    let ss = cx.s.clone();
    let a = ss
        .from_host(cx.host(&[13, 7], Dom::Range(-2.0, 2.0), F32))
        .with_chunks(&[5, 3])?;
    let i = ss.from_host(cx.host(&[7], Dom::Int(-9, 9), I64));
    let m = ss.from_host(cx.host(&[7, 4], Dom::Bool(0.5), Bool));
    let g = ss.random(cx.rng().gen());
    let x = g.randn(&[13, 7], F64).with_chunks(&[4])?;
    let k = g.randint(0, 5, &[7, 4], I32)?;
    // A float with a short decimal form (see graph_json_float_precision for the others).
    let scalar = cx.rng().gen_range(-8000..8000) as f64 / 8.0;
    // Record a bit of everything (recording is enough: the graph keeps every node).
    let e = (&a * scalar + &x - &i).exp()?.where_(&x, 0.5)?;
    e.sum([0], true)?.var(1, false, 1)?;
    e.matmul(&k.astype(F64)?)?
        .mul(&m.astype(F64)?.sum(0, false)?)?;
    let strided = e.slice(&[s(Some(1), None, 2)])?.T()?;
    tessera::concatenate(&[&strided, &ss.eye(7, Some(3), 1, F64)], 1)?;
    ss.arange(0.0, 7.0, 0.5, F32)?;
    ss.linspace(-1.0, 1.0, 9, false, F64);
    ss.full(&[2, 2], scalar, F64);
    e.argmax(Some(0))?;
    let graph = ss.graph();
    let json = graph.to_json()?;
    let back = Graph::from_json(&json)?;
    assert_eq!(back.nodes(), graph.nodes(), "nodes after a JSON round trip");
    for node in graph.nodes() {
        if let Op::Constant { id } = node.op {
            assert_eq!(back.constant(id), graph.constant(id), "constant {id}");
        }
    }
    assert_eq!(
        back.to_json()?,
        json,
        "serializing again gives the same text"
    );
    let kinds = |g: &Graph, f: fn(&Op) -> bool| g.nodes().iter().filter(|n| f(&n.op)).count();
    for (what, f) in [
        (
            "constants",
            (|o| matches!(o, Op::Constant { .. })) as fn(&Op) -> bool,
        ),
        ("random sources", |o| matches!(o, Op::Random { .. })),
        ("reductions", |o| matches!(o, Op::Reduce { .. })),
        ("matmuls", |o| matches!(o, Op::MatMul)),
    ] {
        assert!(kinds(&graph, f) > 0, "the graph holds {what}");
    }
    Ok(())
}

/// Every f64 must survive the JSON round trip bit for bit, also with 17 significant digits.
pub fn graph_json_float_precision(cx: &mut Cx) -> Result<()> {
    use rand::Rng;
    let wide: Vec<f64> = (0..500)
        .map(|_| cx.rng().gen_range(-1.0..1.0) * 10f64.powf(cx.rng().gen_range(-300.0..300.0)))
        .collect();
    let _fills: Vec<Tensor> = wide[..50]
        .iter()
        .map(|&v| cx.s.full(&[1], v, F64))
        .collect();
    let _data = cx.s.from_vec(wide, &[500])?;
    let graph = cx.s.graph();
    let back = Graph::from_json(&graph.to_json()?)?;
    for (i, (a, b)) in graph.nodes().iter().zip(back.nodes()).enumerate() {
        assert_eq!(a, b, "node {i} after a JSON round trip");
    }
    assert_eq!(
        back.constant(0),
        graph.constant(0),
        "constant data after a JSON round trip"
    );
    Ok(())
}

/// A graph holding NaN and infinities (fills, constants) must round-trip through JSON too.
pub fn graph_json_non_finite(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let x = s.from_array(ndarray::arr1(&[1.0, f64::INFINITY, f64::NAN]).into_dyn());
    let _y = x.maximum(&s.full(&[3], f64::NAN, F64))?;
    let graph = s.graph();
    let back = Graph::from_json(&graph.to_json()?)?;
    assert_eq!(back.nodes().len(), graph.nodes().len());
    Ok(())
}

/// Arrays large enough for the backend's parallel paths (elementwise above 32K elements,
/// reductions of one long lane) agree bit for bit with small chunks and with the reference.
pub fn large_arrays(cx: &mut Cx) -> Result<()> {
    // Under the 64-byte budget these arrays would be 17,500 chunks each, one kernel launch per
    // chunk (minutes on a software GPU) and none large enough for the parallel paths this test
    // is about: 16 KiB chunks still make every node many chunks under a budget.
    if matches!(cx.ch, Chunking::Budget) {
        cx.s.set_chunk_bytes(16 << 10)?;
    }
    let x = cx.host(&[300, 300], Dom::Range(-2.0, 2.0), F64);
    let row = cx.host(&[300], Dom::Range(0.5, 2.0), F32);
    let (vx, vr) = (values(&x), values(&row));
    let want = r::zip(&vx, &vr, |a, b| a * b + 1.0);
    cx.ew(
        "x * row + 1 (300 x 300)",
        &[&x, &row],
        |t| Ok(&t[0] * &t[1] + 1.0),
        F64,
        &want,
    )?;
    let want = r::zip(&vx, &vr, |a, b| if a > 0.0 { a } else { b });
    cx.ew(
        "where(x > 0, x, row)",
        &[&x, &row],
        |t| t[0].gt(0.0)?.where_(&t[0], &t[1]),
        F64,
        &want,
    )?;
    let seed = rand::Rng::gen(cx.rng());
    cx.chunk_invariant("rand (300, 300)", |ch| {
        ch.apply(cx.s.random(seed).rand(&[300, 300], F32), 0)
    })?;

    let long = cx.host(&[2, 70_000], Dom::Range(-2.0, 2.0), F64);
    let vl = values(&long);
    let all = |f: fn(&[f64]) -> f64| r::reduce(&vl, &[0, 1], false, f);
    let tol = Tol::accumulated(F64, 140_000, 4.0);
    type Build = fn(&[Tensor]) -> Result<Tensor>;
    #[rustfmt::skip]
    let cases: [(&str, Build, DType, ArrayD<f64>); 8] = [
        ("sum", |t| t[0].sum(tessera::Axes::All, false), F64, all(r::sum)),
        ("mean", |t| t[0].mean(tessera::Axes::All, false), F64, all(r::mean)),
        ("var", |t| t[0].var(tessera::Axes::All, false, 1), F64, all(|l| r::var(l, 1))),
        ("min", |t| t[0].min(tessera::Axes::All, false), F64, all(r::min)),
        ("max", |t| t[0].max(tessera::Axes::All, false), F64, all(r::max)),
        ("all(x > -1.9)", |t| t[0].gt(-1.9)?.all(tessera::Axes::All, false), Bool, all(|l| r::b(l.iter().all(|&v| v > -1.9)))),
        ("argmax(axis 1)", |t| t[0].argmax(Some(1)), I64, r::reduce(&vl, &[1], false, r::argmax)),
        ("sum(f32)", |t| t[0].astype(F32)?.sum(tessera::Axes::All, false), F32, all(|l| l.iter().map(|&v| v as f32 as f64).sum())),
    ];
    for (what, build, dt, want) in cases {
        let tol = if dt == F32 {
            Tol::accumulated(F32, 140_000, 4.0)
        } else {
            tol
        };
        cx.approx(
            &format!("{what} of (2, 70000)"),
            &[&long],
            build,
            dt,
            &want,
            tol,
        )?;
    }
    Ok(())
}

/// Column-major (Fortran-order) user data behaves like the same values in row-major order.
pub fn non_standard_layout_input(cx: &mut Cx) -> Result<()> {
    let f = cx.data(&[7, 13], Dom::Range(-5.0, 5.0)).reversed_axes(); // (13, 7), column-major
    assert!(!f.is_standard_layout());
    for dt in [F64, I32] {
        let x = super::to_host(&f, dt);
        let v = values(&x);
        let what = |w: &str| format!("{w} of column-major {dt}");
        cx.ew(
            &what("x * 2"),
            &[&x],
            |t| t[0].mul(2),
            dt,
            &r::map(&v, |a| a * 2.0),
        )?;
        cx.exact(
            &what("reshape (91,)"),
            &[&x],
            |t| t[0].reshape(&[91]),
            dt,
            &r::reshape(&v, &[91]),
        )?;
        cx.exact(
            &what("reshape (7, 13)"),
            &[&x],
            |t| t[0].reshape(&[7, 13]),
            dt,
            &r::reshape(&v, &[7, 13]),
        )?;
        cx.exact(
            &what("slice"),
            &[&x],
            |t| t[0].slice(&[s(None, None, -3), s(Some(1), None, 1)]),
            dt,
            &r::slice(&v, &[s(None, None, -3), s(Some(1), None, 1)]),
        )?;
        cx.exact(
            &what(".T"),
            &[&x],
            |t| t[0].T(),
            dt,
            &r::transpose(&v, &[1, 0]),
        )?;
        let c = r::concatenate(&[&v, &v], 0);
        cx.exact(
            &what("concatenate"),
            &[&x],
            |t| tessera::concatenate(&[&t[0], &t[0]], 0),
            dt,
            &c,
        )?;
        let rdt = if dt == F64 { F64 } else { I64 };
        let tol = Tol::accumulated(rdt, 13, 5.0);
        cx.approx(
            &what("sum(axis 0)"),
            &[&x],
            |t| t[0].sum(0, false),
            rdt,
            &r::reduce(&v, &[0], false, r::sum),
            tol,
        )?;
        cx.approx(
            &what("x @ x.T"),
            &[&x],
            |t| t[0].matmul(&t[0].T()?),
            dt,
            &r::matmul(&v, &r::transpose(&v, &[1, 0])),
            Tol::accumulated(dt, 7, 25.0),
        )?;
        cx.approx(
            &what("var(axis 1)"),
            &[&x],
            |t| t[0].var(1, false, 0),
            F64,
            &r::reduce(&v, &[1], false, |l| r::var(l, 0)),
            Tol::accumulated(F64, 7, 25.0),
        )?;
    }
    Ok(())
}

/// execute_many computes several outputs sharing subexpressions, each equal to its own run.
pub fn execute_many_shared(cx: &mut Cx) -> Result<()> {
    let a = cx.host(&[13, 7], Dom::Range(-2.0, 2.0), F64);
    let b = cx.host(&[7], Dom::Range(-2.0, 2.0), F64);
    let (ta, tb) = (cx.tensor(&a, 0)?, cx.tensor(&b, 1)?);
    let shared = (&ta * &tb).exp()?;
    let outs = [
        shared.clone(),
        shared.sum(0, false)?,
        (&shared - 1.0).T()?,
        ta.clone(),
        shared.argmax(Some(1))?,
    ];
    let together = cx.s.execute_many(&outs.iter().collect::<Vec<_>>())?;
    assert_eq!(together.len(), outs.len());
    for (i, (t, got)) in outs.iter().zip(&together).enumerate() {
        cx.assert_bit_identical(&format!("output {i} of execute_many"), got, &t.execute()?);
    }
    let want = r::map(&r::zip(&values(&a), &values(&b), |x, y| x * y), f64::exp);
    cx.assert_close(
        "exp(a * b)",
        &together[0],
        F64,
        &want,
        Tol::elementwise(F64),
    );
    Ok(())
}

/// Self-check of the harness: each chunking cuts a (4, 9) input into the grid its
/// documentation promises.
pub fn chunkings_cut_inputs(cx: &mut Cx) -> Result<()> {
    use super::Chunking::*;
    let h = cx.host(&[4, 9], Dom::Range(-1.0, 1.0), F64);
    #[rustfmt::skip]
    let cases: [(super::Chunking, [&[usize]; 2]); 5] = [
        (One, [&[4], &[9]]),
        (Uneven, [&[2, 2], &[4, 4, 1]]),        // (2, 4)
        (Unit, [&[1, 1, 1, 1], &[4, 4, 1]]),    // (1, 4)
        (Mixed, [&[3, 1], &[5, 4]]),            // (3, 5) for operand 0
        (Budget, [&[2, 2], &[3, 3, 3]]),        // 64 bytes: 8 f64 at most
    ];
    for (ch, grid) in cases {
        let t = cx.tensor_at(ch, &h, 0)?;
        let (_, tiled) = cx.under(ch, || cx.s.plan(&[&t]))?;
        assert_eq!(tiled[0].grid, grid, "{ch:?}: chunk grid of a (4, 9) input");
    }
    Ok(())
}

/// `steps` times `y = y * 1.001 + i / 100` (two instructions and a constant per step).
fn chain(x: &Tensor, steps: usize) -> Result<Tensor> {
    Ok((0..steps).fold(x.clone(), |y, i| &y * 1.001 + i as f64 * 0.01))
}
fn chain_reference(x: &ArrayD<f64>, steps: usize) -> ArrayD<f64> {
    (0..steps).fold(x.clone(), |y, i| {
        r::map(&y, |v| v * 1.001 + i as f64 * 0.01)
    })
}

/// `t[0] + t[1] + ...`, left to right.
fn sum_all(t: &[Tensor]) -> Result<Tensor> {
    Ok(t[1..].iter().fold(t[0].clone(), |acc, x| &acc + x))
}
fn sum_reference(hs: &[HostArray]) -> ArrayD<f64> {
    hs[1..].iter().fold(values(&hs[0]), |acc, h| {
        r::zip(&acc, &values(h), |p, q| p + q)
    })
}

/// Chains past one fused kernel's limits (64 instructions, 8 loaded inputs), random sources fused
/// into elementwise chains with broadcasting and into reduction tails, and a random source
/// read by more consumers than it is recomputed for.
pub fn fusion_chains(cx: &mut Cx) -> Result<()> {
    let x = cx.host(&[13, 7], Dom::Range(-2.0, 2.0), F64);
    let vx = values(&x);
    for steps in [12, 40] {
        let want = chain_reference(&vx, steps);
        cx.ew(
            &format!("{steps}-step chain"),
            &[&x],
            |t| chain(&t[0], steps),
            F64,
            &want,
        )?;
    }
    for n in [8, 12] {
        let many: Vec<HostArray> = (0..n)
            .map(|_| cx.host(&[13, 7], Dom::Range(-2.0, 2.0), F64))
            .collect();
        let refs: Vec<&HostArray> = many.iter().collect();
        let want = sum_reference(&many);
        cx.ew(&format!("sum of {n} inputs"), &refs, sum_all, F64, &want)?;
        let want = r::reduce(&want, &[1], false, r::max);
        let what = format!("max(sum of {n} inputs, 1)");
        cx.approx(
            &what,
            &refs,
            |t| sum_all(t)?.max(1, false),
            F64,
            &want,
            Tol::EXACT,
        )?;
    }

    use rand::Rng;
    let (seed, seed7): (u64, u64) = (cx.rng().gen(), cx.rng().gen());
    let vr = values(&cx.s.random(seed).rand(&[13, 7], F64).execute()?);
    let vr7 = values(&cx.s.random(seed7).rand(&[7], F32).execute()?);
    let (s, ch) = (cx.s.clone(), cx.ch);
    let inputs = |ch: super::Chunking| -> Result<(Tensor, Tensor, Tensor)> {
        let xt = cx.tensor_at(ch, &x, 0)?;
        let rt = ch.apply(s.random(seed).rand(&[13, 7], F64), 1)?;
        let r7 = ch.apply(s.random(seed7).rand(&[7], F32), 2)?;
        Ok((xt, rt, r7))
    };
    let want = r::zip(&r::map(&vr, |v| v * 2.0 - 1.0), &vx, |p, q| p * q);
    cx.source(
        "(2 r - 1) * x",
        |ch| inputs(ch).map(|(x, r, _)| (&r * 2.0 - 1.0) * &x),
        F64,
        &want,
    )?;
    let want = r::zip(&vx, &vr7, |p, q| p + q);
    cx.source(
        "x + r7 (f32, broadcast)",
        |ch| inputs(ch).map(|(x, _, r7)| &x + &r7),
        F64,
        &want,
    )?;
    let five = r::map(&vr, |v| (v + 1.0) + v * 2.0 + (v - 3.0) + v / 4.0 + v * v);
    let fan =
        |ch| inputs(ch).map(|(_, r, _)| (&r + 1.0) + &r * 2.0 + (&r - 3.0) + &r / 4.0 + &r * &r);
    cx.source("r read by five consumers", fan, F64, &five)?;

    #[rustfmt::skip]
    let reductions: [(&str, fn(&Tensor, &Tensor) -> Result<Tensor>, DType, ArrayD<f64>); 4] = [
        ("sum((2 r - 1) * x, 1)", |x, r| ((r * 2.0 - 1.0) * x).sum(1, false), F64, r::reduce(&r::zip(&r::map(&vr, |v| v * 2.0 - 1.0), &vx, |p, q| p * q), &[1], false, r::sum)),
        ("argmax(r, 0)", |_, r| r.argmax(Some(0)), I64, r::reduce(&vr, &[0], false, r::argmax)),
        ("sum(r > 0.5)", |_, r| r.gt(0.5)?.sum(tessera::Axes::All, false), I64, r::scalar(vr.iter().filter(|&&v| v > 0.5).count() as f64)),
        ("var(r * x, 0)", |x, r| (r * x).var(0, false, 1), F64, r::reduce(&r::zip(&vr, &vx, |p, q| p * q), &[0], false, |l| r::var(l, 1))),
    ];
    for (what, f, dt, want) in reductions {
        let (xt, rt, _) = inputs(ch)?;
        let got = f(&xt, &rt)?.execute()?;
        cx.assert_close(what, &got, dt, &want, Tol::accumulated(dt, 13, 4.0));
    }
    Ok(())
}

/// Fusion changes how chunks are computed, never the result: with fusion off every expression
/// gives the same bits (reductions included: fused tails fold blocks in the same order).
pub fn fusion_matches_unfused(cx: &mut Cx) -> Result<()> {
    let a = cx.host(&[13, 7], Dom::Range(-2.0, 2.0), F32);
    let b = cx.host(&[7], Dom::Range(0.5, 3.0), F64);
    let c = cx.host(&[13, 1], Dom::Range(-50.0, 50.0), I32);
    type Build = fn(&[Tensor]) -> Result<Tensor>;
    #[rustfmt::skip]
    let cases: [(&str, Build); 10] = [
        ("(a + 1) * b - exp(a)", |t| Ok((&t[0] + 1.0) * &t[1] - t[0].exp()?)),
        ("where(a > 0, sqrt(b), c / 3)", |t| t[0].gt(0.0)?.where_(&t[1].sqrt()?, &t[2].div(3)?)),
        ("(a * c).astype(i32) % 7", |t| t[0].mul(&t[2])?.astype(I32)?.rem(7)),
        ("rand * a + randn", |t| {
            let g = t[0].session().random(11);
            Ok(&g.rand(&[13, 7], F32) * &t[0] + g.randn(&[13, 1], F64))
        }),
        ("sum(a * b, 0)", |t| (&t[0] * &t[1]).sum(0, false)),
        ("mean(exp(a), all)", |t| t[0].exp()?.mean(tessera::Axes::All, false)),
        ("var(a - c, 1, ddof 1)", |t| (&t[0] - &t[2]).var(1, true, 1)),
        ("min(a * b, -1)", |t| (&t[0] * &t[1]).min(-1, false)),
        ("argmax(a + c, 0)", |t| (&t[0] + &t[2]).argmax(Some(0))),
        ("any(a > 1.5, 1)", |t| t[0].gt(1.5)?.any(1, false)),
    ];
    for (what, build) in cases {
        cx.s.set_fusion(true);
        let fused = cx.eval(cx.ch, &[&a, &b, &c], &build)?;
        cx.s.set_fusion(false);
        let plain = cx.eval(cx.ch, &[&a, &b, &c], &build);
        cx.s.set_fusion(true);
        cx.assert_bit_identical(&format!("{what}: fused vs unfused"), &fused, &plain?);
    }
    Ok(())
}
