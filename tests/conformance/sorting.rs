//! Sorting along an axis: `sort` and `argsort`, ascending and descending, over every dtype, with
//! ties and NaN, against a reference written here (an unstable sort of (value, position) with
//! the position breaking ties, so stability is checked, not assumed).

use super::{values, Cx, Dom};
use ndarray::{ArrayD, Axis};
use std::cmp::Ordering;
use tessera::{DType, Error, Result, Tensor};

use DType::{Bool, F32, F64, I32, I64};

/// numpy's order: NaN after every number (all NaNs equal), `-0.0 == 0.0`.
fn order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).expect("numbers"),
    }
}

/// Sorted values (or positions) of every lane along `axis`: equal elements keep their order in
/// both directions.
fn reference(v: &ArrayD<f64>, axis: usize, descending: bool, arg: bool) -> ArrayD<f64> {
    let mut out = v.clone();
    for (lane, mut dst) in v
        .lanes(Axis(axis))
        .into_iter()
        .zip(out.lanes_mut(Axis(axis)))
    {
        let mut p: Vec<(usize, f64)> = lane.iter().copied().enumerate().collect();
        p.sort_unstable_by(|a, b| {
            let c = if descending {
                order(b.1, a.1)
            } else {
                order(a.1, b.1)
            };
            c.then(a.0.cmp(&b.0))
        });
        for (o, (i, x)) in dst.iter_mut().zip(p) {
            *o = if arg { i as f64 } else { x };
        }
    }
    out
}

/// `sort` and `argsort` of 1-, 2- and 3-D inputs along each axis (negative ones too), both
/// directions, every dtype, ties and NaN; an empty axis.
pub fn sort_argsort(cx: &mut Cx) -> Result<()> {
    let dtypes = [
        (F32, Dom::Ties),
        (F64, Dom::Ties),
        (F64, Dom::Range(-1.0, 1.0)),
        (I32, Dom::Int(-3, 4)),
        (I64, Dom::Int(-1000, 1000)),
        (Bool, Dom::Bool(0.4)),
    ];
    for (dt, dom) in dtypes {
        for shape in [&[17usize][..], &[13, 7], &[6, 5, 7], &[4, 0]] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            let nd = shape.len() as isize;
            for axis in (-nd..nd).collect::<Vec<_>>() {
                let ax = axis.rem_euclid(nd) as usize;
                for descending in [false, true] {
                    let what =
                        format!("sort({dt} {shape:?}, axis={axis}, descending={descending})");
                    let want = reference(&vx, ax, descending, false);
                    cx.exact(&what, &[&x], |t| t[0].sort(axis, descending), dt, &want)?;
                    let what =
                        format!("argsort({dt} {shape:?}, axis={axis}, descending={descending})");
                    let want = reference(&vx, ax, descending, true);
                    cx.exact(&what, &[&x], |t| t[0].argsort(axis, descending), I64, &want)?;
                }
            }
        }
    }
    Ok(())
}

/// A sort of an expression, and an expression of a sort (the sort is no fusion barrier for
/// its neighbours' correctness): `sort(-x) == -sort(x, descending)`.
pub fn sort_in_expressions(cx: &mut Cx) -> Result<()> {
    let x = cx.host(&[9, 11], Dom::Range(-5.0, 5.0), F64);
    let vx = values(&x);
    let neg = vx.mapv(|v| -v);
    let want = reference(&neg, 1, false, false);
    cx.exact(
        "sort(-x, 1)",
        &[&x],
        |t| t[0].neg()?.sort(1, false),
        F64,
        &want,
    )?;
    let want = reference(&vx, 1, true, false).mapv(|v| -v * 2.0);
    cx.exact(
        "-2 * sort(x, 1, descending)",
        &[&x],
        |t| Ok(t[0].sort(1, true)? * -2.0),
        F64,
        &want,
    )?;
    Ok(())
}

