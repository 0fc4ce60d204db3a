//! Reductions over single, negative and sets of axes, all axes, with keepdims; var/std with
//! ddof; argmin/argmax with ties; result dtypes (integer sums are int64).

use super::reference as r;
use super::{fit, values, Chunking, Cx, Dom, Tol};
use ndarray::{arr1, ArrayD};
use tessera::{Axes, DType, Result, Tensor};

use DType::{Bool, F32, F64, I32, I64};

/// Axis sets tried on 3-D inputs (`None`: all axes).
const AXES_3D: [Option<&[isize]>; 10] = [
    None,
    Some(&[0]),
    Some(&[1]),
    Some(&[2]),
    Some(&[-1]),
    Some(&[-3]),
    Some(&[0, 2]),
    Some(&[2, 0]),
    Some(&[-1, -2]),
    Some(&[0, 1, 2]),
];
const AXES_2D: [Option<&[isize]>; 4] = [None, Some(&[0]), Some(&[1]), Some(&[-2, -1])];

fn to_axes(a: Option<&[isize]>) -> Axes {
    a.map_or(Axes::All, |v| Axes::Some(v.to_vec()))
}

type Reduce = fn(&Tensor, Axes, bool) -> Result<Tensor>;

struct Reduction {
    op: Reduce,
    lane: fn(&[f64]) -> f64,
    /// (input dtype, result dtype, input domain)
    dtypes: &'static [(DType, DType, Dom)],
    /// Magnitude of the result from the inputs' largest magnitude (for the absolute tolerance).
    scale: fn(f64) -> f64,
}

fn reduction(cx: &mut Cx, name: &str, spec: Reduction) -> Result<()> {
    for &(dt, rdt, dom) in spec.dtypes {
        for (shape, axes_list) in [
            (&[6usize, 5, 7][..], &AXES_3D[..]),
            (&[13, 7], &AXES_2D[..]),
        ] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            let scale = (spec.scale)(super::max_abs(&vx));
            for &axes in axes_list {
                let ax = r::axes(axes, shape.len());
                let n: usize = ax.iter().map(|&a| shape[a]).product();
                let tol = Tol::accumulated(rdt, n, scale);
                for keepdims in [false, true] {
                    let want = r::reduce(&vx, &ax, keepdims, |l| fit((spec.lane)(l), rdt));
                    let what =
                        format!("{name}({dt} {shape:?}, axes={axes:?}, keepdims={keepdims})");
                    cx.approx(
                        &what,
                        &[&x],
                        |t| (spec.op)(&t[0], to_axes(axes), keepdims),
                        rdt,
                        &want,
                        tol,
                    )?;
                }
            }
        }
    }
    Ok(())
}

macro_rules! reductions {
    ($($name:ident: $op:expr, $lane:expr, $scale:expr, [$(($dt:expr, $rdt:expr, $dom:expr)),* $(,)?];)*) => {$(
        #[doc = concat!("`", stringify!($name), "` over every axis set, with and without keepdims.")]
        pub fn $name(cx: &mut Cx) -> Result<()> {
            reduction(cx, stringify!($name), Reduction { op: $op, lane: $lane, dtypes: &[$(($dt, $rdt, $dom)),*], scale: $scale })
        }
    )*};
}

const R: Dom = Dom::Range(-2.0, 2.0);
const INTS: Dom = Dom::Int(-1000, 1000);

