//! The Executor: runs a ChunkGraph on a Backend. Independent chunks run in parallel (rayon);
//! a chunk's buffer is freed right after its last consumer finishes; peak bytes are tracked.

use crate::backend::Backend;
use crate::chunk::{ChunkData, ChunkGraph, ChunkId};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Locks `m` even when a panic poisoned it: every lock of the executor and the session guards
/// state that a panic cannot leave half-updated (values are replaced whole), and a panic is
/// already turned into an error of its run, so it must not break later runs.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    /// Chunk tasks executed.
    pub tasks: usize,
    /// Peak bytes of live chunk outputs.
    pub peak_bytes: usize,
    /// Tasks per chunk-op name.
    pub per_op: Vec<(String, usize)>,
    /// Tiers, links and lanes of a scheduled (budgeted) run; `None` for in-memory runs.
    pub memory: Option<MemoryStats>,
    /// Wall time of each stage of the run.
    pub stages: Stages,
}

/// Wall time of each stage of one `execute`, in seconds (what a tiny-chunk run pays for).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stages {
    /// Chunk nodes the Tiler made.
    pub chunks: usize,
    /// Graph -> chunk graph.
    pub tile: f64,
    /// Chunk graph -> fused kernels.
    pub fuse: f64,
    /// Sizing the run against host memory.
    pub size: f64,
    /// Executing the kernels (in memory or scheduled).
    pub run: f64,
    /// Results assembled from their chunks.
    pub assemble: f64,
}

struct State {
    values: Vec<Option<Arc<ChunkData>>>,
    remaining_uses: Vec<usize>,
    pending_inputs: Vec<usize>,
    error: Option<Error>,
}

/// Runs of at most this many chunk tasks run on the calling thread, without the thread pool...
const INLINE_TASKS: usize = 8;
/// ... and whose chunks hold at most this many bytes in all (larger ones gain from running
/// their chunks in parallel).
const INLINE_BYTES: u64 = 1 << 20;

/// Source tasks whose chunks average at most this many bytes start in batches (see `run`).
const BATCH_TASK_BYTES: u64 = 64 << 10;

