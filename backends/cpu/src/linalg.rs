//! Dense matrix kernels through faer: factorizations and solves, one matrix at a time over the
//! batch axes of a chunk, written into the packed layout of [`DenseOp`].

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, MatRef, Par, Side};
use ndarray::ArrayD;
use tessera_runtime::linalg::DenseOp;
use tessera_runtime::{Error, HostArray, Result};

/// The float types the kernels run on.
pub trait Real: faer::traits::RealField + Copy + num_traits::Float {}
impl Real for f32 {}
impl Real for f64 {}

/// How many ways faer's factorizations split their work, whatever the thread count: faer's
/// default (`Par::rayon(0)`, every thread of the pool) makes a QR's or an SVD's last bits
/// depend on the pool's size, so a Ray worker running one thread per task, or another machine,
/// would not give this machine's bits. A fixed split gives the same bits everywhere; the pool
/// runs the pieces on the threads it has.
pub const DENSE_SPLIT: usize = 8;

/// Sets faer's global parallelism (read by its factorizations) to [`DENSE_SPLIT`], once.
fn fixed_split() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| faer::set_global_parallelism(Par::rayon(DENSE_SPLIT)));
}

fn linalg_err(op: DenseOp, msg: &str) -> Error {
    Error::LinAlg {
        op: op.name().to_string(),
        msg: msg.to_string(),
    }
}

/// Runs `op` on every matrix of the chunk `ins[0]` (and `ins[1]` for solves); `shape` is the
/// planned output shape.
///
/// # Errors
/// `LinAlg` for a singular matrix (solve, inv), one that is not positive definite
/// (cholesky), non-finite input to SVD or eigh (numpy: "did not converge"); `Unsupported`
/// for dtypes other than float32/float64.
pub fn dense(op: DenseOp, ins: &[&HostArray], shape: &[usize]) -> Result<HostArray> {
    fixed_split();
    match (ins[0], ins.get(1)) {
        (HostArray::F32(a), None) => Ok(HostArray::F32(run::<f32>(op, a, None, shape)?)),
        (HostArray::F32(a), Some(HostArray::F32(b))) => {
            Ok(HostArray::F32(run::<f32>(op, a, Some(b), shape)?))
        }
        (HostArray::F64(a), None) => Ok(HostArray::F64(run::<f64>(op, a, None, shape)?)),
        (HostArray::F64(a), Some(HostArray::F64(b))) => {
            Ok(HostArray::F64(run::<f64>(op, a, Some(b), shape)?))
        }
        (a, b) => Err(Error::UnsupportedDType {
            op: op.name().to_string(),
            dtypes: std::iter::once(a.dtype())
                .chain(b.map(|b| b.dtype()))
                .collect(),
        }),
    }
}

fn run<T: Real>(
    op: DenseOp,
    a: &ArrayD<T>,
    b: Option<&ArrayD<T>>,
    shape: &[usize],
) -> Result<ArrayD<T>> {
    let a = a.as_standard_layout();
    let sa = a.shape();
    let nd = sa.len();
    let (m, n) = (sa[nd - 2], sa[nd - 1]);
    let batch: usize = sa[..nd - 2].iter().product();
    let core: usize = shape[nd - 2..].iter().product();
    let b = b.map(|b| b.as_standard_layout());
    let (bm, bn) = b.as_ref().map_or((0, 0), |b| {
        let s = b.shape();
        (s[s.len() - 2], s[s.len() - 1])
    });
    let af = a.as_slice().expect("standard layout");
    let bf = b.as_ref().map(|b| b.as_slice().expect("standard layout"));
    let mut out = vec![T::zero(); batch * core];
    for i in 0..batch {
        let am = MatRef::from_row_major_slice(&af[i * m * n..(i + 1) * m * n], m, n);
        let bmat =
            bf.map(|bf| MatRef::from_row_major_slice(&bf[i * bm * bn..(i + 1) * bm * bn], bm, bn));
        let o = &mut out[i * core..(i + 1) * core];
        one(op, am, bmat, &shape[nd - 2..], o)?;
    }
    ArrayD::from_shape_vec(shape.to_vec(), out).map_err(|e| Error::Backend {
        backend: "cpu".into(),
        msg: format!("{}: {e}", op.name()),
    })
}

/// Writes `src` at row `row0` of the row-major matrix `o` of `width` columns.
fn put<T: Real>(o: &mut [T], width: usize, row0: usize, src: MatRef<'_, T>) {
    for i in 0..src.nrows() {
        for j in 0..src.ncols() {
            o[(row0 + i) * width + j] = src[(i, j)];
        }
    }
}

fn finite<T: Real>(a: MatRef<'_, T>) -> bool {
    (0..a.ncols()).all(|j| (0..a.nrows()).all(|i| a[(i, j)].is_finite()))
}

/// The determinant's sign and log-magnitude from a partial-pivoting LU.
fn slogdet<T: Real>(a: MatRef<'_, T>) -> (T, T) {
    let n = a.nrows();
    if n == 0 {
        return (T::one(), T::zero());
    }
    let lu = a.partial_piv_lu();
    let u = lu.U();
    let (fwd, _) = lu.P().arrays();
    // The permutation's parity: n minus its number of cycles.
    let mut seen = vec![false; n];
    let mut swaps = 0usize;
    for s in 0..n {
        let mut j = s;
        let mut len = 0usize;
        while !seen[j] {
            seen[j] = true;
            j = fwd[j];
            len += 1;
        }
        swaps += len.saturating_sub(1);
    }
    let mut sign = if swaps.is_multiple_of(2) {
        T::one()
    } else {
        -T::one()
    };
    let mut log = T::zero();
    for i in 0..n {
        let d = u[(i, i)];
        if d == T::zero() {
            return (T::zero(), T::neg_infinity());
        }
        if d.is_nan() {
            return (T::nan(), T::nan());
        }
        if d < T::zero() {
            sign = -sign;
        }
        log += d.abs().ln();
    }
    (sign, log)
}

