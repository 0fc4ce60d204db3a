//! Movement: reshape, transpose, expand/squeeze, broadcast, slicing, concatenate and stack.

use super::{all, broadcast_shapes, norm_axis, SliceArg, Tensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{AxisSlice, Op};

impl Tensor {
    /// Row-major reshape; one entry may be -1.
    ///
    /// # Errors
    /// `BadReshape` when the sizes differ or the shape is malformed.
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let size: usize = n.shape.iter().product();
        let bad = || Error::BadReshape {
            from: n.shape.clone(),
            from_size: size,
            to: shape.to_vec(),
        };
        let unknown: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] == -1).collect();
        if unknown.len() > 1 || shape.iter().any(|&d| d < -1) {
            return Err(bad());
        }
        // Checked: a product that wraps could match `size` by accident. An overflowing product
        // with a zero extent is 0 (and the recorded shape is then checked for its size).
        let known: usize = shape
            .iter()
            .filter(|&&d| d >= 0)
            .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
            .or_else(|| shape.contains(&0).then_some(0))
            .ok_or_else(bad)?;
        let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(&u) = unknown.first() {
            if known == 0 || !size.is_multiple_of(known) {
                return Err(bad());
            }
            out[u] = size / known;
        } else if known != size {
            return Err(bad());
        }
        if out == n.shape {
            return Ok(self.clone());
        }
        self.record(Op::Reshape, &[self], out, n.dtype)
    }
    /// Permutes axes (`None` reverses them).
    ///
    /// # Errors
    /// `InvalidArgument` when `axes` is not a permutation.
    pub fn transpose(&self, axes: Option<&[isize]>) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        let perm: Vec<usize> = match axes {
            None => (0..nd).rev().collect(),
            Some(a) => {
                if a.len() != nd {
                    return Err(Error::invalid(
                        "transpose",
                        format!("axes {a:?} don't match array of shape {:?}", n.shape),
                    ));
                }
                a.iter()
                    .map(|&x| norm_axis("transpose", x, nd, &n.shape))
                    .collect::<Result<_>>()?
            }
        };
        let mut seen = vec![false; nd];
        for &p in &perm {
            if std::mem::replace(&mut seen[p], true) {
                return Err(Error::invalid(
                    "transpose",
                    format!("repeated axis in transpose {perm:?}"),
                ));
            }
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        let shape = perm.iter().map(|&p| n.shape[p]).collect();
        self.record(Op::Transpose { perm }, &[self], shape, n.dtype)
    }
    /// `.T`: all axes reversed.
    ///
    /// # Errors
    /// The tensor's deferred error.
    #[allow(non_snake_case)]
    pub fn T(&self) -> Result<Tensor> {
        self.transpose(None)
    }
    /// Swaps two axes.
    ///
    /// # Errors
    /// Axes out of range.
    pub fn swapaxes(&self, a: isize, b: isize) -> Result<Tensor> {
        let nd = self.ndim();
        let a = norm_axis("swapaxes", a, nd, self.shape())?;
        let b = norm_axis("swapaxes", b, nd, self.shape())?;
        let mut perm: Vec<isize> = (0..nd as isize).collect();
        perm.swap(a, b);
        self.transpose(Some(&perm))
    }
    /// Inserts a size-1 axis at `axis` (counted in the result).
    ///
    /// # Errors
    /// Axis out of range.
    pub fn expand_dims(&self, axis: isize) -> Result<Tensor> {
        let mut shape: Vec<isize> = self.tn()?.shape.iter().map(|&d| d as isize).collect();
        let a = norm_axis("expand_dims", axis, shape.len() + 1, self.shape())?;
        shape.insert(a, 1);
        self.reshape(&shape)
    }
    /// Removes size-1 axes (all of them, or the given ones, which must have size 1).
    ///
    /// # Errors
    /// An axis out of range or of size other than 1.
    pub fn squeeze(&self, axes: Option<&[isize]>) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        let drop: Vec<usize> = match axes {
            None => (0..nd).filter(|&a| n.shape[a] == 1).collect(),
            Some(list) => {
                let v = list
                    .iter()
                    .map(|&a| norm_axis("squeeze", a, nd, &n.shape))
                    .collect::<Result<Vec<_>>>()?;
                if let Some(&a) = v.iter().find(|&&a| n.shape[a] != 1) {
                    return Err(Error::invalid(
                        "squeeze",
                        format!("cannot select an axis to squeeze out which has size not equal to one (axis {a} of shape {:?})", n.shape),
                    ));
                }
                v
            }
        };
        let shape: Vec<isize> = (0..nd)
            .filter(|a| !drop.contains(a))
            .map(|a| n.shape[a] as isize)
            .collect();
        self.reshape(&shape)
    }
    /// Broadcasts to `shape`.
    ///
    /// # Errors
    /// `ShapeMismatch` when the shape is not reachable by broadcasting.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let b = broadcast_shapes("broadcast_to", &n.shape, shape)?;
        if b != shape {
            return Err(Error::shape("broadcast_to", &n.shape, shape));
        }
        if n.shape == shape {
            return Ok(self.clone());
        }
        self.record(Op::BroadcastTo, &[self], shape.to_vec(), n.dtype)
    }

    /// numpy basic indexing: ranges with steps, negative indices, integers, newaxis, ellipsis.
    ///
    /// # Errors
    /// Too many indices, an integer index out of bounds, a zero step.
    pub fn slice(&self, args: &[SliceArg]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        let consumed = args
            .iter()
            .filter(|a| matches!(a, SliceArg::Range { .. } | SliceArg::Index(_)))
            .count();
        if args.iter().filter(|a| **a == SliceArg::Ellipsis).count() > 1 {
            return Err(Error::invalid(
                "index",
                "an index can only have a single ellipsis ('...')",
            ));
        }
        if consumed > nd {
            return Err(Error::invalid(
                "index",
                format!("too many indices for array: array is {nd}-dimensional, but {consumed} were indexed"),
            ));
        }
        // Expand the ellipsis (or pad at the end) with full slices.
        let mut full: Vec<SliceArg> = Vec::new();
        let mut expanded = false;
        for a in args {
            if *a == SliceArg::Ellipsis {
                full.extend(std::iter::repeat_n(all(), nd - consumed));
                expanded = true;
            } else {
                full.push(*a);
            }
        }
        if !expanded {
            full.extend(std::iter::repeat_n(all(), nd - consumed));
        }
        let mut axes = Vec::new();
        let mut out_shape: Vec<isize> = Vec::new();
        let mut ax = 0;
        for a in &full {
            match *a {
                SliceArg::NewAxis => out_shape.push(1),
                SliceArg::Index(i) => {
                    let d = n.shape[ax] as isize;
                    let j = if i < 0 { i + d } else { i };
                    if j < 0 || j >= d {
                        return Err(Error::invalid(
                            "index",
                            format!("index {i} is out of bounds for axis {ax} with size {d} (shape {:?})", n.shape),
                        ));
                    }
                    axes.push(AxisSlice {
                        start: j as usize,
                        len: 1,
                        step: 1,
                    });
                    ax += 1;
                }
                SliceArg::Range { start, stop, step } => {
                    if step == 0 {
                        return Err(Error::invalid("slice", "slice step cannot be zero"));
                    }
                    let sl = adjust_slice(start, stop, step, n.shape[ax]);
                    out_shape.push(sl.len as isize);
                    axes.push(sl);
                    ax += 1;
                }
                SliceArg::Ellipsis => unreachable!("expanded above"),
            }
        }
        let identity = axes
            .iter()
            .zip(&n.shape)
            .all(|(s, &d)| s.start == 0 && s.step == 1 && s.len == d);
        let sliced = if identity {
            self.clone()
        } else {
            let shape = axes.iter().map(|s| s.len).collect();
            self.record(Op::Slice { axes }, &[self], shape, n.dtype)?
        };
        sliced.reshape(&out_shape)
    }
}

