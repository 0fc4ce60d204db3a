//! Sorting along an axis: `sort`, `argsort` (stable, ascending or descending) and `topk`.

use super::{norm_axis, Tensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::Op;

impl Tensor {
    fn sort_op(&self, name: &str, axis: isize, descending: bool, arg: bool) -> Result<Tensor> {
        let n = self.tn()?.clone();
        if n.shape.is_empty() {
            return Err(Error::invalid(
                name,
                "a 0-d array has no axis to sort along (shape [])",
            ));
        }
        let axis = norm_axis(name, axis, n.shape.len(), &n.shape)?;
        let dtype = if arg { DType::I64 } else { n.dtype };
        self.record(
            Op::Sort {
                axis,
                descending,
                arg,
            },
            &[self],
            n.shape.clone(),
            dtype,
        )
    }

    /// The values sorted along `axis`, stably: NaN after every number, `-0.0` equal to `0.0`;
    /// `descending` reverses that order (NaN first), equal elements keeping their input order
    /// (the Array API's `sort`; numpy's `sort(kind='stable')` when ascending).
    ///
    /// # Errors
    /// A 0-d tensor; an axis out of range.
    pub fn sort(&self, axis: isize, descending: bool) -> Result<Tensor> {
        self.sort_op("sort", axis, descending, false)
    }

    /// The int64 positions that sort `self` along `axis` ([`Tensor::sort`]'s order).
    ///
    /// # Errors
    /// A 0-d tensor; an axis out of range.
    pub fn argsort(&self, axis: isize, descending: bool) -> Result<Tensor> {
        self.sort_op("argsort", axis, descending, true)
    }

    /// The `k` largest (or smallest) elements along `axis`, best first, and their int64
    /// positions: the first `k` of [`Tensor::sort`] descending (largest: NaN first) or
    /// ascending (smallest: NaN last), ties to the lower position. A chunked axis is reduced
    /// chunk by chunk: only `k` candidates per chunk and lane travel.
    ///
    /// # Errors
    /// A 0-d tensor; an axis out of range; `k` larger than the axis.
    pub fn topk(&self, k: usize, axis: isize, largest: bool) -> Result<(Tensor, Tensor)> {
        let n = self.tn()?.clone();
        if n.shape.is_empty() {
            return Err(Error::invalid(
                "topk",
                "a 0-d array has no axis to select along (shape [])",
            ));
        }
        let ax = norm_axis("topk", axis, n.shape.len(), &n.shape)?;
        if k > n.shape[ax] {
            return Err(Error::invalid(
                "topk",
                format!(
                    "k = {k} exceeds the length {} of axis {axis} (shape {:?})",
                    n.shape[ax], n.shape
                ),
            ));
        }
        let mut shape = n.shape.clone();
        shape[ax] = k;
        let op = |arg| Op::TopK {
            axis: ax,
            k,
            largest,
            arg,
        };
        let v = self.record(op(false), &[self], shape.clone(), n.dtype)?;
        let i = self.record(op(true), &[self], shape, DType::I64)?;
        Ok((v, i))
    }
}
