//! The Tiler: coarse `Graph` -> fine `ChunkGraph`.
//!
//! Every node is cut into a grid of chunks. Sources take their chunk shape from the node's hint
//! (Mars's `chunk_size=`) or from the chunk byte budget; other ops derive their grid from their
//! inputs, rechunking inputs whose grids disagree (the union of their boundaries). Reductions
//! become per-chunk partials combined in a tree; matmul becomes chunk products accumulated along
//! K in order, each step runnable as soon as its product's inputs exist.

mod creation;
mod elementwise;
mod fusion;
mod gather;
mod linalg;
mod movement;
mod reduction;
mod sample_sort;
mod search;

pub use reduction::partial_dtype;

use crate::array::Region;
use crate::chunk::{
    grid_boxes, grid_indices, ChunkGraph, ChunkId, ChunkInputs, ChunkNode, ChunkOp, ChunkShape,
    Tiled, MAX_CHUNK_NODES,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId};
use crate::ir::KernelIr;
use crate::op::Op;
use rustc_hash::FxHashSet;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Fan-in of the reduction combine tree.
pub const COMBINE_FAN_IN: usize = 4;

/// Estimated host bytes one chunk node costs from tiling to the end of its run (the node, its
/// fused copy, the executor's and Scheduler's bookkeeping): the unit of the tiler's bound.
pub const CHUNK_NODE_BYTES: u64 = 1024;

/// Cuts a graph into chunks.
pub struct Tiler<'g> {
    graph: &'g Graph,
    chunk_bytes: usize,
    /// The chunk graph being built.
    pub cg: ChunkGraph,
    tiled: HashMap<NodeId, Tiled>,
    /// Most chunk nodes the chunk graph may hold (bookkeeping bounded against host memory).
    max_chunks: usize,
    /// The node being tiled, for error messages.
    current: Option<NodeId>,
    /// Fuse elementwise chains while tiling (see `fusion`).
    fuse: bool,
    /// Nodes that may stay virtual (planned by `tile`).
    eligible: HashSet<NodeId>,
    /// Virtual nodes: elementwise chains not cut into chunks yet.
    virt: HashMap<NodeId, fusion::Group>,
    /// One shared IR per distinct kernel structure.
    irs: FxHashSet<Arc<KernelIr>>,
    /// The merged candidates (tree roots, one per output chunk) of each selection tiled so
    /// far: the values and the positions of one top-k or kNN share them.
    selections: HashMap<reduction::Selection, Vec<ChunkId>>,
}

/// Splits `len` into pieces of at most `size` (a zero-length axis is one empty piece).
pub fn split(len: usize, size: usize) -> Vec<usize> {
    if len == 0 {
        return vec![0];
    }
    let size = size.clamp(1, len);
    let mut v = vec![size; len / size];
    if !len.is_multiple_of(size) {
        v.push(len % size);
    }
    v
}

/// Chunk shape for `shape` so one chunk holds at most `budget` bytes: halve the largest extent
/// until it fits.
pub fn auto_chunk_shape(shape: &[usize], dtype: DType, budget: usize) -> Vec<usize> {
    let mut cs: Vec<usize> = shape.iter().map(|&d| d.max(1)).collect();
    let max_elems = (budget / dtype.size()).max(1);
    while cs.iter().product::<usize>() > max_elems {
        let (ax, _) = cs
            .iter()
            .enumerate()
            .max_by_key(|&(i, &c)| (c, usize::MAX - i))
            .expect("non-empty shape when over budget");
        cs[ax] = cs[ax].div_ceil(2);
    }
    cs
}

fn boundaries(sizes: &[usize]) -> Vec<usize> {
    let mut b = Vec::with_capacity(sizes.len() + 1);
    let mut acc = 0;
    b.push(0);
    for &s in sizes {
        acc += s;
        b.push(acc);
    }
    b
}

fn union_grid(grids: &[&Vec<usize>]) -> Vec<usize> {
    let mut bs: Vec<usize> = grids.iter().flat_map(|g| boundaries(g)).collect();
    bs.sort_unstable();
    bs.dedup();
    if bs.len() <= 1 {
        return vec![0];
    }
    bs.windows(2).map(|w| w[1] - w[0]).collect()
}

fn region_size(r: &Region) -> Vec<usize> {
    r.iter().map(|&(s, e)| e - s).collect()
}

