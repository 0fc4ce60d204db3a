//! Errors are typed values naming the op and the operands; nothing panics.

use super::{exec_err, Cx, Dom};
use crate::assert_err;
use tessera::{all, s, Axes, DType, Error, Result, SliceArg, Tensor};

use DType::{Bool, F32, F64, I32, I64};

fn t(cx: &Cx, shape: &[usize], dt: DType) -> Tensor {
    cx.s.ones(shape, dt)
}

/// Shapes that do not broadcast, in binary ops, where and broadcast_to.
pub fn error_broadcast_mismatch(cx: &mut Cx) -> Result<()> {
    let (a, b) = (t(cx, &[13, 7], F64), t(cx, &[6], F64));
    let e = assert_err!(a.add(&b), Error::ShapeMismatch { lhs, rhs, .. } if lhs == &[13, 7] && rhs == &[6]);
    assert!(
        e.to_string().contains("[13, 7]") && e.to_string().contains("[6]"),
        "message names both shapes: {e}"
    );
    assert_err!(
        t(cx, &[3, 4], I32).mul(&t(cx, &[4, 3], I32)),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        t(cx, &[2, 3, 4], F32).lt(&t(cx, &[3, 1, 4], F32)),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        t(cx, &[3], Bool).where_(&t(cx, &[4], F64), 0.0),
        Error::ShapeMismatch { .. }
    );
    assert_err!(a.broadcast_to(&[13, 6]), Error::ShapeMismatch { .. });
    assert_err!(
        t(cx, &[3], F64).broadcast_to(&[3, 1]),
        Error::ShapeMismatch { .. }
    );
    assert_err!(a.broadcast_to(&[7]), Error::ShapeMismatch { .. });
    Ok(())
}

/// matmul/dot/tensordot with incompatible shapes name both operand shapes.
pub fn error_matmul_shapes(cx: &mut Cx) -> Result<()> {
    let cases: [(&[usize], &[usize]); 4] = [
        (&[3, 4], &[5, 6]),
        (&[3], &[4]),
        (&[2, 3, 4], &[3, 4, 5]),
        (&[13, 11], &[7]),
    ];
    for (sa, sb) in cases {
        let e = assert_err!(t(cx, sa, F32).matmul(&t(cx, sb, F32)), Error::ShapeMismatch { op, lhs, rhs } if op == "matmul" && lhs == sa && rhs == sb);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{sa:?}")) && msg.contains(&format!("{sb:?}")),
            "message names both shapes: {msg}"
        );
    }
    assert_err!(
        t(cx, &[], F32).matmul(&t(cx, &[3], F32)),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        t(cx, &[3, 4], F64).dot(&t(cx, &[5], F64)),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        t(cx, &[3, 4], F64).tensordot(&t(cx, &[5, 3], F64), &[1], &[0]),
        Error::ShapeMismatch { .. }
    );
    Ok(())
}

/// Axes outside `-ndim..ndim` (and repeated axes) in every op taking an axis.
pub fn error_axis_out_of_range(cx: &mut Cx) -> Result<()> {
    let a = t(cx, &[13, 7], F64);
    let e = assert_err!(
        a.sum(2, false),
        Error::AxisOutOfRange {
            axis: 2,
            ndim: 2,
            ..
        }
    );
    assert!(e.to_string().contains("axis 2"), "{e}");
    assert_err!(a.sum(-3, false), Error::AxisOutOfRange { axis: -3, .. });
    assert_err!(a.mean([0, 5], true), Error::AxisOutOfRange { axis: 5, .. });
    assert_err!(
        a.var(Axes::Some(vec![7]), false, 1),
        Error::AxisOutOfRange { .. }
    );
    assert_err!(a.argmax(Some(2)), Error::AxisOutOfRange { .. });
    assert_err!(a.argmin(Some(-3)), Error::AxisOutOfRange { .. });
    assert_err!(a.swapaxes(0, 2), Error::AxisOutOfRange { .. });
    assert_err!(a.expand_dims(3), Error::AxisOutOfRange { .. });
    assert_err!(a.expand_dims(-4), Error::AxisOutOfRange { .. });
    assert_err!(a.squeeze(Some(&[2])), Error::AxisOutOfRange { .. });
    assert_err!(a.transpose(Some(&[0, 2])), Error::AxisOutOfRange { .. });
    assert_err!(
        tessera::concatenate(&[&a, &a], 2),
        Error::AxisOutOfRange { .. }
    );
    assert_err!(tessera::stack(&[&a, &a], 4), Error::AxisOutOfRange { .. });
    assert_err!(a.tensordot(&a, &[2], &[0]), Error::AxisOutOfRange { .. });
    assert_err!(a.sum([0, 0], false), Error::InvalidArgument { .. });
    assert_err!(a.sum([1, -1], false), Error::InvalidArgument { .. });
    Ok(())
}

