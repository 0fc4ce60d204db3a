//! Running a chunk graph on another executor: Ray, across machines.
//!
//! The driver tiles and fuses exactly as for a local run. [`RemotePlan::new`] then cuts the
//! chunk graph into *groups*, each one task of the other executor:
//!
//! - nodes that hold user data or sinks (`Constant`, `External`, `Write`) run on the driver,
//!   one per group: the driver reads (or writes) the data where it is, and hands it on;
//! - every other node travels in its serde form ([`TaskSpec`], postcard bytes) and runs on a
//!   worker's best local backend ([`run_task`]);
//! - a node whose only consumer is another remote node is merged into its consumer's group
//!   while the group's work (the bytes its nodes read and write) stays within
//!   [`RemoteExecutor::group_bytes`], so that graphs of tiny chunks do not pay the executor's
//!   per-task cost for each (large chunks stay tasks of their own, so that they run in
//!   parallel). Groups are in-trees: each has one sink, the node whose value leaves the task.
//!
//! A fused kernel that reads user data in place (a `bound` load) is rewritten first: the data's
//! box becomes a driver node and the kernel reads it as an ordinary input, so a task carries
//! exactly the bytes it reads. The kernels, their chunking and the order of every combine are
//! those of the local run, so the results are bit-identical to it.

use crate::array::{HostArray, HostSlice, Region};
use crate::backend::Backend;
use crate::chunk::{BoundData, ChunkData, ChunkGraph, ChunkId, ChunkNode, ChunkOp};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::external::ExternalArray;
use crate::ir::row_major_strides;
use crate::schedule::planned_bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Another executor for the chunk graphs of a [`crate::Session`] (set with
/// [`crate::Session::set_remote`]): every run of the session goes to it instead of the
/// in-process executor or the Scheduler.
pub trait RemoteExecutor: Send + Sync {
    /// Its name, for errors (`ray`).
    fn name(&self) -> &str;
    /// The most work (bytes read and written by its nodes) a merged group of chunk tasks may
    /// hold; 0 merges nothing but sources into their consumer.
    fn group_bytes(&self) -> u64;
    /// Runs `plan`: returns the value of every group in [`RemotePlan::output_groups`], in
    /// that order.
    ///
    /// # Errors
    /// A task that failed (its error), or was lost past the executor's retries.
    fn run(&self, plan: Arc<RemotePlan>) -> Result<Vec<ChunkData>>;
}

/// One task of a remote run: chunk nodes in topological order, the last one its sink.
#[derive(Debug, Clone)]
pub struct Group {
    /// The nodes (ids of [`RemotePlan::graph`]), in order; the last is the sink.
    pub nodes: Vec<ChunkId>,
    /// Groups whose sink value this group reads, in argument order.
    pub inputs: Vec<usize>,
    /// Runs on the driver (user data or a sink), not as a remote task.
    pub on_driver: bool,
    /// Bytes of the sink's value.
    pub out_bytes: u64,
    /// Bytes its nodes read and write.
    pub work_bytes: u64,
    /// Some node of it runs on a GPU backend's device ([`ChunkOp::gpu_host_step`] is false):
    /// a task worth a GPU. A task without device work goes to any CPU.
    pub device_work: bool,
}

/// A chunk graph cut into groups for a remote executor.
#[derive(Debug)]
pub struct RemotePlan {
    cg: ChunkGraph,
    groups: Vec<Group>,
    /// Distinct output groups, in first-seen order of the outputs.
    output_groups: Vec<usize>,
    /// The caller's output ids and the group that computes each.
    outputs: Vec<(ChunkId, usize)>,
}

/// A node of a task on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireNode {
    op: ChunkOp,
    inputs: Vec<WireInput>,
    shape: Vec<usize>,
    dtype: DType,
}

/// Where a node of a task reads an input.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum WireInput {
    /// The task's argument `i`.
    Arg(u32),
    /// The value of the task's node `i` (an earlier one).
    Local(u32),
}

