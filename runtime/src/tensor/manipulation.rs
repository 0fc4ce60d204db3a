//! The Array API's manipulation, creation and linear-algebra composites (flip, roll, tile,
//! repeat, moveaxis, permute_dims, matrix_transpose, expand_dims over several axes, unstack,
//! broadcast_arrays, tril/triu, meshgrid, diff, vecdot, count_nonzero, positive), built from
//! existing nodes (slice, concatenate, reshape, broadcast, transpose, where, reductions) so the
//! tiler, fuser and renderers handle them chunked and out of core like everything else.

use super::{broadcast_shapes, concatenate, norm_axis, s, Axes, SliceArg, Tensor};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// `axes` normalized against `ndim`, each at most once (numpy's `normalize_axis_tuple`).
fn axis_list(op: &str, axes: &[isize], ndim: usize, shape: &[usize]) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = norm_axis(op, a, ndim, shape)?;
        if out.contains(&a) {
            return Err(Error::invalid(
                op,
                format!("repeated axis {a} in {axes:?} (array of shape {shape:?})"),
            ));
        }
        out.push(a);
    }
    Ok(out)
}

/// `a * b` for shape arithmetic, or an error naming `op` and the shape.
fn mul(op: &str, a: usize, b: usize, shape: &[usize]) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| {
        Error::invalid(
            op,
            format!("result of an array of shape {shape:?} has an extent past usize ({a} * {b})"),
        )
    })
}

fn ishape(shape: &[usize]) -> Vec<isize> {
    shape.iter().map(|&d| d as isize).collect()
}

impl Tensor {
    /// numpy's `positive`: the values unchanged (a new name for the same node).
    ///
    /// # Errors
    /// `UnsupportedDType` for bool (numpy has no `positive` loop for it).
    pub fn positive(&self) -> Result<Tensor> {
        let d = self.tn()?.dtype;
        if d == DType::Bool {
            return Err(Error::dtype("positive", &[d]));
        }
        Ok(self.clone())
    }

