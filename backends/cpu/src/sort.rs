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
    fn go<T: Keyed + Send + Sync + Default + 'static>(
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
        if len >= RADIX_MIN && !flat.is_empty() {
            // Long lanes: radix sort by key. One lane spreads its passes over the threads;
            // several lanes are sorted side by side instead.
            let par = flat.len() == len;
            if arg {
                idxs.par_chunks_mut(len)
                    .zip(flat.par_chunks(len))
                    .for_each(|(out, lane)| {
                        let keys = keys_of(lane.iter().copied(), descending);
                        if let Ok(m) = u32::try_from(len) {
                            // 4-byte positions: less to move per pass.
                            let p = radix_sort(keys, (0..m).collect(), par);
                            for (o, i) in out.iter_mut().zip(p) {
                                *o = i64::from(i);
                            }
                        } else {
                            out.copy_from_slice(&radix_sort(keys, (0..len as i64).collect(), par));
                        }
                    });
            } else {
                vals.par_chunks_mut(len)
                    .zip(flat.par_chunks(len))
                    .for_each(|(out, lane)| {
                        let keys = keys_of(lane.iter().copied(), descending);
                        out.copy_from_slice(&radix_sort(keys, lane.to_vec(), par));
                    });
            }
        } else if len > 0 && !flat.is_empty() {
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
fn select<T: Copy + Send + Sync + Default + PartialOrd + 'static>(
    vals: &ArrayD<T>,
    pos: Positions<'_>,
    axis: usize,
    k: usize,
    largest: bool,
    order: fn(&T, &T) -> Ordering,
) -> (ArrayD<T>, ArrayD<i64>) {
    let (perm, v) = axis_last(vals, axis);
    let explicit = match pos {
        Positions::Explicit(p) => Some(axis_last(p, axis).1),
        Positions::Offset(_) => None,
    };
    let offset = match pos {
        Positions::Offset(o) => o as i64,
        Positions::Explicit(_) => 0,
    };
    let mut pshape = v.shape().to_vec();
    let v = v.as_slice().expect("standard layout");
    let p: Option<&[i64]> = explicit
        .as_ref()
        .map(|p| p.as_slice().expect("standard layout"));
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
            .zip(v.par_chunks(len).enumerate())
            .for_each(|((ov, op), (lane, lv))| {
                // The lane's positions: given, or the chunk's offset plus the index.
                let at = |j: usize| match p {
                    Some(p) => p[lane * len + j],
                    None => offset + j as i64,
                };
                let c: Vec<(T, i64)> = if kk * 16 <= len {
                    // Few wanted from a long lane: one pass keeping the k best sorted; most
                    // elements cost one comparison of values with the current k-th (with
                    // implicit positions a later element never wins a tie).
                    let mut best: Vec<(T, i64)> = Vec::with_capacity(kk + 1);
                    let offer = |j: usize, x: T, best: &mut Vec<(T, i64)>| {
                        if best.len() == kk {
                            let worst = &best[kk - 1].0;
                            let c = if largest {
                                order(worst, &x)
                            } else {
                                order(&x, worst)
                            };
                            if c == Ordering::Greater || (c == Ordering::Equal && p.is_none()) {
                                return;
                            }
                            let e = (x, at(j));
                            if better(&e, &best[kk - 1]) != Ordering::Less {
                                return;
                            }
                            best.pop();
                        }
                        let e = (x, at(j));
                        let i = best.partition_point(|b| better(b, &e) == Ordering::Less);
                        best.insert(i, e);
                    };
                    for (b, run) in lv.chunks(16).enumerate() {
                        // With implicit positions and the k-th best not NaN, a run with
                        // nothing better (plain comparisons, vectorized; NaN is the largest
                        // in `order`) is passed over whole.
                        #[allow(clippy::eq_op)]
                        if p.is_none() && best.len() == kk {
                            let w = best[kk - 1].0;
                            let any = if w != w {
                                true
                            } else if largest {
                                run.iter().fold(false, |a, &y| a | (y > w) | (y != y))
                            } else {
                                run.iter().fold(false, |a, &y| a | (y < w))
                            };
                            if !any {
                                continue;
                            }
                        }
                        for (i, &x) in run.iter().enumerate() {
                            offer(b * 16 + i, x, &mut best);
                        }
                    }
                    best
                } else {
                    let mut c: Vec<(T, i64)> =
                        lv.iter().enumerate().map(|(j, &x)| (x, at(j))).collect();
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

/// Where the positions of the elements `select` picks from come from.
#[derive(Clone, Copy)]
enum Positions<'a> {
    /// One per element, as given (merged candidates).
    Explicit(&'a ArrayD<i64>),
    /// The chunk's offset plus the index along the axis (a chunk's own elements): nothing
    /// to allocate or read.
    Offset(usize),
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
    typed!(x, |a, ord, wrap| {
        let (v, p) = select(a, Positions::Offset(offset), axis, k, largest, ord);
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
        let (v, p) = select(&vals, Positions::Explicit(pos), axis, k, largest, ord);
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
/// pivots come before (value, position) in the stable sort order. Compared as (radix key,
/// position) pairs: the keys order values as the sort does (descending: flipped).
fn buckets<T: tessera_runtime::Elem + Keyed>(
    a: &ArrayD<T>,
    pivots: &[(u64, u64)],
    offset: usize,
    descending: bool,
) -> Vec<usize> {
    let key = |v: T| {
        if descending {
            v.key().flip()
        } else {
            v.key()
        }
    };
    let piv: Vec<(T::Key, u64)> = pivots_of::<T>(pivots, T::DTYPE.is_float())
        .into_iter()
        .map(|(v, p)| (key(v), p))
        .collect();
    a.iter()
        .enumerate()
        .map(|(i, &v)| {
            let e = (key(v), (offset + i) as u64);
            piv.partition_point(|p| *p < e)
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
    typed!(x, |a, _ord, _wrap| {
        for b in buckets(a, pivots, offset, descending) {
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
    typed!(x, |a, _ord, wrap| {
        let bs = buckets(a, pivots, offset, descending);
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

/// `x`, typed as `_a` (fixes the element type where inference cannot).
fn like<'a, T>(_a: &ArrayD<T>, x: Option<&'a ArrayD<T>>) -> Option<&'a ArrayD<T>> {
    x
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
    typed!(first, |a0, ord, wrap| {
        let mut vals = Vec::new();
        let mut pos = Vec::new();
        for piece in inputs.chunks(step) {
            let v = like(a0, piece[0][0].as_array())
                .ok_or_else(|| plan_err("bucket pieces of mixed dtypes".into()))?;
            vals.extend(v.iter().copied());
            if arg {
                let p = piece[1][0]
                    .as_array::<i64>()
                    .ok_or_else(|| plan_err("bucket positions are not int64".into()))?;
                pos.extend(p.iter().copied());
            }
        }
        let n = vals.len();
        // Pieces come in input order, so a stable sort keeps ties in it; with positions the
        // order is explicit: the radix sort (stable by key alone) runs only where the
        // positions already ascend, else the comparison sort orders ties by position.
        if n >= RADIX_MIN && (!arg || pos.windows(2).all(|w| w[0] < w[1])) {
            let keys = keys_of(vals.iter().copied(), descending);
            return Ok(if arg {
                HostArray::I64(one_d(radix_sort(keys, pos, true)))
            } else {
                wrap(one_d(radix_sort(keys, vals, true)))
            });
        }
        let mut pairs: Vec<_> = if arg {
            vals.into_iter().zip(pos).collect()
        } else {
            vals.into_iter().map(|x| (x, 0i64)).collect()
        };
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

/// Lanes at least this long are sorted by [`radix_sort`]; shorter ones by comparison, where
/// the radix passes' fixed cost (a 256-entry histogram per key byte) outweighs their gain.
const RADIX_MIN: usize = 2048;

/// Unsigned radix keys, sorted byte by byte from the least significant.
trait RadixKey: Copy + Send + Sync + Default + Ord {
    /// Bytes of the key: the passes of a full sort.
    const BYTES: usize;
    /// Byte `pass` of the key (0 = least significant).
    fn digit(self, pass: usize) -> usize;
    /// The complement: the reversed order, for descending sorts.
    fn flip(self) -> Self;
}

macro_rules! radix_key {
    ($($t:ty),*) => {$(
        impl RadixKey for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            #[inline]
            fn digit(self, pass: usize) -> usize {
                ((self >> (8 * pass)) & 0xff) as usize
            }
            #[inline]
            fn flip(self) -> Self {
                !self
            }
        }
    )*};
}
radix_key!(u8, u32, u64);

/// Element types with an unsigned key whose order is the sort order (numpy's for floats:
/// `-0.0 == 0.0`, every NaN equal and after `+inf`). Equal elements get equal keys, so a
/// stable sort by key keeps them in input order.
trait Keyed: Copy {
    type Key: RadixKey;
    fn key(self) -> Self::Key;
}

impl Keyed for f32 {
    type Key = u32;
    #[inline]
    fn key(self) -> u32 {
        if self.is_nan() {
            return u32::MAX; // above +inf's 0xff80_0000
        }
        // -0.0 takes +0.0's key (the comparison order calls them equal).
        let b = if self == 0.0 { 0 } else { self.to_bits() };
        // Negative numbers: every bit flipped (larger magnitude, smaller key); positive: the
        // sign bit set, so they all come after the negatives.
        if b >> 31 == 1 {
            !b
        } else {
            b | (1 << 31)
        }
    }
}

impl Keyed for f64 {
    type Key = u64;
    #[inline]
    fn key(self) -> u64 {
        if self.is_nan() {
            return u64::MAX;
        }
        let b = if self == 0.0 { 0 } else { self.to_bits() };
        if b >> 63 == 1 {
            !b
        } else {
            b | (1 << 63)
        }
    }
}

impl Keyed for i32 {
    type Key = u32;
    #[inline]
    fn key(self) -> u32 {
        (self as u32) ^ (1 << 31)
    }
}

impl Keyed for i64 {
    type Key = u64;
    #[inline]
    fn key(self) -> u64 {
        (self as u64) ^ (1 << 63)
    }
}

impl Keyed for bool {
    type Key = u8;
    #[inline]
    fn key(self) -> u8 {
        self as u8
    }
}

/// A pointer the scatter threads share; each writes only its own disjoint positions.
struct Scatter<T>(*mut T);
// SAFETY: the pointer is only written through at positions that the radix offsets give to
// exactly one (part, digit) pair, so no two threads touch the same element; the buffer outlives
// the parallel scope that uses it.
unsafe impl<T: Send> Send for Scatter<T> {}
// SAFETY: as for Send: shared use writes disjoint elements only.
unsafe impl<T: Send> Sync for Scatter<T> {}

impl<T> Scatter<T> {
    /// Writes `v` at `i`.
    ///
    /// # Safety
    /// `i` is in bounds of the buffer, and no other thread reads or writes element `i`.
    #[inline]
    unsafe fn put(&self, i: usize, v: T) {
        // SAFETY: the caller guarantees `i` in bounds and exclusive.
        unsafe { self.0.add(i).write(v) }
    }
}

/// Stable LSD radix sort of `keys` (ascending), moving `vals` along; returns the values in key
/// order. One pass per key byte, skipped where every key has the same byte there. With
/// `parallel`, each pass counts and scatters parts of the input on rayon's threads: the
/// offsets of part `c` for digit `d` come after every earlier part's, so the order stays
/// stable.
fn radix_sort<K: RadixKey, V: Copy + Send + Sync + Default>(
    keys: Vec<K>,
    vals: Vec<V>,
    parallel: bool,
) -> Vec<V> {
    let n = keys.len();
    debug_assert_eq!(n, vals.len());
    let parts = if parallel {
        (rayon::current_num_threads() * 2).clamp(1, (n / 65536).max(1))
    } else {
        1
    };
    let part = n.div_ceil(parts).max(1);
    let (mut k0, mut v0) = (keys, vals);
    let mut k1 = vec![K::default(); n];
    let mut v1 = vec![V::default(); n];
    for pass in 0..K::BYTES {
        let hist = |ks: &[K]| {
            let mut h = [0usize; 256];
            for &k in ks {
                h[k.digit(pass)] += 1;
            }
            h
        };
        let hists: Vec<[usize; 256]> = if parts > 1 {
            k0.par_chunks(part).map(hist).collect()
        } else {
            k0.chunks(part).map(hist).collect()
        };
        let mut offs = vec![[0usize; 256]; hists.len()];
        let mut at = 0;
        for d in 0..256 {
            for (o, h) in offs.iter_mut().zip(&hists) {
                o[d] = at;
                at += h[d];
            }
        }
        if (0..256).any(|d| hists.iter().map(|h| h[d]).sum::<usize>() == n) {
            continue; // one digit holds every key: the pass would not move anything
        }
        let (kd, vd) = (Scatter(k1.as_mut_ptr()), Scatter(v1.as_mut_ptr()));
        let scatter = |(mut o, (ks, vs)): ([usize; 256], (&[K], &[V]))| {
            for (&k, &v) in ks.iter().zip(vs) {
                let d = k.digit(pass);
                // SAFETY: the offsets of this part and digit are a range of [0, n) that no
                // other part or digit shares, and it holds exactly as many slots as this part
                // has keys with this digit, so every write is in bounds and exclusive.
                unsafe {
                    kd.put(o[d], k);
                    vd.put(o[d], v);
                }
                o[d] += 1;
            }
        };
        if parts > 1 {
            offs.into_par_iter()
                .zip(k0.par_chunks(part).zip(v0.par_chunks(part)))
                .for_each(scatter);
        } else {
            offs.into_iter()
                .zip(k0.chunks(part).zip(v0.chunks(part)))
                .for_each(scatter);
        }
        std::mem::swap(&mut k0, &mut k1);
        std::mem::swap(&mut v0, &mut v1);
    }
    v0
}

/// The keys of `lane` in the sort's direction.
fn keys_of<T: Keyed>(lane: impl Iterator<Item = T>, descending: bool) -> Vec<T::Key> {
    if descending {
        lane.map(|x| x.key().flip()).collect()
    } else {
        lane.map(|x| x.key()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh seed per run (printed on failure), so the random cases vary between runs.
    fn seed() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0);
        h.finish()
    }

    /// splitmix64 steps: a small generator with no dependency.
    fn next(s: &mut u64) -> u64 {
        *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Keys must rise strictly along `xs` except where `eq[i]` marks `xs[i] == xs[i + 1]`.
    fn check_keys<T: Keyed + std::fmt::Debug>(xs: &[T], eq: &[bool])
    where
        T::Key: Ord + std::fmt::Debug,
    {
        for (i, w) in xs.windows(2).enumerate() {
            let (a, b) = (w[0].key(), w[1].key());
            if eq[i] {
                assert_eq!(a, b, "{:?} and {:?} must share a key", w[0], w[1]);
            } else {
                assert!(
                    a < b,
                    "{:?} must sort before {:?} ({a:?} vs {b:?})",
                    w[0],
                    w[1]
                );
                assert!(a.flip() > b.flip(), "descending keys reverse {:?}", w);
            }
        }
    }

    #[test]
    fn radix_keys_order_edge_values() {
        let sub = f32::from_bits(1); // the smallest subnormal
        let nan_neg = f32::from_bits(0xffc0_0001);
        let nan_pay = f32::from_bits(0x7f80_0001);
        let xs = [
            f32::NEG_INFINITY,
            f32::MIN,
            -1.0,
            -f32::MIN_POSITIVE,
            -sub,
            -0.0,
            0.0,
            sub,
            f32::from_bits(0x007f_ffff), // the largest subnormal
            f32::MIN_POSITIVE,
            1.0,
            f32::MAX,
            f32::INFINITY,
            f32::NAN,
            nan_neg,
            nan_pay,
        ];
        let mut eq = vec![false; xs.len() - 1];
        eq[5] = true; // -0.0 == 0.0
        eq[13] = true; // every NaN equal
        eq[14] = true;
        check_keys(&xs, &eq);
        assert!(f32::INFINITY.key() < f32::NAN.key());

        let sub = f64::from_bits(1);
        let xs = [
            f64::NEG_INFINITY,
            f64::MIN,
            -1.0,
            -sub,
            -0.0,
            0.0,
            sub,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
        ];
        let mut eq = vec![false; xs.len() - 1];
        eq[4] = true;
        eq[10] = true;
        eq[11] = true;
        check_keys(&xs, &eq);

        check_keys(&[i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX], &[false; 5]);
        check_keys(&[i32::MIN, -1, 0, 1, i32::MAX], &[false; 4]);
        check_keys(&[false, true], &[false]);
    }

    /// Random f32 values with ties, NaN (several payloads), both zeros, infinities and
    /// subnormals.
    fn nasty_f32(n: usize, s: &mut u64) -> Vec<f32> {
        (0..n)
            .map(|_| match next(s) % 12 {
                0 => f32::NAN,
                1 => -f32::NAN,
                2 => -0.0,
                3 => 0.0,
                4 => f32::from_bits((next(s) % 8) as u32), // subnormals (and 0)
                5 => f32::INFINITY,
                6 => f32::NEG_INFINITY,
                7 => (next(s) % 5) as f32 - 2.0, // heavy ties
                _ => (next(s) as i64 as f64 / 1e18) as f32,
            })
            .collect()
    }

    /// The stable comparison sort's positions (the reference order).
    fn reference<T: Copy>(xs: &[T], descending: bool, order: fn(&T, &T) -> Ordering) -> Vec<i64> {
        let mut p: Vec<usize> = (0..xs.len()).collect();
        if descending {
            p.sort_by(|&a, &b| order(&xs[b], &xs[a]));
        } else {
            p.sort_by(|&a, &b| order(&xs[a], &xs[b]));
        }
        p.into_iter().map(|i| i as i64).collect()
    }

    #[test]
    fn radix_sorts_equal_the_stable_comparison_sort() {
        let s0 = seed();
        let mut s = s0;
        let f32_order = |a: &f32, b: &f32| float_order(*a as f64, *b as f64);
        // One long lane (parallel passes), and many lanes past the radix threshold.
        for (n, lanes) in [(300_000usize, 1usize), (3 * RADIX_MIN, 4)] {
            let xs = nasty_f32(n * lanes, &mut s);
            let a = HostArray::F32(ArrayD::from_shape_vec(IxDyn(&[lanes, n]), xs.clone()).unwrap());
            for descending in [false, true] {
                let pos = sort(&a, 1, descending, true);
                let vals = sort(&a, 1, descending, false);
                let (pos, vals) = (
                    pos.as_array::<i64>().unwrap(),
                    vals.as_array::<f32>().unwrap(),
                );
                for l in 0..lanes {
                    let lane = &xs[l * n..(l + 1) * n];
                    let want = reference(lane, descending, f32_order);
                    let got: Vec<i64> = pos.row_slice(l, n);
                    assert!(
                        got == want,
                        "positions differ (seed {s0}, n {n}, desc {descending})"
                    );
                    // Values bit-equal to the input at those positions (-0.0 stays -0.0).
                    for (j, &p) in want.iter().enumerate() {
                        let v = vals.as_slice().unwrap()[l * n + j];
                        assert_eq!(v.to_bits(), lane[p as usize].to_bits(), "seed {s0}");
                    }
                }
            }
        }
        // Integer and bool lanes against the same reference.
        let xs: Vec<i64> = (0..50_000)
            .map(|i| match next(&mut s) % 4 {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => (next(&mut s) % 1000) as i64 - 500 + i % 2,
            })
            .collect();
        let a = HostArray::I64(one_d(xs.clone()));
        for descending in [false, true] {
            let got = sort(&a, 0, descending, true);
            let want = reference(&xs, descending, |a: &i64, b: &i64| a.cmp(b));
            assert!(
                got.as_array::<i64>().unwrap().iter().copied().eq(want),
                "seed {s0}"
            );
        }
        let bs: Vec<bool> = (0..5000).map(|_| next(&mut s).is_multiple_of(3)).collect();
        let got = sort(&HostArray::Bool(one_d(bs.clone())), 0, true, true);
        let want = reference(&bs, true, |a: &bool, b: &bool| a.cmp(b));
        assert!(
            got.as_array::<i64>().unwrap().iter().copied().eq(want),
            "seed {s0}"
        );
    }

    #[test]
    fn bucket_sort_by_radix_keeps_positions_and_input_order() {
        let s0 = seed();
        let mut s = s0;
        let xs = nasty_f32(3 * RADIX_MIN, &mut s);
        let base = 1_000_000i64; // a bucket's pieces carry global positions
        let pieces: Vec<Vec<HostArray>> = xs
            .chunks(RADIX_MIN)
            .enumerate()
            .flat_map(|(c, v)| {
                let p: Vec<i64> = (0..v.len() as i64)
                    .map(|i| base + (c * RADIX_MIN) as i64 + i)
                    .collect();
                [
                    vec![HostArray::F32(one_d(v.to_vec()))],
                    vec![HostArray::I64(one_d(p))],
                ]
            })
            .collect();
        let with_pos: Vec<&Vec<HostArray>> = pieces.iter().collect();
        let vals_only: Vec<&Vec<HostArray>> = pieces.iter().step_by(2).collect();
        let f32_order = |a: &f32, b: &f32| float_order(*a as f64, *b as f64);
        for descending in [false, true] {
            let want = reference(&xs, descending, f32_order);
            let got = bucket_sort(&with_pos, descending, true).unwrap();
            let got: Vec<i64> = got
                .as_array::<i64>()
                .unwrap()
                .iter()
                .map(|p| p - base)
                .collect();
            assert!(
                got == want,
                "positions differ (seed {s0}, desc {descending})"
            );
            let got = bucket_sort(&vals_only, descending, false).unwrap();
            let bits: Vec<u32> = got
                .as_array::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            let want: Vec<u32> = want.iter().map(|&p| xs[p as usize].to_bits()).collect();
            assert!(bits == want, "values differ (seed {s0}, desc {descending})");
        }
        // Positions out of order (not what the tiler plans) fall back to the comparison sort,
        // which orders ties by position.
        let mut rev = pieces.clone();
        rev.swap(0, 2);
        rev.swap(1, 3);
        let rev: Vec<&Vec<HostArray>> = rev.iter().collect();
        let got = bucket_sort(&rev, false, true).unwrap();
        let got: Vec<i64> = got
            .as_array::<i64>()
            .unwrap()
            .iter()
            .map(|p| p - base)
            .collect();
        assert!(got == reference(&xs, false, f32_order), "seed {s0}");
    }

    trait RowSlice {
        fn row_slice(&self, l: usize, n: usize) -> Vec<i64>;
    }
    impl RowSlice for ArrayD<i64> {
        fn row_slice(&self, l: usize, n: usize) -> Vec<i64> {
            self.as_slice().unwrap()[l * n..(l + 1) * n].to_vec()
        }
    }
}