/// A group of chunk nodes in the form that travels to a worker ([`RemotePlan::spec`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Format version: a worker refuses a spec of another version.
    version: u32,
    nodes: Vec<WireNode>,
}

/// The version of [`TaskSpec`] this build writes and reads.
const SPEC_VERSION: u32 = 1;

fn is_driver_op(op: &ChunkOp) -> bool {
    matches!(
        op,
        ChunkOp::Constant { .. } | ChunkOp::External { .. } | ChunkOp::Write { .. }
    )
}

/// `cg` with every bound load of a fused kernel turned into an ordinary input read from a
/// new driver node (the data's box); returns the graph and the new id of every old node.
fn unbind(cg: &ChunkGraph) -> Result<(ChunkGraph, Vec<ChunkId>)> {
    let mut out = ChunkGraph::default();
    let mut map = Vec::with_capacity(cg.len());
    for node in &cg.nodes {
        let mut node = node.clone();
        for inp in node.inputs.iter_mut() {
            *inp = map[inp.0 as usize];
        }
        if let ChunkOp::Fused { ir, params, bound } = &mut node.op {
            if !bound.is_empty() {
                let mut new_ir = (**ir).clone();
                let mut offsets = params.load_offsets.clone();
                offsets.resize(new_ir.inputs.len(), 0);
                // Load index -> its chunk input: the unbound loads keep their order.
                let mut by_load: Vec<Option<ChunkId>> = vec![None; new_ir.inputs.len()];
                let mut rest = node.inputs.iter();
                for (li, slot) in by_load.iter_mut().enumerate() {
                    if !bound.iter().any(|(b, _)| *b == li) {
                        *slot = Some(*rest.next().ok_or_else(|| {
                            Error::invalid(
                                "remote plan",
                                "fused kernel with fewer inputs than loads",
                            )
                        })?);
                    }
                }
                for (li, data) in bound.drain(..) {
                    let full = data.shape().to_vec();
                    let fstr = row_major_strides(&full);
                    let space = new_ir.shape.clone();
                    let off = space.len().checked_sub(full.len()).ok_or_else(|| {
                        Error::invalid("remote plan", "bound data of higher rank than its kernel")
                    })?;
                    let strides = &new_ir.inputs[li].strides;
                    // The box the kernel reads: its start from the load offset, its extent
                    // from the index space (1 where the load broadcasts).
                    let mut region: Region = Vec::with_capacity(full.len());
                    for a in 0..full.len() {
                        let start = if fstr[a] == 0 || full[a] == 0 {
                            0
                        } else {
                            (offsets[li] as usize / fstr[a]) % full[a]
                        };
                        let ext = if strides[a + off] == 0 {
                            1
                        } else {
                            space[a + off]
                        };
                        region.push((start, start + ext));
                    }
                    let extents: Vec<usize> = region.iter().map(|r| r.1 - r.0).collect();
                    let own = row_major_strides(&extents);
                    let new_strides: Vec<usize> = (0..space.len())
                        .map(|d| {
                            if d < off || strides[d] == 0 {
                                0
                            } else {
                                own[d - off]
                            }
                        })
                        .collect();
                    new_ir.inputs[li].strides = new_strides;
                    offsets[li] = 0;
                    let op = match data {
                        BoundData::Host(data) => ChunkOp::Constant { data, region },
                        BoundData::External(data) => ChunkOp::External { data, region },
                    };
                    let dtype = new_ir.inputs[li].dtype;
                    by_load[li] = Some(out.push(ChunkNode {
                        op,
                        inputs: Default::default(),
                        shape: extents.into_iter().collect(),
                        dtype,
                    }));
                }
                node.inputs = by_load.into_iter().flatten().collect();
                params.load_offsets = if offsets.iter().any(|&o| o != 0) {
                    offsets
                } else {
                    Vec::new()
                };
                *ir = Arc::new(new_ir);
            }
        }
        map.push(out.push(node));
    }
    Ok((out, map))
}