/// Bumped by [`cancel_runs`]: a run that started under another value stops.
static CANCEL_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Stops every run in flight (each returns `Error::Cancelled` at its next chunk task or
/// step); runs started afterwards are not affected. Safe to call from any thread.
pub fn cancel_runs() {
    CANCEL_EPOCH.fetch_add(1, Ordering::SeqCst);
}

/// The cancel epoch a run records when it starts.
fn epoch() -> u64 {
    CANCEL_EPOCH.load(Ordering::SeqCst)
}

/// `Err(Cancelled)` once [`cancel_runs`] was called after the run took `start`.
fn check_cancel(start: u64) -> Result<()> {
    if CANCEL_EPOCH.load(Ordering::Relaxed) != start {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Runs every node of `cg` needed for `outputs` and returns the outputs' data.
///
/// # Errors
/// The first error a backend returns.
pub fn run(
    cg: &ChunkGraph,
    backend: &dyn Backend,
    outputs: &[ChunkId],
) -> Result<(HashMap<ChunkId, ChunkData>, RunStats)> {
    let n = cg.len();
    // Only nodes the outputs depend on.
    let needed = schedule::needed_nodes(cg, outputs);
    // Consumers of each node as one flat list (`consumers[starts[k]..starts[k + 1]]`): no
    // allocation per node, which a graph of millions of tiny chunks would pay for.
    let mut remaining_uses = vec![0usize; n];
    let mut pending_inputs = vec![0usize; n];
    for (i, node) in cg.nodes.iter().enumerate() {
        if !needed[i] {
            continue;
        }
        for inp in &node.inputs {
            remaining_uses[inp.0 as usize] += 1;
            pending_inputs[i] += 1;
        }
    }
    let mut starts = Vec::with_capacity(n + 1);
    starts.push(0usize);
    for &u in &remaining_uses {
        starts.push(starts.last().copied().unwrap_or(0) + u);
    }
    let mut fill = starts[..n].to_vec();
    let mut consumers = vec![0u32; starts[n]];
    for (i, node) in cg.nodes.iter().enumerate() {
        if !needed[i] {
            continue;
        }
        for inp in &node.inputs {
            let k = inp.0 as usize;
            consumers[fill[k]] = i as u32;
            fill[k] += 1;
        }
    }
    drop(fill);
    let is_output: Vec<bool> = {
        let mut v = vec![false; n];
        for o in outputs {
            v[o.0 as usize] = true;
        }
        v
    };
    let state = Mutex::new(State {
        values: vec![None; n],
        remaining_uses,
        pending_inputs,
        error: None,
    });
    let live = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let tasks = AtomicUsize::new(0);
    let roots: Vec<u32> = (0..n as u32)
        .filter(|&i| needed[i as usize] && cg.nodes[i as usize].inputs.is_empty())
        .collect();

    /// Runs chunk task `i`; `ready` receives the consumers it made ready to run.
    fn task(i: u32, ctx: &Ctx<'_>, ready: &mut impl FnMut(u32)) {
        let node = &ctx.cg.nodes[i as usize];
        let inputs: Option<smallvec::SmallVec<[Arc<ChunkData>; 4]>> = {
            let st = lock(ctx.state);
            if st.error.is_some() {
                return;
            }
            node.inputs
                .iter()
                .map(|c| st.values[c.0 as usize].clone())
                .collect()
        };
        let Some(inputs) = inputs else { return };
        let refs: smallvec::SmallVec<[&ChunkData; 4]> = inputs.iter().map(|a| a.as_ref()).collect();
        // A panicking kernel fails this run like an error: its consumers are never spawned,
        // the scope ends and `run` returns the error.
        let result = check_cancel(ctx.epoch).and_then(|()| {
            catch_unwind(AssertUnwindSafe(|| ctx.backend.run_chunk(node, &refs))).unwrap_or_else(
                |p| {
                    Err(Error::from_panic(
                        format!("kernel {} (chunk {i})", node.op.name()),
                        p.as_ref(),
                    ))
                },
            )
        });
        drop(refs);
        drop(inputs);
        let mut st = lock(ctx.state);
        match result {
            Err(e) => {
                if st.error.is_none() {
                    st.error = Some(e);
                }
            }
            Ok(out) => {
                let bytes: usize = out.iter().map(|a| a.nbytes()).sum();
                let now = ctx.live.fetch_add(bytes, Ordering::SeqCst) + bytes;
                ctx.peak.fetch_max(now, Ordering::SeqCst);
                ctx.tasks.fetch_add(1, Ordering::Relaxed);
                st.values[i as usize] = Some(Arc::new(out));
                for inp in &node.inputs {
                    let k = inp.0 as usize;
                    st.remaining_uses[k] -= 1;
                    if st.remaining_uses[k] == 0 && !ctx.is_output[k] {
                        if let Some(v) = st.values[k].take() {
                            let b: usize = v.iter().map(|a| a.nbytes()).sum();
                            ctx.live.fetch_sub(b, Ordering::SeqCst);
                        }
                    }
                }
                let i = i as usize;
                for &c in &ctx.consumers[ctx.starts[i]..ctx.starts[i + 1]] {
                    st.pending_inputs[c as usize] -= 1;
                    if st.pending_inputs[c as usize] == 0 {
                        ready(c);
                    }
                }
            }
        }
    }

    struct Ctx<'a> {
        cg: &'a ChunkGraph,
        backend: &'a dyn Backend,
        state: &'a Mutex<State>,
        consumers: &'a [u32],
        starts: &'a [usize],
        is_output: &'a [bool],
        live: &'a AtomicUsize,
        peak: &'a AtomicUsize,
        tasks: &'a AtomicUsize,
        epoch: u64,
    }
    let ctx = Ctx {
        epoch: epoch(),
        cg,
        backend,
        state: &state,
        consumers: &consumers,
        starts: &starts,
        is_output: &is_output,
        live: &live,
        peak: &peak,
        tasks: &tasks,
    };
    fn spawn<'s>(s: &rayon::Scope<'s>, i: u32, ctx: &'s Ctx<'s>) {
        s.spawn(move |s| task(i, ctx, &mut |c| spawn(s, c, ctx)));
    }
    let (count, bytes) = cg
        .nodes
        .iter()
        .zip(&needed)
        .filter(|(_, &nd)| nd)
        .fold((0usize, 0u64), |(c, b), (node, _)| {
            (c + 1, b.saturating_add(schedule::planned_bytes(node)))
        });
    if count <= INLINE_TASKS && bytes <= INLINE_BYTES {
        // A handful of tasks: run them on this thread. Waking the pool's workers for them cost
        // more than the kernels (a one-op graph of 1,000 elements paid most of its time there).
        let mut queue = roots.clone();
        while let Some(i) = queue.pop() {
            task(i, &ctx, &mut |c| queue.push(c));
        }
    } else {
        // Many small source tasks (a graph of tiny chunks) start in batches, each run in
        // order by one job: a job per task cost more than the task. Large tasks keep one job
        // each, so that every thread gets work.
        let small = bytes / (count as u64).max(1) <= BATCH_TASK_BYTES;
        let batch = if small {
            (roots.len() / (rayon::current_num_threads() * 32)).clamp(1, 4096)
        } else {
            1
        };
        rayon::scope(|s| {
            for group in roots.chunks(batch) {
                let ctx = &ctx;
                s.spawn(move |s| {
                    for &r in group {
                        task(r, ctx, &mut |c| spawn(s, c, ctx));
                    }
                });
            }
        });
    }
    let mut st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = st.error.take() {
        return Err(e);
    }
    let mut out = HashMap::new();
    for o in outputs {
        if out.contains_key(o) {
            continue;
        }
        let v = st.values[o.0 as usize]
            .take()
            .map(|a| Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()))
            .ok_or_else(|| Error::invalid("execute", format!("chunk {} was not computed", o.0)))?;
        out.insert(*o, v);
    }
    // Every needed node ran (the run succeeded): count them per op after the fact instead of
    // under a lock per task.
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for (node, _) in cg.nodes.iter().zip(&needed).filter(|(_, &nd)| nd) {
        let name = node.op.name();
        match counts.iter_mut().find(|(k, _)| *k == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    let mut per_op: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    per_op.sort();
    Ok((
        out,
        RunStats {
            tasks: tasks.into_inner(),
            peak_bytes: peak.into_inner(),
            per_op,
            memory: None,
            stages: Stages::default(),
        },
    ))
}

/// Host bytes an in-memory run of `outputs` needs, estimated from the chunk graph before
/// anything is allocated (sizes saturate instead of overflowing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryNeed {
    /// Bytes of every needed chunk: no run can need more than this at once.
    pub total: u64,
    /// Peak live bytes of a depth-first run that frees each chunk after its last use, with
    /// one extra chunk in flight per worker thread; computed only when `total` is over the
    /// limit it was asked about (else equal to `total`).
    pub peak: u64,
    /// The largest single kernel's inputs plus output: what even a spilling run must hold.
    pub largest_kernel: u64,
    /// Bytes of the distinct output chunks (they live to the end of any run).
    pub outputs: u64,
}

/// Bytes of a chunk's output, saturating for shapes too large to exist.
fn need_bytes(node: &ChunkNode) -> u64 {
    // Saturating, so an out-of-memory error names the real size of a huge chunk.
    schedule::planned_bytes(node)
}

/// Estimates what an in-memory run of `outputs` needs (see [`MemoryNeed`]); the depth-first
/// simulation runs only when `total` exceeds `limit`, so fitting jobs pay one pass.
pub fn in_memory_need(cg: &ChunkGraph, outputs: &[ChunkId], limit: u64) -> MemoryNeed {
    let n = cg.len();
    let needed = schedule::needed_nodes(cg, outputs);
    let bytes: Vec<u64> = cg
        .nodes
        .iter()
        .zip(&needed)
        .map(|(node, &k)| if k { need_bytes(node) } else { 0 })
        .collect();
    let mut need = MemoryNeed::default();
    let mut is_output = vec![false; n];
    for o in outputs {
        if !std::mem::replace(&mut is_output[o.0 as usize], true) {
            need.outputs = need.outputs.saturating_add(bytes[o.0 as usize]);
        }
    }
    let mut largest_chunk = 0u64;
    for (i, node) in cg.nodes.iter().enumerate() {
        if !needed[i] {
            continue;
        }
        need.total = need.total.saturating_add(bytes[i]);
        largest_chunk = largest_chunk.max(bytes[i]);
        let kernel = node
            .inputs
            .iter()
            .fold(bytes[i], |a, c| a.saturating_add(bytes[c.0 as usize]));
        need.largest_kernel = need.largest_kernel.max(kernel);
    }
    need.peak = need.total;
    if need.total <= limit {
        return need;
    }
    let order = schedule::order(cg, outputs, crate::storage::Order::DepthFirst);
    let mut uses = vec![0u32; n];
    for c in &order {
        for inp in &cg.node(*c).inputs {
            uses[inp.0 as usize] += 1;
        }
    }
    let (mut live, mut peak) = (0u64, 0u64);
    for c in &order {
        let i = c.0 as usize;
        live = live.saturating_add(bytes[i]);
        peak = peak.max(live);
        for inp in &cg.node(*c).inputs {
            let k = inp.0 as usize;
            uses[k] -= 1;
            if uses[k] == 0 && !is_output[k] {
                live = live.saturating_sub(bytes[k]);
            }
        }
    }
    // The rayon executor runs about one chain per thread at once, not one chain.
    let slack = largest_chunk.saturating_mul(rayon::current_num_threads().saturating_sub(1) as u64);
    need.peak = peak.saturating_add(slack).min(need.total);
    need
}

// ---------------------------------------------------------------------------------------------
// The scheduled Executor: runs a `Plan` with a compute lane and a copy lane per device, a disk
// lane and a free lane per tier, each a thread that takes its steps in plan order once the
// steps they wait for are done. Every buffer is charged to its tier; spill reads that fail
// (missing or damaged file) recompute the chunk from its lineage.

use crate::backend::DeviceChunk;
use crate::chunk::ChunkNode;
use crate::schedule::{self, tier_index, Budgets, Lane, Plan, Step};
use crate::storage::{MemoryConfig, SpillDir};
use crate::Tier;
use std::sync::atomic::AtomicBool;
use std::sync::Condvar;
use std::time::Instant;

/// A link data moves over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// Host to device.
    HostToDevice,
    /// Device to host.
    DeviceToHost,
    /// Host to disk (spill).
    HostToDisk,
    /// Disk to host (unspill).
    DiskToHost,
    /// Device to device.
    DeviceToDevice,
}

