//! Cumulative sums and products, gathers (`take`, `take_along_axis`) and the data-dependent
//! ops (`nonzero`, boolean masks, `unique`), against references written here with plain loops.

use super::{max_abs, values, Cx, Dom, Tol};
use ndarray::{ArrayD, Axis, Dimension, IxDyn};
use rand::Rng;
use std::cmp::Ordering;
use tessera::{DType, Error, HostArray, Result};

use DType::{Bool, F32, F64, I32, I64};

/// Running sums (products) of every lane along `axis`, in order, with the empty one first
/// when `initial`.
fn scan_ref(v: &ArrayD<f64>, axis: usize, prod: bool, initial: bool) -> ArrayD<f64> {
    let mut shape = v.shape().to_vec();
    shape[axis] += initial as usize;
    let mut out = ArrayD::zeros(IxDyn(&shape));
    for (lane, mut dst) in v
        .lanes(Axis(axis))
        .into_iter()
        .zip(out.lanes_mut(Axis(axis)))
    {
        let mut acc = if prod { 1.0 } else { 0.0 };
        let mut d = dst.iter_mut();
        if initial {
            *d.next().expect("room for the initial value") = acc;
        }
        for (&x, o) in lane.iter().zip(d) {
            acc = if prod { acc * x } else { acc + x };
            *o = acc;
        }
    }
    out
}

/// `cumsum` and `cumprod` of 1-, 2- and 3-D inputs along every axis and flattened, with and
/// without the initial value, every dtype (result: int64 for bool and integers).
pub fn cumsum_cumprod(cx: &mut Cx) -> Result<()> {
    for (dt, dom, pdom) in [
        (F32, Dom::Range(-1.0, 1.0), Dom::Range(0.5, 1.5)),
        (F64, Dom::Range(-1.0, 1.0), Dom::Range(0.5, 1.5)),
        (I32, Dom::Int(-1000, 1000), Dom::Int(-2, 3)),
        (I64, Dom::Int(-1000, 1000), Dom::Int(-2, 3)),
        (Bool, Dom::Bool(0.5), Dom::Bool(0.8)),
    ] {
        let rdt = if dt.is_float() { dt } else { I64 };
        for shape in [&[17usize][..], &[13, 7], &[6, 5, 7], &[4, 0]] {
            for prod in [false, true] {
                let x = cx.host(shape, if prod { pdom } else { dom }, dt);
                let vx = values(&x);
                let flat = vx.to_shape(IxDyn(&[vx.len()])).expect("flat").to_owned();
                let nd = shape.len() as isize;
                let mut axes: Vec<Option<isize>> = (-nd..nd).map(Some).collect();
                axes.push(None);
                for axis in axes {
                    for initial in [false, true] {
                        let (src, ax) = match axis {
                            Some(a) => (&vx, a.rem_euclid(nd) as usize),
                            None => (&flat, 0),
                        };
                        let want = scan_ref(src, ax, prod, initial);
                        let what = format!(
                            "{}({dt} {shape:?}, axis={axis:?}, include_initial={initial})",
                            if prod { "cumprod" } else { "cumsum" }
                        );
                        let lane = src.shape()[ax];
                        let tol = Tol::accumulated(rdt, lane, max_abs(&want));
                        cx.approx(
                            &what,
                            &[&x],
                            |t| {
                                if prod {
                                    t[0].cumprod(axis, None, initial)
                                } else {
                                    t[0].cumsum(axis, None, initial)
                                }
                            },
                            rdt,
                            &want,
                            tol,
                        )?;
                    }
                }
            }
        }
    }
    // An explicit dtype, and a scan inside an expression.
    let x = cx.host(&[9, 11], Dom::Int(-50, 50), I32);
    let want = scan_ref(&values(&x), 1, false, false);
    cx.exact(
        "cumsum(int32, dtype=int32)",
        &[&x],
        |t| t[0].cumsum(Some(1), Some(I32), false),
        I32,
        &want,
    )?;
    let want = scan_ref(&values(&x).mapv(|v| v * 2.0 + 1.0), 0, false, false).mapv(|v| v - 3.0);
    cx.exact(
        "cumsum(x * 2 + 1, axis=0) - 3",
        &[&x],
        |t| Ok((&t[0] * 2 + 1).cumsum(Some(0), None, false)? - 3),
        I64,
        &want,
    )?;
    Ok(())
}

