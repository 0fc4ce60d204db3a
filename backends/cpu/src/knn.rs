//! `ChunkOp::KnnPartial`: brute-force k nearest neighbours of a block of queries among a block
//! of data rows, with the GEMM fused with the selection. Queries go in panels of `QP` rows (one
//! rayon task each) and data in panels of a few hundred rows: each panel pair's cross products
//! come from faer into a small tile that stays in cache, become squared distances in place, and
//! are reduced at once against each query's current k-th best, so the distance matrix is never
//! written out. Most distances cost one vector comparison: a run of 16 is looked at one by one
//! only when one of them beats the k-th best.

use ndarray::{ArrayD, ArrayView2, Ix2, IxDyn};
use rayon::prelude::*;
use tessera_runtime::{Elem, Error, HostArray, Result};

/// Most queries per panel (one rayon task; the k best of each kept in a small sorted list):
/// 256 against 512-row data panels ran the whole at the GEMM's own rate (BENCHMARKS.md).
const QP: usize = 256;
/// Bytes of data rows per panel: the panel and its tile of `QP` distances per row stay in L2.
const PANEL_BYTES: usize = 128 << 10;
/// Distances compared per block before any is looked at alone.
const BLOCK: usize = 16;

/// The k nearest rows of `x` (data, nb x d) to each row of `y` (queries, mb x d): the squared
/// distances (mb x min(k, nb)) and their positions (`offset` + the row), nearest first (NaN
/// last; ties to the lower row), as a top-k partial of the distance matrix.
///
/// # Errors
/// Operands that are not 2-D float32 or float64 of one dtype with equal row lengths (a
/// planning error: the Tiler makes them so).
pub fn knn_partial(
    x: &HostArray,
    y: &HostArray,
    k: usize,
    offset: usize,
) -> Result<Vec<HostArray>> {
    let bad = || Error::Backend {
        backend: "cpu".into(),
        msg: format!(
            "knn_partial: data {} {:?} and queries {} {:?} must be 2-D float32 or float64 of one \
             dtype with equal row lengths",
            x.dtype(),
            x.shape(),
            y.dtype(),
            y.shape()
        ),
    };
    match (x, y) {
        (HostArray::F32(a), HostArray::F32(b)) => {
            let (v, p) = run(a, b, k, offset).ok_or_else(bad)?;
            Ok(vec![HostArray::F32(v), HostArray::I64(p)])
        }
        (HostArray::F64(a), HostArray::F64(b)) => {
            let (v, p) = run(a, b, k, offset).ok_or_else(bad)?;
            Ok(vec![HostArray::F64(v), HostArray::I64(p)])
        }
        _ => Err(bad()),
    }
}

/// `v` comes before `w` in the selection's order (NaN last; equal values keep their order).
#[inline(always)]
fn beats<T: PartialOrd>(v: T, w: T) -> bool {
    #[allow(clippy::eq_op)]
    let (v_nan, w_nan) = (v != v, w != w);
    v < w || (w_nan && !v_nan)
}

/// Inserts `(v, pos)` into the sorted list `best` (at most `kk` long) when it belongs there; a
/// later position loses ties, so it goes after every equal value.
#[inline]
fn offer<T: PartialOrd + Copy>(best: &mut Vec<(T, i64)>, kk: usize, v: T, pos: i64) {
    if best.len() == kk {
        if !beats(v, best[kk - 1].0) {
            return;
        }
        best.pop();
    }
    let i = best.partition_point(|b| !beats(v, b.0));
    best.insert(i, (v, pos));
}

/// Offers a row of distances (positions `base`, `base + 1`, ...) to `best`.
fn scan<T: PartialOrd + Copy>(row: &[T], best: &mut Vec<(T, i64)>, kk: usize, base: i64) {
    let mut j = 0;
    while best.len() < kk && j < row.len() {
        offer(best, kk, row[j], base + j as i64);
        j += 1;
    }
    if kk == 0 {
        return;
    }
    for (b, blk) in row[j..].chunks(BLOCK).enumerate() {
        let w = best[kk - 1].0;
        #[allow(clippy::eq_op)]
        let w_nan = w != w;
        // Without NaN at the k-th place, a distance enters only when it is smaller: one
        // branch-free pass over the block first (vectorized), most blocks end there.
        if !w_nan && !blk.iter().fold(false, |a, &v| a | (v < w)) {
            continue;
        }
        let at = base + (j + b * BLOCK) as i64;
        for (i, &v) in blk.iter().enumerate() {
            offer(best, kk, v, at + i as i64);
        }
    }
}

/// Sums of squares of the rows (products rounded to the dtype, summed in f64, as
/// `(x * x).sum(1)` computes them).
fn row_norms<T>(a: &ArrayView2<T>) -> Vec<T>
where
    T: Elem + std::ops::Mul<Output = T>,
{
    a.rows()
        .into_iter()
        .map(|r| T::from_f64(r.iter().map(|&v| (v * v).to_f64()).sum::<f64>()))
        .collect()
}

type Selected<T> = (ArrayD<T>, ArrayD<i64>);

