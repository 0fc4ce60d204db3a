//! Tiling of reductions: per-chunk partials combined in a tree of fan-in
//! [`COMBINE_FAN_IN`](super::COMBINE_FAN_IN), then a final per output chunk.

use super::fusion::Tail;
use super::{region_size, GridWalk, Tiler, COMBINE_FAN_IN};
use crate::chunk::{grid_indices, ChunkId, ChunkInputs, ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::NodeId;
use crate::op::{ArgOp, ReduceOp};
use std::collections::HashMap;

/// A partial and the number of elements behind it.
type Counted = (ChunkId, f64);

impl Tiler<'_> {
    /// Argmin/argmax along `axis`: (value, index) partials per chunk, combined in a tree.
    pub(super) fn arg_reduce(
        &mut self,
        t: &Tiled,
        input: NodeId,
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
        // A virtual input: its kernels end in the partial.
        let fused = match self.take_virtual_input(input) {
            Some(g) => Some(self.group_chunks(&g, Tail::Arg(op, axis), in_dtype)?),
            None => None,
        };
        for (flat, idx) in grid_indices(&counts).into_iter().enumerate() {
            let region = t.region_in(&starts, &idx);
            let mut pshape = region_size(&region);
            pshape[axis] = 1;
            let c = match &fused {
                Some(f) => f[flat],
                None => self.push(
                    ChunkOp::ArgPartial {
                        op,
                        axis,
                        offset: region[axis].0,
                    },
                    vec![t.at(&idx)],
                    pshape,
                    in_dtype,
                ),
            };
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
        input: NodeId,
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
        // The partials of each output chunk, in row-major order of the output chunks (the
        // grid with the reduced axes cut to one chunk). The grid is walked with one index and
        // one box updated in place: no allocation per chunk.
        let nd = counts.len();
        let out_counts: Vec<usize> = (0..nd)
            .map(|a| if axes.contains(&a) { 1 } else { counts[a] })
            .collect();
        let mut groups: Vec<Vec<Counted>> = vec![Vec::new(); out_counts.iter().product()];
        // A virtual input: its kernels end in the partial.
        let fused = match self.take_virtual_input(input) {
            Some(g) => Some(self.group_chunks(&g, Tail::Reduce(op, axes), in_dtype)?),
            None => None,
        };
        let total: usize = counts.iter().product();
        let mut walk = GridWalk::new(&t.grid);
        for flat in 0..total {
            let region = &walk.region;
            let n: usize = axes.iter().map(|&a| region[a].1 - region[a].0).product();
            let c = match &fused {
                Some(f) => f[flat],
                None => {
                    let pshape: Vec<usize> = (0..nd)
                        .map(|a| {
                            if axes.contains(&a) {
                                1
                            } else {
                                region[a].1 - region[a].0
                            }
                        })
                        .collect();
                    self.push(
                        ChunkOp::ReducePartial {
                            op,
                            axes: axes.to_vec(),
                        },
                        vec![t.chunks[flat]],
                        pshape,
                        pdtype,
                    )
                }
            };
            let key = (0..nd).fold(0, |acc, a| {
                acc * out_counts[a] + if axes.contains(&a) { 0 } else { walk.idx[a] }
            });
            groups[key].push((c, n as f64));
            walk.advance(&t.grid);
        }
        let count: f64 = axes.iter().map(|&a| in_shape[a] as f64).product();
        let mut chunks = Vec::new();
        for mut parts in groups {
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

/// A selection whose merged candidates both of its fields share (see `Tiler::selections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Selection {
    /// Top-k of a node: axis, k, largest.
    TopK(NodeId, usize, usize, bool),
    /// kNN of data and queries: k.
    Knn(NodeId, NodeId, usize),
}

impl Tiler<'_> {
    /// Top-k along `axis`: the `k` best of each chunk (with global positions), merged up a
    /// tree per output chunk, so only `k` candidates per chunk and lane travel; the axis
    /// whole (`k` long) in the result, the other axes keep their chunks.
    pub(super) fn topk(
        &mut self,
        t: &Tiled,
        input: NodeId,
        (axis, k, largest): (usize, usize, bool),
        arg: bool,
        in_dtype: DType,
    ) -> Result<Tiled> {
        let sel = Selection::TopK(input, axis, k, largest);
        let mut grid = t.grid.clone();
        grid[axis] = vec![k];
        if let Some(roots) = self.selections.get(&sel).cloned() {
            let chunks = self.selection_fields(&roots, arg, in_dtype);
            return Ok(Tiled { grid, chunks });
        }
        self.reserve_grid(&t.grid, 3)?;
        let counts = t.counts();
        let starts = t.starts();
        let mut out_counts = counts.clone();
        out_counts[axis] = 1;
        let mut partials: HashMap<Vec<usize>, Vec<(ChunkId, usize)>> = HashMap::new();
        for idx in grid_indices(&counts) {
            let region = t.region_in(&starts, &idx);
            let mut pshape = region_size(&region);
            let kk = k.min(pshape[axis]);
            pshape[axis] = kk;
            let c = self.push(
                ChunkOp::TopKPartial {
                    axis,
                    k,
                    largest,
                    offset: region[axis].0,
                },
                vec![t.at(&idx)],
                pshape,
                in_dtype,
            );
            let mut key = idx.clone();
            key[axis] = 0;
            partials.entry(key).or_default().push((c, kk));
        }
        let roots = self.topk_merge(partials, &out_counts, axis, k, largest, in_dtype);
        self.selections.insert(sel, roots.clone());
        let chunks = self.selection_fields(&roots, arg, in_dtype);
        Ok(Tiled { grid, chunks })
    }

    /// The merge trees of top-k partials: per output chunk (its grid index with `axis` at 0),
    /// combines of up to `COMBINE_FAN_IN` candidate sets until one is left: the roots, in the
    /// output grid's order (two fields each: the values and the positions).
    fn topk_merge(
        &mut self,
        mut partials: HashMap<Vec<usize>, Vec<(ChunkId, usize)>>,
        out_counts: &[usize],
        axis: usize,
        k: usize,
        largest: bool,
        in_dtype: DType,
    ) -> Vec<ChunkId> {
        let mut roots = Vec::new();
        for key in grid_indices(out_counts) {
            let mut parts = partials
                .remove(&key)
                .expect("partials for every output chunk");
            let mut shape = self.cg.node(parts[0].0).shape.to_vec();
            // Merge up a tree: each combine keeps the k best of its inputs' candidates.
            while parts.len() > 1 {
                let mut next = Vec::new();
                for group in parts.chunks(COMBINE_FAN_IN) {
                    if group.len() == 1 {
                        next.push(group[0]);
                        continue;
                    }
                    let kk = k.min(group.iter().map(|p| p.1).sum());
                    shape[axis] = kk;
                    let c = self.push(
                        ChunkOp::TopKCombine { axis, k, largest },
                        group.iter().map(|p| p.0).collect::<Vec<_>>(),
                        shape.clone(),
                        in_dtype,
                    );
                    next.push((c, kk));
                }
                parts = next;
            }
            roots.push(parts[0].0);
        }
        roots
    }

    /// One field of each merged selection: the values, or the int64 positions with `arg`.
    fn selection_fields(&mut self, roots: &[ChunkId], arg: bool, in_dtype: DType) -> Vec<ChunkId> {
        let (field, dt) = if arg { (1, DType::I64) } else { (0, in_dtype) };
        roots
            .iter()
            .map(|&root| {
                let shape = self.cg.node(root).shape.to_vec();
                self.push(ChunkOp::TopKFinal { field }, vec![root], shape, dt)
            })
            .collect()
    }

    /// Brute-force k nearest neighbours (`Op::Knn`): the feature axis made whole, one fused
    /// `KnnPartial` per (query row block, data row block), and per query block the blocks'
    /// candidates merged as top-k's are (only `k` per query and block travel).
    pub(super) fn knn(
        &mut self,
        x: &Tiled,
        y: &Tiled,
        d: usize,
        (inputs, k): ((NodeId, NodeId), usize),
        arg: bool,
        dtype: DType,
    ) -> Result<Tiled> {
        let sel = Selection::Knn(inputs.0, inputs.1, k);
        let grid = vec![y.grid[0].clone(), vec![k]];
        if let Some(roots) = self.selections.get(&sel).cloned() {
            let chunks = self.selection_fields(&roots, arg, dtype);
            return Ok(Tiled { grid, chunks });
        }
        self.reserve_grid(&[x.grid[0].clone(), y.grid[0].clone()], 3)?;
        let x = self.rechunk(x, &[x.grid[0].clone(), vec![d]], dtype)?;
        let y = self.rechunk(y, &[y.grid[0].clone(), vec![d]], dtype)?;
        let mut partials: HashMap<Vec<usize>, Vec<(ChunkId, usize)>> =
            HashMap::with_capacity(y.grid[0].len());
        for (qi, &mrows) in y.grid[0].iter().enumerate() {
            let mut offset = 0;
            let mut parts = Vec::with_capacity(x.grid[0].len());
            for (xi, &nrows) in x.grid[0].iter().enumerate() {
                let kk = k.min(nrows);
                let c = self.push(
                    ChunkOp::KnnPartial { k, offset },
                    vec![x.at(&[xi, 0]), y.at(&[qi, 0])],
                    vec![mrows, kk],
                    dtype,
                );
                parts.push((c, kk));
                offset += nrows;
            }
            partials.insert(vec![qi, 0], parts);
        }
        let out_counts = [y.grid[0].len(), 1];
        let roots = self.topk_merge(partials, &out_counts, 1, k, false, dtype);
        self.selections.insert(sel, roots.clone());
        let chunks = self.selection_fields(&roots, arg, dtype);
        Ok(Tiled { grid, chunks })
    }
}