impl RemotePlan {
    /// Cuts the part of `cg` that `outputs` need into groups (see the module's text); a group's
    /// merged work stays within `group_bytes`.
    ///
    /// # Errors
    /// A graph with a driver node (a write) whose value a remote task would read.
    pub fn new(cg: &ChunkGraph, outputs: &[ChunkId], group_bytes: u64) -> Result<RemotePlan> {
        let (cg, map) = unbind(cg)?;
        let outs: Vec<ChunkId> = outputs.iter().map(|o| map[o.0 as usize]).collect();
        let n = cg.len();
        let needed = crate::schedule::needed_nodes(&cg, &outs);
        let mut is_output = vec![false; n];
        for o in &outs {
            is_output[o.0 as usize] = true;
        }
        let mut consumers = vec![0u32; n];
        for (i, node) in cg.nodes.iter().enumerate() {
            if !needed[i] {
                continue;
            }
            for (j, inp) in node.inputs.iter().enumerate() {
                if !node.inputs[..j].contains(inp) {
                    consumers[inp.0 as usize] += 1;
                }
            }
        }
        // A node's work: the bytes it reads and writes, and for a fused kernel its whole
        // index space (a kernel that draws random numbers and sums them writes little).
        let work: Vec<u64> = cg
            .nodes
            .iter()
            .map(|node| {
                let own = match &node.op {
                    ChunkOp::Fused { ir, .. } => (ir.len() as u64)
                        .saturating_mul(node.dtype.size() as u64)
                        .max(planned_bytes(node)),
                    _ => planned_bytes(node),
                };
                node.inputs
                    .iter()
                    .map(|c| planned_bytes(cg.node(*c)))
                    .fold(own, u64::saturating_add)
            })
            .collect();
        // Node -> its group (index into `members`); groups start as one node each.
        let mut group_of: Vec<usize> = (0..n).collect();
        let mut members: Vec<Vec<u32>> = (0..n as u32).map(|i| vec![i]).collect();
        let mut gwork = work.clone();
        for i in 0..n {
            if !needed[i] || is_driver_op(&cg.nodes[i].op) {
                continue;
            }
            for (j, inp) in cg.nodes[i].inputs.iter().enumerate() {
                let k = inp.0 as usize;
                if cg.nodes[i].inputs[..j].contains(inp)
                    || is_output[k]
                    || consumers[k] != 1
                    || is_driver_op(&cg.nodes[k].op)
                {
                    continue;
                }
                let (gi, gk) = (group_of[i], group_of[k]);
                if gi == gk || gwork[gi].saturating_add(gwork[gk]) > group_bytes {
                    continue;
                }
                let moved = std::mem::take(&mut members[gk]);
                for &m in &moved {
                    group_of[m as usize] = gi;
                }
                members[gi].extend(moved);
                gwork[gi] = gwork[gi].saturating_add(gwork[gk]);
            }
        }
        // Groups in the order of their sinks (the largest id of each): a group's inputs are
        // sinks of earlier groups, so this order is topological.
        let sink_of: Vec<u32> = members
            .iter()
            .map(|m| m.iter().copied().max().unwrap_or(u32::MAX))
            .collect();
        let mut index = vec![usize::MAX; n];
        let mut groups = Vec::new();
        for i in 0..n {
            let g = group_of[i];
            if !needed[i] || sink_of[g] as usize != i {
                continue;
            }
            let mut nodes = members[g].clone();
            nodes.sort_unstable();
            let on_driver = is_driver_op(&cg.nodes[i].op);
            let mut inputs: Vec<usize> = Vec::new();
            for &m in &nodes {
                for inp in &cg.nodes[m as usize].inputs {
                    let k = inp.0 as usize;
                    if group_of[k] == g {
                        continue;
                    }
                    let gi = index[k];
                    if gi == usize::MAX {
                        return Err(Error::invalid(
                            "remote plan",
                            format!("chunk {k} is read from inside another group's task"),
                        ));
                    }
                    if !inputs.contains(&gi) {
                        inputs.push(gi);
                    }
                }
            }
            let idx = groups.len();
            for &m in &nodes {
                index[m as usize] = usize::MAX;
            }
            index[i] = idx;
            let device_work = nodes
                .iter()
                .any(|&m| !cg.nodes[m as usize].op.gpu_host_step());
            groups.push(Group {
                nodes: nodes.into_iter().map(ChunkId).collect(),
                inputs,
                on_driver,
                out_bytes: planned_bytes(&cg.nodes[i]),
                work_bytes: gwork[g],
                device_work,
            });
        }
        // A driver group that reads remote values (a write) must not feed a remote task: the
        // driver runs it when its inputs arrive, after every task is submitted.
        for g in &groups {
            if g.on_driver {
                continue;
            }
            for &k in &g.inputs {
                let src = &groups[k];
                if src.on_driver && src.inputs.iter().any(|&j| !groups[j].on_driver) {
                    return Err(Error::Unsupported {
                        op: "a remote task reading the value of a write".into(),
                        backend: "a remote executor".into(),
                    });
                }
            }
        }
        let mut output_groups = Vec::new();
        let mut outputs_g = Vec::new();
        for (orig, o) in outputs.iter().zip(&outs) {
            let g = index[o.0 as usize];
            if g == usize::MAX {
                return Err(Error::invalid(
                    "remote plan",
                    format!("output chunk {} is not a group's sink", orig.0),
                ));
            }
            if !output_groups.contains(&g) {
                output_groups.push(g);
            }
            outputs_g.push((*orig, g));
        }
        Ok(RemotePlan {
            cg,
            groups,
            output_groups,
            outputs: outputs_g,
        })
    }

