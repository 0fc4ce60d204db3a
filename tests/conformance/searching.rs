//! Searching and counting: `searchsorted` (every dtype, ties and NaN, both sides, promoted
//! operands), `bincount` (counts and weights, `minlength`, empty input), `histogram` (equal
//! bins from the data or a range, explicit edges, weights, density) and `partition` /
//! `argpartition`, at every chunking, against references written here with explicit loops.

use super::{to_host, values, Cx, Dom, Tol};
use crate::assert_err;
use ndarray::{ArrayD, IxDyn};
use std::cmp::Ordering;
use tessera::{DType, Error, HostArray, Result};

use DType::{Bool, F32, F64, I32, I64};

/// numpy's order: NaN after every number (all NaNs equal).
fn order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).expect("numbers"),
    }
}

/// A sorted 1-D host array of `n` elements drawn from `dom`.
fn sorted(cx: &mut Cx, n: usize, dom: Dom, dt: DType) -> HostArray {
    let mut v: Vec<f64> = values(&cx.host(&[n], dom, dt)).iter().copied().collect();
    v.sort_by(|a, b| order(*a, *b));
    to_host(&ArrayD::from_shape_vec(IxDyn(&[n]), v).expect("n"), dt)
}

/// For every element of `v`, how many elements of `a` sort before it (`right`: not after it),
/// counted one by one.
fn positions(a: &ArrayD<f64>, v: &ArrayD<f64>, right: bool) -> ArrayD<f64> {
    v.mapv(|x| {
        a.iter()
            .filter(|&&e| {
                let c = order(e, x);
                c == Ordering::Less || (right && c == Ordering::Equal)
            })
            .count() as f64
    })
}

/// `searchsorted` of values of several shapes (0-d, empty, 2-D) in sorted arrays of length 0,
/// 1 and longer (cut to chunks of 1 under the unit chunking), both sides, every dtype with
/// ties and NaN, and operands of different dtypes (compared in the promoted dtype).
pub fn searchsorted_positions(cx: &mut Cx) -> Result<()> {
    let cases = [
        (F32, Dom::Ties, F32),
        (F64, Dom::Special, F64),
        (F64, Dom::Ties, F64),
        (I32, Dom::Int(-3, 4), I32),
        (I64, Dom::Int(-1000, 1000), I64),
        (Bool, Dom::Bool(0.5), Bool),
        (I32, Dom::Int(-3, 4), F64),
        (F32, Dom::Ties, I64),
    ];
    for (adt, dom, vdt) in cases {
        for n in [0usize, 1, 17, 40] {
            let a = sorted(cx, n, dom, adt);
            for vshape in [&[][..], &[9], &[4, 5], &[0]] {
                let vdom = match (vdt, dom) {
                    (F64, Dom::Int(lo, hi)) => Dom::Range(lo as f64 - 1.0, hi as f64 + 1.0),
                    (I64, _) => Dom::Int(-3, 4),
                    _ => dom,
                };
                let v = cx.host(vshape, vdom, vdt);
                let (va, vv) = (values(&a), values(&v));
                for right in [false, true] {
                    let what = format!(
                        "searchsorted({adt} [{n}], {vdt} {vshape:?}, right={right}) {va:?} {vv:?}"
                    );
                    let want = positions(&va, &vv, right);
                    cx.exact(
                        &what,
                        &[&a, &v],
                        |t| t[0].searchsorted(&t[1], right),
                        I64,
                        &want,
                    )?;
                }
            }
        }
    }
    // The sorted array as an expression (a sort of chunked data) rather than data.
    let x = cx.host(&[23], Dom::Ties, F64);
    let v = cx.host(&[6], Dom::Ties, F64);
    let mut xs: Vec<f64> = values(&x).iter().copied().collect();
    xs.sort_by(|a, b| order(*a, *b));
    let want = positions(
        &ArrayD::from_shape_vec(IxDyn(&[23]), xs).expect("23"),
        &values(&v),
        false,
    );
    cx.exact(
        "searchsorted(sort(x), v)",
        &[&x, &v],
        |t| t[0].sort(0, false)?.searchsorted(&t[1], false),
        I64,
        &want,
    )?;
    Ok(())
}