/// Reshapes to a different size or a malformed shape.
pub fn error_bad_reshape(cx: &mut Cx) -> Result<()> {
    let a = t(cx, &[12, 10], F32);
    let e = assert_err!(a.reshape(&[7, 17]), Error::BadReshape { from, from_size: 120, .. } if from == &[12, 10]);
    assert!(e.to_string().contains("120"), "{e}");
    assert_err!(a.reshape(&[-1, -1]), Error::BadReshape { .. });
    assert_err!(a.reshape(&[-1, 7]), Error::BadReshape { .. });
    assert_err!(a.reshape(&[-2, -60]), Error::BadReshape { .. });
    assert_err!(a.reshape(&[121]), Error::BadReshape { .. });
    assert_err!(
        t(cx, &[0, 3], F32).reshape(&[-1, 0]),
        Error::BadReshape { .. }
    );
    assert_err!(
        cx.s.from_vec(vec![1.0f64; 10], &[3, 4]),
        Error::BadReshape { from_size: 10, .. }
    );
    Ok(())
}

/// Dtypes numpy rejects: negating or subtracting booleans, and friends.
pub fn error_unsupported_dtype(cx: &mut Cx) -> Result<()> {
    let b = t(cx, &[4], Bool);
    assert_err!(b.neg(), Error::UnsupportedDType { dtypes, .. } if dtypes == &[Bool]);
    assert_err!(b.sign(), Error::UnsupportedDType { .. });
    let e = assert_err!(b.sub(&b), Error::UnsupportedDType { .. });
    assert!(e.to_string().to_lowercase().contains("bool"), "{e}");
    assert_err!(b.sub(true), Error::UnsupportedDType { .. });
    // numpy computes bool // bool, % and ** in int8 (Tessera: int32, bool_int_ops_dtype).
    assert!(b.floor_divide(&b).is_ok() && b.rem(&b).is_ok() && b.pow(&b).is_ok());
    assert!(
        matches!(exec_err(Ok(-&b)), Error::UnsupportedDType { .. }),
        "-&b"
    );
    #[allow(clippy::eq_op)] // subtracting a bool array from itself is the point
    let same = &b - &b;
    assert!(
        matches!(exec_err(Ok(same)), Error::UnsupportedDType { .. }),
        "&b - &b"
    );
    // Promotion happens first: a bool with an int is not rejected.
    assert!(b.sub(1).is_ok() && b.neg().is_err());
    Ok(())
}

/// Out-of-bounds integer indices, too many indices, two ellipses, a zero step.
pub fn error_index_out_of_bounds(cx: &mut Cx) -> Result<()> {
    let a = t(cx, &[13, 7], F64);
    let e = assert_err!(
        a.slice(&[SliceArg::Index(13)]),
        Error::InvalidArgument { .. }
    );
    assert!(e.to_string().contains("out of bounds"), "{e}");
    assert_err!(
        a.slice(&[SliceArg::Index(-14)]),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        a.slice(&[all(), SliceArg::Index(7)]),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        a.slice(&[all(), all(), all()]),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        a.slice(&[SliceArg::Ellipsis, SliceArg::Ellipsis]),
        Error::InvalidArgument { .. }
    );
    assert_err!(a.slice(&[s(None, None, 0)]), Error::InvalidArgument { .. });
    assert_err!(
        t(cx, &[], F64).slice(&[SliceArg::Index(0)]),
        Error::InvalidArgument { .. }
    );
    Ok(())
}

