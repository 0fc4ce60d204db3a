//! Searching and counting partials (`ChunkOp::SearchSortedPartial`, `BinCountPartial`,
//! `HistogramPartial`) and their combine (`PartsSum`). Order: numpy's sort order, NaN after
//! every number (all NaNs equal), `-0.0 == 0.0`.

use ndarray::{ArrayD, IxDyn, Zip};
use rayon::prelude::*;
use std::borrow::Cow;
use tessera_runtime::op::HistBins;
use tessera_runtime::{DType, Error, HostArray, Result};

/// `a < b` in numpy's sort order (NaN largest).
fn less(a: f64, b: f64) -> bool {
    a < b || (b.is_nan() && !a.is_nan())
}

/// Per element of `v`, the number of elements of the sorted 1-D `a` before it (`right`:
/// before or equal), by binary search; int64 of `v`'s shape. Both share one dtype.
pub fn searchsorted(a: &HostArray, v: &HostArray, right: bool) -> Result<HostArray> {
    fn go<T: Copy + Sync + Send>(
        a: &ArrayD<T>,
        v: &ArrayD<T>,
        right: bool,
        lt: fn(T, T) -> bool,
    ) -> ArrayD<i64> {
        // The sorted chunk is read in place (it is 1-D, so row-major unless a view).
        let owned: Vec<T>;
        let a = match a.as_slice() {
            Some(s) => s,
            None => {
                owned = a.iter().copied().collect();
                &owned
            }
        };
        let pos = |x: T| -> i64 {
            // left: the first element not before x; right: the first element after x.
            let p = if right {
                a.partition_point(|&e| !lt(x, e))
            } else {
                a.partition_point(|&e| lt(e, x))
            };
            p as i64
        };
        let mut out = ArrayD::<i64>::zeros(IxDyn(v.shape()));
        Zip::from(&mut out).and(v).par_for_each(|o, &x| *o = pos(x));
        out
    }
    Ok(HostArray::I64(match (a, v) {
        (HostArray::Bool(a), HostArray::Bool(v)) => go(a, v, right, |x, y| !x & y),
        (HostArray::I32(a), HostArray::I32(v)) => go(a, v, right, |x, y| x < y),
        (HostArray::I64(a), HostArray::I64(v)) => go(a, v, right, |x, y| x < y),
        (HostArray::F32(a), HostArray::F32(v)) => go(a, v, right, |x, y| less(x as f64, y as f64)),
        (HostArray::F64(a), HostArray::F64(v)) => go(a, v, right, less),
        _ => return Err(Error::dtype_unsupported("searchsorted", v.dtype())),
    }))
}

/// Counts (or sums of the f64 `weights`) of the values `offset..offset + len` of `x`; a value
/// outside `0..total` is an error.
pub fn bincount(
    x: &HostArray,
    weights: Option<&HostArray>,
    offset: usize,
    len: usize,
    total: usize,
) -> Result<HostArray> {
    let cast;
    let w = match weights {
        Some(HostArray::F64(a)) => Some(a),
        Some(other) => {
            cast = other.cast(DType::F64);
            cast.as_array::<f64>()
        }
        None => None,
    };
    let w = w.map(flat);
    let w = w.as_deref();
    match x {
        HostArray::I32(a) => count(flat(a).iter().map(|&v| v as i64), w, offset, len, total),
        HostArray::I64(a) => count(flat(a).iter().copied(), w, offset, len, total),
        HostArray::Bool(a) => count(flat(a).iter().map(|&v| v as i64), w, offset, len, total),
        other => Err(Error::dtype_unsupported("bincount", other.dtype())),
    }
}

/// The elements of `a` in row-major order: borrowed when it is laid out so (the usual case;
/// iterating a dynamic-rank array element by element costs several times a slice), else
/// copied.
fn flat<T: Clone>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

/// [`bincount`] over the values in order (read in place, no copy).
fn count(
    xs: impl Iterator<Item = i64>,
    w: Option<&[f64]>,
    offset: usize,
    len: usize,
    total: usize,
) -> Result<HostArray> {
    let bad = |v: i64| {
        Error::invalid_arg(
            "bincount",
            format!("value {v} outside 0..{total} (the data changed between its stages?)"),
        )
    };
    // One unsigned comparison each: a negative value wraps past `total`.
    let (total, offset, n) = (total as u64, offset as u64, len as u64);
    let slot = |v: i64| -> Result<Option<usize>> {
        let u = v as u64;
        if u >= total {
            return Err(bad(v));
        }
        let i = u.wrapping_sub(offset);
        Ok((i < n).then_some(i as usize))
    };
    match w {
        None => {
            let mut out = vec![0i64; len];
            for v in xs {
                if let Some(i) = slot(v)? {
                    out[i] += 1;
                }
            }
            Ok(HostArray::I64(
                ArrayD::from_shape_vec(IxDyn(&[len]), out).expect("len"),
            ))
        }
        Some(w) => {
            let mut out = vec![0f64; len];
            for (v, &wt) in xs.zip(w.iter()) {
                if let Some(i) = slot(v)? {
                    out[i] += wt;
                }
            }
            Ok(HostArray::F64(
                ArrayD::from_shape_vec(IxDyn(&[len]), out).expect("len"),
            ))
        }
    }
}