/// `take` along each axis and flattened, with repeated, negative and 2-D indices, at every
/// chunking of the data, against direct indexing.
pub fn take_gathers(cx: &mut Cx) -> Result<()> {
    for (dt, dom) in [
        (F32, Dom::Ties),
        (I64, Dom::Int(-100, 100)),
        (Bool, Dom::Bool(0.5)),
    ] {
        for shape in [&[17usize][..], &[13, 7], &[6, 5, 7]] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            let nd = shape.len() as isize;
            let mut axes: Vec<Option<isize>> = (-nd..nd).map(Some).collect();
            axes.push(None);
            for axis in axes {
                let flat = vx.to_shape(IxDyn(&[vx.len()])).expect("flat").to_owned();
                let (src, ax) = match axis {
                    Some(a) => (&vx, a.rem_euclid(nd) as usize),
                    None => (&flat, 0),
                };
                let len = src.shape()[ax] as i64;
                // 60 indices touch every chunk at unit chunking: several groups of input chunks,
                // added up.
                for ishape in [&[9usize][..], &[2, 3], &[0], &[60]] {
                    let n: usize = ishape.iter().product();
                    let idx: Vec<i64> = (0..n).map(|_| cx.rng().gen_range(-len..len)).collect();
                    let ih = HostArray::I64(
                        ArrayD::from_shape_vec(IxDyn(ishape), idx.clone()).expect("indices"),
                    );
                    let picked: Vec<usize> =
                        idx.iter().map(|&i| i.rem_euclid(len) as usize).collect();
                    let sel = src.select(Axis(ax), &picked);
                    let mut oshape = src.shape()[..ax].to_vec();
                    oshape.extend_from_slice(ishape);
                    oshape.extend_from_slice(&src.shape()[ax + 1..]);
                    let want = sel.to_shape(IxDyn(&oshape)).expect("shape").to_owned();
                    let what = format!("take({dt} {shape:?}, indices {ishape:?}, axis={axis:?})");
                    // The indices stay one chunk: their chunking is not what is tested.
                    let s = cx.s.clone();
                    cx.exact(
                        &what,
                        &[&x],
                        |t| t[0].take(&s.from_host(ih.clone()), axis),
                        dt,
                        &want,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// `take_along_axis` with argsort's positions (gives the sort), with random negative
/// indices, and with indices that broadcast off the axis.
pub fn take_along_axis_cases(cx: &mut Cx) -> Result<()> {
    for shape in [&[17usize][..], &[13, 7], &[6, 5, 7]] {
        let x = cx.host(shape, Dom::Ties, F64);
        let vx = values(&x);
        let nd = shape.len() as isize;
        for axis in -nd..nd {
            let ax = axis.rem_euclid(nd) as usize;
            // The sort through argsort.
            let mut want = vx.clone();
            for mut lane in want.lanes_mut(Axis(ax)) {
                let mut v: Vec<f64> = lane.iter().copied().collect();
                v.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ => a.partial_cmp(b).expect("numbers"),
                });
                for (o, v) in lane.iter_mut().zip(v) {
                    *o = v;
                }
            }
            cx.exact(
                &format!("take_along_axis(x, argsort(x), {axis}) {shape:?}"),
                &[&x],
                |t| t[0].take_along_axis(&t[0].argsort(axis, false)?, axis),
                F64,
                &want,
            )?;
            // Random indices, k of them per lane, as a second chunked operand.
            let len = shape[ax] as i64;
            let mut ishape = shape.to_vec();
            ishape[ax] = 5;
            let n: usize = ishape.iter().product();
            let iv: Vec<i64> = (0..n).map(|_| cx.rng().gen_range(-len..len)).collect();
            let ia = ArrayD::from_shape_vec(IxDyn(&ishape), iv).expect("indices");
            let mut want = ArrayD::zeros(IxDyn(&ishape));
            for (pos, &i) in ia.indexed_iter() {
                let mut src = pos.slice().to_vec();
                src[ax] = i.rem_euclid(len) as usize;
                want[pos] = vx[IxDyn(&src)];
            }
            let ih = HostArray::I64(ia);
            cx.exact(
                &format!("take_along_axis({shape:?}, random {ishape:?}, {axis})"),
                &[&x, &ih],
                |t| t[0].take_along_axis(&t[1], axis),
                F64,
                &want,
            )?;
        }
    }
    // Indices of one row broadcast over the other axis.
    let x = cx.host(&[6, 9], Dom::Range(-1.0, 1.0), F32);
    let vx = values(&x);
    let row = [8i64, 0, -1, 3];
    let ih = HostArray::I64(ArrayD::from_shape_vec(IxDyn(&[1, 4]), row.to_vec()).expect("row"));
    let want = ArrayD::from_shape_fn(IxDyn(&[6, 4]), |p| {
        vx[[p[0], row[p[1]].rem_euclid(9) as usize]]
    });
    cx.exact(
        "take_along_axis([6, 9], [1, 4] broadcast, 1)",
        &[&x, &ih],
        |t| t[0].take_along_axis(&t[1], 1),
        F32,
        &want,
    )
}

/// `nonzero` (as the stacked coordinates, numpy's `argwhere`) and `x[mask]` for a full mask,
/// a mask over leading axes and masks that keep nothing or everything.
pub fn nonzero_and_masks(cx: &mut Cx) -> Result<()> {
    for (dt, dom) in [
        (F64, Dom::Ties),
        (I32, Dom::Int(-1, 2)),
        (Bool, Dom::Bool(0.3)),
    ] {
        for shape in [&[17usize][..], &[13, 7], &[6, 5, 7], &[4, 0]] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            let hits: Vec<Vec<usize>> = vx
                .indexed_iter()
                .filter(|(_, &v)| v != 0.0)
                .map(|(p, _)| p.slice().to_vec())
                .collect();
            let nd = shape.len();
            let want = ArrayD::from_shape_fn(IxDyn(&[hits.len(), nd]), |p| hits[p[0]][p[1]] as f64);
            cx.exact(
                &format!("argwhere({dt} {shape:?})"),
                &[&x],
                |t| {
                    let c = t[0].nonzero()?;
                    tessera::stack(&c.iter().collect::<Vec<_>>(), 1)
                },
                I64,
                &want,
            )?;
            // x[x > 0]
            let kept: Vec<f64> = vx.iter().copied().filter(|&v| v > 0.0).collect();
            let want = ArrayD::from_shape_vec(IxDyn(&[kept.len()]), kept).expect("kept");
            cx.exact(
                &format!("x[x > 0] ({dt} {shape:?})"),
                &[&x],
                |t| t[0].mask_select(&t[0].gt(0)?),
                dt,
                &want,
            )?;
        }
    }
    // A mask over the leading axis keeps whole rows; all-false and all-true masks.
    let x = cx.host(&[6, 5, 7], Dom::Range(-1.0, 1.0), F32);
    let vx = values(&x);
    for m in [
        vec![true, false, true, true, false, false],
        vec![false; 6],
        vec![true; 6],
    ] {
        let rows: Vec<usize> = (0..6).filter(|&i| m[i]).collect();
        let want = vx.select(Axis(0), &rows);
        let mh = HostArray::Bool(ArrayD::from_shape_vec(IxDyn(&[6]), m.clone()).expect("mask"));
        cx.exact(
            &format!("x[{m:?}] over [6, 5, 7]"),
            &[&x, &mh],
            |t| t[0].mask_select(&t[1]),
            F32,
            &want,
        )?;
    }
    Ok(())
}

/// numpy's order for unique: NaN after every number.
fn total(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).expect("numbers"),
    }
}

