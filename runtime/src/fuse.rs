//! The Fuser: ChunkGraph -> ChunkGraph where chains of elementwise chunk ops (with scalar and
//! random sources, casts, broadcasts, and an optional reduction-partial tail) become one
//! `ChunkOp::Fused` kernel per chunk.
//!
//! The rule:
//! - Fusible: unary, binary, where, cast, full (a constant) and random chunks. A reduction or
//!   arg partial is a *tail*: it absorbs the fusible chain that feeds it.
//! - A fusible node is inlined into its consumer's kernel when it has exactly one consumer and
//!   that consumer is fusible or a tail. Constants are always inlined. A random source is
//!   recomputed in up to `MAX_RANDOM_FANOUT` consumer kernels: ten Philox rounds cost less than
//!   a store and a load of the value per element, on CPU and GPU alike.
//! - A node read by several consumers (or by a non-fusible op, or requested as an output) is
//!   computed once and stored: its own kernel ends there and its consumers load it.
//! - Limits force a cut: at most `MAX_INPUTS` load buffers and `MAX_INSTS` instructions per
//!   kernel; past them the largest absorbed input chain is stored instead.
//! - Common subexpressions are shared: identical graph nodes are one chunk (interning), and
//!   within a kernel each chunk becomes one instruction.

use crate::chunk::{BoundData, ChunkGraph, ChunkId, ChunkInputs, ChunkNode, ChunkOp};
use crate::dtype::DType;
use crate::ir::{
    row_major_strides, Inst, InstKind, IrInput, IrReduce, KernelIr, KernelParams, RandomParam,
    ReduceKind, ValueId,
};
use rustc_hash::FxHashSet;
use std::sync::Arc;

/// Most load buffers one kernel takes.
pub const MAX_INPUTS: usize = 8;
/// Most instructions in one kernel.
pub const MAX_INSTS: usize = 64;
/// Most consumer kernels a random source is recomputed in before it is stored instead.
pub const MAX_RANDOM_FANOUT: usize = 4;

fn fusible(op: &ChunkOp) -> bool {
    matches!(
        op,
        ChunkOp::Unary(_)
            | ChunkOp::Binary(_)
            | ChunkOp::Where
            | ChunkOp::Cast
            | ChunkOp::Full { .. }
            | ChunkOp::Random { .. }
    )
}

fn is_tail(op: &ChunkOp) -> bool {
    matches!(
        op,
        ChunkOp::ReducePartial { .. } | ChunkOp::ArgPartial { .. }
    )
}

/// True when `cg` holds a chunk the Fuser would fuse (else [`fuse`] returns it unchanged:
/// the Tiler fused every chain while tiling).
pub fn has_fusible(cg: &ChunkGraph) -> bool {
    cg.nodes.iter().any(|node| fusible(&node.op))
}

/// Fuses `cg`; returns the new graph and the new ids of `outputs`.
pub fn fuse(cg: &ChunkGraph, outputs: &[ChunkId]) -> (ChunkGraph, Vec<ChunkId>) {
    let n = cg.len();
    // Per node: how many distinct consumers it has, and whether one of them can take it only
    // stored (neither fusible nor a tail). Counts, not lists: a graph of millions of tiny
    // chunks must not pay one allocation per node here.
    let mut consumer_count = vec![0u32; n];
    let mut must_store = vec![false; n];
    for node in &cg.nodes {
        let takes_inline = fusible(&node.op) || is_tail(&node.op);
        for (j, inp) in node.inputs.iter().enumerate() {
            if node.inputs[..j].contains(inp) {
                continue;
            }
            let k = inp.0 as usize;
            consumer_count[k] += 1;
            must_store[k] |= !takes_inline;
        }
    }
    for o in outputs {
        must_store[o.0 as usize] = true;
    }
    // Which fusible nodes are stored (materialized) rather than inlined.
    let stored: Vec<bool> = (0..n)
        .map(|i| {
            let op = &cg.nodes[i].op;
            if !fusible(op) || must_store[i] {
                return true;
            }
            let cons = consumer_count[i] as usize;
            let inlineable = match op {
                ChunkOp::Full { .. } => true,
                ChunkOp::Random { .. } => cons <= MAX_RANDOM_FANOUT,
                _ => cons == 1,
            };
            !inlineable
        })
        .collect();

    // One pass in node order: every stored or non-fusible node is emitted as a plain node or
    // as the root of a kernel; inlined nodes vanish. A kernel over its limits stores an
    // absorbed input (a victim, always an earlier node) and emits it just before itself.
    let mut f = Emitter {
        cg,
        stored,
        map: vec![u32::MAX; n],
        out: ChunkGraph::default(),
        irs: FxHashSet::default(),
    };
    for i in 0..n {
        if fusible(&cg.nodes[i].op) && !f.stored[i] {
            continue;
        }
        f.emit(i);
    }
    let outs = outputs
        .iter()
        .map(|o| ChunkId(f.map[o.0 as usize]))
        .collect();
    (f.out, outs)
}

