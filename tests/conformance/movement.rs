//! Data movement: reshape across chunk boundaries, transposes, size-1 axes, broadcast_to,
//! basic slicing, concatenate/stack with disagreeing chunkings, rechunk. Results are exact.

use super::reference as r;
use super::{values, Cx, Dom};
use ndarray::{ArrayD, Axis, IxDyn};
use rand::rngs::StdRng;
use rand::Rng;
use tessera::{all, s, DType, HostArray, Result, SliceArg, Tensor};

use SliceArg::{Ellipsis, Index, NewAxis};

/// Test inputs of `shape` in f64 and in i32 (data movement must keep every dtype).
fn inputs(cx: &mut Cx, shape: &[usize]) -> [HostArray; 2] {
    [
        cx.host(shape, Dom::Range(-100.0, 100.0), DType::F64),
        cx.host(shape, Dom::Range(-100.0, 100.0), DType::I32),
    ]
}

/// Checks `build(x)` against `want(values of x)` for each input.
fn each(
    cx: &mut Cx,
    shape: &[usize],
    what: &str,
    build: impl Fn(&Tensor) -> Result<Tensor>,
    want: impl Fn(&ArrayD<f64>) -> ArrayD<f64>,
) -> Result<()> {
    for x in inputs(cx, shape) {
        let what = format!("{what} ({} {shape:?})", x.dtype());
        cx.exact(
            &what,
            &[&x],
            |t| build(&t[0]),
            x.dtype(),
            &want(&values(&x)),
        )?;
    }
    Ok(())
}

/// The size of `shape` with one -1 resolved.
fn resolve(shape: &[isize], size: usize) -> Vec<usize> {
    let known: isize = shape.iter().filter(|&&d| d >= 0).product();
    shape
        .iter()
        .map(|&d| {
            if d < 0 {
                size / known as usize
            } else {
                d as usize
            }
        })
        .collect()
}

/// Reshapes that move data across chunk boundaries, split and merge axes, and add or drop
/// size-1 axes; also of a transposed input and chained.
pub fn reshape(cx: &mut Cx) -> Result<()> {
    #[rustfmt::skip]
    let targets: [(&[usize], &[&[isize]]); 2] = [
        (&[12, 10], &[&[8, 15], &[120], &[2, 60], &[-1, 4], &[10, 12], &[3, 4, 10], &[4, -1, 5], &[12, 10, 1], &[1, 12, 10], &[12, 1, 10], &[5, 24]]),
        (&[6, 5, 7], &[&[35, 6], &[210], &[5, 42], &[7, -1], &[6, 35], &[30, 7], &[6, 5, 7, 1], &[2, 3, 35]]),
    ];
    for (shape, list) in targets {
        let size = shape.iter().product();
        for &to in list {
            let out = resolve(to, size);
            each(
                cx,
                shape,
                &format!("reshape {to:?}"),
                |t| t.reshape(to),
                |a| r::reshape(a, &out),
            )?;
        }
    }
    each(
        cx,
        &[12, 10],
        "T then reshape (8, 15)",
        |t| t.T()?.reshape(&[8, 15]),
        |a| r::reshape(&r::transpose(a, &[1, 0]), &[8, 15]),
    )?;
    each(
        cx,
        &[12, 10],
        "reshape (120,) -> (8, 15) -> (3, 40)",
        |t| t.reshape(&[120])?.reshape(&[8, 15])?.reshape(&[3, 40]),
        |a| r::reshape(a, &[3, 40]),
    )?;
    each(
        cx,
        &[12, 10],
        "reshape (-1,) + 1",
        |t| t.reshape(&[-1])?.add(1),
        |a| r::reshape(&r::map(a, |v| v + 1.0), &[120]),
    )
}

