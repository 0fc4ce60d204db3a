//! Tiling of movement ops (transpose, reshape, broadcast, slice, concatenate): each output
//! chunk reads the input chunks its box comes from; grids follow the input where they can.

use super::{auto_chunk_shape, boundaries, split, union_grid, Tiler};
use crate::array::Region;
use crate::chunk::{grid_indices, ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::Result;
use crate::op::AxisSlice;

/// One output chunk of a sliced axis: (length, input chunk index, local (start, stop)).
type SliceRun = (usize, usize, (usize, usize));

impl Tiler<'_> {
    /// Axes permuted: chunk grid permuted with them.
    pub(super) fn transpose(&mut self, t: &Tiled, perm: &[usize], dtype: DType) -> Result<Tiled> {
        let grid: Vec<Vec<usize>> = perm.iter().map(|&p| t.grid[p].clone()).collect();
        let counts: Vec<usize> = grid.iter().map(|g| g.len()).collect();
        let mut chunks = Vec::new();
        for idx in grid_indices(&counts) {
            let mut in_idx = vec![0; idx.len()];
            for (i, &p) in perm.iter().enumerate() {
                in_idx[p] = idx[i];
            }
            let src = t.at(&in_idx);
            let sh: Vec<usize> = perm.iter().map(|&p| self.cg.node(src).shape[p]).collect();
            chunks.push(self.push(
                ChunkOp::Transpose {
                    perm: perm.to_vec(),
                },
                vec![src],
                sh,
                dtype,
            ));
        }
        Ok(Tiled { grid, chunks })
    }

    /// New and stretched axes cut by the byte budget; kept axes keep the input's grid.
    pub(super) fn broadcast_to(
        &mut self,
        t: &Tiled,
        ins: &[usize],
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let d = shape.len() - ins.len();
        let hint = auto_chunk_shape(shape, dtype, self.chunk_bytes);
        let kept = |a: usize| a >= d && ins[a - d] == shape[a];
        let counts: Vec<usize> = (0..shape.len())
            .map(|a| {
                if kept(a) {
                    t.grid[a - d].len()
                } else {
                    shape[a].div_ceil(hint[a]).max(1)
                }
            })
            .collect();
        self.reserve(shape, &hint, &counts, 1)?;
        let grid: Vec<Vec<usize>> = (0..shape.len())
            .map(|a| {
                if kept(a) {
                    t.grid[a - d].clone()
                } else {
                    split(shape[a], hint[a])
                }
            })
            .collect();
        self.per_chunk(grid, dtype, |idx, _| {
            let in_idx: Vec<usize> = (0..ins.len())
                .map(|b| {
                    if ins[b] == shape[b + d] {
                        idx[b + d]
                    } else {
                        0
                    }
                })
                .collect();
            (ChunkOp::BroadcastTo, smallvec::smallvec![t.at(&in_idx)])
        })
    }

    /// Each output chunk is the selected part of one input chunk.
    pub(super) fn slice(&mut self, t: &Tiled, axes: &[AxisSlice], dtype: DType) -> Result<Tiled> {
        // Per axis: (output sizes, input chunk index, local (start, stop), step) per output chunk.
        let mut per_axis: Vec<Vec<SliceRun>> = Vec::new();
        for (a, sl) in axes.iter().enumerate() {
            let b = boundaries(&t.grid[a]);
            let mut runs = Vec::new();
            for c in 0..t.grid[a].len() {
                let (c0, c1) = (b[c], b[c + 1]);
                let (lo, hi) = selected_range(sl.start, sl.len, sl.step, c0, c1);
                if lo < hi {
                    let first = sl.index(lo) - c0;
                    let last = sl.index(hi - 1) - c0;
                    let local = if sl.step > 0 {
                        (first, last + 1)
                    } else {
                        (last, first + 1)
                    };
                    runs.push((hi - lo, c, local));
                }
            }
            if sl.step < 0 {
                runs.reverse();
            }
            per_axis.push(runs);
        }
        let grid: Vec<Vec<usize>> = per_axis
            .iter()
            .map(|r| r.iter().map(|x| x.0).collect())
            .collect();
        let steps: Vec<isize> = axes.iter().map(|s| s.step).collect();
        self.per_chunk(grid, dtype, |idx, _| {
            let in_idx: Vec<usize> = idx
                .iter()
                .enumerate()
                .map(|(a, &i)| per_axis[a][i].1)
                .collect();
            let region: Region = idx
                .iter()
                .enumerate()
                .map(|(a, &i)| per_axis[a][i].2)
                .collect();
            (
                ChunkOp::Slice {
                    region,
                    steps: steps.clone(),
                },
                smallvec::smallvec![t.at(&in_idx)],
            )
        })
    }

    /// Inputs rechunked to a common grid off the axis; their chunks laid end to end along it.
    pub(super) fn concat(
        &mut self,
        inputs: &[Tiled],
        in_shapes: &[Vec<usize>],
        axis: usize,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let nd = shape.len();
        let live: Vec<usize> = (0..inputs.len())
            .filter(|&i| in_shapes[i][axis] > 0)
            .collect();
        let mut grid: Vec<Vec<usize>> = (0..nd)
            .map(|a| {
                if a == axis {
                    vec![]
                } else {
                    union_grid(&live.iter().map(|&i| &inputs[i].grid[a]).collect::<Vec<_>>())
                }
            })
            .collect();
        let mut parts = Vec::new();
        for &i in &live {
            let mut target = grid.clone();
            target[axis] = inputs[i].grid[axis].clone();
            parts.push(self.rechunk(&inputs[i], &target, dtype)?);
        }
        grid[axis] = parts.iter().flat_map(|p| p.grid[axis].clone()).collect();
        let counts: Vec<usize> = grid.iter().map(|g| g.len()).collect();
        let mut chunks = Vec::new();
        for idx in grid_indices(&counts) {
            let mut k = idx[axis];
            let mut p = 0;
            while k >= parts[p].grid[axis].len() {
                k -= parts[p].grid[axis].len();
                p += 1;
            }
            let mut in_idx = idx.clone();
            in_idx[axis] = k;
            chunks.push(parts[p].at(&in_idx));
        }
        Ok(Tiled { grid, chunks })
    }

    pub(super) fn reshape(
        &mut self,
        t: &Tiled,
        in_shape: &[usize],
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let strip = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if strip(in_shape) == strip(shape) {
            // Only size-1 axes move: chunk-local.
            let big_in: Vec<usize> = (0..in_shape.len()).filter(|&a| in_shape[a] != 1).collect();
            let big_out: Vec<usize> = (0..shape.len()).filter(|&a| shape[a] != 1).collect();
            let grid: Vec<Vec<usize>> = (0..shape.len())
                .map(|a| match big_out.iter().position(|&b| b == a) {
                    Some(k) => t.grid[big_in[k]].clone(),
                    None => vec![1],
                })
                .collect();
            return self.per_chunk(grid, dtype, |idx, _| {
                let mut in_idx = vec![0; in_shape.len()];
                for (k, &b) in big_out.iter().enumerate() {
                    in_idx[big_in[k]] = idx[b];
                }
                (ChunkOp::Reshape, smallvec::smallvec![t.at(&in_idx)])
            });
        }
        // General case: each output box gathers from exactly the input chunks its elements come
        // from, found by walking the box's rows (runs of consecutive flat indices) through the
        // input grid one input-chunk segment at a time.
        let max_chunk = t
            .chunks
            .iter()
            .map(|&c| self.cg.node(c).shape.iter().product::<usize>())
            .max()
            .unwrap_or(1);
        let cs = auto_chunk_shape(shape, dtype, max_chunk.saturating_mul(dtype.size()));
        let grid = self.grid_for(shape, &cs)?;
        let in_bounds: Vec<Vec<usize>> = t.grid.iter().map(|g| boundaries(g)).collect();
        let in_full = in_shape.to_vec();
        let out_full = shape.to_vec();
        let in_strides = crate::ir::row_major_strides(in_shape);
        let t_starts = t.starts();
        let out_strides = crate::ir::row_major_strides(shape);
        self.per_chunk(grid, dtype, |_, region| {
            let nd = region.len();
            let mut found: std::collections::BTreeSet<Vec<usize>> = Default::default();
            let outer: Vec<usize> = region[..nd - 1].iter().map(|r| r.1 - r.0).collect();
            let (l0, l1) = region[nd - 1];
            for o in grid_indices(&outer) {
                let mut f: usize = (0..nd - 1)
                    .map(|d| (region[d].0 + o[d]) * out_strides[d])
                    .sum::<usize>()
                    + l0;
                let mut left = l1 - l0;
                while left > 0 {
                    // Input coordinates of flat index f, and the chunk holding them.
                    let c: Vec<usize> = (0..in_full.len())
                        .map(|d| f / in_strides[d] % in_full[d])
                        .collect();
                    let idx: Vec<usize> = c
                        .iter()
                        .zip(&in_bounds)
                        .map(|(&x, b)| b.partition_point(|&v| v <= x) - 1)
                        .collect();
                    let last = in_full.len() - 1;
                    let seg = left.min(in_bounds[last][idx[last] + 1] - c[last]);
                    found.insert(idx);
                    f += seg;
                    left -= seg;
                }
            }
            let ins = found.iter().map(|idx| t.at(idx)).collect();
            let offs = found
                .iter()
                .map(|idx| t.region_in(&t_starts, idx).iter().map(|x| x.0).collect())
                .collect();
            (
                ChunkOp::ReshapeGather {
                    in_full: in_full.as_slice().into(),
                    in_offsets: offs,
                    out_full: out_full.as_slice().into(),
                    out_offset: region.iter().map(|x| x.0).collect(),
                },
                ins,
            )
        })
    }
}

/// The range `[lo, hi)` of output positions `i` whose index `start + i*step` lies in `[c0, c1)`.
pub(super) fn selected_range(
    start: usize,
    len: usize,
    step: isize,
    c0: usize,
    c1: usize,
) -> (usize, usize) {
    if len == 0 {
        return (0, 0);
    }
    let (s, st) = (start as i128, step as i128);
    let (c0, c1) = (c0 as i128, c1 as i128);
    let (lo, hi) = if st > 0 {
        // s + i*st >= c0  and  s + i*st < c1
        (
            (c0 - s + st - 1).div_euclid(st),
            (c1 - s + st - 1).div_euclid(st),
        )
    } else {
        let a = -st;
        // s - i*a < c1  =>  i > (s - c1)/a ;  s - i*a >= c0  =>  i <= (s - c0)/a
        ((s - c1).div_euclid(a) + 1, (s - c0).div_euclid(a) + 1)
    };
    (
        lo.clamp(0, len as i128) as usize,
        hi.clamp(0, len as i128) as usize,
    )
}
