//! Tiling of sources (constants, fills, ranges, eye, random): a grid from the node's chunk
//! hint or the byte budget, one generator chunk per box.

use super::Tiler;
use crate::chunk::{ChunkInputs, ChunkOp, Tiled};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::op::Op;
use std::sync::Arc;

impl Tiler<'_> {
    /// Tiles a source node (no inputs).
    pub(super) fn source(&mut self, id: NodeId) -> Result<Tiled> {
        let g = self.graph;
        let node = g.node(id);
        let shape = node.shape.clone();
        let dtype = node.dtype;
        match &node.op {
            Op::Constant { id: cid } => {
                let data: Arc<_> = g
                    .constant(*cid)
                    .ok_or_else(|| Error::invalid("constant", format!("missing constant {cid}")))?
                    .clone();
                let grid = self.source_grid(id)?;
                self.per_chunk(grid, dtype, |_, region| {
                    (
                        ChunkOp::Constant {
                            data: data.clone(),
                            region: region.clone(),
                        },
                        ChunkInputs::new(),
                    )
                })
            }
            Op::External { id: eid } => {
                let data = g
                    .external(*eid)
                    .ok_or_else(|| {
                        Error::invalid(
                            "external",
                            format!(
                                "external data {eid} is not in this process (data read in place \
                                 stays where it was added)"
                            ),
                        )
                    })?
                    .clone();
                let grid = self.source_grid(id)?;
                self.per_chunk(grid, dtype, |_, region| {
                    (
                        ChunkOp::External {
                            data: data.clone(),
                            region: region.clone(),
                        },
                        ChunkInputs::new(),
                    )
                })
            }
            Op::Full { value } => {
                let v = *value;
                let grid = self.source_grid(id)?;
                self.per_chunk(grid, dtype, |_, _| {
                    (ChunkOp::Full { value: v }, ChunkInputs::new())
                })
            }
            Op::Arange { start, step } => {
                let (start, step) = (start.0, step.0);
                let grid = self.source_grid(id)?;
                self.per_chunk(grid, dtype, |_, r| {
                    (
                        ChunkOp::Arange {
                            start,
                            step,
                            offset: r[0].0,
                        },
                        ChunkInputs::new(),
                    )
                })
            }
            Op::Linspace {
                start,
                stop,
                endpoint,
            } => {
                let n = shape[0];
                let div = if *endpoint { n.saturating_sub(1) } else { n };
                let step = if div > 0 {
                    (stop.0 - start.0) / div as f64
                } else {
                    // numpy: with nothing to divide by (one point) the only value is `start`.
                    0.0
                };
                let last = (*endpoint && n > 1).then_some((n - 1, stop.0));
                let start = start.0;
                let grid = self.source_grid(id)?;
                self.per_chunk(grid, dtype, |_, r| {
                    (
                        ChunkOp::Linspace {
                            start,
                            step,
                            stop: last,
                            offset: r[0].0,
                        },
                        ChunkInputs::new(),
                    )
                })
            }
            Op::Eye { k } => {
                let k = *k;
                let grid = self.source_grid(id)?;
                self.per_chunk(grid, dtype, |_, r| {
                    (
                        ChunkOp::Eye {
                            k,
                            row0: r[0].0,
                            col0: r[1].0,
                        },
                        ChunkInputs::new(),
                    )
                })
            }
            Op::Random { seed, stream, dist } => {
                let (seed, stream, dist) = (*seed, *stream, *dist);
                let grid = self.source_grid(id)?;
                let full: Arc<[usize]> = shape.clone().into();
                self.per_chunk(grid, dtype, |_, r| {
                    (
                        ChunkOp::Random {
                            seed,
                            stream,
                            dist,
                            offset: r.iter().map(|x| x.0).collect(),
                            full: full.clone(),
                        },
                        ChunkInputs::new(),
                    )
                })
            }
            op => Err(Error::invalid(&op.name(), "not a source op")),
        }
    }
}