/// The grid of an elementwise result of `shape`: on each axis, the union of the boundaries of
/// the inputs (shape, grid) that span it; one chunk where every input is broadcast.
fn elementwise_grid(shape: &[usize], inputs: &[(&[usize], &[Vec<usize>])]) -> Vec<Vec<usize>> {
    let n = shape.len();
    (0..n)
        .map(|a| {
            let contributing: Vec<&Vec<usize>> = inputs
                .iter()
                .filter_map(|(s, g)| {
                    let d = n - s.len();
                    (a >= d && s[a - d] == shape[a]).then(|| &g[a - d])
                })
                .collect();
            if contributing.is_empty() {
                vec![shape[a]]
            } else {
                union_grid(&contributing)
            }
        })
        .collect()
}

/// The grid an input of `in_shape` is re-cut to under a result of `shape` cut by `grid`: the
/// result's cuts on the input's own axes, one chunk along its broadcast ones.
fn broadcast_target(in_shape: &[usize], shape: &[usize], grid: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let d = shape.len() - in_shape.len();
    (0..in_shape.len())
        .map(|b| {
            if in_shape[b] == shape[b + d] {
                grid[b + d].clone()
            } else {
                vec![in_shape[b]]
            }
        })
        .collect()
}

/// The chunk of `t` (an input of `in_shape`, cut by [`broadcast_target`]) under the result's
/// chunk at grid index `idx`: that index on the input's own axes, 0 on broadcast ones.
fn broadcast_chunk(t: &Tiled, in_shape: &[usize], shape: &[usize], idx: &[usize]) -> ChunkId {
    let d = shape.len() - in_shape.len();
    let flat = (0..in_shape.len()).fold(0, |acc, b| {
        let i = if in_shape[b] == shape[b + d] {
            idx[b + d]
        } else {
            0
        };
        acc * t.grid[b].len() + i
    });
    t.chunks[flat]
}

/// A row-major walk over a grid with one index and one box, updated in place: a grid of
/// millions of tiny chunks must not pay allocations per chunk for its own bookkeeping.
struct GridWalk {
    idx: Vec<usize>,
    region: Region,
}

impl GridWalk {
    /// At the grid's first chunk.
    fn new(grid: &[Vec<usize>]) -> Self {
        GridWalk {
            idx: vec![0; grid.len()],
            region: grid
                .iter()
                .map(|g| (0, g.first().copied().unwrap_or(0)))
                .collect(),
        }
    }
    /// On to the next chunk (back to the first after the last).
    fn advance(&mut self, grid: &[Vec<usize>]) {
        for a in (0..grid.len()).rev() {
            self.idx[a] += 1;
            if self.idx[a] < grid[a].len() {
                let start = self.region[a].1;
                self.region[a] = (start, start + grid[a][self.idx[a]]);
                return;
            }
            self.idx[a] = 0;
            self.region[a] = (0, grid[a].first().copied().unwrap_or(0));
        }
    }
}

impl<'g> Tiler<'g> {
    /// A tiler over `graph` with a per-chunk byte budget for automatic chunking.
    ///
    /// The chunk graph may cost at most half of host memory in bookkeeping
    /// ([`CHUNK_NODE_BYTES`] per chunk node); a tiling past that is an error, not an abort.
    pub fn new(graph: &'g Graph, chunk_bytes: usize) -> Self {
        // Read once per process: eager mode plans (and so builds a tiler) for every op.
        static HOST: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let max_chunks = *HOST.get_or_init(crate::storage::host_memory) / 2 / CHUNK_NODE_BYTES;
        Tiler {
            graph,
            chunk_bytes,
            cg: ChunkGraph::default(),
            tiled: HashMap::new(),
            max_chunks: usize::try_from(max_chunks)
                .unwrap_or(usize::MAX)
                .min(MAX_CHUNK_NODES),
            current: None,
            fuse: false,
            eligible: HashSet::new(),
            virt: HashMap::new(),
            irs: FxHashSet::default(),
            selections: HashMap::new(),
        }
    }

    /// Fuses elementwise chains (and the reductions they feed) into one kernel per chunk
    /// while tiling, so their intermediate chunks never exist (default: off; the Fuser then
    /// fuses the chunk graph afterwards, as it still does for what tiling left unfused).
    pub fn with_fusion(mut self, fuse: bool) -> Self {
        self.fuse = fuse;
        self
    }