    /// The groups, in topological order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The chunk graph the groups name (the session's, with bound loads unbound).
    pub fn graph(&self) -> &ChunkGraph {
        &self.cg
    }

    /// The groups whose values the run returns, in the order [`RemoteExecutor::run`] returns
    /// them.
    pub fn output_groups(&self) -> &[usize] {
        &self.output_groups
    }

    /// A short description of group `g` for errors and statistics: its ops and its sink's
    /// shape and dtype (`fused+reduce_combine -> [1] f32`).
    pub fn label(&self, g: usize) -> String {
        let grp = &self.groups[g];
        let mut names: Vec<&str> = Vec::new();
        for c in &grp.nodes {
            let name = self.cg.node(*c).op.name();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let sink = self.cg.node(*grp.nodes.last().expect("a group has a node"));
        format!(
            "{} -> {:?} {}",
            names.join("+"),
            sink.shape.as_slice(),
            sink.dtype.name()
        )
    }

    /// Ops of every group's nodes, counted (the run's per-op statistics).
    pub fn per_op(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for g in &self.groups {
            for c in &g.nodes {
                let name = self.cg.node(*c).op.name();
                match counts.iter_mut().find(|(k, _)| k == name) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((name.to_string(), 1)),
                }
            }
        }
        counts.sort();
        counts
    }

    /// The wire form of remote group `g`: postcard bytes of its [`TaskSpec`], for
    /// [`run_task`] on a worker.
    ///
    /// # Errors
    /// `g` runs on the driver (its data does not travel).
    pub fn spec(&self, g: usize) -> Result<Vec<u8>> {
        let grp = &self.groups[g];
        if grp.on_driver {
            return Err(Error::invalid(
                "remote plan",
                format!("group {g} ({}) runs on the driver", self.label(g)),
            ));
        }
        let sinks: Vec<ChunkId> = grp
            .inputs
            .iter()
            .map(|&k| *self.groups[k].nodes.last().expect("a group has a node"))
            .collect();
        let mut nodes = Vec::with_capacity(grp.nodes.len());
        for c in &grp.nodes {
            let node = self.cg.node(*c);
            let inputs = node
                .inputs
                .iter()
                .map(|inp| match grp.nodes.iter().position(|x| x == inp) {
                    Some(p) => WireInput::Local(p as u32),
                    None => WireInput::Arg(
                        sinks.iter().position(|s| s == inp).expect("an input group") as u32,
                    ),
                })
                .collect();
            nodes.push(WireNode {
                op: node.op.clone(),
                inputs,
                shape: node.shape.to_vec(),
                dtype: node.dtype,
            });
        }
        postcard::to_allocvec(&TaskSpec {
            version: SPEC_VERSION,
            nodes,
        })
        .map_err(|e| Error::Serde(format!("task {g} ({}): {e}", self.label(g))))
    }

