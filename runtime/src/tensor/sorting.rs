//! Sorting along an axis: `sort`, `argsort` (stable, ascending or descending) and `topk`.

use super::{norm_axis, Tensor};
use crate::array::HostArray;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{pivot_order, Op};

/// Samples drawn per bucket of a sample sort: with 32, the largest bucket is rarely more than
/// about 1.5 times its share.
const SAMPLES_PER_BUCKET: usize = 32;

/// A well-mixed 64-bit hash (splitmix64's finalizer): sample positions spread over the input
/// without following any stride in the data.
fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pivot encoding of every element of `a` (see [`Op::BucketCount`]): f64 bits for floats,
/// i64 bits for integers and bool.
fn pivot_bits(a: &HostArray) -> Vec<u64> {
    match a {
        HostArray::F32(v) => v.iter().map(|&x| (x as f64).to_bits()).collect(),
        HostArray::F64(v) => v.iter().map(|&x| x.to_bits()).collect(),
        HostArray::I32(v) => v.iter().map(|&x| x as i64 as u64).collect(),
        HostArray::I64(v) => v.iter().map(|&x| x as u64).collect(),
        HostArray::Bool(v) => v.iter().map(|&x| x as u64).collect(),
    }
}

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
        let bytes = n.shape[0].saturating_mul(n.dtype.size());
        if n.shape.len() == 1 && n.shape[0] > 1 && bytes > self.sess.config().chunk_bytes {
            return self.sample_sort(descending, arg);
        }
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

    /// Sample sort of a 1-D tensor larger than a chunk, in three runs: samples at
    /// pseudo-random positions give the pivots (every segment's share of the buckets); one
    /// pass counts each segment's elements per bucket; the sort itself then splits each
    /// segment once and sorts every bucket on its own, so no task holds more than about one
    /// chunk and the data never has to be whole. Pivots are (value, position) pairs, so equal
    /// values split by position and the buckets stay balanced whatever the ties; the input is
    /// computed once per run (three times in all) unless it is held.
    fn sample_sort(&self, descending: bool, arg: bool) -> Result<Tensor> {
        let n = self.shape()[0];
        let dt = self.dtype();
        let seg = (self.sess.config().chunk_bytes / dt.size()).max(1);
        let nseg = n.div_ceil(seg);
        let nb = nseg;
        let want = nb.saturating_mul(SAMPLES_PER_BUCKET).min(n);
        let mut pos: Vec<i64> = (0..want as u64)
            .map(|i| (splitmix64(i) % n as u64) as i64)
            .collect();
        pos.sort_unstable();
        pos.dedup();
        let idx = self.sess.from_vec(pos.clone(), &[pos.len()])?;
        let vals = self.take(&idx, Some(0))?.execute()?;
        let mut samples: Vec<(u64, u64)> = pivot_bits(&vals)
            .into_iter()
            .zip(pos.iter().map(|&p| p as u64))
            .collect();
        samples.sort_unstable_by(|a, b| pivot_order(dt, descending, a, b));
        let mut pivots: Vec<(u64, u64)> =
            (1..nb).map(|j| samples[j * samples.len() / nb]).collect();
        pivots.dedup();
        let counts = self
            .record(
                Op::BucketCount {
                    seg,
                    pivots: pivots.clone(),
                    descending,
                },
                &[self],
                vec![nseg, pivots.len() + 1],
                DType::I64,
            )?
            .to_array::<i64>()?;
        let counts: Vec<usize> = counts.iter().map(|&c| c as usize).collect();
        let out = if arg { DType::I64 } else { dt };
        self.record(
            Op::SampleSort {
                seg,
                pivots,
                counts,
                descending,
                arg,
            },
            &[self],
            vec![n],
            out,
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
        let (nx, ny) = (self.tn()?.clone(), queries.tn()?.clone());
        // Float data on a host backend: the fused kernel (distance panels made and reduced in
        // cache). Device backends keep the GEMM on the device: the composition below.
        if nx.dtype == ny.dtype
            && matches!(nx.dtype, DType::F32 | DType::F64)
            && !self.session().backend().device_resident()
        {
            let shape = vec![sy[0], k];
            let op = |arg| Op::Knn { k, arg };
            let v = self.record(op(false), &[self, queries], shape.clone(), nx.dtype)?;
            let i = self.record(op(true), &[self, queries], shape, DType::I64)?;
            return Ok((v, i));
        }
        let xx = (self * self).sum(1, false)?;
        let yy = (queries * queries).sum(1, true)?;
        let cross = queries.matmul(&self.matrix_transpose()?)?;
        let d2 = (yy - cross * 2.0 + xx).maximum(0.0)?;
        d2.topk(k, 1, false)
    }
}