/// min/max/argmin/argmax over an empty extent.
pub fn error_empty_reduction(cx: &mut Cx) -> Result<()> {
    let e0 = t(cx, &[0, 3], F64);
    let e = assert_err!(e0.min(0, false), Error::EmptyReduction { shape, .. } if shape == &[0, 3]);
    assert!(e.to_string().contains("zero-size"), "{e}");
    assert_err!(e0.max(Axes::All, false), Error::EmptyReduction { .. });
    assert_err!(e0.argmin(Some(0)), Error::EmptyReduction { .. });
    assert_err!(e0.argmax(None), Error::EmptyReduction { .. });
    assert_err!(t(cx, &[0], I64).max(0, true), Error::EmptyReduction { .. });
    assert!(
        e0.max(1, false).is_ok(),
        "max over the non-empty axis of (0, 3) is fine (shape (0,))"
    );
    Ok(())
}

/// Other invalid arguments: zero/NaN arange step, wrong chunk rank, bad permutations,
/// squeezing a non-1 axis, empty or mismatched concatenation, tensordot axis lists, item().
pub fn error_invalid_arguments(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    assert_err!(s.arange(0.0, 5.0, 0.0, F64), Error::InvalidArgument { .. });
    assert_err!(
        s.arange(0.0, 5.0, f64::NAN, F64),
        Error::InvalidArgument { .. }
    );
    let a = t(cx, &[13, 7], F64);
    assert_err!(a.with_chunks(&[2, 2, 2]), Error::InvalidArgument { .. });
    assert_err!(a.transpose(Some(&[0, 0])), Error::InvalidArgument { .. });
    assert_err!(a.transpose(Some(&[0])), Error::InvalidArgument { .. });
    assert_err!(a.squeeze(Some(&[0])), Error::InvalidArgument { .. });
    assert_err!(tessera::concatenate(&[], 0), Error::InvalidArgument { .. });
    assert_err!(
        tessera::concatenate(&[&t(cx, &[], F64)], 0),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        tessera::concatenate(&[&a, &t(cx, &[13, 6], F64)], 0),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        tessera::concatenate(&[&a, &t(cx, &[13], F64)], 0),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        tessera::stack(&[&a, &t(cx, &[13, 6], F64)], 0),
        Error::ShapeMismatch { .. }
    );
    assert_err!(tessera::stack(&[], 0), Error::InvalidArgument { .. });
    assert_err!(
        a.tensordot(&a, &[0, 1], &[0]),
        Error::InvalidArgument { .. }
    );
    assert_err!(a.tensordot_n(&a, 3), Error::InvalidArgument { .. });
    assert_err!(a.item(), Error::InvalidArgument { .. });
    assert_err!(
        t(cx, &[], F64).binary_op(tessera::op::BinaryOp::Add, 1.0, 2.0),
        Error::InvalidArgument { .. }
    );
    Ok(())
}

/// Operator expressions carry their error until used; using them returns it, typed.
pub fn error_deferred_in_operators(cx: &mut Cx) -> Result<()> {
    let (a, b) = (t(cx, &[13, 7], F64), t(cx, &[6], F64));
    let bad = &a + &b;
    assert!(
        matches!(bad.error(), Some(Error::ShapeMismatch { .. })),
        "{bad:?}"
    );
    let chained = (&bad * 2.0 - 1.0) / &a;
    assert!(
        matches!(chained.error(), Some(Error::ShapeMismatch { .. })),
        "{chained:?}"
    );
    assert_err!(chained.execute(), Error::ShapeMismatch { .. });
    assert_err!(bad.sum(Axes::All, false), Error::ShapeMismatch { .. });
    assert_err!(bad.reshape(&[-1]), Error::ShapeMismatch { .. });
    assert_err!(a.add(&bad), Error::ShapeMismatch { .. });
    assert_err!(cx.s.execute_many(&[&a, &bad]), Error::ShapeMismatch { .. });
    assert_err!(bad.item(), Error::ShapeMismatch { .. });
    assert_eq!(
        a.add(1.0)?.execute()?.shape(),
        &[13, 7],
        "the session still works"
    );
    Ok(())
}

/// Combining tensors of two sessions is an error, not a panic.
pub fn error_session_mismatch(cx: &mut Cx) -> Result<()> {
    let other = cx.new_session();
    let (a, b) = (t(cx, &[3], F64), other.ones(&[3], F64));
    assert_err!(a.add(&b), Error::SessionMismatch { .. });
    assert_err!(a.matmul(&b), Error::SessionMismatch { .. });
    assert_err!(
        tessera::concatenate(&[&a, &b], 0),
        Error::SessionMismatch { .. }
    );
    assert_err!(
        cx.s.ones(&[3], Bool).where_(&b, &a),
        Error::SessionMismatch { .. }
    );
    Ok(())
}