/// A 1-D sort larger than a chunk goes through the sample sort (pivots from samples, a
/// counting run, then one sort per bucket): equal to the reference in both directions for
/// values and positions, with heavy ties and NaN, and no bucket far past a chunk's share.
pub fn sample_sort_large_1d(cx: &mut Cx) -> Result<()> {
    let n = 6000;
    for (dt, dom) in [
        (F32, Dom::Ties),
        (F64, Dom::Range(-1.0, 1.0)),
        (I64, Dom::Int(0, 3)),
        (I32, Dom::Int(-1000, 1000)),
        (Bool, Dom::Bool(0.3)),
    ] {
        let x = cx.host(&[n], dom, dt);
        let vx = values(&x);
        let chunk_bytes = 1000 * dt.size();
        for descending in [false, true] {
            for arg in [false, true] {
                let what = format!("sample sort ({dt}, n={n}, descending={descending}, arg={arg})");
                let t = cx.s.from_host(x.clone()).with_chunks(&[700])?;
                cx.s.set_chunk_bytes(chunk_bytes)?;
                let sorted = if arg {
                    t.argsort(0, descending)
                } else {
                    t.sort(0, descending)
                };
                let planned = sorted.as_ref().map(|s| cx.s.plan(&[s]));
                cx.s.set_chunk_bytes(cx.ch.chunk_bytes())?;
                let (cg, _) = planned.map_err(|e| e.clone())??;
                let buckets: Vec<usize> = cg
                    .nodes
                    .iter()
                    .filter(|c| matches!(c.op, tessera::chunk::ChunkOp::BucketSort { .. }))
                    .map(|c| c.shape[0])
                    .collect();
                assert!(buckets.len() >= 4, "{what}: {} buckets", buckets.len());
                let largest = buckets.iter().copied().max().unwrap_or(0);
                assert!(
                    largest <= 2500,
                    "{what}: a bucket of {largest} for chunks of 1000"
                );
                let got = sorted?.execute()?;
                let want = reference(&vx, 0, descending, arg);
                let gv = values(&got);
                assert_eq!(gv.shape(), want.shape(), "{what}");
                for (i, (g, w)) in gv.iter().zip(want.iter()).enumerate() {
                    assert!(
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()) || g == w,
                        "{what}: element {i}: {g} vs {w} [{}]",
                        cx.tag()
                    );
                }
            }
        }
    }
    Ok(())
}

/// A 0-d array and an axis out of range are typed errors naming the op.
pub fn sort_errors(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let z = s.full(&[], 1.0, F64);
    for r in [z.sort(0, false), z.argsort(-1, true)] {
        match r {
            Err(Error::InvalidArgument { op, .. }) => {
                assert!(op == "sort" || op == "argsort", "op {op}");
            }
            other => panic!("sort of a 0-d array: {other:?}"),
        }
    }
    let x = s.full(&[3, 4], 1.0, F64);
    assert!(x.sort(2, false).is_err(), "axis 2 of a 2-D array");
    assert!(x.argsort(-3, false).is_err(), "axis -3 of a 2-D array");
    Ok(())
}