    /// Sets the most chunk nodes the chunk graph may hold (default: half of host memory over
    /// [`CHUNK_NODE_BYTES`]); never more than [`MAX_CHUNK_NODES`], what a `ChunkId` numbers.
    pub fn with_chunk_limit(mut self, max_chunks: usize) -> Self {
        self.max_chunks = max_chunks.min(MAX_CHUNK_NODES);
        self
    }

    /// Checks, before anything is allocated, that `per_chunk` new chunk nodes for each of the
    /// chunks of a grid with `counts` chunks per axis fit the bound; `shape` and `chunk` (the
    /// largest chunk) are for the message.
    ///
    /// # Errors
    /// `InvalidArgument` naming the op, shape, chunk shape and chunk count.
    fn reserve(
        &self,
        shape: &[usize],
        chunk: &[usize],
        counts: &[usize],
        per_chunk: usize,
    ) -> Result<()> {
        let total = counts
            .iter()
            .try_fold(per_chunk, |acc, &c| acc.checked_mul(c));
        if let Some(t) = total {
            if t.checked_add(self.cg.len())
                .is_some_and(|all| all <= self.max_chunks)
            {
                return Ok(());
            }
        }
        let op = self
            .current
            .map_or_else(|| "tile".to_string(), |id| self.graph.node(id).op.name());
        let count = total.map_or_else(|| format!("more than {}", usize::MAX), |t| t.to_string());
        Err(Error::invalid(
            &op,
            format!(
                "an array of shape {shape:?} cut into chunks of {chunk:?} needs {count} chunk \
                 tasks ({counts:?} per axis) besides the {} already planned; at about {} bytes \
                 of bookkeeping each, more than {} may not be planned (half of host memory, \
                 and at most {MAX_CHUNK_NODES} chunk ids): use larger chunks",
                self.cg.len(),
                CHUNK_NODE_BYTES,
                self.max_chunks
            ),
        ))
    }

    /// [`Tiler::reserve`] for a grid that already exists.
    fn reserve_grid(&self, grid: &[Vec<usize>], per_chunk: usize) -> Result<()> {
        let shape: Vec<usize> = grid.iter().map(|g| g.iter().sum()).collect();
        let chunk: Vec<usize> = grid
            .iter()
            .map(|g| g.iter().copied().max().unwrap_or(0))
            .collect();
        let counts: Vec<usize> = grid.iter().map(|g| g.len()).collect();
        self.reserve(&shape, &chunk, &counts, per_chunk)
    }

    /// The grid cutting `shape` into chunks of `cs` ([`split`] per axis), after checking that
    /// its chunks fit the bound (a hostile shape would otherwise allocate terabytes here).
    fn grid_for(&self, shape: &[usize], cs: &[usize]) -> Result<Vec<Vec<usize>>> {
        let counts: Vec<usize> = shape
            .iter()
            .zip(cs)
            .map(|(&d, &c)| d.div_ceil(c.clamp(1, d.max(1))).max(1))
            .collect();
        self.reserve(shape, cs, &counts, 1)?;
        Ok(shape.iter().zip(cs).map(|(&d, &c)| split(d, c)).collect())
    }

    /// Tiles every node reachable from `roots`; returns their tilings.
    ///
    /// # Errors
    /// Invalid chunk hints.
    pub fn tile(&mut self, roots: &[NodeId]) -> Result<Vec<Tiled>> {
        for r in roots {
            if self.graph.is_dropped(*r) {
                return Err(Error::invalid(
                    "tile",
                    format!("node {} was dropped: no live tensor holds it", r.0),
                ));
            }
        }
        let order = self.graph.reachable(roots);
        self.plan_virtual(&order, roots);
        for id in order {
            if !self.tiled.contains_key(&id) {
                self.current = Some(id);
                let t = self.tile_node(id)?;
                self.tiled.insert(id, t);
            }
        }
        let mut out = Vec::with_capacity(roots.len());
        for r in roots {
            out.push(self.materialize(*r)?);
        }
        Ok(out)
    }

    fn push(
        &mut self,
        op: ChunkOp,
        inputs: impl Into<ChunkInputs>,
        shape: impl Into<ChunkShape>,
        dtype: DType,
    ) -> ChunkId {
        self.cg.push(ChunkNode {
            op,
            inputs: inputs.into(),
            shape: shape.into(),
            dtype,
        })
    }