/// The fused graph under construction.
struct Emitter<'a> {
    cg: &'a ChunkGraph,
    /// Which fusible nodes are stored (materialized) rather than inlined.
    stored: Vec<bool>,
    /// Old node -> new node (`u32::MAX`: not emitted).
    map: Vec<u32>,
    out: ChunkGraph,
    /// One shared IR per distinct structure: the chunks of one tensor differ only in their
    /// params, so a million tiny chunks hold a handful of IRs.
    irs: FxHashSet<Arc<KernelIr>>,
}

impl Emitter<'_> {
    fn new_id(&self, old: ChunkId) -> ChunkId {
        let id = self.map[old.0 as usize];
        debug_assert!(id != u32::MAX, "chunk {} used before it was emitted", old.0);
        ChunkId(id)
    }

    /// Emits node `i`: a kernel rooted there (a stored fusible node, or a tail whose input
    /// chain is inlined), else the node itself with its inputs renumbered.
    fn emit(&mut self, i: usize) {
        let cg = self.cg;
        let node = &cg.nodes[i];
        let root_value = if fusible(&node.op) && self.stored[i] {
            // A lone stored constant stays a plain fill.
            (!matches!(node.op, ChunkOp::Full { .. })).then_some(i)
        } else if is_tail(&node.op) && !self.stored[node.inputs[0].0 as usize] {
            Some(node.inputs[0].0 as usize)
        } else {
            None
        };
        let Some(root_value) = root_value else {
            let inputs = node.inputs.iter().map(|&l| self.new_id(l)).collect();
            self.push(i, node.op.clone(), inputs, node.dtype);
            return;
        };
        let mut victims = Vec::new();
        let (ir, params, loads, bound) = loop {
            match build_kernel(cg, &self.stored, i, root_value) {
                Ok(k) => {
                    let ir = match self.irs.get(&k.ir) {
                        Some(shared) => shared.clone(),
                        None => {
                            let ir = Arc::new(k.ir);
                            self.irs.insert(ir.clone());
                            ir
                        }
                    };
                    break (ir, k.params, k.loads, k.bound);
                }
                // Over a limit: store the absorbed input with the biggest chain and retry.
                Err(victim) => {
                    self.stored[victim] = true;
                    victims.push(victim);
                }
            }
        };
        // Victims come before their loader, inputs before their users.
        victims.sort_unstable();
        for v in victims {
            self.emit(v);
        }
        let dtype = match &ir.reduce {
            None => ir.result_dtype(),
            Some(_) => node.dtype,
        };
        let inputs = loads.iter().map(|&l| self.new_id(l)).collect();
        self.push(
            i,
            ChunkOp::Fused {
                ir,
                params: Box::new(params),
                bound,
            },
            inputs,
            dtype,
        );
    }

    fn push(&mut self, i: usize, op: ChunkOp, inputs: ChunkInputs, dtype: DType) {
        let id = self.out.push(ChunkNode {
            op,
            inputs,
            shape: self.cg.nodes[i].shape.clone(),
            dtype,
        });
        self.map[i] = id.0;
    }
}