/// numpy's `concatenate(tensors, axis)`.
///
/// # Errors
/// No tensors, 0-d tensors, dims that differ off the axis, axis out of range.
pub fn concatenate(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("concatenate", "need at least one array"))?;
    let s0 = first.tn()?.shape.clone();
    if s0.is_empty() {
        return Err(Error::invalid(
            "concatenate",
            "zero-dimensional arrays cannot be concatenated",
        ));
    }
    let ax = norm_axis("concatenate", axis, s0.len(), &s0)?;
    let mut dt = first.dtype();
    for t in &tensors[1..] {
        let s = t.tn()?.shape.clone();
        if s.len() != s0.len() || (0..s.len()).any(|i| i != ax && s[i] != s0[i]) {
            return Err(Error::shape("concatenate", &s0, &s));
        }
        dt = DType::promote(dt, t.dtype());
    }
    let cast: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.astype(dt))
        .collect::<Result<_>>()?;
    let mut shape = s0.clone();
    // Checked: the recorded shape's size is checked, but a wrapped extent would pass.
    shape[ax] = cast
        .iter()
        .try_fold(0usize, |acc, t| acc.checked_add(t.shape()[ax]))
        .ok_or_else(|| {
            Error::invalid(
                "concatenate",
                format!(
                    "the extents along axis {ax} add up to more than {}",
                    usize::MAX
                ),
            )
        })?;
    let refs: Vec<&Tensor> = cast.iter().collect();
    first.record(Op::Concat { axis: ax }, &refs, shape, dt)
}