/// `unique` (values, first indices, inverse, counts) with ties and NaN, NaNs equal or not,
/// against a reference by stable sort and grouping.
pub fn unique_all_cases(cx: &mut Cx) -> Result<()> {
    for (dt, dom) in [
        (F64, Dom::Ties),
        (F32, Dom::Ties),
        (I64, Dom::Int(-5, 5)),
        (Bool, Dom::Bool(0.5)),
    ] {
        for shape in [&[17usize][..], &[13, 7], &[1], &[0], &[4, 0]] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            let flat: Vec<f64> = vx.iter().copied().collect();
            for equal_nan in [true, false] {
                let mut order: Vec<usize> = (0..flat.len()).collect();
                order.sort_by(|&a, &b| total(flat[a], flat[b]).then(a.cmp(&b)));
                let same = |a: f64, b: f64| a == b || (equal_nan && a.is_nan() && b.is_nan());
                let (mut vals, mut first, mut counts) = (Vec::new(), Vec::new(), Vec::new());
                let mut inverse = vec![0.0; flat.len()];
                for &i in &order {
                    if vals.is_empty() || !same(*vals.last().expect("a value"), flat[i]) {
                        vals.push(flat[i]);
                        first.push(i as f64);
                        counts.push(0.0);
                    }
                    *counts.last_mut().expect("a count") += 1.0;
                    inverse[i] = (vals.len() - 1) as f64;
                }
                let n = vals.len();
                let arr = |v: Vec<f64>| ArrayD::from_shape_vec(IxDyn(&[n]), v).expect("1-d");
                let what = |f: &str| format!("unique({dt} {shape:?}, equal_nan={equal_nan}).{f}");
                cx.exact(
                    &what("values"),
                    &[&x],
                    |t| Ok(t[0].unique(equal_nan)?.values),
                    dt,
                    &arr(vals),
                )?;
                cx.exact(
                    &what("indices"),
                    &[&x],
                    |t| Ok(t[0].unique(equal_nan)?.indices),
                    I64,
                    &arr(first),
                )?;
                cx.exact(
                    &what("counts"),
                    &[&x],
                    |t| Ok(t[0].unique(equal_nan)?.counts),
                    I64,
                    &arr(counts),
                )?;
                let inv = ArrayD::from_shape_vec(IxDyn(shape), inverse).expect("inverse");
                cx.exact(
                    &what("inverse"),
                    &[&x],
                    |t| Ok(t[0].unique(equal_nan)?.inverse),
                    I64,
                    &inv,
                )?;
            }
        }
    }
    Ok(())
}