/// numpy's floor division of integers: `MIN // -1` wraps to MIN and `MIN % -1` is 0 (no
/// panic), for int32 and int64, alone, with a scalar divisor and in a fused chain, at several
/// chunkings; random operands (with MIN and -1 sprinkled in) against an i128 reference.
pub fn integer_min_floor_divide(cx: &mut Cx) -> Result<()> {
    use rand::Rng;
    for dt in [I32, I64] {
        let (min, max) = match dt {
            I32 => (i32::MIN as i64, i32::MAX as i64),
            _ => (i64::MIN, i64::MAX),
        };
        let wrap = |v: i128| -> i64 {
            match dt {
                I32 => v as i32 as i64,
                _ => v as i64,
            }
        };
        let n = 41;
        let a: Vec<i64> = (0..n)
            .map(|i| match i % 4 {
                0 => min,
                _ => cx.rng().gen_range(min..=max),
            })
            .collect();
        let d: Vec<i64> = (0..n)
            .map(|i| match i % 3 {
                0 => -1,
                _ => cx.rng().gen_range(-7..=7),
            })
            .collect();
        // Reference: exact floor division in i128, wrapped to the dtype; x // 0 = x % 0 = 0.
        let (mut q, mut r) = (vec![], vec![]);
        for (&x, &y) in a.iter().zip(&d) {
            let (x, y) = (x as i128, y as i128);
            if y == 0 {
                q.push(0);
                r.push(0);
            } else {
                let fq = x.div_euclid(y) - i128::from(y < 0 && x.rem_euclid(y) != 0);
                q.push(wrap(fq));
                r.push(wrap(x - fq * y));
            }
        }
        let host = |v: &[i64]| -> Result<Tensor> {
            match dt {
                I32 => cx.s.from_vec(v.iter().map(|&x| x as i32).collect(), &[n]),
                _ => cx.s.from_vec(v.to_vec(), &[n]),
            }
        };
        let (ta, td) = (host(&a)?, host(&d)?);
        for chunk in [n, 5, 1] {
            let (x, y) = (ta.with_chunks(&[chunk])?, td.with_chunks(&[chunk])?);
            let got = |t: Tensor| -> Result<Vec<i64>> {
                Ok(t.to_array::<i64>()?.iter().copied().collect())
            };
            assert_eq!(got(x.floor_divide(&y)?)?, q, "{dt} //, chunk {chunk}");
            assert_eq!(got(x.rem(&y)?)?, r, "{dt} %, chunk {chunk}");
            // Fused with a following op (the interpreter's kernels), and a scalar divisor.
            let fused: Vec<i64> = q.iter().map(|&v| wrap(v as i128 + 1)).collect();
            assert_eq!(got(x.floor_divide(&y)?.add(1)?)?, fused, "{dt} // + 1");
            let by_minus_one: Vec<i64> = a.iter().map(|&v| wrap(-(v as i128))).collect();
            assert_eq!(got(x.floor_divide(-1)?)?, by_minus_one, "{dt} // -1");
            assert_eq!(got(x.rem(-1)?)?, vec![0; n], "{dt} % -1");
        }
    }
    // The example of the report.
    let v = cx.s.from_vec(vec![i32::MIN, 7], &[2])?.floor_divide(-1)?;
    assert_eq!(v.to_array::<i32>()?.as_slice(), Some(&[i32::MIN, -7][..]));
    Ok(())
}

