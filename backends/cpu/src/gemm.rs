//! Batched GEMM on chunks: f32/f64 through faer (AVX-512 picked at run time; measured against
//! matrixmultiply, the gemm crate and OpenBLAS in BENCHMARKS.md), integers and booleans by a
//! cache-friendly i-k-j loop; and the symmetric product `a a^T` (SYRK: the lower triangle
//! computed, half the flops, then mirrored).

use faer::linalg::matmul::triangular::BlockStructure;
use faer::{Accum, MatMut, MatRef, Par};
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

/// A faer view of an ndarray matrix view (any strides).
fn faer_ref<'a, T>(a: &'a ArrayView2<'_, T>) -> MatRef<'a, T> {
    let (r, c) = a.dim();
    let st = a.strides();
    // SAFETY: the pointer, dimensions and element strides are the ndarray view's own, so
    // every (i, j) with i < r, j < c addresses an element of the viewed array, which the
    // returned view borrows for the view's lifetime.
    unsafe { MatRef::from_raw_parts(a.as_ptr(), r, c, st[0], st[1]) }
}

/// A mutable faer view of an ndarray matrix view.
fn faer_mut<'a, T>(c: &'a mut ArrayViewMut2<'_, T>) -> MatMut<'a, T> {
    let (r, n) = c.dim();
    let st = c.strides().to_vec();
    // SAFETY: as `faer_ref`; the view is borrowed mutably for 'a, so nothing else reads or
    // writes these elements meanwhile (an ndarray mutable view never aliases itself).
    unsafe { MatMut::from_raw_parts_mut(c.as_mut_ptr(), r, n, st[0], st[1]) }
}

/// `c (+)= a @ b` through faer, every thread of the pool.
fn faer_gemm<T: faer::traits::RealField + Copy + num_traits::One>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    mut c: ArrayViewMut2<T>,
    add: bool,
) {
    let accum = if add { Accum::Add } else { Accum::Replace };
    faer::linalg::matmul::matmul(
        faer_mut(&mut c),
        accum,
        faer_ref(&a),
        faer_ref(&b),
        T::one(),
        Par::rayon(0),
    );
}

/// `c = a @ b` through faer on the calling thread (for kernels that are parallel over their
/// own panels).
pub(crate) fn gemm_seq<T: faer::traits::RealField + Copy + num_traits::One>(
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    c: &mut ArrayViewMut2<T>,
) {
    faer::linalg::matmul::matmul(
        faer_mut(c),
        Accum::Replace,
        faer_ref(a),
        faer_ref(b),
        T::one(),
        Par::Seq,
    );
}

/// `a a^T (+ acc)`: the symmetric product of one matrix (2-D chunks), its lower triangle
/// computed by faer's triangular product and mirrored into the upper one.
pub fn syrk(a: &HostArray, acc: Option<&HostArray>) -> Result<HostArray> {
    fn run<T: faer::traits::RealField + Copy + num_traits::One + Default>(
        a: &ArrayD<T>,
        acc: Option<&ArrayD<T>>,
    ) -> ArrayD<T> {
        let m = a.shape()[0];
        let a2 = a.view().into_dimensionality::<Ix2>().expect("2-D");
        let mut out = match acc {
            Some(c) => c.as_standard_layout().into_owned(),
            None => ArrayD::<T>::default(IxDyn(&[m, m])),
        };
        {
            let mut c = out.view_mut().into_dimensionality::<Ix2>().expect("2-D");
            let fa = faer_ref(&a2);
            faer::linalg::matmul::triangular::matmul(
                faer_mut(&mut c),
                BlockStructure::TriangularLower,
                if acc.is_some() {
                    Accum::Add
                } else {
                    Accum::Replace
                },
                fa,
                BlockStructure::Rectangular,
                fa.transpose(),
                BlockStructure::Rectangular,
                T::one(),
                Par::rayon(0),
            );
            for i in 0..m {
                for j in i + 1..m {
                    c[[i, j]] = c[[j, i]];
                }
            }
        }
        out
    }
    if a.shape().len() != 2 {
        return Err(Error::invalid_arg(
            "syrk",
            format!("a 2-D chunk (got shape {:?})", a.shape()),
        ));
    }
    Ok(match a {
        HostArray::F32(x) => run(
            x,
            acc.map(|c| c.as_array::<f32>().expect("accumulator dtype")),
        )
        .into(),
        HostArray::F64(x) => run(
            x,
            acc.map(|c| c.as_array::<f64>().expect("accumulator dtype")),
        )
        .into(),
        _ => {
            // Integers and bools: the general product with the transpose (exact either way).
            let at = crate::movement::transpose(a, &[1, 0]);
            let m = a.shape()[0];
            return matmul(a, &at, acc, &[m, m]);
        }
    })
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
            let add = c.is_some();
            batched($x, $y, c, shape, |a, b, c| faer_gemm(a, b, c, add)).into()
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
