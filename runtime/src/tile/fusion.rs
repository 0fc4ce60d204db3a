//! Fusion while tiling. An elementwise chain whose links each feed exactly one elementwise op
//! or reduction of the same shape (and random or constant sources feeding a few) is never cut
//! into chunk nodes of its own: the Tiler keeps it as a *virtual* group of coarse nodes and
//! emits one `ChunkOp::Fused` kernel per chunk where the chain ends, with the reduction's
//! partial as the kernel's tail. A graph of a million tiny chunks so holds one node per chunk
//! for the chain instead of one per op and chunk, and the chunk-level Fuser has nothing left
//! to do for it.
//!
//! The kernels are the Fuser's own: the first chunk of each chunk shape is built as a small
//! chunk graph and handed to `fuse::build_kernel`; the others of that shape share its
//! `KernelIr` and differ only in their run-time values (random bases, the offsets of user data
//! read in place, the arg base) and in the chunks they load, which are computed directly.
//! A chain the rules below do not cover is tiled op by op, as before, and fused by the Fuser.

use super::{broadcast_chunk, broadcast_target, elementwise_grid, GridWalk, Tiler};
use crate::array::Region;
use crate::chunk::{
    BoundData, ChunkGraph, ChunkId, ChunkInputs, ChunkNode, ChunkOp, ChunkShape, Tiled,
};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::fuse::{build_kernel, MAX_INPUTS, MAX_INSTS, MAX_RANDOM_FANOUT};
use crate::graph::NodeId;
use crate::ir::{row_major_strides, KernelIr, KernelParams};
use crate::op::{ArgOp, Op, ReduceOp};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A coarse node that a virtual group reads as a whole tensor.
#[derive(Debug, Clone)]
pub(super) struct External {
    id: NodeId,
    /// Its shape (broadcast against the group's on the missing or size-1 axes).
    shape: Vec<usize>,
    /// Its chunks, aligned to the group's grid (one chunk along its broadcast axes).
    tiled: Tiled,
}

/// An elementwise chain not yet cut into chunks.
#[derive(Debug, Clone)]
pub(super) struct Group {
    shape: Vec<usize>,
    grid: Vec<Vec<usize>>,
    /// Coarse nodes computed in the kernel, in graph (topological) order; the last is the
    /// group's value.
    members: Vec<NodeId>,
    externals: Vec<External>,
}

impl Group {
    /// Instructions and loads a kernel of this group needs at most.
    fn size(&self) -> usize {
        self.members.len() + self.externals.len()
    }
}

/// The reduction a group's kernels end in, if any.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tail<'a> {
    /// Elementwise result.
    None,
    /// A reduction partial over `axes`.
    Reduce(ReduceOp, &'a [usize]),
    /// An arg partial along one axis.
    Arg(ArgOp, usize),
}

/// One kernel shared by the chunks of one shape (and one kind of each external chunk).
struct Template {
    ir: Arc<KernelIr>,
    params: KernelParams,
    /// External slot of each loaded chunk, in load order.
    load_slots: Vec<usize>,
    /// (IR input index, external slot, data) of each input read in place.
    bound: Vec<(usize, usize, BoundData)>,
    /// Node dtype.
    dtype: DType,
}

/// How a kernel reads one external chunk: loaded (0), a fill inlined as a constant (1), user
/// data read in place (2). Chunks of one external may differ (a rechunk assembles some).
fn ext_kind(op: &ChunkOp) -> u8 {
    match op {
        ChunkOp::Full { .. } => 1,
        _ if BoundData::of_op(op).is_some() => 2,
        _ => 0,
    }
}

fn fusible_coarse(op: &Op) -> bool {
    op.is_elementwise() || matches!(op, Op::Random { .. } | Op::Full { .. })
}