/// Zero-length axes under chunked operands work as in numpy: a product over an empty K is
/// zeros, reductions over an empty axis give their identity, and slices, concatenations,
/// reshapes and broadcasts of empty chunked arrays have numpy's shapes.
pub fn zero_length_axes_chunked(cx: &mut Cx) -> Result<()> {
    let ss = cx.s.clone();
    let zeros = |shape: &[usize]| ndarray::ArrayD::<f64>::zeros(ndarray::IxDyn(shape));
    // Batched matmul with K = 0 and a chunked batch axis (numpy: zeros of (2, 1, 1)).
    let a = ss.from_vec::<f32>(vec![], &[2, 1, 0])?.with_chunks(&[1])?;
    let r = a.matmul(&a.swapaxes(-1, -2)?)?;
    assert_eq!(r.to_array::<f64>()?, zeros(&[2, 1, 1]));
    let a = ss.from_vec::<f64>(vec![], &[5, 0])?.with_chunks(&[2])?;
    let b = ss.from_vec::<f64>(vec![], &[0, 3])?.with_chunks(&[1])?;
    assert_eq!(a.matmul(&b)?.to_array::<f64>()?, zeros(&[5, 3]));
    assert_eq!(a.dot(&b)?.to_array::<f64>()?, zeros(&[5, 3]));
    let ai = ss
        .from_vec::<i64>(vec![], &[3, 2, 0])?
        .with_chunks(&[1, 1, 1])?;
    let bi = ss
        .from_vec::<i64>(vec![], &[3, 0, 4])?
        .with_chunks(&[2, 1, 3])?;
    assert_eq!(ai.matmul(&bi)?.to_array::<f64>()?, zeros(&[3, 2, 4]));
    let t = a.tensordot(&ss.from_vec::<f64>(vec![], &[0])?, &[1], &[0])?;
    assert_eq!(t.to_array::<f64>()?, zeros(&[5]));
    // Reductions over the empty axis, the other axes chunked.
    let e = ss
        .from_vec::<f64>(vec![], &[4, 0, 3])?
        .with_chunks(&[1, 1, 2])?;
    assert_eq!(e.sum(1, false)?.to_array::<f64>()?, zeros(&[4, 3]));
    assert_eq!(e.prod(1, true)?.to_array::<f64>()?, zeros(&[4, 1, 3]) + 1.0);
    assert_eq!(e.sum(Axes::All, false)?.item()?, 0.0);
    assert_eq!(e.any(1, false)?.to_array::<f64>()?, zeros(&[4, 3]));
    assert_eq!(e.all(1, false)?.to_array::<f64>()?, zeros(&[4, 3]) + 1.0);
    assert!(e
        .mean(1, false)?
        .to_array::<f64>()?
        .iter()
        .all(|v| v.is_nan()));
    assert_eq!(e.sum([0, 2], false)?.execute()?.shape(), &[0]);
    assert_eq!(e.max(2, false)?.execute()?.shape(), &[4, 0]);
    assert_eq!(e.argmax(Some(2))?.execute()?.shape(), &[4, 0]);
    // Slices of an empty array, and empty slices of a chunked non-empty one.
    let sl = e.slice(&[s(Some(1), Some(3), 1), all(), s(None, None, -1)])?;
    assert_eq!(sl.execute()?.shape(), &[2, 0, 3]);
    let h = cx.host(&[6, 4], Dom::Range(-3.0, 3.0), F64);
    let x = ss.from_host(h).with_chunks(&[2, 3])?;
    assert_eq!(
        x.slice(&[s(Some(4), Some(2), 1)])?.execute()?.shape(),
        &[0, 4]
    );
    assert_eq!(
        x.slice(&[all(), s(Some(9), None, 1)])?
            .sum(1, false)?
            .to_array::<f64>()?,
        zeros(&[6])
    );
    // Concatenation with empty chunked operands on either axis.
    let want = x.to_array::<f64>()?;
    let e0 = ss.from_vec::<f64>(vec![], &[0, 4])?.with_chunks(&[1])?;
    let e1 = ss.from_vec::<f64>(vec![], &[6, 0])?.with_chunks(&[5, 1])?;
    assert_eq!(
        tessera::concatenate(&[&e0, &x, &e0], 0)?.to_array::<f64>()?,
        want
    );
    assert_eq!(
        tessera::concatenate(&[&e1, &x, &e1], 1)?.to_array::<f64>()?,
        want
    );
    assert_eq!(
        tessera::concatenate(&[&e0, &e0], 0)?.execute()?.shape(),
        &[0, 4]
    );
    // Reshape, broadcast and elementwise ops of empty chunked arrays.
    assert_eq!(e.reshape(&[3, 0, 2, 2])?.execute()?.shape(), &[3, 0, 2, 2]);
    assert_eq!(e.reshape(&[0])?.execute()?.shape(), &[0]);
    let b1 = ss.from_vec::<f64>(vec![], &[1, 0])?.with_chunks(&[1])?;
    assert_eq!(b1.broadcast_to(&[3, 0])?.execute()?.shape(), &[3, 0]);
    assert_eq!((&e + &e).add(1.0)?.execute()?.shape(), &[4, 0, 3]);
    assert_eq!(
        e.add(&b1.reshape(&[1, 0, 1])?)?.execute()?.shape(),
        &[4, 0, 3]
    );
    Ok(())
}