reductions! {
    sum: |t, a, k| t.sum(a, k), r::sum, |m| m,
        [(F32, F32, R), (F64, F64, R), (I32, I64, INTS), (I64, I64, INTS), (Bool, I64, Dom::Bool(0.5))];
    prod: |t, a, k| t.prod(a, k), r::prod, |_| 0.0,
        [(F32, F32, Dom::Away(0.8, 1.25)), (F64, F64, Dom::Away(0.8, 1.25)), (I32, I64, Dom::Units),
         (I64, I64, Dom::Units), (Bool, I64, Dom::Bool(0.9))];
    mean: |t, a, k| t.mean(a, k), r::mean, |m| m,
        [(F32, F32, R), (F64, F64, R), (I32, F64, INTS), (I64, F64, INTS), (Bool, F64, Dom::Bool(0.5))];
    min: |t, a, k| t.min(a, k), r::min, |m| m,
        [(F32, F32, R), (F64, F64, R), (F64, F64, Dom::WithNan(-2.0, 2.0)), (I32, I32, INTS), (I64, I64, INTS),
         (Bool, Bool, Dom::Bool(0.8))];
    max: |t, a, k| t.max(a, k), r::max, |m| m,
        [(F32, F32, R), (F64, F64, R), (F32, F32, Dom::WithNan(-2.0, 2.0)), (I32, I32, INTS), (I64, I64, INTS),
         (Bool, Bool, Dom::Bool(0.2))];
    any: |t, a, k| t.any(a, k), r::any, |_| 0.0,
        [(Bool, Bool, Dom::Bool(0.1)), (F32, Bool, Dom::Bool(0.1)), (F64, Bool, Dom::Bool(0.1)), (I32, Bool, Dom::Bool(0.1))];
    all: |t, a, k| t.all(a, k), r::all, |_| 0.0,
        [(Bool, Bool, Dom::Bool(0.9)), (F32, Bool, Dom::Bool(0.9)), (F64, Bool, Dom::Bool(0.9)), (I32, Bool, Dom::Bool(0.9))];
}

const VAR_DTYPES: &[(DType, DType, Dom)] = &[
    (F32, F32, R),
    (F64, F64, R),
    (I32, F64, Dom::Int(-50, 50)),
    (Bool, F64, Dom::Bool(0.5)),
];

/// var with ddof 0 and 1.
pub fn var(cx: &mut Cx) -> Result<()> {
    reduction(
        cx,
        "var(ddof=0)",
        Reduction {
            op: |t, a, k| t.var(a, k, 0),
            lane: |l| r::var(l, 0),
            dtypes: VAR_DTYPES,
            scale: |m| m * m,
        },
    )?;
    reduction(
        cx,
        "var(ddof=1)",
        Reduction {
            op: |t, a, k| t.var(a, k, 1),
            lane: |l| r::var(l, 1),
            dtypes: VAR_DTYPES,
            scale: |m| m * m,
        },
    )
}

/// std with ddof 0 and 1.
pub fn std_dev(cx: &mut Cx) -> Result<()> {
    reduction(
        cx,
        "std(ddof=0)",
        Reduction {
            op: |t, a, k| t.std(a, k, 0),
            lane: |l| r::var(l, 0).sqrt(),
            dtypes: VAR_DTYPES,
            scale: |m| m,
        },
    )?;
    reduction(
        cx,
        "std(ddof=1)",
        Reduction {
            op: |t, a, k| t.std(a, k, 1),
            lane: |l| r::var(l, 1).sqrt(),
            dtypes: VAR_DTYPES,
            scale: |m| m,
        },
    )
}

type Arg = fn(&Tensor, Option<isize>) -> Result<Tensor>;

fn arg_reduction(cx: &mut Cx, name: &str, op: Arg, lane: fn(&[f64]) -> f64) -> Result<()> {
    // Ties dominate so the first-index rule is exercised across chunk boundaries.
    let dtypes = [
        (F32, Dom::Ties),
        (F64, Dom::Range(-1.0, 1.0)),
        (F64, Dom::Ties),
        (I32, Dom::Int(-2, 3)),
        (I64, Dom::Int(-50, 50)),
        (Bool, Dom::Bool(0.3)),
    ];
    for (dt, dom) in dtypes {
        for shape in [&[6usize, 5, 7][..], &[13, 7]] {
            let x = cx.host(shape, dom, dt);
            let vx = values(&x);
            let nd = shape.len() as isize;
            for axis in [None, Some(0), Some(1), Some(nd - 1), Some(-1), Some(-nd)] {
                let want = match axis {
                    None => r::scalar(lane(vx.as_standard_layout().as_slice().unwrap())),
                    Some(a) => r::reduce(&vx, &[r::axis(a, shape.len())], false, lane),
                };
                let what = format!("{name}({dt} {shape:?}, axis={axis:?})");
                cx.exact(&what, &[&x], |t| op(&t[0], axis), I64, &want)?;
            }
        }
    }
    Ok(())
}