impl Tiler<'_> {
    /// Which nodes reachable from `roots` may stay virtual: elementwise ops, random draws and
    /// fills (not outputs) whose every consumer is an elementwise op of the same shape or a
    /// reduction, with one consumer (a random draw: up to `MAX_RANDOM_FANOUT`, recomputed in
    /// each; a fill: any number).
    pub(super) fn plan_virtual(&mut self, order: &[NodeId], roots: &[NodeId]) {
        self.eligible.clear();
        if !self.fuse {
            return;
        }
        let g = self.graph;
        // (distinct consumers, all of them absorb it).
        let mut uses: HashMap<NodeId, (usize, bool)> = HashMap::new();
        for &id in order {
            let node = g.node(id);
            let absorbs_elementwise = node.op.is_elementwise();
            let absorbs_tail = matches!(node.op, Op::Reduce { .. } | Op::ArgReduce { .. });
            for (j, inp) in node.inputs.iter().enumerate() {
                if node.inputs[..j].contains(inp) {
                    continue;
                }
                // A fill is the same value everywhere: any elementwise op takes it inline,
                // broadcast or not.
                let same_shape =
                    g.node(*inp).shape == node.shape || matches!(g.node(*inp).op, Op::Full { .. });
                let e = uses.entry(*inp).or_insert((0, true));
                e.0 += 1;
                e.1 &= absorbs_tail || (absorbs_elementwise && same_shape);
            }
        }
        for &id in order {
            let op = &g.node(id).op;
            if !fusible_coarse(op) || roots.contains(&id) {
                continue;
            }
            let Some(&(n, all_absorb)) = uses.get(&id) else {
                continue;
            };
            let fanout_ok = match op {
                Op::Full { .. } => true,
                Op::Random { .. } => n <= MAX_RANDOM_FANOUT,
                _ => n == 1,
            };
            if all_absorb && fanout_ok {
                self.eligible.insert(id);
            }
        }
    }

    /// True when `id` is a virtual group (no chunks yet).
    pub(super) fn is_virtual(&self, id: NodeId) -> bool {
        self.virt.contains_key(&id)
    }

    /// Cuts virtual node `id` into chunks (one kernel per chunk) and records its tiling.
    pub(super) fn materialize(&mut self, id: NodeId) -> Result<Tiled> {
        let Some(group) = self.virt.remove(&id) else {
            return Ok(self.tiled[&id].clone());
        };
        if self.graph.node(id).op.is_source() {
            // A lone draw or fill: plain source chunks (the Fuser decides what to inline).
            let t = self.source(id)?;
            self.tiled.insert(id, t.clone());
            return Ok(t);
        }
        let dtype = self.graph.node(id).dtype;
        let chunks = self.group_chunks(&group, Tail::None, dtype)?;
        let t = Tiled {
            grid: group.grid,
            chunks,
        };
        self.tiled.insert(id, t.clone());
        Ok(t)
    }

    /// Tiles source or elementwise node `id` with fusion on: a virtual group when it may stay
    /// virtual, else its kernels (its virtual inputs inlined where their grids agree).
    /// `None` for a source that is not eligible (tiled as a plain source).
    pub(super) fn fused_node(&mut self, id: NodeId) -> Result<Option<Tiled>> {
        let g = self.graph;
        let node = g.node(id);
        let shape = node.shape.clone();
        let eligible = self.eligible.contains(&id);
        let group = match &node.op {
            Op::Random { .. } | Op::Full { .. } => {
                if !eligible {
                    return Ok(None);
                }
                Group {
                    grid: self.source_grid(id)?,
                    shape,
                    members: vec![id],
                    externals: vec![],
                }
            }
            _ => self.elementwise_group(id)?,
        };
        if eligible {
            let t = Tiled {
                grid: group.grid.clone(),
                chunks: vec![],
            };
            self.virt.insert(id, group);
            return Ok(Some(t));
        }
        let chunks = self.group_chunks(&group, Tail::None, node.dtype)?;
        Ok(Some(Tiled {
            grid: group.grid,
            chunks,
        }))
    }

    /// The group of elementwise node `id`: its virtual inputs of its shape and grid absorbed,
    /// everything else an external aligned to its grid.
    fn elementwise_group(&mut self, id: NodeId) -> Result<Group> {
        let g = self.graph;
        let node = g.node(id);
        let shape = &node.shape;
        // Every input's chunking counts, as in the unfused Tiler (a fill cut into unit chunks
        // asks for unit chunks).
        let spans: Vec<(&[usize], &[Vec<usize>])> = node
            .inputs
            .iter()
            .map(|i| (g.node(*i).shape.as_slice(), self.tiled[i].grid.as_slice()))
            .collect();
        let grid = elementwise_grid(shape, &spans);
        let absorbable = |t: &Self, i: &NodeId| {
            t.is_virtual(*i)
                && (matches!(g.node(*i).op, Op::Full { .. })
                    || (g.node(*i).shape == *shape && t.tiled[i].grid == grid))
        };
        // Too big a kernel: every input is read from memory instead.
        let merged: usize = 1 + node
            .inputs
            .iter()
            .map(|i| {
                if absorbable(self, i) {
                    self.virt[i].size()
                } else {
                    1
                }
            })
            .sum::<usize>();
        let inline = merged <= MAX_INSTS;
        let mut group = Group {
            shape: shape.clone(),
            grid: grid.clone(),
            members: vec![],
            externals: vec![],
        };
        let mut plain = Vec::new();
        let mut absorbed = Vec::new();
        for i in &node.inputs {
            if inline && absorbable(self, i) {
                let sub = &self.virt[i];
                group.members.extend(sub.members.iter().copied());
                group.externals.extend(sub.externals.iter().cloned());
                absorbed.push(*i);
            } else if !plain.contains(i) {
                plain.push(*i);
            }
        }
        for i in plain {
            let e = self.external(i, shape, &grid)?;
            group.externals.push(e);
        }
        group.members.push(id);
        group.members.sort_unstable();
        group.members.dedup();
        let mut seen = HashSet::new();
        let members = &group.members;
        group
            .externals
            .retain(|e| !members.contains(&e.id) && seen.insert(e.id));
        let loads = group.externals.len();
        if loads > MAX_INPUTS || group.size() > MAX_INSTS {
            // Absorbing pulled in too many inputs: absorb nothing instead.
            return self.elementwise_plain(id, grid);
        }
        for i in absorbed {
            if g.node(i).op.is_elementwise() {
                // Its one consumer: nothing else reads the group.
                self.virt.remove(&i);
            }
        }
        Ok(group)
    }

    /// The group of `id` alone, every input an external.
    fn elementwise_plain(&mut self, id: NodeId, grid: Vec<Vec<usize>>) -> Result<Group> {
        let node = self.graph.node(id);
        let mut group = Group {
            shape: node.shape.clone(),
            grid: grid.clone(),
            members: vec![id],
            externals: vec![],
        };
        for &i in &node.inputs {
            if !group.externals.iter().any(|e| e.id == i) {
                let e = self.external(i, &node.shape, &grid)?;
                group.externals.push(e);
            }
        }
        Ok(group)
    }

    /// Input `i` of a group of `shape` cut by `grid`, as an external: its chunks (made if it
    /// was virtual), re-cut to the grid on its own axes, whole along its broadcast ones.
    fn external(&mut self, i: NodeId, shape: &[usize], grid: &[Vec<usize>]) -> Result<External> {
        let t = self.materialize(i)?;
        let node = self.graph.node(i);
        let target = broadcast_target(&node.shape, shape, grid);
        let tiled = self.rechunk(&t, &target, node.dtype)?;
        Ok(External {
            id: i,
            shape: node.shape.clone(),
            tiled,
        })
    }

    /// The virtual group of input `id` of a reduction, taken out of the virtual set (`None`
    /// when `id` has chunks).
    pub(super) fn take_virtual_input(&mut self, id: NodeId) -> Option<Group> {
        let g = self.virt.get(&id)?.clone();
        if !matches!(self.graph.node(id).op, Op::Random { .. } | Op::Full { .. }) {
            self.virt.remove(&id);
        }
        Some(g)
    }

    /// One kernel per chunk of `group` (row-major over its grid), ending in `tail`; `dtype` is
    /// the dtype of the group's value.
    pub(super) fn group_chunks(
        &mut self,
        group: &Group,
        tail: Tail,
        dtype: DType,
    ) -> Result<Vec<ChunkId>> {
        let grid = &group.grid;
        self.reserve_grid(grid, 1)?;
        let total: usize = grid.iter().map(Vec::len).product();
        let mut chunks = Vec::with_capacity(total);
        let fs = row_major_strides(&group.shape);
        let full: Arc<[usize]> = group.shape.clone().into();
        // Few distinct (chunk shape, external kinds): a list, the last one used checked first.
        let mut templates: Vec<(ChunkShape, Vec<u8>, Template)> = Vec::new();
        let mut last = 0usize;
        let mut walk = GridWalk::new(grid);
        let mut ext_chunks: Vec<ChunkId> = Vec::with_capacity(group.externals.len());
        let mut kinds: Vec<u8> = Vec::with_capacity(group.externals.len());
        for _ in 0..total {
            let region = &walk.region;
            let shape: ChunkShape = region.iter().map(|&(s, e)| e - s).collect();
            ext_chunks.clear();
            kinds.clear();
            for e in &group.externals {
                let c = broadcast_chunk(&e.tiled, &e.shape, &group.shape, &walk.idx);
                ext_chunks.push(c);
                kinds.push(ext_kind(&self.cg.node(c).op));
            }
            let same = |(s, k, _): &(ChunkShape, Vec<u8>, Template)| *s == shape && *k == kinds;
            if !templates.get(last).is_some_and(same) {
                last = match templates.iter().position(same) {
                    Some(p) => p,
                    None => {
                        let t = self.template(group, tail, dtype, region, &ext_chunks, &full)?;
                        templates.push((shape.clone(), kinds.clone(), t));
                        templates.len() - 1
                    }
                };
            }
            let t = &templates[last].2;
            let mut params = t.params.clone();
            let base: u64 = region.iter().zip(&fs).map(|(r, &s)| (r.0 * s) as u64).sum();
            for r in &mut params.random {
                r.base = base;
            }
            if let Tail::Arg(_, axis) = tail {
                params.arg_base = region[axis].0 as u64;
            }
            if !t.bound.is_empty() {
                let mut offsets = vec![0u64; t.ir.inputs.len()];
                for (index, slot, data) in &t.bound {
                    if let Some((_, r)) = BoundData::of_op(&self.cg.node(ext_chunks[*slot]).op) {
                        let strides = row_major_strides(data.shape());
                        offsets[*index] =
                            r.iter().zip(&strides).map(|(r, &s)| (r.0 * s) as u64).sum();
                    }
                }
                params.load_offsets = if offsets.iter().any(|&o| o != 0) {
                    offsets
                } else {
                    Vec::new()
                };
            }
            let inputs: ChunkInputs = t.load_slots.iter().map(|&s| ext_chunks[s]).collect();
            let bound = t.bound.iter().map(|(i, _, d)| (*i, d.clone())).collect();
            let out_shape: ChunkShape = match tail {
                Tail::None => shape,
                Tail::Reduce(_, axes) => shape
                    .iter()
                    .enumerate()
                    .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
                    .collect(),
                Tail::Arg(_, axis) => shape
                    .iter()
                    .enumerate()
                    .map(|(a, &d)| if a == axis { 1 } else { d })
                    .collect(),
            };
            let op = ChunkOp::Fused {
                ir: t.ir.clone(),
                params: Box::new(params),
                bound,
            };
            let dt = t.dtype;
            chunks.push(self.push(op, inputs, out_shape, dt));
            walk.advance(grid);
        }
        Ok(chunks)
    }

    /// Builds the kernel of `group` for the chunk at `region` as a small chunk graph handed to
    /// the Fuser's kernel builder.
    fn template(
        &mut self,
        group: &Group,
        tail: Tail,
        dtype: DType,
        region: &Region,
        ext_chunks: &[ChunkId],
        full: &Arc<[usize]>,
    ) -> Result<Template> {
        let g = self.graph;
        let shape: ChunkShape = region.iter().map(|&(s, e)| e - s).collect();
        let mut sc = ChunkGraph::default();
        let mut ids: Vec<(NodeId, ChunkId)> = Vec::new();
        for (e, &c) in group.externals.iter().zip(ext_chunks) {
            let node = self.cg.node(c);
            let op = match node.op {
                ChunkOp::Full { .. } => node.op.clone(),
                _ if BoundData::of_op(&node.op).is_some() => node.op.clone(),
                // Any non-fusible op: the kernel loads it.
                _ => ChunkOp::Reshape,
            };
            let s = sc.push(ChunkNode {
                op,
                inputs: ChunkInputs::new(),
                shape: node.shape.clone(),
                dtype: node.dtype,
            });
            ids.push((e.id, s));
        }
        let lookup = |ids: &[(NodeId, ChunkId)], n: NodeId| {
            ids.iter()
                .find(|(m, _)| *m == n)
                .map(|(_, c)| *c)
                .ok_or_else(|| {
                    Error::invalid("fuse", format!("node {} missing from its fused group", n.0))
                })
        };
        for &m in &group.members {
            let node = g.node(m);
            let op = match &node.op {
                Op::Unary(u) => ChunkOp::Unary(*u),
                Op::Binary(b) => ChunkOp::Binary(*b),
                Op::Where => ChunkOp::Where,
                Op::Cast => ChunkOp::Cast,
                Op::Full { value } => ChunkOp::Full { value: *value },
                Op::Random { seed, stream, dist } => ChunkOp::Random {
                    seed: *seed,
                    stream: *stream,
                    dist: *dist,
                    offset: region.iter().map(|r| r.0).collect(),
                    full: full.clone(),
                },
                other => {
                    return Err(Error::invalid(
                        "fuse",
                        format!("{} cannot be fused", other.name()),
                    ))
                }
            };
            let mut inputs = ChunkInputs::new();
            for &i in &node.inputs {
                inputs.push(lookup(&ids, i)?);
            }
            let s = sc.push(ChunkNode {
                op,
                inputs,
                shape: shape.clone(),
                dtype: node.dtype,
            });
            ids.push((m, s));
        }
        let root = sc.len() - 1;
        let last = match tail {
            Tail::None => root,
            Tail::Reduce(op, axes) => {
                sc.push(ChunkNode {
                    op: ChunkOp::ReducePartial {
                        op,
                        axes: axes.to_vec(),
                    },
                    inputs: [ChunkId(root as u32)].into_iter().collect(),
                    shape: shape.clone(),
                    dtype: super::partial_dtype(op, dtype),
                });
                root + 1
            }
            Tail::Arg(op, axis) => {
                sc.push(ChunkNode {
                    op: ChunkOp::ArgPartial {
                        op,
                        axis,
                        offset: region[axis].0,
                    },
                    inputs: [ChunkId(root as u32)].into_iter().collect(),
                    shape: shape.clone(),
                    dtype,
                });
                root + 1
            }
        };
        let stored = vec![false; sc.len()];
        let k = build_kernel(&sc, &stored, last, root).map_err(|_| {
            Error::invalid(
                "fuse",
                format!(
                    "a fused group of {} ops over its kernel limits",
                    group.members.len()
                ),
            )
        })?;
        let ir = match self.irs.get(&k.ir) {
            Some(shared) => shared.clone(),
            None => {
                let ir = Arc::new(k.ir);
                self.irs.insert(ir.clone());
                ir
            }
        };
        let node_dtype = match tail {
            Tail::None => ir.result_dtype(),
            Tail::Reduce(op, _) => super::partial_dtype(op, dtype),
            Tail::Arg(..) => dtype,
        };
        let n_ext = group.externals.len();
        let slot = |c: ChunkId| {
            let s = c.0 as usize;
            debug_assert!(s < n_ext, "a kernel loads only external chunks");
            s
        };
        Ok(Template {
            load_slots: k.loads.iter().map(|&c| slot(c)).collect(),
            bound: k
                .bound
                .iter()
                .zip(&k.bound_nodes)
                .map(|((i, d), &c)| (*i, slot(c), d.clone()))
                .collect(),
            params: k.params,
            ir,
            dtype: node_dtype,
        })
    }
}
