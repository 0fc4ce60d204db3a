//! Stable sorts along one axis (`ChunkOp::Sort`): every lane along the axis sorted on its own,
//! lanes in parallel. Order: numbers ascending with `-0.0 == 0.0`, NaN after every number;
//! descending reverses the comparison, so NaN comes first and equal elements still keep their
//! input order.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use std::cmp::Ordering;
use tessera_runtime::HostArray;

/// numpy's sort order for floats: NaN after every number, all NaNs equal.
fn float_order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// `a` with `axis` moved last, row-major (each lane a run of `shape[axis]` elements; copied only
/// when the view is not row-major already), and the permutation that moved it.
pub(crate) fn axis_last<T: Clone>(
    a: &ArrayD<T>,
    axis: usize,
) -> (Vec<usize>, ndarray::CowArray<'_, T, IxDyn>) {
    let mut perm: Vec<usize> = (0..a.ndim()).filter(|&d| d != axis).collect();
    perm.push(axis);
    let v = a.view().permuted_axes(IxDyn(&perm));
    let v = if v.is_standard_layout() {
        v.into()
    } else {
        v.as_standard_layout().into_owned().into()
    };
    (perm, v)
}

/// Undoes [`axis_last`]: row-major lanes of shape `pshape` (permuted order) back to the input's
/// axis order, row-major.
pub(crate) fn axis_back<U: Clone>(v: Vec<U>, pshape: &[usize], perm: &[usize]) -> ArrayD<U> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    let a = ArrayD::from_shape_vec(IxDyn(pshape), v)
        .expect("lane shape")
        .permuted_axes(IxDyn(&inv));
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// The sorted values (or, with `arg`, their int64 positions) of `x` along `axis`.
pub fn sort(x: &HostArray, axis: usize, descending: bool, arg: bool) -> HostArray {
    fn go<T: Copy + Send + Sync + Default + 'static>(
        a: &ArrayD<T>,
        axis: usize,
        descending: bool,
        arg: bool,
        order: fn(&T, &T) -> Ordering,
        wrap: fn(ArrayD<T>) -> HostArray,
    ) -> HostArray {
        let (perm, flat) = axis_last(a, axis);
        let pshape = flat.shape().to_vec();
        let flat = flat.as_slice().expect("standard layout");
        let len = a.shape()[axis];
        let mut vals: Vec<T> = vec![T::default(); if arg { 0 } else { flat.len() }];
        let mut idxs: Vec<i64> = vec![0; if arg { flat.len() } else { 0 }];
        if len > 0 && !flat.is_empty() {
            let sort_lane = |lane: &[T]| -> Vec<(T, usize)> {
                let mut p: Vec<(T, usize)> = lane.iter().copied().zip(0..).collect();
                if descending {
                    p.sort_by(|x, y| order(&y.0, &x.0));
                } else {
                    p.sort_by(|x, y| order(&x.0, &y.0));
                }
                p
            };
            if arg {
                idxs.par_chunks_mut(len)
                    .zip(flat.par_chunks(len))
                    .for_each(|(out, lane)| {
                        for (o, (_, i)) in out.iter_mut().zip(sort_lane(lane)) {
                            *o = i as i64;
                        }
                    });
            } else {
                vals.par_chunks_mut(len)
                    .zip(flat.par_chunks(len))
                    .for_each(|(out, lane)| {
                        for (o, (v, _)) in out.iter_mut().zip(sort_lane(lane)) {
                            *o = v;
                        }
                    });
            }
        }
        if arg {
            HostArray::I64(axis_back(idxs, &pshape, &perm))
        } else {
            wrap(axis_back(vals, &pshape, &perm))
        }
    }
    match x {
        HostArray::Bool(a) => go(a, axis, descending, arg, |x, y| x.cmp(y), HostArray::Bool),
        HostArray::I32(a) => go(a, axis, descending, arg, |x, y| x.cmp(y), HostArray::I32),
        HostArray::I64(a) => go(a, axis, descending, arg, |x, y| x.cmp(y), HostArray::I64),
        HostArray::F32(a) => go(
            a,
            axis,
            descending,
            arg,
            |x, y| float_order(*x as f64, *y as f64),
            HostArray::F32,
        ),
        HostArray::F64(a) => go(
            a,
            axis,
            descending,
            arg,
            |x, y| float_order(*x, *y),
            HostArray::F64,
        ),
    }
}

