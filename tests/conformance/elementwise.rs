//! Elementwise ops: every unary and binary op in every dtype numpy allows, same-shape,
//! broadcast across chunks and with scalars on either side; promotion; where/clip/astype.

use super::reference::{self as r, b};
use super::{fit, to_host, values, Cx, Dom, Tol};
use ndarray::{arr1, ArrayD, IxDyn};
use tessera::op::BinaryOp;
use tessera::{DType, Error, HostArray, Operand, Result, Scalar, Tensor};

use DType::{Bool, F32, F64, I32, I64};

// ---------------------------------------------------------------------------------------------
// Unary ops

/// (input dtype, result dtype) pairs.
type Dtypes = &'static [(DType, DType)];

const TRANSCENDENTAL: Dtypes = &[(F32, F32), (F64, F64), (I32, F64), (I64, F64), (Bool, F32)];
const SIGNED: Dtypes = &[(F32, F32), (F64, F64), (I32, I32), (I64, I64)];
const KEEP: Dtypes = &[(F32, F32), (F64, F64), (I32, I32), (I64, I64), (Bool, Bool)];
/// numpy rounds bool in float16; Tessera has no float16 and uses float32.
const ROUND: Dtypes = &[(F32, F32), (F64, F64), (I32, I32), (I64, I64), (Bool, F32)];
const PREDICATE: Dtypes = &[
    (F32, Bool),
    (F64, Bool),
    (I32, Bool),
    (I64, Bool),
    (Bool, Bool),
];

/// Bool inputs are drawn half true, half false whatever the op's domain; integers get no
/// infinities (they would saturate to the extremes, where negation wraps).
fn dom_for(dom: Dom, dt: DType) -> Dom {
    match (dom, dt) {
        (_, Bool) => Dom::Bool(0.5),
        (Dom::Special, I32 | I64) => Dom::Range(-1000.0, 1000.0),
        _ => dom,
    }
}

fn unary(
    cx: &mut Cx,
    name: &str,
    op: fn(&Tensor) -> Result<Tensor>,
    f: fn(f64) -> f64,
    dom: Dom,
    dtypes: Dtypes,
    rejects: &[DType],
) -> Result<()> {
    for shape in [&[13usize, 7][..], &[4, 9]] {
        for &(dt, rdt) in dtypes {
            let x = cx.host(shape, dom_for(dom, dt), dt);
            let want = r::map(&values(&x), |v| fit(f(v), rdt));
            cx.ew(
                &format!("{name}({dt} {shape:?})"),
                &[&x],
                |t| op(&t[0]),
                rdt,
                &want,
            )?;
        }
    }
    for &dt in rejects {
        crate::assert_err!(op(&cx.s.zeros(&[3], dt)), Error::UnsupportedDType { .. });
    }
    Ok(())
}

macro_rules! unary_cases {
    ($($name:ident: $f:expr, $dom:expr, $dtypes:expr, $rejects:expr;)*) => {$(
        #[doc = concat!("`", stringify!($name), "` against the f64 reference in every dtype.")]
        pub fn $name(cx: &mut Cx) -> Result<()> {
            unary(cx, stringify!($name), Tensor::$name, $f, $dom, $dtypes, $rejects)
        }
    )*};
}

unary_cases! {
    neg: |x| -x, Dom::Special, SIGNED, &[Bool];
    abs: f64::abs, Dom::Special, KEEP, &[];
    sign: r::sign, Dom::Special, SIGNED, &[Bool];
    sqrt: f64::sqrt, Dom::Range(0.0, 20.0), TRANSCENDENTAL, &[];
    exp: f64::exp, Dom::Range(-10.0, 10.0), TRANSCENDENTAL, &[];
    log: f64::ln, Dom::Range(1e-3, 50.0), TRANSCENDENTAL, &[];
    log1p: f64::ln_1p, Dom::Range(-0.99, 10.0), TRANSCENDENTAL, &[];
    expm1: f64::exp_m1, Dom::Range(-5.0, 5.0), TRANSCENDENTAL, &[];
    sin: f64::sin, Dom::Range(-7.0, 7.0), TRANSCENDENTAL, &[];
    cos: f64::cos, Dom::Range(-7.0, 7.0), TRANSCENDENTAL, &[];
    tan: f64::tan, Dom::Range(-1.5, 1.5), TRANSCENDENTAL, &[];
    tanh: f64::tanh, Dom::Range(-5.0, 5.0), TRANSCENDENTAL, &[];
    arcsin: f64::asin, Dom::Range(-1.0, 1.0), TRANSCENDENTAL, &[];
    arccos: f64::acos, Dom::Range(-1.0, 1.0), TRANSCENDENTAL, &[];
    arctan: f64::atan, Dom::Range(-20.0, 20.0), TRANSCENDENTAL, &[];
    floor: f64::floor, Dom::Special, KEEP, &[];
    ceil: f64::ceil, Dom::Special, KEEP, &[];
    round: f64::round_ties_even, Dom::Halves, ROUND, &[];
    logical_not: |x| b(x == 0.0), Dom::Ties, PREDICATE, &[];
    isnan: |x| b(x.is_nan()), Dom::Special, PREDICATE, &[];
    isinf: |x| b(x.is_infinite()), Dom::Special, PREDICATE, &[];
    isfinite: |x| b(x.is_finite()), Dom::Special, PREDICATE, &[];
    sinh: f64::sinh, Dom::Range(-8.0, 8.0), TRANSCENDENTAL, &[];
    cosh: f64::cosh, Dom::Range(-8.0, 8.0), TRANSCENDENTAL, &[];
    arcsinh: f64::asinh, Dom::Range(-50.0, 50.0), TRANSCENDENTAL, &[];
    arccosh: f64::acosh, Dom::Range(1.0, 50.0), TRANSCENDENTAL, &[];
    arctanh: f64::atanh, Dom::Range(-0.95, 0.95), TRANSCENDENTAL, &[];
    log2: f64::log2, Dom::Range(1e-3, 50.0), TRANSCENDENTAL, &[];
    log10: f64::log10, Dom::Range(1e-3, 50.0), TRANSCENDENTAL, &[];
    exp2: f64::exp2, Dom::Range(-20.0, 20.0), TRANSCENDENTAL, &[];
    cbrt: f64::cbrt, Dom::Range(-50.0, 50.0), TRANSCENDENTAL, &[];
    trunc: f64::trunc, Dom::Special, KEEP, &[];
    square: |x| x * x, Dom::Range(-30.0, 30.0), SQUARE, &[];
    signbit: |x| b(x.is_sign_negative()), Dom::Special, PREDICATE, &[];
}

/// numpy squares bool in int8; Tessera has no int8 and uses int32.
const SQUARE: Dtypes = &[(F32, F32), (F64, F64), (I32, I32), (I64, I64), (Bool, I32)];

/// `reciprocal`: `1 / x` on floats; on integers numpy's `1.0 / x` cast back (1, -1 or 0).
pub fn reciprocal(cx: &mut Cx) -> Result<()> {
    let floats: Dtypes = &[(F32, F32), (F64, F64)];
    unary(
        cx,
        "reciprocal",
        Tensor::reciprocal,
        |x| 1.0 / x,
        Dom::Special,
        floats,
        &[],
    )?;
    let ints: Dtypes = &[(I32, I32), (I64, I64)];
    let f = |x: f64| if x.abs() == 1.0 { x } else { 0.0 };
    unary(cx, "reciprocal", Tensor::reciprocal, f, DIVISOR, ints, &[])
}

/// `bitwise_invert` (numpy's `invert`): `-x - 1` on integers, logical not on bool.
pub fn bitwise_invert(cx: &mut Cx) -> Result<()> {
    let ints: Dtypes = &[(I32, I32), (I64, I64)];
    unary(
        cx,
        "bitwise_invert",
        Tensor::bitwise_invert,
        |x| -x - 1.0,
        R,
        ints,
        &[F32, F64],
    )?;
    let bools: Dtypes = &[(Bool, Bool)];
    unary(
        cx,
        "bitwise_invert",
        Tensor::bitwise_invert,
        |x| 1.0 - x,
        R,
        bools,
        &[],
    )
}