    /// numpy's `flip`: reverses the order of elements along `axes` (`None`: every axis).
    ///
    /// # Errors
    /// An axis out of range or repeated.
    pub fn flip(&self, axes: Option<&[isize]>) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        let axes = match axes {
            None => (0..nd).collect(),
            Some(a) => axis_list("flip", a, nd, &n.shape)?,
        };
        let args: Vec<SliceArg> = (0..nd)
            .map(|a| {
                if axes.contains(&a) {
                    s(None, None, -1)
                } else {
                    s(None, None, 1)
                }
            })
            .collect();
        self.slice(&args)
    }

    /// numpy's `roll`: elements shifted by `shift` along `axes`, wrapping around (`axes`
    /// `None`: over the flattened array, shape restored). One shift for all axes, or one per
    /// axis; shifts on a repeated axis add up, as numpy's.
    ///
    /// # Errors
    /// Shifts and axes of different lengths (other than one shift), an axis out of range.
    pub fn roll(&self, shift: &[isize], axes: Option<&[isize]>) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let Some(axes) = axes else {
            if shift.len() != 1 {
                return Err(Error::invalid(
                    "roll",
                    format!("without axes, shift must be one value, not {shift:?}"),
                ));
            }
            let flat = self.reshape(&[-1])?;
            return flat.roll(shift, Some(&[0]))?.reshape(&ishape(&n.shape));
        };
        let nd = n.shape.len();
        if shift.len() != axes.len() && shift.len() != 1 {
            return Err(Error::invalid(
                "roll",
                format!("shift {shift:?} and axis {axes:?} must have the same length"),
            ));
        }
        let mut total = vec![0i128; nd];
        for (i, &a) in axes.iter().enumerate() {
            let a = norm_axis("roll", a, nd, &n.shape)?;
            total[a] += shift[if shift.len() == 1 { 0 } else { i }] as i128;
        }
        let mut out = self.clone();
        for (a, &t) in total.iter().enumerate() {
            let len = n.shape[a];
            if len == 0 {
                continue;
            }
            let k = t.rem_euclid(len as i128) as usize;
            if k == 0 {
                continue;
            }
            // out[..., :k, ...] = x[..., len-k:, ...]; out[..., k:, ...] = x[..., :len-k, ...]
            let cut = |start: Option<isize>, stop: Option<isize>| {
                let mut args = vec![s(None, None, 1); nd];
                args[a] = s(start, stop, 1);
                out.slice(&args)
            };
            let split = (len - k) as isize;
            let tail = cut(Some(split), None)?;
            let head = cut(None, Some(split))?;
            out = concatenate(&[&tail, &head], a as isize)?;
        }
        Ok(out)
    }

    /// numpy's `tile`: the array repeated `reps[i]` times along each axis (shorter `reps` are
    /// padded with leading 1s, a shorter array with leading size-1 axes).
    ///
    /// # Errors
    /// A result extent that overflows.
    pub fn tile(&self, reps: &[usize]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let d = n.shape.len().max(reps.len());
        let mut shape = vec![1usize; d - n.shape.len()];
        shape.extend(&n.shape);
        let mut r = vec![1usize; d - reps.len()];
        r.extend(reps);
        // (r0, s0, r1, s1, ...) by broadcasting (1, s0, 1, s1, ...), then merged pairwise.
        let mut inter = Vec::with_capacity(2 * d);
        let mut big = Vec::with_capacity(2 * d);
        let mut out = Vec::with_capacity(d);
        for i in 0..d {
            inter.extend([1, shape[i] as isize]);
            big.extend([r[i], shape[i]]);
            out.push(mul("tile", r[i], shape[i], &n.shape)? as isize);
        }
        crate::graph::checked_shape("tile", &big, n.dtype)?;
        self.reshape(&inter)?.broadcast_to(&big)?.reshape(&out)
    }

    /// numpy's `repeat` with one count: each element repeated `repeats` times along `axis`
    /// (`None`: over the flattened array).
    ///
    /// # Errors
    /// Negative `repeats`, an axis out of range, a result extent that overflows.
    pub fn repeat(&self, repeats: i64, axis: Option<isize>) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let r = usize::try_from(repeats).map_err(|_| {
            Error::invalid(
                "repeat",
                format!("negative repeats {repeats} (array of shape {:?})", n.shape),
            )
        })?;
        let Some(axis) = axis else {
            return self.reshape(&[-1])?.repeat(repeats, Some(0));
        };
        let a = norm_axis("repeat", axis, n.shape.len(), &n.shape)?;
        // (..., len, 1, ...) -> (..., len, r, ...) -> (..., len * r, ...)
        let mut inter = ishape(&n.shape);
        inter.insert(a + 1, 1);
        let mut big = n.shape.clone();
        big.insert(a + 1, r);
        let mut out = ishape(&n.shape);
        out[a] = mul("repeat", n.shape[a], r, &n.shape)? as isize;
        crate::graph::checked_shape("repeat", &big, n.dtype)?;
        self.reshape(&inter)?.broadcast_to(&big)?.reshape(&out)
    }

    /// numpy's `moveaxis`: axes `src` moved to positions `dst`, the others kept in order.
    ///
    /// # Errors
    /// `src` and `dst` of different lengths, axes out of range or repeated.
    pub fn moveaxis(&self, src: &[isize], dst: &[isize]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        if src.len() != dst.len() {
            return Err(Error::invalid(
                "moveaxis",
                format!(
                    "source {src:?} and destination {dst:?} must have the same number of elements"
                ),
            ));
        }
        let src = axis_list("moveaxis", src, nd, &n.shape)?;
        let dst = axis_list("moveaxis", dst, nd, &n.shape)?;
        let mut order: Vec<usize> = (0..nd).filter(|a| !src.contains(a)).collect();
        let mut pairs: Vec<(usize, usize)> = dst.into_iter().zip(src).collect();
        pairs.sort_unstable();
        for (d, s) in pairs {
            order.insert(d, s);
        }
        let perm: Vec<isize> = order.into_iter().map(|a| a as isize).collect();
        self.transpose(Some(&perm))
    }

    /// The Array API's `permute_dims` (numpy's `transpose` with axes).
    ///
    /// # Errors
    /// `axes` not a permutation of the array's axes.
    pub fn permute_dims(&self, axes: &[isize]) -> Result<Tensor> {
        self.transpose(Some(axes))
    }

    /// The Array API's `matrix_transpose`: the last two axes swapped.
    ///
    /// # Errors
    /// Fewer than two dimensions.
    pub fn matrix_transpose(&self) -> Result<Tensor> {
        let n = self.tn()?;
        if n.shape.len() < 2 {
            return Err(Error::invalid(
                "matrix_transpose",
                format!("needs at least 2 dimensions, got shape {:?}", n.shape),
            ));
        }
        self.swapaxes(-1, -2)
    }

    /// numpy's `expand_dims` with several axes: size-1 axes inserted at `axes`, counted in the
    /// result (`ndim + axes.len()` dimensions).
    ///
    /// # Errors
    /// An axis out of range or repeated.
    pub fn expand_dims_axes(&self, axes: &[isize]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let out_nd = n.shape.len() + axes.len();
        let at = axis_list("expand_dims", axes, out_nd, &n.shape)?;
        let mut rest = n.shape.iter();
        let shape: Vec<isize> = (0..out_nd)
            .map(|a| {
                if at.contains(&a) {
                    1
                } else {
                    rest.next().map_or(1, |&d| d as isize)
                }
            })
            .collect();
        self.reshape(&shape)
    }

    /// The Array API's `unstack`: the slices along `axis`, each without that axis.
    ///
    /// # Errors
    /// A 0-d array, an axis out of range.
    pub fn unstack(&self, axis: isize) -> Result<Vec<Tensor>> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        if nd == 0 {
            return Err(Error::invalid(
                "unstack",
                "a 0-d array has no axis to unstack",
            ));
        }
        let a = norm_axis("unstack", axis, nd, &n.shape)?;
        (0..n.shape[a])
            .map(|i| {
                let mut args = vec![s(None, None, 1); nd];
                args[a] = SliceArg::Index(i as isize);
                self.slice(&args)
            })
            .collect()
    }

    /// numpy's `tril`: elements above the `k`-th diagonal of the last two axes set to zero.
    ///
    /// # Errors
    /// Fewer than two dimensions.
    pub fn tril(&self, k: i64) -> Result<Tensor> {
        self.triangle("tril", k, true)
    }

    /// numpy's `triu`: elements below the `k`-th diagonal of the last two axes set to zero.
    ///
    /// # Errors
    /// Fewer than two dimensions.
    pub fn triu(&self, k: i64) -> Result<Tensor> {
        self.triangle("triu", k, false)
    }

    /// `where(col - row <= k, x, 0)` (lower) or `where(col - row >= k, x, 0)`, the mask from two
    /// ranges broadcast over the batch axes.
    fn triangle(&self, op: &str, k: i64, lower: bool) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        if nd < 2 {
            return Err(Error::invalid(
                op,
                format!("needs at least 2 dimensions, got shape {:?}", n.shape),
            ));
        }
        let (rows, cols) = (n.shape[nd - 2], n.shape[nd - 1]);
        let sess = self.session();
        let r = sess
            .arange(0.0, rows as f64, 1.0, DType::I64)?
            .reshape(&[rows as isize, 1])?;
        let c = sess
            .arange(0.0, cols as f64, 1.0, DType::I64)?
            .reshape(&[1, cols as isize])?;
        let d = c.sub(&r)?;
        let mask = if lower { d.le(k)? } else { d.ge(k)? };
        let zero = sess.zeros(&[], n.dtype);
        mask.where_(self, &zero)
    }

    /// numpy's `diff`: the `n`-th discrete difference along `axis`, after `prepend`/`append`
    /// (a 0-d value is broadcast to one slice) are concatenated; bool uses `!=` as numpy.
    ///
    /// # Errors
    /// A 0-d array, an axis out of range, prepend/append shapes that do not fit.
    pub fn diff(
        &self,
        n: usize,
        axis: isize,
        prepend: Option<&Tensor>,
        append: Option<&Tensor>,
    ) -> Result<Tensor> {
        let t = self.tn()?.clone();
        let nd = t.shape.len();
        if nd == 0 {
            return Err(Error::invalid(
                "diff",
                "diff requires input that is at least one dimensional",
            ));
        }
        let a = norm_axis("diff", axis, nd, &t.shape)?;
        if n == 0 {
            return Ok(self.clone());
        }
        let edge = |e: &Tensor| -> Result<Tensor> {
            if e.ndim() == 0 {
                let mut sh = t.shape.clone();
                sh[a] = 1;
                e.broadcast_to(&sh)
            } else {
                Ok(e.clone())
            }
        };
        let mut x = self.clone();
        if prepend.is_some() || append.is_some() {
            let mut parts = Vec::new();
            if let Some(p) = prepend {
                parts.push(edge(p)?);
            }
            parts.push(self.clone());
            if let Some(q) = append {
                parts.push(edge(q)?);
            }
            x = concatenate(&parts.iter().collect::<Vec<_>>(), a as isize)?;
        }
        for _ in 0..n {
            let len = x.shape()[a];
            if len == 0 {
                break;
            }
            let cut = |start: Option<isize>, stop: Option<isize>| {
                let mut args = vec![s(None, None, 1); nd];
                args[a] = s(start, stop, 1);
                x.slice(&args)
            };
            let (hi, lo) = (cut(Some(1), None)?, cut(None, Some(-1))?);
            x = if x.dtype() == DType::Bool {
                hi.ne(&lo)?
            } else {
                hi.sub(&lo)?
            };
        }
        Ok(x)
    }

    /// The Array API's `vecdot`: `sum(self * other, axis)` with the other axes broadcast, in
    /// the operands' promoted dtype (as numpy's `vecdot`).
    ///
    /// # Errors
    /// The contracted axis of different lengths, axes out of range, shapes that do not
    /// broadcast, dtypes numpy rejects.
    pub fn vecdot(&self, other: &Tensor, axis: isize) -> Result<Tensor> {
        let (sa, sb) = (self.tn()?.shape.clone(), other.tn()?.shape.clone());
        if sa.is_empty() || sb.is_empty() {
            return Err(Error::invalid(
                "vecdot",
                format!("needs at least 1 dimension (shapes {sa:?} and {sb:?})"),
            ));
        }
        let aa = norm_axis("vecdot", axis, sa.len(), &sa)?;
        let ab = norm_axis("vecdot", axis, sb.len(), &sb)?;
        if sa[aa] != sb[ab] {
            return Err(Error::shape("vecdot", &sa, &sb));
        }
        let dt = DType::promote(self.dtype(), other.dtype());
        // The contracted axis last on both, so the rest broadcasts as numpy's gufunc does.
        let x = self.moveaxis(&[aa as isize], &[-1])?;
        let y = other.moveaxis(&[ab as isize], &[-1])?;
        broadcast_shapes(
            "vecdot",
            &x.shape()[..sa.len() - 1],
            &y.shape()[..sb.len() - 1],
        )?;
        x.mul(&y)?.sum(-1, false)?.astype(dt)
    }

    /// numpy's `count_nonzero` over `axes` (int64; NaN counts as non-zero).
    ///
    /// # Errors
    /// An axis out of range or repeated.
    pub fn count_nonzero(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.astype(DType::Bool)?.sum(axes, keepdims)
    }
}

