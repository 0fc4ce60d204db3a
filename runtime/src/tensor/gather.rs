//! Cumulative sums and products, gathers (`take`, `take_along_axis`) and the ops whose length
//! depends on the data (`nonzero`, boolean masks, `unique`).
//!
//! Data-dependent lengths are staged (Mars's iterative tiling): the graph up to the mask is
//! planned and run first, measuring only how many rows each segment of the mask keeps (a small
//! int64 array); the node that selects the rows is then recorded with its length known, and
//! tiles like any other (out of core, fused with what follows). Each chunk checks that its mask
//! still keeps the measured count, so a mask that changed between the stages is an error,
//! never a wrong shape.

use super::{concatenate, norm_axis, Tensor};
use crate::array::HostArray;
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::op::{Op, ReduceOp};

/// What [`Tensor::unique`] returns (numpy's `unique_all`): the sorted distinct values, the
/// position of each one's first occurrence in the flattened input, the position of each input
/// element's value among `values` (shaped as the input) and how often each value occurs.
#[derive(Debug, Clone)]
pub struct Unique {
    /// Distinct values, ascending (NaN last).
    pub values: Tensor,
    /// First occurrence of each value in the flattened input (int64).
    pub indices: Tensor,
    /// For each input element, its value's position in `values` (int64, the input's shape).
    pub inverse: Tensor,
    /// Occurrences of each value (int64).
    pub counts: Tensor,
}

impl Tensor {
    fn flat(&self) -> Result<Tensor> {
        if self.ndim() == 1 {
            Ok(self.clone())
        } else {
            self.reshape(&[-1])
        }
    }

    fn scan(
        &self,
        prod: bool,
        axis: Option<isize>,
        dtype: Option<DType>,
        include_initial: bool,
    ) -> Result<Tensor> {
        let name = if prod { "cumprod" } else { "cumsum" };
        let n = self.tn()?.clone();
        let (x, axis) = match axis {
            Some(a) => (self.clone(), norm_axis(name, a, n.shape.len(), &n.shape)?),
            None => (self.flat()?, 0),
        };
        let op = if prod { ReduceOp::Prod } else { ReduceOp::Sum };
        let dt = dtype.unwrap_or_else(|| op.result_dtype(n.dtype));
        if dt == DType::Bool {
            return Err(Error::dtype(name, &[n.dtype, dt]));
        }
        let x = x.astype(dt)?;
        let shape = x.shape().to_vec();
        let out = x.record(Op::Scan { axis, prod }, &[&x], shape.clone(), dt)?;
        if !include_initial {
            return Ok(out);
        }
        let mut first = shape;
        first[axis] = 1;
        let init = self.sess.full(&first, Scalar::Int(prod as i64), dt);
        concatenate(&[&init, &out], axis as isize)
    }

    /// numpy's `cumsum` (the Array API's `cumulative_sum`): running sums along `axis` (`None`:
    /// of the flattened array), in `dtype` (default: int64 for bool and integers, the input's
    /// float type otherwise); `include_initial` puts the empty sum, 0, first. A chunked axis
    /// is scanned chunk by chunk in parallel, each chunk starting from the sum of the chunks
    /// before it (their totals, combined in order).
    ///
    /// # Errors
    /// An axis out of range; a bool `dtype`.
    pub fn cumsum(
        &self,
        axis: Option<isize>,
        dtype: Option<DType>,
        include_initial: bool,
    ) -> Result<Tensor> {
        self.scan(false, axis, dtype, include_initial)
    }

    /// numpy's `cumprod` (the Array API's `cumulative_prod`); as [`Tensor::cumsum`], with
    /// products (the empty product, 1, first with `include_initial`).
    ///
    /// # Errors
    /// As [`Tensor::cumsum`].
    pub fn cumprod(
        &self,
        axis: Option<isize>,
        dtype: Option<DType>,
        include_initial: bool,
    ) -> Result<Tensor> {
        self.scan(true, axis, dtype, include_initial)
    }