    /// Runs driver group `g` here (reads user data, or writes a value to its sink) with the
    /// values of its input groups.
    ///
    /// # Errors
    /// The data's or the sink's errors; `g` is a remote group.
    pub fn run_on_driver(&self, g: usize, args: &[&ChunkData]) -> Result<ChunkData> {
        let grp = &self.groups[g];
        let node = self.cg.node(*grp.nodes.last().expect("a group has a node"));
        let first = || {
            args.first()
                .and_then(|a| a.first())
                .ok_or_else(|| Error::invalid("remote plan", "write without its value"))
        };
        match &node.op {
            ChunkOp::Constant { data, region } => Ok(vec![data.slice_region(region, None)]),
            ChunkOp::External { data, region } => Ok(vec![data.read(region)?]),
            ChunkOp::Write { sink, region } => {
                sink.write(region, first()?)?;
                Ok(vec![crate::HostArray::zeros(node.dtype, &node.shape)])
            }
            _ => Err(Error::invalid(
                "remote plan",
                format!("group {g} ({}) is a remote task", self.label(g)),
            )),
        }
    }

    /// The caller's outputs from the values of [`RemotePlan::output_groups`] (in that order).
    ///
    /// # Errors
    /// Fewer values than output groups.
    pub fn collect(&self, values: Vec<ChunkData>) -> Result<HashMap<ChunkId, ChunkData>> {
        if values.len() != self.output_groups.len() {
            return Err(Error::invalid(
                "remote run",
                format!(
                    "{} values returned for {} outputs",
                    values.len(),
                    self.output_groups.len()
                ),
            ));
        }
        let by_group: HashMap<usize, ChunkData> =
            self.output_groups.iter().copied().zip(values).collect();
        Ok(self
            .outputs
            .iter()
            .map(|(c, g)| (*c, by_group[g].clone()))
            .collect())
    }
}

/// One field of a task's argument on a worker: an array the worker holds, or data it reads
/// where it is (a numpy array in an object store's shared memory).
#[derive(Debug, Clone)]
pub enum ArgField {
    /// An array of the worker's own.
    Host(HostArray),
    /// Data read where it is: a fused kernel reads it in place when it is in memory in
    /// row-major order ([`ExternalArray::flat`]); any other op reads a copy.
    Shared(Arc<dyn ExternalArray>),
}

/// Runs a task ([`RemotePlan::spec`] bytes) on `backend` with the values of its input groups;
/// returns its sink's value. A worker's half of a remote run.
///
/// # Errors
/// A malformed spec or one of another version, the wrong number of arguments, or a kernel's
/// error (a panic becomes `Error::Panic`).
pub fn run_task(spec: &[u8], backend: &dyn Backend, args: Vec<ChunkData>) -> Result<ChunkData> {
    let args = args
        .into_iter()
        .map(|a| a.into_iter().map(ArgField::Host).collect())
        .collect();
    run_task_shared(spec, backend, args)
}

