//! The Tiler: coarse `Graph` -> fine `ChunkGraph`.
//!
//! Every node is cut into a grid of chunks. Sources take their chunk shape from the node's hint
//! (Mars's `chunk_size=`) or from the chunk byte budget; other ops derive their grid from their
//! inputs, rechunking inputs whose grids disagree (the union of their boundaries). Reductions
//! become per-chunk partials combined in a tree; matmul becomes chunk products accumulated along
//! K in order, each step runnable as soon as its product's inputs exist.

use crate::array::Region;
use crate::chunk::{
    grid_boxes, grid_indices, ChunkGraph, ChunkId, ChunkInputs, ChunkNode, ChunkOp, ChunkShape,
    Tiled, MAX_CHUNK_NODES,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{Op, ReduceOp};
use std::collections::HashMap;
use std::sync::Arc;

/// One output chunk of a sliced axis: (length, input chunk index, local (start, stop)).
type SliceRun = (usize, usize, (usize, usize));
/// A partial and the number of elements behind it.
type Counted = (ChunkId, f64);

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
        }
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
        for id in self.graph.reachable(roots) {
            if !self.tiled.contains_key(&id) {
                self.current = Some(id);
                let t = self.tile_node(id)?;
                self.tiled.insert(id, t);
            }
        }
        Ok(roots.iter().map(|r| self.tiled[r].clone()).collect())
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
        let inputs: Vec<Tiled> = node.inputs.iter().map(|i| self.tiled[i].clone()).collect();
        let in_shapes: Vec<Vec<usize>> = node
            .inputs
            .iter()
            .map(|&i| g.node(i).shape.clone())
            .collect();
        let in_dtypes: Vec<DType> = node.inputs.iter().map(|&i| g.node(i).dtype).collect();
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
                &in_shapes[0],
                in_dtypes[0],
                *op,
                axes,
                *keepdims,
                *ddof,
                dtype,
            ),
            Op::ArgReduce { op, axis } => {
                let t = &inputs[0];
                let axis = *axis;
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
                            op: *op,
                            axis,
                            offset: region[axis].0,
                        },
                        vec![t.at(&idx)],
                        pshape,
                        in_dtypes[0],
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
                        |_| ChunkOp::ArgCombine { op: *op },
                        pshape.clone(),
                        in_dtypes[0],
                    );
                    let mut oshape = pshape;
                    oshape.remove(axis);
                    chunks.push(self.push(
                        ChunkOp::ArgFinal { axis },
                        vec![root],
                        oshape,
                        DType::I64,
                    ));
                }
                let mut grid = t.grid.clone();
                grid.remove(axis);
                Ok(Tiled { grid, chunks })
            }
            Op::Transpose { perm } => {
                let t = &inputs[0];
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
                        ChunkOp::Transpose { perm: perm.clone() },
                        vec![src],
                        sh,
                        dtype,
                    ));
                }
                Ok(Tiled { grid, chunks })
            }
            Op::Reshape => self.reshape(&inputs[0], &in_shapes[0], &shape, dtype),
            Op::BroadcastTo => {
                let t = &inputs[0];
                let ins = &in_shapes[0];
                let d = shape.len() - ins.len();
                let hint = auto_chunk_shape(&shape, dtype, self.chunk_bytes);
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
                self.reserve(&shape, &hint, &counts, 1)?;
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
            Op::Slice { axes } => {
                let t = &inputs[0];
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
            Op::Concat { axis } => {
                let axis = *axis;
                let nd = shape.len();
                let live: Vec<usize> = (0..inputs.len())
                    .filter(|&i| in_shapes[i][axis] > 0)
                    .collect();
                let mut grid: Vec<Vec<usize>> = (0..nd)
                    .map(|a| {
                        if a == axis {
                            vec![]
                        } else {
                            union_grid(
                                &live.iter().map(|&i| &inputs[i].grid[a]).collect::<Vec<_>>(),
                            )
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
            Op::MatMul => self.matmul(&inputs[0], &inputs[1], &in_shapes[0], &in_shapes[1], dtype),
            Op::Rechunk => {
                let grid = self.source_grid(id)?;
                self.rechunk(&inputs[0], &grid, dtype)
            }
        }
    }

    fn per_chunk(
        &mut self,
        grid: Vec<Vec<usize>>,
        dtype: DType,
        mut f: impl FnMut(&[usize], &Region) -> (ChunkOp, ChunkInputs),
    ) -> Result<Tiled> {
        self.reserve_grid(&grid, 1)?;
        let counts: Vec<usize> = grid.iter().map(Vec::len).collect();
        let total: usize = counts.iter().product();
        let mut chunks = Vec::with_capacity(total);
        // Walk the grid row-major with one index and one box, updated in place: a grid of
        // millions of tiny chunks must not pay allocations per chunk for its own bookkeeping.
        let nd = grid.len();
        let mut idx = vec![0usize; nd];
        let first = |g: &Vec<usize>| g.first().copied().unwrap_or(0);
        let mut region: Region = grid.iter().map(|g| (0, first(g))).collect();
        for _ in 0..total {
            let shape: ChunkShape = region.iter().map(|&(s, e)| e - s).collect();
            let (op, ins) = f(&idx, &region);
            chunks.push(self.push(op, ins, shape, dtype));
            for a in (0..nd).rev() {
                idx[a] += 1;
                if idx[a] < counts[a] {
                    let start = region[a].1;
                    region[a] = (start, start + grid[a][idx[a]]);
                    break;
                }
                idx[a] = 0;
                region[a] = (0, first(&grid[a]));
            }
        }
        Ok(Tiled { grid, chunks })
    }

    fn elementwise(
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

    #[allow(clippy::too_many_arguments)]
    fn reduce(
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

    fn reshape(
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

    fn matmul(
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

/// The range `[lo, hi)` of output positions `i` whose index `start + i*step` lies in `[c0, c1)`.
fn selected_range(start: usize, len: usize, step: isize, c0: usize, c1: usize) -> (usize, usize) {
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
    fn pi_graph(n: usize, chunk: usize) -> (crate::Session, crate::NodeId) {
        let s = crate::Session::new(std::sync::Arc::new(crate::NullBackend));
        let rng = s.random(0);
        let x = rng.rand(&[n], DType::F32).with_chunks(&[chunk]).unwrap();
        let y = rng.rand(&[n], DType::F32).with_chunks(&[chunk]).unwrap();
        let inside = (&x * &x + &y * &y).lt(1.0).unwrap();
        let r = inside.sum(crate::Axes::All, false).unwrap();
        (s, r.node_id().unwrap())
    }

    #[test]
    fn chunk_count_is_bounded_before_allocating() {
        // `--n 1e13` in 4 Mi chunks: 2.4 million chunks per source, ~7 chunk tasks each.
        let (s, root) = pi_graph(10_000_000_000_000, 1 << 22);
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
        let (s, root) = pi_graph(1_000_000_000, 1 << 22);
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
        // indices 1,3,5,7,9 of a length-10 axis; chunk [4,8) holds 5 and 7 (positions 2,3)
        assert_eq!(selected_range(1, 5, 2, 4, 8), (2, 4));
        // indices 9,6,3,0 (step -3); chunk [0,5) holds 3 and 0 (positions 2,3)
        assert_eq!(selected_range(9, 4, -3, 0, 5), (2, 4));
        assert_eq!(selected_range(9, 4, -3, 5, 10), (0, 2));
    }
}