/// One kernel built from a chunk graph: its structure, this chunk's run-time values, the chunks
/// it loads (in load order) and the user data it reads in place.
pub(crate) struct Kernel {
    pub ir: KernelIr,
    pub params: KernelParams,
    pub loads: Vec<ChunkId>,
    pub bound: Vec<(usize, BoundData)>,
    /// The node each `bound` entry reads.
    pub bound_nodes: Vec<ChunkId>,
}

/// The kernel of node `i` of `cg`, whose value is node `root_value` (`i` itself, or the input
/// of `i` when `i` is a reduction or arg tail); fusible inputs that are not `stored` are
/// inlined. Over [`MAX_INPUTS`] or [`MAX_INSTS`], `Err` names the absorbed input with the
/// largest chain, to be stored instead.
pub(crate) fn build_kernel(
    cg: &ChunkGraph,
    stored: &[bool],
    i: usize,
    root_value: usize,
) -> Result<Kernel, usize> {
    let mut b = Builder::new(cg, stored, &cg.nodes[root_value].shape);
    let result = b.value(root_value, true);
    if b.inputs.len() > MAX_INPUTS || b.insts.len() > MAX_INSTS {
        return Err(b
            .largest_absorbed
            .expect("a kernel over its limits absorbed something"));
    }
    let reduce = match &cg.nodes[i].op {
        ChunkOp::ReducePartial { op, axes } => Some(IrReduce {
            kind: ReduceKind::Reduce(*op),
            axes: axes.clone(),
        }),
        ChunkOp::ArgPartial { op, axis, offset } => {
            b.params.arg_base = *offset as u64;
            Some(IrReduce {
                kind: ReduceKind::Arg(*op),
                axes: vec![*axis],
            })
        }
        _ => None,
    };
    let ir = KernelIr {
        shape: cg.nodes[root_value].shape.to_vec(),
        inputs: b.inputs,
        insts: b.insts,
        result,
        reduce,
    };
    let mut params = b.params;
    if b.load_offsets.iter().any(|&o| o != 0) {
        params.load_offsets = b.load_offsets;
    }
    Ok(Kernel {
        ir,
        params,
        loads: b.loads,
        bound: b.bound,
        bound_nodes: b.bound_nodes,
    })
}

struct Builder<'a> {
    cg: &'a ChunkGraph,
    stored: &'a [bool],
    space: Vec<usize>,
    insts: Vec<Inst>,
    inputs: Vec<IrInput>,
    loads: Vec<ChunkId>,
    bound: Vec<(usize, BoundData)>,
    bound_nodes: Vec<ChunkId>,
    load_offsets: Vec<u64>,
    params: KernelParams,
    /// Chunk -> value already built in this kernel (a kernel has at most `MAX_INSTS` values:
    /// a scan beats a hash map's allocation per kernel).
    values: Vec<(usize, ValueId)>,
    largest_absorbed: Option<usize>,
    largest_size: usize,
}

impl<'a> Builder<'a> {
    fn new(cg: &'a ChunkGraph, stored: &'a [bool], space: &[usize]) -> Self {
        Builder {
            cg,
            stored,
            space: space.to_vec(),
            insts: vec![],
            inputs: vec![],
            loads: vec![],
            bound: vec![],
            bound_nodes: vec![],
            load_offsets: vec![],
            params: KernelParams::default(),
            values: Vec::new(),
            largest_absorbed: None,
            largest_size: 0,
        }
    }

    fn push(&mut self, kind: InstKind, dtype: DType) -> ValueId {
        self.insts.push(Inst { kind, dtype });
        (self.insts.len() - 1) as ValueId
    }