/// The bin of `x` (a value of the data, exact in f64), or `None` outside the edges; numpy's
/// `histogram` arithmetic (see [`HistBins`]).
fn bin_of(b: &HistBins, x: f64) -> Option<usize> {
    let e = |i: usize| b.edges[i].0;
    let n = b.edges.len() - 1;
    let Some((first, last)) = b.uniform.map(|(f, l)| (f.0, l.0)) else {
        // Explicit edges: the last edge not after x, the last bin closed on the right.
        if x.is_nan() || x < e(0) || x > e(n) {
            return None;
        }
        if x == e(n) {
            return Some(n - 1);
        }
        return Some(b.edges.partition_point(|v| v.0 <= x) - 1);
    };
    let fi = if b.single {
        let (f, l, xf) = (first as f32, last as f32, x as f32);
        if !(xf >= f && xf <= l) {
            return None;
        }
        let sub = xf - f;
        if b.wide_div {
            sub as f64 / (last - first) * n as f64
        } else {
            ((sub / (l - f)) * n as f32) as f64
        }
    } else {
        if !(x >= first && x <= last) {
            return None;
        }
        (x - first) / (last - first) * n as f64
    };
    // numpy's `astype(intp)` truncates; values on the last edge step back into the last bin,
    // then the index is corrected by one against the edges (the arithmetic may be an ulp off).
    let mut i = (fi as i64).clamp(0, n as i64 - 1) as usize;
    if i > 0 && x < e(i) {
        i -= 1;
    }
    if i != n - 1 && x >= e(i + 1) {
        i += 1;
    }
    Some(i)
}

/// Histogram counts (int64) or sums of the f64 `weights` of every element of `x`.
pub fn histogram(x: &HostArray, weights: Option<&HostArray>, b: &HistBins) -> HostArray {
    let n = b.edges.len() - 1;
    let xs = x.to_f64();
    match weights {
        None => {
            // Counts do not depend on the order elements are visited in.
            let owned: Vec<f64>;
            let flat = match xs.as_slice_memory_order() {
                Some(s) => s,
                None => {
                    owned = xs.iter().copied().collect();
                    &owned
                }
            };
            let out = flat
                .par_chunks(1 << 14)
                .map(|c| {
                    let mut h = vec![0i64; n];
                    for &v in c {
                        if let Some(i) = bin_of(b, v) {
                            h[i] += 1;
                        }
                    }
                    h
                })
                .reduce(
                    || vec![0i64; n],
                    |mut a, h| {
                        a.iter_mut().zip(h).for_each(|(x, y)| *x += y);
                        a
                    },
                );
            HostArray::I64(ArrayD::from_shape_vec(IxDyn(&[n]), out).expect("n"))
        }
        Some(w) => {
            // Weights pair with elements in logical (row-major) order.
            let w = w.to_f64();
            let (xs, w) = (flat(&xs), flat(&w));
            let mut out = vec![0f64; n];
            for (&v, &wt) in xs.iter().zip(w.iter()) {
                if let Some(i) = bin_of(b, v) {
                    out[i] += wt;
                }
            }
            HostArray::F64(ArrayD::from_shape_vec(IxDyn(&[n]), out).expect("n"))
        }
    }
}

/// The elementwise sum of same-shape int64 or float64 arrays.
pub fn parts_sum(parts: &[&HostArray]) -> Result<HostArray> {
    let mut acc = parts[0].clone();
    for p in &parts[1..] {
        match (&mut acc, p) {
            (HostArray::I64(a), HostArray::I64(b)) if a.shape() == b.shape() => *a += b,
            (HostArray::F64(a), HostArray::F64(b)) if a.shape() == b.shape() => *a += b,
            (HostArray::I32(a), HostArray::I32(b)) if a.shape() == b.shape() => {
                a.zip_mut_with(b, |x, &y| *x = x.wrapping_add(y))
            }
            (HostArray::F32(a), HostArray::F32(b)) if a.shape() == b.shape() => *a += b,
            (HostArray::Bool(a), HostArray::Bool(b)) if a.shape() == b.shape() => {
                a.zip_mut_with(b, |x, &y| *x |= y)
            }
            (a, b) => {
                return Err(Error::invalid_arg(
                    "parts_sum",
                    format!(
                        "parts {} {:?} and {} {:?} do not match",
                        a.dtype(),
                        a.shape(),
                        b.dtype(),
                        b.shape()
                    ),
                ))
            }
        }
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i64s(v: Vec<i64>) -> HostArray {
        let n = v.len();
        HostArray::I64(ArrayD::from_shape_vec(IxDyn(&[n]), v).expect("n"))
    }

    /// A value the first stage did not see (data changed under a lazy graph) is an error
    /// naming it, never a count dropped or written out of bounds.
    #[test]
    fn bincount_rejects_values_outside_the_planned_length() {
        let ok = bincount(&i64s(vec![0, 2, 2, 1]), None, 1, 2, 3).unwrap();
        assert_eq!(
            ok.to_f64().iter().copied().collect::<Vec<_>>(),
            vec![1.0, 2.0]
        );
        for bad in [3, -1, i64::MIN] {
            let e = bincount(&i64s(vec![0, bad]), None, 0, 3, 3).unwrap_err();
            assert!(e.to_string().contains(&bad.to_string()), "{e}");
        }
    }

    #[test]
    fn parts_sum_checks_its_parts() {
        let (a, b) = (i64s(vec![1, 2]), i64s(vec![3, 4]));
        let s = parts_sum(&[&a, &b, &a]).unwrap();
        assert_eq!(
            s.to_f64().iter().copied().collect::<Vec<_>>(),
            vec![5.0, 8.0]
        );
        assert!(parts_sum(&[&a, &i64s(vec![1])]).is_err());
    }
}
