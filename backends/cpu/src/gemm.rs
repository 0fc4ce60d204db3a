//! Batched GEMM on chunks: f32/f64 through matrixmultiply (ndarray's `general_mat_mul`),
//! integers and booleans by a cache-friendly i-k-j loop.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayD, ArrayView2, ArrayViewMut2, Ix2, IxDyn, SliceInfoElem};
use tessera_runtime::{Elem, Error, HostArray, Result};

/// Slice selecting matrix `bidx` of a batched array of `shape` (batch axes of size 1 broadcast).
fn batch_index(shape: &[usize], bidx: &[usize]) -> Vec<SliceInfoElem> {
    let nb = shape.len() - 2;
    (0..shape.len())
        .map(|d| {
            if d < nb {
                SliceInfoElem::Index(if shape[d] == 1 { 0 } else { bidx[d] as isize })
            } else {
                SliceInfoElem::Slice {
                    start: 0,
                    end: None,
                    step: 1,
                }
            }
        })
        .collect()
}

fn batch_view<'a, T>(a: &'a ArrayD<T>, bidx: &[usize]) -> ArrayView2<'a, T> {
    a.slice(batch_index(a.shape(), bidx).as_slice())
        .into_dimensionality::<Ix2>()
        .expect("two trailing axes")
}

fn naive<T: Elem>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    mut c: ArrayViewMut2<T>,
    madd: impl Fn(T, T, T) -> T,
) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    for i in 0..m {
        for p in 0..k {
            let av = a[[i, p]];
            for j in 0..n {
                c[[i, j]] = madd(c[[i, j]], av, b[[p, j]]);
            }
        }
    }
}

fn batched<T: Elem>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    acc: Option<&ArrayD<T>>,
    shape: &[usize],
    kernel: impl Fn(ArrayView2<T>, ArrayView2<T>, ArrayViewMut2<T>),
) -> ArrayD<T> {
    let mut out = match acc {
        Some(c) => c.as_standard_layout().into_owned(),
        None => ArrayD::<T>::default(IxDyn(shape)),
    };
    let nb = shape.len() - 2;
    for bidx in tessera_runtime::chunk::grid_indices(&shape[..nb]) {
        let info = batch_index(shape, &bidx);
        let cv = out
            .slice_mut(info.as_slice())
            .into_dimensionality::<Ix2>()
            .expect("two trailing axes");
        kernel(batch_view(a, &bidx), batch_view(b, &bidx), cv);
    }
    out
}

/// `a @ b (+ acc)` for chunks with broadcast batch dims; `shape` is the output chunk shape.
pub fn matmul(
    a: &HostArray,
    b: &HostArray,
    acc: Option<&HostArray>,
    shape: &[usize],
) -> Result<HostArray> {
    macro_rules! float {
        ($t:ty, $x:expr, $y:expr) => {{
            let c = acc.map(|c| c.as_array::<$t>().expect("accumulator dtype"));
            batched($x, $y, c, shape, |a, b, mut c| {
                general_mat_mul(1.0, &a, &b, 1.0, &mut c)
            })
            .into()
        }};
    }
    macro_rules! int {
        ($t:ty, $x:expr, $y:expr) => {{
            let c = acc.map(|c| c.as_array::<$t>().expect("accumulator dtype"));
            batched($x, $y, c, shape, |a, b, c| {
                naive(a, b, c, |c, x: $t, y| c.wrapping_add(x.wrapping_mul(y)))
            })
            .into()
        }};
    }
    Ok(match (a, b) {
        (HostArray::F32(x), HostArray::F32(y)) => float!(f32, x, y),
        (HostArray::F64(x), HostArray::F64(y)) => float!(f64, x, y),
        (HostArray::I32(x), HostArray::I32(y)) => int!(i32, x, y),
        (HostArray::I64(x), HostArray::I64(y)) => int!(i64, x, y),
        (HostArray::Bool(x), HostArray::Bool(y)) => {
            let c = acc.map(|c| c.as_array::<bool>().expect("accumulator dtype"));
            batched(x, y, c, shape, |a, b, c| {
                naive(a, b, c, |c, x, y| c | (x & y))
            })
            .into()
        }
        _ => {
            return Err(Error::UnsupportedDType {
                op: "matmul".into(),
                dtypes: vec![a.dtype(), b.dtype()],
            })
        }
    })
}
