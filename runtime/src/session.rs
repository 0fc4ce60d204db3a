//! The Session: owns the graph, the backend and the options (eager mode, chunk budget).
//! Creation functions (zeros, arange, random, ...) live here; `execute` tiles and runs.

use crate::array::{Elem, HostArray};
use crate::backend::Backend;
use crate::chunk::{grid_indices, ChunkData, ChunkGraph, ChunkId, ChunkOp, Tiled};
use crate::dtype::{DType, Scalar, F64};
use crate::error::{Error, Result, Tier};
use crate::exec::{self, lock, RunStats, Stages};
use crate::fuse::fuse;
use crate::graph::{checked_shape, Graph, Node};
use crate::op::{Dist, Op};
use crate::remote::RemoteExecutor;
use crate::storage::MemoryConfig;
use crate::tensor::Tensor;
use crate::tile::Tiler;
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Session options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Execute every op as soon as it is recorded.
    pub eager: bool,
    /// Byte budget of one chunk when a tensor has no explicit chunk size.
    pub chunk_bytes: usize,
    /// Fuse elementwise chains (and their reduction tails) into kernels.
    pub fusion: bool,
    /// Memory budgets: when set (or when the backend has several devices) runs are planned
    /// by the Scheduler and streamed between device, host and disk; when `None` on a
    /// one-device backend, the in-memory executor runs independent chunks in parallel.
    pub memory: Option<MemoryConfig>,
    /// Host bytes a run without `memory` budgets may use; `None`: what the machine has
    /// available when the run starts ([`available_host_memory`]). A run whose in-memory plan
    /// needs more goes to the Scheduler with budgets that fit; one that cannot fit even
    /// there (a chunk or the result larger than this) is refused with `OutOfMemory`.
    pub host_limit: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            eager: false,
            // Under glibc's largest mmap threshold (32 MiB): freed chunk buffers are reused
            // from the heap instead of being unmapped and page-faulted in again.
            chunk_bytes: 16 << 20,
            fusion: true,
            memory: None,
            host_limit: None,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) graph: Mutex<Graph>,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) config: Mutex<Config>,
    pub(crate) last_stats: Mutex<RunStats>,
    /// Another executor every run goes to (Ray); `None`: this process runs them.
    pub(crate) remote: Mutex<Option<Arc<dyn RemoteExecutor>>>,
}

/// A handle to a session; cheap to clone.
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session(backend={})", self.inner.backend.name())
    }
}

