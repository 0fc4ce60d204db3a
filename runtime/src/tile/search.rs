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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, NullBackend, Session};

    /// The sorted array is never gathered: every partial reads one of its chunks as it is
    /// (no assembly), one partial per (sorted chunk, values chunk), summed in a fan-in-4 tree.
    #[test]
    fn searchsorted_searches_each_chunk_in_place() {
        let s = Session::new(std::sync::Arc::new(NullBackend));
        let a = s
            .from_vec::<f64>((0..100).map(f64::from).collect(), &[100])
            .unwrap()
            .with_chunks(&[10])
            .unwrap();
        let v = s
            .from_vec::<f64>(vec![1.5; 30], &[30])
            .unwrap()
            .with_chunks(&[10])
            .unwrap();
        let r = a.searchsorted(&v, false).unwrap();
        let g = s.graph();
        let mut t = Tiler::new(&g, 1 << 20);
        let tiled = t.tile(&[r.node_id().unwrap()]).unwrap();
        assert_eq!(tiled[0].grid, vec![vec![10, 10, 10]]);
        let nodes = &t.cg.nodes;
        let partials: Vec<_> = nodes
            .iter()
            .filter(|n| matches!(n.op, ChunkOp::SearchSortedPartial { .. }))
            .collect();
        assert_eq!(partials.len(), 30);
        for p in &partials {
            let a_in = &nodes[p.inputs[0].0 as usize];
            assert_eq!(a_in.shape.as_slice(), &[10]);
            assert!(!matches!(a_in.op, ChunkOp::Assemble { .. }));
        }
        // 10 partials per values chunk: 3 + 1 sums each.
        let sums = nodes
            .iter()
            .filter(|n| matches!(n.op, ChunkOp::PartsSum))
            .count();
        assert_eq!(sums, 3 * 4);
        assert!(nodes
            .iter()
            .all(|n| !matches!(n.op, ChunkOp::PartsSum) || n.inputs.len() <= 4));
    }

    /// A histogram with a given range needs no stage: one partial per data chunk.
    #[test]
    fn histogram_counts_per_chunk() {
        let s = Session::new(std::sync::Arc::new(NullBackend));
        let x = s
            .from_vec::<f32>(vec![0.5; 60], &[6, 10])
            .unwrap()
            .with_chunks(&[2, 5])
            .unwrap();
        let (h, _) = x.histogram(8, Some((0.0, 1.0)), None, false).unwrap();
        assert_eq!(h.dtype(), DType::I64);
        let g = s.graph();
        let mut t = Tiler::new(&g, 1 << 20);
        let tiled = t.tile(&[h.node_id().unwrap()]).unwrap();
        assert_eq!(tiled[0].grid, vec![vec![8]]);
        let partials =
            t.cg.nodes
                .iter()
                .filter(|n| matches!(n.op, ChunkOp::HistogramPartial { .. }))
                .count();
        assert_eq!(partials, 6);
    }
}
