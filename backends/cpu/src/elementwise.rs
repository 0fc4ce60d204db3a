//! Elementwise kernels on host chunks (numpy semantics), parallel over large chunks.
//!
//! Each op's scalar function is named once, in the op tables below (`float_binary`, ...).
//! A table hands the function to an applier: [`Arrays1`] / [`Arrays2`] map it over whole chunks,
//! `block::Block1` / `Block2` over one block of a fused kernel. Every (op, applier) pair is
//! monomorphized into its own loop, so no function pointer sits in an inner loop.

use crate::block::El;
use crate::shaped;
use ndarray::{ArrayD, IxDyn, Zip};
use num_traits::Float;
use rayon::prelude::*;
use tessera_runtime::op::{BinaryOp, UnaryOp};
use tessera_runtime::{DType, Elem, Error, HostArray, Result};

/// Chunks smaller than this run on one thread.
const PAR_MIN: usize = 1 << 15;

pub(crate) fn map1<T: Elem, U: Elem>(a: &ArrayD<T>, f: impl Fn(T) -> U + Sync + Send) -> ArrayD<U> {
    // Contiguous fast path: a plain slice loop the compiler vectorizes.
    if let Some(x) = a.as_slice() {
        let v: Vec<U> = if x.len() >= PAR_MIN {
            x.par_iter().map(|&v| f(v)).collect()
        } else {
            x.iter().map(|&v| f(v)).collect()
        };
        return shaped(a.shape(), v);
    }
    if a.len() >= PAR_MIN {
        Zip::from(a).par_map_collect(|&x| f(x))
    } else {
        a.map(|&x| f(x))
    }
}

pub(crate) fn map2<T: Elem, U: Elem>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    shape: &[usize],
    f: impl Fn(T, T) -> U + Sync + Send,
) -> ArrayD<U> {
    let n: usize = shape.iter().product();
    // Contiguous fast paths: equal shapes, or one side a single value.
    if let (Some(x), Some(y)) = (a.as_slice(), b.as_slice()) {
        let big = n >= PAR_MIN;
        let v: Option<Vec<U>> = if a.shape() == shape && b.shape() == shape {
            Some(if big {
                x.par_iter().zip(y).map(|(&p, &q)| f(p, q)).collect()
            } else {
                x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect()
            })
        } else if x.len() == 1 && b.shape() == shape {
            let p = x[0];
            Some(if big {
                y.par_iter().map(|&q| f(p, q)).collect()
            } else {
                y.iter().map(|&q| f(p, q)).collect()
            })
        } else if y.len() == 1 && a.shape() == shape {
            let q = y[0];
            Some(if big {
                x.par_iter().map(|&p| f(p, q)).collect()
            } else {
                x.iter().map(|&p| f(p, q)).collect()
            })
        } else {
            None
        };
        if let Some(v) = v {
            return shaped(shape, v);
        }
    }
    let sh = IxDyn(shape);
    let av = a
        .broadcast(sh.clone())
        .expect("tiler broadcasts chunk shapes");
    let bv = b.broadcast(sh).expect("tiler broadcasts chunk shapes");
    let z = Zip::from(&av).and(&bv);
    if av.len() >= PAR_MIN {
        z.par_map_collect(|&x, &y| f(x, y))
    } else {
        z.map_collect(|&x, &y| f(x, y))
    }
}

/// Applies a unary scalar function to an operand (a chunk, or a block of a fused kernel).
pub(crate) trait Apply1<T> {
    /// What applying yields (a new chunk, or `Result<()>` for a block written in place).
    type Out;
    /// Maps `f` over the operand.
    fn apply<U: El>(self, f: impl Fn(T) -> U + Sync + Send + Copy) -> Self::Out;
}

/// Applies a binary scalar function to two operands of one dtype.
pub(crate) trait Apply2<T> {
    /// What applying yields.
    type Out;
    /// Maps `f` over the operands.
    fn apply<U: El>(self, f: impl Fn(T, T) -> U + Sync + Send + Copy) -> Self::Out;
}

/// A whole chunk as the operand of a unary op.
struct Arrays1<'a, T>(&'a ArrayD<T>);

impl<T: Elem> Apply1<T> for Arrays1<'_, T> {
    type Out = HostArray;
    fn apply<U: El>(self, f: impl Fn(T) -> U + Sync + Send + Copy) -> HostArray {
        U::wrap(map1(self.0, f))
    }
}

