//! Reference results in f64 with plain ndarray code: no tiling, no chunks, no tessera kernels.
//! Each helper states numpy's semantics directly.

use ndarray::{ArrayD, Axis, Dimension, IxDyn};
use tessera::SliceArg;

/// `f` applied to every element.
pub fn map(a: &ArrayD<f64>, f: impl Fn(f64) -> f64) -> ArrayD<f64> {
    a.mapv(f)
}

/// numpy's broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// `f(a, b)` elementwise with numpy broadcasting.
pub fn zip(a: &ArrayD<f64>, b: &ArrayD<f64>, f: impl Fn(f64, f64) -> f64) -> ArrayD<f64> {
    let sh = IxDyn(&broadcast_shape(a.shape(), b.shape()).expect("reference operands broadcast"));
    let (av, bv) = (a.broadcast(sh.clone()).unwrap(), b.broadcast(sh).unwrap());
    ndarray::Zip::from(&av)
        .and(&bv)
        .map_collect(|&x, &y| f(x, y))
}

/// `f(c, a, b)` elementwise with numpy broadcasting of all three.
pub fn zip3(
    c: &ArrayD<f64>,
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    f: impl Fn(f64, f64, f64) -> f64,
) -> ArrayD<f64> {
    let s = broadcast_shape(c.shape(), a.shape()).unwrap();
    let sh = IxDyn(&broadcast_shape(&s, b.shape()).expect("reference operands broadcast"));
    let (cv, av, bv) = (
        c.broadcast(sh.clone()).unwrap(),
        a.broadcast(sh.clone()).unwrap(),
        b.broadcast(sh).unwrap(),
    );
    ndarray::Zip::from(&cv)
        .and(&av)
        .and(&bv)
        .map_collect(|&z, &x, &y| f(z, x, y))
}

/// A 0-d array holding `v`.
pub fn scalar(v: f64) -> ArrayD<f64> {
    ArrayD::from_elem(IxDyn(&[]), v)
}

/// numpy's `divmod` for floats: floor quotient and remainder with the sign of the divisor.
pub fn divmod(a: f64, b: f64) -> (f64, f64) {
    if b == 0.0 {
        return (a / b, f64::NAN);
    }
    let m = a % b; // exact
    let q = ((a - m) / b).round(); // the truncated quotient, an integer
    if m != 0.0 && (m < 0.0) != (b < 0.0) {
        (q - 1.0, m + b)
    } else {
        (q, m)
    }
}

/// numpy's maximum: NaN propagates.
pub fn maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// numpy's minimum: NaN propagates.
pub fn minimum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// numpy's sign: NaN stays NaN, zero is zero.
pub fn sign(x: f64) -> f64 {
    if x.is_nan() {
        x
    } else if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// A bool as 0/1.
pub fn b(v: bool) -> f64 {
    v as u8 as f64
}

/// Normalizes a possibly negative axis.
pub fn axis(a: isize, ndim: usize) -> usize {
    let x = if a < 0 { a + ndim as isize } else { a };
    assert!(
        x >= 0 && (x as usize) < ndim,
        "reference: axis {a} out of range for {ndim} dims"
    );
    x as usize
}

/// Normalized, sorted axes (`None`: all of them).
pub fn axes(list: Option<&[isize]>, ndim: usize) -> Vec<usize> {
    let mut v: Vec<usize> = match list {
        None => (0..ndim).collect(),
        Some(l) => l.iter().map(|&a| axis(a, ndim)).collect(),
    };
    v.sort_unstable();
    v
}

/// Reduces the lanes over `axes` with `f` (given the lane's values in row-major order).
pub fn reduce(
    a: &ArrayD<f64>,
    axes: &[usize],
    keepdims: bool,
    f: impl Fn(&[f64]) -> f64,
) -> ArrayD<f64> {
    let nd = a.ndim();
    let kept: Vec<usize> = (0..nd).filter(|x| !axes.contains(x)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let inner: usize = axes.iter().map(|&x| a.shape()[x]).product();
    let outer: usize = kept.iter().map(|&x| a.shape()[x]).product();
    let flat: Vec<f64> = a
        .view()
        .permuted_axes(IxDyn(&perm))
        .iter()
        .copied()
        .collect();
    let vals: Vec<f64> = (0..outer)
        .map(|o| f(&flat[o * inner..(o + 1) * inner]))
        .collect();
    let shape: Vec<usize> = if keepdims {
        (0..nd)
            .map(|x| if axes.contains(&x) { 1 } else { a.shape()[x] })
            .collect()
    } else {
        kept.iter().map(|&x| a.shape()[x]).collect()
    };
    ArrayD::from_shape_vec(IxDyn(&shape), vals).unwrap()
}

/// Sum of a lane.
pub fn sum(v: &[f64]) -> f64 {
    v.iter().sum()
}
/// Product of a lane.
pub fn prod(v: &[f64]) -> f64 {
    v.iter().product()
}
/// Mean of a lane (NaN when empty).
pub fn mean(v: &[f64]) -> f64 {
    sum(v) / v.len() as f64
}
/// Variance with `ddof`, two-pass.
pub fn var(v: &[f64], ddof: usize) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - ddof as f64)
}
/// Minimum (NaN propagates).
pub fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, minimum)
}
/// Maximum (NaN propagates).
pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, maximum)
}
/// Any non-zero (NaN counts as true).
pub fn any(v: &[f64]) -> f64 {
    b(v.iter().any(|&x| x != 0.0))
}
/// All non-zero.
pub fn all(v: &[f64]) -> f64 {
    b(v.iter().all(|&x| x != 0.0))
}
/// Index of the first minimum (the first NaN if any), numpy's argmin.
pub fn argmin(v: &[f64]) -> f64 {
    arg(v, |x, best| x < best)
}
/// Index of the first maximum (the first NaN if any), numpy's argmax.
pub fn argmax(v: &[f64]) -> f64 {
    arg(v, |x, best| x > best)
}
fn arg(v: &[f64], better: impl Fn(f64, f64) -> bool) -> f64 {
    if let Some(i) = v.iter().position(|x| x.is_nan()) {
        return i as f64;
    }
    let mut bi = 0;
    for (i, &x) in v.iter().enumerate() {
        if better(x, v[bi]) {
            bi = i;
        }
    }
    bi as f64
}

