//! The Array API composites: flip, roll, tile, repeat, moveaxis, permute_dims,
//! matrix_transpose, expand_dims over several axes, unstack, broadcast_arrays, tril/triu,
//! meshgrid, diff, vecdot, count_nonzero, positive. Each against an index-by-index f64
//! reference on fresh random inputs at every chunking; bad input gives typed errors.

use super::{values, Cx, Dom};
use ndarray::{ArrayD, Dimension, IxDyn};
use tessera::tensor::{broadcast_arrays, meshgrid};
use tessera::{DType, Error, HostArray, Result, Tensor};

/// An f64 and an i32 input of `shape`.
fn inputs(cx: &mut Cx, shape: &[usize]) -> [HostArray; 2] {
    [
        cx.host(shape, Dom::Range(-100.0, 100.0), DType::F64),
        cx.host(shape, Dom::Range(-100.0, 100.0), DType::I32),
    ]
}

/// The array of `shape` whose element at each index is `f(index)`.
fn build(shape: &[usize], f: impl Fn(&[usize]) -> f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |ix| f(ix.slice()))
}

/// Checks `op(x)` against `want(values of x)` exactly for an f64 and an i32 input.
fn each(
    cx: &mut Cx,
    shape: &[usize],
    what: &str,
    op: impl Fn(&Tensor) -> Result<Tensor>,
    want: impl Fn(&ArrayD<f64>) -> ArrayD<f64>,
) -> Result<()> {
    for x in inputs(cx, shape) {
        let what = format!("{what} ({} {shape:?})", x.dtype());
        cx.exact(&what, &[&x], |t| op(&t[0]), x.dtype(), &want(&values(&x)))?;
    }
    Ok(())
}

/// `flip` over single axes, several, negative ones and all.
pub fn flip(cx: &mut Cx) -> Result<()> {
    let sh = [6, 5, 4];
    let cases: [Option<&[isize]>; 5] = [None, Some(&[0]), Some(&[-1]), Some(&[0, 2]), Some(&[])];
    for axes in cases {
        let flipped: Vec<usize> = match axes {
            None => vec![0, 1, 2],
            Some(a) => a.iter().map(|&x| x.rem_euclid(3) as usize).collect(),
        };
        each(
            cx,
            &sh,
            &format!("flip {axes:?}"),
            |t| t.flip(axes),
            |a| {
                build(&sh, |ix| {
                    let src: Vec<usize> = (0..3)
                        .map(|d| {
                            if flipped.contains(&d) {
                                sh[d] - 1 - ix[d]
                            } else {
                                ix[d]
                            }
                        })
                        .collect();
                    a[IxDyn(&src)]
                })
            },
        )?;
    }
    Ok(())
}

/// `roll` with positive, negative and oversized shifts, per axis, repeated axes and flattened.
pub fn roll(cx: &mut Cx) -> Result<()> {
    let sh = [7, 5];
    type Case<'a> = (&'a [isize], Option<&'a [isize]>);
    let cases: [Case; 6] = [
        (&[2], Some(&[0])),
        (&[-3], Some(&[1])),
        (&[12], Some(&[-2])),
        (&[1, -2], Some(&[0, 1])),
        (&[2, 3], Some(&[1, 1])),
        (&[9], None),
    ];
    for (shift, axes) in cases {
        each(
            cx,
            &sh,
            &format!("roll {shift:?} {axes:?}"),
            |t| t.roll(shift, axes),
            |a| match axes {
                None => {
                    let flat: Vec<f64> = a.iter().copied().collect();
                    let n = flat.len() as isize;
                    build(&sh, |ix| {
                        let i = (ix[0] * sh[1] + ix[1]) as isize;
                        flat[(i - shift[0]).rem_euclid(n) as usize]
                    })
                }
                Some(ax) => {
                    let mut total = [0isize; 2];
                    for (i, &x) in ax.iter().enumerate() {
                        total[x.rem_euclid(2) as usize] += shift[i];
                    }
                    build(&sh, |ix| {
                        let src: Vec<usize> = (0..2)
                            .map(|d| {
                                (ix[d] as isize - total[d]).rem_euclid(sh[d] as isize) as usize
                            })
                            .collect();
                        a[IxDyn(&src)]
                    })
                }
            },
        )?;
    }
    Ok(())
}

