//! Elementwise ops: numpy's promotion and broadcasting, the unary and binary methods, `clip`,
//! `where`, and the arithmetic operators (errors deferred into the tensor).

use super::{broadcast_shapes, Operand, Tensor};
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::op::{BinaryOp, Op, UnaryOp};

impl Tensor {
    fn scalar(&self, s: Scalar, dtype: DType) -> Tensor {
        self.sess.full(&[], s, dtype)
    }

    /// `astype(dtype)`.
    ///
    /// # Errors
    /// The tensor's deferred error.
    pub fn astype(&self, dtype: DType) -> Result<Tensor> {
        let n = self.tn()?;
        if n.dtype == dtype {
            return Ok(self.clone());
        }
        self.record(Op::Cast, &[self], n.shape.clone(), dtype)
    }

    fn operand(&self, o: Operand<'_>, dtype: DType) -> Result<Tensor> {
        match o {
            Operand::T(t) => t.astype(dtype),
            Operand::S(s) => Ok(self.scalar(s, dtype)),
        }
    }

    fn promoted(&self, op: &str, a: Operand<'_>, b: Operand<'_>) -> Result<DType> {
        Ok(match (a, b) {
            (Operand::T(x), Operand::T(y)) => DType::promote(x.tn()?.dtype, y.tn()?.dtype),
            (Operand::T(x), Operand::S(s)) | (Operand::S(s), Operand::T(x)) => {
                x.tn()?.dtype.promote_weak(&s)
            }
            (Operand::S(_), Operand::S(_)) => {
                return Err(Error::invalid(op, "needs at least one tensor operand"))
            }
        })
    }

    fn dtype_of(o: &Operand<'_>) -> DType {
        match o {
            Operand::T(t) => t.dtype(),
            Operand::S(s) => s.default_dtype(),
        }
    }

    /// A binary elementwise op between two operands (tensor or scalar), with numpy broadcasting
    /// and promotion.
    ///
    /// # Errors
    /// `ShapeMismatch` for shapes that do not broadcast, `UnsupportedDType` for dtypes numpy
    /// rejects (e.g. subtracting booleans), `ScalarOverflow` for an integer scalar outside the
    /// integer dtype the arithmetic computes in (comparisons decide such scalars by value).
    pub fn binary_op<'a>(
        &self,
        op: BinaryOp,
        a: impl Into<Operand<'a>>,
        b: impl Into<Operand<'a>>,
    ) -> Result<Tensor> {
        let (a, b) = (a.into(), b.into());
        let promoted = self.promoted(op.name(), a, b)?;
        let (mut cdt, rdt) = op
            .dtypes(promoted)
            .ok_or_else(|| Error::dtype(op.name(), &[Self::dtype_of(&a), Self::dtype_of(&b)]))?;
        // NEP 50: a Python int the integer compute dtype cannot hold makes arithmetic fail
        // (numpy's OverflowError) but decides a comparison by value: compare in int64, which
        // holds every such scalar, instead of wrapping it.
        for o in [a, b] {
            if let Operand::S(Scalar::Int(v)) = o {
                if cdt.is_int() && !cdt.holds_int(v) {
                    if !op.is_predicate() {
                        return Err(Error::ScalarOverflow {
                            op: op.name().into(),
                            value: v,
                            dtype: cdt,
                        });
                    }
                    cdt = DType::I64;
                }
            }
        }
        let ta = self.operand(a, cdt)?;
        // numpy's fast path: `x ** 2` is `x * x` (same values; a multiply, not a pow call).
        if let (BinaryOp::Pow, Operand::T(_), Operand::S(Scalar::Int(2))) = (op, a, b) {
            return self.record(
                Op::Binary(BinaryOp::Mul),
                &[&ta, &ta],
                ta.shape().to_vec(),
                rdt,
            );
        }
        if let (BinaryOp::Pow, Operand::T(_), Operand::S(Scalar::Float(e))) = (op, a, b) {
            if e == 2.0 {
                return self.record(
                    Op::Binary(BinaryOp::Mul),
                    &[&ta, &ta],
                    ta.shape().to_vec(),
                    rdt,
                );
            }
        }
        let tb = self.operand(b, cdt)?;
        let shape = broadcast_shapes(op.name(), ta.shape(), tb.shape())?;
        self.record(Op::Binary(op), &[&ta, &tb], shape, rdt)
    }

    fn bin<'a>(&self, op: BinaryOp, other: impl Into<Operand<'a>>) -> Result<Tensor> {
        let other: Operand<'_> = other.into();
        self.binary_op(op, Operand::T(self), other)
    }

    /// A unary elementwise op by value (the Python binding dispatches numpy's names through
    /// [`UnaryOp::from_name`] to here).
    ///
    /// # Errors
    /// Dtypes numpy rejects for `op`; the tensor's deferred error.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        self.un(op)
    }

    fn un(&self, op: UnaryOp) -> Result<Tensor> {
        let n = self.tn()?;
        let (cdt, rdt) = op
            .dtypes(n.dtype)
            .ok_or_else(|| Error::dtype(op.name(), &[n.dtype]))?;
        let x = self.astype(cdt)?;
        self.record(Op::Unary(op), &[&x], n.shape.clone(), rdt)
    }
}

