//! Reduction kernels: per-chunk partials, tree combine, finalize; argmin/argmax.
//!
//! A row (the reduced elements behind one output element) is cut into blocks of `BLOCK`
//! elements; each block gives an accumulator and the blocks are merged left to right. The fused
//! kernels use the very same blocks and merges, so fused and unfused runs give the same bits
//! whatever the thread count. Float partials accumulate in f64 (var/std as count, mean and M2,
//! merged by Chan's formula).

use crate::shaped;
use ndarray::{ArrayD, Axis, IxDyn};
use rayon::prelude::*;
use std::borrow::Cow;
use tessera_runtime::ir::ReduceKind;
use tessera_runtime::op::{ArgOp, ReduceOp};
use tessera_runtime::{on_array, DType, Elem, Error, HostArray, Result};

/// Elements per block (a few thousand: stays in L1/L2 while a fused kernel evaluates it).
pub const BLOCK: usize = 4096;

/// The running state of one reduction.
#[derive(Clone, Copy, Debug)]
pub enum Acc<T> {
    /// f64 sum or product.
    F(f64),
    /// i64 (wrapping) sum or product.
    I(i64),
    /// count, mean, M2.
    M(f64, f64, f64),
    /// min or max value.
    V(T),
    /// any or all.
    B(bool),
    /// arg: best value and its index.
    A(T, u64),
}

fn is_nan<T: Elem>(v: T) -> bool {
    v.partial_cmp(&v).is_none()
}

fn better<T: Elem>(op: ArgOp, cand: T, best: T) -> bool {
    if is_nan(best) {
        return false;
    }
    if is_nan(cand) {
        return true;
    }
    match op {
        ArgOp::ArgMin => cand < best,
        ArgOp::ArgMax => cand > best,
    }
}

fn extreme<T: Elem>(max: bool, a: T, b: T) -> T {
    if is_nan(a) {
        return a;
    }
    if is_nan(b) {
        return b;
    }
    if (b > a) == max && b != a {
        b
    } else {
        a
    }
}

