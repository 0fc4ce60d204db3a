//! Errors are typed values naming the op and the operands; nothing panics.

use super::{exec_err, Cx};
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