/// searchsorted in an array that is not 1-D: a typed error naming the op and the shape.
pub fn searchsorted_errors(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let v = s.full(&[3], 1.0, F64);
    for shape in [&[2usize, 3][..], &[]] {
        let a = s.full(shape, 1.0, F64);
        let e = assert_err!(a.searchsorted(&v, false), Error::InvalidArgument { op, .. } if op == "searchsorted");
        assert!(e.to_string().contains(&format!("{shape:?}")), "{e}");
    }
    Ok(())
}

/// Counts (or weighted sums) of each value `0..len`, counted one by one.
fn bincount_ref(x: &ArrayD<f64>, w: Option<&ArrayD<f64>>, minlength: usize) -> ArrayD<f64> {
    let len = x
        .iter()
        .map(|&v| v as usize + 1)
        .max()
        .unwrap_or(0)
        .max(minlength);
    let mut out = vec![0.0; len];
    for (i, &v) in x.iter().enumerate() {
        out[v as usize] += w.map_or(1.0, |w| w[i]);
    }
    ArrayD::from_shape_vec(IxDyn(&[len]), out).expect("len")
}

/// `bincount` of 1-D integer and bool data (empty, one element, many), with `minlength`
/// below and above the largest value, without and with weights of every dtype.
pub fn bincount_counts(cx: &mut Cx) -> Result<()> {
    for (dt, dom) in [
        (I32, Dom::Int(0, 12)),
        (Bool, Dom::Bool(0.3)),
        // Last: a backend without int64 arithmetic (wgpu) ends the case here.
        (I64, Dom::Int(0, 300)),
    ] {
        for n in [0usize, 1, 37] {
            let x = cx.host(&[n], dom, dt);
            let vx = values(&x);
            for minlength in [0usize, 5, 400] {
                let what = format!("bincount({dt} [{n}], minlength={minlength})");
                let want = bincount_ref(&vx, None, minlength);
                cx.exact(&what, &[&x], |t| t[0].bincount(None, minlength), I64, &want)?;
                for (wdt, wdom) in [
                    (F64, Dom::Range(-1.0, 1.0)),
                    (F32, Dom::Range(0.0, 2.0)),
                    (I32, Dom::Int(-5, 5)),
                ] {
                    let w = cx.host(&[n], wdom, wdt);
                    let want = bincount_ref(&vx, Some(&values(&w)), minlength);
                    cx.approx(
                        &format!("{what} weights {wdt}"),
                        &[&x, &w],
                        |t| t[0].bincount(Some(&t[1]), minlength),
                        F64,
                        &want,
                        Tol::accumulated(F64, n, 2.0),
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// bincount errors: negative values (ValueError in numpy), float data (TypeError), data not
/// 1-D, weights of another length.
pub fn bincount_errors(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let x = s
        .from_vec::<i32>(vec![3, 0, -2, 5], &[4])?
        .with_chunks(&[1])?;
    let e = assert_err!(x.bincount(None, 0), Error::InvalidArgument { op, .. } if op == "bincount");
    assert!(
        e.to_string().contains("negative") && e.to_string().contains("-2"),
        "{e}"
    );
    let f = s.full(&[4], 1.0, F64);
    assert_err!(f.bincount(None, 0), Error::UnsupportedDType { .. });
    let m = s.full(&[2, 2], 1, I64);
    assert_err!(m.bincount(None, 0), Error::InvalidArgument { .. });
    let ok = s.from_vec::<i64>(vec![1, 2], &[2])?;
    assert_err!(
        ok.bincount(Some(&s.full(&[3], 1.0, F64)), 0),
        Error::ShapeMismatch { .. }
    );
    Ok(())
}

/// numpy's `linspace(first, last, n + 1)` in f64: the edges a histogram's bins should have
/// (float32 data gets them within float32 rounding).
fn edges_ref(first: f64, last: f64, n: usize) -> Vec<f64> {
    let mut e: Vec<f64> = (0..=n)
        .map(|i| first + i as f64 * (last - first) / n as f64)
        .collect();
    e[n] = last;
    e
}

/// Counts (weighted sums) of `x` in the bins between `edges`: the last edge not after the
/// element, the last bin closed; elements outside (and NaN) dropped. One by one.
fn hist_ref(x: &ArrayD<f64>, w: Option<&ArrayD<f64>>, edges: &[f64]) -> ArrayD<f64> {
    let n = edges.len() - 1;
    let mut out = vec![0.0; n];
    let w: Option<Vec<f64>> = w.map(|w| w.iter().copied().collect());
    for (i, &v) in x.iter().enumerate() {
        if v.is_nan() || v < edges[0] || v > edges[n] {
            continue;
        }
        let b = (0..n)
            .rev()
            .find(|&b| edges[b] <= v)
            .expect("v >= edges[0]");
        out[b] += w.as_ref().map_or(1.0, |w| w[i]);
    }
    ArrayD::from_shape_vec(IxDyn(&[n]), out).expect("n")
}

/// `histogram` with equal bins: the range from the data (constant data too) or given (data
/// outside it, NaN and infinities dropped), 1 to 10 bins, every dtype, with and without
/// weights and density. The edges match numpy's linspace (float32 data within float32
/// rounding), and every element lands in the bin the returned edges say (ties on an edge go
/// right, the last edge into the last bin).
pub fn histogram_equal_bins(cx: &mut Cx) -> Result<()> {
    let cases = [
        (F64, Dom::Range(-3.0, 3.0), None),
        (F32, Dom::Range(-3.0, 3.0), None),
        (F64, Dom::Ties, Some((-1.0, 1.5))),
        (F64, Dom::Special, Some((-2.0, 2.0))),
        (F32, Dom::Halves, Some((-2.5, 3.5))),
        (I32, Dom::Int(-5, 6), None),
        (I64, Dom::Int(0, 3), Some((0.0, 2.0))),
        (Bool, Dom::Bool(0.5), None),
        (F64, Dom::Int(7, 8), None),
    ];
    for (dt, dom, range) in cases {
        for shape in [&[0usize][..], &[1], &[29], &[6, 7]] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            for bins in [1usize, 7, 10] {
                let (lo, hi) = range.unwrap_or_else(|| {
                    if vx.is_empty() {
                        return (0.0, 1.0);
                    }
                    let lo = vx.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = vx.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    if lo == hi {
                        (lo - 0.5, hi + 0.5)
                    } else {
                        (lo, hi)
                    }
                });
                let edt = if dt == F32 { F32 } else { F64 };
                let what = format!("histogram({dt} {shape:?}, bins={bins}, range={range:?})");
                // The edges: numpy's linspace, within float32 rounding for float32 data.
                let want_e = ArrayD::from_shape_vec(IxDyn(&[bins + 1]), edges_ref(lo, hi, bins))
                    .expect("edges");
                let tol = if dt == F32 {
                    Tol {
                        rel: 2e-7,
                        abs: 1e-6,
                    }
                } else {
                    Tol::elementwise(F64)
                };
                cx.approx(
                    &format!("{what} edges"),
                    &[&x],
                    |t| Ok(t[0].histogram(bins, range, None, false)?.1),
                    edt,
                    &want_e,
                    tol,
                )?;
                let t = cx.tensor(&x, 0)?;
                let (_, e) = t.histogram(bins, range, None, false)?;
                let edges: Vec<f64> = values(&e.execute()?).iter().copied().collect();
                let want = hist_ref(&vx, None, &edges);
                cx.exact(
                    &format!("{what} counts"),
                    &[&x],
                    |t| Ok(t[0].histogram(bins, range, None, false)?.0),
                    I64,
                    &want,
                )?;
                let w = cx.host(shape, Dom::Range(0.0, 2.0), F64);
                let want = hist_ref(&vx, Some(&values(&w)), &edges);
                cx.approx(
                    &format!("{what} weighted"),
                    &[&x, &w],
                    |t| Ok(t[0].histogram(bins, range, Some(&t[1]), false)?.0),
                    F64,
                    &want,
                    Tol::accumulated(F64, vx.len(), 2.0),
                )?;
                let wi = cx.host(shape, Dom::Int(0, 4), I32);
                let want = hist_ref(&vx, Some(&values(&wi)), &edges);
                cx.exact(
                    &format!("{what} int weights"),
                    &[&x, &wi],
                    |t| Ok(t[0].histogram(bins, range, Some(&t[1]), false)?.0),
                    I32,
                    &want,
                )?;
                let counts: Vec<f64> = hist_ref(&vx, None, &edges).iter().copied().collect();
                let total: f64 = counts.iter().sum();
                if total > 0.0 {
                    let dens: Vec<f64> = (0..bins)
                        .map(|i| {
                            // numpy's widths: np.diff in the edges' dtype.
                            let wd = if dt == F32 {
                                (edges[i + 1] as f32 - edges[i] as f32) as f64
                            } else {
                                edges[i + 1] - edges[i]
                            };
                            counts[i] / wd / total
                        })
                        .collect();
                    let want = ArrayD::from_shape_vec(IxDyn(&[bins]), dens).expect("bins");
                    cx.approx(
                        &format!("{what} density"),
                        &[&x],
                        |t| Ok(t[0].histogram(bins, range, None, true)?.0),
                        F64,
                        &want,
                        Tol::elementwise(F64),
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// `histogram` with explicit edges (repeated edges, data on edges, outside them, NaN), int
/// edges against float data, with weights.
pub fn histogram_explicit_edges(cx: &mut Cx) -> Result<()> {
    let edge_sets: [&[f64]; 3] = [
        &[-2.0, -0.5, 0.0, 0.0, 1.5, 2.0],
        &[-1.0, 1.0],
        &[-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0],
    ];
    for edges in edge_sets {
        for (dt, dom) in [(F64, Dom::Ties), (F32, Dom::Halves), (I32, Dom::Int(-3, 4))] {
            let x = cx.host(&[31], dom, dt);
            let vx = values(&x);
            let eh = HostArray::F64(
                ArrayD::from_shape_vec(IxDyn(&[edges.len()]), edges.to_vec()).expect("edges"),
            );
            let what = format!("histogram({dt}, edges {edges:?})");
            let want = hist_ref(&vx, None, edges);
            cx.exact(
                &what,
                &[&x],
                |t| {
                    Ok(t[0]
                        .histogram_edges(&t[0].session().from_host(eh.clone()), None, false)?
                        .0)
                },
                I64,
                &want,
            )?;
            let w = cx.host(&[31], Dom::Range(-1.0, 1.0), F64);
            let want = hist_ref(&vx, Some(&values(&w)), edges);
            cx.approx(
                &format!("{what} weighted"),
                &[&x, &w],
                |t| {
                    let e = t[0].session().from_host(eh.clone());
                    Ok(t[0].histogram_edges(&e, Some(&t[1]), false)?.0)
                },
                F64,
                &want,
                Tol::accumulated(F64, 31, 1.0),
            )?;
        }
    }
    // Integer edges for float data: compared in float64.
    let x = cx.host(&[40], Dom::Range(-3.0, 3.0), F64);
    let want = hist_ref(&values(&x), None, &[-2.0, 0.0, 1.0, 3.0]);
    cx.exact(
        "histogram(f64, int edges)",
        &[&x],
        |t| {
            let e = t[0].session().from_vec::<i64>(vec![-2, 0, 1, 3], &[4])?;
            Ok(t[0].histogram_edges(&e, None, false)?.0)
        },
        I64,
        &want,
    )?;
    Ok(())
}

/// histogram errors: zero bins, NaN or infinity in the data with the range taken from it, a
/// reversed or infinite range, weights of another shape, decreasing or 2-D edges.
pub fn histogram_errors(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let x = s
        .from_vec::<f64>(vec![1.0, f64::NAN, 2.0], &[3])?
        .with_chunks(&[1])?;
    assert_err!(
        x.histogram(0, None, None, false),
        Error::InvalidArgument { .. }
    );
    let e = assert_err!(
        x.histogram(4, None, None, false),
        Error::InvalidArgument { op, .. } if op == "histogram"
    );
    assert!(e.to_string().contains("not finite"), "{e}");
    // A given range drops the NaN instead.
    let (h, _) = x.histogram(2, Some((0.0, 4.0)), None, false)?;
    assert_eq!(h.to_array::<i64>()?.into_raw_vec_and_offset().0, vec![1, 1]);
    let inf = s.from_vec::<f32>(vec![1.0, f32::INFINITY], &[2])?;
    assert_err!(
        inf.histogram(3, None, None, false),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        x.histogram(3, Some((2.0, 1.0)), None, false),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        x.histogram(3, Some((0.0, f64::INFINITY)), None, false),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        x.histogram(3, Some((0.0, 1.0)), Some(&s.full(&[4], 1.0, F64)), false),
        Error::ShapeMismatch { .. }
    );
    let dec = s.from_vec::<f64>(vec![0.0, 2.0, 1.0], &[3])?;
    assert_err!(
        x.histogram_edges(&dec, None, false),
        Error::InvalidArgument { .. }
    );
    let two = s.full(&[2, 2], 1.0, F64);
    assert_err!(
        x.histogram_edges(&two, None, false),
        Error::InvalidArgument { .. }
    );
    Ok(())
}

/// `partition` / `argpartition`: for every `kth`, the element there is the one the sort puts
/// there, nothing before it sorts after it and nothing after it before it; positions index
/// the input to the same values. Every axis, ties and NaN, negative `kth`.
pub fn partition_invariants(cx: &mut Cx) -> Result<()> {
    for (dt, dom) in [(F64, Dom::Ties), (I32, Dom::Int(-3, 4))] {
        for shape in [&[19usize][..], &[6, 9]] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            for axis in 0..shape.len() {
                let len = shape[axis] as isize;
                let kth = [0isize, len / 2, -1];
                let t = cx.tensor(&x, 0)?;
                let p = values(&t.partition(&kth, axis as isize)?.execute()?);
                let ip = t.argpartition(&kth, axis as isize)?.to_array::<i64>()?;
                let ax = ndarray::Axis(axis);
                for ((lane, plane), ilane) in
                    vx.lanes(ax).into_iter().zip(p.lanes(ax)).zip(ip.lanes(ax))
                {
                    let mut s: Vec<f64> = lane.iter().copied().collect();
                    s.sort_by(|a, b| order(*a, *b));
                    for &k in &kth {
                        let k = k.rem_euclid(len) as usize;
                        let what = format!("partition({dt} {shape:?}, axis={axis}, kth={k})");
                        assert_eq!(order(plane[k], s[k]), Ordering::Equal, "{what}");
                        assert!(
                            plane
                                .iter()
                                .take(k)
                                .all(|&v| order(v, s[k]) != Ordering::Greater),
                            "{what}"
                        );
                        assert!(
                            plane
                                .iter()
                                .skip(k + 1)
                                .all(|&v| order(v, s[k]) != Ordering::Less),
                            "{what}"
                        );
                    }
                    for (j, &i) in ilane.iter().enumerate() {
                        assert_eq!(
                            order(lane[i as usize], plane[j]),
                            Ordering::Equal,
                            "argpartition"
                        );
                    }
                }
                assert_err!(
                    t.partition(&[len], axis as isize),
                    Error::InvalidArgument { .. }
                );
                assert_err!(
                    t.argpartition(&[-len - 1], axis as isize),
                    Error::InvalidArgument { .. }
                );
            }
        }
    }
    let z = cx.s.full(&[], 1.0, F64);
    assert_err!(z.partition(&[0], -1), Error::InvalidArgument { .. });
    Ok(())
}
