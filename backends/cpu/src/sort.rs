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
        let nd = a.ndim();
        // The axis last and contiguous: each lane is a run of `len` elements.
        let mut perm: Vec<usize> = (0..nd).filter(|&d| d != axis).collect();
        perm.push(axis);
        let lanes_view = a.view().permuted_axes(IxDyn(&perm));
        let pshape = lanes_view.shape().to_vec();
        let flat = lanes_view.as_standard_layout();
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
        // Back to the input's axis order, row-major.
        let mut inv = vec![0; nd];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        fn back<U: Clone>(v: ArrayD<U>, inv: &[usize]) -> ArrayD<U> {
            let v = v.permuted_axes(IxDyn(inv));
            if v.is_standard_layout() {
                v
            } else {
                v.as_standard_layout().into_owned()
            }
        }
        if arg {
            HostArray::I64(back(
                ArrayD::from_shape_vec(IxDyn(&pshape), idxs).expect("lane shape"),
                &inv,
            ))
        } else {
            wrap(back(
                ArrayD::from_shape_vec(IxDyn(&pshape), vals).expect("lane shape"),
                &inv,
            ))
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