    /// Strides mapping index-space coordinates onto a chunk of `shape` (right-aligned
    /// broadcasting), given that chunk's own row-major strides.
    fn map_strides(&self, shape: &[usize], own: &[usize]) -> Vec<usize> {
        let off = self.space.len() - shape.len();
        (0..self.space.len())
            .map(|d| {
                if d < off || (shape[d - off] == 1 && self.space[d] != 1) {
                    0
                } else {
                    own[d - off]
                }
            })
            .collect()
    }

    /// The value of chunk `i` inside the kernel (`root`: build it even if stored).
    fn value(&mut self, i: usize, root: bool) -> ValueId {
        if let Some(&(_, v)) = self.values.iter().find(|(c, _)| *c == i) {
            return v;
        }
        let node = &self.cg.nodes[i];
        let v = if !root
            && (self.stored[i] || !fusible(&node.op))
            && !matches!(node.op, ChunkOp::Full { .. })
        {
            let index = self.inputs.len();
            let strides = if let Some((data, region)) = BoundData::of_op(&node.op) {
                // Read the user's data in place: its strides, this chunk's offset.
                let full = row_major_strides(data.shape());
                self.load_offsets.push(
                    region
                        .iter()
                        .zip(&full)
                        .map(|(r, s)| (r.0 * s) as u64)
                        .sum(),
                );
                self.bound.push((index, data));
                self.bound_nodes.push(ChunkId(i as u32));
                self.map_strides(&node.shape, &full)
            } else {
                self.load_offsets.push(0);
                self.loads.push(ChunkId(i as u32));
                self.map_strides(&node.shape, &row_major_strides(&node.shape))
            };
            self.inputs.push(IrInput {
                dtype: node.dtype,
                strides,
            });
            self.push(InstKind::Load(index as u32), node.dtype)
        } else {
            let before = self.insts.len();
            let ins: Vec<usize> = node.inputs.iter().map(|c| c.0 as usize).collect();
            let v = match &node.op {
                ChunkOp::Full { value } => self.push(InstKind::Const(*value), node.dtype),
                ChunkOp::Random {
                    seed,
                    stream,
                    dist,
                    offset,
                    full,
                } => {
                    let fs = row_major_strides(full);
                    let base: u64 = offset.iter().zip(&fs).map(|(&o, &s)| (o * s) as u64).sum();
                    let gstrides = self
                        .map_strides(&node.shape, &fs)
                        .into_iter()
                        .map(|s| s as u64)
                        .collect();
                    self.params.random.push(RandomParam {
                        seed: *seed,
                        stream: *stream,
                        base,
                    });
                    let param = (self.params.random.len() - 1) as u32;
                    self.push(
                        InstKind::Random {
                            dist: *dist,
                            gstrides,
                            param,
                        },
                        node.dtype,
                    )
                }
                ChunkOp::Unary(op) => {
                    let a = self.value(ins[0], false);
                    self.push(InstKind::Unary(*op, a), node.dtype)
                }
                ChunkOp::Binary(op) => {
                    let a = self.value(ins[0], false);
                    let b = self.value(ins[1], false);
                    self.push(InstKind::Binary(*op, a, b), node.dtype)
                }
                ChunkOp::Where => {
                    let c = self.value(ins[0], false);
                    let a = self.value(ins[1], false);
                    let b = self.value(ins[2], false);
                    self.push(InstKind::Where(c, a, b), node.dtype)
                }
                ChunkOp::Cast => {
                    let a = self.value(ins[0], false);
                    self.push(InstKind::Cast(a), node.dtype)
                }
                other => unreachable!("{} is not fusible", other.name()),
            };
            let size = self.insts.len() - before;
            if !root && size > self.largest_size && !matches!(node.op, ChunkOp::Full { .. }) {
                self.largest_size = size;
                self.largest_absorbed = Some(i);
            }
            v
        };
        self.values.push((i, v));
        v
    }
}