fn run<T>(x: &ArrayD<T>, y: &ArrayD<T>, k: usize, offset: usize) -> Option<Selected<T>>
where
    T: Elem + faer::traits::RealField + num_traits::One + std::ops::Mul<Output = T>,
    T: std::ops::Sub<Output = T> + std::ops::Add<Output = T>,
{
    let x = x.view().into_dimensionality::<Ix2>().ok()?;
    let y = y.view().into_dimensionality::<Ix2>().ok()?;
    let ((n, d), (m, dy)) = (x.dim(), y.dim());
    if d != dy {
        return None;
    }
    // Row-major operands (chunks usually are already: then nothing is copied).
    let x = x.as_standard_layout();
    let y = y.as_standard_layout();
    let (xx, yy) = (row_norms(&x.view()), row_norms(&y.view()));
    let kk = k.min(n);
    let dp = (PANEL_BYTES / (d.max(1) * std::mem::size_of::<T>())).clamp(32, 1024);
    let mut ov = vec![T::default(); m * kk];
    let mut op = vec![0i64; m * kk];
    let two = T::from_f64(2.0);
    let zero = T::default();
    // Fewer queries per panel when there are few: every thread gets panels.
    let qp = m.div_ceil(4 * rayon::current_num_threads()).clamp(8, QP);
    if kk > 0 && m > 0 {
        ov.par_chunks_mut(qp * kk)
            .zip(op.par_chunks_mut(qp * kk))
            .enumerate()
            .for_each(|(pi, (ov, op))| {
                let q0 = pi * qp;
                let qn = (m - q0).min(qp);
                let yp = y.slice(ndarray::s![q0..q0 + qn, ..]);
                let mut best: Vec<Vec<(T, i64)>> =
                    (0..qn).map(|_| Vec::with_capacity(kk + 1)).collect();
                let mut tile = vec![T::default(); qn * dp];
                for j0 in (0..n).step_by(dp) {
                    let jn = (n - j0).min(dp);
                    let xp = x.slice(ndarray::s![j0..j0 + jn, ..]);
                    let mut c = ndarray::ArrayViewMut2::from_shape((qn, jn), &mut tile[..qn * jn])
                        .expect("the tile holds qn x jn");
                    // One thread per panel pair: the parallelism is over query panels.
                    crate::gemm::gemm_seq(&yp, &xp.t(), &mut c);
                    let xs = &xx[j0..j0 + jn];
                    for (q, b) in best.iter_mut().enumerate() {
                        let row = &mut tile[q * jn..(q + 1) * jn];
                        let yq = yy[q0 + q];
                        for (v, &xj) in row.iter_mut().zip(xs) {
                            // As `max(yy - cross * 2 + xx, 0)`: rounding below zero clamped,
                            // NaN kept.
                            let s = (yq - *v * two) + xj;
                            *v = if s < zero { zero } else { s };
                        }
                        scan(row, b, kk, (offset + j0) as i64);
                    }
                }
                for (q, b) in best.iter().enumerate() {
                    for (i, &(v, p)) in b.iter().enumerate() {
                        ov[q * kk + i] = v;
                        op[q * kk + i] = p;
                    }
                }
            });
    }
    let v = ArrayD::from_shape_vec(IxDyn(&[m, kk]), ov).ok()?;
    let p = ArrayD::from_shape_vec(IxDyn(&[m, kk]), op).ok()?;
    Some((v, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distances and positions against a direct f64 computation, with NaN rows, ties and
    /// blocks longer than one panel.
    #[test]
    fn matches_direct_selection() {
        let (n, m, d) = (3000usize, 70usize, 7usize);
        let mut s = 0x9e37_79b9_u64;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let mut x: Vec<f64> = (0..n * d).map(|_| rnd()).collect();
        // Ties: row 10 repeated at 2000; a NaN row.
        for c in 0..d {
            x[2000 * d + c] = x[10 * d + c];
            x[500 * d + c] = f64::NAN;
        }
        let y: Vec<f64> = (0..m * d).map(|_| rnd()).collect();
        let xa = HostArray::F64(ArrayD::from_shape_vec(IxDyn(&[n, d]), x.clone()).unwrap());
        let ya = HostArray::F64(ArrayD::from_shape_vec(IxDyn(&[m, d]), y.clone()).unwrap());
        for k in [1usize, 5, n] {
            let out = knn_partial(&xa, &ya, k, 100).unwrap();
            let (HostArray::F64(v), HostArray::I64(p)) = (&out[0], &out[1]) else {
                panic!("dtypes")
            };
            assert_eq!(v.shape(), &[m, k]);
            for q in 0..m {
                let mut truth: Vec<(f64, usize)> = (0..n)
                    .map(|r| {
                        let s: f64 = (0..d).map(|c| (y[q * d + c] - x[r * d + c]).powi(2)).sum();
                        (s, r)
                    })
                    .collect();
                // NaN last, then value, then row.
                truth.sort_by(|a, b| {
                    a.0.is_nan()
                        .cmp(&b.0.is_nan())
                        .then(a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))
                        .then(a.1.cmp(&b.1))
                });
                for j in 0..k {
                    let (tv, tr) = truth[j];
                    let (gv, gr) = (v[[q, j]], p[[q, j]]);
                    if tv.is_nan() {
                        assert!(gv.is_nan(), "query {q} rank {j}: {gv} for NaN");
                        assert_eq!(
                            gr,
                            (tr + 100) as i64,
                            "query {q} rank {j}: NaN rows in order"
                        );
                        continue;
                    }
                    assert!((gv - tv).abs() <= 1e-12, "query {q} rank {j}: {gv} vs {tv}");
                    let r = (gr - 100) as usize;
                    let rv = truth.iter().find(|t| t.1 == r).unwrap().0;
                    assert!((rv - tv).abs() <= 1e-12, "query {q} rank {j}: row {r}");
                }
                if k >= 12 {
                    // The tie: both rows present, the lower one first.
                    let a = (0..k).position(|j| p[[q, j]] == 110);
                    let b = (0..k).position(|j| p[[q, j]] == 2100);
                    if let (Some(a), Some(b)) = (a, b) {
                        assert!(a < b, "query {q}: tie order");
                    }
                }
            }
        }
        // Mismatched operands are a typed error.
        let bad = HostArray::F32(ArrayD::zeros(IxDyn(&[3, d])));
        assert!(knn_partial(&bad, &ya, 1, 0).is_err());
    }
}
