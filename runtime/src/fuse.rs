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

use crate::array::HostArray;
use crate::chunk::{ChunkGraph, ChunkId, ChunkNode, ChunkOp};
use crate::dtype::DType;
use crate::ir::{
    row_major_strides, Inst, InstKind, IrInput, IrReduce, KernelIr, KernelParams, RandomParam,
    ReduceKind, ValueId,
};
use std::collections::HashMap;
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

/// Fuses `cg`; returns the new graph and the new ids of `outputs`.
pub fn fuse(cg: &ChunkGraph, outputs: &[ChunkId]) -> (ChunkGraph, Vec<ChunkId>) {
    let n = cg.len();
    let mut consumers: Vec<Vec<usize>> = vec![vec![]; n];
    for (i, node) in cg.nodes.iter().enumerate() {
        let mut seen = Vec::new();
        for inp in &node.inputs {
            let k = inp.0 as usize;
            if !seen.contains(&k) {
                seen.push(k);
                consumers[k].push(i);
            }
        }
    }
    let mut is_output = vec![false; n];
    for o in outputs {
        is_output[o.0 as usize] = true;
    }
    // Which fusible nodes are stored (materialized) rather than inlined.
    let mut stored: Vec<bool> = (0..n)
        .map(|i| {
            let op = &cg.nodes[i].op;
            if !fusible(op) || is_output[i] {
                return true;
            }
            let cons = &consumers[i];
            if cons
                .iter()
                .any(|&c| !(fusible(&cg.nodes[c].op) || is_tail(&cg.nodes[c].op)))
            {
                return true;
            }
            let inlineable = match op {
                ChunkOp::Full { .. } => true,
                ChunkOp::Random { .. } => cons.len() <= MAX_RANDOM_FANOUT,
                _ => cons.len() == 1,
            };
            !inlineable
        })
        .collect();

    // Kernel roots: stored fusible nodes (lone constants stay plain fills), and tails whose input
    // chain is inlined. Build each kernel, cutting at the limits.
    let mut kernels: HashMap<usize, Kernel> = HashMap::new();
    // Roots in order; a node stored to respect the limits becomes a root too.
    let mut work: Vec<usize> = (0..n).rev().collect();
    while let Some(i) = work.pop() {
        let node = &cg.nodes[i];
        let root_value = if fusible(&node.op) && stored[i] {
            if matches!(node.op, ChunkOp::Full { .. }) {
                continue;
            }
            i
        } else if is_tail(&node.op) && !stored[node.inputs[0].0 as usize] {
            node.inputs[0].0 as usize
        } else {
            continue;
        };
        loop {
            let mut b = Builder::new(cg, &stored, &cg.nodes[root_value].shape);
            let result = b.value(root_value, true);
            if b.inputs.len() <= MAX_INPUTS && b.insts.len() <= MAX_INSTS {
                let reduce = match &node.op {
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
                    shape: cg.nodes[root_value].shape.clone(),
                    inputs: b.inputs,
                    insts: b.insts,
                    result,
                    reduce,
                };
                let mut params = b.params;
                if b.load_offsets.iter().any(|&o| o != 0) {
                    params.load_offsets = b.load_offsets;
                }
                kernels.insert(i, (ir, params, b.loads, b.bound));
                break;
            }
            // Over a limit: store the absorbed input with the biggest chain and retry.
            let victim = b
                .largest_absorbed
                .expect("a kernel over its limits absorbed something");
            stored[victim] = true;
            work.push(victim);
        }
    }

    // Rebuild: stored/non-fusible nodes and kernels in order; inlined nodes vanish.
    let mut out = ChunkGraph::default();
    let mut map: Vec<Option<ChunkId>> = vec![None; n];
    for i in 0..n {
        let node = &cg.nodes[i];
        let inlined = fusible(&node.op) && !stored[i];
        if inlined {
            continue;
        }
        let new = if let Some((ir, params, loads, bound)) = kernels.remove(&i) {
            let dtype = match &ir.reduce {
                None => ir.result_dtype(),
                Some(_) => node.dtype,
            };
            ChunkNode {
                op: ChunkOp::Fused {
                    ir: Arc::new(ir),
                    params,
                    bound,
                },
                inputs: loads
                    .iter()
                    .map(|l| map[l.0 as usize].expect("load computed before use"))
                    .collect(),
                shape: node.shape.clone(),
                dtype,
            }
        } else {
            ChunkNode {
                op: node.op.clone(),
                inputs: node
                    .inputs
                    .iter()
                    .map(|l| map[l.0 as usize].expect("input computed before use"))
                    .collect(),
                shape: node.shape.clone(),
                dtype: node.dtype,
            }
        };
        map[i] = Some(out.push(new));
    }
    let outs = outputs
        .iter()
        .map(|o| map[o.0 as usize].expect("outputs are stored"))
        .collect();
    (out, outs)
}

/// A kernel under construction: IR, params, chunk loads, loads bound to user data.
type Kernel = (
    KernelIr,
    KernelParams,
    Vec<ChunkId>,
    Vec<(usize, Arc<HostArray>)>,
);

struct Builder<'a> {
    cg: &'a ChunkGraph,
    stored: &'a [bool],
    space: Vec<usize>,
    insts: Vec<Inst>,
    inputs: Vec<IrInput>,
    loads: Vec<ChunkId>,
    bound: Vec<(usize, Arc<HostArray>)>,
    load_offsets: Vec<u64>,
    params: KernelParams,
    values: HashMap<usize, ValueId>,
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
            load_offsets: vec![],
            params: KernelParams::default(),
            values: HashMap::new(),
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
        if let Some(&v) = self.values.get(&i) {
            return v;
        }
        let node = &self.cg.nodes[i];
        let v = if !root
            && (self.stored[i] || !fusible(&node.op))
            && !matches!(node.op, ChunkOp::Full { .. })
        {
            let index = self.inputs.len();
            let strides = if let ChunkOp::Constant { data, region } = &node.op {
                // Read the user's data in place: its strides, this chunk's offset.
                let full = row_major_strides(data.shape());
                self.load_offsets.push(
                    region
                        .iter()
                        .zip(&full)
                        .map(|(r, s)| (r.0 * s) as u64)
                        .sum(),
                );
                self.bound.push((index, data.clone()));
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
        self.values.insert(i, v);
        v
    }
}