/// The `k` best of every lane of `vals` along `axis` with their positions `pos` (same shape):
/// best first by `order` (reversed when `largest`), ties to the lower position.
fn select<T: Copy + Send + Sync + Default + 'static>(
    vals: &ArrayD<T>,
    pos: &ArrayD<i64>,
    axis: usize,
    k: usize,
    largest: bool,
    order: fn(&T, &T) -> Ordering,
) -> (ArrayD<T>, ArrayD<i64>) {
    let (perm, v) = axis_last(vals, axis);
    let (_, p) = axis_last(pos, axis);
    let mut pshape = v.shape().to_vec();
    let (v, p) = (
        v.as_slice().expect("standard layout"),
        p.as_slice().expect("standard layout"),
    );
    let len = vals.shape()[axis];
    let kk = k.min(len);
    let lanes = v.len().checked_div(len).unwrap_or(0);
    let mut ov = vec![T::default(); lanes * kk];
    let mut op = vec![0i64; lanes * kk];
    if kk > 0 {
        let better = |a: &(T, i64), b: &(T, i64)| {
            let c = if largest {
                order(&b.0, &a.0)
            } else {
                order(&a.0, &b.0)
            };
            c.then(a.1.cmp(&b.1))
        };
        ov.par_chunks_mut(kk)
            .zip(op.par_chunks_mut(kk))
            .zip(v.par_chunks(len).zip(p.par_chunks(len)))
            .for_each(|((ov, op), (lv, lp))| {
                let c: Vec<(T, i64)> = if kk * 16 <= len {
                    // Few wanted from a long lane: one pass keeping the k best sorted; most
                    // elements cost one comparison with the current k-th.
                    let mut best: Vec<(T, i64)> = Vec::with_capacity(kk + 1);
                    for e in lv.iter().copied().zip(lp.iter().copied()) {
                        if best.len() == kk {
                            if better(&e, &best[kk - 1]) != Ordering::Less {
                                continue;
                            }
                            best.pop();
                        }
                        let at = best.partition_point(|b| better(b, &e) == Ordering::Less);
                        best.insert(at, e);
                    }
                    best
                } else {
                    let mut c: Vec<(T, i64)> = lv.iter().copied().zip(lp.iter().copied()).collect();
                    if kk < len {
                        c.select_nth_unstable_by(kk - 1, better);
                        c.truncate(kk);
                    }
                    c.sort_unstable_by(better);
                    c
                };
                for ((dv, dp), (x, i)) in ov.iter_mut().zip(op.iter_mut()).zip(c) {
                    *dv = x;
                    *dp = i;
                }
            });
    }
    *pshape.last_mut().expect("an axis") = kk;
    (axis_back(ov, &pshape, &perm), axis_back(op, &pshape, &perm))
}

/// Applies `f` to the typed values of `x` with their order; wraps the result values back.
macro_rules! typed {
    ($x:expr, |$a:ident, $ord:ident, $wrap:ident| $body:expr) => {
        match $x {
            HostArray::Bool($a) => {
                let $ord: fn(&bool, &bool) -> Ordering = |p, q| p.cmp(q);
                let $wrap = HostArray::Bool;
                $body
            }
            HostArray::I32($a) => {
                let $ord: fn(&i32, &i32) -> Ordering = |p, q| p.cmp(q);
                let $wrap = HostArray::I32;
                $body
            }
            HostArray::I64($a) => {
                let $ord: fn(&i64, &i64) -> Ordering = |p, q| p.cmp(q);
                let $wrap = HostArray::I64;
                $body
            }
            HostArray::F32($a) => {
                let $ord: fn(&f32, &f32) -> Ordering = |p, q| float_order(*p as f64, *q as f64);
                let $wrap = HostArray::F32;
                $body
            }
            HostArray::F64($a) => {
                let $ord: fn(&f64, &f64) -> Ordering = |p, q| float_order(*p, *q);
                let $wrap = HostArray::F64;
                $body
            }
        }
    };
}