/// Every permutation of a 3-D array (also with negative axes) and the default reversal.
pub fn transpose(cx: &mut Cx) -> Result<()> {
    let perms: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for p in perms {
        let axes: Vec<isize> = p.iter().map(|&x| x as isize).collect();
        each(
            cx,
            &[3, 4, 5],
            &format!("transpose {p:?}"),
            |t| t.transpose(Some(&axes)),
            |a| r::transpose(a, &p),
        )?;
    }
    each(
        cx,
        &[3, 4, 5],
        "transpose [-1, 0, -2]",
        |t| t.transpose(Some(&[-1, 0, -2])),
        |a| r::transpose(a, &[2, 0, 1]),
    )?;
    each(
        cx,
        &[6, 5, 7],
        "transpose None",
        |t| t.transpose(None),
        |a| r::transpose(a, &[2, 1, 0]),
    )?;
    each(
        cx,
        &[6, 5, 7],
        "transpose twice",
        |t| t.transpose(Some(&[1, 2, 0]))?.transpose(Some(&[2, 0, 1])),
        |a| a.clone(),
    )?;
    each(
        cx,
        &[13, 7],
        "transpose + add",
        |t| t.transpose(None)?.add(&t.transpose(None)?),
        |a| r::transpose(&r::map(a, |v| 2.0 * v), &[1, 0]),
    )
}

/// `.T` of 1-D, 2-D and 3-D arrays.
pub fn transpose_t(cx: &mut Cx) -> Result<()> {
    each(cx, &[13, 7], ".T", |t| t.T(), |a| r::transpose(a, &[1, 0]))?;
    each(cx, &[4, 9], ".T", |t| t.T(), |a| r::transpose(a, &[1, 0]))?;
    each(
        cx,
        &[6, 5, 7],
        ".T",
        |t| t.T(),
        |a| r::transpose(a, &[2, 1, 0]),
    )?;
    each(cx, &[11], ".T", |t| t.T(), |a| a.clone())
}

/// swapaxes with positive, negative and equal axes.
pub fn swapaxes(cx: &mut Cx) -> Result<()> {
    let cases: [(isize, isize, [usize; 3]); 4] = [
        (0, 2, [2, 1, 0]),
        (-1, 0, [2, 1, 0]),
        (1, 1, [0, 1, 2]),
        (0, -2, [1, 0, 2]),
    ];
    for (a, b, p) in cases {
        each(
            cx,
            &[3, 4, 5],
            &format!("swapaxes({a}, {b})"),
            |t| t.swapaxes(a, b),
            |x| r::transpose(x, &p),
        )?;
    }
    each(
        cx,
        &[13, 7],
        "swapaxes(0, 1)",
        |t| t.swapaxes(0, 1),
        |x| r::transpose(x, &[1, 0]),
    )
}

/// expand_dims at every position; squeeze of all or chosen size-1 axes.
pub fn expand_dims_squeeze(cx: &mut Cx) -> Result<()> {
    for (axis, at) in [(0isize, 0usize), (1, 1), (2, 2), (-1, 2), (-3, 0), (-2, 1)] {
        each(
            cx,
            &[13, 7],
            &format!("expand_dims({axis})"),
            |t| t.expand_dims(axis),
            |a| a.clone().insert_axis(Axis(at)),
        )?;
    }
    let cases: [(Option<&[isize]>, &[usize]); 5] = [
        (None, &[13, 7]),
        (Some(&[0]), &[13, 1, 7]),
        (Some(&[-2]), &[1, 13, 7]),
        (Some(&[0, 2]), &[13, 7]),
        (Some(&[]), &[1, 13, 1, 7]),
    ];
    for (axes, out) in cases {
        each(
            cx,
            &[1, 13, 1, 7],
            &format!("squeeze({axes:?})"),
            |t| t.squeeze(axes),
            |a| r::reshape(a, out),
        )?;
    }
    each(
        cx,
        &[13, 7],
        "expand_dims(1) then squeeze",
        |t| t.expand_dims(1)?.squeeze(None),
        |a| a.clone(),
    )?;
    each(
        cx,
        &[1, 1, 1],
        "squeeze to 0-d",
        |t| t.squeeze(None),
        |a| r::reshape(a, &[]),
    )?;
    each(
        cx,
        &[],
        "expand_dims of 0-d",
        |t| t.expand_dims(0),
        |a| r::reshape(a, &[1]),
    )?;
    each(
        cx,
        &[],
        "reshape 0-d to (1, 1)",
        |t| t.reshape(&[1, 1])?.reshape(&[]),
        |a| a.clone(),
    )
}