fn one<T: Real>(
    op: DenseOp,
    a: MatRef<'_, T>,
    b: Option<MatRef<'_, T>>,
    core: &[usize],
    o: &mut [T],
) -> Result<()> {
    let (m, n) = (a.nrows(), a.ncols());
    let k = m.min(n);
    let width = core.last().copied().unwrap_or(1);
    match op {
        DenseOp::Qr { complete } => {
            let (mut q, mut r) = if k == 0 {
                let qc = if complete { m } else { 0 };
                (
                    Mat::<T>::identity(m, qc),
                    Mat::<T>::zeros(if complete { m } else { 0 }, n),
                )
            } else {
                let qr = a.qr();
                if complete {
                    (qr.compute_Q(), qr.R().to_owned())
                } else {
                    (qr.compute_thin_Q(), qr.thin_R().to_owned())
                }
            };
            // A non-negative diagonal of R: the factorization numpy's users can compare
            // across chunkings and backends (unique for a full-rank matrix).
            for i in 0..k {
                if r[(i, i)] < T::zero() {
                    for j in 0..n {
                        r[(i, j)] = -r[(i, j)];
                    }
                    for j in 0..m {
                        q[(j, i)] = -q[(j, i)];
                    }
                }
            }
            put(o, width, 0, q.as_ref());
            put(o, width, m, r.as_ref());
        }
        DenseOp::Svd { full } => {
            if !finite(a) {
                return Err(linalg_err(
                    op,
                    "SVD did not converge (the input is not finite)",
                ));
            }
            let svd = if full { a.svd() } else { a.thin_svd() }
                .map_err(|e| linalg_err(op, &format!("SVD did not converge ({e:?})")))?;
            put(o, width, 0, svd.U());
            let s = svd.S().column_vector();
            for i in 0..k {
                o[m * width + i] = s[i];
            }
            put(o, width, m + 1, svd.V().transpose());
        }
        DenseOp::SvdVals => {
            if !finite(a) {
                return Err(linalg_err(
                    op,
                    "SVD did not converge (the input is not finite)",
                ));
            }
            let s = a
                .singular_values()
                .map_err(|e| linalg_err(op, &format!("SVD did not converge ({e:?})")))?;
            o[..k].copy_from_slice(&s);
        }
        DenseOp::Cholesky { upper } => {
            let llt = a
                .llt(Side::Lower)
                .map_err(|_| linalg_err(op, "Matrix is not positive definite"))?;
            let l = llt.L();
            for i in 0..n {
                for j in 0..=i {
                    let (r, c) = if upper { (j, i) } else { (i, j) };
                    o[r * n + c] = l[(i, j)];
                }
            }
        }
        DenseOp::Eigh | DenseOp::EigvalsH => {
            if !finite(a) {
                return Err(linalg_err(
                    op,
                    "Eigenvalues did not converge (the input is not finite)",
                ));
            }
            if op == DenseOp::EigvalsH {
                let w = a.self_adjoint_eigenvalues(Side::Lower).map_err(|e| {
                    linalg_err(op, &format!("Eigenvalues did not converge ({e:?})"))
                })?;
                o[..n].copy_from_slice(&w);
            } else {
                let e = a.self_adjoint_eigen(Side::Lower).map_err(|e| {
                    linalg_err(op, &format!("Eigenvalues did not converge ({e:?})"))
                })?;
                let w = e.S().column_vector();
                for i in 0..n {
                    o[i] = w[i];
                }
                put(o, n, 1, e.U());
            }
        }
        DenseOp::Solve | DenseOp::Inv => {
            if n == 0 {
                return Ok(());
            }
            let lu = a.partial_piv_lu();
            let u = lu.U();
            if (0..n).any(|i| u[(i, i)] == T::zero()) {
                return Err(linalg_err(op, "Singular matrix"));
            }
            let x = match b {
                Some(b) => lu.solve(b),
                None => lu.inverse(),
            };
            put(o, width, 0, x.as_ref());
        }
        DenseOp::Det => {
            let (s, l) = slogdet(a);
            o[0] = s * l.exp();
        }
        DenseOp::Slogdet => {
            let (s, l) = slogdet(a);
            o[0] = s;
            o[1] = l;
        }
        DenseOp::TriSolve { lower, trans, left } => {
            let b = b.expect("two operands");
            // x t = b is t^T x^T = b^T.
            let (mut x, t_lower_eff, t) = if left {
                (
                    b.to_owned(),
                    lower != trans,
                    if trans { a.transpose() } else { a },
                )
            } else {
                (
                    b.transpose().to_owned(),
                    lower == trans,
                    if trans { a } else { a.transpose() },
                )
            };
            if t_lower_eff {
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                    t,
                    x.as_mut(),
                    Par::Seq,
                );
            } else {
                faer::linalg::triangular_solve::solve_upper_triangular_in_place(
                    t,
                    x.as_mut(),
                    Par::Seq,
                );
            }
            if left {
                put(o, width, 0, x.as_ref());
            } else {
                put(o, width, 0, x.as_ref().transpose());
            }
        }
    }
    Ok(())
}