/// [`run_task`] with arguments that may be read where they are: a fused kernel reads a
/// shared argument in place (as it reads user data locally) instead of a copy; other ops
/// read one copy of it, made once per task.
///
/// # Errors
/// As [`run_task`]; a shared argument whose copy fails (its read's error).
pub fn run_task_shared(
    spec: &[u8],
    backend: &dyn Backend,
    args: Vec<Vec<ArgField>>,
) -> Result<ChunkData> {
    let spec: TaskSpec =
        postcard::from_bytes(spec).map_err(|e| Error::Serde(format!("task spec: {e}")))?;
    if spec.version != SPEC_VERSION {
        return Err(Error::Serde(format!(
            "task spec version {} (this build reads {SPEC_VERSION}): driver and workers run \
             different builds of tessera",
            spec.version
        )));
    }
    let nargs = args.len();
    // Fused kernels with shared arguments bound in place, and the inputs each node still
    // reads as chunks.
    let bound: Vec<Option<(ChunkOp, Vec<WireInput>)>> = spec
        .nodes
        .iter()
        .map(|w| bind_shared(&w.op, &w.inputs, &args))
        .collect();
    let mut needed = vec![false; nargs];
    for (w, b) in spec.nodes.iter().zip(&bound) {
        for inp in b.as_ref().map_or(&w.inputs[..], |b| &b.1[..]) {
            if let WireInput::Arg(a) = *inp {
                if let Some(n) = needed.get_mut(a as usize) {
                    *n = true;
                }
            }
        }
    }
    let held: Vec<Option<ChunkData>> = args
        .into_iter()
        .zip(&needed)
        .map(|(fields, &n)| {
            if !n {
                return Ok(None);
            }
            fields
                .into_iter()
                .map(|f| match f {
                    ArgField::Host(h) => Ok(h),
                    ArgField::Shared(e) => {
                        let all: Region = e.shape().iter().map(|&d| (0, d)).collect();
                        e.read(&all)
                    }
                })
                .collect::<Result<ChunkData>>()
                .map(Some)
        })
        .collect::<Result<_>>()?;
    let mut values: Vec<Option<ChunkData>> = Vec::with_capacity(spec.nodes.len());
    for (i, (w, b)) in spec.nodes.iter().zip(&bound).enumerate() {
        let (op, inputs) = match b {
            Some((op, inputs)) => (op.clone(), &inputs[..]),
            None => (w.op.clone(), &w.inputs[..]),
        };
        let node = ChunkNode {
            op,
            inputs: Default::default(),
            shape: w.shape.iter().copied().collect(),
            dtype: w.dtype,
        };
        let mut ins: Vec<&ChunkData> = Vec::with_capacity(inputs.len());
        for inp in inputs {
            let v = match *inp {
                WireInput::Arg(a) => held.get(a as usize).and_then(Option::as_ref),
                WireInput::Local(l) if (l as usize) < i => values[l as usize].as_ref(),
                WireInput::Local(_) => None,
            };
            ins.push(v.ok_or_else(|| {
                Error::invalid(
                    "remote task",
                    format!(
                        "node {i} ({}) reads a missing input ({nargs} arguments given)",
                        node.op.name(),
                    ),
                )
            })?);
        }
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            backend.run_chunk(&node, &ins)
        }))
        .unwrap_or_else(|p| {
            Err(Error::from_panic(
                format!("kernel {} (task node {i})", node.op.name()),
                p.as_ref(),
            ))
        })?;
        values.push(Some(out));
    }
    values
        .pop()
        .flatten()
        .ok_or_else(|| Error::invalid("remote task", "a task without nodes"))
}

/// A fused kernel node whose arguments include shared data in memory: the op with those loads
/// bound to the data (read in place, as user data is locally: an argument is the whole value
/// of its input, so the load's offset and strides index it as they index the chunk) and the
/// inputs it still reads as chunks. `None` for any other node (it runs as it came).
fn bind_shared(
    op: &ChunkOp,
    inputs: &[WireInput],
    args: &[Vec<ArgField>],
) -> Option<(ChunkOp, Vec<WireInput>)> {
    let ChunkOp::Fused { ir, params, bound } = op else {
        return None;
    };
    let mut new_bound = bound.clone();
    let mut rest = Vec::with_capacity(inputs.len());
    let mut next = inputs.iter();
    for (li, load) in ir.inputs.iter().enumerate() {
        if bound.iter().any(|(b, _)| *b == li) {
            continue;
        }
        // Fewer inputs than loads: left to the kernel's own error.
        let &inp = next.next()?;
        if let WireInput::Arg(a) = inp {
            if let Some([ArgField::Shared(e)]) = args.get(a as usize).map(Vec::as_slice) {
                if e.dtype() == load.dtype && e.flat().is_some() {
                    new_bound.push((li, BoundData::External(e.clone())));
                    continue;
                }
            }
        }
        rest.push(inp);
    }
    rest.extend(next);
    if new_bound.len() == bound.len() {
        return None;
    }
    Some((
        ChunkOp::Fused {
            ir: ir.clone(),
            params: params.clone(),
            bound: new_bound,
        },
        rest,
    ))
}

