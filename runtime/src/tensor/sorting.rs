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

    /// Brute-force k nearest neighbours of each row of `queries` (m x d) among the rows of
    /// `self` (the data, n x d), by Euclidean distance, nearest first: (squared distances
    /// m x k, int64 data-row positions m x k); ties to the lower position.
    ///
    /// Squared distances are `|y|^2 - 2 y.x + |x|^2` (a GEMM and two row norms, negative
    /// rounding clamped to 0), and [`Tensor::topk`] reduces each tile of distances to its k
    /// best per query as the tile is made: the m x n distance matrix is never whole, and data
    /// and queries can both be chunked and larger than memory.
    ///
    /// # Errors
    /// Operands that are not 2-D with equal row lengths; `k` larger than the data's rows.
    pub fn knn(&self, queries: &Tensor, k: usize) -> Result<(Tensor, Tensor)> {
        let (sx, sy) = (self.shape().to_vec(), queries.shape().to_vec());
        if sx.len() != 2 || sy.len() != 2 || sx[1] != sy[1] {
            return Err(Error::invalid(
                "knn",
                format!("data {sx:?} and queries {sy:?} must be 2-D with equal row lengths"),
            ));
        }
        if k > sx[0] {
            return Err(Error::invalid(
                "knn",
                format!("k = {k} exceeds the {} rows of the data {sx:?}", sx[0]),
            ));
        }
        let xx = (self * self).sum(1, false)?;
        let yy = (queries * queries).sum(1, true)?;
        let cross = queries.matmul(&self.matrix_transpose()?)?;
        let d2 = (yy - cross * 2.0 + xx).maximum(0.0)?;
        d2.topk(k, 1, false)
    }
}