/// `tile` with reps shorter, equal and longer than the array's dimensions.
pub fn tile(cx: &mut Cx) -> Result<()> {
    let sh = [4, 3];
    let cases: [&[usize]; 5] = [&[2], &[3, 1], &[2, 2], &[2, 1, 3], &[0, 2]];
    for reps in cases {
        let d = reps.len().max(2);
        let mut ish = vec![1usize; d - 2];
        ish.extend(sh);
        let mut r = vec![1usize; d - reps.len()];
        r.extend(reps);
        let out: Vec<usize> = (0..d).map(|i| ish[i] * r[i]).collect();
        each(
            cx,
            &sh,
            &format!("tile {reps:?}"),
            |t| t.tile(reps),
            |a| {
                build(&out, |ix| {
                    let src = [ix[d - 2] % sh[0], ix[d - 1] % sh[1]];
                    a[IxDyn(&src)]
                })
            },
        )?;
    }
    Ok(())
}

/// `repeat` along each axis, over the flattened array, and zero times.
pub fn repeat(cx: &mut Cx) -> Result<()> {
    let sh = [5, 4];
    for (reps, axis) in [(3i64, Some(0isize)), (2, Some(-1)), (2, None), (0, Some(1))] {
        let out = match axis {
            None => vec![20 * reps as usize],
            Some(a) => {
                let mut o = sh.to_vec();
                o[a.rem_euclid(2) as usize] *= reps as usize;
                o
            }
        };
        each(
            cx,
            &sh,
            &format!("repeat {reps} {axis:?}"),
            |t| t.repeat(reps, axis),
            |a| {
                let r = reps as usize;
                build(&out, |ix| match axis {
                    None => {
                        let i = ix[0] / r;
                        a[IxDyn(&[i / 4, i % 4])]
                    }
                    Some(ax) => {
                        let mut src = ix.to_vec();
                        let d = ax.rem_euclid(2) as usize;
                        src[d] /= r;
                        a[IxDyn(&src)]
                    }
                })
            },
        )?;
    }
    Ok(())
}

/// `moveaxis`, `permute_dims`, `matrix_transpose` and `expand_dims` over several axes, each
/// against a hand-written permutation or shape (numpy's results).
pub fn moveaxis_permute(cx: &mut Cx) -> Result<()> {
    let sh = [2, 3, 4, 5];
    // (source, destination, the permutation numpy's moveaxis makes)
    type Case<'a> = (&'a [isize], &'a [isize], [usize; 4]);
    let cases: [Case; 4] = [
        (&[0], &[-1], [1, 2, 3, 0]),
        (&[-1], &[0], [3, 0, 1, 2]),
        (&[0, 1], &[-1, -3], [2, 1, 3, 0]),
        (&[3, 1], &[0, 3], [3, 0, 2, 1]),
    ];
    for (src, dst, perm) in cases {
        let out: Vec<usize> = perm.iter().map(|&p| sh[p]).collect();
        let want = |a: &ArrayD<f64>| {
            build(&out, |ix| {
                let mut s = [0usize; 4];
                for (i, &p) in perm.iter().enumerate() {
                    s[p] = ix[i];
                }
                a[IxDyn(&s)]
            })
        };
        each(
            cx,
            &sh,
            &format!("moveaxis {src:?} {dst:?}"),
            |t| t.moveaxis(src, dst),
            want,
        )?;
        let p: Vec<isize> = perm.iter().map(|&x| x as isize).collect();
        each(
            cx,
            &sh,
            &format!("permute_dims {p:?}"),
            |t| t.permute_dims(&p),
            want,
        )?;
    }
    let out = [2, 3, 5, 4];
    each(cx, &sh, "matrix_transpose", Tensor::matrix_transpose, |a| {
        build(&out, |ix| a[IxDyn(&[ix[0], ix[1], ix[3], ix[2]])])
    })?;
    let sh2 = [3, 4];
    let cases: [(&[isize], &[usize]); 4] = [
        (&[0, -1], &[1, 3, 4, 1]),
        (&[0, 2], &[1, 3, 1, 4]),
        (&[1], &[3, 1, 4]),
        (&[-1, -2, 0], &[1, 3, 4, 1, 1]),
    ];
    for (axes, out) in cases {
        each(
            cx,
            &sh2,
            &format!("expand_dims {axes:?}"),
            |t| t.expand_dims_axes(axes),
            |a| ArrayD::from_shape_vec(IxDyn(out), a.iter().copied().collect()).expect("size"),
        )?;
    }
    // The one-axis method is unchanged.
    each(
        cx,
        &sh2,
        "expand_dims -1",
        |t| t.expand_dims(-1),
        |a| ArrayD::from_shape_vec(IxDyn(&[3, 4, 1]), a.iter().copied().collect()).expect("size"),
    )?;
    Ok(())
}