/// A top-k merge given inputs the tiler cannot have planned.
fn plan_err(msg: String) -> tessera_runtime::Error {
    tessera_runtime::Error::Backend {
        backend: "cpu".into(),
        msg,
    }
}

/// `ChunkOp::TopKPartial`: the `k` best of every lane of one chunk and their global positions.
pub fn topk_partial(
    x: &HostArray,
    axis: usize,
    k: usize,
    largest: bool,
    offset: usize,
) -> Vec<HostArray> {
    let shape = x.shape().to_vec();
    let pos = ArrayD::from_shape_fn(IxDyn(&shape), |ix| (offset + ix[axis]) as i64);
    typed!(x, |a, ord, wrap| {
        let (v, p) = select(a, &pos, axis, k, largest, ord);
        vec![wrap(v), HostArray::I64(p)]
    })
}

/// `ChunkOp::TopKCombine`: the `k` best of several partials' candidates.
///
/// # Errors
/// Partials of different dtypes (a planning error).
pub fn topk_combine(
    parts: &[&Vec<HostArray>],
    axis: usize,
    k: usize,
    largest: bool,
) -> tessera_runtime::Result<Vec<HostArray>> {
    let pos: Vec<ndarray::ArrayViewD<i64>> = parts
        .iter()
        .map(|p| p[1].as_array::<i64>().expect("positions are int64").view())
        .collect();
    let pos = ndarray::concatenate(ndarray::Axis(axis), &pos)
        .map_err(|e| plan_err(format!("top-k candidates do not stack: {e}")))?;
    fn go<T: tessera_runtime::Elem + Copy + Send + Sync + Default + 'static>(
        parts: &[&Vec<HostArray>],
        pos: &ArrayD<i64>,
        axis: usize,
        k: usize,
        largest: bool,
        ord: fn(&T, &T) -> Ordering,
        wrap: fn(ArrayD<T>) -> HostArray,
    ) -> tessera_runtime::Result<Vec<HostArray>> {
        let vals = parts
            .iter()
            .map(|p| {
                p[0].as_array::<T>()
                    .map(|x| x.view())
                    .ok_or_else(|| plan_err("top-k candidates of different dtypes".into()))
            })
            .collect::<tessera_runtime::Result<Vec<_>>>()?;
        let vals = ndarray::concatenate(ndarray::Axis(axis), &vals)
            .map_err(|e| plan_err(format!("top-k candidates do not stack: {e}")))?;
        let (v, p) = select(&vals, pos, axis, k, largest, ord);
        Ok(vec![wrap(v), HostArray::I64(p)])
    }
    typed!(&parts[0][0], |a0, ord, wrap| {
        let _ = a0;
        go(parts, &pos, axis, k, largest, ord, wrap)
    })
}

/// Decoded pivots of a sample sort (see `Op::BucketCount`) as typed (value, position) pairs.
fn pivots_of<T: tessera_runtime::Elem>(pivots: &[(u64, u64)], float: bool) -> Vec<(T, u64)> {
    pivots
        .iter()
        .map(|&(b, p)| {
            let v = if float {
                T::from_f64(f64::from_bits(b))
            } else {
                T::from_i64(b as i64)
            };
            (v, p)
        })
        .collect()
}

/// The bucket of each element of a 1-D chunk starting at global position `offset`: how many
/// pivots come before (value, position) in the stable sort order.
fn buckets<T: tessera_runtime::Elem>(
    a: &ArrayD<T>,
    pivots: &[(u64, u64)],
    offset: usize,
    descending: bool,
    order: fn(&T, &T) -> Ordering,
) -> Vec<usize> {
    let piv = pivots_of::<T>(pivots, T::DTYPE.is_float());
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            let pos = (offset + i) as u64;
            piv.partition_point(|(pv, pp)| {
                let o = if descending {
                    order(v, pv)
                } else {
                    order(pv, v)
                };
                o.then(pp.cmp(&pos)) == Ordering::Less
            })
        })
        .collect()
}