macro_rules! binary_methods {
    ($($(#[$m:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {$(
            $(#[$m])*
            ///
            /// # Errors
            /// Shapes that do not broadcast; dtypes numpy rejects.
            pub fn $name<'a>(&self, other: impl Into<Operand<'a>>) -> Result<Tensor> {
                self.bin(BinaryOp::$op, other)
            }
        )*}
    };
}
binary_methods! {
    /// `self + other`.
    add => Add,
    /// `self - other`.
    sub => Sub,
    /// `self * other`.
    mul => Mul,
    /// `self / other` (true division).
    div => Div,
    /// `self // other` (floor division, numpy semantics).
    floor_divide => FloorDiv,
    /// `self % other` (sign of the divisor, numpy semantics).
    rem => Mod,
    /// `self ** other`.
    pow => Pow,
    /// Elementwise maximum (NaN propagates).
    maximum => Maximum,
    /// Elementwise minimum (NaN propagates).
    minimum => Minimum,
    /// `self == other`.
    eq => Eq,
    /// `self != other`.
    ne => Ne,
    /// `self < other`.
    lt => Lt,
    /// `self <= other`.
    le => Le,
    /// `self > other`.
    gt => Gt,
    /// `self >= other`.
    ge => Ge,
    /// Logical and (truthiness of each operand).
    logical_and => And,
    /// Logical or.
    logical_or => Or,
    /// Logical xor.
    logical_xor => Xor,
    /// `arctan2(self, other)`: the angle of the point (other, self), quadrant by both signs.
    arctan2 => Arctan2,
    /// `sqrt(self**2 + other**2)` without intermediate overflow.
    hypot => Hypot,
    /// `|self|` with the sign bit of `other`.
    copysign => Copysign,
    /// The next representable value after `self` towards `other`.
    nextafter => Nextafter,
    /// `log(exp(self) + exp(other))` without overflow.
    logaddexp => Logaddexp,
    /// `self & other` (integers and bool).
    bitwise_and => BitAnd,
    /// `self | other` (integers and bool).
    bitwise_or => BitOr,
    /// `self ^ other` (integers and bool).
    bitwise_xor => BitXor,
    /// `self << other` (integers; counts outside `0..bits` give 0, as numpy).
    bitwise_left_shift => LeftShift,
    /// `self >> other` (integers, arithmetic; counts outside `0..bits` give 0 or -1, as numpy).
    bitwise_right_shift => RightShift,
}