/// Two chunks broadcast to `shape` as the operands of a binary op.
struct Arrays2<'a, T> {
    a: &'a ArrayD<T>,
    b: &'a ArrayD<T>,
    shape: &'a [usize],
}

impl<T: Elem> Apply2<T> for Arrays2<'_, T> {
    type Out = HostArray;
    fn apply<U: El>(self, f: impl Fn(T, T) -> U + Sync + Send + Copy) -> HostArray {
        U::wrap(map2(self.a, self.b, self.shape, f))
    }
}

/// numpy's floor division and remainder for floats (npy_divmod).
fn divmod_f<T: Float>(a: T, b: T) -> (T, T) {
    let m = a % b;
    if b == T::zero() {
        return (a / b, m);
    }
    let mut div = (a - m) / b;
    let mut md = m;
    if md != T::zero() {
        if (b < T::zero()) != (md < T::zero()) {
            md = md + b;
            div = div - T::one();
        }
    } else {
        md = T::zero().copysign(b);
    }
    let mut fl = if div != T::zero() {
        div.floor()
    } else {
        T::zero().copysign(a / b)
    };
    if div != T::zero() && div - fl > T::from(0.5).expect("0.5") {
        fl = fl + T::one();
    }
    (fl, md)
}

fn nan_max<T: Float>(x: T, y: T) -> T {
    if x.is_nan() || y.is_nan() {
        T::nan()
    } else if x >= y {
        x
    } else {
        y
    }
}
fn nan_min<T: Float>(x: T, y: T) -> T {
    if x.is_nan() || y.is_nan() {
        T::nan()
    } else if x <= y {
        x
    } else {
        y
    }
}

/// numpy's `nextafter`: the next representable value after `x` towards `y`.
fn nextafter<T: Float>(x: T, y: T) -> T {
    if x.is_nan() || y.is_nan() {
        return x + y;
    }
    if x == y {
        return y;
    }
    let up = y > x;
    // Step the bit pattern: away from zero when moving in the direction of x's sign.
    if std::mem::size_of::<T>() == 4 {
        let a = x.to_f32().expect("f32");
        let b = if a == 0.0 {
            f32::from_bits(1).copysign(if up { 1.0 } else { -1.0 })
        } else if (a > 0.0) == up {
            f32::from_bits(a.to_bits() + 1)
        } else {
            f32::from_bits(a.to_bits() - 1)
        };
        T::from(b).expect("f32")
    } else {
        let a = x.to_f64().expect("f64");
        let b = if a == 0.0 {
            f64::from_bits(1).copysign(if up { 1.0 } else { -1.0 })
        } else if (a > 0.0) == up {
            f64::from_bits(a.to_bits() + 1)
        } else {
            f64::from_bits(a.to_bits() - 1)
        };
        T::from(b).expect("f64")
    }
}

/// numpy's `logaddexp` (npy_logaddexp): exact for equal arguments, including infinities.
fn logaddexp<T: Float>(x: T, y: T) -> T {
    if x == y {
        return x + T::from(std::f64::consts::LN_2).expect("ln 2");
    }
    let d = x - y;
    if d > T::zero() {
        x + (-d).exp().ln_1p()
    } else if d <= T::zero() {
        y + d.exp().ln_1p()
    } else {
        d
    }
}

pub(crate) fn float_binary<T: El + Float, M: Apply2<T>>(op: BinaryOp, m: M) -> Result<M::Out> {
    use BinaryOp::*;
    Ok(match op {
        Add => m.apply(|x: T, y: T| x + y),
        Sub => m.apply(|x: T, y: T| x - y),
        Mul => m.apply(|x: T, y: T| x * y),
        Div => m.apply(|x: T, y: T| x / y),
        FloorDiv => m.apply(|x: T, y: T| divmod_f(x, y).0),
        Mod => m.apply(|x: T, y: T| divmod_f(x, y).1),
        Pow => m.apply(|x: T, y: T| x.powf(y)),
        Maximum => m.apply(nan_max::<T>),
        Minimum => m.apply(nan_min::<T>),
        Eq | Ne | Lt | Le | Gt | Ge | And | Or | Xor => compare(op, T::zero(), m),
        Arctan2 => m.apply(|x: T, y: T| x.atan2(y)),
        Hypot => m.apply(|x: T, y: T| x.hypot(y)),
        Copysign => m.apply(|x: T, y: T| x.copysign(y)),
        Nextafter => m.apply(nextafter::<T>),
        Logaddexp => m.apply(logaddexp::<T>),
        // numpy rejects bitwise ops on floats; the graph never sends them.
        BitAnd | BitOr | BitXor | LeftShift | RightShift => {
            return Err(Error::dtype_unsupported(op.name(), T::DTYPE))
        }
    })
}