// ---------------------------------------------------------------------------------------------
// Binary ops

/// Calls the method of `op` (`a.add(b)`, `a.sub(b)`, ...).
pub fn call<'a>(op: BinaryOp, a: &Tensor, b: impl Into<Operand<'a>>) -> Result<Tensor> {
    use BinaryOp::*;
    match op {
        Add => a.add(b),
        Sub => a.sub(b),
        Mul => a.mul(b),
        Div => a.div(b),
        FloorDiv => a.floor_divide(b),
        Mod => a.rem(b),
        Pow => a.pow(b),
        Maximum => a.maximum(b),
        Minimum => a.minimum(b),
        Eq => a.eq(b),
        Ne => a.ne(b),
        Lt => a.lt(b),
        Le => a.le(b),
        Gt => a.gt(b),
        Ge => a.ge(b),
        And => a.logical_and(b),
        Or => a.logical_or(b),
        Xor => a.logical_xor(b),
        Arctan2 => a.arctan2(b),
        Hypot => a.hypot(b),
        Copysign => a.copysign(b),
        Nextafter => a.nextafter(b),
        Logaddexp => a.logaddexp(b),
        BitAnd => a.bitwise_and(b),
        BitOr => a.bitwise_or(b),
        BitXor => a.bitwise_xor(b),
        LeftShift => a.bitwise_left_shift(b),
        RightShift => a.bitwise_right_shift(b),
    }
}

/// A Python-like scalar of the kind that keeps a dtype-`dt` tensor's dtype (NEP 50).
pub fn weak(v: f64, dt: DType) -> Scalar {
    match dt {
        Bool => Scalar::Bool(v != 0.0),
        I32 | I64 => Scalar::Int(v as i64),
        F32 | F64 => Scalar::Float(v),
    }
}

/// Shape pairs: same shape, a row broadcast, an outer product, a 3-D broadcast.
const PAIRS: [(&[usize], &[usize]); 4] = [
    (&[13, 7], &[13, 7]),
    (&[13, 7], &[7]),
    (&[13, 1], &[1, 7]),
    (&[3, 1, 6], &[5, 6]),
];

struct Binary {
    op: BinaryOp,
    f: fn(f64, f64) -> f64,
    a: Dom,
    b: Dom,
    dtypes: Dtypes,
    rejects: &'static [DType],
}

fn binary(cx: &mut Cx, spec: Binary) -> Result<()> {
    let Binary {
        op,
        f,
        dtypes,
        rejects,
        ..
    } = spec;
    let name = op.name();
    for &(dt, rdt) in dtypes {
        let (da, db) = (dom_for(spec.a, dt), dom_for(spec.b, dt));
        let want = |x: &ArrayD<f64>, y: &ArrayD<f64>| r::zip(x, y, |p, q| fit(f(p, q), rdt));
        // logaddexp(x, y) = max(x, y) + log1p(exp(-|x - y|)): where the two terms nearly cancel
        // (both operands near -log 2) the result's error is a few ulps of the operands, not of
        // the result (numpy's float32 has the same), so the absolute part scales with them.
        let tol = |x: &ArrayD<f64>, y: &ArrayD<f64>| {
            let t = Tol::elementwise(rdt);
            match op {
                BinaryOp::Logaddexp => Tol {
                    abs: t
                        .abs
                        .max(4.0 * t.rel * super::max_abs(x).max(super::max_abs(y))),
                    ..t
                },
                _ => t,
            }
        };
        for (sa, sb) in PAIRS {
            let (a, b) = (cx.host(sa, da, dt), cx.host(sb, db, dt));
            let what = format!("{name}({dt} {sa:?}, {dt} {sb:?})");
            let (va, vb) = (values(&a), values(&b));
            cx.ew_tol(
                &what,
                &[&a, &b],
                |t| call(op, &t[0], &t[1]),
                rdt,
                &want(&va, &vb),
                tol(&va, &vb),
            )?;
        }
        let (a, sv) = (cx.host(&[13, 7], da, dt), cx.scalar(db, dt));
        let what = format!("{name}({dt} (13, 7), scalar {sv})");
        let (va, vs) = (values(&a), r::scalar(sv));
        cx.ew_tol(
            &what,
            &[&a],
            |t| call(op, &t[0], weak(sv, dt)),
            rdt,
            &want(&va, &vs),
            tol(&va, &vs),
        )?;
        let (sv, b) = (cx.scalar(da, dt), cx.host(&[4, 9], db, dt));
        let what = format!("{name}(scalar {sv}, {dt} (4, 9))");
        let (vs, vb) = (r::scalar(sv), values(&b));
        cx.ew_tol(
            &what,
            &[&b],
            |t| t[0].binary_op(op, weak(sv, dt), &t[0]),
            rdt,
            &want(&vs, &vb),
            tol(&vs, &vb),
        )?;
    }
    for &dt in rejects {
        let z = cx.s.zeros(&[3], dt);
        crate::assert_err!(call(op, &z, &z), Error::UnsupportedDType { .. });
    }
    Ok(())
}

const ARITH: Dtypes = &[(F32, F32), (F64, F64), (I32, I32), (I64, I64), (Bool, Bool)];
const NUMERIC: Dtypes = &[(F32, F32), (F64, F64), (I32, I32), (I64, I64)];
const COMPARE: Dtypes = &[
    (F32, Bool),
    (F64, Bool),
    (I32, Bool),
    (I64, Bool),
    (Bool, Bool),
];

macro_rules! binary_cases {
    ($($name:ident: $op:ident, $f:expr, $a:expr, $b:expr, $dtypes:expr, $rejects:expr;)*) => {$(
        #[doc = concat!("`", stringify!($name), "`: same shape, broadcast and scalar operands.")]
        pub fn $name(cx: &mut Cx) -> Result<()> {
            binary(cx, Binary { op: BinaryOp::$op, f: $f, a: $a, b: $b, dtypes: $dtypes, rejects: $rejects })
        }
    )*};
}

const R: Dom = Dom::Range(-20.0, 20.0);
const DIVISOR: Dom = Dom::Away(1.0, 5.0);