/// argmin along each axis and flattened; ties and NaN give the first index.
pub fn argmin(cx: &mut Cx) -> Result<()> {
    arg_reduction(cx, "argmin", Tensor::argmin, r::argmin)
}

/// argmax along each axis and flattened; ties and NaN give the first index.
pub fn argmax(cx: &mut Cx) -> Result<()> {
    arg_reduction(cx, "argmax", Tensor::argmax, r::argmax)
}

/// Reductions of expressions and of reductions; centring with keepdims and broadcasting back.
pub fn reduce_of_expression(cx: &mut Cx) -> Result<()> {
    let a = cx.host(&[6, 5, 7], R, F64);
    let bb = cx.host(&[5, 7], R, F64);
    let (va, vb) = (values(&a), values(&bb));
    let tol = Tol::accumulated(F64, 210, 10.0);
    let prod = r::zip(&va, &vb, |x, y| x * y + 1.0);
    let want = r::reduce(&prod, &[1], false, r::sum);
    cx.approx(
        "sum(a * b + 1, axis=1)",
        &[&a, &bb],
        |t| (&t[0] * &t[1] + 1.0).sum(1, false),
        F64,
        &want,
        tol,
    )?;
    let want = r::reduce(&r::reduce(&va, &[0], false, r::sum), &[1], false, r::max);
    cx.approx(
        "max(sum(a, 0), -1)",
        &[&a],
        |t| t[0].sum(0, false)?.max(-1, false),
        F64,
        &want,
        tol,
    )?;
    let centred = r::zip(&va, &r::reduce(&va, &[1], true, r::mean), |x, m| x - m);
    cx.approx(
        "a - mean(a, 1, keepdims)",
        &[&a],
        |t| t[0].sub(&t[0].mean(1, true)?),
        F64,
        &centred,
        tol,
    )?;
    let want = r::reduce(&centred, &[1], false, r::sum);
    cx.approx(
        "sum(a - mean(a, 1, keepdims), 1) ~ 0",
        &[&a],
        |t| t[0].sub(&t[0].mean(1, true)?)?.sum(1, false),
        F64,
        &want,
        tol,
    )?;
    let want = r::reduce(&r::map(&va, |x| r::b(x > 0.0)), &[0, 2], false, r::sum);
    cx.approx(
        "sum(a > 0, (0, 2)) (count)",
        &[&a],
        |t| t[0].gt(0.0)?.sum([0, 2], false),
        I64,
        &want,
        Tol::EXACT,
    )?;
    let want = r::reduce(&prod, &[2], false, r::argmax);
    cx.approx(
        "argmax(a * b + 1, -1)",
        &[&a, &bb],
        |t| (&t[0] * &t[1] + 1.0).argmax(Some(-1)),
        I64,
        &want,
        Tol::EXACT,
    )
}