/// `ChunkOp::BucketCount`: elements per bucket, int64 `[1, pivots + 1]`.
pub fn bucket_count(
    x: &HostArray,
    pivots: &[(u64, u64)],
    offset: usize,
    descending: bool,
) -> HostArray {
    let mut counts = vec![0i64; pivots.len() + 1];
    typed!(x, |a, ord, _wrap| {
        for b in buckets(a, pivots, offset, descending, ord) {
            counts[b] += 1;
        }
    });
    let n = counts.len();
    HostArray::I64(ArrayD::from_shape_vec(IxDyn(&[1, n]), counts).expect("one row"))
}

fn one_d<U>(v: Vec<U>) -> ArrayD<U> {
    let n = v.len();
    ArrayD::from_shape_vec(IxDyn(&[n]), v).expect("1-d")
}

/// `ChunkOp::Bucketize`: one field per bucket (input order), with `arg` also the positions.
pub fn bucketize(
    x: &HostArray,
    pivots: &[(u64, u64)],
    offset: usize,
    descending: bool,
    arg: bool,
) -> Vec<HostArray> {
    let nb = pivots.len() + 1;
    typed!(x, |a, ord, wrap| {
        let bs = buckets(a, pivots, offset, descending, ord);
        let mut vals: Vec<Vec<_>> = vec![Vec::new(); nb];
        let mut pos: Vec<Vec<i64>> = vec![Vec::new(); if arg { nb } else { 0 }];
        for (i, (&v, &b)) in a.iter().zip(&bs).enumerate() {
            vals[b].push(v);
            if arg {
                pos[b].push((offset + i) as i64);
            }
        }
        let mut out = Vec::with_capacity(if arg { 2 * nb } else { nb });
        let mut pos = pos.into_iter();
        for v in vals {
            out.push(wrap(one_d(v)));
            if arg {
                out.push(HostArray::I64(one_d(
                    pos.next().expect("positions per bucket"),
                )));
            }
        }
        out
    })
}

/// `ChunkOp::BucketSort`: the pieces of one bucket (with `arg`, values then positions per
/// piece) concatenated in order and sorted stably; values or positions.
pub fn bucket_sort(
    inputs: &[&Vec<HostArray>],
    descending: bool,
    arg: bool,
) -> tessera_runtime::Result<HostArray> {
    let step = if arg { 2 } else { 1 };
    let first = &inputs
        .first()
        .ok_or_else(|| plan_err("bucket sort without pieces".into()))?[0];
    typed!(first, |_a, ord, wrap| {
        let mut pairs = Vec::new();
        for piece in inputs.chunks(step) {
            let v = piece[0][0]
                .as_array()
                .ok_or_else(|| plan_err("bucket pieces of mixed dtypes".into()))?;
            if arg {
                let p = piece[1][0]
                    .as_array::<i64>()
                    .ok_or_else(|| plan_err("bucket positions are not int64".into()))?;
                pairs.extend(v.iter().copied().zip(p.iter().copied()));
            } else {
                pairs.extend(v.iter().map(|&x| (x, 0i64)));
            }
        }
        // Pieces come in input order, so a stable sort keeps ties in it; with positions the
        // order is explicit.
        if descending {
            pairs.par_sort_by(|x, y| ord(&y.0, &x.0).then(x.1.cmp(&y.1)));
        } else {
            pairs.par_sort_by(|x, y| ord(&x.0, &y.0).then(x.1.cmp(&y.1)));
        }
        let n = pairs.len();
        Ok(if arg {
            let p: Vec<i64> = pairs.into_iter().map(|(_, p)| p).collect();
            HostArray::I64(ArrayD::from_shape_vec(IxDyn(&[n]), p).expect("1-d"))
        } else {
            let v: Vec<_> = pairs.into_iter().map(|(v, _)| v).collect();
            wrap(ArrayD::from_shape_vec(IxDyn(&[n]), v).expect("1-d"))
        })
    })
}
