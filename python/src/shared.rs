//! A numpy array read in place: `ts.asarray(ndarray)` makes a source node over the array's own
//! buffer (no copy of the array). Each chunk is copied out of the buffer when a kernel needs
//! it, from any thread, without the GIL; the node holds a reference to the array, so the
//! buffer lives as long as the graph needs it.

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use std::fmt;
use tessera::array::Region;
use tessera::external::{check_region, ExternalArray};
use tessera::{DType, HostArray, HostSlice, Result};

/// A numpy array's buffer, read in place.
pub struct NumpyBuffer {
    /// The array: keeps the buffer alive (released without the GIL through pyo3's pool).
    _owner: Py<PyAny>,
    /// Address of element (0, ..., 0).
    ptr: usize,
    shape: Vec<usize>,
    /// Strides in bytes (numpy's; negative for reversed views).
    strides: Vec<isize>,
    dtype: DType,
}

impl fmt::Debug for NumpyBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.describe())
    }
}

/// Element types read out of a buffer: numpy's layout for each supported dtype.
trait Raw: Copy {
    /// True when the buffer's bytes are this type's values as they are (rows can be copied).
    const PLAIN: bool;
    /// The element at `p`.
    ///
    /// # Safety
    /// `p` points to a valid, aligned element of this type's numpy dtype.
    unsafe fn load(p: *const u8) -> Self;
}
macro_rules! raw_plain {
    ($($t:ty),*) => {$(
        impl Raw for $t {
            const PLAIN: bool = true;
            unsafe fn load(p: *const u8) -> Self {
                // SAFETY: the caller's contract: a valid, aligned element of this type.
                unsafe { (p as *const $t).read() }
            }
        }
    )*};
}
raw_plain!(i32, i64, f32, f64);
impl Raw for bool {
    const PLAIN: bool = false;
    unsafe fn load(p: *const u8) -> Self {
        // A numpy bool is one byte; any byte other than 0 reads as true (a view of other
        // bytes as bool may hold values a Rust bool may not).
        // SAFETY: the caller's contract: a valid element (one readable byte).
        unsafe { p.read() != 0 }
    }
}

impl NumpyBuffer {
    /// The buffer of `array`, or `None` when it cannot be read in place (a dtype Tessera does
    /// not have, or elements not aligned for their type).
    pub fn of(array: &Bound<'_, PyUntypedArray>) -> Option<Self> {
        fn typed<T: numpy::Element>(a: &Bound<'_, PyUntypedArray>) -> Option<*const u8> {
            a.cast::<PyArrayDyn<T>>()
                .ok()
                .map(|t| t.data() as *const u8)
        }
        let (dtype, ptr, align) = if let Some(p) = typed::<bool>(array) {
            (DType::Bool, p, 1)
        } else if let Some(p) = typed::<i32>(array) {
            (DType::I32, p, 4)
        } else if let Some(p) = typed::<i64>(array) {
            (DType::I64, p, 8)
        } else if let Some(p) = typed::<f32>(array) {
            (DType::F32, p, 4)
        } else if let Some(p) = typed::<f64>(array) {
            (DType::F64, p, 8)
        } else {
            return None;
        };
        let strides = array.strides().to_vec();
        let aligned =
            (ptr as usize).is_multiple_of(align) && strides.iter().all(|s| s % align as isize == 0);
        if !aligned {
            return None;
        }
        Some(NumpyBuffer {
            _owner: array.clone().into_any().unbind(),
            ptr: ptr as usize,
            shape: array.shape().to_vec(),
            strides,
            dtype,
        })
    }

    fn read_as<T: Raw>(&self, region: &Region) -> ndarray::ArrayD<T> {
        let shape: Vec<usize> = region.iter().map(|&(s, e)| e - s).collect();
        let n: usize = shape.iter().product();
        let mut out: Vec<T> = Vec::with_capacity(n);
        if n > 0 {
            let nd = shape.len();
            // Rows along the last axis (a 0-d array is one row of one element).
            let (row, row_stride) = match nd {
                0 => (1, 0),
                _ => (shape[nd - 1], self.strides[nd - 1]),
            };
            let outer = nd.saturating_sub(1);
            let contiguous = T::PLAIN && row_stride == std::mem::size_of::<T>() as isize;
            // Byte offset of the box's first element, then an odometer over the rows.
            let mut off: isize = region
                .iter()
                .zip(&self.strides)
                .map(|(&(s, _), &st)| s as isize * st)
                .sum();
            let mut idx = vec![0usize; outer];
            let base = self.ptr as *const u8;
            for _ in 0..n / row {
                // SAFETY (both branches): `region` lies within the array's shape (checked by
                // `read`), so every offset below is the byte offset numpy's strides give for
                // an in-bounds index, and the elements there are valid and aligned (checked
                // in `of`). The buffer is alive: `_owner` holds the array, and numpy neither
                // moves nor frees the data of an array that has other references.
                if contiguous {
                    let first = unsafe { base.offset(off) } as *const T;
                    out.extend_from_slice(unsafe { std::slice::from_raw_parts(first, row) });
                } else {
                    for k in 0..row as isize {
                        out.push(unsafe { T::load(base.offset(off + k * row_stride)) });
                    }
                }
                for a in (0..outer).rev() {
                    idx[a] += 1;
                    off += self.strides[a];
                    if idx[a] < shape[a] {
                        break;
                    }
                    off -= self.strides[a] * shape[a] as isize;
                    idx[a] = 0;
                }
            }
        }
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), out).expect("box shape")
    }
}

impl ExternalArray for NumpyBuffer {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn read(&self, region: &Region) -> Result<HostArray> {
        check_region("asarray", region, &self.shape)?;
        Ok(match self.dtype {
            DType::Bool => HostArray::Bool(self.read_as::<bool>(region)),
            DType::I32 => HostArray::I32(self.read_as::<i32>(region)),
            DType::I64 => HostArray::I64(self.read_as::<i64>(region)),
            DType::F32 => HostArray::F32(self.read_as::<f32>(region)),
            DType::F64 => HostArray::F64(self.read_as::<f64>(region)),
        })
    }
    fn describe(&self) -> String {
        format!("numpy array of shape {:?} {}", self.shape, self.dtype)
    }
    fn flat(&self) -> Option<HostSlice<'_>> {
        let n: usize = self.shape.iter().product();
        // Bools are read byte by byte (a byte other than 0 or 1 is not a Rust bool).
        if n == 0 || self.dtype == DType::Bool {
            return None;
        }
        // Row-major order: each axis longer than one steps over the axes after it.
        let mut step = self.dtype.size() as isize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d > 1 && s != step {
                return None;
            }
            step *= d as isize;
        }
        let p = self.ptr as *const u8;
        // SAFETY: the buffer holds `n` valid elements of `self.dtype` in row-major order from
        // `ptr` (the strides were checked just above), aligned for their type (checked in
        // `of`), and alive while `self` is (`_owner` holds the array; numpy neither moves nor
        // frees the data of an array that has other references). Kernels only read it; as for
        // any numpy buffer shared with native code, writing the array while a graph that reads
        // it runs is the caller's race, as it is with the copies `read` makes.
        unsafe {
            Some(match self.dtype {
                DType::Bool => return None,
                DType::I32 => HostSlice::I32(std::slice::from_raw_parts(p.cast(), n)),
                DType::I64 => HostSlice::I64(std::slice::from_raw_parts(p.cast(), n)),
                DType::F32 => HostSlice::F32(std::slice::from_raw_parts(p.cast(), n)),
                DType::F64 => HostSlice::F64(std::slice::from_raw_parts(p.cast(), n)),
            })
        }
    }
}