    /// numpy's `take`: the elements (slices) of `self` along `axis` (`None`: of the flattened
    /// array) at the integer `indices` (negative ones count from the end); the result's shape
    /// is `self.shape[..axis] + indices.shape + self.shape[axis+1..]`.
    ///
    /// The indices are computed first when they are not already held (a stage): tiling then
    /// knows them, and each result chunk reads only the chunks of `self` its indices touch.
    ///
    /// # Errors
    /// Non-integer indices; an index out of bounds (`IndexOutOfBounds`, numpy's IndexError);
    /// an axis out of range.
    pub fn take(&self, indices: &Tensor, axis: Option<isize>) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let it = indices.tn()?.clone();
        self.same_session(indices, "take")?;
        if !it.dtype.is_int() {
            return Err(Error::dtype("take", &[n.dtype, it.dtype]));
        }
        let (x, axis) = match axis {
            Some(a) => {
                if n.shape.is_empty() {
                    return Err(Error::invalid(
                        "take",
                        "a 0-d array has no axis to take along (shape [])",
                    ));
                }
                (self.clone(), norm_axis("take", a, n.shape.len(), &n.shape)?)
            }
            None => (self.flat()?, 0),
        };
        let xshape = x.shape().to_vec();
        let len = xshape[axis];
        let data = indices.materialize()?;
        let raw = data.cast(DType::I64);
        let raw = raw.as_array::<i64>().expect("cast to int64");
        let mut pos = Vec::with_capacity(raw.len());
        for &i in raw.iter() {
            let p = if i < 0 { i + len as i64 } else { i };
            if p < 0 || p >= len as i64 {
                return Err(Error::IndexOutOfBounds {
                    op: "take".into(),
                    index: i,
                    axis,
                    len,
                    shape: xshape.clone(),
                });
            }
            pos.push(p);
        }
        let count = pos.len();
        let positions = self.sess.from_host(HostArray::I64(
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[count]), pos).expect("1-d positions"),
        ));
        let mut shape = xshape.clone();
        shape[axis] = count;
        let out = x.record(Op::Take { axis }, &[&x, &positions], shape, n.dtype)?;
        if it.shape.len() == 1 {
            return Ok(out);
        }
        let mut fin: Vec<isize> = xshape[..axis].iter().map(|&d| d as isize).collect();
        fin.extend(it.shape.iter().map(|&d| d as isize));
        fin.extend(xshape[axis + 1..].iter().map(|&d| d as isize));
        out.reshape(&fin)
    }

    /// numpy's `take_along_axis`: `out[.., i, ..] = self[.., indices[.., i, ..], ..]` along
    /// `axis` (negative indices count from the end); `indices` has `self`'s number of
    /// dimensions and broadcasts with it off `axis`. Each result chunk holds its lanes of
    /// `self` whole along `axis` (as [`Tensor::sort`] does).
    ///
    /// # Errors
    /// Non-integer indices; a different number of dimensions; shapes that do not broadcast
    /// off `axis`; an axis out of range; an index out of bounds (when the chunk runs:
    /// `IndexOutOfBounds`).
    pub fn take_along_axis(&self, indices: &Tensor, axis: isize) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let it = indices.tn()?.clone();
        self.same_session(indices, "take_along_axis")?;
        if !it.dtype.is_int() {
            return Err(Error::dtype("take_along_axis", &[n.dtype, it.dtype]));
        }
        if n.shape.len() != it.shape.len() || n.shape.is_empty() {
            return Err(Error::invalid(
                "take_along_axis",
                format!(
                    "the array {:?} and the indices {:?} must have the same number of \
                     dimensions, at least 1",
                    n.shape, it.shape
                ),
            ));
        }
        let axis = norm_axis("take_along_axis", axis, n.shape.len(), &n.shape)?;
        let (mut a, mut b) = (n.shape.clone(), it.shape.clone());
        a[axis] = 1;
        b[axis] = 1;
        let common = super::broadcast_shapes("take_along_axis", &a, &b)
            .map_err(|_| Error::shape("take_along_axis", &n.shape, &it.shape))?;
        if n.shape[axis] == 0 && it.shape[axis] > 0 && common.iter().all(|&d| d > 0) {
            return Err(Error::IndexOutOfBounds {
                op: "take_along_axis".into(),
                index: 0,
                axis,
                len: 0,
                shape: n.shape.clone(),
            });
        }
        let (mut xs, mut is) = (common.clone(), common);
        xs[axis] = n.shape[axis];
        is[axis] = it.shape[axis];
        let x = self.broadcast_to(&xs)?;
        let idx = indices.astype(DType::I64)?.broadcast_to(&is)?;
        x.record(Op::TakeAlong { axis }, &[&x, &idx], is, n.dtype)
    }

    /// Rows (along axis 0) of each of `values` where the 1-D bool `mask` (as long as their
    /// axis 0) is true; one stage measures the mask for all of them.
    fn compact(values: &[&Tensor], mask: &Tensor) -> Result<Vec<Tensor>> {
        let m = mask.tn()?.clone();
        debug_assert!(m.dtype == DType::Bool && m.shape.len() == 1);
        let n = m.shape[0];
        let sess = mask.sess.clone();
        let row_bytes = values
            .iter()
            .map(|v| v.shape()[1..].iter().product::<usize>().max(1) * v.dtype().size())
            .max()
            .unwrap_or(1);
        let seg = (sess.config().chunk_bytes / row_bytes).clamp(1, n.max(1));
        let nseg = n.div_ceil(seg);
        let counts: Vec<usize> = if nseg == 0 {
            Vec::new()
        } else {
            // The stage: true rows per segment of `seg` (the mask padded to whole segments).
            let pad = nseg * seg - n;
            let padded = if pad > 0 {
                concatenate(&[mask, &sess.zeros(&[pad], DType::Bool)], 0)?
            } else {
                mask.clone()
            };
            let c = padded
                .reshape(&[nseg as isize, seg as isize])?
                .sum(1, false)?
                .to_array::<i64>()?;
            c.iter().map(|&v| v as usize).collect()
        };
        let total: usize = counts.iter().sum();
        values
            .iter()
            .map(|v| {
                let mut shape = v.shape().to_vec();
                shape[0] = total;
                v.record(
                    Op::Compact {
                        seg,
                        counts: counts.clone(),
                    },
                    &[v, mask],
                    shape,
                    v.dtype(),
                )
            })
            .collect()
    }

    /// The int64 coordinates of the elements that are not zero (numpy's `nonzero`: one array
    /// per dimension, row-major order). Their length depends on the data: it is measured by
    /// running the graph up to the mask first (see the module docs).
    ///
    /// # Errors
    /// A 0-d tensor (numpy refuses it too).
    pub fn nonzero(&self) -> Result<Vec<Tensor>> {
        let n = self.tn()?.clone();
        if n.shape.is_empty() {
            return Err(Error::invalid(
                "nonzero",
                "a 0-d array has no coordinates; use atleast_1d(x).nonzero()",
            ));
        }
        let flat = self.flat()?;
        let mask = if n.dtype == DType::Bool {
            flat
        } else {
            flat.ne(0)?
        };
        let size = n.shape.iter().product::<usize>();
        let pos = self.sess.arange(0.0, size as f64, 1.0, DType::I64)?;
        let mut coords = Vec::with_capacity(n.shape.len());
        let mut stride = size;
        for &d in &n.shape {
            stride /= d.max(1);
            let c = if stride == 1 {
                pos.clone()
            } else {
                pos.floor_divide(stride as i64)?
            };
            coords.push(if d == size { c } else { c.rem(d as i64)? });
        }
        let refs: Vec<&Tensor> = coords.iter().collect();
        Tensor::compact(&refs, &mask)
    }

    /// `self[mask]`: the elements (rows past the mask's dimensions) where the bool `mask` is
    /// true, `mask.shape` equal to the leading dimensions of `self`; the result's first axis
    /// has a data-dependent length (see the module docs).
    ///
    /// # Errors
    /// A mask that is not bool, is 0-d, or does not match the leading dimensions.
    pub fn mask_select(&self, mask: &Tensor) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let m = mask.tn()?.clone();
        self.same_session(mask, "boolean index")?;
        if m.dtype != DType::Bool || m.shape.is_empty() {
            return Err(Error::invalid(
                "boolean index",
                format!(
                    "the mask must be a bool array of at least 1 dimension (got {} {:?})",
                    m.dtype, m.shape
                ),
            ));
        }
        if m.shape.len() > n.shape.len() || n.shape[..m.shape.len()] != m.shape[..] {
            return Err(Error::shape("boolean index", &n.shape, &m.shape));
        }
        let lead: usize = m.shape.iter().product();
        let mut rows: Vec<isize> = vec![lead as isize];
        rows.extend(n.shape[m.shape.len()..].iter().map(|&d| d as isize));
        let x = if m.shape.len() == 1 {
            self.clone()
        } else {
            self.reshape(&rows)?
        };
        let mflat = mask.flat()?;
        Ok(Tensor::compact(&[&x], &mflat)?.remove(0))
    }

    /// numpy's `unique` with everything (the Array API's `unique_all`) over the flattened
    /// array: see [`Unique`]. Values sort as [`Tensor::sort`] does; with `equal_nan` all NaNs
    /// are one value (numpy's `unique`), without it each NaN is its own (the Array API's).
    /// The number of distinct values depends on the data (see the module docs); the sorted
    /// values are computed once and kept, the sorting positions only for `indices` and
    /// `inverse`.
    ///
    /// # Errors
    /// The tensor's deferred error.
    pub fn unique(&self, equal_nan: bool) -> Result<Unique> {
        let n = self.tn()?.clone();
        let flat = self.flat()?;
        let size = flat.shape()[0];
        if size == 0 {
            let e = |dt| self.sess.zeros(&[0], dt);
            return Ok(Unique {
                values: e(n.dtype),
                indices: e(DType::I64),
                inverse: self.sess.zeros(&n.shape, DType::I64),
                counts: e(DType::I64),
            });
        }
        // The sorted values are kept (the measuring stage and the outputs read them); the
        // positions are sorted only when `indices` or `inverse` are used, so `values` and
        // `counts` of a 1-D array larger than memory go through the sample sort alone.
        let sorted = flat.sort(0, false)?;
        sorted.materialize()?;
        let perm = flat.argsort(0, false)?;
        let head = self.sess.full(&[1], true, DType::Bool);
        let flags = if size == 1 {
            head
        } else {
            let a = sorted.slice(&[super::s(Some(1), None, 1)])?;
            let b = sorted.slice(&[super::s(None, Some(-1), 1)])?;
            let mut differ = a.ne(&b)?;
            if equal_nan && n.dtype.is_float() {
                differ =
                    differ.logical_and(&a.isnan()?.logical_and(&b.isnan()?)?.logical_not()?)?;
            }
            concatenate(&[&head, &differ], 0)?
        };
        let pos = self.sess.arange(0.0, size as f64, 1.0, DType::I64)?;
        let mut out = Tensor::compact(&[&sorted, &pos], &flags)?;
        let first = out.pop().expect("two compacts");
        let values = out.pop().expect("two compacts");
        let groups = first.shape()[0];
        let next = concatenate(
            &[
                &first.slice(&[super::s(Some(1), None, 1)])?,
                &self.sess.full(&[1], size as i64, DType::I64),
            ],
            0,
        )?;
        debug_assert_eq!(next.shape()[0], groups);
        let counts = next.sub(&first)?;
        let indices = perm.take_along_axis(&first, 0)?;
        let group = flags.cumsum(None, Some(DType::I64), false)?.sub(1)?;
        let back = perm.argsort(0, false)?;
        let inverse = group.take_along_axis(&back, 0)?;
        let inverse = if n.shape.len() == 1 {
            inverse
        } else {
            let s: Vec<isize> = n.shape.iter().map(|&d| d as isize).collect();
            inverse.reshape(&s)?
        };
        Ok(Unique {
            values,
            indices,
            inverse,
            counts,
        })
    }
}
