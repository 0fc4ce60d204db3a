//! Tiling of searching and counting: `searchsorted` (a binary search in every chunk of the
//! sorted array, the positions summed), `bincount` and `histogram` (counts per input chunk,
//! summed). Partials are combined up a tree of [`ChunkOp::PartsSum`] (fan-in
//! [`super::COMBINE_FAN_IN`]), so neither the sorted array nor the data is ever one chunk.

use super::{auto_chunk_shape, region_size, split, Tiler};
use crate::chunk::{grid_indices, ChunkId, ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::Result;
use crate::op::HistBins;
use std::sync::Arc;

impl Tiler<'_> {
    /// searchsorted of the values `v` in the sorted 1-D `a`: per chunk of `v`, one partial per
    /// chunk of `a` (the position within that chunk), summed: a position in the whole sorted
    /// array is the sum of the positions in its chunks.
    pub(super) fn searchsorted(&mut self, a: &Tiled, v: &Tiled, right: bool) -> Result<Tiled> {
        self.reserve_grid(&v.grid, 2 * a.chunks.len())?;
        let starts = v.starts();
        let mut chunks = Vec::with_capacity(v.chunks.len());
        for idx in grid_indices(&v.counts()) {
            let shape = region_size(&v.region_in(&starts, &idx));
            let vc = v.at(&idx);
            let parts: Vec<ChunkId> = a
                .chunks
                .iter()
                .map(|&ac| {
                    let op = ChunkOp::SearchSortedPartial { right };
                    self.push(op, vec![ac, vc], shape.clone(), DType::I64)
                })
                .collect();
            chunks.push(self.tree(parts, |_| ChunkOp::PartsSum, shape, DType::I64));
        }
        Ok(Tiled {
            grid: v.grid.clone(),
            chunks,
        })
    }

    /// The optional weights (`inputs[1]`) re-cut to the data's grid, so each data chunk meets
    /// its own weights.
    fn weights_on(&mut self, inputs: &[Tiled], in_dtypes: &[DType]) -> Result<Option<Tiled>> {
        match inputs.get(1) {
            Some(w) => Ok(Some(self.rechunk(w, &inputs[0].grid, in_dtypes[1])?)),
            None => Ok(None),
        }
    }

    /// bincount of the 1-D `inputs[0]` (weights `inputs[1]`): the result is cut by the chunk
    /// budget, and each result chunk sums one partial per data chunk (the counts of its own
    /// range of values), so no task holds more than a chunk of counts.
    pub(super) fn bincount(
        &mut self,
        inputs: &[Tiled],
        in_dtypes: &[DType],
        len: usize,
        dtype: DType,
    ) -> Result<Tiled> {
        let w = self.weights_on(inputs, in_dtypes)?;
        let x = &inputs[0];
        let cs = auto_chunk_shape(&[len], dtype, self.chunk_bytes);
        let grid = self.grid_for(&[len], &cs)?;
        self.reserve_grid(&grid, 2 * x.chunks.len())?;
        let mut chunks = Vec::with_capacity(grid[0].len());
        let mut offset = 0;
        for &n in &split(len, cs[0]) {
            let parts: Vec<ChunkId> = (0..x.chunks.len())
                .map(|i| {
                    let mut ins = vec![x.chunks[i]];
                    ins.extend(w.as_ref().map(|w| w.chunks[i]));
                    let op = ChunkOp::BinCountPartial {
                        offset,
                        len: n,
                        total: len,
                    };
                    self.push(op, ins, vec![n], dtype)
                })
                .collect();
            chunks.push(self.tree(parts, |_| ChunkOp::PartsSum, vec![n], dtype));
            offset += n;
        }
        Ok(Tiled { grid, chunks })
    }

    /// histogram of `inputs[0]` (any shape; weights `inputs[1]` of the same shape): one
    /// partial of all the bins per data chunk, summed into one chunk.
    pub(super) fn histogram(
        &mut self,
        inputs: &[Tiled],
        in_dtypes: &[DType],
        bins: &HistBins,
        dtype: DType,
    ) -> Result<Tiled> {
        let w = self.weights_on(inputs, in_dtypes)?;
        let x = &inputs[0];
        let n = bins.edges.len().saturating_sub(1);
        self.reserve_grid(&x.grid, 2)?;
        let bins = Arc::new(bins.clone());
        let parts: Vec<ChunkId> = (0..x.chunks.len())
            .map(|i| {
                let mut ins = vec![x.chunks[i]];
                ins.extend(w.as_ref().map(|w| w.chunks[i]));
                let op = ChunkOp::HistogramPartial { bins: bins.clone() };
                self.push(op, ins, vec![n], dtype)
            })
            .collect();
        let root = self.tree(parts, |_| ChunkOp::PartsSum, vec![n], dtype);
        Ok(Tiled {
            grid: vec![vec![n]],
            chunks: vec![root],
        })
    }
}