const LINKS: [Link; 5] = [
    Link::HostToDevice,
    Link::DeviceToHost,
    Link::HostToDisk,
    Link::DiskToHost,
    Link::DeviceToDevice,
];

/// What a scheduled run measured, per tier, link and device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStats {
    /// Budget per tier: devices, then host, then disk.
    pub budgets: Vec<(Tier, u64)>,
    /// Peak bytes per tier (same order).
    pub peak: Vec<(Tier, u64)>,
    /// Peak bytes per tier in the plan's simulation (same order).
    pub planned_peak: Vec<(Tier, u64)>,
    /// Bytes moved per link.
    pub moved: Vec<(Link, u64)>,
    /// Chunks written to disk.
    pub spills: usize,
    /// Chunks read back from disk.
    pub unspills: usize,
    /// Chunks recomputed from their lineage because a spill file was missing or damaged.
    pub recomputed: usize,
    /// Kernels run per device.
    pub kernels: Vec<usize>,
    /// Seconds in kernels per device.
    pub kernel_seconds: Vec<f64>,
    /// Seconds in copies per device lane.
    pub copy_seconds: Vec<f64>,
    /// Seconds in spill reads and writes.
    pub disk_seconds: f64,
    /// Seconds spent planning.
    pub plan_seconds: f64,
    /// Steps in the plan: (runs, copies, frees).
    pub steps: (usize, usize, usize),
}