    fn source_grid(&self, id: NodeId) -> Result<Vec<Vec<usize>>> {
        let n = self.graph.node(id);
        let cs = match &n.chunk {
            Some(h) if h.len() == 1 && n.shape.len() != 1 => vec![h[0]; n.shape.len()],
            Some(h) if h.len() == n.shape.len() => h.clone(),
            Some(h) => {
                return Err(Error::invalid(
                    "chunk_size",
                    format!("chunk shape {h:?} does not fit array shape {:?}", n.shape),
                ))
            }
            None => auto_chunk_shape(&n.shape, n.dtype, self.chunk_bytes),
        };
        self.grid_for(&n.shape, &cs)
    }

    /// Re-cuts `t` (a tensor of `dtype`) to `grid`, reusing chunks whose box is unchanged.
    fn rechunk(&mut self, t: &Tiled, grid: &[Vec<usize>], dtype: DType) -> Result<Tiled> {
        if t.grid == grid {
            return Ok(t.clone());
        }
        self.reserve_grid(grid, 1)?;
        let in_b: Vec<Vec<usize>> = t.grid.iter().map(|g| boundaries(g)).collect();
        let starts = t.starts();
        let mut chunks = Vec::new();
        for (_, region) in grid_boxes(grid) {
            // Input chunk index ranges overlapping the region, per axis.
            let ranges: Vec<(usize, usize)> = region
                .iter()
                .zip(&in_b)
                .map(|(&(s, e), b)| {
                    // Clamped to the last chunk: on a zero-length axis (boundaries [0, 0]) the
                    // point past every boundary is not a chunk.
                    let lo = b
                        .partition_point(|&x| x <= s)
                        .saturating_sub(1)
                        .min(b.len().saturating_sub(2));
                    let hi = if e == s {
                        lo + 1
                    } else {
                        b.partition_point(|&x| x < e)
                    };
                    (lo, hi.max(lo + 1))
                })
                .collect();
            let sub: Vec<usize> = ranges.iter().map(|&(l, h)| h - l).collect();
            let first: Vec<usize> = ranges.iter().map(|&(l, _)| l).collect();
            if sub.iter().all(|&n| n == 1) && t.region_in(&starts, &first) == region {
                chunks.push(t.at(&first));
                continue;
            }
            let mut inputs = Vec::new();
            let mut pieces = Vec::new();
            for off in grid_indices(&sub) {
                let in_idx: Vec<usize> = off.iter().zip(&first).map(|(&o, &l)| l + o).collect();
                let in_region = t.region_in(&starts, &in_idx);
                // Overlap of the input chunk's box and the target box, in each one's coordinates.
                let src: Region = in_region
                    .iter()
                    .zip(&region)
                    .map(|(&(is, ie), &(s, e))| (s.max(is) - is, e.min(ie) - is))
                    .collect();
                let dst: Vec<usize> = in_region
                    .iter()
                    .zip(&region)
                    .map(|(&(is, _), &(s, _))| s.max(is) - s)
                    .collect();
                inputs.push(t.at(&in_idx));
                pieces.push((src, dst));
            }
            let shape = region_size(&region);
            chunks.push(self.push(ChunkOp::Assemble { pieces }, inputs, shape, dtype));
        }
        Ok(Tiled {
            grid: grid.to_vec(),
            chunks,
        })
    }