/// Integer sums, products and counts widen to int64 and stay exact beyond the int32 range.
pub fn int_sum_dtype(cx: &mut Cx) -> Result<()> {
    let big = ArrayD::from_elem(ndarray::IxDyn(&[1000]), 2_000_000_000i32);
    for ch in [Chunking::One, Chunking::Uneven, Chunking::Unit] {
        let t = ch.apply(cx.s.from_array(big.clone()), 0)?;
        let sum = t.sum(Axes::All, false)?;
        assert_eq!(sum.dtype(), I64, "sum of int32 is int64");
        assert_eq!(
            sum.execute()?,
            tessera::HostArray::I64(r::scalar(2e12).mapv(|v| v as i64)),
            "{ch:?}: exact int64 sum"
        );
        let count = t.gt(0)?.sum(0, false)?;
        assert_eq!(count.dtype(), I64, "sum of bool is int64");
        assert_eq!(count.item()?, 1000.0);
        assert_eq!(t.max(0, false)?.dtype(), I32, "max keeps int32");
        assert_eq!(t.mean(0, false)?.dtype(), F64, "mean of int32 is float64");
        let p =
            cx.s.from_array(arr1(&[65536i32, 65536, 3]).into_dyn())
                .with_chunks(&[1])?
                .prod(0, false)?;
        assert_eq!(
            (p.dtype(), p.item()?),
            (I64, 3.0 * 2f64.powi(32)),
            "prod of int32 is int64"
        );
    }
    let s =
        cx.s.from_array(arr1(&[1.5f32, 2.25]).into_dyn())
            .sum(0, false)?;
    assert_eq!(
        (s.dtype(), s.item()?),
        (F32, 3.75),
        "sum of float32 is float32"
    );
    Ok(())
}

/// Ties resolve to the first index, whatever chunk holds the later copies.
pub fn argminmax_ties_first_index(cx: &mut Cx) -> Result<()> {
    let x = ndarray::arr2(&[
        [3.0, 1.0, 1.0, 3.0, 0.0, 0.0],
        [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
        [5.0, -1.0, 5.0, -1.0, 5.0, -1.0],
    ])
    .into_dyn();
    for chunk in [[3, 6], [1, 1], [2, 4], [1, 5], [3, 1]] {
        let t = cx.s.from_array(x.clone()).with_chunks(&chunk)?;
        let got = |t: Result<Tensor>| {
            t.and_then(|t| t.to_array::<i64>())
                .map(|a| a.iter().copied().collect::<Vec<_>>())
        };
        assert_eq!(
            got(t.argmax(Some(1)))?,
            vec![0, 0, 0],
            "argmax axis 1, chunks {chunk:?}"
        );
        assert_eq!(
            got(t.argmin(Some(1)))?,
            vec![4, 0, 1],
            "argmin axis 1, chunks {chunk:?}"
        );
        assert_eq!(
            got(t.argmax(Some(0)))?,
            vec![2, 1, 2, 0, 2, 1],
            "argmax axis 0, chunks {chunk:?}"
        );
        assert_eq!(
            got(t.argmax(None))?,
            vec![12],
            "argmax flat, chunks {chunk:?}"
        );
        assert_eq!(
            got(t.argmin(None))?,
            vec![13],
            "argmin flat, chunks {chunk:?}"
        );
    }
    Ok(())
}

/// argmin/argmax of a 0-d array with axis 0 or -1 is 0 (numpy ravels it to 1-d); axis 1 and
/// -2 are out of range for that 1-d view.
pub fn argminmax_zero_dim(cx: &mut Cx) -> Result<()> {
    let v = cx.value(Dom::Range(-100.0, 100.0));
    for dt in [F32, F64, I32, I64, Bool] {
        let x = cx.s.full(&[], v, dt);
        for axis in [Some(0), Some(-1), None] {
            for (name, t) in [("argmax", x.argmax(axis)?), ("argmin", x.argmin(axis)?)] {
                assert_eq!(t.dtype(), I64, "{name}({dt} 0-d, {axis:?})");
                let got = t.to_array::<i64>()?;
                assert_eq!(got.shape(), &[] as &[usize], "{name}({dt} 0-d, {axis:?})");
                assert_eq!(got.iter().copied().collect::<Vec<_>>(), vec![0]);
            }
        }
        for axis in [1, -2] {
            crate::assert_err!(
                x.argmax(Some(axis)),
                tessera::Error::AxisOutOfRange { ndim: 1, .. }
            );
            crate::assert_err!(
                x.argmin(Some(axis)),
                tessera::Error::AxisOutOfRange { ndim: 1, .. }
            );
        }
    }
    Ok(())
}