/// Row-major reshape.
pub fn reshape(a: &ArrayD<f64>, shape: &[usize]) -> ArrayD<f64> {
    let flat: Vec<f64> = a.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(shape), flat).unwrap()
}

/// Axis permutation (`out.axis(i) = a.axis(perm[i])`).
pub fn transpose(a: &ArrayD<f64>, perm: &[usize]) -> ArrayD<f64> {
    a.view().permuted_axes(IxDyn(perm)).to_owned()
}

/// The indices numpy's `start:stop:step` selects on an axis of length `len`.
pub fn slice_indices(
    start: Option<isize>,
    stop: Option<isize>,
    step: isize,
    len: usize,
) -> Vec<usize> {
    let n = len as isize;
    let wrap = |v: isize| if v < 0 { v + n } else { v };
    let mut out = Vec::new();
    if step > 0 {
        let s = start.map_or(0, |v| wrap(v).clamp(0, n));
        let e = stop.map_or(n, |v| wrap(v).clamp(0, n));
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i += step;
        }
    } else {
        let s = start.map_or(n - 1, |v| wrap(v).clamp(-1, n - 1));
        let e = stop.map_or(-1, |v| wrap(v).clamp(-1, n - 1));
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    out
}

/// numpy basic indexing.
pub fn slice(a: &ArrayD<f64>, args: &[SliceArg]) -> ArrayD<f64> {
    let consumed = args
        .iter()
        .filter(|x| matches!(x, SliceArg::Range { .. } | SliceArg::Index(_)))
        .count();
    let fill = a.ndim() - consumed;
    let mut full: Vec<SliceArg> = Vec::new();
    for &x in args {
        if x == SliceArg::Ellipsis {
            full.extend(std::iter::repeat_n(tessera::all(), fill));
        } else {
            full.push(x);
        }
    }
    if !args.contains(&SliceArg::Ellipsis) {
        full.extend(std::iter::repeat_n(tessera::all(), fill));
    }
    let mut out = a.clone();
    let mut ax = 0;
    for x in full {
        match x {
            SliceArg::NewAxis => {
                out = out.insert_axis(Axis(ax));
                ax += 1;
            }
            SliceArg::Index(i) => {
                let n = out.shape()[ax] as isize;
                let j = if i < 0 { i + n } else { i };
                out = out.index_axis(Axis(ax), j as usize).to_owned();
            }
            SliceArg::Range { start, stop, step } => {
                let idx = slice_indices(start, stop, step, out.shape()[ax]);
                out = select(&out, ax, &idx);
                ax += 1;
            }
            SliceArg::Ellipsis => unreachable!(),
        }
    }
    out
}

/// The elements at `idx` along `axis`, in that order.
fn select(a: &ArrayD<f64>, axis: usize, idx: &[usize]) -> ArrayD<f64> {
    let mut shape = a.shape().to_vec();
    shape[axis] = idx.len();
    ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        let mut j = i.slice().to_vec();
        j[axis] = idx[j[axis]];
        a[IxDyn(&j)]
    })
}

/// numpy's concatenate.
pub fn concatenate(parts: &[&ArrayD<f64>], axis: usize) -> ArrayD<f64> {
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(axis), &views).unwrap()
}

/// numpy's stack.
pub fn stack(parts: &[&ArrayD<f64>], axis: usize) -> ArrayD<f64> {
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::stack(Axis(axis), &views).unwrap()
}

