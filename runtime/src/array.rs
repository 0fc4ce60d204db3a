//! Host arrays: the typed n-d data a chunk holds on the host (ndarray underneath).

use crate::dtype::DType;
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use serde::{Deserialize, Serialize};

/// An n-d array of any supported dtype, in host memory. Serialized bit-exactly (floats as their
/// bits), so NaN and infinities survive JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "ArrayWire", try_from = "ArrayWire")]
pub enum HostArray {
    /// bool
    Bool(ArrayD<bool>),
    /// int32
    I32(ArrayD<i32>),
    /// int64
    I64(ArrayD<i64>),
    /// float32
    F32(ArrayD<f32>),
    /// float64
    F64(ArrayD<f64>),
}

/// A read-only typed run of row-major elements, borrowed from a host array or from memory
/// Tessera reads in place (a numpy buffer): what kernels read their inputs from.
#[derive(Debug, Clone, Copy)]
pub enum HostSlice<'a> {
    /// bool
    Bool(&'a [bool]),
    /// int32
    I32(&'a [i32]),
    /// int64
    I64(&'a [i64]),
    /// float32
    F32(&'a [f32]),
    /// float64
    F64(&'a [f64]),
}

impl<'a> HostSlice<'a> {
    /// All elements of a standard-layout array (`None` for another layout).
    pub fn of(a: &'a HostArray) -> Option<HostSlice<'a>> {
        Some(match a {
            HostArray::Bool(x) => HostSlice::Bool(x.as_slice()?),
            HostArray::I32(x) => HostSlice::I32(x.as_slice()?),
            HostArray::I64(x) => HostSlice::I64(x.as_slice()?),
            HostArray::F32(x) => HostSlice::F32(x.as_slice()?),
            HostArray::F64(x) => HostSlice::F64(x.as_slice()?),
        })
    }

    /// `len` values of a standard-layout array from flat position `start`.
    ///
    /// # Panics
    /// Another layout, or a range past the array's end (callers plan within both).
    pub fn of_host(a: &'a HostArray, start: usize, len: usize) -> HostSlice<'a> {
        HostSlice::of(a).expect("standard layout").sub(start, len)
    }

    /// `len` values from position `start`.
    ///
    /// # Panics
    /// A range past the end.
    pub fn sub(self, start: usize, len: usize) -> HostSlice<'a> {
        match self {
            HostSlice::Bool(x) => HostSlice::Bool(&x[start..start + len]),
            HostSlice::I32(x) => HostSlice::I32(&x[start..start + len]),
            HostSlice::I64(x) => HostSlice::I64(&x[start..start + len]),
            HostSlice::F32(x) => HostSlice::F32(&x[start..start + len]),
            HostSlice::F64(x) => HostSlice::F64(&x[start..start + len]),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            HostSlice::Bool(x) => x.len(),
            HostSlice::I32(x) => x.len(),
            HostSlice::I64(x) => x.len(),
            HostSlice::F32(x) => x.len(),
            HostSlice::F64(x) => x.len(),
        }
    }

    /// True when it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element dtype.
    pub fn dtype(&self) -> DType {
        match self {
            HostSlice::Bool(_) => DType::Bool,
            HostSlice::I32(_) => DType::I32,
            HostSlice::I64(_) => DType::I64,
            HostSlice::F32(_) => DType::F32,
            HostSlice::F64(_) => DType::F64,
        }
    }

    /// A 1-d host array holding a copy of the elements.
    pub fn to_host(self) -> HostArray {
        fn mk<T: Clone>(x: &[T]) -> ArrayD<T> {
            ArrayD::from_shape_vec(IxDyn(&[x.len()]), x.to_vec()).expect("1-d")
        }
        match self {
            HostSlice::Bool(x) => HostArray::Bool(mk(x)),
            HostSlice::I32(x) => HostArray::I32(mk(x)),
            HostSlice::I64(x) => HostArray::I64(mk(x)),
            HostSlice::F32(x) => HostArray::F32(mk(x)),
            HostSlice::F64(x) => HostArray::F64(mk(x)),
        }
    }
}

/// A host array on the wire: dtype, shape and each element's bits, row-major.
#[derive(Serialize, Deserialize)]
struct ArrayWire {
    dtype: DType,
    shape: Vec<usize>,
    bits: Vec<u64>,
}

impl From<HostArray> for ArrayWire {
    fn from(a: HostArray) -> Self {
        let shape = a.shape().to_vec();
        let dtype = a.dtype();
        let bits = match &a {
            HostArray::Bool(x) => x.iter().map(|&v| v as u64).collect(),
            HostArray::I32(x) => x.iter().map(|&v| v as i64 as u64).collect(),
            HostArray::I64(x) => x.iter().map(|&v| v as u64).collect(),
            HostArray::F32(x) => x.iter().map(|&v| v.to_bits() as u64).collect(),
            HostArray::F64(x) => x.iter().map(|&v| v.to_bits()).collect(),
        };
        ArrayWire { dtype, shape, bits }
    }
}

impl TryFrom<ArrayWire> for HostArray {
    type Error = String;
    fn try_from(w: ArrayWire) -> Result<Self, String> {
        fn mk<T>(shape: &[usize], v: Vec<T>) -> Result<ArrayD<T>, String> {
            ArrayD::from_shape_vec(IxDyn(shape), v)
                .map_err(|e| format!("array of shape {shape:?}: {e}"))
        }
        let b = w.bits;
        Ok(match w.dtype {
            DType::Bool => HostArray::Bool(mk(&w.shape, b.iter().map(|&v| v != 0).collect())?),
            DType::I32 => {
                HostArray::I32(mk(&w.shape, b.iter().map(|&v| v as i64 as i32).collect())?)
            }
            DType::I64 => HostArray::I64(mk(&w.shape, b.iter().map(|&v| v as i64).collect())?),
            DType::F32 => HostArray::F32(mk(
                &w.shape,
                b.iter().map(|&v| f32::from_bits(v as u32)).collect(),
            )?),
            DType::F64 => HostArray::F64(mk(
                &w.shape,
                b.iter().map(|&v| f64::from_bits(v)).collect(),
            )?),
        })
    }
}

/// Runs `$body` with `$a` bound to the inner `ArrayD<T>` of a `HostArray`, re-wrapping when
/// `$body` yields an array of the same element type.
#[macro_export]
macro_rules! with_array {
    ($arr:expr, $a:ident => $body:expr) => {
        match $arr {
            $crate::array::HostArray::Bool($a) => $crate::array::HostArray::Bool($body),
            $crate::array::HostArray::I32($a) => $crate::array::HostArray::I32($body),
            $crate::array::HostArray::I64($a) => $crate::array::HostArray::I64($body),
            $crate::array::HostArray::F32($a) => $crate::array::HostArray::F32($body),
            $crate::array::HostArray::F64($a) => $crate::array::HostArray::F64($body),
        }
    };
}

/// Like [`with_array!`] but the body yields any value (no re-wrapping).
#[macro_export]
macro_rules! on_array {
    ($arr:expr, $a:ident => $body:expr) => {
        match $arr {
            $crate::array::HostArray::Bool($a) => $body,
            $crate::array::HostArray::I32($a) => $body,
            $crate::array::HostArray::I64($a) => $body,
            $crate::array::HostArray::F32($a) => $body,
            $crate::array::HostArray::F64($a) => $body,
        }
    };
}

/// An element type a `HostArray` can hold.
pub trait Elem: Copy + Send + Sync + PartialOrd + std::fmt::Debug + Default + 'static {
    /// The dtype tag.
    const DTYPE: DType;
    /// Wraps an array.
    fn wrap(a: ArrayD<Self>) -> HostArray;
    /// Borrows the inner array when the dtype matches.
    fn peel(a: &HostArray) -> Option<&ArrayD<Self>>;
    /// Converts to f64 (numpy `astype(float64)`).
    fn to_f64(self) -> f64;
    /// Converts to i64 (truncation toward zero; NaN becomes 0, saturating).
    fn to_i64(self) -> i64;
    /// Truthiness.
    fn to_bool(self) -> bool;
    /// From f64 (`as` semantics).
    fn from_f64(v: f64) -> Self;
    /// From i64 (`as` semantics).
    fn from_i64(v: i64) -> Self;
    /// From bool.
    fn from_bool(v: bool) -> Self;
}

macro_rules! elem_num {
    ($t:ty, $v:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$v;
            fn wrap(a: ArrayD<Self>) -> HostArray {
                HostArray::$v(a)
            }
            fn peel(a: &HostArray) -> Option<&ArrayD<Self>> {
                match a {
                    HostArray::$v(x) => Some(x),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn to_bool(self) -> bool {
                self != (0 as $t)
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            fn from_bool(v: bool) -> Self {
                (v as u8) as $t
            }
        }
    };
}
elem_num!(i32, I32);
elem_num!(i64, I64);
elem_num!(f32, F32);
elem_num!(f64, F64);

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn wrap(a: ArrayD<Self>) -> HostArray {
        HostArray::Bool(a)
    }
    fn peel(a: &HostArray) -> Option<&ArrayD<Self>> {
        match a {
            HostArray::Bool(x) => Some(x),
            _ => None,
        }
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_bool(self) -> bool {
        self
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn from_bool(v: bool) -> Self {
        v
    }
}

/// A half-open box `[start, stop)` per axis inside a larger array.
pub type Region = Vec<(usize, usize)>;

impl HostArray {
    /// The dtype.
    pub fn dtype(&self) -> DType {
        match self {
            HostArray::Bool(_) => DType::Bool,
            HostArray::I32(_) => DType::I32,
            HostArray::I64(_) => DType::I64,
            HostArray::F32(_) => DType::F32,
            HostArray::F64(_) => DType::F64,
        }
    }
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        on_array!(self, a => a.shape())
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        on_array!(self, a => a.len())
    }
    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes of element data.
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size()
    }
    /// An array of zeros (false) of the given dtype and shape.
    pub fn zeros(dtype: DType, shape: &[usize]) -> HostArray {
        let sh = IxDyn(shape);
        match dtype {
            DType::Bool => HostArray::Bool(ArrayD::from_elem(sh, false)),
            DType::I32 => HostArray::I32(ArrayD::zeros(sh)),
            DType::I64 => HostArray::I64(ArrayD::zeros(sh)),
            DType::F32 => HostArray::F32(ArrayD::zeros(sh)),
            DType::F64 => HostArray::F64(ArrayD::zeros(sh)),
        }
    }
    /// Casts to another dtype with numpy's `astype` semantics (float to int truncates).
    pub fn cast(&self, to: DType) -> HostArray {
        if self.dtype() == to {
            return self.clone();
        }
        fn conv<S: Elem, T: Elem>(a: &ArrayD<S>) -> ArrayD<T> {
            match S::DTYPE {
                DType::F32 | DType::F64 => a.mapv(|v| T::from_f64(v.to_f64())),
                DType::Bool => a.mapv(|v| T::from_bool(v.to_bool())),
                _ => a.mapv(|v| T::from_i64(v.to_i64())),
            }
        }
        on_array!(self, a => match to {
            DType::Bool => HostArray::Bool(a.mapv(|v| v.to_bool())),
            DType::I32 => HostArray::I32(conv(a)),
            DType::I64 => HostArray::I64(conv(a)),
            DType::F32 => HostArray::F32(conv(a)),
            DType::F64 => HostArray::F64(conv(a)),
        })
    }
    /// Copies out the sub-box `region` with per-axis `step` (a positive or negative stride; a
    /// negative step walks the box from its end), in standard layout.
    pub fn slice_region(&self, region: &[(usize, usize)], steps: Option<&[isize]>) -> HostArray {
        let info: Vec<SliceInfoElem> = region
            .iter()
            .enumerate()
            .map(|(i, &(s, e))| SliceInfoElem::Slice {
                start: s as isize,
                end: Some(e as isize),
                step: steps.map_or(1, |st| st[i]),
            })
            .collect();
        with_array!(self, a => a.slice(info.as_slice()).as_standard_layout().into_owned())
    }
    /// Writes `src` into the sub-box of `self` starting at `offset`. Dtypes must match.
    pub fn assign_region(&mut self, offset: &[usize], src: &HostArray) {
        let info: Vec<SliceInfoElem> = offset
            .iter()
            .zip(src.shape())
            .map(|(&o, &n)| SliceInfoElem::Slice {
                start: o as isize,
                end: Some((o + n) as isize),
                step: 1,
            })
            .collect();
        match (self, src) {
            (HostArray::Bool(d), HostArray::Bool(s)) => d.slice_mut(info.as_slice()).assign(s),
            (HostArray::I32(d), HostArray::I32(s)) => d.slice_mut(info.as_slice()).assign(s),
            (HostArray::I64(d), HostArray::I64(s)) => d.slice_mut(info.as_slice()).assign(s),
            (HostArray::F32(d), HostArray::F32(s)) => d.slice_mut(info.as_slice()).assign(s),
            (HostArray::F64(d), HostArray::F64(s)) => d.slice_mut(info.as_slice()).assign(s),
            (d, s) => panic!(
                "assign_region: dtype {} into {} (internal invariant)",
                s.dtype(),
                d.dtype()
            ),
        }
    }
    /// Reshapes (row-major) to `shape`; the element count must match.
    pub fn reshape(&self, shape: &[usize]) -> HostArray {
        with_array!(self, a => a
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(shape))
            .expect("reshape with equal element count"))
    }
    /// Reshapes (row-major) without copying when the data is already in standard layout.
    pub fn into_reshaped(self, shape: &[usize]) -> HostArray {
        if self.shape() == shape {
            return self;
        }
        with_array!(self, a => {
            let a = if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() };
            a.into_shape_with_order(IxDyn(shape)).expect("reshape with equal element count")
        })
    }
    /// Borrows as `ArrayD<T>`; `None` when the dtype differs.
    pub fn as_array<T: Elem>(&self) -> Option<&ArrayD<T>> {
        T::peel(self)
    }
    /// Converts to an `ArrayD<f64>` (for comparisons and references).
    pub fn to_f64(&self) -> ArrayD<f64> {
        on_array!(self, a => a.mapv(|v| v.to_f64()))
    }
}

impl<T: Elem> From<ArrayD<T>> for HostArray {
    fn from(a: ArrayD<T>) -> Self {
        T::wrap(a)
    }
}
