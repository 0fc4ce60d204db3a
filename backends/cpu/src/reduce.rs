//! Reduction kernels: per-chunk partials, tree combine, finalize; argmin/argmax.
//! Float partials accumulate in f64 (var/std as mean and M2, merged by Chan's formula).

use ndarray::{ArrayD, Axis, IxDyn};
use rayon::prelude::*;
use tessera_runtime::op::{ArgOp, ReduceOp};
use tessera_runtime::{on_array, DType, Elem, Error, HostArray, Result};

use std::borrow::Cow;

/// Splits `x` into rows: kept axes first (outer), reduced axes last (inner), contiguous.
fn rows<'a, T: Elem>(x: &'a ArrayD<T>, axes: &[usize]) -> (Cow<'a, [T]>, usize, usize, Vec<usize>) {
    let nd = x.ndim();
    let kept: Vec<usize> = (0..nd).filter(|a| !axes.contains(a)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let inner: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let outer: usize = kept.iter().map(|&a| x.shape()[a]).product();
    let mut kshape = x.shape().to_vec();
    for &a in axes {
        kshape[a] = 1;
    }
    let v = x.view().permuted_axes(IxDyn(&perm));
    let data: Cow<'a, [T]> = match v.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(v.iter().copied().collect()),
    };
    (data, outer, inner, kshape)
}

/// Reduces every row of length `inner` with `f`, parallel over rows or within one long row.
fn per_row<T: Elem, A: Send + Copy>(
    data: &[T],
    outer: usize,
    inner: usize,
    f: impl Fn(&[T]) -> A + Sync,
    merge: impl Fn(A, A) -> A + Sync,
    empty: A,
) -> Vec<A> {
    if inner == 0 {
        return vec![empty; outer];
    }
    if outer == 1 && inner > (1 << 16) {
        let parts: Vec<A> = data.par_chunks(1 << 15).map(&f).collect();
        return vec![parts.into_iter().reduce(&merge).expect("non-empty")];
    }
    data.par_chunks(inner).map(&f).collect()
}

fn sum_f64<T: Elem>(s: &[T]) -> f64 {
    // Four lanes keep the dependency chain short; blocks of 32K keep error growth small.
    let mut acc = [0.0f64; 4];
    let mut it = s.chunks_exact(4);
    for c in &mut it {
        for k in 0..4 {
            acc[k] += c[k].to_f64();
        }
    }
    let tail: f64 = it.remainder().iter().map(|v| v.to_f64()).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// (count, mean, M2) of a slice, two-pass for accuracy.
fn moments<T: Elem>(s: &[T]) -> (f64, f64, f64) {
    let n = s.len() as f64;
    if s.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mean = sum_f64(s) / n;
    let m2 = s.iter().map(|v| (v.to_f64() - mean).powi(2)).sum();
    (n, mean, m2)
}

/// Chan et al.'s parallel merge of (count, mean, M2).
pub fn merge_moments(a: (f64, f64, f64), b: (f64, f64, f64)) -> (f64, f64, f64) {
    let n = a.0 + b.0;
    if n == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let d = b.1 - a.1;
    (n, a.1 + d * b.0 / n, a.2 + b.2 + d * d * a.0 * b.0 / n)
}

fn better<T: Elem>(op: ArgOp, cand: T, best: T) -> bool {
    let nan = |v: T| v.partial_cmp(&v).is_none();
    if nan(best) {
        return false;
    }
    if nan(cand) {
        return true;
    }
    match op {
        ArgOp::ArgMin => cand < best,
        ArgOp::ArgMax => cand > best,
    }
}

fn extreme<T: Elem>(max: bool, a: T, b: T) -> T {
    let nan = |v: T| v.partial_cmp(&v).is_none();
    if nan(a) {
        return a;
    }
    if nan(b) {
        return b;
    }
    if (b > a) == max && b != a {
        b
    } else {
        a
    }
}

fn shaped<T: Elem>(v: Vec<T>, shape: &[usize]) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("partial shape")
}