    fn tile_node(&mut self, id: NodeId) -> Result<Tiled> {
        let g = self.graph;
        let node = g.node(id);
        let shape = node.shape.clone();
        let dtype = node.dtype;
        // Graphs built without a Session (or edited) get the shape check here too.
        let size = crate::graph::checked_shape(&node.op.name(), &shape, dtype)?;
        // Zero-size tensors are one empty chunk whatever the op.
        if size == 0 && !matches!(node.op, Op::Constant { .. }) {
            let c = self.push(
                ChunkOp::Full {
                    value: crate::dtype::Scalar::Int(0),
                },
                vec![],
                shape.clone(),
                dtype,
            );
            return Ok(Tiled {
                grid: shape.iter().map(|&d| vec![d]).collect(),
                chunks: vec![c],
            });
        }
        if self.fuse
            && (node.op.is_elementwise() || matches!(node.op, Op::Random { .. } | Op::Full { .. }))
        {
            if let Some(t) = self.fused_node(id)? {
                return Ok(t);
            }
        }
        let tails = matches!(node.op, Op::Reduce { .. } | Op::ArgReduce { .. });
        for &i in &node.inputs {
            if !tails && self.is_virtual(i) {
                self.materialize(i)?;
            }
        }
        let inputs: Vec<Tiled> = node.inputs.iter().map(|i| self.tiled[i].clone()).collect();
        let in_shapes: Vec<Vec<usize>> = node
            .inputs
            .iter()
            .map(|&i| g.node(i).shape.clone())
            .collect();
        let in_dtypes: Vec<DType> = node.inputs.iter().map(|&i| g.node(i).dtype).collect();
        match &node.op {
            Op::Constant { .. }
            | Op::External { .. }
            | Op::Full { .. }
            | Op::Arange { .. }
            | Op::Linspace { .. }
            | Op::Eye { .. }
            | Op::Random { .. } => self.source(id),
            Op::Unary(u) => self.elementwise(
                ChunkOp::Unary(*u),
                &inputs,
                &in_shapes,
                &in_dtypes,
                &shape,
                dtype,
            ),
            Op::Binary(b) => self.elementwise(
                ChunkOp::Binary(*b),
                &inputs,
                &in_shapes,
                &in_dtypes,
                &shape,
                dtype,
            ),
            Op::Where => self.elementwise(
                ChunkOp::Where,
                &inputs,
                &in_shapes,
                &in_dtypes,
                &shape,
                dtype,
            ),
            Op::Cast => self.elementwise(
                ChunkOp::Cast,
                &inputs,
                &in_shapes,
                &in_dtypes,
                &shape,
                dtype,
            ),
            Op::Reduce {
                op,
                axes,
                keepdims,
                ddof,
            } => self.reduce(
                &inputs[0],
                node.inputs[0],
                &in_shapes[0],
                in_dtypes[0],
                *op,
                axes,
                *keepdims,
                *ddof,
                dtype,
            ),
            Op::ArgReduce { op, axis } => {
                self.arg_reduce(&inputs[0], node.inputs[0], *op, *axis, in_dtypes[0])
            }
            Op::Transpose { perm } => self.transpose(&inputs[0], perm, dtype),
            Op::Reshape => self.reshape(&inputs[0], &in_shapes[0], &shape, dtype),
            Op::BroadcastTo => self.broadcast_to(&inputs[0], &in_shapes[0], &shape, dtype),
            Op::Slice { axes } => self.slice(&inputs[0], axes, dtype),
            Op::Concat { axis } => self.concat(&inputs, &in_shapes, *axis, &shape, dtype),
            Op::MatMul if self.is_gram(&node.inputs) => self.syrk(&inputs[0], dtype),
            Op::MatMul => self.matmul(&inputs[0], &inputs[1], &in_shapes[0], &in_shapes[1], dtype),
            Op::Dense(d) => self.dense(*d, &inputs, &in_shapes, &in_dtypes, &shape, dtype),
            Op::Sort {
                axis,
                descending,
                arg,
            } => {
                // The axis whole in each chunk (a lane sorts in one kernel); the other axes keep
                // their chunks.
                let mut g = inputs[0].grid.clone();
                g[*axis] = vec![shape[*axis]];
                let t = self.rechunk(&inputs[0], &g, in_dtypes[0])?;
                let op = ChunkOp::Sort {
                    axis: *axis,
                    descending: *descending,
                    arg: *arg,
                };
                self.per_chunk(g, dtype, |idx, _| (op.clone(), vec![t.at(idx)].into()))
            }
            Op::TopK {
                axis,
                k,
                largest,
                arg,
            } => {
                let how = (*axis, *k, *largest);
                self.topk(&inputs[0], node.inputs[0], how, *arg, in_dtypes[0])
            }
            Op::Knn { k, arg } => {
                let ins = ((node.inputs[0], node.inputs[1]), *k);
                self.knn(
                    &inputs[0],
                    &inputs[1],
                    in_shapes[0][1],
                    ins,
                    *arg,
                    in_dtypes[0],
                )
            }
            Op::Scan { axis, prod } => self.scan(&inputs[0], *axis, *prod, dtype),
            Op::BucketCount {
                seg,
                pivots,
                descending,
            } => self.bucket_count(&inputs[0], *seg, pivots, *descending, in_dtypes[0]),
            Op::SampleSort {
                seg,
                pivots,
                counts,
                descending,
                arg,
            } => self.sample_sort(
                &inputs[0],
                *seg,
                pivots,
                counts,
                *descending,
                *arg,
                in_dtypes[0],
            ),
            Op::Take { axis } => {
                let positions = match &g.node(node.inputs[1]).op {
                    Op::Constant { id } => g.constant(*id).cloned(),
                    _ => None,
                }
                .ok_or_else(|| {
                    Error::invalid("take", "the positions are not a constant held by the graph")
                })?;
                let positions = positions
                    .as_array::<i64>()
                    .ok_or_else(|| Error::invalid("take", "the positions are not int64"))?;
                let positions = positions
                    .as_slice()
                    .ok_or_else(|| Error::invalid("take", "the positions are not contiguous"))?;
                self.take(&inputs[0], positions, *axis, dtype)
            }
            Op::TakeAlong { axis } => self.take_along(&inputs[0], &inputs[1], *axis, dtype),
            Op::Compact { seg, counts } => {
                self.compact(&inputs[0], &inputs[1], *seg, counts, dtype)
            }
            Op::Rechunk => {
                let grid = self.source_grid(id)?;
                self.rechunk(&inputs[0], &grid, dtype)
            }
            Op::SearchSorted { right } => self.searchsorted(&inputs[0], &inputs[1], *right),
            Op::BinCount { len } => self.bincount(&inputs, &in_dtypes, *len, dtype),
            Op::Histogram { bins } => self.histogram(&inputs, &in_dtypes, bins, dtype),
        }
    }