/// `topk`: the first `k` of the reference sort (descending for the largest: NaN first; ties to
/// the lower position), values and positions, along each axis of chunked inputs (each chunk's
/// candidates merged up a tree), every dtype with ties and NaN; `k` = 0, 1, 3 and the whole axis.
pub fn topk_values_and_positions(cx: &mut Cx) -> Result<()> {
    let dtypes = [
        (F32, Dom::Ties),
        (F64, Dom::Range(-1.0, 1.0)),
        (I32, Dom::Int(-3, 4)),
        (I64, Dom::Int(-1000, 1000)),
        (Bool, Dom::Bool(0.4)),
    ];
    for (dt, dom) in dtypes {
        // [3, 200]: a long axis, where each chunk keeps its k best in one pass.
        for shape in [&[17usize][..], &[13, 7], &[6, 5, 7], &[3, 200]] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            for axis in 0..shape.len() {
                let mut ks = vec![0, 1, 3, shape[axis]];
                ks.dedup();
                for k in ks {
                    for largest in [true, false] {
                        let cut = |a: ArrayD<f64>| {
                            a.slice_axis(Axis(axis), ndarray::Slice::from(0..k))
                                .to_owned()
                        };
                        let want_v = cut(reference(&vx, axis, largest, false));
                        let want_i = cut(reference(&vx, axis, largest, true));
                        let what =
                            format!("topk({dt} {shape:?}, k={k}, axis={axis}, largest={largest})");
                        let ax = axis as isize;
                        cx.exact(
                            &format!("{what} values"),
                            &[&x],
                            |t| Ok(t[0].topk(k, ax, largest)?.0),
                            dt,
                            &want_v,
                        )?;
                        cx.exact(
                            &format!("{what} positions"),
                            &[&x],
                            |t| Ok(t[0].topk(k, ax, largest)?.1),
                            I64,
                            &want_i,
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// topk of a 0-d array, with `k` past the axis, or an axis out of range: typed errors.
pub fn topk_errors(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let z = s.full(&[], 1.0, F64);
    assert!(
        matches!(z.topk(1, 0, true), Err(Error::InvalidArgument { ref op, .. }) if op == "topk"),
        "topk of a 0-d array"
    );
    let x = s.full(&[3, 4], 1.0, F64);
    match x.topk(5, 1, true) {
        Err(Error::InvalidArgument { op, msg }) => {
            assert_eq!(op, "topk");
            assert!(msg.contains("k = 5") && msg.contains("[3, 4]"), "{msg}");
        }
        other => panic!("k past the axis: {other:?}"),
    }
    assert!(x.topk(1, 2, false).is_err(), "axis 2 of a 2-D array");
    Ok(())
}

/// Brute-force k nearest neighbours (`Tensor::knn`: a GEMM whose distance tiles are reduced by
/// top-k as they are made) against direct f64 distances: the squared distances within the
/// dtype's tolerance, and the returned rows' true distances equal to the k smallest (so a
/// near-tie may come back in either order, never a wrong neighbour).
pub fn knn_matches_brute_force(cx: &mut Cx) -> Result<()> {
    for dt in [F64, F32] {
        let (n, m, d) = (40usize, 13usize, 5usize);
        let xh = cx.host(&[n, d], Dom::Range(-1.0, 1.0), dt);
        let yh = cx.host(&[m, d], Dom::Range(-1.0, 1.0), dt);
        let (xv, yv) = (values(&xh), values(&yh));
        let (xt, yt) = (cx.tensor(&xh, 0)?, cx.tensor(&yh, 1)?);
        let tol = if dt == F64 { 1e-12 } else { 1e-5 } * (4.0 * d as f64);
        for k in [1usize, 4, n] {
            let (dist, idx) = xt.knn(&yt, k)?;
            assert_eq!(dist.dtype(), dt);
            let dist = values(&dist.execute()?);
            let idx = idx.to_array::<i64>()?;
            for q in 0..m {
                let mut truth: Vec<(f64, usize)> = (0..n)
                    .map(|r| {
                        let s: f64 = (0..d).map(|c| (yv[[q, c]] - xv[[r, c]]).powi(2)).sum();
                        (s, r)
                    })
                    .collect();
                truth.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let mut seen = std::collections::HashSet::new();
                for j in 0..k {
                    let what = format!("knn({dt}, n={n}, k={k}) query {q} rank {j}");
                    let r = idx[[q, j]];
                    assert!((0..n as i64).contains(&r), "{what}: row {r}");
                    assert!(seen.insert(r), "{what}: row {r} twice");
                    let true_d = truth.iter().find(|t| t.1 == r as usize).expect("a row").0;
                    assert!(
                        (true_d - truth[j].0).abs() <= tol,
                        "{what}: row {r} at {true_d}, the {j}-th nearest is at {}",
                        truth[j].0
                    );
                    assert!(
                        (dist[[q, j]] - truth[j].0).abs() <= tol,
                        "{what}: distance {} vs {}",
                        dist[[q, j]],
                        truth[j].0
                    );
                }
            }
        }
    }
    // The distances and the rows planned together share one selection: its partials (the
    // fused kernels, or the distance tiles' top-k) are planned once, not once per field.
    let (xh, yh) = (
        cx.host(&[50, 4], Dom::Range(-1.0, 1.0), F32),
        cx.host(&[9, 4], Dom::Range(-1.0, 1.0), F32),
    );
    let (xt, yt) = (cx.tensor(&xh, 0)?, cx.tensor(&yh, 1)?);
    let (dist, idx) = xt.knn(&yt, 3)?;
    let partials = |ts: &[&Tensor]| -> Result<usize> {
        let (cg, _) = cx.s.plan(ts)?;
        Ok(cg
            .nodes
            .iter()
            .filter(|n| matches!(n.op.name(), "knn_partial" | "topk_partial" | "topk_combine"))
            .count())
    };
    let one = partials(&[&dist])?;
    assert!(one > 0, "{}: no selection planned", cx.tag());
    assert_eq!(partials(&[&dist, &idx])?, one, "{}: both fields", cx.tag());
    let s = &cx.s;
    let x = s.full(&[4, 3], 1.0, F64);
    assert!(
        x.knn(&s.full(&[2, 2], 1.0, F64), 1).is_err(),
        "row lengths differ"
    );
    assert!(
        x.knn(&s.full(&[2, 3], 1.0, F64), 5).is_err(),
        "k past the data's rows"
    );
    Ok(())
}