fn partial_typed<T: Elem>(op: ReduceOp, x: &ArrayD<T>, axes: &[usize]) -> Vec<HostArray> {
    let (data, outer, inner, ks) = rows(x, axes);
    match op {
        ReduceOp::Mean => vec![shaped(
            per_row(&data, outer, inner, sum_f64, |a, b| a + b, 0.0),
            &ks,
        )
        .into()],
        ReduceOp::Sum if T::DTYPE.is_float() => {
            vec![shaped(
                per_row(&data, outer, inner, sum_f64, |a, b| a + b, 0.0),
                &ks,
            )
            .into()]
        }
        ReduceOp::Sum => {
            let f = |s: &[T]| s.iter().fold(0i64, |a, v| a.wrapping_add(v.to_i64()));
            vec![shaped(per_row(&data, outer, inner, f, i64::wrapping_add, 0), &ks).into()]
        }
        ReduceOp::Prod if T::DTYPE.is_float() => {
            let f = |s: &[T]| s.iter().fold(1.0f64, |a, v| a * v.to_f64());
            vec![shaped(per_row(&data, outer, inner, f, |a, b| a * b, 1.0), &ks).into()]
        }
        ReduceOp::Prod => {
            let f = |s: &[T]| s.iter().fold(1i64, |a, v| a.wrapping_mul(v.to_i64()));
            vec![shaped(per_row(&data, outer, inner, f, i64::wrapping_mul, 1), &ks).into()]
        }
        ReduceOp::Var | ReduceOp::Std => {
            let m = per_row(&data, outer, inner, moments, merge_moments, (0.0, 0.0, 0.0));
            vec![
                shaped(m.iter().map(|p| p.1).collect(), &ks).into(),
                shaped(m.iter().map(|p| p.2).collect(), &ks).into(),
            ]
        }
        ReduceOp::Min | ReduceOp::Max => {
            let max = op == ReduceOp::Max;
            let f = |s: &[T]| {
                s.iter()
                    .copied()
                    .reduce(|a, b| extreme(max, a, b))
                    .expect("non-empty")
            };
            vec![T::wrap(shaped(
                per_row(
                    &data,
                    outer,
                    inner,
                    f,
                    |a, b| extreme(max, a, b),
                    T::default(),
                ),
                &ks,
            ))]
        }
        ReduceOp::Any => {
            let f = |s: &[T]| s.iter().any(|v| v.to_bool());
            vec![shaped(per_row(&data, outer, inner, f, |a, b| a | b, false), &ks).into()]
        }
        ReduceOp::All => {
            let f = |s: &[T]| s.iter().all(|v| v.to_bool());
            vec![shaped(per_row(&data, outer, inner, f, |a, b| a & b, true), &ks).into()]
        }
    }
}

/// The partial of one chunk.
pub fn partial(op: ReduceOp, x: &HostArray, axes: &[usize]) -> Vec<HostArray> {
    on_array!(x, a => partial_typed(op, a, axes))
}

fn zip_fold<T: Elem>(inputs: &[&HostArray], f: impl Fn(T, T) -> T) -> Result<ArrayD<T>> {
    let mut acc = inputs[0]
        .as_array::<T>()
        .ok_or_else(|| Error::dtype_unsupported("combine", inputs[0].dtype()))?
        .clone();
    for x in &inputs[1..] {
        let x = x
            .as_array::<T>()
            .ok_or_else(|| Error::dtype_unsupported("combine", x.dtype()))?;
        acc.zip_mut_with(x, |a, &b| *a = f(*a, b));
    }
    Ok(acc)
}

/// Combines partials (each a list of fields) of equal shape, in order.
pub fn combine(op: ReduceOp, parts: &[&Vec<HostArray>], counts: &[f64]) -> Result<Vec<HostArray>> {
    let first: Vec<&HostArray> = parts.iter().map(|p| &p[0]).collect();
    Ok(match op {
        ReduceOp::Sum | ReduceOp::Mean => match first[0].dtype() {
            DType::F64 => vec![zip_fold::<f64>(&first, |a, b| a + b)?.into()],
            _ => vec![zip_fold::<i64>(&first, i64::wrapping_add)?.into()],
        },
        ReduceOp::Prod => match first[0].dtype() {
            DType::F64 => vec![zip_fold::<f64>(&first, |a, b| a * b)?.into()],
            _ => vec![zip_fold::<i64>(&first, i64::wrapping_mul)?.into()],
        },
        ReduceOp::Any => vec![zip_fold::<bool>(&first, |a, b| a | b)?.into()],
        ReduceOp::All => vec![zip_fold::<bool>(&first, |a, b| a & b)?.into()],
        ReduceOp::Min | ReduceOp::Max => {
            let max = op == ReduceOp::Max;
            fn go<T: Elem>(xs: &[&HostArray], max: bool) -> Result<HostArray> {
                Ok(T::wrap(zip_fold::<T>(xs, |a, b| extreme(max, a, b))?))
            }
            vec![match first[0].dtype() {
                DType::Bool => go::<bool>(&first, max)?,
                DType::I32 => go::<i32>(&first, max)?,
                DType::I64 => go::<i64>(&first, max)?,
                DType::F32 => go::<f32>(&first, max)?,
                DType::F64 => go::<f64>(&first, max)?,
            }]
        }
        ReduceOp::Var | ReduceOp::Std => {
            let means: Vec<&ArrayD<f64>> = parts
                .iter()
                .map(|p| p[0].as_array::<f64>().expect("f64 mean"))
                .collect();
            let m2s: Vec<&ArrayD<f64>> = parts
                .iter()
                .map(|p| p[1].as_array::<f64>().expect("f64 m2"))
                .collect();
            let mut mean = means[0].clone();
            let mut m2 = m2s[0].clone();
            for i in 0..mean.len() {
                let mut acc = (
                    counts[0],
                    means[0].as_slice().expect("contiguous")[i],
                    m2s[0].as_slice().expect("contiguous")[i],
                );
                for k in 1..parts.len() {
                    acc = merge_moments(
                        acc,
                        (
                            counts[k],
                            means[k].as_slice().expect("contiguous")[i],
                            m2s[k].as_slice().expect("contiguous")[i],
                        ),
                    );
                }
                mean.as_slice_mut().expect("contiguous")[i] = acc.1;
                m2.as_slice_mut().expect("contiguous")[i] = acc.2;
            }
            vec![mean.into(), m2.into()]
        }
    })
}