/// `unstack` along each axis and `broadcast_arrays` of three shapes.
pub fn unstack_broadcast_arrays(cx: &mut Cx) -> Result<()> {
    let sh = [3, 4, 2];
    for axis in [0isize, 1, -1] {
        let a = axis.rem_euclid(3) as usize;
        for i in 0..sh[a] {
            let mut out = sh.to_vec();
            out.remove(a);
            each(
                cx,
                &sh,
                &format!("unstack {axis} [{i}]"),
                |t| Ok(t.unstack(axis)?.swap_remove(i)),
                |x| {
                    build(&out, |ix| {
                        let mut src = ix.to_vec();
                        src.insert(a, i);
                        x[IxDyn(&src)]
                    })
                },
            )?;
        }
    }
    let a = cx.host(&[4, 1, 3], Dom::Range(-9.0, 9.0), DType::F32);
    let b = cx.host(&[5, 1], Dom::Range(-9.0, 9.0), DType::F32);
    let c = cx.host(&[3], Dom::Range(-9.0, 9.0), DType::F32);
    let out = [4, 5, 3];
    let (va, vb, vc) = (values(&a), values(&b), values(&c));
    let wants = [
        build(&out, |ix| va[IxDyn(&[ix[0], 0, ix[2]])]),
        build(&out, |ix| vb[IxDyn(&[ix[1], 0])]),
        build(&out, |ix| vc[IxDyn(&[ix[2]])]),
    ];
    for (k, want) in wants.iter().enumerate() {
        cx.exact(
            &format!("broadcast_arrays [{k}]"),
            &[&a, &b, &c],
            |t| Ok(broadcast_arrays(&[&t[0], &t[1], &t[2]])?.swap_remove(k)),
            DType::F32,
            want,
        )?;
    }
    Ok(())
}

/// `tril`/`triu` for several diagonals, square, wide and batched.
pub fn tril_triu(cx: &mut Cx) -> Result<()> {
    for sh in [&[6usize, 6][..], &[4, 7], &[3, 5, 4]] {
        let nd = sh.len();
        for k in [-2i64, 0, 1, 9] {
            let keep = |ix: &[usize], lower: bool| {
                let d = ix[nd - 1] as i64 - ix[nd - 2] as i64;
                if lower {
                    d <= k
                } else {
                    d >= k
                }
            };
            each(
                cx,
                sh,
                &format!("tril {k}"),
                |t| t.tril(k),
                |a| build(sh, |ix| if keep(ix, true) { a[IxDyn(ix)] } else { 0.0 }),
            )?;
            each(
                cx,
                sh,
                &format!("triu {k}"),
                |t| t.triu(k),
                |a| build(sh, |ix| if keep(ix, false) { a[IxDyn(ix)] } else { 0.0 }),
            )?;
        }
    }
    Ok(())
}

/// `meshgrid` with "xy" and "ij" indexing, two and three inputs.
pub fn meshgrid_cases(cx: &mut Cx) -> Result<()> {
    let x = cx.host(&[5], Dom::Range(-9.0, 9.0), DType::F64);
    let y = cx.host(&[3], Dom::Range(-9.0, 9.0), DType::F64);
    let z = cx.host(&[2], Dom::Range(-9.0, 9.0), DType::F64);
    let (vx, vy, vz) = (values(&x), values(&y), values(&z));
    for (indexing, xy) in [("xy", true), ("ij", false)] {
        // Output shape and, per input, the output axis it varies along.
        let (out, pos) = if xy {
            (vec![3, 5, 2], [1, 0, 2])
        } else {
            (vec![5, 3, 2], [0, 1, 2])
        };
        let vs = [&vx, &vy, &vz];
        for k in 0..3 {
            let want = build(&out, |ix| vs[k][IxDyn(&[ix[pos[k]]])]);
            cx.exact(
                &format!("meshgrid {indexing} [{k}]"),
                &[&x, &y, &z],
                |t| Ok(meshgrid(&[&t[0], &t[1], &t[2]], indexing)?.swap_remove(k)),
                DType::F64,
                &want,
            )?;
        }
    }
    Ok(())
}