/// Bad indices and masks are typed errors naming the operands, never a panic or wrong data.
pub fn gather_errors(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let x = s.from_vec::<f32>((0..12).map(|v| v as f32).collect(), &[3, 4])?;
    let idx = |v: Vec<i64>| s.from_vec::<i64>(v.clone(), &[v.len()]);
    // take: out of bounds (numpy's IndexError), float indices, 0-d with an axis.
    let e = x.take(&idx(vec![0, 4])?, Some(1)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::IndexOutOfBounds {
                index: 4,
                len: 4,
                axis: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("[3, 4]"), "{e}");
    let e = x.take(&idx(vec![-13])?, None).unwrap_err();
    assert!(
        matches!(
            e,
            Error::IndexOutOfBounds {
                index: -13,
                len: 12,
                ..
            }
        ),
        "{e}"
    );
    let f = s.from_vec::<f32>(vec![0.0], &[1])?;
    assert!(matches!(
        x.take(&f, Some(0)),
        Err(Error::UnsupportedDType { .. })
    ));
    let z = s.from_vec::<f32>(vec![1.0], &[])?;
    assert!(z.take(&idx(vec![0])?, Some(0)).is_err());
    // take_along_axis: dims, broadcasting, and an index out of range found when it runs.
    let e = x.take_along_axis(&idx(vec![0])?, 1).unwrap_err();
    assert!(e.to_string().contains("same number of dimensions"), "{e}");
    let bad = s.from_vec::<i64>(vec![0, 1, 2, 3, 4, 0], &[2, 3])?;
    assert!(matches!(
        x.take_along_axis(&bad, 1),
        Err(Error::ShapeMismatch { .. })
    ));
    let far = s.from_vec::<i64>(vec![0, 1, 9], &[3, 1])?;
    let e = x.take_along_axis(&far, 1)?.execute().unwrap_err();
    assert!(
        matches!(
            e,
            Error::IndexOutOfBounds {
                index: 9,
                len: 4,
                ..
            }
        ),
        "{e}"
    );
    // nonzero of 0-d; masks that are not bool or do not match.
    assert!(matches!(z.nonzero(), Err(Error::InvalidArgument { .. })));
    let m = s.from_vec::<bool>(vec![true, false], &[2])?;
    assert!(matches!(
        x.mask_select(&m),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        x.mask_select(&x),
        Err(Error::InvalidArgument { .. })
    ));
    // cumsum into bool is refused; an axis out of range.
    assert!(matches!(
        x.cumsum(Some(0), Some(Bool), false),
        Err(Error::UnsupportedDType { .. })
    ));
    assert!(matches!(
        x.cumsum(Some(2), None, false),
        Err(Error::AxisOutOfRange { .. })
    ));
    Ok(())
}