/// broadcast_to from lower rank, size-1 axes and 0-d.
pub fn broadcast_to(cx: &mut Cx) -> Result<()> {
    let cases: [(&[usize], &[usize]); 6] = [
        (&[7], &[13, 7]),
        (&[13, 1], &[13, 7]),
        (&[1, 7], &[4, 13, 7]),
        (&[3, 1, 6], &[3, 5, 6]),
        (&[], &[4, 9]),
        (&[13, 7], &[2, 13, 7]),
    ];
    for (from, to) in cases {
        each(
            cx,
            from,
            &format!("broadcast_to {to:?}"),
            |t| t.broadcast_to(to),
            |a| a.broadcast(IxDyn(to)).unwrap().to_owned(),
        )?;
    }
    each(
        cx,
        &[13, 1],
        "broadcast_to then add",
        |t| {
            t.broadcast_to(&[13, 7])?.add(
                &t.T()?
                    .broadcast_to(&[13, 13])?
                    .slice(&[all(), s(None, Some(7), 1)])?,
            )
        },
        |a| {
            let x = a.broadcast(IxDyn(&[13, 7])).unwrap().to_owned();
            let y = r::slice(
                &r::transpose(a, &[1, 0])
                    .broadcast(IxDyn(&[13, 13]))
                    .unwrap()
                    .to_owned(),
                &[all(), s(None, Some(7), 1)],
            );
            r::zip(&x, &y, |p, q| p + q)
        },
    )
}

fn slices(cx: &mut Cx, shape: &[usize], list: &[&[SliceArg]]) -> Result<()> {
    for &args in list {
        each(
            cx,
            shape,
            &format!("slice {args:?}"),
            |t| t.slice(args),
            |a| r::slice(a, args),
        )?;
    }
    Ok(())
}

/// Positive steps, negative starts/stops, out-of-range bounds.
pub fn slice_steps(cx: &mut Cx) -> Result<()> {
    let two: &[&[SliceArg]] = &[
        &[s(Some(1), None, 2)],
        &[s(None, None, 3), s(Some(1), Some(6), 2)],
        &[all(), s(Some(2), Some(-1), 1)],
        &[s(Some(-5), None, 1)],
        &[s(Some(3), Some(100), 1)],
        &[s(Some(-100), Some(4), 5), s(Some(-3), None, 1)],
    ];
    slices(cx, &[13, 7], two)?;
    let three: &[&[SliceArg]] = &[
        &[
            s(None, None, 2),
            s(Some(1), Some(4), 1),
            s(Some(0), None, 3),
        ],
        &[all(), all(), s(Some(2), Some(6), 3)],
    ];
    slices(cx, &[6, 5, 7], three)
}

/// Negative steps, alone and mixed with positive ones.
pub fn slice_negative_steps(cx: &mut Cx) -> Result<()> {
    let two: &[&[SliceArg]] = &[
        &[s(None, None, -1)],
        &[s(None, None, -2), s(None, None, -1)],
        &[s(Some(10), Some(2), -3)],
        &[s(Some(-2), None, -4), s(Some(5), Some(0), -2)],
        &[s(Some(100), Some(-100), -1)],
        &[s(Some(1), None, 2), s(None, Some(-8), -1)],
    ];
    slices(cx, &[13, 7], two)?;
    let three: &[&[SliceArg]] = &[
        &[s(None, None, -1), all(), s(Some(-1), Some(0), -3)],
        &[s(Some(4), None, -2), s(None, None, -3)],
    ];
    slices(cx, &[6, 5, 7], three)
}

/// Integer indices (negative too), newaxis and ellipsis, down to a 0-d result.
pub fn slice_index_newaxis_ellipsis(cx: &mut Cx) -> Result<()> {
    let two: &[&[SliceArg]] = &[
        &[Index(-1)],
        &[Index(3), s(None, None, -2)],
        &[all(), Index(0)],
        &[NewAxis],
        &[Ellipsis, Index(-1)],
        &[NewAxis, Ellipsis, NewAxis],
        &[Index(12), Index(-7)],
    ];
    slices(cx, &[13, 7], two)?;
    let three: &[&[SliceArg]] = &[
        &[Index(2), Ellipsis, s(None, None, -1)],
        &[Ellipsis],
        &[Index(-1), Index(0), Index(6)],
        &[s(Some(1), None, 2), NewAxis, Index(3), Ellipsis],
        &[Ellipsis, NewAxis, Index(1), s(Some(6), Some(1), -2)],
    ];
    slices(cx, &[6, 5, 7], three)
}