/// numpy's `broadcast_arrays`: every tensor broadcast to the common shape.
///
/// # Errors
/// Shapes that do not broadcast (named all together).
pub fn broadcast_arrays(tensors: &[&Tensor]) -> Result<Vec<Tensor>> {
    let mut shape: Vec<usize> = Vec::new();
    for t in tensors {
        shape = broadcast_shapes("broadcast_arrays", &shape, t.tn()?.shape.as_slice()).map_err(
            |_| {
                let all: Vec<Vec<usize>> = tensors.iter().map(|t| t.shape().to_vec()).collect();
                Error::invalid(
                    "broadcast_arrays",
                    format!("shapes {all:?} cannot be broadcast together"),
                )
            },
        )?;
    }
    tensors.iter().map(|t| t.broadcast_to(&shape)).collect()
}

/// numpy's `meshgrid`: coordinate arrays from 1-D coordinate vectors (inputs are flattened, as
/// numpy's); `indexing` is `"xy"` (the first two axes swapped, numpy's default) or `"ij"`.
///
/// # Errors
/// Another `indexing`; a result past the size limits.
pub fn meshgrid(tensors: &[&Tensor], indexing: &str) -> Result<Vec<Tensor>> {
    let xy = match indexing {
        "xy" => true,
        "ij" => false,
        other => {
            return Err(Error::invalid(
                "meshgrid",
                format!("indexing must be 'xy' or 'ij', not {other:?}"),
            ))
        }
    };
    let flat: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.reshape(&[-1]))
        .collect::<Result<_>>()?;
    let k = flat.len();
    let mut shape: Vec<usize> = flat.iter().map(|t| t.shape()[0]).collect();
    // Output axis of input i.
    let pos = |i: usize| -> usize {
        if xy && k >= 2 && i < 2 {
            1 - i
        } else {
            i
        }
    };
    if xy && k >= 2 {
        shape.swap(0, 1);
    }
    flat.iter()
        .enumerate()
        .map(|(i, t)| {
            let mut sh = vec![1isize; k];
            sh[pos(i)] = -1;
            t.reshape(&sh)?.broadcast_to(&shape)
        })
        .collect()
}