/// An array of the process's own offered as shared data, read in place by fused kernels
/// (how [`Loopback`] hands arguments on, so that the in-place path of [`run_task_shared`]
/// runs in every test through it).
#[derive(Debug)]
pub struct Held(pub HostArray);

impl ExternalArray for Held {
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    fn dtype(&self) -> DType {
        self.0.dtype()
    }
    fn read(&self, region: &Region) -> Result<HostArray> {
        crate::external::check_region("task argument", region, self.0.shape())?;
        Ok(self.0.slice_region(region, None))
    }
    fn describe(&self) -> String {
        format!(
            "task argument of shape {:?} {}",
            self.0.shape(),
            self.0.dtype()
        )
    }
    fn flat(&self) -> Option<HostSlice<'_>> {
        HostSlice::of(&self.0)
    }
}

/// An executor that runs a plan in this process through the wire form, one group after
/// another: every remote group's spec is written and read back and run by [`run_task`], as on
/// a worker. For tests of the wire form and of the grouping (the conformance suite runs
/// through it), and for measuring what the wire costs.
pub struct Loopback {
    backend: Arc<dyn Backend>,
    group_bytes: u64,
}

impl Loopback {
    /// Runs tasks on `backend`, merging groups up to `group_bytes` of work.
    pub fn new(backend: Arc<dyn Backend>, group_bytes: u64) -> Loopback {
        Loopback {
            backend,
            group_bytes,
        }
    }
}

impl RemoteExecutor for Loopback {
    fn name(&self) -> &str {
        "loopback"
    }
    fn group_bytes(&self) -> u64 {
        self.group_bytes
    }
    fn run(&self, plan: Arc<RemotePlan>) -> Result<Vec<ChunkData>> {
        let groups = plan.groups();
        let mut uses = vec![0usize; groups.len()];
        for g in groups {
            for &k in &g.inputs {
                uses[k] += 1;
            }
        }
        for &g in plan.output_groups() {
            uses[g] += 1;
        }
        let mut values: Vec<Option<ChunkData>> = vec![None; groups.len()];
        for (g, grp) in groups.iter().enumerate() {
            let value = {
                let args: Vec<&ChunkData> = grp
                    .inputs
                    .iter()
                    .map(|&k| values[k].as_ref().expect("inputs run first"))
                    .collect();
                if grp.on_driver {
                    plan.run_on_driver(g, &args)?
                } else {
                    let spec = plan.spec(g)?;
                    // Single-field arguments go as shared data (fused kernels read them in
                    // place, as a Ray worker reads the object store's arrays); the fields of a
                    // multi-field value as arrays of the task's own.
                    let shared = args
                        .into_iter()
                        .map(|a| match a.as_slice() {
                            [one] => vec![ArgField::Shared(Arc::new(Held(one.clone())))],
                            _ => a.iter().cloned().map(ArgField::Host).collect(),
                        })
                        .collect();
                    run_task_shared(&spec, self.backend.as_ref(), shared)?
                }
            };
            values[g] = Some(value);
            for &k in &grp.inputs {
                uses[k] -= 1;
                if uses[k] == 0 {
                    values[k] = None;
                }
            }
        }
        Ok(plan
            .output_groups()
            .iter()
            .map(|&g| values[g].clone().expect("outputs are kept"))
            .collect())
    }
}