/// Shapes whose element or byte count overflows are typed errors when they are recorded, in
/// every function and op that makes a shape; nothing wraps to a wrong size or reaches a panic.
pub fn error_overflowing_shapes(cx: &mut Cx) -> Result<()> {
    let s = cx.s.clone();
    let too_big = |e: &Error, shape: &str| {
        let msg = e.to_string();
        assert!(
            matches!(e, Error::InvalidArgument { .. })
                && msg.contains("too big")
                && msg.contains(shape),
            "{msg}"
        );
    };
    let t = s.ones(&[1 << 32, 1 << 32], F32);
    too_big(
        t.error().expect("recorded as an error"),
        "[4294967296, 4294967296]",
    );
    let e = assert_err!(t.sum(Axes::All, false), Error::InvalidArgument { .. });
    too_big(&e, "4294967296");
    let z = s.zeros(&[1 << 40, 1 << 30], F64);
    assert!(z.error().is_some(), "{z:?}");
    assert_err!(z.execute(), Error::InvalidArgument { .. });
    for t in [
        s.zeros(&[usize::MAX], Bool),
        s.full(&[1 << 62], 1.0, F32),
        s.linspace(0.0, 1.0, usize::MAX, true, F64),
        s.eye(1 << 32, Some(1 << 32), 0, F32),
        s.random(1).rand(&[1 << 33, 1 << 33], F32),
    ] {
        assert!(
            matches!(t.error(), Some(Error::InvalidArgument { .. })),
            "{t:?}"
        );
    }
    let e = assert_err!(s.arange(0.0, 1e30, 1.0, F64), Error::InvalidArgument { .. });
    too_big(&e, "arange");
    // Shapes made from operands that are fine on their own.
    let col = s.zeros(&[1 << 40, 1], F32);
    let row = s.zeros(&[1, 1 << 40], F32);
    too_big(
        &assert_err!(col.add(&row), Error::InvalidArgument { .. }),
        "[1099511627776, 1099511627776]",
    );
    assert_err!(
        col.broadcast_to(&[1 << 40, 1 << 40]),
        Error::InvalidArgument { .. }
    );
    assert_err!(col.matmul(&row), Error::InvalidArgument { .. });
    assert_err!(col.where_(&row, 0.0), Error::InvalidArgument { .. });
    let v = s.zeros(&[1 << 61], Bool);
    assert!(v.error().is_none(), "2**61 bytes is a valid (lazy) shape");
    assert_err!(
        tessera::concatenate(&[&v, &v, &v, &v], 0),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        tessera::concatenate(&[&v; 9], 0),
        Error::InvalidArgument { .. }
    );
    assert_err!(
        tessera::stack(&[&v, &v, &v, &v], 0),
        Error::InvalidArgument { .. }
    );
    let small = s.zeros(&[16], Bool);
    assert_err!(small.reshape(&[1 << 62, 4, 16]), Error::BadReshape { .. });
    assert_err!(small.reshape(&[1 << 62, 8, -1]), Error::BadReshape { .. });
    assert_err!(
        small.reshape(&[1 << 62, 1 << 62, 0]),
        Error::BadReshape { .. }
    );
    assert_eq!(
        s.ones(&[3], F64).sum(Axes::All, false)?.item()?,
        3.0,
        "the session still works"
    );
    Ok(())
}