fn sum_f64<T: Elem>(s: &[T]) -> f64 {
    // Four lanes keep the dependency chain short.
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

/// Chan et al.'s parallel merge of (count, mean, M2).
pub fn merge_moments(a: (f64, f64, f64), b: (f64, f64, f64)) -> (f64, f64, f64) {
    let n = a.0 + b.0;
    if n == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let d = b.1 - a.1;
    (n, a.1 + d * b.0 / n, a.2 + b.2 + d * d * a.0 * b.0 / n)
}

fn float_acc(kind: ReduceKind, t: DType) -> bool {
    matches!(kind, ReduceKind::Reduce(ReduceOp::Mean)) || t.is_float()
}

/// The accumulator of one block; `first` is the index (within the row) of `vals[0]`.
pub fn block_acc<T: Elem>(kind: ReduceKind, vals: &[T], first: u64) -> Acc<T> {
    match kind {
        ReduceKind::Reduce(op) => match op {
            ReduceOp::Sum | ReduceOp::Mean if float_acc(kind, T::DTYPE) => Acc::F(sum_f64(vals)),
            ReduceOp::Sum | ReduceOp::Mean => {
                Acc::I(vals.iter().fold(0i64, |a, v| a.wrapping_add(v.to_i64())))
            }
            ReduceOp::Prod if T::DTYPE.is_float() => {
                Acc::F(vals.iter().fold(1.0, |a, v| a * v.to_f64()))
            }
            ReduceOp::Prod => Acc::I(vals.iter().fold(1i64, |a, v| a.wrapping_mul(v.to_i64()))),
            ReduceOp::Var | ReduceOp::Std => {
                let n = vals.len() as f64;
                let mean = sum_f64(vals) / n;
                Acc::M(
                    n,
                    mean,
                    vals.iter().map(|v| (v.to_f64() - mean).powi(2)).sum(),
                )
            }
            ReduceOp::Min | ReduceOp::Max => {
                let max = op == ReduceOp::Max;
                Acc::V(
                    vals.iter()
                        .copied()
                        .reduce(|a, b| extreme(max, a, b))
                        .expect("blocks are non-empty"),
                )
            }
            ReduceOp::Any => Acc::B(vals.iter().any(|v| v.to_bool())),
            ReduceOp::All => Acc::B(vals.iter().all(|v| v.to_bool())),
        },
        ReduceKind::Arg(op) => {
            let mut b = (vals[0], 0usize);
            for (i, &v) in vals.iter().enumerate().skip(1) {
                if better(op, v, b.0) {
                    b = (v, i);
                }
            }
            Acc::A(b.0, first + b.1 as u64)
        }
    }
}

/// The accumulator of an empty row.
fn empty_acc<T: Elem>(kind: ReduceKind, t: DType) -> Acc<T> {
    match kind {
        ReduceKind::Reduce(ReduceOp::Prod) if t.is_float() => Acc::F(1.0),
        ReduceKind::Reduce(ReduceOp::Prod) => Acc::I(1),
        ReduceKind::Reduce(ReduceOp::Var | ReduceOp::Std) => Acc::M(0.0, 0.0, 0.0),
        ReduceKind::Reduce(ReduceOp::Any) => Acc::B(false),
        ReduceKind::Reduce(ReduceOp::All) => Acc::B(true),
        _ if float_acc(kind, t) => Acc::F(0.0),
        _ => Acc::I(0),
    }
}

/// Merges two accumulators, `a` before `b` in the row.
pub fn merge<T: Elem>(kind: ReduceKind, a: Acc<T>, b: Acc<T>) -> Acc<T> {
    match (a, b) {
        (Acc::F(x), Acc::F(y)) => Acc::F(if kind == ReduceKind::Reduce(ReduceOp::Prod) {
            x * y
        } else {
            x + y
        }),
        (Acc::I(x), Acc::I(y)) => Acc::I(if kind == ReduceKind::Reduce(ReduceOp::Prod) {
            x.wrapping_mul(y)
        } else {
            x.wrapping_add(y)
        }),
        (Acc::M(n1, m1, q1), Acc::M(n2, m2, q2)) => {
            let (n, m, q) = merge_moments((n1, m1, q1), (n2, m2, q2));
            Acc::M(n, m, q)
        }
        (Acc::V(x), Acc::V(y)) => Acc::V(extreme(kind == ReduceKind::Reduce(ReduceOp::Max), x, y)),
        (Acc::B(x), Acc::B(y)) => Acc::B(if kind == ReduceKind::Reduce(ReduceOp::Any) {
            x | y
        } else {
            x & y
        }),
        (Acc::A(v1, i1), Acc::A(v2, i2)) => {
            let ReduceKind::Arg(op) = kind else {
                unreachable!("arg accumulators come from arg kinds")
            };
            if better(op, v2, v1) {
                Acc::A(v2, i2)
            } else {
                Acc::A(v1, i1)
            }
        }
        _ => unreachable!("accumulators of one reduction share a variant"),
    }
}

/// Reduces `outer` rows of `inner` elements; `block(row, start, len)` gives the accumulator of
/// a block (usually [`block_acc`] of its values). Blocks are merged left to right, so the
/// result does not depend on threads.
///
/// # Errors
/// The first error a block returns.
pub fn reduce_rows<T: Elem, F>(
    kind: ReduceKind,
    outer: usize,
    inner: usize,
    block: F,
) -> Result<Vec<Acc<T>>>
where
    F: Fn(usize, usize, usize) -> Result<Acc<T>> + Sync,
{
    if inner == 0 {
        return Ok(vec![empty_acc(kind, T::DTYPE); outer]);
    }
    let nblocks = inner.div_ceil(BLOCK);
    let one = |r: usize, b: usize| {
        let start = b * BLOCK;
        block(r, start, BLOCK.min(inner - start))
    };
    let row = |r: usize| -> Result<Acc<T>> {
        let accs: Vec<Acc<T>> = if outer == 1 && nblocks > 1 {
            (0..nblocks)
                .into_par_iter()
                .map(|b| one(r, b))
                .collect::<Result<_>>()?
        } else {
            (0..nblocks).map(|b| one(r, b)).collect::<Result<_>>()?
        };
        Ok(accs
            .into_iter()
            .reduce(|a, b| merge(kind, a, b))
            .expect("at least one block"))
    };
    if outer == 1 {
        Ok(vec![row(0)?])
    } else {
        (0..outer).into_par_iter().map(row).collect()
    }
}

/// The partial fields (see `tile::partial_dtype`) from row accumulators.
pub fn fields<T: Elem>(kind: ReduceKind, accs: &[Acc<T>], shape: &[usize]) -> Vec<HostArray> {
    match accs.first() {
        Some(Acc::F(_)) => vec![shaped(
            shape,
            accs.iter()
                .map(|a| if let Acc::F(x) = a { *x } else { 0.0 })
                .collect(),
        )
        .into()],
        Some(Acc::I(_)) => vec![shaped(
            shape,
            accs.iter()
                .map(|a| if let Acc::I(x) = a { *x } else { 0 })
                .collect(),
        )
        .into()],
        Some(Acc::M(..)) => {
            let get = |k: usize| {
                accs.iter()
                    .map(|a| {
                        if let Acc::M(_, m, q) = a {
                            [*m, *q][k]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            };
            vec![shaped(shape, get(0)).into(), shaped(shape, get(1)).into()]
        }
        Some(Acc::V(_)) => vec![T::wrap(shaped(
            shape,
            accs.iter()
                .map(|a| if let Acc::V(x) = a { *x } else { T::default() })
                .collect(),
        ))],
        Some(Acc::B(_)) => vec![shaped(
            shape,
            accs.iter().map(|a| matches!(a, Acc::B(true))).collect(),
        )
        .into()],
        Some(Acc::A(..)) => vec![
            T::wrap(shaped(
                shape,
                accs.iter()
                    .map(|a| {
                        if let Acc::A(v, _) = a {
                            *v
                        } else {
                            T::default()
                        }
                    })
                    .collect(),
            )),
            shaped(
                shape,
                accs.iter()
                    .map(|a| if let Acc::A(_, i) = a { *i as i64 } else { 0 })
                    .collect(),
            )
            .into(),
        ],
        None => {
            // No rows: empty fields of the partial dtypes.
            let t = T::DTYPE;
            let dt = match kind {
                ReduceKind::Reduce(op) => tessera_runtime::tile::partial_dtype(op, t),
                ReduceKind::Arg(_) => t,
            };
            let mut v = vec![HostArray::zeros(dt, shape)];
            if matches!(kind, ReduceKind::Reduce(ReduceOp::Var | ReduceOp::Std)) {
                v.push(HostArray::zeros(DType::F64, shape));
            }
            if matches!(kind, ReduceKind::Arg(_)) {
                v.push(HostArray::zeros(DType::I64, shape));
            }
            v
        }
    }
}

/// Views `x` as rows: kept axes outer, reduced axes inner, contiguous.
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

/// The partial of one chunk (unfused path).
pub fn partial(kind: ReduceKind, x: &HostArray, axes: &[usize]) -> Vec<HostArray> {
    fn go<T: Elem>(kind: ReduceKind, x: &ArrayD<T>, axes: &[usize]) -> Vec<HostArray> {
        let (data, outer, inner, ks) = rows(x, axes);
        let accs = reduce_rows::<T, _>(kind, outer, inner, |r, s, n| {
            Ok(block_acc(
                kind,
                &data[r * inner + s..r * inner + s + n],
                s as u64,
            ))
        })
        .expect("plain blocks never fail");
        fields(kind, &accs, &ks)
    }
    on_array!(x, a => go(kind, a, axes))
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
            let field = |p: &Vec<HostArray>, k: usize| -> Result<Vec<f64>> {
                let a = p[k]
                    .as_array::<f64>()
                    .ok_or_else(|| Error::dtype_unsupported("var combine", p[k].dtype()))?;
                Ok(a.iter().copied().collect())
            };
            let shape = first[0].shape().to_vec();
            let mut mean = field(parts[0], 0)?;
            let mut m2 = field(parts[0], 1)?;
            let mut count = counts[0];
            for (k, p) in parts.iter().enumerate().skip(1) {
                let (mk, qk) = (field(p, 0)?, field(p, 1)?);
                for i in 0..mean.len() {
                    let (_, m, q) =
                        merge_moments((count, mean[i], m2[i]), (counts[k], mk[i], qk[i]));
                    mean[i] = m;
                    m2[i] = q;
                }
                count += counts[k];
            }
            vec![shaped(&shape, mean).into(), shaped(&shape, m2).into()]
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
    let mut f = partial(ReduceKind::Arg(op), x, &[axis]);
    if offset > 0 {
        if let HostArray::I64(ix) = &mut f[1] {
            ix.mapv_inplace(|i| i + offset as i64);
        }
    }
    f
}

/// Combines arg partials given in axis order (ties keep the earlier, lower index).
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
