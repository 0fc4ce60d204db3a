//! Elementwise kernels on host chunks (numpy semantics), parallel over large chunks.

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

fn float_binary<T: Elem + Float>(
    op: BinaryOp,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    shape: &[usize],
) -> HostArray {
    use BinaryOp::*;
    match op {
        Add => T::wrap(map2(a, b, shape, |x, y| x + y)),
        Sub => T::wrap(map2(a, b, shape, |x, y| x - y)),
        Mul => T::wrap(map2(a, b, shape, |x, y| x * y)),
        Div => T::wrap(map2(a, b, shape, |x, y| x / y)),
        FloorDiv => T::wrap(map2(a, b, shape, |x, y| divmod_f(x, y).0)),
        Mod => T::wrap(map2(a, b, shape, |x, y| divmod_f(x, y).1)),
        Pow => T::wrap(map2(a, b, shape, |x, y| x.powf(y))),
        Maximum => T::wrap(map2(a, b, shape, nan_max)),
        Minimum => T::wrap(map2(a, b, shape, nan_min)),
        Eq => map2(a, b, shape, |x, y| x == y).into(),
        Ne => map2(a, b, shape, |x, y| x != y).into(),
        Lt => map2(a, b, shape, |x, y| x < y).into(),
        Le => map2(a, b, shape, |x, y| x <= y).into(),
        Gt => map2(a, b, shape, |x, y| x > y).into(),
        Ge => map2(a, b, shape, |x, y| x >= y).into(),
        And => map2(a, b, shape, |x, y| x != T::zero() && y != T::zero()).into(),
        Or => map2(a, b, shape, |x, y| x != T::zero() || y != T::zero()).into(),
        Xor => map2(a, b, shape, |x, y| (x != T::zero()) ^ (y != T::zero())).into(),
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
                let q = self.wrapping_div(o);
                if (self % o != 0) && ((self < 0) != (o < 0)) {
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
        }
    };
}
int_impl!(i32);
int_impl!(i64);

fn int_binary<T: Int>(op: BinaryOp, a: &ArrayD<T>, b: &ArrayD<T>, shape: &[usize]) -> HostArray {
    use BinaryOp::*;
    match op {
        Add => T::wrap(map2(a, b, shape, T::wadd)),
        Sub => T::wrap(map2(a, b, shape, T::wsub)),
        Mul => T::wrap(map2(a, b, shape, T::wmul)),
        Div => unreachable!("true division of integers is cast to float by the graph"),
        FloorDiv => T::wrap(map2(a, b, shape, T::floordiv)),
        Mod => T::wrap(map2(a, b, shape, T::modulo)),
        Pow => T::wrap(map2(a, b, shape, T::ipow)),
        Maximum => T::wrap(map2(a, b, shape, |x, y| x.max(y))),
        Minimum => T::wrap(map2(a, b, shape, |x, y| x.min(y))),
        Eq => map2(a, b, shape, |x, y| x == y).into(),
        Ne => map2(a, b, shape, |x, y| x != y).into(),
        Lt => map2(a, b, shape, |x, y| x < y).into(),
        Le => map2(a, b, shape, |x, y| x <= y).into(),
        Gt => map2(a, b, shape, |x, y| x > y).into(),
        Ge => map2(a, b, shape, |x, y| x >= y).into(),
        And => map2(a, b, shape, |x, y| x != T::ZERO && y != T::ZERO).into(),
        Or => map2(a, b, shape, |x, y| x != T::ZERO || y != T::ZERO).into(),
        Xor => map2(a, b, shape, |x, y| (x != T::ZERO) ^ (y != T::ZERO)).into(),
    }
}

fn bool_binary(
    op: BinaryOp,
    a: &ArrayD<bool>,
    b: &ArrayD<bool>,
    shape: &[usize],
) -> Result<HostArray> {
    use BinaryOp::*;
    Ok(match op {
        Add | Or | Maximum => map2(a, b, shape, |x, y| x | y).into(),
        Mul | And | Minimum => map2(a, b, shape, |x, y| x & y).into(),
        Eq => map2(a, b, shape, |x, y| x == y).into(),
        Ne | Xor => map2(a, b, shape, |x, y| x != y).into(),
        Lt => map2(a, b, shape, |x, y| !x & y).into(),
        Le => map2(a, b, shape, |x, y| x <= y).into(),
        Gt => map2(a, b, shape, |x, y| x & !y).into(),
        Ge => map2(a, b, shape, |x, y| x >= y).into(),
        Sub | Div | FloorDiv | Mod | Pow => {
            return Err(Error::dtype_unsupported(op.name(), DType::Bool))
        }
    })
}