impl MemoryStats {
    /// Peak bytes of a tier.
    pub fn peak_of(&self, t: Tier) -> u64 {
        self.peak.iter().find(|p| p.0 == t).map_or(0, |p| p.1)
    }
    /// Budget of a tier.
    pub fn budget_of(&self, t: Tier) -> u64 {
        self.budgets.iter().find(|p| p.0 == t).map_or(0, |p| p.1)
    }
    /// Bytes moved over a link.
    pub fn moved_over(&self, l: Link) -> u64 {
        self.moved.iter().find(|p| p.0 == l).map_or(0, |p| p.1)
    }
}

#[derive(Default)]
struct Slots {
    host: Option<(Arc<ChunkData>, u64)>,
    dev: Vec<(usize, Arc<DeviceChunk>, u64)>,
    disk: Option<u64>,
}

struct Sched<'a> {
    cg: &'a ChunkGraph,
    backend: &'a dyn Backend,
    plan: &'a Plan,
    spill: &'a SpillDir,
    cfg: &'a MemoryConfig,
    slots: Vec<Mutex<Slots>>,
    done: Vec<AtomicBool>,
    // Lane of each step, and per step the lanes with a step waiting for it: a finished step
    // wakes only those lanes.
    lane_of: Vec<u32>,
    waiters: Vec<Vec<u32>>,
    lanes: Vec<(Mutex<()>, Condvar)>,
    sleeping: Vec<AtomicBool>,
    // Frees run inline in the thread that finishes their last dependency: per free, the count
    // of unfinished dependencies; per step, the frees waiting for it.
    free_pending: Vec<AtomicUsize>,
    free_waiters: Vec<Vec<u32>>,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
    used: Vec<AtomicU64>,
    peak: Vec<AtomicU64>,
    moved: [AtomicU64; 5],
    spills: AtomicUsize,
    unspills: AtomicUsize,
    recomputed: AtomicUsize,
    kernels: Vec<AtomicUsize>,
    kernel_ns: Vec<AtomicU64>,
    copy_ns: Vec<AtomicU64>,
    disk_ns: AtomicU64,
    tasks: AtomicUsize,
    per_op: Mutex<HashMap<&'static str, usize>>,
}

fn data_bytes(d: &ChunkData) -> u64 {
    d.iter().map(|a| a.nbytes() as u64).sum()
}