binary_cases! {
    add: Add, |x, y| x + y, R, R, ARITH, &[];
    sub: Sub, |x, y| x - y, R, R, NUMERIC, &[Bool];
    mul: Mul, |x, y| x * y, R, R, ARITH, &[];
    div: Div, |x, y| x / y, R, DIVISOR, &[(F32, F32), (F64, F64), (I32, F64), (I64, F64)], &[];
    floor_divide: FloorDiv, |x, y| r::divmod(x, y).0, R, DIVISOR, NUMERIC, &[];
    rem: Mod, |x, y| r::divmod(x, y).1, R, DIVISOR, NUMERIC, &[];
    maximum: Maximum, r::maximum, Dom::WithNan(-5.0, 5.0), Dom::WithNan(-5.0, 5.0), ARITH, &[];
    minimum: Minimum, r::minimum, Dom::WithNan(-5.0, 5.0), Dom::WithNan(-5.0, 5.0), ARITH, &[];
    eq: Eq, |x, y| b(x == y), Dom::Ties, Dom::Ties, COMPARE, &[];
    ne: Ne, |x, y| b(x != y), Dom::Ties, Dom::Ties, COMPARE, &[];
    lt: Lt, |x, y| b(x < y), Dom::Ties, Dom::Ties, COMPARE, &[];
    le: Le, |x, y| b(x <= y), Dom::Ties, Dom::Ties, COMPARE, &[];
    gt: Gt, |x, y| b(x > y), Dom::Ties, Dom::Ties, COMPARE, &[];
    ge: Ge, |x, y| b(x >= y), Dom::Ties, Dom::Ties, COMPARE, &[];
    logical_and: And, |x, y| b(x != 0.0 && y != 0.0), Dom::Ties, Dom::Ties, COMPARE, &[];
    logical_or: Or, |x, y| b(x != 0.0 || y != 0.0), Dom::Ties, Dom::Ties, COMPARE, &[];
    logical_xor: Xor, |x, y| b((x != 0.0) != (y != 0.0)), Dom::Ties, Dom::Ties, COMPARE, &[];
    arctan2: Arctan2, f64::atan2, Dom::Special, Dom::Special, FLOAT_FN, &[];
    hypot: Hypot, f64::hypot, Dom::Special, Dom::Special, FLOAT_FN, &[];
    copysign: Copysign, f64::copysign, Dom::Special, Dom::Special, FLOAT_FN, &[];
    logaddexp: Logaddexp, r::logaddexp, Dom::Special, Dom::Special, FLOAT_FN, &[];
    nextafter: Nextafter, r::nextafter64, R, R, &[(F64, F64), (I32, F64), (I64, F64)], &[];
    bitwise_and: BitAnd, |x, y| (x as i64 & y as i64) as f64, R, R, BITS, &[F32, F64];
    bitwise_or: BitOr, |x, y| (x as i64 | y as i64) as f64, R, R, BITS, &[F32, F64];
    bitwise_xor: BitXor, |x, y| (x as i64 ^ y as i64) as f64, R, R, BITS, &[F32, F64];
    bitwise_left_shift: LeftShift, |x, y| x * 2f64.powi(y as i32), R, SHIFT, SHIFTS, &[F32, F64];
    bitwise_right_shift: RightShift, |x, y| (x / 2f64.powi(y as i32)).floor(), R, SHIFT, SHIFTS, &[F32, F64];
}

/// Float-only binary functions: integers compute in float64, bool in float32 (numpy: float16).
const FLOAT_FN: Dtypes = &[(F32, F32), (F64, F64), (I32, F64), (I64, F64), (Bool, F32)];
const BITS: Dtypes = &[(I32, I32), (I64, I64), (Bool, Bool)];
/// numpy shifts bool in int8; Tessera has no int8 and uses int32.
const SHIFTS: Dtypes = &[(I32, I32), (I64, I64), (Bool, I32)];
const SHIFT: Dom = Dom::Int(0, 12);