/// numpy's `stack(tensors, axis)`.
///
/// # Errors
/// No tensors; shapes that differ.
pub fn stack(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("stack", "need at least one array"))?;
    let s0 = first.tn()?.shape.clone();
    for (i, t) in tensors.iter().enumerate() {
        if t.tn()?.shape != s0 {
            // numpy: "all input arrays must have the same shape"; name the operands.
            return Err(Error::shape(
                &format!("stack (operand 0 and operand {i})"),
                &s0,
                t.shape(),
            ));
        }
    }
    // The axis is counted in the result, which has one more dimension.
    norm_axis("stack", axis, s0.len() + 1, &s0)?;
    let ex: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.expand_dims(axis))
        .collect::<Result<_>>()?;
    concatenate(&ex.iter().collect::<Vec<_>>(), axis)
}

/// numpy's slice normalization (`PySlice_AdjustIndices`).
fn adjust_slice(start: Option<isize>, stop: Option<isize>, step: isize, len: usize) -> AxisSlice {
    let len = len as isize;
    let clamp = |v: isize, lo: isize, hi: isize| v.max(lo).min(hi);
    let (lo_def, hi_def) = if step > 0 { (0, len) } else { (len - 1, -1) };
    let fix = |v: Option<isize>, def: isize| -> isize {
        match v {
            None => def,
            Some(x) => {
                let x = if x < 0 { x + len } else { x };
                if step > 0 {
                    clamp(x, 0, len)
                } else {
                    clamp(x, -1, len - 1)
                }
            }
        }
    };
    let s = fix(start, lo_def);
    let e = fix(stop, hi_def);
    // In i128: `step` may be isize::MIN or isize::MAX, where `-step` or `e - s + step`
    // overflow isize.
    let (s128, e128, st) = (s as i128, e as i128, step as i128);
    let n = if step > 0 {
        if e > s {
            (e128 - s128 + st - 1) / st
        } else {
            0
        }
    } else if s > e {
        (s128 - e128 - st - 1) / -st
    } else {
        0
    };
    AxisSlice {
        start: if n == 0 { 0 } else { s as usize },
        len: n as usize,
        step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn numpy_slice_normalization() {
        let a = adjust_slice(None, None, -1, 5);
        assert_eq!((a.start, a.len, a.step), (4, 5, -1));
        let a = adjust_slice(Some(-2), None, 1, 5);
        assert_eq!((a.start, a.len), (3, 2));
        let a = adjust_slice(Some(1), Some(100), 3, 10);
        assert_eq!((a.start, a.len), (1, 3));
        let a = adjust_slice(Some(3), Some(1), 1, 10);
        assert_eq!(a.len, 0);
        let a = adjust_slice(Some(8), Some(-12), -3, 10);
        assert_eq!((a.start, a.len), (8, 3));
        // Extreme steps: one element, no overflow.
        let a = adjust_slice(None, None, isize::MAX, 10);
        assert_eq!((a.start, a.len), (0, 1));
        let a = adjust_slice(None, None, isize::MIN, 10);
        assert_eq!((a.start, a.len), (9, 1));
        let a = adjust_slice(Some(isize::MIN), Some(isize::MAX), 1, 10);
        assert_eq!((a.start, a.len), (0, 10));
    }
}
