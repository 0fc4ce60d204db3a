//! Reductions: sum, prod, mean, var, std, min, max, any, all and argmin/argmax over axes.

use super::{norm_axis, Axes, Tensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{ArgOp, Op, ReduceOp};

impl Tensor {
    fn norm_axes(&self, op: &str, axes: Axes) -> Result<Vec<usize>> {
        let shape = self.shape().to_vec();
        let nd = shape.len();
        let mut v = match axes {
            Axes::All => (0..nd).collect::<Vec<_>>(),
            Axes::Some(list) => list
                .iter()
                .map(|&a| norm_axis(op, a, nd, &shape))
                .collect::<Result<Vec<_>>>()?,
        };
        let n = v.len();
        v.sort_unstable();
        v.dedup();
        if v.len() != n {
            return Err(Error::invalid(op, "duplicate value in 'axis'"));
        }
        Ok(v)
    }

    /// A reduction over `axes` (numpy semantics for dtype, keepdims and ddof).
    ///
    /// # Errors
    /// Axes out of range or repeated; min/max over an empty extent.
    pub fn reduce(
        &self,
        op: ReduceOp,
        axes: impl Into<Axes>,
        keepdims: bool,
        ddof: u32,
    ) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let axes = self.norm_axes(op.name(), axes.into())?;
        if op.needs_nonempty() && axes.iter().any(|&a| n.shape[a] == 0) {
            return Err(Error::EmptyReduction {
                op: op.name().into(),
                shape: n.shape.clone(),
            });
        }
        let shape: Vec<usize> = n
            .shape
            .iter()
            .enumerate()
            .filter_map(|(a, &d)| {
                if axes.contains(&a) {
                    keepdims.then_some(1)
                } else {
                    Some(d)
                }
            })
            .collect();
        self.record(
            Op::Reduce {
                op,
                axes,
                keepdims,
                ddof,
            },
            &[self],
            shape,
            op.result_dtype(n.dtype),
        )
    }
    /// Sum.
    ///
    /// # Errors
    /// Bad axes.
    pub fn sum(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axes, keepdims, 0)
    }
    /// Product.
    ///
    /// # Errors
    /// Bad axes.
    pub fn prod(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Prod, axes, keepdims, 0)
    }
    /// Mean.
    ///
    /// # Errors
    /// Bad axes.
    pub fn mean(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, axes, keepdims, 0)
    }
    /// Variance with `ddof`.
    ///
    /// # Errors
    /// Bad axes.
    pub fn var(&self, axes: impl Into<Axes>, keepdims: bool, ddof: u32) -> Result<Tensor> {
        self.reduce(ReduceOp::Var, axes, keepdims, ddof)
    }
    /// Standard deviation with `ddof`.
    ///
    /// # Errors
    /// Bad axes.
    pub fn std(&self, axes: impl Into<Axes>, keepdims: bool, ddof: u32) -> Result<Tensor> {
        self.reduce(ReduceOp::Std, axes, keepdims, ddof)
    }
    /// Minimum.
    ///
    /// # Errors
    /// Bad axes; an empty extent.
    pub fn min(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, axes, keepdims, 0)
    }
    /// Maximum.
    ///
    /// # Errors
    /// Bad axes; an empty extent.
    pub fn max(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, axes, keepdims, 0)
    }
    /// True where any element is truthy.
    ///
    /// # Errors
    /// Bad axes.
    pub fn any(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Any, axes, keepdims, 0)
    }
    /// True where all elements are truthy.
    ///
    /// # Errors
    /// Bad axes.
    pub fn all(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::All, axes, keepdims, 0)
    }

    fn arg(&self, op: ArgOp, axis: Option<isize>) -> Result<Tensor> {
        let name = if op == ArgOp::ArgMax {
            "argmax"
        } else {
            "argmin"
        };
        let x = match axis {
            None => self.reshape(&[-1])?,
            // numpy ravels a 0-d operand: axis 0 and -1 are valid, and the answer is 0.
            Some(_) if self.tn()?.shape.is_empty() => self.reshape(&[1])?,
            Some(_) => self.clone(),
        };
        let n = x.tn()?.clone();
        let axis = norm_axis(name, axis.unwrap_or(0), n.shape.len(), &n.shape)?;
        if n.shape[axis] == 0 {
            return Err(Error::EmptyReduction {
                op: name.into(),
                shape: self.shape().to_vec(),
            });
        }
        let mut shape = n.shape.clone();
        shape.remove(axis);
        x.record(Op::ArgReduce { op, axis }, &[&x], shape, DType::I64)
    }
    /// Index of the minimum along `axis` (`None`: of the flattened array). NaN counts as minimal.
    ///
    /// # Errors
    /// Axis out of range; an empty extent.
    pub fn argmin(&self, axis: Option<isize>) -> Result<Tensor> {
        self.arg(ArgOp::ArgMin, axis)
    }
    /// Index of the maximum along `axis` (`None`: of the flattened array). NaN counts as maximal.
    ///
    /// # Errors
    /// Axis out of range; an empty extent.
    pub fn argmax(&self, axis: Option<isize>) -> Result<Tensor> {
        self.arg(ArgOp::ArgMax, axis)
    }
}
