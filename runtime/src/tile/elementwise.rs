//! Tiling of elementwise ops (unary, binary, where, cast): the union of the inputs' grids on
//! each output axis, inputs rechunked to it, broadcast axes read from their single chunk.

use super::{union_grid, Tiler};
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
        let n = shape.len();
        let grid: Vec<Vec<usize>> = (0..n)
            .map(|a| {
                let contributing: Vec<&Vec<usize>> = inputs
                    .iter()
                    .zip(in_shapes)
                    .filter_map(|(t, s)| {
                        let d = n - s.len();
                        (a >= d && s[a - d] == shape[a]).then(|| &t.grid[a - d])
                    })
                    .collect();
                if contributing.is_empty() {
                    vec![shape[a]]
                } else {
                    union_grid(&contributing)
                }
            })
            .collect();
        let mut aligned = Vec::new();
        for ((t, s), &dt) in inputs.iter().zip(in_shapes).zip(in_dtypes) {
            let d = n - s.len();
            let target: Vec<Vec<usize>> = (0..s.len())
                .map(|b| {
                    if s[b] == shape[b + d] {
                        grid[b + d].clone()
                    } else {
                        vec![s[b]]
                    }
                })
                .collect();
            aligned.push((self.rechunk(t, &target, dt)?, s.clone()));
        }
        self.per_chunk(grid, dtype, |idx, _| {
            let ins = aligned
                .iter()
                .map(|(t, s)| {
                    // The input's chunk: this index on its own axes, 0 on broadcast ones.
                    let d = n - s.len();
                    let flat = (0..s.len()).fold(0, |acc, b| {
                        let i = if s[b] == shape[b + d] { idx[b + d] } else { 0 };
                        acc * t.grid[b].len() + i
                    });
                    t.chunks[flat]
                })
                .collect();
            (op.clone(), ins)
        })
    }
}