/// `diff` of order 1-3 along each axis, with prepend/append (arrays and 0-d), and of bools.
pub fn diff(cx: &mut Cx) -> Result<()> {
    let sh = [6, 5];
    // The n-th difference along `a` by repeated first differences, in f64.
    fn reference(x: &ArrayD<f64>, n: usize, a: usize) -> ArrayD<f64> {
        let mut cur = x.clone();
        for _ in 0..n {
            let mut out = cur.shape().to_vec();
            if out[a] == 0 {
                break;
            }
            out[a] -= 1;
            cur = build(&out, |ix| {
                let mut hi = ix.to_vec();
                hi[a] += 1;
                cur[IxDyn(&hi)] - cur[IxDyn(ix)]
            });
        }
        cur
    }
    for (n, axis) in [(1usize, 0isize), (1, -1), (2, 1), (3, 0), (7, 0)] {
        let a = axis.rem_euclid(2) as usize;
        each(
            cx,
            &sh,
            &format!("diff n={n} axis={axis}"),
            |t| t.diff(n, axis, None, None),
            |x| reference(x, n, a),
        )?;
    }
    // prepend a (1, 5) array, append a 0-d value, along axis 0.
    let x = cx.host(&sh, Dom::Range(-50.0, 50.0), DType::F64);
    let p = cx.host(&[1, 5], Dom::Range(-50.0, 50.0), DType::F64);
    let q = cx.host(&[], Dom::Range(-50.0, 50.0), DType::F64);
    let (vx, vp, vq) = (values(&x), values(&p), values(&q));
    let joined = build(&[8, 5], |ix| match ix[0] {
        0 => vp[IxDyn(&[0, ix[1]])],
        7 => vq[IxDyn(&[])],
        i => vx[IxDyn(&[i - 1, ix[1]])],
    });
    cx.exact(
        "diff prepend/append",
        &[&x, &p, &q],
        |t| t[0].diff(1, 0, Some(&t[1]), Some(&t[2])),
        DType::F64,
        &reference(&joined, 1, 0),
    )?;
    // bool: numpy's diff uses not_equal.
    let b = cx.host(&sh, Dom::Bool(0.5), DType::Bool);
    let vb = values(&b);
    let want = build(&[6, 4], |ix| {
        let (u, v) = (vb[IxDyn(&[ix[0], ix[1] + 1])], vb[IxDyn(ix)]);
        (u != v) as u8 as f64
    });
    cx.exact(
        "diff bool",
        &[&b],
        |t| t[0].diff(1, 1, None, None),
        DType::Bool,
        &want,
    )
}

/// `vecdot` along the last and another axis, with broadcasting, in f64 and int32 (int32 result
/// as numpy's), and `count_nonzero` and `positive`.
pub fn vecdot_count_nonzero(cx: &mut Cx) -> Result<()> {
    let a = cx.host(&[4, 6], Dom::Range(-10.0, 10.0), DType::F64);
    let b = cx.host(&[3, 1, 6], Dom::Range(-10.0, 10.0), DType::F64);
    let (va, vb) = (values(&a), values(&b));
    let want = build(&[3, 4], |ix| {
        (0..6)
            .map(|k| va[IxDyn(&[ix[1], k])] * vb[IxDyn(&[ix[0], 0, k])])
            .sum()
    });
    cx.approx(
        "vecdot axis -1",
        &[&a, &b],
        |t| t[0].vecdot(&t[1], -1),
        DType::F64,
        &want,
        super::Tol::accumulated(DType::F64, 6, 100.0),
    )?;
    let ai = cx.host(&[5, 4], Dom::Range(-100.0, 100.0), DType::I32);
    let bi = cx.host(&[5, 4], Dom::Range(-100.0, 100.0), DType::I32);
    let (vai, vbi) = (values(&ai), values(&bi));
    let want = build(&[4], |ix| {
        (0..5)
            .map(|k| vai[IxDyn(&[k, ix[0]])] * vbi[IxDyn(&[k, ix[0]])])
            .sum()
    });
    cx.exact(
        "vecdot axis 0 int32",
        &[&ai, &bi],
        |t| t[0].vecdot(&t[1], 0),
        DType::I32,
        &want,
    )?;
    // count_nonzero: zeros and NaN (non-zero) sprinkled in.
    let x = cx.host(&[7, 6], Dom::Ties, DType::F64);
    let vx = values(&x);
    let nz = |v: f64| (v != 0.0) as u8 as f64;
    let want = build(&[6], |ix| (0..7).map(|i| nz(vx[IxDyn(&[i, ix[0]])])).sum());
    cx.exact(
        "count_nonzero axis 0",
        &[&x],
        |t| t[0].count_nonzero(0, false),
        DType::I64,
        &want,
    )?;
    let want = build(&[1, 1], |_| vx.iter().map(|&v| nz(v)).sum());
    cx.exact(
        "count_nonzero all keepdims",
        &[&x],
        |t| t[0].count_nonzero(tessera::Axes::All, true),
        DType::I64,
        &want,
    )?;
    each(cx, &[4, 3], "positive", Tensor::positive, |a| a.clone())
}