/// Slices that select nothing, and ops on their (empty) results.
pub fn slice_empty(cx: &mut Cx) -> Result<()> {
    let two: &[&[SliceArg]] = &[
        &[s(Some(5), Some(2), 1)],
        &[s(Some(100), None, 1)],
        &[s(Some(0), Some(0), 1), all()],
        &[all(), s(Some(3), Some(3), -1)],
        &[s(Some(2), Some(5), -1)],
    ];
    slices(cx, &[13, 7], two)?;
    slices(cx, &[6, 5, 7], &[&[s(Some(4), Some(1), 1), Index(0)]])?;
    let empty = [s(Some(5), Some(2), 1)];
    each(
        cx,
        &[13, 7],
        "sum(empty slice, 0)",
        |t| t.slice(&empty)?.sum(0, false)?.astype(t.dtype()),
        |a| r::reduce(&r::slice(a, &empty), &[0], false, r::sum),
    )
}

fn random_arg(rng: &mut StdRng, len: usize) -> SliceArg {
    let n = len as isize;
    if len > 0 && rng.gen_bool(0.15) {
        return Index(rng.gen_range(-n..n));
    }
    let mut bound = || {
        if rng.gen_bool(0.25) {
            None
        } else {
            Some(rng.gen_range(-n - 3..n + 3))
        }
    };
    let (start, stop) = (bound(), bound());
    let step = [1, 1, 2, 3, 5, -1, -2, -3][rng.gen_range(0..8)];
    s(start, stop, step)
}

/// Random slices (bounds, steps, indices) on 2-D and 3-D arrays, and slices of slices.
pub fn slice_random(cx: &mut Cx) -> Result<()> {
    for shape in [&[13usize, 7][..], &[6, 5, 7]] {
        for _ in 0..12 {
            let first: Vec<SliceArg> = shape.iter().map(|&d| random_arg(cx.rng(), d)).collect();
            let mid = r::slice(&ArrayD::zeros(IxDyn(shape)), &first);
            let second: Vec<SliceArg> = mid
                .shape()
                .iter()
                .map(|&d| random_arg(cx.rng(), d))
                .collect();
            each(
                cx,
                shape,
                &format!("slice {first:?} then {second:?}"),
                |t| t.slice(&first)?.slice(&second),
                |a| r::slice(&r::slice(a, &first), &second),
            )?;
        }
    }
    Ok(())
}

/// concatenate along every axis (also negative), with operands chunked differently, mixed
/// dtypes and an empty piece.
pub fn concatenate(cx: &mut Cx) -> Result<()> {
    let cases: [(&[&[usize]], isize); 6] = [
        (&[&[13, 7], &[5, 7], &[2, 7]], 0),
        (&[&[13, 7], &[13, 2], &[13, 4]], 1),
        (&[&[13, 7], &[13, 3]], -1),
        (&[&[6, 5, 7], &[3, 5, 7]], 0),
        (&[&[6, 5, 7], &[6, 2, 7], &[6, 9, 7]], -2),
        (&[&[6, 5, 7], &[6, 5, 1], &[6, 5, 0], &[6, 5, 4]], 2),
    ];
    for (shapes, axis) in cases {
        for dt in [DType::F64, DType::I32] {
            let parts: Vec<HostArray> = shapes
                .iter()
                .map(|sh| cx.host(sh, Dom::Range(-9.0, 9.0), dt))
                .collect();
            let vals: Vec<ArrayD<f64>> = parts.iter().map(values).collect();
            let want = r::concatenate(
                &vals.iter().collect::<Vec<_>>(),
                r::axis(axis, shapes[0].len()),
            );
            let ins: Vec<&HostArray> = parts.iter().collect();
            let build = |t: &[Tensor]| tessera::concatenate(&t.iter().collect::<Vec<_>>(), axis);
            cx.exact(
                &format!("concatenate {shapes:?} axis {axis} {dt}"),
                &ins,
                build,
                dt,
                &want,
            )?;
        }
    }
    let a = cx.host(&[13, 7], Dom::Range(-9.0, 9.0), DType::I32);
    let bb = cx.host(&[4, 7], Dom::Range(-9.0, 9.0), DType::F32);
    let want = r::concatenate(&[&values(&a), &values(&bb)], 0);
    cx.exact(
        "concatenate i32 + f32 -> f64",
        &[&a, &bb],
        |t| tessera::concatenate(&[&t[0], &t[1]], 0),
        DType::F64,
        &want,
    )
}