impl Sched<'_> {
    fn ndev(&self) -> usize {
        self.plan.devices()
    }
    fn charge(&self, t: Tier, b: u64) {
        let i = tier_index(t, self.ndev());
        let now = self.used[i].fetch_add(b, Ordering::SeqCst) + b;
        self.peak[i].fetch_max(now, Ordering::SeqCst);
    }
    fn uncharge(&self, t: Tier, b: u64) {
        self.used[tier_index(t, self.ndev())].fetch_sub(b, Ordering::SeqCst);
    }
    fn link(&self, l: Link, b: u64) {
        let i = LINKS.iter().position(|&x| x == l).expect("link");
        self.moved[i].fetch_add(b, Ordering::Relaxed);
    }
    fn dev_bytes(&self, node: &ChunkNode, c: &DeviceChunk) -> u64 {
        match c {
            DeviceChunk::Host(d) => data_bytes(d),
            DeviceChunk::Native(_) => schedule::planned_bytes(node),
        }
    }
    /// Records the run's first error and wakes every lane: each waiting lane sees `failed`
    /// and returns, so the run stops without finishing its steps.
    fn fail(&self, e: Error) {
        let mut g = lock(&self.error);
        if g.is_none() {
            *g = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
        drop(g);
        for (m, cv) in &self.lanes {
            // Taking the lock orders this notify after a waiter's last check of `failed`.
            let _l = lock(m);
            cv.notify_all();
        }
    }
    /// What step `i` does, for error messages.
    fn describe(&self, i: usize) -> String {
        match self.plan.steps[i] {
            Step::Run { node, dev } => format!(
                "kernel {} (chunk {}) on device {dev}",
                self.cg.node(node).op.name(),
                node.0
            ),
            Step::Copy { chunk, from, to } => {
                format!("copy of chunk {} from {from:?} to {to:?}", chunk.0)
            }
            Step::Free { chunk, tier } => format!("free of chunk {} on {tier:?}", chunk.0),
        }
    }
    /// Runs step `i` and what its end triggers; a panic becomes this run's error.
    fn step_and_finish(&self, i: usize) -> Result<()> {
        catch_unwind(AssertUnwindSafe(|| {
            self.step(i).and_then(|()| self.finish(i))
        }))
        .unwrap_or_else(|p| Err(Error::from_panic(self.describe(i), p.as_ref())))
    }
    fn wake(&self, lane: usize) {
        // The waiter publishes `sleeping` before its last check of the dependencies, and we
        // publish `done` before reading `sleeping` (both SeqCst): one of us sees the other.
        if self.sleeping[lane].load(Ordering::SeqCst) {
            let (m, cv) = &self.lanes[lane];
            let _l = lock(m);
            cv.notify_all();
        }
    }
    fn wait(&self, i: usize) -> bool {
        let ready = |s: &Self| {
            s.plan
                .deps(i)
                .iter()
                .all(|&d| s.done[d as usize].load(Ordering::SeqCst))
        };
        if ready(self) {
            return !self.failed.load(Ordering::SeqCst);
        }
        let lane = self.lane_of[i] as usize;
        let (m, cv) = &self.lanes[lane];
        let mut g = lock(m);
        loop {
            self.sleeping[lane].store(true, Ordering::SeqCst);
            if self.failed.load(Ordering::SeqCst) || ready(self) {
                self.sleeping[lane].store(false, Ordering::SeqCst);
                return !self.failed.load(Ordering::SeqCst);
            }
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
    /// Marks step `i` done, runs the frees it was the last dependency of, wakes waiting lanes.
    fn finish(&self, i: usize) -> Result<()> {
        let mut work = vec![i];
        while let Some(j) = work.pop() {
            self.done[j].store(true, Ordering::SeqCst);
            for &f in &self.free_waiters[j] {
                if self.free_pending[f as usize].fetch_sub(1, Ordering::SeqCst) == 1 {
                    self.step(f as usize)?;
                    work.push(f as usize);
                }
            }
            for &l in &self.waiters[j] {
                self.wake(l as usize);
            }
        }
        Ok(())
    }
    /// Host data of chunk `c` from any copy, else recomputed from its inputs.
    fn host_data(&self, c: ChunkId) -> Result<Arc<ChunkData>> {
        let (host, dev, disk) = {
            let s = self.slots[c.0 as usize].lock().expect("slots");
            (
                s.host.as_ref().map(|h| h.0.clone()),
                s.dev.first().map(|d| (d.0, d.1.clone())),
                s.disk.is_some(),
            )
        };
        if let Some(h) = host {
            return Ok(h);
        }
        if let Some((d, chunk)) = dev {
            return self.backend.copy_dtoh(d, &chunk);
        }
        if disk {
            let node = self.cg.node(c);
            if let Ok(d) = self.spill.read_as(c, node.dtype, &node.shape) {
                return Ok(Arc::new(d));
            }
        }
        self.recompute(c)
    }
    /// Recomputes a chunk on the host from its lineage (inputs from any copy, else recursively).
    fn recompute(&self, c: ChunkId) -> Result<Arc<ChunkData>> {
        let node = self.cg.node(c);
        let inputs: Vec<Arc<ChunkData>> = node
            .inputs
            .iter()
            .map(|&i| self.host_data(i))
            .collect::<Result<_>>()?;
        let refs: Vec<&ChunkData> = inputs.iter().map(|a| a.as_ref()).collect();
        let out = self.backend.run_chunk(node, &refs)?;
        self.recomputed.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(out))
    }
    fn step(&self, i: usize) -> Result<()> {
        match self.plan.steps[i] {
            Step::Run { node: c, dev } => {
                let node = self.cg.node(c);
                let inputs: Vec<Arc<DeviceChunk>> = node
                    .inputs
                    .iter()
                    .map(|inp| {
                        let s = self.slots[inp.0 as usize].lock().expect("slots");
                        s.dev.iter().find(|d| d.0 == dev).map(|d| d.1.clone())
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        Error::invalid("execute", format!("inputs of chunk {} missing", c.0))
                    })?;
                let refs: Vec<&DeviceChunk> = inputs.iter().map(|a| a.as_ref()).collect();
                let t0 = Instant::now();
                let out = self.backend.run_on(dev, node, &refs)?;
                self.kernel_ns[dev].fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                self.kernels[dev].fetch_add(1, Ordering::Relaxed);
                self.tasks.fetch_add(1, Ordering::Relaxed);
                *self
                    .per_op
                    .lock()
                    .expect("stats")
                    .entry(node.op.name())
                    .or_default() += 1;
                let b = self.dev_bytes(node, &out);
                self.charge(Tier::Device(dev), b);
                self.slots[c.0 as usize]
                    .lock()
                    .expect("slots")
                    .dev
                    .push((dev, Arc::new(out), b));
            }
            Step::Copy { chunk: c, from, to } => {
                let t0 = Instant::now();
                let node = self.cg.node(c);
                let slot = &self.slots[c.0 as usize];
                let src_dev = |d: usize| {
                    slot.lock()
                        .expect("slots")
                        .dev
                        .iter()
                        .find(|x| x.0 == d)
                        .map(|x| x.1.clone())
                        .ok_or_else(|| {
                            Error::invalid("execute", format!("chunk {} not on device {d}", c.0))
                        })
                };
                let src_host = || {
                    slot.lock()
                        .expect("slots")
                        .host
                        .as_ref()
                        .map(|h| h.0.clone())
                        .ok_or_else(|| {
                            Error::invalid("execute", format!("chunk {} not on host", c.0))
                        })
                };
                match (from, to) {
                    (Tier::Device(s), Tier::Device(d)) => {
                        let out = self.backend.copy_dtod(s, d, &*src_dev(s)?)?;
                        let b = self.dev_bytes(node, &out);
                        self.charge(to, b);
                        self.link(Link::DeviceToDevice, b);
                        slot.lock().expect("slots").dev.push((d, Arc::new(out), b));
                    }
                    (Tier::Host, Tier::Device(d)) => {
                        let out = self.backend.copy_htod(d, &src_host()?)?;
                        let b = self.dev_bytes(node, &out);
                        self.charge(to, b);
                        self.link(Link::HostToDevice, b);
                        slot.lock().expect("slots").dev.push((d, Arc::new(out), b));
                    }
                    (Tier::Device(s), Tier::Host) => {
                        let out = self.backend.copy_dtoh(s, &*src_dev(s)?)?;
                        let b = data_bytes(&out);
                        self.charge(to, b);
                        self.link(Link::DeviceToHost, b);
                        slot.lock().expect("slots").host = Some((out, b));
                    }
                    (Tier::Host, Tier::Disk) => {
                        let data = src_host()?;
                        let b = self.spill.write(c, &data)?;
                        if let Some(h) = &self.cfg.spill_hook {
                            h(c, &self.spill.file(c));
                        }
                        self.charge(to, b);
                        self.link(Link::HostToDisk, data_bytes(&data));
                        self.spills.fetch_add(1, Ordering::Relaxed);
                        slot.lock().expect("slots").disk = Some(b);
                    }
                    (Tier::Disk, Tier::Host) => {
                        let data = match self.spill.read_as(c, node.dtype, &node.shape) {
                            Ok(d) => Arc::new(d),
                            // A missing, damaged or foreign file (another run's or chunk's,
                            // or not the dtype and shape of the graph) is never read as data.
                            Err(_) => self.recompute(c)?,
                        };
                        let b = data_bytes(&data);
                        self.charge(to, b);
                        self.link(Link::DiskToHost, b);
                        self.unspills.fetch_add(1, Ordering::Relaxed);
                        slot.lock().expect("slots").host = Some((data, b));
                    }
                    (f, t) => {
                        return Err(Error::invalid("execute", format!("copy {f:?} -> {t:?}")))
                    }
                }
                let ns = t0.elapsed().as_nanos() as u64;
                match (from, to) {
                    (_, Tier::Device(d)) | (Tier::Device(d), _) => {
                        self.copy_ns[d].fetch_add(ns, Ordering::Relaxed);
                    }
                    _ => {
                        self.disk_ns.fetch_add(ns, Ordering::Relaxed);
                    }
                }
            }
            Step::Free { chunk: c, tier } => {
                let mut s = self.slots[c.0 as usize].lock().expect("slots");
                let b = match tier {
                    Tier::Host => s.host.take().map(|h| h.1),
                    Tier::Disk => s.disk.take().inspect(|&b| self.spill.remove(c, b)),
                    Tier::Device(d) => s
                        .dev
                        .iter()
                        .position(|x| x.0 == d)
                        .map(|k| s.dev.swap_remove(k).2),
                };
                drop(s);
                self.uncharge(tier, b.unwrap_or(0));
            }
        }
        Ok(())
    }
}

/// Budgets for a run of `backend` under `mem`.
///
/// # Errors
/// `InvalidArgument` when `mem.devices` asks for more devices than the backend has.
pub fn budgets(backend: &dyn Backend, mem: &MemoryConfig, disk: u64) -> Result<Budgets> {
    let devs = backend.devices();
    let n = mem.devices.unwrap_or(devs.len()).max(1);
    if n > devs.len().max(1) {
        return Err(Error::invalid(
            "schedule",
            format!(
                "{n} devices requested, backend {} has {}",
                backend.name(),
                devs.len()
            ),
        ));
    }
    Ok(Budgets {
        device: (0..n)
            .map(|d| {
                mem.device_bytes
                    .unwrap_or_else(|| devs.get(d).map_or(u64::MAX, |x| x.memory_bytes))
            })
            .collect(),
        host: mem.host_budget(),
        disk,
    })
}

/// Plans and runs `outputs` of `cg` on `backend` under the budgets of `mem`.
///
/// # Errors
/// `OutOfMemory` when the plan cannot fit a tier; backend and spill errors.
pub fn run_scheduled(
    cg: &ChunkGraph,
    backend: &dyn Backend,
    outputs: &[ChunkId],
    mem: &MemoryConfig,
) -> Result<(HashMap<ChunkId, ChunkData>, RunStats)> {
    let spill = SpillDir::create(mem.spill_dir.as_deref(), mem.disk_bytes)?;
    let t0 = Instant::now();
    let plan = schedule::plan(
        cg,
        outputs,
        budgets(backend, mem, spill.capacity())?,
        mem.order,
    )?;
    let plan_seconds = t0.elapsed().as_secs_f64();
    // Blocks the host pool keeps for reuse count against no budget: a quarter of the host
    // budget at most while the run lasts.
    let _pool = crate::hostpool::cap(usize::try_from(mem.host_budget() / 4).unwrap_or(usize::MAX));
    run_plan(cg, backend, &plan, &spill, mem, plan_seconds)
}

/// Runs a plan.
///
/// # Errors
/// The first backend or spill error.
pub fn run_plan(
    cg: &ChunkGraph,
    backend: &dyn Backend,
    plan: &Plan,
    spill: &SpillDir,
    cfg: &MemoryConfig,
    plan_seconds: f64,
) -> Result<(HashMap<ChunkId, ChunkData>, RunStats)> {
    let ndev = plan.devices();
    let tiers = ndev + 2;
    let mut lanes: HashMap<Lane, Vec<usize>> = HashMap::new();
    let mut free_pending = Vec::with_capacity(plan.steps.len());
    let mut free_waiters: Vec<Vec<u32>> = vec![vec![]; plan.steps.len()];
    for i in 0..plan.steps.len() {
        let is_free = matches!(plan.lane(i), Lane::Free(_));
        free_pending.push(AtomicUsize::new(if is_free {
            plan.deps(i).len()
        } else {
            0
        }));
        if is_free {
            for &d in plan.deps(i) {
                free_waiters[d as usize].push(i as u32);
            }
        } else {
            lanes.entry(plan.lane(i)).or_default().push(i);
        }
    }
    let lanes: Vec<Vec<usize>> = lanes.into_values().collect();
    let mut lane_of = vec![0u32; plan.steps.len()];
    for (l, steps) in lanes.iter().enumerate() {
        for &i in steps {
            lane_of[i] = l as u32;
        }
    }
    let mut waiters: Vec<Vec<u32>> = vec![vec![]; plan.steps.len()];
    for steps in &lanes {
        for &i in steps {
            for &d in plan.deps(i) {
                let w = &mut waiters[d as usize];
                if !w.contains(&lane_of[i]) {
                    w.push(lane_of[i]);
                }
            }
        }
    }
    let sched = Sched {
        cg,
        backend,
        plan,
        spill,
        cfg,
        slots: (0..cg.len())
            .map(|_| Mutex::new(Slots::default()))
            .collect(),
        done: (0..plan.steps.len())
            .map(|_| AtomicBool::new(false))
            .collect(),
        lane_of,
        waiters,
        lanes: (0..lanes.len())
            .map(|_| (Mutex::new(()), Condvar::new()))
            .collect(),
        sleeping: (0..lanes.len()).map(|_| AtomicBool::new(false)).collect(),
        free_pending,
        free_waiters,
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
        used: (0..tiers).map(|_| AtomicU64::new(0)).collect(),
        peak: (0..tiers).map(|_| AtomicU64::new(0)).collect(),
        moved: Default::default(),
        spills: AtomicUsize::new(0),
        unspills: AtomicUsize::new(0),
        recomputed: AtomicUsize::new(0),
        kernels: (0..ndev).map(|_| AtomicUsize::new(0)).collect(),
        kernel_ns: (0..ndev).map(|_| AtomicU64::new(0)).collect(),
        copy_ns: (0..ndev).map(|_| AtomicU64::new(0)).collect(),
        disk_ns: AtomicU64::new(0),
        tasks: AtomicUsize::new(0),
        per_op: Mutex::new(HashMap::new()),
    };
    let start = epoch();
    std::thread::scope(|s| {
        for steps in &lanes {
            let sched = &sched;
            s.spawn(move || {
                for &i in steps {
                    if !sched.wait(i) {
                        return;
                    }
                    if let Err(e) = check_cancel(start).and_then(|()| sched.step_and_finish(i)) {
                        sched.fail(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = lock(&sched.error).take() {
        return Err(e);
    }
    let mut out = HashMap::new();
    for &o in &plan.outputs {
        if out.contains_key(&o) {
            continue;
        }
        // Reading an output back may recompute it: a panic there is an error too.
        let d = catch_unwind(AssertUnwindSafe(|| sched.host_data(o))).unwrap_or_else(|p| {
            Err(Error::from_panic(
                format!("read of output chunk {}", o.0),
                p.as_ref(),
            ))
        })?;
        out.insert(o, Arc::try_unwrap(d).unwrap_or_else(|a| (*a).clone()));
    }
    let tier_list: Vec<Tier> = (0..ndev)
        .map(Tier::Device)
        .chain([Tier::Host, Tier::Disk])
        .collect();
    let b = &plan.budgets;
    let budget_of = |t: Tier| match t {
        Tier::Device(d) => b.device[d],
        Tier::Host => b.host,
        Tier::Disk => b.disk,
    };
    let secs = |v: &[AtomicU64]| -> Vec<f64> {
        v.iter()
            .map(|x| x.load(Ordering::Relaxed) as f64 * 1e-9)
            .collect()
    };
    let memory = MemoryStats {
        budgets: tier_list.iter().map(|&t| (t, budget_of(t))).collect(),
        peak: tier_list
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, sched.peak[i].load(Ordering::SeqCst)))
            .collect(),
        planned_peak: tier_list
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, plan.planned_peak[i]))
            .collect(),
        moved: LINKS
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, sched.moved[i].load(Ordering::Relaxed)))
            .collect(),
        spills: sched.spills.load(Ordering::Relaxed),
        unspills: sched.unspills.load(Ordering::Relaxed),
        recomputed: sched.recomputed.load(Ordering::Relaxed),
        kernels: sched
            .kernels
            .iter()
            .map(|k| k.load(Ordering::Relaxed))
            .collect(),
        kernel_seconds: secs(&sched.kernel_ns),
        copy_seconds: secs(&sched.copy_ns),
        disk_seconds: sched.disk_ns.load(Ordering::Relaxed) as f64 * 1e-9,
        plan_seconds,
        steps: plan.counts(),
    };
    let mut per_op: Vec<(String, usize)> = sched
        .per_op
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    per_op.sort();
    let peak_bytes = (0..ndev + 1)
        .map(|i| sched.peak[i].load(Ordering::SeqCst) as usize)
        .sum();
    Ok((
        out,
        RunStats {
            tasks: sched.tasks.into_inner(),
            peak_bytes,
            per_op,
            memory: Some(memory),
            stages: Stages::default(),
        },
    ))
}