macro_rules! unary_methods {
    ($($name:ident => $op:ident),* $(,)?) => {
        impl Tensor {$(
            #[doc = concat!("numpy's `", stringify!($name), "`.")]
            ///
            /// # Errors
            /// Dtypes numpy rejects (e.g. negating booleans).
            pub fn $name(&self) -> Result<Tensor> {
                self.un(UnaryOp::$op)
            }
        )*}
    };
}
unary_methods! {
    neg => Neg, abs => Abs, sign => Sign, sqrt => Sqrt, exp => Exp, log => Log, log1p => Log1p,
    expm1 => Expm1, sin => Sin, cos => Cos, tan => Tan, tanh => Tanh, arcsin => Arcsin,
    arccos => Arccos, arctan => Arctan, floor => Floor, ceil => Ceil, round => Round,
    logical_not => LogicalNot, isnan => IsNan, isinf => IsInf, isfinite => IsFinite,
    sinh => Sinh, cosh => Cosh, arcsinh => Arcsinh, arccosh => Arccosh, arctanh => Arctanh,
    log2 => Log2, log10 => Log10, exp2 => Exp2, trunc => Trunc, cbrt => Cbrt, square => Square,
    reciprocal => Reciprocal, signbit => Signbit, bitwise_invert => Invert,
}

impl Tensor {
    /// `clip(self, lo, hi)` = `minimum(maximum(self, lo), hi)`, computed in numpy's result dtype
    /// of all three operands.
    ///
    /// # Errors
    /// As the binary ops; `ScalarOverflow` for an integer bound inside neither the array's
    /// range nor beyond it on its own side (e.g. a lower bound above int32's maximum).
    pub fn clip<'a>(
        &self,
        lo: impl Into<Operand<'a>>,
        hi: impl Into<Operand<'a>>,
    ) -> Result<Tensor> {
        let xdt = self.tn()?.dtype;
        // numpy drops a Python-int bound beyond an integer array's range: it clips nothing
        // there, and keeping it would overflow the dtype.
        let keep = |o: Operand<'a>, low: bool| match o {
            Operand::S(Scalar::Int(v)) if xdt.is_int() => {
                let (min, max) = if xdt == DType::I32 {
                    (i32::MIN as i64, i32::MAX as i64)
                } else {
                    (i64::MIN, i64::MAX)
                };
                let beyond = if low { v <= min } else { v >= max };
                (!beyond).then_some(o)
            }
            _ => Some(o),
        };
        let bounds = [keep(lo.into(), true), keep(hi.into(), false)];
        // One result dtype from all three operands (numpy's result_type, scalars weak), so
        // nothing promotes twice or rounds through an intermediate dtype.
        let mut dt = xdt;
        for b in bounds.iter().flatten() {
            if let Operand::T(t) = b {
                dt = DType::promote(dt, t.tn()?.dtype);
            }
        }
        for b in bounds.iter().flatten() {
            if let Operand::S(s) = b {
                dt = dt.promote_weak(s);
            }
        }
        let mut out = self.astype(dt)?;
        if let Some(lo) = bounds[0] {
            out = out.maximum(lo)?;
        }
        if let Some(hi) = bounds[1] {
            out = out.minimum(hi)?;
        }
        Ok(out)
    }

    /// numpy's `where(self, a, b)` with `self` as the condition (cast to bool).
    ///
    /// # Errors
    /// Shapes that do not broadcast.
    pub fn where_<'a>(
        &self,
        a: impl Into<Operand<'a>>,
        b: impl Into<Operand<'a>>,
    ) -> Result<Tensor> {
        let (a, b) = (a.into(), b.into());
        let cond = self.astype(DType::Bool)?;
        let dt = match (a, b) {
            (Operand::S(x), Operand::S(y)) => DType::promote(x.default_dtype(), y.default_dtype()),
            _ => self.promoted("where", a, b)?,
        };
        // numpy's where casts a Python int to the result dtype C-style: one beyond int32 wraps
        // (`np.where(c, int32_arr, 2**40)` holds 0 there), unlike arithmetic, which raises.
        let wrap = |o: Operand<'a>| match o {
            Operand::S(Scalar::Int(v)) if dt == DType::I32 => {
                Operand::S(Scalar::Int(v as i32 as i64))
            }
            o => o,
        };
        let ta = self.operand(wrap(a), dt)?;
        let tb = self.operand(wrap(b), dt)?;
        let s1 = broadcast_shapes("where", cond.shape(), ta.shape())?;
        let shape = broadcast_shapes("where", &s1, tb.shape())?;
        self.record(Op::Where, &[&cond, &ta, &tb], shape, dt)
    }
}