/// stack along every axis.
pub fn stack(cx: &mut Cx) -> Result<()> {
    for (shape, axes) in [
        (&[13usize, 7][..], &[0isize, 1, 2, -1, -3][..]),
        (&[6, 5, 7], &[3, 1]),
    ] {
        let parts: Vec<HostArray> = (0..3)
            .map(|_| cx.host(shape, Dom::Range(-9.0, 9.0), DType::F64))
            .collect();
        let vals: Vec<ArrayD<f64>> = parts.iter().map(values).collect();
        for &axis in axes {
            let want = r::stack(
                &vals.iter().collect::<Vec<_>>(),
                r::axis(axis, shape.len() + 1),
            );
            let build = |t: &[Tensor]| tessera::stack(&t.iter().collect::<Vec<_>>(), axis);
            cx.exact(
                &format!("stack 3 x {shape:?} axis {axis}"),
                &parts.iter().collect::<Vec<_>>(),
                build,
                DType::F64,
                &want,
            )?;
        }
    }
    Ok(())
}

/// with_chunks on computed tensors (a rechunk) keeps the data, also when combined with
/// operands of another chunking and reduced.
pub fn rechunk(cx: &mut Cx) -> Result<()> {
    let a = cx.host(&[13, 7], Dom::Range(-9.0, 9.0), DType::F64);
    let bb = cx.host(&[13, 7], Dom::Range(-9.0, 9.0), DType::F64);
    let (va, vb) = (values(&a), values(&bb));
    let ch = cx.ch;
    let twice = r::map(&va, |x| x * 2.0);
    for chunk in [&[3usize, 2][..], &[13, 1], &[1], &[20, 20]] {
        let what = format!("(a * 2).with_chunks({chunk:?})");
        cx.exact(
            &what,
            &[&a],
            |t| (&t[0] * 2.0).with_chunks(chunk),
            DType::F64,
            &twice,
        )?;
        let want = r::zip(&twice, &vb, |x, y| x - y);
        let build = |t: &[Tensor]| ch.apply((&t[0] * 2.0).with_chunks(chunk)? - &t[1], 1);
        cx.exact(
            &format!("{what} - b, rechunked again"),
            &[&a, &bb],
            build,
            DType::F64,
            &want,
        )?;
    }
    let want = r::reduce(&r::zip(&va, &vb, |x, y| x * y), &[0], false, r::sum);
    let build = |t: &[Tensor]| (&t[0] * &t[1]).with_chunks(&[2, 3])?.sum(0, false);
    cx.approx(
        "(a * b).with_chunks((2, 3)).sum(0)",
        &[&a, &bb],
        build,
        DType::F64,
        &want,
        super::Tol::accumulated(DType::F64, 13, 81.0),
    )
}

/// A general reshape should read each output chunk from the input chunks holding its elements.
/// With small 2-D chunks the tiler's flat-range overlap test also takes every chunk whose flat
/// span (a whole band of rows) overlaps, so chunk inputs and work grow quadratically
/// ((2, 70000) in (2, 4) chunks, reshaped to 1-D, exhausts memory).
pub fn reshape_gather_reads_only_overlapping_chunks(cx: &mut Cx) -> Result<()> {
    let t =
        cx.s.zeros(&[2, 4000], DType::F64)
            .with_chunks(&[2, 4])?
            .reshape(&[-1])?;
    let (cg, _) = cx.s.plan(&[&t])?;
    let gathers: Vec<_> = cg
        .nodes
        .iter()
        .filter(|n| n.op.name() == "reshape_gather")
        .collect();
    let reads: usize = gathers.iter().map(|n| n.inputs.len()).sum();
    assert!(
        reads <= 4 * gathers.len(),
        "{} output chunks read {reads} input chunks (of 1000)",
        gathers.len()
    );
    Ok(())
}