/// `op(a, b)` with broadcasting to `shape`; operands share a dtype.
pub fn binary(op: BinaryOp, a: &HostArray, b: &HostArray, shape: &[usize]) -> Result<HostArray> {
    Ok(match (a, b) {
        (HostArray::F32(x), HostArray::F32(y)) => float_binary(op, x, y, shape),
        (HostArray::F64(x), HostArray::F64(y)) => float_binary(op, x, y, shape),
        (HostArray::I32(x), HostArray::I32(y)) => int_binary(op, x, y, shape),
        (HostArray::I64(x), HostArray::I64(y)) => int_binary(op, x, y, shape),
        (HostArray::Bool(x), HostArray::Bool(y)) => bool_binary(op, x, y, shape)?,
        _ => {
            return Err(Error::UnsupportedDType {
                op: op.name().into(),
                dtypes: vec![a.dtype(), b.dtype()],
            })
        }
    })
}

fn float_unary<T: Elem + Float>(op: UnaryOp, a: &ArrayD<T>) -> HostArray {
    use UnaryOp::*;
    let w = |f: fn(T) -> T| T::wrap(map1(a, f));
    match op {
        Neg => w(|x| -x),
        Abs => w(|x| x.abs()),
        Sign => w(|x| {
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
        Sqrt => w(|x| x.sqrt()),
        Exp => w(|x| x.exp()),
        Log => w(|x| x.ln()),
        Log1p => w(|x| x.ln_1p()),
        Expm1 => w(|x| x.exp_m1()),
        Sin => w(|x| x.sin()),
        Cos => w(|x| x.cos()),
        Tan => w(|x| x.tan()),
        Tanh => w(|x| x.tanh()),
        Arcsin => w(|x| x.asin()),
        Arccos => w(|x| x.acos()),
        Arctan => w(|x| x.atan()),
        Floor => w(|x| x.floor()),
        Ceil => w(|x| x.ceil()),
        Round => w(round_half_even),
        LogicalNot => map1(a, |x| x == T::zero()).into(),
        IsNan => map1(a, |x| x.is_nan()).into(),
        IsInf => map1(a, |x| x.is_infinite()).into(),
        IsFinite => map1(a, |x| x.is_finite()).into(),
    }
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

fn int_unary<T: Int>(op: UnaryOp, a: &ArrayD<T>) -> Result<HostArray> {
    use UnaryOp::*;
    Ok(match op {
        Neg => T::wrap(map1(a, T::wneg)),
        Abs => T::wrap(map1(a, T::wabs)),
        Sign => T::wrap(map1(a, T::sgn)),
        Floor | Ceil | Round => T::wrap(a.clone()),
        LogicalNot => map1(a, |x| x == T::ZERO).into(),
        IsNan | IsInf => map1(a, |_| false).into(),
        IsFinite => map1(a, |_| true).into(),
        _ => return Err(Error::dtype_unsupported(op.name(), T::DTYPE)),
    })
}

/// `op(a)`; the operand already has the op's compute dtype.
pub fn unary(op: UnaryOp, a: &HostArray) -> Result<HostArray> {
    use UnaryOp::*;
    Ok(match a {
        HostArray::F32(x) => float_unary(op, x),
        HostArray::F64(x) => float_unary(op, x),
        HostArray::I32(x) => int_unary(op, x)?,
        HostArray::I64(x) => int_unary(op, x)?,
        HostArray::Bool(x) => match op {
            Abs | Floor | Ceil | Round => HostArray::Bool(x.clone()),
            LogicalNot => map1(x, |v| !v).into(),
            IsNan | IsInf => map1(x, |_| false).into(),
            IsFinite => map1(x, |_| true).into(),
            _ => return Err(Error::dtype_unsupported(op.name(), DType::Bool)),
        },
    })
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
}