/// Bad input to the composites: typed errors naming the op, never a panic.
pub fn error_manipulation(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let t = s.zeros(&[3, 4], DType::F32);
    let v = s.zeros(&[4], DType::F32);
    let z = s.zeros(&[], DType::F32);
    crate::assert_err!(t.flip(Some(&[2])), Error::AxisOutOfRange { .. });
    crate::assert_err!(t.flip(Some(&[0, -2])), Error::InvalidArgument { .. });
    crate::assert_err!(t.roll(&[1, 2], Some(&[0])), Error::InvalidArgument { .. });
    crate::assert_err!(t.roll(&[1], Some(&[5])), Error::AxisOutOfRange { .. });
    crate::assert_err!(t.repeat(-1, Some(0)), Error::InvalidArgument { .. });
    crate::assert_err!(t.repeat(2, Some(2)), Error::AxisOutOfRange { .. });
    crate::assert_err!(t.tile(&[usize::MAX, 2]), Error::InvalidArgument { .. });
    crate::assert_err!(t.moveaxis(&[0], &[0, 1]), Error::InvalidArgument { .. });
    crate::assert_err!(t.moveaxis(&[0, 0], &[0, 1]), Error::InvalidArgument { .. });
    crate::assert_err!(t.moveaxis(&[3], &[0]), Error::AxisOutOfRange { .. });
    crate::assert_err!(t.permute_dims(&[0]), Error::InvalidArgument { .. });
    crate::assert_err!(v.matrix_transpose(), Error::InvalidArgument { .. });
    crate::assert_err!(t.expand_dims_axes(&[0, 0]), Error::InvalidArgument { .. });
    crate::assert_err!(t.expand_dims_axes(&[4]), Error::AxisOutOfRange { .. });
    crate::assert_err!(z.unstack(0), Error::InvalidArgument { .. });
    crate::assert_err!(t.unstack(2), Error::AxisOutOfRange { .. });
    crate::assert_err!(
        broadcast_arrays(&[&t, &s.zeros(&[3], DType::F32)]),
        Error::InvalidArgument { .. }
    );
    crate::assert_err!(v.tril(0), Error::InvalidArgument { .. });
    crate::assert_err!(z.triu(0), Error::InvalidArgument { .. });
    crate::assert_err!(meshgrid(&[&v, &v], "yx"), Error::InvalidArgument { .. });
    crate::assert_err!(z.diff(1, 0, None, None), Error::InvalidArgument { .. });
    crate::assert_err!(t.diff(1, 2, None, None), Error::AxisOutOfRange { .. });
    crate::assert_err!(
        t.diff(1, 0, Some(&s.zeros(&[2, 3], DType::F32)), None),
        Error::InvalidArgument { .. } | Error::ShapeMismatch { .. }
    );
    crate::assert_err!(
        t.vecdot(&s.zeros(&[3, 5], DType::F32), -1),
        Error::ShapeMismatch { .. }
    );
    crate::assert_err!(
        t.vecdot(&s.zeros(&[2, 4], DType::F32), -1),
        Error::ShapeMismatch { .. }
    );
    crate::assert_err!(t.vecdot(&z, -1), Error::InvalidArgument { .. });
    crate::assert_err!(t.count_nonzero(3, false), Error::AxisOutOfRange { .. });
    crate::assert_err!(
        s.zeros(&[2], DType::Bool).positive(),
        Error::UnsupportedDType { .. }
    );
    Ok(())
}