    fn per_chunk(
        &mut self,
        grid: Vec<Vec<usize>>,
        dtype: DType,
        mut f: impl FnMut(&[usize], &Region) -> (ChunkOp, ChunkInputs),
    ) -> Result<Tiled> {
        self.reserve_grid(&grid, 1)?;
        let total: usize = grid.iter().map(Vec::len).product();
        let mut chunks = Vec::with_capacity(total);
        let mut walk = GridWalk::new(&grid);
        for _ in 0..total {
            let shape: ChunkShape = walk.region.iter().map(|&(s, e)| e - s).collect();
            let (op, ins) = f(&walk.idx, &walk.region);
            chunks.push(self.push(op, ins, shape, dtype));
            walk.advance(&grid);
        }
        Ok(Tiled { grid, chunks })
    }

    /// Combines `parts` in a tree of fan-in [`COMBINE_FAN_IN`], in order.
    fn tree(
        &mut self,
        mut parts: Vec<ChunkId>,
        mut mk: impl FnMut(&[ChunkId]) -> ChunkOp,
        shape: Vec<usize>,
        dtype: DType,
    ) -> ChunkId {
        while parts.len() > 1 {
            let mut next = Vec::new();
            for group in parts.chunks(COMBINE_FAN_IN) {
                if group.len() == 1 {
                    next.push(group[0]);
                } else {
                    let op = mk(group);
                    next.push(self.push(op, group.to_vec(), shape.clone(), dtype));
                }
            }
            parts = next;
        }
        parts[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn split_and_auto() {
        assert_eq!(split(10, 4), vec![4, 4, 2]);
        assert_eq!(split(0, 4), vec![0]);
        assert_eq!(
            auto_chunk_shape(&[1000, 2000], DType::F32, 4 * 500 * 1000),
            vec![500, 1000]
        );
        assert_eq!(union_grid(&[&vec![5, 5], &vec![3, 7]]), vec![3, 2, 5]);
    }
    /// The graph of Monte Carlo pi at `n` points in chunks of `chunk` (as the CLI builds it).
    /// The pi graph's session and root; the root tensor is returned too, since a node lives
    /// only while a tensor holds it.
    fn pi_graph(n: usize, chunk: usize) -> (crate::Session, crate::NodeId, crate::Tensor) {
        let s = crate::Session::new(std::sync::Arc::new(crate::NullBackend));
        let rng = s.random(0);
        let x = rng.rand(&[n], DType::F32).with_chunks(&[chunk]).unwrap();
        let y = rng.rand(&[n], DType::F32).with_chunks(&[chunk]).unwrap();
        let inside = (&x * &x + &y * &y).lt(1.0).unwrap();
        let r = inside.sum(crate::Axes::All, false).unwrap();
        let id = r.node_id().unwrap();
        (s, id, r)
    }

    #[test]
    fn chunk_count_is_bounded_before_allocating() {
        // `--n 1e13` in 4 Mi chunks: 2.4 million chunks per source, ~7 chunk tasks each.
        let (s, root, _r) = pi_graph(10_000_000_000_000, 1 << 22);
        let g = s.graph();
        let limit = 1_000_000;
        let e = Tiler::new(&g, 16 << 20)
            .with_chunk_limit(limit)
            .tile(&[root])
            .map(|_| ())
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::InvalidArgument { .. })
                && msg.contains("[10000000000000]")
                && msg.contains("[4194304]")
                && msg.contains("2384186"),
            "{msg}"
        );
        // The same graph at 1e9 points fits that bound; the bound counts every chunk task.
        let (s, root, _r) = pi_graph(1_000_000_000, 1 << 22);
        let g = s.graph();
        let mut t = Tiler::new(&g, 16 << 20).with_chunk_limit(limit);
        t.tile(&[root]).unwrap();
        let used = t.cg.len();
        assert!(used > 7 * 239 && used < limit, "{used}");
        let mut t = Tiler::new(&g, 16 << 20).with_chunk_limit(used - 1);
        assert!(t.tile(&[root]).is_err());
        // A shape whose chunk count overflows usize (2**63 one-element chunks, two axes) is
        // the same error, computed without allocating the grid.
        let s = crate::Session::new(std::sync::Arc::new(crate::NullBackend));
        let z = s
            .zeros(&[1 << 31, 1 << 31], DType::Bool)
            .with_chunks(&[1])
            .unwrap();
        let g = s.graph();
        let e = Tiler::new(&g, 16 << 20)
            .tile(&[z.node_id().unwrap()])
            .unwrap_err();
        assert!(e.to_string().contains("cut into chunks of [1, 1]"), "{e}");
    }

