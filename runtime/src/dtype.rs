//! Data types and numpy's promotion rules (NEP 50: Python scalars are "weak").

use serde::{Deserialize, Serialize};
use std::fmt;

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DType {
    /// Boolean.
    Bool,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool => 1,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }
    /// True for f32 and f64.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
    /// True for i32 and i64.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }
    /// numpy's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// numpy's `result_type` for two array dtypes.
    pub fn promote(a: DType, b: DType) -> DType {
        use DType::*;
        match (a, b) {
            (x, y) if x == y => x,
            (Bool, x) | (x, Bool) => x,
            (I32, I64) | (I64, I32) => I64,
            (F32, F64) | (F64, F32) => F64,
            // int32/int64 with float32 needs float64 to hold every integer exactly.
            (I32 | I64, F32) | (F32, I32 | I64) => F64,
            (I32 | I64, F64) | (F64, I32 | I64) => F64,
            _ => F64,
        }
    }

    /// Result dtype of an array of dtype `self` combined with a weak Python scalar (NEP 50).
    pub fn promote_weak(self, s: &Scalar) -> DType {
        match (self, s) {
            (d, Scalar::Bool(_)) => d,
            (DType::Bool, Scalar::Int(_)) => DType::I64,
            (d, Scalar::Int(_)) => d,
            (d, Scalar::Float(_)) if d.is_float() => d,
            (_, Scalar::Float(_)) => DType::F64,
        }
    }

    /// True when the integer `v` is a value of this dtype (floats hold every i64 approximately;
    /// bool holds 0 and 1).
    pub fn holds_int(self, v: i64) -> bool {
        match self {
            DType::Bool => v == 0 || v == 1,
            DType::I32 => i32::try_from(v).is_ok(),
            DType::I64 | DType::F32 | DType::F64 => true,
        }
    }

    /// Float type used by transcendental functions of this dtype (numpy: ints -> float64).
    /// numpy gives float16 for bool; Tessera has no f16 yet and uses float32.
    pub fn float_of(self) -> DType {
        match self {
            DType::F32 | DType::Bool => DType::F32,
            _ => DType::F64,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scalar value as written by a user (a Python-like weak scalar).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(into = "ScalarWire", from = "ScalarWire")]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Scalar {
    /// The value as f64.
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
        }
    }
    /// The value as i64 (floats truncate toward zero).
    pub fn as_i64(self) -> i64 {
        match self {
            Scalar::Bool(b) => b as i64,
            Scalar::Int(i) => i,
            Scalar::Float(f) => f as i64,
        }
    }
    /// The value as bool (non-zero is true).
    pub fn as_bool(self) -> bool {
        match self {
            Scalar::Bool(b) => b,
            Scalar::Int(i) => i != 0,
            Scalar::Float(f) => f != 0.0,
        }
    }
    /// Checks that a fill of `dtype` with this scalar stores a defined value, as numpy's scalar
    /// conversion does: an int outside an integer dtype is `ScalarOverflow` (OverflowError); a
    /// NaN, infinite or out-of-range float into an integer dtype is `InvalidArgument` (numpy's
    /// `np.full` leaves that to an undefined C cast, `np.array(x, dtype)` raises). Finite
    /// floats truncate toward zero; bool takes any value's truthiness; floats take any value.
    ///
    /// # Errors
    /// As above, naming `op`.
    pub fn check_fill(self, op: &str, dtype: DType) -> crate::error::Result<()> {
        use crate::error::Error;
        if !dtype.is_int() {
            return Ok(());
        }
        match self {
            Scalar::Bool(_) => Ok(()),
            Scalar::Int(v) if dtype.holds_int(v) => Ok(()),
            Scalar::Int(value) => Err(Error::ScalarOverflow {
                op: op.into(),
                value,
                dtype,
            }),
            Scalar::Float(f) => {
                // The integer range as exact f64 bounds: [-2^(b-1), 2^(b-1)).
                let half = if dtype == DType::I32 {
                    2f64.powi(31)
                } else {
                    2f64.powi(63)
                };
                let msg = if f.is_nan() {
                    "cannot convert float NaN to integer".to_string()
                } else if f.is_infinite() {
                    "cannot convert float infinity to integer".to_string()
                } else if !(-half..half).contains(&f.trunc()) {
                    format!("float {f} out of bounds for {dtype}")
                } else {
                    return Ok(());
                };
                Err(Error::invalid(op, msg))
            }
        }
    }
    /// The dtype this scalar has when it stands alone (numpy defaults).
    pub fn default_dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::Float(_) => DType::F64,
        }
    }
    fn key(&self) -> (u8, u64) {
        match *self {
            Scalar::Bool(b) => (0, b as u64),
            Scalar::Int(i) => (1, i as u64),
            Scalar::Float(f) => (2, f.to_bits()),
        }
    }
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Scalar {}
impl std::hash::Hash for Scalar {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}
impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Float(v)
    }
}
impl From<f32> for Scalar {
    fn from(v: f32) -> Self {
        Scalar::Float(v as f64)
    }
}
impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Int(v)
    }
}
impl From<i32> for Scalar {
    fn from(v: i32) -> Self {
        Scalar::Int(v as i64)
    }
}
impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

/// A scalar on the wire: floats as their bits, so NaN, infinities and every last bit survive
/// text formats such as JSON.
#[derive(Serialize, Deserialize)]
enum ScalarWire {
    Bool(bool),
    Int(i64),
    FloatBits(u64),
}
impl From<Scalar> for ScalarWire {
    fn from(s: Scalar) -> Self {
        match s {
            Scalar::Bool(b) => ScalarWire::Bool(b),
            Scalar::Int(i) => ScalarWire::Int(i),
            Scalar::Float(f) => ScalarWire::FloatBits(f.to_bits()),
        }
    }
}
impl From<ScalarWire> for Scalar {
    fn from(s: ScalarWire) -> Self {
        match s {
            ScalarWire::Bool(b) => Scalar::Bool(b),
            ScalarWire::Int(i) => Scalar::Int(i),
            ScalarWire::FloatBits(f) => Scalar::Float(f64::from_bits(f)),
        }
    }
}

/// An f64 that hashes and compares by its bits, so ops holding floats can be interned; it is
/// serialized as its bits (bit-exact, NaN and infinities included).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(into = "u64", from = "u64")]
pub struct F64(pub f64);
impl From<F64> for u64 {
    fn from(f: F64) -> u64 {
        f.0.to_bits()
    }
}
impl From<u64> for F64 {
    fn from(b: u64) -> F64 {
        F64(f64::from_bits(b))
    }
}
impl PartialEq for F64 {
    fn eq(&self, o: &Self) -> bool {
        self.0.to_bits() == o.0.to_bits()
    }
}
impl Eq for F64 {}
impl std::hash::Hash for F64 {
    fn hash<H: std::hash::Hasher>(&self, s: &mut H) {
        self.0.to_bits().hash(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn promotion_matches_numpy() {
        use DType::*;
        assert_eq!(DType::promote(I32, F32), F64);
        assert_eq!(DType::promote(I64, I32), I64);
        assert_eq!(DType::promote(Bool, F32), F32);
        assert_eq!(DType::promote(F32, F64), F64);
        assert_eq!(F32.promote_weak(&Scalar::Float(1.0)), F32);
        assert_eq!(I32.promote_weak(&Scalar::Int(1)), I32);
        assert_eq!(I32.promote_weak(&Scalar::Float(1.0)), F64);
        assert_eq!(Bool.promote_weak(&Scalar::Int(1)), I64);
    }
}