impl Session {
    /// A session running on `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Session {
        let mut config = Config::default();
        if let Some(b) = backend.preferred_chunk_bytes() {
            config.chunk_bytes = b.max(1);
        }
        Session {
            inner: Arc::new(Inner {
                graph: Mutex::new(Graph::new()),
                backend,
                config: Mutex::new(config),
                last_stats: Mutex::new(RunStats::default()),
                remote: Mutex::new(None),
            }),
        }
    }
    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }
    /// Turns eager mode on or off.
    pub fn set_eager(&self, eager: bool) {
        lock(&self.inner.config).eager = eager;
    }
    /// Sets the byte budget of automatically sized chunks.
    ///
    /// # Errors
    /// `InvalidArgument` for 0 (refused, not replaced by 1); the budget is then unchanged.
    pub fn set_chunk_bytes(&self, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid(
                "set_chunk_bytes",
                "the chunk byte budget is 0; it must be at least 1 byte",
            ));
        }
        lock(&self.inner.config).chunk_bytes = bytes;
        Ok(())
    }
    /// Turns kernel fusion on or off (off: one task per elementwise op).
    pub fn set_fusion(&self, fusion: bool) {
        lock(&self.inner.config).fusion = fusion;
    }
    /// Sets memory budgets (and the spill directory, device count, order) for later runs;
    /// `None` returns to the in-memory executor.
    pub fn set_memory(&self, memory: Option<MemoryConfig>) {
        lock(&self.inner.config).memory = memory;
    }
    /// Sets the host memory runs without budgets may use (`None`: what is available when a
    /// run starts); see [`Config::host_limit`].
    pub fn set_host_limit(&self, bytes: Option<u64>) {
        lock(&self.inner.config).host_limit = bytes;
    }
    /// Sends every later run to another executor (`None`: back to this process). The graph
    /// is tiled and fused here as before; the chunk tasks run there ([`crate::remote`]).
    /// Memory budgets do not apply to such runs: the other executor manages its memory.
    pub fn set_remote(&self, remote: Option<Arc<dyn RemoteExecutor>>) {
        *lock(&self.inner.remote) = remote;
    }
    /// The executor runs go to, if not this process.
    pub fn remote(&self) -> Option<Arc<dyn RemoteExecutor>> {
        lock(&self.inner.remote).clone()
    }
    /// Current options.
    pub fn config(&self) -> Config {
        lock(&self.inner.config).clone()
    }
    /// Statistics of the last `execute`.
    pub fn last_stats(&self) -> RunStats {
        lock(&self.inner.last_stats).clone()
    }
    /// A copy of the graph recorded so far.
    pub fn graph(&self) -> Graph {
        lock(&self.inner.graph).clone()
    }
    /// Number of nodes the graph holds now.
    pub fn graph_len(&self) -> usize {
        lock(&self.inner.graph).live_len()
    }
    /// With a memory budget set, kept results (executed tensors, eager results) may hold at
    /// most half of the host budget in memory: past that the largest are spilled to disk (a
    /// private run folder of their own) and read back chunk by chunk when used. The rest of
    /// the host budget is what runs get (see `execute_many`).
    ///
    /// # Errors
    /// `Io` or `OutOfMemory { tier: Disk }` when a spill write fails (the result stays in
    /// memory).
    pub(crate) fn spill_kept(&self) -> Result<()> {
        let Some(mem) = self.config().memory else {
            return Ok(());
        };
        let allowed = mem.host_budget() / 2;
        loop {
            let next = {
                let g = lock(&self.inner.graph);
                if g.kept_bytes() <= allowed {
                    return Ok(());
                }
                g.largest_kept()
            };
            let Some((cid, data)) = next else {
                return Ok(());
            };
            let spilled = crate::external::SpilledArray::write(
                &data,
                mem.spill_dir.as_deref(),
                mem.disk_bytes,
            )?;
            lock(&self.inner.graph).spill_constant(cid, Arc::new(spilled));
        }
    }
    /// Bytes of kept results held in memory (what a memory budget is charged for).
    pub fn kept_bytes(&self) -> u64 {
        lock(&self.inner.graph).kept_bytes()
    }
    /// Bytes of data the graph holds: user data, eager results and kept results.
    pub fn held_bytes(&self) -> usize {
        lock(&self.inner.graph).constant_bytes()
    }

    /// Records a node and returns its tensor (executing it at once in eager mode).
    pub(crate) fn record(&self, node: Node) -> Result<Tensor> {
        checked_shape(&node.op.name(), &node.shape, node.dtype)?;
        let (shape, dtype) = (node.shape.clone(), node.dtype);
        let is_source = node.op.is_source();
        let id = lock(&self.inner.graph).add(node)?;
        let t = Tensor::from_node(self.clone(), id, shape, dtype);
        if self.config().eager && !is_source {
            // The node itself becomes its result: its inputs are released, so a loop of eager
            // ops holds only the tensors the program still has.
            t.materialize()?;
        }
        Ok(t)
    }

    /// Records a source; a shape too big to exist (see [`checked_shape`]) is an error.
    fn try_source(&self, op: Op, shape: &[usize], dtype: DType) -> Result<Tensor> {
        self.record(Node {
            op,
            inputs: vec![],
            shape: shape.to_vec(),
            dtype,
            chunk: None,
        })
    }

    /// A source for the infallible creation functions: an error travels in the tensor and is
    /// returned by its first use (`error()`, any op, `execute`).
    fn source(&self, op: Op, shape: &[usize], dtype: DType) -> Tensor {
        self.try_source(op, shape, dtype)
            .unwrap_or_else(|e| Tensor::failed(self, e))
    }

    /// An array of zeros.
    pub fn zeros(&self, shape: &[usize], dtype: DType) -> Tensor {
        self.full(shape, Scalar::Int(0), dtype)
    }
    /// An array of ones.
    pub fn ones(&self, shape: &[usize], dtype: DType) -> Tensor {
        self.full(shape, Scalar::Int(1), dtype)
    }
    /// An array filled with `value`. A value `dtype` cannot hold (see [`Scalar::check_fill`]:
    /// `ScalarOverflow` for an int beyond an integer dtype, `InvalidArgument` for a NaN,
    /// infinite or out-of-range float into one) travels in the tensor as its error.
    pub fn full(&self, shape: &[usize], value: impl Into<Scalar>, dtype: DType) -> Tensor {
        let value = value.into();
        if let Err(e) = value.check_fill("full", dtype) {
            return Tensor::failed(self, e);
        }
        self.source(Op::Full { value }, shape, dtype)
    }
    /// numpy's `arange(start, stop, step)`: `ceil((stop - start) / step)` elements, element
    /// `i >= 2` computed as numpy does, `start + i * ((start + step) - start)` in `dtype`.
    ///
    /// # Errors
    /// `InvalidArgument` for a NaN argument, an infinite start or stop, a zero step, a length
    /// that overflows, a bool result longer than 2, or an integer start (or `start + step`)
    /// outside an integer dtype.
    pub fn arange(&self, start: f64, stop: f64, step: f64, dtype: DType) -> Result<Tensor> {
        let bad = |msg: String| Err(Error::invalid("arange", msg));
        if !start.is_finite() || !stop.is_finite() || step.is_nan() {
            return bad(format!(
                "cannot compute length: start and stop must be finite and step a number, got \
                 ({start}, {stop}, {step})"
            ));
        }
        if step == 0.0 {
            return bad("step must not be zero".into());
        }
        // numpy's `_calc_length`: a quotient that underflows to zero (an infinite step, or a
        // tiny span over a huge step) still holds `start` when it lies in the step's direction.
        let span = stop - start;
        let q = span / step;
        // `as` saturates: a length past usize is usize::MAX, which the shape check refuses.
        let n = if span == 0.0 {
            0
        } else if q == 0.0 {
            usize::from(q.is_sign_positive())
        } else if q.is_finite() {
            q.ceil().max(0.0) as usize
        } else {
            return bad(format!(
                "cannot compute length of ({stop} - {start}) / {step}: it overflows"
            ));
        };
        if dtype == DType::Bool && n > 2 {
            return bad("a bool result may have at most length 2 (numpy's rule)".into());
        }
        if dtype.is_int() {
            // numpy stores `start` and `start + step` (truncated) and fills from them.
            let (lo, hi) = if dtype == DType::I32 {
                (i32::MIN as f64, i32::MAX as f64 + 1.0)
            } else {
                (i64::MIN as f64, -(i64::MIN as f64))
            };
            for (k, v) in [(1, start), (2, start + step)] {
                let t = v.trunc();
                if n >= k && !(lo <= t && t < hi) {
                    return bad(format!("integer {t} is out of bounds for {dtype}"));
                }
            }
        }
        self.try_source(
            Op::Arange {
                start: F64(start),
                step: F64(step),
            },
            &[n],
            dtype,
        )
    }
    /// numpy's `linspace(start, stop, num, endpoint)`.
    pub fn linspace(
        &self,
        start: f64,
        stop: f64,
        num: usize,
        endpoint: bool,
        dtype: DType,
    ) -> Tensor {
        self.source(
            Op::Linspace {
                start: F64(start),
                stop: F64(stop),
                endpoint,
            },
            &[num],
            dtype,
        )
    }
    /// numpy's `eye(n, m, k)`.
    pub fn eye(&self, n: usize, m: Option<usize>, k: i64, dtype: DType) -> Tensor {
        self.source(Op::Eye { k }, &[n, m.unwrap_or(n)], dtype)
    }
    /// A tensor holding a copy of `data`.
    pub fn from_array<T: Elem>(&self, data: ArrayD<T>) -> Tensor {
        self.from_host(T::wrap(data))
    }
    /// A tensor holding `data` (any dtype); a graph already at its node bound is an error
    /// carried in the tensor.
    pub fn from_host(&self, data: HostArray) -> Tensor {
        let (shape, dtype) = (data.shape().to_vec(), data.dtype());
        match lock(&self.inner.graph).add_constant(data, None) {
            Ok(id) => Tensor::from_node(self.clone(), id, shape, dtype),
            Err(e) => Tensor::failed(self, e),
        }
    }
    /// A tensor over data held outside Tessera (a buffer read in place, a file), read chunk by
    /// chunk when a graph needs it; the session keeps `data` while a tensor refers to it.
    pub fn from_external(&self, data: Arc<dyn crate::external::ExternalArray>) -> Tensor {
        let (shape, dtype) = (data.shape().to_vec(), data.dtype());
        match lock(&self.inner.graph).add_external(data, None) {
            Ok(id) => Tensor::from_node(self.clone(), id, shape, dtype),
            Err(e) => Tensor::failed(self, e),
        }
    }
    /// A tensor of `shape` from a flat row-major vector.
    ///
    /// # Errors
    /// `BadReshape` when the lengths disagree.
    pub fn from_vec<T: Elem>(&self, data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let n = data.len();
        let a = ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| Error::BadReshape {
            from: vec![n],
            from_size: n,
            to: shape.iter().map(|&d| d as isize).collect(),
        })?;
        Ok(self.from_array(a))
    }
    /// A random generator with `seed`. Values depend only on (seed, draw number, element
    /// index): not on chunking, thread count or backend.
    pub fn random(&self, seed: u64) -> Generator {
        Generator {
            sess: self.clone(),
            seed,
            draws: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Tiles (and, when fusion is on, fuses) the graph behind `tensors` into a chunk graph
    /// without running it; the returned tilings name chunks of that graph.
    ///
    /// # Errors
    /// Deferred graph-building errors of the tensors; invalid chunk hints.
    pub fn plan(&self, tensors: &[&Tensor]) -> Result<(ChunkGraph, Vec<Tiled>)> {
        self.plan_timed(tensors, &mut Stages::default())
    }

    /// [`Session::plan`], recording the Tiler's and the Fuser's time in `stages`.
    fn plan_timed(
        &self,
        tensors: &[&Tensor],
        stages: &mut Stages,
    ) -> Result<(ChunkGraph, Vec<Tiled>)> {
        let t0 = Instant::now();
        let mut roots = Vec::new();
        for t in tensors {
            roots.push(t.node_id()?);
        }
        let config = self.config();
        let (cg, mut tiled) = {
            let graph = lock(&self.inner.graph);
            let mut tiler = Tiler::new(&graph, config.chunk_bytes).with_fusion(config.fusion);
            let tiled = tiler.tile(&roots)?;
            (tiler.cg, tiled)
        };
        stages.chunks = cg.len();
        stages.tile = t0.elapsed().as_secs_f64();
        if !config.fusion {
            return Ok((cg, tiled));
        }
        let outputs: Vec<_> = tiled
            .iter()
            .flat_map(|t| t.chunks.iter().copied())
            .collect();
        let t1 = Instant::now();
        if !crate::fuse::has_fusible(&cg) {
            stages.fuse = t1.elapsed().as_secs_f64();
            return Ok((cg, tiled));
        }
        let (cg, new) = fuse(&cg, &outputs);
        stages.fuse = t1.elapsed().as_secs_f64();
        let mut it = new.into_iter();
        for t in &mut tiled {
            for c in &mut t.chunks {
                *c = it.next().expect("one new id per output");
            }
        }
        Ok((cg, tiled))
    }

    /// [`Tensor::materialize`] for several tensors in one run: work they share is done once,
    /// and each keeps its result.
    ///
    /// # Errors
    /// As [`Session::execute_many`].
    pub fn materialize_many(&self, tensors: &[&Tensor]) -> Result<Vec<Arc<HostArray>>> {
        let values = self.execute_many(tensors)?;
        let mut out = Vec::with_capacity(values.len());
        for (t, v) in tensors.iter().zip(values) {
            let v = Arc::new(v);
            lock(&self.inner.graph).keep(t.node_id()?, v.clone())?;
            out.push(v);
        }
        self.spill_kept()?;
        Ok(out)
    }

    /// Executes several tensors in one run (shared subexpressions computed once).
    ///
    /// # Errors
    /// Deferred graph-building errors of the tensors, tiling and backend errors.
    pub fn execute_many(&self, tensors: &[&Tensor]) -> Result<Vec<HostArray>> {
        // The executors turn a panicking kernel into an error; this catches the rest (tiling,
        // fusion, assembly), so a bug fails one call instead of the process. The session's
        // locks tolerate poisoning and the graph is only appended to, so it stays usable.
        catch_unwind(AssertUnwindSafe(|| self.execute_unguarded(tensors)))
            .unwrap_or_else(|p| Err(Error::from_panic("execute", p.as_ref())))
    }

    fn execute_unguarded(&self, tensors: &[&Tensor]) -> Result<Vec<HostArray>> {
        let mut stages = Stages::default();
        let (cg, tiled) = self.plan_timed(tensors, &mut stages)?;
        let outputs: Vec<_> = tiled
            .iter()
            .flat_map(|t| t.chunks.iter().copied())
            .collect();
        // Multi-chunk results are assembled into a new array while their chunks live.
        let assembled = tiled
            .iter()
            .zip(tensors)
            .filter(|(t, _)| t.chunks.len() > 1)
            .map(|(_, x)| {
                (x.dtype().size() as u64)
                    .saturating_mul(x.shape().iter().map(|&d| d as u64).product())
            })
            .fold(0u64, u64::saturating_add);
        let (mut values, mut stats) = self.run_chunks(&cg, &outputs, assembled, &mut stages)?;
        let t_assemble = Instant::now();
        let mut results = Vec::new();
        for (t, x) in tiled.iter().zip(tensors) {
            let missing = || Error::invalid("execute", "missing output chunk");
            if let [c] = t.chunks[..] {
                // One chunk: it is the result (moved unless another output shares it).
                let data = match tiled
                    .iter()
                    .flat_map(|u| &u.chunks)
                    .filter(|&&d| d == c)
                    .count()
                {
                    1 => values.remove(&c).ok_or_else(missing)?.swap_remove(0),
                    _ => values.get(&c).ok_or_else(missing)?[0].clone(),
                };
                results.push(data.into_reshaped(x.shape()));
                continue;
            }
            let mut out = HostArray::zeros(x.dtype(), x.shape());
            let starts = t.starts();
            for idx in grid_indices(&t.counts()) {
                let data = &values.get(&t.at(&idx)).ok_or_else(missing)?[0];
                let off: Vec<usize> = t.region_in(&starts, &idx).iter().map(|r| r.0).collect();
                out.assign_region(&off, data);
            }
            results.push(out);
        }
        stages.assemble = t_assemble.elapsed().as_secs_f64();
        stats.stages = stages;
        *lock(&self.inner.last_stats) = stats;
        Ok(results)
    }

    /// Runs `outputs` of `cg` in memory, or through the Scheduler when the session has
    /// budgets or the run would not fit (`assembled`: bytes the caller allocates beside the
    /// outputs while they live).
    fn run_chunks(
        &self,
        cg: &ChunkGraph,
        outputs: &[ChunkId],
        assembled: u64,
        stages: &mut Stages,
    ) -> Result<(HashMap<ChunkId, ChunkData>, RunStats)> {
        if let Some(remote) = self.remote() {
            let t_run = Instant::now();
            let plan = Arc::new(crate::remote::RemotePlan::new(
                cg,
                outputs,
                remote.group_bytes(),
            )?);
            let values = remote.run(plan.clone())?;
            let out = plan.collect(values)?;
            stages.run = t_run.elapsed().as_secs_f64();
            let stats = RunStats {
                tasks: plan.groups().len(),
                per_op: plan.per_op(),
                ..RunStats::default()
            };
            return Ok((out, stats));
        }
        let t_size = Instant::now();
        let backend = self.inner.backend.as_ref();
        if self.config().memory.is_some_and(|m| m.devices == Some(0)) {
            // Refused, not replaced by one device.
            return Err(Error::invalid(
                "execute",
                "MemoryConfig::devices is 0; a run needs at least 1 device",
            ));
        }
        let config = self.config();
        let memory = match config.memory {
            Some(mut m) => {
                // Kept results in memory are charged to the host budget: runs get the rest.
                let kept = lock(&self.inner.graph).kept_bytes();
                if kept > 0 {
                    m.host_bytes = Some(m.host_budget().saturating_sub(kept));
                }
                Some(m)
            }
            None => self.default_memory(cg, outputs, assembled, config.host_limit)?,
        };
        stages.size = t_size.elapsed().as_secs_f64();
        let t_run = Instant::now();
        let out = match &memory {
            Some(mem) => exec::run_scheduled(cg, backend, outputs, mem)?,
            None => exec::run(cg, backend, outputs)?,
        };
        stages.run = t_run.elapsed().as_secs_f64();
        Ok(out)
    }

    /// Executes `t` and hands each chunk of its value to `sink` as the chunk finishes (a file
    /// written chunk by chunk): the value is never whole in memory, and each chunk is freed
    /// once written. The run statistics are those of `last_stats`.
    ///
    /// # Errors
    /// Deferred graph errors, tiling, backend and sink errors (the first one stops the run).
    pub fn write_to(&self, t: &Tensor, sink: Arc<dyn crate::external::ChunkSink>) -> Result<()> {
        catch_unwind(AssertUnwindSafe(|| {
            let mut stages = Stages::default();
            let (mut cg, tiled) = self.plan_timed(&[t], &mut stages)?;
            let tiled = &tiled[0];
            let starts = tiled.starts();
            let mut outputs = Vec::with_capacity(tiled.chunks.len());
            for idx in grid_indices(&tiled.counts()) {
                let region = tiled.region_in(&starts, &idx);
                let c = tiled.at(&idx);
                outputs.push(cg.push(crate::chunk::ChunkNode {
                    op: ChunkOp::Write {
                        sink: sink.clone(),
                        region,
                    },
                    inputs: std::iter::once(c).collect(),
                    shape: std::iter::once(0).collect(),
                    dtype: t.dtype(),
                }));
            }
            let (_, mut stats) = self.run_chunks(&cg, &outputs, 0, &mut stages)?;
            stats.stages = stages;
            *lock(&self.inner.last_stats) = stats;
            Ok(())
        }))
        .unwrap_or_else(|p| Err(Error::from_panic("write", p.as_ref())))
    }
}

impl Session {
    /// How a run without user budgets runs, decided before anything is allocated: `None` (the
    /// in-memory executor) when its plan fits the host memory; else the Scheduler, with
    /// budgets that leave room for the results; `OutOfMemory` when even that cannot fit (a
    /// kernel's working set, or the results, larger than the host memory).
    fn default_memory(
        &self,
        cg: &ChunkGraph,
        outputs: &[ChunkId],
        assembled: u64,
        limit: Option<u64>,
    ) -> Result<Option<MemoryConfig>> {
        let backend = self.inner.backend.as_ref();
        let scheduled = backend.devices().len() > 1 || backend.device_resident();
        let available = limit.unwrap_or_else(available_host_memory);
        let need = exec::in_memory_need(cg, outputs, available.saturating_sub(assembled));
        // Results come back to the host whatever runs them; so does each kernel's working set
        // on a backend without memory of its own.
        let results = need.outputs.saturating_add(assembled);
        let floor = if backend.device_resident() {
            results
        } else {
            results.max(need.largest_kernel)
        };
        if floor > available {
            return Err(Error::OutOfMemory {
                tier: Tier::Host,
                requested: floor,
                available,
            });
        }
        if scheduled {
            return Ok(Some(MemoryConfig::default()));
        }
        if need.peak.saturating_add(assembled) <= available {
            return Ok(None);
        }
        // Device chunks of the CPU backend are host memory too: both tiers share what the
        // results leave.
        let work = available - results;
        Ok(Some(MemoryConfig {
            device_bytes: Some(work / 2),
            host_bytes: Some(work - work / 2),
            ..MemoryConfig::default()
        }))
    }
}

/// Host bytes this process can still allocate: `MemAvailable` of `/proc/meminfo`, lowered to
/// the room left under the cgroup (v2) memory limit when one is set; half of
/// [`storage::host_memory`](crate::storage::host_memory) where neither can be read.
///
/// Runs in quick succession share one reading for up to 50 ms (reading `/proc` cost a small
/// run a fifth of its time); a run that needs much memory reads afresh when it starts after
/// that.
pub fn available_host_memory() -> u64 {
    static LAST: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    let mut last = lock(&LAST);
    if let Some((t, v)) = *last {
        if t.elapsed() < std::time::Duration::from_millis(50) {
            return v;
        }
    }
    let v = read_available_host_memory();
    *last = Some((Instant::now(), v));
    v
}

fn read_available_host_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    });
    let cgroup = || -> Option<u64> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let dir = std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        let max = read("memory.max")?.trim().parse::<u64>().ok()?;
        let current = read("memory.current")?.trim().parse::<u64>().ok()?;
        Some(max.saturating_sub(current))
    };
    match (meminfo, cgroup()) {
        (Some(m), Some(c)) => m.min(c),
        (Some(m), None) => m,
        (None, Some(c)) => c,
        (None, None) => crate::storage::host_memory() / 2,
    }
}