    #[test]
    fn chunk_ids_are_bounded_not_wrapped() {
        // 2**32 + 2**16 one-element chunks: more than a u32 ChunkId can number. Whatever the
        // limit hook says, the bound stops at u32::MAX chunk nodes, before any is built.
        let s = crate::Session::new(std::sync::Arc::new(crate::NullBackend));
        let z = s
            .zeros(&[1 << 16, (1 << 16) + 1], DType::Bool)
            .with_chunks(&[1, 1])
            .unwrap();
        let g = s.graph();
        let e = Tiler::new(&g, 16 << 20)
            .with_chunk_limit(usize::MAX)
            .tile(&[z.node_id().unwrap()])
            .map(|_| ())
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::InvalidArgument { .. })
                && msg.contains("4295032832")
                && msg.contains(&u32::MAX.to_string()),
            "{msg}"
        );
    }

    #[test]
    fn rechunk_across_a_zero_length_axis() {
        // (2, 1, 0) in unit chunks, its transpose in one chunk: the product's K axis is empty.
        let s = crate::Session::new(std::sync::Arc::new(crate::NullBackend));
        let a = s
            .from_vec::<f32>(vec![], &[2, 1, 0])
            .unwrap()
            .with_chunks(&[1])
            .unwrap();
        let m = a.matmul(&a.swapaxes(-1, -2).unwrap()).unwrap();
        let g = s.graph();
        let mut t = Tiler::new(&g, 16 << 20);
        let tiled = t.tile(&[m.node_id().unwrap()]).unwrap();
        assert_eq!(tiled[0].grid, vec![vec![1, 1], vec![1], vec![1]]);
    }

    #[test]
    fn selected_ranges() {
        use super::movement::selected_range;
        // indices 1,3,5,7,9 of a length-10 axis; chunk [4,8) holds 5 and 7 (positions 2,3)
        assert_eq!(selected_range(1, 5, 2, 4, 8), (2, 4));
        // indices 9,6,3,0 (step -3); chunk [0,5) holds 3 and 0 (positions 2,3)
        assert_eq!(selected_range(9, 4, -3, 0, 5), (2, 4));
        assert_eq!(selected_range(9, 4, -3, 5, 10), (0, 2));
    }
}
