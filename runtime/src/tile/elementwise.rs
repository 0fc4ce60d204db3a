//! Tiling of elementwise ops (unary, binary, where, cast): the union of the inputs' grids on
//! each output axis, inputs rechunked to it, broadcast axes read from their single chunk.

use super::{broadcast_chunk, broadcast_target, elementwise_grid, Tiler};
use crate::chunk::{ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::Result;

impl Tiler<'_> {
    pub(super) fn elementwise(
        &mut self,
        op: ChunkOp,
        inputs: &[Tiled],
        in_shapes: &[Vec<usize>],
        in_dtypes: &[DType],
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let spans: Vec<(&[usize], &[Vec<usize>])> = in_shapes
            .iter()
            .zip(inputs)
            .map(|(s, t)| (s.as_slice(), t.grid.as_slice()))
            .collect();
        let grid = elementwise_grid(shape, &spans);
        let mut aligned = Vec::new();
        for ((t, s), &dt) in inputs.iter().zip(in_shapes).zip(in_dtypes) {
            let target = broadcast_target(s, shape, &grid);
            aligned.push((self.rechunk(t, &target, dt)?, s.clone()));
        }
        self.per_chunk(grid, dtype, |idx, _| {
            let ins = aligned
                .iter()
                .map(|(t, s)| broadcast_chunk(t, s, shape, idx))
                .collect();
            (op.clone(), ins)
        })
    }
}