/// numpy's `where(cond, a, b)`.
///
/// # Errors
/// Shapes that do not broadcast.
pub fn where_<'a>(
    cond: &Tensor,
    a: impl Into<Operand<'a>>,
    b: impl Into<Operand<'a>>,
) -> Result<Tensor> {
    cond.where_(a, b)
}

// ---- operators: `&a + &b`, `&a * 2.0`, `1.0 - &a`, ... (errors deferred into the tensor) ----

macro_rules! op_impls {
    ($($tr:ident $m:ident $op:ident),*) => {$(
        impl std::ops::$tr<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $m(self, o: &Tensor) -> Tensor {
                self.binary_op(BinaryOp::$op, self, o).unwrap_or_else(|e| Tensor::failed(&self.sess, e))
            }
        }
        impl std::ops::$tr<Tensor> for &Tensor {
            type Output = Tensor;
            fn $m(self, o: Tensor) -> Tensor {
                std::ops::$tr::$m(self, &o)
            }
        }
        impl std::ops::$tr<&Tensor> for Tensor {
            type Output = Tensor;
            fn $m(self, o: &Tensor) -> Tensor {
                std::ops::$tr::$m(&self, o)
            }
        }
        impl std::ops::$tr<Tensor> for Tensor {
            type Output = Tensor;
            fn $m(self, o: Tensor) -> Tensor {
                std::ops::$tr::$m(&self, &o)
            }
        }
        op_impls!(@scalars $tr $m $op; f64, i64);
    )*};
    (@scalars $tr:ident $m:ident $op:ident; $($s:ty),*) => {$(
        impl std::ops::$tr<$s> for &Tensor {
            type Output = Tensor;
            fn $m(self, o: $s) -> Tensor {
                self.binary_op(BinaryOp::$op, self, o).unwrap_or_else(|e| Tensor::failed(&self.sess, e))
            }
        }
        impl std::ops::$tr<$s> for Tensor {
            type Output = Tensor;
            fn $m(self, o: $s) -> Tensor {
                std::ops::$tr::$m(&self, o)
            }
        }
        impl std::ops::$tr<&Tensor> for $s {
            type Output = Tensor;
            fn $m(self, o: &Tensor) -> Tensor {
                o.binary_op(BinaryOp::$op, self, o).unwrap_or_else(|e| Tensor::failed(&o.sess, e))
            }
        }
        impl std::ops::$tr<Tensor> for $s {
            type Output = Tensor;
            fn $m(self, o: Tensor) -> Tensor {
                std::ops::$tr::$m(self, &o)
            }
        }
    )*};
}
op_impls!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div, Rem rem Mod);

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self).unwrap_or_else(|e| Tensor::failed(&self.sess, e))
    }
}
impl std::ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        -&self
    }
}

#[cfg(test)]
mod tests {
    use crate::op::{BinaryOp, UnaryOp};
    use crate::{DType, Session};

    #[test]
    fn unary_by_op_records_the_methods_node() {
        let s = Session::new(std::sync::Arc::new(crate::NullBackend));
        let t = s.random(1).rand(&[3, 4], DType::F32);
        // Interning: the same op on the same input is the same node.
        let by_op = t.unary(UnaryOp::from_name("sin").unwrap()).unwrap();
        assert_eq!(
            by_op.node_id().unwrap(),
            t.sin().unwrap().node_id().unwrap()
        );
        assert_ne!(
            by_op.node_id().unwrap(),
            t.cos().unwrap().node_id().unwrap()
        );
        let by_op = t
            .binary_op(BinaryOp::from_name("add").unwrap(), &t, 2.0)
            .unwrap();
        assert_eq!(
            by_op.node_id().unwrap(),
            t.add(2.0).unwrap().node_id().unwrap()
        );
        // A dtype numpy rejects is a typed error, not a panic.
        let b = t.lt(0.5).unwrap();
        assert!(matches!(
            b.unary(UnaryOp::Neg),
            Err(crate::Error::UnsupportedDType { .. })
        ));
    }
}