/// Shapes that are valid but whose chunks would not fit host memory in bookkeeping are typed
/// errors from the tiler (naming shape, chunk shape and chunk count) instead of an abort.
pub fn error_hostile_sizes(cx: &mut Cx) -> Result<()> {
    let s = cx.s.clone();
    let chunks_err = |e: Error| {
        let msg = e.to_string();
        assert!(
            matches!(e, Error::InvalidArgument { .. })
                && msg.contains("chunk")
                && msg.contains("cut into chunks of"),
            "{msg}"
        );
        msg
    };
    // Monte Carlo pi as the CLI runs it, at 2**60 points (--n 1e18) and at the largest count.
    let e = tessera::workloads::pi(&s, 1 << 60, 1 << 22, 0).unwrap_err();
    let msg = chunks_err(e);
    assert!(
        msg.contains("[1152921504606846976]") && msg.contains("[4194304]"),
        "{msg}"
    );
    let e = tessera::workloads::pi(&s, usize::MAX, 1 << 22, 0).unwrap_err();
    assert!(e.to_string().contains("too big"), "{e}");
    chunks_err(
        s.ones(&[1 << 60], Bool)
            .sum(Axes::All, false)?
            .execute()
            .unwrap_err(),
    );
    chunks_err(
        s.zeros(&[1 << 40], F32)
            .with_chunks(&[1])?
            .execute()
            .unwrap_err(),
    );
    // Chunk grids that multiply: (N, 1) + (1, N) in unit chunks is N**2 chunks.
    let col = s.ones(&[1 << 16, 1], F32).with_chunks(&[1])?;
    let row = s.ones(&[1, 1 << 16], F32).with_chunks(&[1])?;
    chunks_err(col.add(&row)?.execute().unwrap_err());
    chunks_err(col.matmul(&row)?.execute().unwrap_err());
    assert_eq!(
        s.ones(&[3], F64).sum(Axes::All, false)?.item()?,
        3.0,
        "the session still works"
    );
    Ok(())
}

/// Values are refused, not replaced: a zero chunk extent is an error naming the chunk shape.
pub fn error_zero_chunk_extent(cx: &mut Cx) -> Result<()> {
    let a = t(cx, &[13, 7], F64);
    for chunk in [&[0][..], &[3, 0], &[0, 0]] {
        let e = assert_err!(a.with_chunks(chunk), Error::InvalidArgument { .. });
        assert!(e.to_string().contains(&format!("{chunk:?}")), "{e}");
    }
    let src = cx.s.random(3).rand(&[10], F32);
    assert_err!(src.with_chunks(&[0]), Error::InvalidArgument { .. });
    let e = cx.s.from_vec::<f64>(vec![], &[0])?;
    assert_err!(e.with_chunks(&[0]), Error::InvalidArgument { .. });
    assert_eq!(a.with_chunks(&[1])?.sum(Axes::All, false)?.item()?, 91.0);
    // A zero chunk byte budget is refused too (it acted as 1 byte); the budget is unchanged.
    let before = cx.s.config().chunk_bytes;
    let e = assert_err!(
        cx.s.set_chunk_bytes(0),
        Error::InvalidArgument { op, .. } if op == "set_chunk_bytes"
    );
    assert!(e.to_string().contains("is 0"), "{e}");
    assert_eq!(cx.s.config().chunk_bytes, before);
    cx.s.set_chunk_bytes(1)?;
    assert_eq!(cx.s.config().chunk_bytes, 1);
    cx.s.set_chunk_bytes(before)?;
    Ok(())
}

/// Messages name the op the user called: stack's axis error says stack, its shape error names
/// the operands; two ellipses say so.
pub fn error_messages_name_the_call(cx: &mut Cx) -> Result<()> {
    let (a, b) = (t(cx, &[13, 7], F64), t(cx, &[13, 6], F64));
    let e = assert_err!(tessera::stack(&[&a, &a], 3), Error::AxisOutOfRange { op, axis: 3, ndim: 3, .. } if op == "stack");
    assert!(e.to_string().starts_with("stack"), "{e}");
    assert_err!(tessera::stack(&[&a, &a], -4), Error::AxisOutOfRange { op, .. } if op == "stack");
    assert_eq!(tessera::stack(&[&a, &a], -3)?.shape(), &[2, 13, 7]);
    let e = assert_err!(tessera::stack(&[&a, &a, &b], 0), Error::ShapeMismatch { lhs, rhs, .. } if lhs == &[13, 7] && rhs == &[13, 6]);
    let msg = e.to_string();
    assert!(
        msg.starts_with("stack") && msg.contains("operand 2") && !msg.contains("expand_dims"),
        "{msg}"
    );
    let e = assert_err!(
        a.slice(&[SliceArg::Ellipsis, SliceArg::Ellipsis]),
        Error::InvalidArgument { .. }
    );
    assert!(
        e.to_string()
            .contains("an index can only have a single ellipsis"),
        "{e}"
    );
    let e = assert_err!(
        a.slice(&[SliceArg::Ellipsis, all(), SliceArg::Ellipsis]),
        Error::InvalidArgument { .. }
    );
    assert!(!e.to_string().contains("were indexed"), "{e}");
    Ok(())
}
