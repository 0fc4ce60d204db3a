//! Tiling of matmul: chunk products accumulated along K in order, each step runnable as soon
//! as its product's inputs exist.

use super::{region_size, union_grid, Tiler};
use crate::chunk::{grid_boxes, ChunkId, ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::Result;
use crate::linalg::DenseOp;

impl Tiler<'_> {
    pub(super) fn matmul(
        &mut self,
        a: &Tiled,
        b: &Tiled,
        sa: &[usize],
        sb: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let n = sa.len();
        let nb = n - 2;
        let mut grid: Vec<Vec<usize>> = Vec::new();
        let mut ga = Vec::new();
        let mut gb = Vec::new();
        for ax in 0..nb {
            let mut contrib = Vec::new();
            if sa[ax] != 1 {
                contrib.push(&a.grid[ax]);
            }
            if sb[ax] != 1 {
                contrib.push(&b.grid[ax]);
            }
            let u = if contrib.is_empty() {
                vec![1]
            } else {
                union_grid(&contrib)
            };
            ga.push(if sa[ax] == 1 { vec![1] } else { u.clone() });
            gb.push(if sb[ax] == 1 { vec![1] } else { u.clone() });
            grid.push(u);
        }
        let gk = union_grid(&[&a.grid[n - 1], &b.grid[n - 2]]);
        ga.push(a.grid[n - 2].clone());
        ga.push(gk.clone());
        gb.push(gk.clone());
        gb.push(b.grid[n - 1].clone());
        grid.push(a.grid[n - 2].clone());
        grid.push(b.grid[n - 1].clone());
        // One product per output chunk and K chunk.
        self.reserve_grid(&grid, gk.len())?;
        let a2 = self.rechunk(a, &ga, dtype)?;
        let b2 = self.rechunk(b, &gb, dtype)?;
        let mut chunks = Vec::new();
        for (idx, region) in grid_boxes(&grid) {
            let shape = region_size(&region);
            let mut acc: Option<ChunkId> = None;
            for k in 0..gk.len() {
                let mut ia: Vec<usize> = (0..nb)
                    .map(|x| if sa[x] == 1 { 0 } else { idx[x] })
                    .collect();
                ia.push(idx[nb]);
                ia.push(k);
                let mut ib: Vec<usize> = (0..nb)
                    .map(|x| if sb[x] == 1 { 0 } else { idx[x] })
                    .collect();
                ib.push(k);
                ib.push(idx[nb + 1]);
                let mut ins = vec![a2.at(&ia), b2.at(&ib)];
                if let Some(p) = acc {
                    ins.push(p);
                }
                acc = Some(self.push(
                    ChunkOp::MatMul {
                        accumulate: acc.is_some(),
                    },
                    ins,
                    shape.clone(),
                    dtype,
                ));
            }
            chunks.push(acc.expect("at least one K chunk"));
        }
        Ok(Tiled { grid, chunks })
    }
}

impl Tiler<'_> {
    /// A dense kernel: each operand's last two axes made whole (one matrix per chunk), its
    /// batch axes chunked as the first operand's; one kernel per batch chunk.
    pub(super) fn dense(
        &mut self,
        op: DenseOp,
        inputs: &[Tiled],
        in_shapes: &[Vec<usize>],
        in_dtypes: &[DType],
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let nd = in_shapes[0].len();
        let batch: Vec<Vec<usize>> = inputs[0].grid[..nd - 2].to_vec();
        let mut ins = Vec::with_capacity(inputs.len());
        for ((t, s), &dt) in inputs.iter().zip(in_shapes).zip(in_dtypes) {
            let mut g = batch.clone();
            g.extend(s[nd - 2..].iter().map(|&d| vec![d]));
            ins.push(self.rechunk(t, &g, dt)?);
        }
        let mut grid = batch;
        grid.extend(shape[nd - 2..].iter().map(|&d| vec![d]));
        self.per_chunk(grid, dtype, |idx, _| {
            let mut at: Vec<usize> = idx[..nd - 2].to_vec();
            at.extend([0, 0]);
            (ChunkOp::Dense(op), ins.iter().map(|t| t.at(&at)).collect())
        })
    }
}