/// The comparisons and logical ops of two numbers (bool results), shared by the float and
/// integer tables; `zero` is the dtype's false.
fn compare<T: El, M: Apply2<T>>(op: BinaryOp, zero: T, m: M) -> M::Out {
    use BinaryOp::*;
    match op {
        Eq => m.apply(|x: T, y: T| x == y),
        Ne => m.apply(|x: T, y: T| x != y),
        Lt => m.apply(|x: T, y: T| x < y),
        Le => m.apply(|x: T, y: T| x <= y),
        Gt => m.apply(|x: T, y: T| x > y),
        Ge => m.apply(|x: T, y: T| x >= y),
        And => m.apply(move |x: T, y: T| x != zero && y != zero),
        Or => m.apply(move |x: T, y: T| x != zero || y != zero),
        // The tables pass only comparisons and logical ops here.
        _ => m.apply(move |x: T, y: T| (x != zero) ^ (y != zero)),
    }
}

/// Integer kernels with numpy's wrap-around and division-by-zero results (0).
pub(crate) trait Int: Elem + Ord + std::hash::Hash {
    const ZERO: Self;
    fn wadd(self, o: Self) -> Self;
    fn wsub(self, o: Self) -> Self;
    fn wmul(self, o: Self) -> Self;
    fn wneg(self) -> Self;
    fn wabs(self) -> Self;
    fn sgn(self) -> Self;
    fn floordiv(self, o: Self) -> Self;
    fn modulo(self, o: Self) -> Self;
    fn ipow(self, o: Self) -> Self;
    /// numpy's `left_shift`: counts outside `0..bits` (negative ones too) give 0.
    fn shl(self, o: Self) -> Self;
    /// numpy's `right_shift`: counts outside `0..bits` give 0, or -1 for a negative value.
    fn shr(self, o: Self) -> Self;
    fn band(self, o: Self) -> Self;
    fn bor(self, o: Self) -> Self;
    fn bxor(self, o: Self) -> Self;
    fn invert(self) -> Self;
    /// numpy's integer `reciprocal` (`1.0 / x` cast back: 1, -1, 0, and MIN for 0 as x86 does).
    fn recip(self) -> Self;
}
macro_rules! int_impl {
    ($t:ty) => {
        impl Int for $t {
            const ZERO: Self = 0;
            fn wadd(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn wsub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn wmul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn wneg(self) -> Self {
                self.wrapping_neg()
            }
            fn wabs(self) -> Self {
                self.wrapping_abs()
            }
            fn sgn(self) -> Self {
                self.signum()
            }
            fn floordiv(self, o: Self) -> Self {
                if o == 0 {
                    return 0;
                }
                // Wrapping: MIN // -1 is MIN and MIN % -1 is 0 in numpy; `%` would panic.
                let q = self.wrapping_div(o);
                if (self.wrapping_rem(o) != 0) && ((self < 0) != (o < 0)) {
                    q - 1
                } else {
                    q
                }
            }
            fn modulo(self, o: Self) -> Self {
                if o == 0 {
                    return 0;
                }
                let r = self.wrapping_rem(o);
                if r != 0 && ((r < 0) != (o < 0)) {
                    r + o
                } else {
                    r
                }
            }
            fn ipow(self, o: Self) -> Self {
                if o < 0 {
                    // numpy raises for negative integer powers; the only exact results are these.
                    return match self {
                        1 => 1,
                        -1 => {
                            if o % 2 == 0 {
                                1
                            } else {
                                -1
                            }
                        }
                        _ => 0,
                    };
                }
                let mut base = self;
                let mut e = o as u64;
                let mut acc: $t = 1;
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
            fn shl(self, o: Self) -> Self {
                // Negative counts are huge as unsigned, as in numpy's `npy_lshift`.
                match u32::try_from(o) {
                    Ok(n) if n < <$t>::BITS => self.wrapping_shl(n),
                    _ => 0,
                }
            }
            fn shr(self, o: Self) -> Self {
                match u32::try_from(o) {
                    Ok(n) if n < <$t>::BITS => self >> n,
                    _ if self < 0 => -1,
                    _ => 0,
                }
            }
            fn band(self, o: Self) -> Self {
                self & o
            }
            fn bor(self, o: Self) -> Self {
                self | o
            }
            fn bxor(self, o: Self) -> Self {
                self ^ o
            }
            fn invert(self) -> Self {
                !self
            }
            fn recip(self) -> Self {
                match self {
                    1 => 1,
                    -1 => -1,
                    0 => <$t>::MIN,
                    _ => 0,
                }
            }
        }
    };
}
int_impl!(i32);
int_impl!(i64);

pub(crate) fn int_binary<T: Int + El, M: Apply2<T>>(op: BinaryOp, m: M) -> Result<M::Out> {
    use BinaryOp::*;
    Ok(match op {
        Add => m.apply(T::wadd),
        Sub => m.apply(T::wsub),
        Mul => m.apply(T::wmul),
        // The graph casts integer true division to float; an integer Div here is a bug.
        Div => return Err(Error::dtype_unsupported(op.name(), T::DTYPE)),
        FloorDiv => m.apply(T::floordiv),
        Mod => m.apply(T::modulo),
        Pow => m.apply(T::ipow),
        Maximum => m.apply(|x: T, y: T| x.max(y)),
        Minimum => m.apply(|x: T, y: T| x.min(y)),
        Eq | Ne | Lt | Le | Gt | Ge | And | Or | Xor => compare(op, T::ZERO, m),
        BitAnd => m.apply(T::band),
        BitOr => m.apply(T::bor),
        BitXor => m.apply(T::bxor),
        LeftShift => m.apply(T::shl),
        RightShift => m.apply(T::shr),
        // The graph casts integers to float for these; an integer one here is a bug.
        Arctan2 | Hypot | Copysign | Nextafter | Logaddexp => {
            return Err(Error::dtype_unsupported(op.name(), T::DTYPE))
        }
    })
}

pub(crate) fn bool_binary<M: Apply2<bool>>(op: BinaryOp, m: M) -> Result<M::Out> {
    use BinaryOp::*;
    Ok(match op {
        Add | Or | Maximum | BitOr => m.apply(|x: bool, y: bool| x | y),
        Mul | And | Minimum | BitAnd => m.apply(|x: bool, y: bool| x & y),
        BitXor => m.apply(|x: bool, y: bool| x ^ y),
        Eq => m.apply(|x: bool, y: bool| x == y),
        Ne | Xor => m.apply(|x: bool, y: bool| x != y),
        Lt => m.apply(|x: bool, y: bool| !x & y),
        Le => m.apply(|x: bool, y: bool| x <= y),
        Gt => m.apply(|x: bool, y: bool| x & !y),
        Ge => m.apply(|x: bool, y: bool| x >= y),
        Sub | Div | FloorDiv | Mod | Pow | LeftShift | RightShift | Arctan2 | Hypot | Copysign
        | Nextafter | Logaddexp => return Err(Error::dtype_unsupported(op.name(), DType::Bool)),
    })
}

/// `op(a, b)` with broadcasting to `shape`; operands share a dtype.
pub fn binary(op: BinaryOp, a: &HostArray, b: &HostArray, shape: &[usize]) -> Result<HostArray> {
    Ok(match (a, b) {
        (HostArray::F32(a), HostArray::F32(b)) => float_binary(op, Arrays2 { a, b, shape })?,
        (HostArray::F64(a), HostArray::F64(b)) => float_binary(op, Arrays2 { a, b, shape })?,
        (HostArray::I32(a), HostArray::I32(b)) => int_binary(op, Arrays2 { a, b, shape })?,
        (HostArray::I64(a), HostArray::I64(b)) => int_binary(op, Arrays2 { a, b, shape })?,
        (HostArray::Bool(a), HostArray::Bool(b)) => bool_binary(op, Arrays2 { a, b, shape })?,
        _ => {
            return Err(Error::UnsupportedDType {
                op: op.name().into(),
                dtypes: vec![a.dtype(), b.dtype()],
            })
        }
    })
}

pub(crate) fn float_unary<T: El + Float, M: Apply1<T>>(op: UnaryOp, m: M) -> Result<M::Out> {
    use UnaryOp::*;
    Ok(match op {
        Neg => m.apply(|x: T| -x),
        Abs => m.apply(|x: T| x.abs()),
        Sign => m.apply(|x: T| {
            if x.is_nan() {
                x
            } else if x > T::zero() {
                T::one()
            } else if x < T::zero() {
                -T::one()
            } else {
                T::zero()
            }
        }),
        Sqrt => m.apply(|x: T| x.sqrt()),
        Exp => m.apply(|x: T| x.exp()),
        Log => m.apply(|x: T| x.ln()),
        Log1p => m.apply(|x: T| x.ln_1p()),
        Expm1 => m.apply(|x: T| x.exp_m1()),
        Sin => m.apply(|x: T| x.sin()),
        Cos => m.apply(|x: T| x.cos()),
        Tan => m.apply(|x: T| x.tan()),
        Tanh => m.apply(|x: T| x.tanh()),
        Arcsin => m.apply(|x: T| x.asin()),
        Arccos => m.apply(|x: T| x.acos()),
        Arctan => m.apply(|x: T| x.atan()),
        Floor => m.apply(|x: T| x.floor()),
        Ceil => m.apply(|x: T| x.ceil()),
        Round => m.apply(round_half_even::<T>),
        LogicalNot => m.apply(|x: T| x == T::zero()),
        IsNan => m.apply(|x: T| x.is_nan()),
        IsInf => m.apply(|x: T| x.is_infinite()),
        IsFinite => m.apply(|x: T| x.is_finite()),
        Sinh => m.apply(|x: T| x.sinh()),
        Cosh => m.apply(|x: T| x.cosh()),
        Arcsinh => m.apply(asinh::<T>),
        Arccosh => m.apply(acosh::<T>),
        Arctanh => m.apply(|x: T| x.atanh()),
        Log2 => m.apply(|x: T| x.log2()),
        Log10 => m.apply(|x: T| x.log10()),
        Exp2 => m.apply(|x: T| x.exp2()),
        Trunc => m.apply(|x: T| x.trunc()),
        Cbrt => m.apply(|x: T| x.cbrt()),
        Square => m.apply(|x: T| x * x),
        Reciprocal => m.apply(|x: T| T::one() / x),
        // The sign bit itself: true for -0.0 and for NaNs with the bit set, as numpy.
        Signbit => m.apply(|x: T| x.is_sign_negative()),
        Invert => return Err(Error::dtype_unsupported(op.name(), T::DTYPE)),
    })
}

/// Where `x * x` (or `x + x`) would overflow, the formulas of `asinh`/`acosh` lose everything:
/// past this, `ln(2|x|)` is exact to the last bit (the dropped term is below 1e-18).
const HUGE: f64 = 1e9;

/// `asinh`, finite for every finite `x` (std's overflows to inf near the f32 maximum).
fn asinh<T: Float>(x: T) -> T {
    let a = x.abs();
    if a > T::from(HUGE).expect("1e9") && a.is_finite() {
        return (a.ln() + T::from(std::f64::consts::LN_2).expect("ln 2")).copysign(x);
    }
    x.asinh()
}

/// `acosh`, finite for every finite `x >= 1`.
fn acosh<T: Float>(x: T) -> T {
    if x > T::from(HUGE).expect("1e9") && x.is_finite() {
        return x.ln() + T::from(std::f64::consts::LN_2).expect("ln 2");
    }
    x.acosh()
}

/// numpy rounds halves to even.
fn round_half_even<T: Float>(x: T) -> T {
    let r = x.round();
    if (x - x.trunc()).abs() == T::from(0.5).expect("0.5") {
        let half = r / T::from(2.0).expect("2");
        if half.trunc() != half {
            return r - x.signum();
        }
    }
    r
}

pub(crate) fn int_unary<T: Int + El, M: Apply1<T>>(op: UnaryOp, m: M) -> Result<M::Out> {
    use UnaryOp::*;
    Ok(match op {
        Neg => m.apply(T::wneg),
        Abs => m.apply(T::wabs),
        Sign => m.apply(T::sgn),
        Floor | Ceil | Round | Trunc => m.apply(|x: T| x),
        Square => m.apply(|x: T| x.wmul(x)),
        Reciprocal => m.apply(T::recip),
        Invert => m.apply(T::invert),
        LogicalNot => m.apply(|x: T| x == T::ZERO),
        IsNan | IsInf => m.apply(|_: T| false),
        IsFinite => m.apply(|_: T| true),
        _ => return Err(Error::dtype_unsupported(op.name(), T::DTYPE)),
    })
}

pub(crate) fn bool_unary<M: Apply1<bool>>(op: UnaryOp, m: M) -> Result<M::Out> {
    use UnaryOp::*;
    Ok(match op {
        Abs | Floor | Ceil | Round | Trunc => m.apply(|x: bool| x),
        LogicalNot | Invert => m.apply(|x: bool| !x),
        IsNan | IsInf => m.apply(|_: bool| false),
        IsFinite => m.apply(|_: bool| true),
        _ => return Err(Error::dtype_unsupported(op.name(), DType::Bool)),
    })
}

/// `op(a)`; the operand already has the op's compute dtype.
pub fn unary(op: UnaryOp, a: &HostArray) -> Result<HostArray> {
    match a {
        HostArray::F32(x) => float_unary(op, Arrays1(x)),
        HostArray::F64(x) => float_unary(op, Arrays1(x)),
        HostArray::I32(x) => int_unary(op, Arrays1(x)),
        HostArray::I64(x) => int_unary(op, Arrays1(x)),
        HostArray::Bool(x) => bool_unary(op, Arrays1(x)),
    }
}

/// `where(c, a, b)` broadcast to `shape`.
pub fn where_(c: &HostArray, a: &HostArray, b: &HostArray, shape: &[usize]) -> Result<HostArray> {
    let c = c
        .as_array::<bool>()
        .ok_or_else(|| Error::dtype_unsupported("where", c.dtype()))?;
    let sh = IxDyn(shape);
    let cv = c.broadcast(sh.clone()).expect("tiler broadcasts");
    fn pick<T: Elem>(
        cv: &ndarray::ArrayViewD<bool>,
        x: &ArrayD<T>,
        y: &ArrayD<T>,
        sh: &IxDyn,
    ) -> ArrayD<T> {
        let xv = x.broadcast(sh.clone()).expect("tiler broadcasts");
        let yv = y.broadcast(sh.clone()).expect("tiler broadcasts");
        Zip::from(cv)
            .and(&xv)
            .and(&yv)
            .par_map_collect(|&c, &x, &y| if c { x } else { y })
    }
    Ok(match (a, b) {
        (HostArray::F32(x), HostArray::F32(y)) => pick(&cv, x, y, &sh).into(),
        (HostArray::F64(x), HostArray::F64(y)) => pick(&cv, x, y, &sh).into(),
        (HostArray::I32(x), HostArray::I32(y)) => pick(&cv, x, y, &sh).into(),
        (HostArray::I64(x), HostArray::I64(y)) => pick(&cv, x, y, &sh).into(),
        (HostArray::Bool(x), HostArray::Bool(y)) => pick(&cv, x, y, &sh).into(),
        _ => {
            return Err(Error::UnsupportedDType {
                op: "where".into(),
                dtypes: vec![a.dtype(), b.dtype()],
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn numpy_division_semantics() {
        assert_eq!(divmod_f(7.0f64, -2.0), (-4.0, -1.0));
        assert_eq!(divmod_f(-7.0f64, 2.0), (-4.0, 1.0));
        assert_eq!((-7i32).floordiv(2), -4);
        assert_eq!((-7i32).modulo(2), 1);
        assert_eq!(7i64.modulo(-2), -1);
        assert_eq!(5i32.floordiv(0), 0);
        assert_eq!(round_half_even(2.5f64), 2.0);
        assert_eq!(round_half_even(-3.5f64), -4.0);
        assert_eq!(round_half_even(0.5f32), 0.0);
        assert_eq!(3i32.ipow(4), 81);
    }

    /// numpy wraps MIN // -1 to MIN and gives MIN % -1 == 0; neither may panic.
    #[test]
    fn integer_min_by_minus_one_wraps() {
        assert_eq!(i32::MIN.floordiv(-1), i32::MIN);
        assert_eq!(i64::MIN.floordiv(-1), i64::MIN);
        assert_eq!(i32::MIN.modulo(-1), 0);
        assert_eq!(i64::MIN.modulo(-1), 0);
        assert_eq!(7i32.floordiv(-1), -7);
        assert_eq!((i32::MIN + 1).floordiv(-1), i32::MAX);
        assert_eq!(i64::MIN.floordiv(1), i64::MIN);
        assert_eq!(i64::MIN.floordiv(2), i64::MIN / 2);
        assert_eq!(i32::MIN.ipow(-1), 0);
        assert_eq!(i32::MIN.wneg(), i32::MIN);
        assert_eq!(i64::MIN.wabs(), i64::MIN);
    }
}