/// The result of a reduction from its combined partial.
pub fn finalize(
    op: ReduceOp,
    p: &[HostArray],
    count: f64,
    ddof: u32,
    shape: &[usize],
    dtype: DType,
) -> HostArray {
    let out = match op {
        ReduceOp::Mean => HostArray::F64(p[0].to_f64().mapv(|s| s / count)),
        ReduceOp::Var | ReduceOp::Std => {
            let denom = (count - ddof as f64).max(0.0);
            let v = p[1].to_f64().mapv(|m2| m2 / denom);
            HostArray::F64(if op == ReduceOp::Std {
                v.mapv(f64::sqrt)
            } else {
                v
            })
        }
        _ => p[0].clone(),
    };
    out.cast(dtype).reshape(shape)
}

/// argmin/argmax partial: (value, global index) along `axis`, kept as size 1.
pub fn arg_partial(op: ArgOp, x: &HostArray, axis: usize, offset: usize) -> Vec<HostArray> {
    fn go<T: Elem>(op: ArgOp, x: &ArrayD<T>, axis: usize, offset: usize) -> Vec<HostArray> {
        let (data, outer, inner, ks) = rows(x, &[axis]);
        let best: Vec<(T, i64)> = data
            .par_chunks(inner.max(1))
            .take(outer)
            .map(|row| {
                let mut b = (row[0], 0usize);
                for (i, &v) in row.iter().enumerate().skip(1) {
                    if better(op, v, b.0) {
                        b = (v, i);
                    }
                }
                (b.0, (b.1 + offset) as i64)
            })
            .collect();
        vec![
            T::wrap(shaped(best.iter().map(|b| b.0).collect(), &ks)),
            shaped(best.iter().map(|b| b.1).collect(), &ks).into(),
        ]
    }
    on_array!(x, a => go(op, a, axis, offset))
}

/// Combines arg partials given in axis order.
pub fn arg_combine(op: ArgOp, parts: &[&Vec<HostArray>]) -> Vec<HostArray> {
    fn go<T: Elem>(op: ArgOp, parts: &[&Vec<HostArray>]) -> Vec<HostArray> {
        let mut val = parts[0][0].as_array::<T>().expect("value field").clone();
        let mut idx = parts[0][1].as_array::<i64>().expect("index field").clone();
        for p in &parts[1..] {
            let v = p[0].as_array::<T>().expect("value field");
            let ix = p[1].as_array::<i64>().expect("index field");
            ndarray::Zip::from(&mut val)
                .and(&mut idx)
                .and(v)
                .and(ix)
                .for_each(|bv, bi, &cv, &ci| {
                    if better(op, cv, *bv) {
                        *bv = cv;
                        *bi = ci;
                    }
                });
        }
        vec![T::wrap(val), idx.into()]
    }
    match parts[0][0].dtype() {
        DType::Bool => go::<bool>(op, parts),
        DType::I32 => go::<i32>(op, parts),
        DType::I64 => go::<i64>(op, parts),
        DType::F32 => go::<f32>(op, parts),
        DType::F64 => go::<f64>(op, parts),
    }
}

/// The index field with `axis` removed.
pub fn arg_final(p: &[HostArray], axis: usize) -> HostArray {
    let idx = p[1].as_array::<i64>().expect("index field");
    HostArray::I64(idx.index_axis(Axis(axis), 0).to_owned())
}
