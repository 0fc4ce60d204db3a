//! Tiling of reductions: per-chunk partials combined in a tree of fan-in
//! [`COMBINE_FAN_IN`](super::COMBINE_FAN_IN), then a final per output chunk.

use super::{region_size, Tiler, COMBINE_FAN_IN};
use crate::chunk::{grid_indices, ChunkId, ChunkInputs, ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::Result;
use crate::op::{ArgOp, ReduceOp};
use std::collections::HashMap;

/// A partial and the number of elements behind it.
type Counted = (ChunkId, f64);

impl Tiler<'_> {
    /// Argmin/argmax along `axis`: (value, index) partials per chunk, combined in a tree.
    pub(super) fn arg_reduce(
        &mut self,
        t: &Tiled,
        op: ArgOp,
        axis: usize,
        in_dtype: DType,
    ) -> Result<Tiled> {
        // A partial per input chunk; the combine tree and finals add fewer than that.
        self.reserve_grid(&t.grid, 2)?;
        let counts = t.counts();
        let mut out_counts = counts.clone();
        out_counts[axis] = 1;
        let mut partials: HashMap<Vec<usize>, Vec<ChunkId>> = HashMap::new();
        let starts = t.starts();
        for idx in grid_indices(&counts) {
            let region = t.region_in(&starts, &idx);
            let mut pshape = region_size(&region);
            pshape[axis] = 1;
            let c = self.push(
                ChunkOp::ArgPartial {
                    op,
                    axis,
                    offset: region[axis].0,
                },
                vec![t.at(&idx)],
                pshape,
                in_dtype,
            );
            let mut key = idx.clone();
            key[axis] = 0;
            partials.entry(key).or_default().push(c);
        }
        let mut chunks = Vec::new();
        for key in grid_indices(&out_counts) {
            let parts = partials
                .remove(&key)
                .expect("partials for every output chunk");
            let pshape = self.cg.node(parts[0]).shape.to_vec();
            let root = self.tree(
                parts,
                |_| ChunkOp::ArgCombine { op },
                pshape.clone(),
                in_dtype,
            );
            let mut oshape = pshape;
            oshape.remove(axis);
            chunks.push(self.push(ChunkOp::ArgFinal { axis }, vec![root], oshape, DType::I64));
        }
        let mut grid = t.grid.clone();
        grid.remove(axis);
        Ok(Tiled { grid, chunks })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn reduce(
        &mut self,
        t: &Tiled,
        in_shape: &[usize],
        in_dtype: DType,
        op: ReduceOp,
        axes: &[usize],
        keepdims: bool,
        ddof: u32,
        dtype: DType,
    ) -> Result<Tiled> {
        // A partial per input chunk; the combine tree and finals add fewer than that.
        self.reserve_grid(&t.grid, 2)?;
        let counts = t.counts();
        let pdtype = partial_dtype(op, in_dtype);
        let mut groups: Vec<(Vec<usize>, Vec<Counted>)> = Vec::new();
        let mut index: HashMap<Vec<usize>, usize> = HashMap::new();
        let starts = t.starts();
        for idx in grid_indices(&counts) {
            let region = t.region_in(&starts, &idx);
            let mut pshape = region_size(&region);
            let n: usize = axes.iter().map(|&a| pshape[a]).product();
            for &a in axes {
                pshape[a] = 1;
            }
            let c = self.push(
                ChunkOp::ReducePartial {
                    op,
                    axes: axes.to_vec(),
                },
                vec![t.at(&idx)],
                pshape,
                pdtype,
            );
            let mut key = idx.clone();
            for &a in axes {
                key[a] = 0;
            }
            let gi = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, vec![]));
                groups.len() - 1
            });
            groups[gi].1.push((c, n as f64));
        }
        let count: f64 = axes.iter().map(|&a| in_shape[a] as f64).product();
        let mut chunks = Vec::new();
        for (_, mut parts) in groups {
            let pshape = self.cg.node(parts[0].0).shape.to_vec();
            // Tree combine, tracking element counts for the var/std merge.
            while parts.len() > 1 {
                let mut next = Vec::new();
                for group in parts.chunks(COMBINE_FAN_IN) {
                    if group.len() == 1 {
                        next.push(group[0]);
                        continue;
                    }
                    let cs: Vec<f64> = group.iter().map(|p| p.1).collect();
                    let total = cs.iter().sum();
                    let c = self.push(
                        ChunkOp::ReduceCombine { op, counts: cs },
                        group.iter().map(|p| p.0).collect::<ChunkInputs>(),
                        pshape.clone(),
                        pdtype,
                    );
                    next.push((c, total));
                }
                parts = next;
            }
            let oshape: Vec<usize> = if keepdims {
                pshape.clone()
            } else {
                pshape
                    .iter()
                    .enumerate()
                    .filter(|(a, _)| !axes.contains(a))
                    .map(|(_, &d)| d)
                    .collect()
            };
            chunks.push(self.push(
                ChunkOp::ReduceFinal {
                    op,
                    axes: axes.to_vec(),
                    keepdims,
                    ddof,
                    count,
                },
                vec![parts[0].0],
                oshape,
                dtype,
            ));
        }
        let grid = t
            .grid
            .iter()
            .enumerate()
            .filter_map(|(a, g)| {
                if axes.contains(&a) {
                    keepdims.then(|| vec![1])
                } else {
                    Some(g.clone())
                }
            })
            .collect();
        Ok(Tiled { grid, chunks })
    }
}

/// Dtype of a reduction's partials: float sums accumulate in f64, integer sums in i64.
pub fn partial_dtype(op: ReduceOp, x: DType) -> DType {
    match op {
        ReduceOp::Sum | ReduceOp::Prod => {
            if x.is_float() {
                DType::F64
            } else {
                DType::I64
            }
        }
        ReduceOp::Mean | ReduceOp::Var | ReduceOp::Std => DType::F64,
        ReduceOp::Min | ReduceOp::Max => x,
        ReduceOp::Any | ReduceOp::All => DType::Bool,
    }
}