/// Draws random tensors; each call is a new stream, so consecutive draws differ.
#[derive(Clone, Debug)]
pub struct Generator {
    sess: Session,
    seed: u64,
    draws: Arc<AtomicU64>,
}

impl Generator {
    fn draw(&self, dist: Dist, shape: &[usize], dtype: DType) -> Tensor {
        let stream = self.draws.fetch_add(1, Ordering::Relaxed);
        self.sess.source(
            Op::Random {
                seed: self.seed,
                stream,
                dist,
            },
            shape,
            dtype,
        )
    }
    /// A draw that only makes sense in floating point: numpy's `random`, `standard_normal`,
    /// `uniform` and `normal` make floats only, so an integer or bool dtype is refused rather
    /// than truncating every value.
    fn float_draw(&self, op: &str, dist: Dist, shape: &[usize], dtype: DType) -> Tensor {
        if !dtype.is_float() {
            return Tensor::failed(&self.sess, Error::dtype(op, &[dtype]));
        }
        self.draw(dist, shape, dtype)
    }
    /// Uniform in [0, 1) (numpy `random`/`rand`).
    ///
    /// # Errors
    /// Carried by the tensor: `UnsupportedDType` for a non-float dtype.
    pub fn rand(&self, shape: &[usize], dtype: DType) -> Tensor {
        let dist = Dist::Uniform {
            low: F64(0.0),
            high: F64(1.0),
        };
        self.float_draw("rand", dist, shape, dtype)
    }
    /// Standard normal (numpy `standard_normal`/`randn`).
    ///
    /// # Errors
    /// Carried by the tensor: `UnsupportedDType` for a non-float dtype.
    pub fn randn(&self, shape: &[usize], dtype: DType) -> Tensor {
        let dist = Dist::Normal {
            mean: F64(0.0),
            std: F64(1.0),
        };
        self.float_draw("randn", dist, shape, dtype)
    }
    /// Uniform in [low, high).
    ///
    /// # Errors
    /// Carried by the tensor: `UnsupportedDType` for a non-float dtype, `InvalidArgument` when
    /// `high - low` is not finite (numpy: OverflowError).
    pub fn uniform(&self, low: f64, high: f64, shape: &[usize], dtype: DType) -> Tensor {
        if !(high - low).is_finite() {
            let msg = format!("range high - low of [{low}, {high}) exceeds valid bounds");
            return Tensor::failed(&self.sess, Error::invalid("uniform", msg));
        }
        let dist = Dist::Uniform {
            low: F64(low),
            high: F64(high),
        };
        self.float_draw("uniform", dist, shape, dtype)
    }
    /// Normal with `mean` and standard deviation `std`.
    ///
    /// # Errors
    /// Carried by the tensor: `UnsupportedDType` for a non-float dtype, `InvalidArgument` for
    /// a negative `std` (numpy: "scale < 0"; a NaN `std` gives NaN values, as in numpy).
    pub fn normal(&self, mean: f64, std: f64, shape: &[usize], dtype: DType) -> Tensor {
        if std < 0.0 {
            let msg = format!("scale < 0 (std = {std})");
            return Tensor::failed(&self.sess, Error::invalid("normal", msg));
        }
        let dist = Dist::Normal {
            mean: F64(mean),
            std: F64(std),
        };
        self.float_draw("normal", dist, shape, dtype)
    }
    /// Integers uniform in [low, high).
    ///
    /// # Errors
    /// `InvalidArgument` for a non-integer dtype, `low` or `high` outside the dtype's range
    /// (`high` may be one past its maximum), or `low >= high`.
    pub fn randint(&self, low: i64, high: i64, shape: &[usize], dtype: DType) -> Result<Tensor> {
        if !dtype.is_int() {
            return Err(Error::invalid(
                "randint",
                format!("need an integer dtype, got {dtype}"),
            ));
        }
        let bad = |msg: String| Err(Error::invalid("randint", msg));
        if !dtype.holds_int(low) {
            return bad(format!("low {low} is out of bounds for {dtype}"));
        }
        // `high` is exclusive: one past the dtype's maximum is still in bounds.
        if high > i64::MIN && !dtype.holds_int(high - 1) {
            return bad(format!("high {high} is out of bounds for {dtype}"));
        }
        if low >= high {
            return bad(format!("low >= high ({low} >= {high})"));
        }
        Ok(self.draw(Dist::RandInt { low, high }, shape, dtype))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::NullBackend;

    fn poison<T: Send>(m: &Mutex<T>) {
        std::thread::scope(|s| {
            let _ = s
                .spawn(|| {
                    let _g = m.lock();
                    panic!("poisoning on purpose");
                })
                .join();
        });
        assert!(m.is_poisoned());
    }

    /// A panic while a session lock was held (a bug in tiling, say) leaves the session usable:
    /// every later call works instead of panicking on the poisoned lock.
    #[test]
    fn poisoned_locks_leave_the_session_usable() {
        let s = Session::new(Arc::new(NullBackend));
        let x = s.full(&[8], 1.0, DType::F32);
        poison(&s.inner.graph);
        poison(&s.inner.config);
        poison(&s.inner.last_stats);
        s.set_fusion(false);
        s.set_host_limit(Some(1 << 30));
        assert!(!s.config().fusion);
        let y = x.exp().unwrap();
        assert_eq!(s.graph().len(), 2);
        // NullBackend computes nothing: a typed error, not a panic.
        let r = y.execute();
        assert!(matches!(r, Err(Error::Unsupported { .. })), "{r:?}");
        assert_eq!(s.last_stats(), RunStats::default());
    }

    /// The in-memory need of a chain: every chunk, the outputs, the largest kernel; and the
    /// depth-first peak (computed when over the limit) frees each chunk after its last use.
    #[test]
    fn in_memory_need_counts_chunks_outputs_and_kernels() {
        let s = Session::new(Arc::new(NullBackend));
        s.set_fusion(false);
        let x = s
            .random(1)
            .rand(&[1000], DType::F64)
            .with_chunks(&[100])
            .unwrap();
        let y = (&x + 1.0).exp().unwrap();
        let (cg, tiled) = s.plan(&[&y]).unwrap();
        let outputs = tiled[0].chunks.clone();
        let need = exec::in_memory_need(&cg, &outputs, u64::MAX);
        // rand, +1 (with its broadcast scalar chunks) and exp: at least 3 x 8000 bytes.
        assert!(need.total >= 3 * 8000, "{need:?}");
        assert_eq!(need.outputs, 8000);
        assert_eq!(need.peak, need.total);
        assert!(
            need.largest_kernel >= 1600 && need.largest_kernel < 2500,
            "{need:?}"
        );
        let tight = exec::in_memory_need(&cg, &outputs, 0);
        // The outputs stay; the rand and +1 chunks die chunk by chunk.
        let threads = rayon::current_num_threads() as u64;
        assert!(tight.peak >= 8000, "{tight:?}");
        assert!(tight.peak <= 8000 + 400 + threads * 800, "{tight:?}");
        assert!(
            tight.peak < tight.total || threads * 800 >= 16000,
            "{tight:?}"
        );
    }
}
