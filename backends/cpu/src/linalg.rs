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

/// The R factor (`min(m, n)` by `n`, upper triangular, diagonal of any sign) of `a`'s QR, its
/// rows taken in blocks that stay in a core's cache: `R = qr([R; block]).R` block after block
/// (a flat TSQR tree inside the kernel). A tall-skinny QR done at once is Householder
/// reflections over columns as long as the matrix, each a pass over memory (`n` passes for
/// `n` columns); blocks of a few hundred rows read the matrix once.
fn tall_r<T: Real>(a: MatRef<'_, T>) -> Mat<T> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::qr::no_pivoting::factor as qrf;
    let (m, n) = (a.nrows(), a.ncols());
    // Block rows: the stack (`rows + n` by `n`) within about 128 KiB.
    let row_bytes = (n * std::mem::size_of::<T>()).max(1);
    let rows = ((128 << 10) / row_bytes).saturating_sub(n).max(n).max(16);
    if m <= rows + n {
        return a.qr().thin_R().to_owned();
    }
    let mut stack = Mat::<T>::zeros(rows + n, n);
    let bs = qrf::recommended_block_size::<T>(rows + n, n);
    let mut coeff = Mat::<T>::zeros(bs, n);
    let mut mem = MemBuffer::new(qrf::qr_in_place_scratch::<T>(
        rows + n,
        n,
        bs,
        Par::Seq,
        Default::default(),
    ));
    let mut k = 0;
    let mut r0 = 0;
    while r0 < m {
        let take = (m - r0).min(rows);
        for j in 0..n {
            for i in 0..take {
                stack[(k + i, j)] = a[(r0 + i, j)];
            }
        }
        let h = k + take;
        let kk = h.min(n);
        // Small and in cache: one thread (the chunks around it run in parallel).
        qrf::qr_in_place(
            stack.as_mut().subrows_mut(0, h),
            coeff.as_mut().subcols_mut(0, kk),
            Par::Seq,
            MemStack::new(&mut mem),
            Default::default(),
        );
        // R is the upper triangle of the top rows; the reflectors below it are dropped.
        for j in 0..kk {
            for i in j + 1..kk {
                stack[(i, j)] = T::zero();
            }
        }
        k = kk;
        r0 += take;
    }
    stack.as_ref().subrows(0, k).to_owned()
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
        DenseOp::QrR => {
            if k > 0 {
                let mut r = tall_r(a);
                for i in 0..k {
                    if r[(i, i)] < T::zero() {
                        for j in 0..n {
                            r[(i, j)] = -r[(i, j)];
                        }
                    }
                }
                put(o, width, 0, r.as_ref());
            }
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
            // A tall matrix's singular values are its R factor's.
            let r;
            let a = if m > 2 * n {
                r = tall_r(a);
                r.as_ref()
            } else {
                a
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache-blocked R of tall matrices (many blocks, a short last one) against the QR
    /// done at once: equal up to the signs of R's rows, to rounding; upper triangular.
    #[test]
    fn tall_r_matches_the_direct_qr() {
        fn check<T: Real + Into<f64>>(m: usize, n: usize, seed: u64) {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let a = Mat::<T>::from_fn(m, n, |_, _| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                T::from((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5).unwrap()
            });
            let blocked = tall_r(a.as_ref());
            let direct = a.qr().thin_R().to_owned();
            assert_eq!((blocked.nrows(), blocked.ncols()), (n, n));
            let eps: f64 = T::epsilon().into();
            let scale = (m as f64).sqrt();
            for i in 0..n {
                let s = if (blocked[(i, i)] < T::zero()) == (direct[(i, i)] < T::zero()) {
                    1.0
                } else {
                    -1.0
                };
                for j in 0..n {
                    let (b, d): (f64, f64) = (blocked[(i, j)].into(), direct[(i, j)].into());
                    if j < i {
                        assert_eq!(b, 0.0, "{m}x{n}: R below its diagonal");
                    }
                    assert!(
                        (s * b - d).abs() <= 64.0 * eps * scale * (n as f64),
                        "{m}x{n} R[{i},{j}]: {b} vs {d}"
                    );
                }
            }
        }
        check::<f64>(40_000, 7, 1);
        check::<f32>(9_001, 32, 2);
        check::<f64>(5_000, 64, 3);
    }
}