/// numpy's matmul: 1-D operands promoted (and the added axis dropped), batch dims broadcast.
/// Triple loop, so integer results are exact.
pub fn matmul(a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
    let a2 = if a.ndim() == 1 {
        a.clone().insert_axis(Axis(0))
    } else {
        a.clone()
    };
    let b2 = if b.ndim() == 1 {
        b.clone().insert_axis(Axis(1))
    } else {
        b.clone()
    };
    let (na, nb) = (a2.ndim(), b2.ndim());
    let (m, k, n) = (a2.shape()[na - 2], a2.shape()[na - 1], b2.shape()[nb - 1]);
    assert_eq!(k, b2.shape()[nb - 2], "reference matmul: inner dims");
    let batch = broadcast_shape(&a2.shape()[..na - 2], &b2.shape()[..nb - 2])
        .expect("batch dims broadcast");
    let pick = |x: &ArrayD<f64>, bidx: &[usize], i: usize, j: usize| {
        let nbx = x.ndim() - 2;
        let off = batch.len() - nbx;
        let mut idx: Vec<usize> = (0..nbx)
            .map(|d| if x.shape()[d] == 1 { 0 } else { bidx[d + off] })
            .collect();
        idx.push(i);
        idx.push(j);
        x[IxDyn(&idx)]
    };
    let mut shape = batch.clone();
    shape.extend([m, n]);
    let out = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
        let ix = ix.slice();
        let (bidx, i, j) = (&ix[..batch.len()], ix[batch.len()], ix[batch.len() + 1]);
        (0..k)
            .map(|p| pick(&a2, bidx, i, p) * pick(&b2, bidx, p, j))
            .sum()
    });
    let mut final_shape = batch;
    if a.ndim() != 1 {
        final_shape.push(m);
    }
    if b.ndim() != 1 {
        final_shape.push(n);
    }
    reshape(&out, &final_shape)
}

/// numpy's tensordot over `axes_a` of `a` and `axes_b` of `b`, by loops over the summed
/// multi-index.
pub fn tensordot(
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    axes_a: &[isize],
    axes_b: &[isize],
) -> ArrayD<f64> {
    let aa: Vec<usize> = axes_a.iter().map(|&x| axis(x, a.ndim())).collect();
    let ab: Vec<usize> = axes_b.iter().map(|&x| axis(x, b.ndim())).collect();
    let free_a: Vec<usize> = (0..a.ndim()).filter(|x| !aa.contains(x)).collect();
    let free_b: Vec<usize> = (0..b.ndim()).filter(|x| !ab.contains(x)).collect();
    let summed: Vec<usize> = aa.iter().map(|&x| a.shape()[x]).collect();
    let shape: Vec<usize> = free_a
        .iter()
        .map(|&x| a.shape()[x])
        .chain(free_b.iter().map(|&x| b.shape()[x]))
        .collect();
    ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
        let ix = ix.slice();
        let mut ia = vec![0; a.ndim()];
        let mut ib = vec![0; b.ndim()];
        for (k, &x) in free_a.iter().enumerate() {
            ia[x] = ix[k];
        }
        for (k, &x) in free_b.iter().enumerate() {
            ib[x] = ix[free_a.len() + k];
        }
        let mut acc = 0.0;
        for s in ndarray::indices(IxDyn(&summed)) {
            for (k, &v) in s.slice().iter().enumerate() {
                ia[aa[k]] = v;
                ib[ab[k]] = v;
            }
            acc += a[IxDyn(&ia)] * b[IxDyn(&ib)];
        }
        acc
    })
}

/// numpy's dot.
pub fn dot(a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
    match (a.ndim(), b.ndim()) {
        (0, _) | (_, 0) => zip(a, b, |x, y| x * y),
        (_, 1) => tensordot(a, b, &[-1], &[0]),
        _ => tensordot(a, b, &[-1], &[-2]),
    }
}

/// numpy's `logaddexp`, as `m + ln(exp(x - m) + exp(y - m))` with `m = max(x, y)`.
pub fn logaddexp(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == y {
        // Both infinite of one sign included: inf + ln 2 = inf, -inf + ln 2 = -inf.
        return x + std::f64::consts::LN_2;
    }
    let m = x.max(y);
    if m == f64::INFINITY {
        return m;
    }
    m + ((x - m).exp() + (y - m).exp()).ln()
}

extern "C" {
    fn nextafter(x: f64, y: f64) -> f64;
    fn nextafterf(x: f32, y: f32) -> f32;
}

/// C's `nextafter` (numpy's `nextafter` for float64).
pub fn nextafter64(x: f64, y: f64) -> f64 {
    // SAFETY: libm's nextafter is a pure function of two doubles, defined for every input.
    unsafe { nextafter(x, y) }
}

/// C's `nextafterf` (numpy's `nextafter` for float32).
pub fn nextafter32(x: f32, y: f32) -> f32 {
    // SAFETY: libm's nextafterf is a pure function of two floats, defined for every input.
    unsafe { nextafterf(x, y) }
}
