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
}