/// `pow`: floats with positive bases and any exponent, integers with exponents >= 0.
pub fn pow(cx: &mut Cx) -> Result<()> {
    let f = f64::powf;
    let float = Binary {
        op: BinaryOp::Pow,
        f,
        a: Dom::Range(0.1, 4.0),
        b: Dom::Range(-2.0, 3.0),
        dtypes: &[(F32, F32), (F64, F64)],
        rejects: &[],
    };
    binary(cx, float)?;
    binary(
        cx,
        Binary {
            op: BinaryOp::Pow,
            f,
            a: Dom::Range(-6.0, 6.0),
            b: Dom::Range(0.0, 5.0),
            dtypes: &[(I32, I32), (I64, I64)],
            rejects: &[],
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Promotion, operators, where, clip, astype, chains

/// numpy's promotion (NEP 50): result dtypes and values of mixed-dtype expressions.
pub fn promotion(cx: &mut Cx) -> Result<()> {
    let sh = [13, 7];
    let i32s = cx.host(&sh, Dom::Range(-50.0, 50.0), I32);
    let f32s = cx.host(&sh, Dom::Range(-50.0, 50.0), F32);
    let bools = cx.host(&sh, Dom::Bool(0.5), Bool);
    let i64s = cx.host(&[7], Dom::Range(-50.0, 50.0), I64);
    let f64s = cx.host(&[13, 1], Dom::Range(-50.0, 50.0), F64);
    let divs = cx.host(&sh, DIVISOR, I32);
    let (vi, vf, vb, vl, vd, vdiv) = (
        values(&i32s),
        values(&f32s),
        values(&bools),
        values(&i64s),
        values(&f64s),
        values(&divs),
    );
    type Build = fn(&[Tensor]) -> Result<Tensor>;
    #[rustfmt::skip]
    let cases: Vec<(&str, [&HostArray; 2], Build, DType, ArrayD<f64>)> = vec![
        ("i32 + f32", [&i32s, &f32s], |t| t[0].add(&t[1]), F64, r::zip(&vi, &vf, |x, y| x + y)),
        ("f32 + 1.5", [&f32s, &i32s], |t| t[0].add(1.5), F32, r::map(&vf, |x| fit(x + 1.5, F32))),
        ("f32 * 3 (int)", [&f32s, &i32s], |t| t[0].mul(3), F32, r::map(&vf, |x| fit(x * 3.0, F32))),
        ("i32 / i32", [&i32s, &divs], |t| t[0].div(&t[1]), F64, r::zip(&vi, &vdiv, |x, y| x / y)),
        ("i32 // i32", [&i32s, &divs], |t| t[0].floor_divide(&t[1]), I32, r::zip(&vi, &vdiv, |x, y| (x / y).floor())),
        ("bool + 1", [&bools, &i32s], |t| t[0].add(1), I64, r::map(&vb, |x| x + 1.0)),
        ("bool + 1.5", [&bools, &i32s], |t| t[0].add(1.5), F64, r::map(&vb, |x| x + 1.5)),
        ("bool + true", [&bools, &i32s], |t| t[0].add(true), Bool, r::map(&vb, |_| 1.0)),
        ("bool * i32", [&bools, &i32s], |t| t[0].mul(&t[1]), I32, r::zip(&vb, &vi, |x, y| x * y)),
        ("i32 + i64", [&i32s, &i64s], |t| t[0].add(&t[1]), I64, r::zip(&vi, &vl, |x, y| x + y)),
        ("f32 + f64", [&f32s, &f64s], |t| t[0].add(&t[1]), F64, r::zip(&vf, &vd, |x, y| x + y)),
        ("i32 + 2.5", [&i32s, &f32s], |t| t[0].add(2.5), F64, r::map(&vi, |x| x + 2.5)),
        ("i32 * 3", [&i32s, &f32s], |t| t[0].mul(3), I32, r::map(&vi, |x| x * 3.0)),
        ("i64 - f32", [&i64s, &f32s], |t| t[0].sub(&t[1]), F64, r::zip(&vl, &vf, |x, y| x - y)),
        ("i32 > 1.5", [&i32s, &f32s], |t| t[0].gt(1.5), Bool, r::map(&vi, |x| b(x > 1.5))),
        ("f32 == i32", [&f32s, &i32s], |t| t[0].eq(&t[1]), Bool, r::zip(&vf, &vi, |x, y| b(x == y))),
        ("sqrt(i32)", [&i32s, &f32s], |t| t[0].abs()?.sqrt(), F64, r::map(&vi, |x| x.abs().sqrt())),
        ("exp(bool) (f32, numpy: f16)", [&bools, &f32s], |t| t[0].exp(), F32, r::map(&vb, |x| fit(x.exp(), F32))),
        ("maximum(i32, f32)", [&i32s, &f32s], |t| t[0].maximum(&t[1]), F64, r::zip(&vi, &vf, r::maximum)),
        ("i32 ** 2", [&i32s, &f32s], |t| t[0].pow(2), I32, r::map(&vi, |x| x * x)),
        ("f32 ** 2.0", [&f32s, &i32s], |t| t[0].pow(2.0), F32, r::map(&vf, |x| fit(x * x, F32))),
    ];
    for (what, inputs, build, dt, want) in cases {
        cx.ew(what, &inputs, build, dt, &want)?;
    }
    Ok(())
}

/// The operator overloads, with tensors and scalars on either side.
pub fn operators(cx: &mut Cx) -> Result<()> {
    let a = cx.host(&[13, 7], Dom::Range(-5.0, 5.0), F64);
    let bb = cx.host(&[7], DIVISOR, F64);
    let i = cx.host(&[13, 7], Dom::Range(-50.0, 50.0), I64);
    let (va, vb, vi) = (values(&a), values(&bb), values(&i));
    type Build = fn(&[Tensor]) -> Result<Tensor>;
    #[rustfmt::skip]
    let cases: Vec<(&str, [&HostArray; 2], Build, DType, ArrayD<f64>)> = vec![
        ("&a + &b", [&a, &bb], |t| Ok(&t[0] + &t[1]), F64, r::zip(&va, &vb, |x, y| x + y)),
        ("&a - &b", [&a, &bb], |t| Ok(&t[0] - &t[1]), F64, r::zip(&va, &vb, |x, y| x - y)),
        ("&a * &b", [&a, &bb], |t| Ok(&t[0] * &t[1]), F64, r::zip(&va, &vb, |x, y| x * y)),
        ("&a / &b", [&a, &bb], |t| Ok(&t[0] / &t[1]), F64, r::zip(&va, &vb, |x, y| x / y)),
        ("&a % &b", [&a, &bb], |t| Ok(&t[0] % &t[1]), F64, r::zip(&va, &vb, |x, y| r::divmod(x, y).1)),
        ("-&a", [&a, &bb], |t| Ok(-&t[0]), F64, r::map(&va, |x| -x)),
        ("&a * 2.0", [&a, &bb], |t| Ok(&t[0] * 2.0), F64, r::map(&va, |x| x * 2.0)),
        ("1.0 - &a", [&a, &bb], |t| Ok(1.0 - &t[0]), F64, r::map(&va, |x| 1.0 - x)),
        ("2.0 / &b", [&a, &bb], |t| Ok(2.0 / &t[1]), F64, r::map(&vb, |x| 2.0 / x)),
        ("7 % &b", [&a, &bb], |t| Ok(7i64 % &t[1]), F64, r::map(&vb, |x| r::divmod(7.0, x).1)),
        ("100 - &i", [&i, &bb], |t| Ok(100i64 - &t[0]), I64, r::map(&vi, |x| 100.0 - x)),
        ("&i % 7", [&i, &bb], |t| Ok(&t[0] % 7i64), I64, r::map(&vi, |x| r::divmod(x, 7.0).1)),
        ("(&a + 1.0) * &b - &a", [&a, &bb], |t| Ok((&t[0] + 1.0) * &t[1] - &t[0]), F64, {
            let s = r::zip(&r::map(&va, |x| x + 1.0), &vb, |x, y| x * y);
            r::zip(&s, &va, |x, y| x - y)
        }),
        ("owned: a.clone() + b.clone()", [&a, &bb], |t| Ok(t[0].clone() + t[1].clone()), F64, r::zip(&va, &vb, |x, y| x + y)),
    ];
    for (what, inputs, build, dt, want) in cases {
        cx.ew(what, &inputs, build, dt, &want)?;
    }
    Ok(())
}

/// where(cond, a, b) with bool and numeric conditions, broadcasting and scalars.
pub fn where_(cx: &mut Cx) -> Result<()> {
    for dt in [F32, F64, I32, I64, Bool] {
        let c = cx.host(&[13, 7], Dom::Bool(0.5), Bool);
        let x = cx.host(&[13, 7], dom_for(R, dt), dt);
        let y = cx.host(&[7], dom_for(R, dt), dt);
        let pick = |c: f64, x: f64, y: f64| if c != 0.0 { x } else { y };
        let want = r::zip3(&values(&c), &values(&x), &values(&y), pick);
        cx.ew(
            &format!("where(bool, {dt}, {dt} (7,))"),
            &[&c, &x, &y],
            |t| t[0].where_(&t[1], &t[2]),
            dt,
            &want,
        )?;
    }
    let c = cx.host(&[13, 1], Dom::Ties, F64); // numeric condition: non-zero (and NaN) is true
    let x = cx.host(&[7], R, F32);
    let (vc, vx) = (values(&c), values(&x));
    let want = r::zip(&vc, &vx, |c, x| if c != 0.0 { x } else { -1.0 });
    cx.ew(
        "where(f64 (13,1), f32 (7,), -1.0)",
        &[&c, &x],
        |t| tessera::where_(&t[0], &t[1], -1.0),
        F32,
        &want,
    )?;
    let want = r::map(&vc, |c| if c != 0.0 { 2.0 } else { 3.0 });
    cx.ew("where(c, 2, 3)", &[&c], |t| t[0].where_(2, 3), I64, &want)?;
    let i = cx.host(&[13, 7], R, I32);
    let want = r::zip(&vc, &values(&i), |c, i| if c != 0.0 { i } else { 0.5 });
    cx.ew(
        "where(c, i32, 0.5)",
        &[&c, &i],
        |t| t[0].where_(&t[1], 0.5),
        F64,
        &want,
    )
}

/// clip with scalar and tensor bounds.
pub fn clip(cx: &mut Cx) -> Result<()> {
    for dt in [F32, F64, I32, I64] {
        let x = cx.host(&[13, 7], Dom::Range(-10.0, 10.0), dt);
        let want = r::map(&values(&x), |v| v.clamp(-3.0, fit(4.5, dt)));
        cx.ew(
            &format!("clip({dt}, -3, 4.5)"),
            &[&x],
            |t| t[0].clip(-3, weak(4.5, dt)),
            dt,
            &want,
        )?;
        let lo = cx.host(&[7], Dom::Range(-8.0, 0.0), dt);
        let hi = cx.host(&[13, 1], Dom::Range(0.0, 8.0), dt);
        let want = r::zip3(&values(&x), &values(&lo), &values(&hi), |v, l, h| {
            v.max(l).min(h)
        });
        cx.ew(
            &format!("clip({dt}, tensor, tensor)"),
            &[&x, &lo, &hi],
            |t| t[0].clip(&t[1], &t[2]),
            dt,
            &want,
        )?;
    }
    Ok(())
}

/// astype between every pair of dtypes (floats to ints truncate; non-zero is true).
pub fn astype(cx: &mut Cx) -> Result<()> {
    for from in [Bool, I32, I64, F32, F64] {
        let x = cx.host(&[13, 7], dom_for(Dom::Range(-1000.0, 1000.0), from), from);
        let vx = values(&x);
        for to in [Bool, I32, I64, F32, F64] {
            let want = values(&to_host(&vx, to));
            cx.ew(
                &format!("astype({from} -> {to})"),
                &[&x],
                |t| t[0].astype(to),
                to,
                &want,
            )?;
        }
    }
    Ok(())
}

/// A longer fused chain mixing unary, binary, where, casts and broadcasting.
pub fn fused_chain(cx: &mut Cx) -> Result<()> {
    let a = cx.host(&[13, 7], Dom::Range(-2.0, 2.0), F32);
    let bb = cx.host(&[7], Dom::Range(0.5, 3.0), F32);
    let c = cx.host(&[13, 1], Dom::Range(-50.0, 50.0), I32);
    let (va, vb, vc) = (values(&a), values(&bb), values(&c));
    // where(a > 0, exp(a) * b, sqrt(b) - a) + c / 2   (f32 with i32 -> f64 at the end)
    let f32_part = r::zip3(&va, &vb, &va, |x, y, _| {
        fit(
            if x > 0.0 {
                fit(fit(x.exp(), F32) * y, F32)
            } else {
                fit(fit(y.sqrt(), F32) - x, F32)
            },
            F32,
        )
    });
    let want = r::zip(&f32_part, &vc, |p, c| p + c / 2.0);
    let build = |t: &[Tensor]| {
        let pos = t[0].exp()?.mul(&t[1])?;
        let neg = t[1].sqrt()?.sub(&t[0])?;
        t[0].gt(0.0)?.where_(&pos, &neg)?.add(&t[2].div(2)?)
    };
    cx.ew_tol(
        "where(a > 0, exp(a) * b, sqrt(b) - a) + c / 2",
        &[&a, &bb, &c],
        build,
        F64,
        &want,
        Tol {
            rel: 1e-6,
            abs: 1e-5,
        },
    )?;
    let want = r::map(&va, |x| b(fit(fit(x.sin(), F32).abs(), F32) <= 0.5));
    cx.ew(
        "abs(sin(a)) <= 0.5",
        &[&a],
        |t| t[0].sin()?.abs()?.le(0.5),
        Bool,
        &want,
    )
}

// ---------------------------------------------------------------------------------------------
// Fixed-value semantics

fn fixed(cx: &Cx, what: &str, got: Result<Tensor>, dt: DType, want: &[f64]) -> Result<()> {
    let got = got?.execute()?;
    cx.assert_close(what, &got, dt, &arr1(want).into_dyn(), Tol::EXACT);
    Ok(())
}

fn vec_of(cx: &Cx, v: &[f64], dt: DType) -> Result<Tensor> {
    cx.s.from_host(to_host(&arr1(v).into_dyn(), dt))
        .with_chunks(&[2])
}

/// floor_divide and remainder follow the divisor's sign, as numpy (values from numpy).
pub fn floor_divide_mod_signs(cx: &mut Cx) -> Result<()> {
    for dt in [I32, I64] {
        let a = vec_of(cx, &[7.0, -7.0, 7.0, -7.0, 0.0, 6.0, -6.0], dt)?;
        let d = vec_of(cx, &[2.0, 2.0, -2.0, -2.0, 3.0, 3.0, -3.0], dt)?;
        fixed(
            cx,
            &format!("{dt} //"),
            a.floor_divide(&d),
            dt,
            &[3.0, -4.0, -4.0, 3.0, 0.0, 2.0, 2.0],
        )?;
        fixed(
            cx,
            &format!("{dt} %"),
            a.rem(&d),
            dt,
            &[1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 0.0],
        )?;
    }
    for dt in [F32, F64] {
        let a = vec_of(cx, &[7.5, -7.5, 7.5, -7.5, 0.5, -0.5, 6.0, -6.0], dt)?;
        let d = vec_of(cx, &[2.0, 2.0, -2.0, -2.0, 1.0, 1.0, -3.0, 3.0], dt)?;
        fixed(
            cx,
            &format!("{dt} //"),
            a.floor_divide(&d),
            dt,
            &[3.0, -4.0, -4.0, 3.0, 0.0, -1.0, -2.0, -2.0],
        )?;
        let m = a.rem(&d)?.execute()?;
        cx.assert_close(
            &format!("{dt} %"),
            &m,
            dt,
            &arr1(&[1.5, 0.5, -0.5, -1.5, 0.5, 0.5, 0.0, 0.0]).into_dyn(),
            Tol::EXACT,
        );
        // numpy: a zero remainder takes the divisor's sign.
        let signs: Vec<bool> = values(&m).iter().map(|v| v.is_sign_negative()).collect();
        assert_eq!(
            &signs[6..],
            &[true, false],
            "{dt}: sign of zero remainders (6 % -3 = -0.0)"
        );
    }
    Ok(())
}

/// round() rounds halves to even, as numpy.
pub fn round_half_to_even(cx: &mut Cx) -> Result<()> {
    let x = [
        0.5,
        1.5,
        2.5,
        -0.5,
        -1.5,
        -2.5,
        3.5,
        0.49999997,
        -7.5,
        1e15 + 0.5,
        2.4,
        -2.6,
    ];
    let want = [
        0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 4.0, 0.0, -8.0, 1e15, 2.0, -3.0,
    ];
    fixed(cx, "round f64", vec_of(cx, &x, F64)?.round(), F64, &want)?;
    fixed(
        cx,
        "round f32",
        vec_of(cx, &x[..9], F32)?.round(),
        F32,
        &want[..9],
    )
}

/// NaN propagates through maximum/minimum and min/max/sum reductions; argmax picks the first
/// NaN; NaN is truthy.
pub fn nan_propagation(cx: &mut Cx) -> Result<()> {
    let nan = f64::NAN;
    for dt in [F32, F64] {
        let a = vec_of(cx, &[1.0, nan, 3.0, nan, -1.0], dt)?;
        let b2 = vec_of(cx, &[nan, 2.0, 1.0, nan, 0.0], dt)?;
        fixed(
            cx,
            "maximum",
            a.maximum(&b2),
            dt,
            &[nan, nan, 3.0, nan, 0.0],
        )?;
        fixed(
            cx,
            "minimum",
            a.minimum(&b2),
            dt,
            &[nan, nan, 1.0, nan, -1.0],
        )?;
        fixed(
            cx,
            "maximum(a, 0.0)",
            a.maximum(0.0),
            dt,
            &[1.0, nan, 3.0, nan, 0.0],
        )?;
        assert!(a.max(0, false)?.item()?.is_nan(), "max with NaN is NaN");
        assert!(a.min(0, false)?.item()?.is_nan(), "min with NaN is NaN");
        assert!(a.sum(0, false)?.item()?.is_nan(), "sum with NaN is NaN");
        assert_eq!(a.argmax(None)?.item()?, 1.0, "argmax picks the first NaN");
        assert_eq!(
            b2.argmin(Some(0))?.item()?,
            0.0,
            "argmin picks the first NaN"
        );
        let z = vec_of(cx, &[0.0, nan], dt)?;
        fixed(cx, "NaN is truthy", z.astype(Bool), Bool, &[0.0, 1.0])?;
        assert_eq!(z.any(0, false)?.item()?, 1.0, "any([0, NaN])");
    }
    Ok(())
}

/// Division by zero: floats give inf/NaN, integer floor_divide and remainder give 0 (numpy).
pub fn division_by_zero(cx: &mut Cx) -> Result<()> {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    for dt in [F32, F64] {
        let a = vec_of(cx, &[1.0, -1.0, 0.0], dt)?;
        let z = vec_of(cx, &[0.0, 0.0, 0.0], dt)?;
        fixed(cx, "x / 0", a.div(&z), dt, &[inf, -inf, nan])?;
        fixed(cx, "x // 0", a.floor_divide(&z), dt, &[inf, -inf, nan])?;
        fixed(cx, "x % 0", a.rem(&z), dt, &[nan, nan, nan])?;
    }
    for dt in [I32, I64] {
        let a = vec_of(cx, &[5.0, -5.0, 0.0], dt)?;
        let z = vec_of(cx, &[0.0, 0.0, 0.0], dt)?;
        fixed(cx, "int // 0", a.floor_divide(&z), dt, &[0.0, 0.0, 0.0])?;
        fixed(cx, "int % 0", a.rem(&z), dt, &[0.0, 0.0, 0.0])?;
        fixed(cx, "int / 0", a.div(&z), F64, &[inf, -inf, nan])?;
    }
    Ok(())
}

/// numpy: true division of two bool arrays gives float64.
pub fn bool_true_divide_dtype(cx: &mut Cx) -> Result<()> {
    let t = cx.s.from_array(ArrayD::from_elem(IxDyn(&[3]), true));
    let q = t.div(&t)?;
    assert_eq!(
        q.dtype(),
        F64,
        "np.array([True]) / np.array([True]) is float64"
    );
    Ok(())
}

/// NEP 50 with Python ints an int32 array cannot hold (numpy 2): comparisons are decided by
/// value (`y >= i64::MIN` is all true, `y == 2^40` all false), arithmetic is a typed
/// `ScalarOverflow` (numpy's OverflowError), true division and logical ops take the value as
/// it is; in-range extremes still wrap as numpy's int32 arithmetic does.
pub fn weak_int_out_of_range(cx: &mut Cx) -> Result<()> {
    use BinaryOp::*;
    let x = cx.host(&[40], Dom::Range(-1000.0, 1000.0), I32);
    let vx = values(&x);
    let big = 1i64 << 40;
    let cmp: [(BinaryOp, fn(i128, i128) -> bool); 6] = [
        (Eq, |a, v| a == v),
        (Ne, |a, v| a != v),
        (Lt, |a, v| a < v),
        (Le, |a, v| a <= v),
        (Gt, |a, v| a > v),
        (Ge, |a, v| a >= v),
    ];
    for v in [
        i64::MIN,
        -big,
        i32::MIN as i64 - 1,
        i32::MAX as i64 + 1,
        big,
        i64::MAX,
    ] {
        for (op, f) in cmp {
            let want = r::map(&vx, |a| b(f(a as i128, v as i128)));
            let what = format!("{}(int32, {v})", op.name());
            cx.ew(&what, &[&x], |t| call(op, &t[0], v), Bool, &want)?;
            let want = r::map(&vx, |a| b(f(v as i128, a as i128)));
            let what = format!("{}({v}, int32)", op.name());
            cx.ew(&what, &[&x], |t| t[0].binary_op(op, v, &t[0]), Bool, &want)?;
        }
        let t = cx.s.from_host(x.clone());
        for op in [Add, Sub, Mul, FloorDiv, Mod, Pow, Maximum, Minimum] {
            for r in [call(op, &t, v), t.binary_op(op, v, &t)] {
                crate::assert_err!(
                    r,
                    Error::ScalarOverflow { value, dtype: I32, .. } if *value == v
                );
            }
        }
        let e = crate::conformance::exec_err(Ok(&t + v));
        assert!(
            matches!(e, Error::ScalarOverflow { .. }),
            "int32 + {v}: {e:?}"
        );
        assert!(e.to_string().contains("out of bounds for int32"), "{e}");
        let want = r::map(&vx, |a| a / v as f64);
        cx.ew(&format!("int32 / {v}"), &[&x], |t| t[0].div(v), F64, &want)?;
        let want = r::map(&vx, |a| b(a != 0.0));
        let what = format!("logical_and(int32, {v})");
        cx.ew(&what, &[&x], |t| t[0].logical_and(v), Bool, &want)?;
        // where casts the int C-style, as numpy does: `np.where(c, y, 2**63 - 1)` holds -1.
        let want = r::map(&vx, |a| if a > 0.0 { a } else { v as i32 as f64 });
        let what = format!("where(x > 0, int32, {v})");
        cx.ew(&what, &[&x], |t| t[0].gt(0)?.where_(&t[0], v), I32, &want)?;
    }
    // In range, even at the extremes: int32 arithmetic that wraps as numpy's does.
    for v in [i32::MIN, i32::MAX] {
        let want = r::map(&vx, |a| (a as i32).wrapping_add(v) as f64);
        let what = format!("int32 + {v}");
        cx.ew(&what, &[&x], |t| t[0].add(v as i64), I32, &want)?;
    }
    Ok(())
}

/// Weak scalars with other dtypes (numpy 2): a Python float makes an integer array float64,
/// a Python int makes a bool array int64 (also 2^40), an int64 array holds every i64.
pub fn weak_scalar_kinds(cx: &mut Cx) -> Result<()> {
    let x = cx.host(&[30], Dom::Range(-1000.0, 1000.0), I32);
    let vx = values(&x);
    let want = r::map(&vx, |a| a * 1.5);
    cx.ew("int32 * 1.5", &[&x], |t| t[0].mul(1.5), F64, &want)?;
    let want = r::map(&vx, |a| (a / 2.0).floor());
    cx.ew(
        "int32 // 2.0",
        &[&x],
        |t| t[0].floor_divide(2.0),
        F64,
        &want,
    )?;
    let want = r::map(&vx, |a| b(a == 2.5));
    cx.ew("int32 == 2.5", &[&x], |t| t[0].eq(2.5), Bool, &want)?;
    let want = r::map(&vx, |a| a + 1.0);
    cx.ew("int32 + True", &[&x], |t| t[0].add(true), I32, &want)?;
    let bx = cx.host(&[30], Dom::Bool(0.5), Bool);
    let vb = values(&bx);
    let big = 1i64 << 40;
    let want = r::map(&vb, |a| a + 1.0);
    cx.ew("bool + 1", &[&bx], |t| t[0].add(1), I64, &want)?;
    let want = r::map(&vb, |a| a + big as f64);
    cx.ew("bool + 2^40", &[&bx], |t| t[0].add(big), I64, &want)?;
    let want = r::map(&vb, |a| a + 1.5);
    cx.ew("bool + 1.5", &[&bx], |t| t[0].add(1.5), F64, &want)?;
    let want = r::map(&vb, |_| 1.0);
    cx.ew(
        "bool >= i64::MIN",
        &[&bx],
        |t| t[0].ge(i64::MIN),
        Bool,
        &want,
    )?;
    let x64 = cx.host(&[30], Dom::Range(-1000.0, 1000.0), I64);
    let v64 = values(&x64);
    let want = r::map(&v64, |a| b(a as i64 > i64::MIN));
    cx.ew(
        "int64 > i64::MIN",
        &[&x64],
        |t| t[0].gt(i64::MIN),
        Bool,
        &want,
    )?;
    let want = r::map(&v64, |a| (a as i64).wrapping_add(i64::MIN) as f64);
    cx.ew(
        "int64 + i64::MIN",
        &[&x64],
        |t| t[0].add(i64::MIN),
        I64,
        &want,
    )?;
    Ok(())
}

/// clip computes in numpy's result dtype of all three operands at once (scalars weak), not
/// in two promotions: `bool.clip(0.5, f32)` is float32; a Python-int bound beyond an int
/// array's range on its own side is dropped (numpy 2's `_clip`), one beyond it on the other
/// side overflows.
pub fn clip_promotes_once(cx: &mut Cx) -> Result<()> {
    let bx = cx.host(&[7, 9], Dom::Bool(0.5), Bool);
    let hi = cx.host(&[9], Dom::Range(0.0, 2.0), F32);
    let want = r::zip(&values(&bx), &values(&hi), |v, h| v.max(0.5).min(h));
    let inputs = [&bx, &hi];
    cx.ew(
        "clip(bool, 0.5, f32)",
        &inputs,
        |t| t[0].clip(0.5, &t[1]),
        F32,
        &want,
    )?;
    // numpy rounds the bound 2^24 + 1 once, to float32 (np.clip(b, 16777217, f32)).
    let lo = (1i64 << 24) + 1;
    let big_hi = cx.host(&[9], Dom::Range(1e8, 2e8), F32);
    let want = r::zip(&values(&bx), &values(&big_hi), |v, h| {
        fit(v.max(lo as f64), F32).min(h)
    });
    let inputs = [&bx, &big_hi];
    cx.ew(
        "clip(bool, 2^24+1, f32)",
        &inputs,
        |t| t[0].clip(lo, &t[1]),
        F32,
        &want,
    )?;
    let want = r::map(&values(&bx), |v| v.clamp(0.0, 1.0));
    cx.ew("clip(bool, 0, 1)", &[&bx], |t| t[0].clip(0, 1), I64, &want)?;
    cx.ew(
        "clip(bool, F, T)",
        &[&bx],
        |t| t[0].clip(false, true),
        Bool,
        &values(&bx),
    )?;
    let y = cx.host(&[40], Dom::Range(-1000.0, 1000.0), I32);
    let vy = values(&y);
    let want = r::map(&vy, |v| v.min(0.0));
    cx.ew(
        "clip(int32, i64::MIN, 0.0)",
        &[&y],
        |t| t[0].clip(i64::MIN, 0.0),
        F64,
        &want,
    )?;
    cx.ew(
        "clip(int32, i64::MIN, 0)",
        &[&y],
        |t| t[0].clip(i64::MIN, 0),
        I32,
        &want,
    )?;
    let want = r::map(&vy, |v| v.max(-7.0));
    cx.ew(
        "clip(int32, -7, i64::MAX)",
        &[&y],
        |t| t[0].clip(-7, i64::MAX),
        I32,
        &want,
    )?;
    let want = r::map(&vy, |v| v.clamp(0.5, 2.0));
    cx.ew(
        "clip(int32, 0.5, 2)",
        &[&y],
        |t| t[0].clip(0.5, 2),
        F64,
        &want,
    )?;
    let t = cx.s.from_host(y.clone());
    let big = 1i64 << 40;
    crate::assert_err!(t.clip(big, 2 * big), Error::ScalarOverflow { value, .. } if *value == big);
    crate::assert_err!(t.clip(-2 * big, -big), Error::ScalarOverflow { value, .. } if *value == -big);
    Ok(())
}

/// Bool with bool in `//`, `%` and `power`: numpy computes in int8, which Tessera lacks, so
/// int32 (the README lists the deviation); the values are numpy's (x // 0 = x % 0 = 0).
pub fn bool_int_ops_dtype(cx: &mut Cx) -> Result<()> {
    let p = cx.host(&[8, 5], Dom::Bool(0.5), Bool);
    let q = cx.host(&[5], Dom::Bool(0.5), Bool);
    let (vp, vq) = (values(&p), values(&q));
    let fd = |x: f64, y: f64| if y == 0.0 { 0.0 } else { (x / y).floor() };
    let md = |x: f64, y: f64| if y == 0.0 { 0.0 } else { x % y };
    let ops: [(BinaryOp, fn(f64, f64) -> f64); 3] = [
        (BinaryOp::FloorDiv, fd),
        (BinaryOp::Mod, md),
        (BinaryOp::Pow, f64::powf),
    ];
    for (op, f) in ops {
        let want = r::zip(&vp, &vq, f);
        let what = format!("{}(bool, bool)", op.name());
        cx.ew(&what, &[&p, &q], |t| call(op, &t[0], &t[1]), I32, &want)?;
        let want = r::map(&vp, |x| f(x, 1.0));
        let what = format!("{}(bool, True)", op.name());
        cx.ew(&what, &[&p], |t| call(op, &t[0], true), I32, &want)?;
    }
    // round(bool): numpy float16, Tessera float32 (as for exp(bool)).
    cx.ew("round(bool)", &[&p], |t| t[0].round(), F32, &vp)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Edge values of the Array API additions, compared exactly (bits, signed zeros, NaN signs)

/// Runs `build` on `inputs` at this test's chunking (and, chunked, checks it against one chunk).
fn run(
    cx: &Cx,
    what: &str,
    inputs: &[&HostArray],
    build: &dyn Fn(&[Tensor]) -> Result<Tensor>,
) -> Result<Option<HostArray>> {
    let Some(got) = cx.skip_unsupported(what, cx.eval(cx.ch, inputs, build))? else {
        return Ok(None);
    };
    if cx.ch != super::Chunking::One {
        let one = cx.eval(super::Chunking::One, inputs, build)?;
        cx.assert_bit_identical(what, &got, &one);
    }
    Ok(Some(got))
}

/// Integer shifts, bitwise ops, invert, square and reciprocal at int MIN/MAX, -1, 0, 1 and
/// shift counts -70..=70 (0..=64 and negative ones included), against i128 arithmetic.
pub fn bitwise_edges(cx: &mut Cx) -> Result<()> {
    // Every (value, count) pair: values x counts, row-major.
    fn cases<T: Copy>(vals: &[T], counts: &[T]) -> (Vec<T>, Vec<T>) {
        let mut a = Vec::new();
        let mut c = Vec::new();
        for &v in vals {
            for &k in counts {
                a.push(v);
                c.push(k);
            }
        }
        (a, c)
    }
    let shl = |x: i128, n: i128, bits: u32| -> i128 {
        if (0..bits as i128).contains(&n) {
            // Truncated to `bits` two's complement by the caller.
            x * (1i128 << n)
        } else {
            0
        }
    };
    let shr = |x: i128, n: i128, bits: u32| -> i128 {
        if (0..bits as i128).contains(&n) {
            x.div_euclid(1i128 << n)
        } else if x < 0 {
            -1
        } else {
            0
        }
    };
    let counts: Vec<i64> = (-70..=70).collect();
    // i32
    {
        let vals = [
            i32::MIN,
            i32::MIN + 1,
            -7,
            -1,
            0,
            1,
            5,
            i32::MAX - 1,
            i32::MAX,
        ];
        let c32: Vec<i32> = counts.iter().map(|&k| k as i32).collect();
        let (a, k) = cases(&vals, &c32);
        let n = a.len();
        let ha = HostArray::I32(ArrayD::from_shape_vec(IxDyn(&[n]), a.clone()).expect("n"));
        let hk = HostArray::I32(ArrayD::from_shape_vec(IxDyn(&[n]), k.clone()).expect("n"));
        let wrap = |v: i128| v as i32; // `as` from i128 truncates: two's complement wrap
        type Case32<'a> = (&'a str, fn(&[Tensor]) -> Result<Tensor>, Vec<i32>);
        let want = |f: &dyn Fn(i128, i128) -> i128| -> Vec<i32> {
            a.iter()
                .zip(&k)
                .map(|(&x, &c)| wrap(f(x as i128, c as i128)))
                .collect()
        };
        let list: Vec<Case32> = vec![
            (
                "left_shift i32",
                |t| t[0].bitwise_left_shift(&t[1]),
                want(&|x, c| shl(x, c, 32)),
            ),
            (
                "right_shift i32",
                |t| t[0].bitwise_right_shift(&t[1]),
                want(&|x, c| shr(x, c, 32)),
            ),
            (
                "bitwise_and i32",
                |t| t[0].bitwise_and(&t[1]),
                want(&|x, c| x & c),
            ),
            (
                "bitwise_or i32",
                |t| t[0].bitwise_or(&t[1]),
                want(&|x, c| x | c),
            ),
            (
                "bitwise_xor i32",
                |t| t[0].bitwise_xor(&t[1]),
                want(&|x, c| x ^ c),
            ),
            (
                "invert i32",
                |t| t[0].bitwise_invert(),
                want(&|x, _| -x - 1),
            ),
            ("square i32", |t| t[0].square(), want(&|x, _| x * x)),
            (
                "reciprocal i32",
                |t| t[0].reciprocal(),
                want(&|x, _| match x {
                    0 => i32::MIN as i128,
                    1 | -1 => x,
                    _ => 0,
                }),
            ),
        ];
        for (what, build, w) in list {
            if let Some(got) = run(cx, what, &[&ha, &hk], &build)? {
                let got = got
                    .as_array::<i32>()
                    .unwrap_or_else(|| panic!("{what}: dtype {}", got.dtype()));
                for (i, (&g, &e)) in got.iter().zip(&w).enumerate() {
                    assert_eq!(g, e, "{what}: {} with {} [{}]", a[i], k[i], cx.tag());
                }
            }
        }
    }
    // i64
    {
        let vals = [
            i64::MIN,
            i64::MIN + 1,
            -7,
            -1,
            0,
            1,
            5,
            i64::MAX - 1,
            i64::MAX,
        ];
        let (a, k) = cases(&vals, &counts);
        let n = a.len();
        let ha = HostArray::I64(ArrayD::from_shape_vec(IxDyn(&[n]), a.clone()).expect("n"));
        let hk = HostArray::I64(ArrayD::from_shape_vec(IxDyn(&[n]), k.clone()).expect("n"));
        let wrap = |v: i128| v as i64;
        type Case64<'a> = (&'a str, fn(&[Tensor]) -> Result<Tensor>, Vec<i64>);
        let want = |f: &dyn Fn(i128, i128) -> i128| -> Vec<i64> {
            a.iter()
                .zip(&k)
                .map(|(&x, &c)| wrap(f(x as i128, c as i128)))
                .collect()
        };
        let list: Vec<Case64> = vec![
            (
                "left_shift i64",
                |t| t[0].bitwise_left_shift(&t[1]),
                want(&|x, c| shl(x, c, 64)),
            ),
            (
                "right_shift i64",
                |t| t[0].bitwise_right_shift(&t[1]),
                want(&|x, c| shr(x, c, 64)),
            ),
            (
                "bitwise_and i64",
                |t| t[0].bitwise_and(&t[1]),
                want(&|x, c| x & c),
            ),
            (
                "bitwise_or i64",
                |t| t[0].bitwise_or(&t[1]),
                want(&|x, c| x | c),
            ),
            (
                "bitwise_xor i64",
                |t| t[0].bitwise_xor(&t[1]),
                want(&|x, c| x ^ c),
            ),
            (
                "invert i64",
                |t| t[0].bitwise_invert(),
                want(&|x, _| -x - 1),
            ),
            (
                "square i64",
                |t| t[0].square(),
                want(&|x, _| (x as i64).wrapping_mul(x as i64) as i128),
            ),
            (
                "reciprocal i64",
                |t| t[0].reciprocal(),
                want(&|x, _| match x {
                    0 => i64::MIN as i128,
                    1 | -1 => x,
                    _ => 0,
                }),
            ),
        ];
        for (what, build, w) in list {
            if let Some(got) = run(cx, what, &[&ha, &hk], &build)? {
                let got = got
                    .as_array::<i64>()
                    .unwrap_or_else(|| panic!("{what}: dtype {}", got.dtype()));
                for (i, (&g, &e)) in got.iter().zip(&w).enumerate() {
                    assert_eq!(g, e, "{what}: {} with {} [{}]", a[i], k[i], cx.tag());
                }
            }
        }
    }
    Ok(())
}

/// Float edge values (+-0, +-inf, NaN of both signs, subnormals, extremes) crossed pairwise for
/// the new binary functions and one by one for the new unary ones, in f32 and f64, against the
/// f64 reference (C's libm for nextafter): signed zeros and NaN signs where numpy defines them.
pub fn float_edges(cx: &mut Cx) -> Result<()> {
    let vals: [f64; 14] = [
        0.0,
        -0.0,
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
        -1.0,
        0.5,
        -2.5,
        1e-40,
        3.0e38,
        -1e-3,
        7.25,
    ];
    let mut a = Vec::new();
    let mut c = Vec::new();
    for &x in &vals {
        for &y in &vals {
            a.push(x);
            c.push(y);
        }
    }
    let n = a.len();
    let (fa, fc) = (
        ArrayD::from_shape_vec(IxDyn(&[n]), a.clone()).expect("n"),
        ArrayD::from_shape_vec(IxDyn(&[n]), c.clone()).expect("n"),
    );
    for dt in [F32, F64] {
        let (ha, hc) = (to_host(&fa, dt), to_host(&fc, dt));
        // The inputs as the dtype holds them (1e-40 is subnormal in f32, 3e38 near its max).
        let (va, vc) = (values(&ha), values(&hc));
        type Build = fn(&[Tensor]) -> Result<Tensor>;
        let nextafter: fn(f64, f64) -> f64 = if dt == F32 {
            |x, y| r::nextafter32(x as f32, y as f32) as f64
        } else {
            r::nextafter64
        };
        let bin: Vec<(&str, Build, fn(f64, f64) -> f64, bool)> = vec![
            // (name, op, reference, exact: bits must match, signed zeros and NaN signs too)
            ("arctan2", |t| t[0].arctan2(&t[1]), f64::atan2, false),
            ("hypot", |t| t[0].hypot(&t[1]), f64::hypot, false),
            ("copysign", |t| t[0].copysign(&t[1]), f64::copysign, true),
            ("logaddexp", |t| t[0].logaddexp(&t[1]), r::logaddexp, false),
            ("nextafter", |t| t[0].nextafter(&t[1]), nextafter, true),
        ];
        for (name, build, f, exact) in bin {
            let what = format!("{name} edges {dt}");
            let Some(got) = run(cx, &what, &[&ha, &hc], &build)? else {
                continue;
            };
            let want: Vec<f64> = va
                .iter()
                .zip(&vc)
                .map(|(&x, &y)| fit(f(x, y), dt))
                .collect();
            check_edges(cx, &what, &got, dt, &va, Some(&vc), &want, exact);
        }
        let un: Vec<(&str, Build, fn(f64) -> f64, bool)> = vec![
            ("trunc", |t| t[0].trunc(), f64::trunc, true),
            ("square", |t| t[0].square(), |x| x * x, false),
            ("reciprocal", |t| t[0].reciprocal(), |x| 1.0 / x, false),
            ("cbrt", |t| t[0].cbrt(), f64::cbrt, false),
            ("sinh", |t| t[0].sinh(), f64::sinh, false),
            ("cosh", |t| t[0].cosh(), f64::cosh, false),
            ("arcsinh", |t| t[0].arcsinh(), f64::asinh, false),
            ("arccosh", |t| t[0].arccosh(), f64::acosh, false),
            ("arctanh", |t| t[0].arctanh(), f64::atanh, false),
            ("log2", |t| t[0].log2(), f64::log2, false),
            ("log10", |t| t[0].log10(), f64::log10, false),
            ("exp2", |t| t[0].exp2(), f64::exp2, false),
        ];
        for (name, build, f, exact) in un {
            let what = format!("{name} edges {dt}");
            let Some(got) = run(cx, &what, &[&ha], &build)? else {
                continue;
            };
            let want: Vec<f64> = va.iter().map(|&x| fit(f(x), dt)).collect();
            check_edges(cx, &what, &got, dt, &va, None, &want, exact);
        }
        // signbit: the sign bit itself, -0.0 and -NaN included.
        let what = format!("signbit edges {dt}");
        if let Some(got) = run(cx, &what, &[&ha], &|t| t[0].signbit())? {
            let got = got
                .as_array::<bool>()
                .unwrap_or_else(|| panic!("{what}: dtype {}", got.dtype()));
            for (i, (&g, &x)) in got.iter().zip(&va).enumerate() {
                assert_eq!(
                    g,
                    x.is_sign_negative(),
                    "{what}: element {i} ({x:?}) [{}]",
                    cx.tag()
                );
            }
        }
    }
    Ok(())
}

/// Compares edge results: NaN for NaN (with its sign bit when `exact`), zeros with their sign,
/// infinities equal, finite values exactly (`exact`) or within the elementwise tolerance.
#[allow(clippy::too_many_arguments)]
fn check_edges(
    cx: &Cx,
    what: &str,
    got: &HostArray,
    dt: DType,
    a: &ArrayD<f64>,
    b: Option<&ArrayD<f64>>,
    want: &[f64],
    exact: bool,
) {
    let nan_sign = exact && what.starts_with("copysign");
    assert_eq!(got.dtype(), dt, "{what}: dtype [{}]", cx.tag());
    let g = values(got);
    let tol = Tol::elementwise(dt);
    for (i, (&x, &w)) in g.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            // A NaN's sign is defined only where the op sets it (copysign); arithmetic NaNs
            // (nextafter's x + y) have none to compare.
            x.is_nan() && (!nan_sign || x.is_sign_negative() == w.is_sign_negative())
        } else if w == 0.0 {
            x == 0.0 && x.is_sign_negative() == w.is_sign_negative()
        } else if w.is_infinite() || exact {
            x == w
        } else {
            (x - w).abs() <= tol.abs + tol.rel * w.abs()
        };
        let args = match b {
            Some(b) => format!(
                "({:?}, {:?})",
                a.as_slice().expect("1-d")[i],
                b.as_slice().expect("1-d")[i]
            ),
            None => format!("({:?})", a.as_slice().expect("1-d")[i]),
        };
        assert!(ok, "{what}{args}: got {x:?}, want {w:?} [{}]", cx.tag());
    }
}
