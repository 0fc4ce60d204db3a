//! The Session: owns the graph, the backend and the options (eager mode, chunk budget).
//! Creation functions (zeros, arange, random, ...) live here; `execute` tiles and runs.

use crate::array::{Elem, HostArray};
use crate::backend::Backend;
use crate::chunk::{grid_indices, ChunkGraph, Tiled};
use crate::dtype::{DType, Scalar, F64};
use crate::error::{Error, Result};
use crate::exec::{self, RunStats};
use crate::fuse::fuse;
use crate::graph::{Graph, Node};
use crate::op::{Dist, Op};
use crate::storage::MemoryConfig;
use crate::tensor::Tensor;
use crate::tile::Tiler;
use ndarray::{ArrayD, IxDyn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
        }
    }
}

pub(crate) struct Inner {
    pub(crate) graph: Mutex<Graph>,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) config: Mutex<Config>,
    pub(crate) last_stats: Mutex<RunStats>,
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
            }),
        }
    }
    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }
    /// Turns eager mode on or off.
    pub fn set_eager(&self, eager: bool) {
        self.inner.config.lock().expect("config").eager = eager;
    }
    /// Sets the byte budget of automatically sized chunks.
    pub fn set_chunk_bytes(&self, bytes: usize) {
        self.inner.config.lock().expect("config").chunk_bytes = bytes.max(1);
    }
    /// Turns kernel fusion on or off (off: one task per elementwise op).
    pub fn set_fusion(&self, fusion: bool) {
        self.inner.config.lock().expect("config").fusion = fusion;
    }
    /// Sets memory budgets (and the spill directory, device count, order) for later runs;
    /// `None` returns to the in-memory executor.
    pub fn set_memory(&self, memory: Option<MemoryConfig>) {
        self.inner.config.lock().expect("config").memory = memory;
    }
    /// Current options.
    pub fn config(&self) -> Config {
        self.inner.config.lock().expect("config").clone()
    }
    /// Statistics of the last `execute`.
    pub fn last_stats(&self) -> RunStats {
        self.inner.last_stats.lock().expect("stats").clone()
    }
    /// A copy of the graph recorded so far.
    pub fn graph(&self) -> Graph {
        self.inner.graph.lock().expect("graph").clone()
    }

    /// Records a node and returns its tensor (executing it at once in eager mode).
    pub(crate) fn record(&self, node: Node) -> Result<Tensor> {
        let (shape, dtype, chunk) = (node.shape.clone(), node.dtype, node.chunk.clone());
        let is_source = node.op.is_source();
        let id = self.inner.graph.lock().expect("graph").add(node);
        let t = Tensor::from_node(self.clone(), id, shape, dtype);
        if self.config().eager && !is_source {
            let data = self.execute_many(&[&t])?.pop().expect("one result");
            let id = self
                .inner
                .graph
                .lock()
                .expect("graph")
                .add_constant(data, chunk);
            return Ok(Tensor::from_node(
                self.clone(),
                id,
                t.shape().to_vec(),
                dtype,
            ));
        }
        Ok(t)
    }

    fn source(&self, op: Op, shape: &[usize], dtype: DType) -> Tensor {
        self.record(Node {
            op,
            inputs: vec![],
            shape: shape.to_vec(),
            dtype,
            chunk: None,
        })
        .expect("recording a source cannot fail")
    }

    /// An array of zeros.
    pub fn zeros(&self, shape: &[usize], dtype: DType) -> Tensor {
        self.full(shape, Scalar::Int(0), dtype)
    }
    /// An array of ones.
    pub fn ones(&self, shape: &[usize], dtype: DType) -> Tensor {
        self.full(shape, Scalar::Int(1), dtype)
    }
    /// An array filled with `value`.
    pub fn full(&self, shape: &[usize], value: impl Into<Scalar>, dtype: DType) -> Tensor {
        self.source(
            Op::Full {
                value: value.into(),
            },
            shape,
            dtype,
        )
    }
    /// numpy's `arange(start, stop, step)`.
    ///
    /// # Errors
    /// A zero step.
    pub fn arange(&self, start: f64, stop: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() {
            return Err(Error::invalid(
                "arange",
                format!("step must be finite and non-zero, got {step}"),
            ));
        }
        let n = ((stop - start) / step).ceil().max(0.0) as usize;
        Ok(self.source(
            Op::Arange {
                start: F64(start),
                step: F64(step),
            },
            &[n],
            dtype,
        ))
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
    /// A tensor holding `data` (any dtype).
    pub fn from_host(&self, data: HostArray) -> Tensor {
        let (shape, dtype) = (data.shape().to_vec(), data.dtype());
        let id = self
            .inner
            .graph
            .lock()
            .expect("graph")
            .add_constant(data, None);
        Tensor::from_node(self.clone(), id, shape, dtype)
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
        let mut roots = Vec::new();
        for t in tensors {
            roots.push(t.node_id()?);
        }
        let config = self.config();
        let (cg, mut tiled) = {
            let graph = self.inner.graph.lock().expect("graph");
            let mut tiler = Tiler::new(&graph, config.chunk_bytes);
            let tiled = tiler.tile(&roots)?;
            (tiler.cg, tiled)
        };
        if !config.fusion {
            return Ok((cg, tiled));
        }
        let outputs: Vec<_> = tiled
            .iter()
            .flat_map(|t| t.chunks.iter().copied())
            .collect();
        let (cg, new) = fuse(&cg, &outputs);
        let mut it = new.into_iter();
        for t in &mut tiled {
            for c in &mut t.chunks {
                *c = it.next().expect("one new id per output");
            }
        }
        Ok((cg, tiled))
    }

    /// Executes several tensors in one run (shared subexpressions computed once).
    ///
    /// # Errors
    /// Deferred graph-building errors of the tensors, tiling and backend errors.
    pub fn execute_many(&self, tensors: &[&Tensor]) -> Result<Vec<HostArray>> {
        let (cg, tiled) = self.plan(tensors)?;
        let outputs: Vec<_> = tiled
            .iter()
            .flat_map(|t| t.chunks.iter().copied())
            .collect();
        let backend = self.inner.backend.as_ref();
        let memory = self.config().memory.or_else(|| {
            (backend.devices().len() > 1 || backend.device_resident()).then(MemoryConfig::default)
        });
        let (mut values, stats) = match &memory {
            Some(mem) => exec::run_scheduled(&cg, backend, &outputs, mem)?,
            None => exec::run(&cg, backend, &outputs)?,
        };
        *self.inner.last_stats.lock().expect("stats") = stats;
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
        Ok(results)
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
    /// Uniform in [0, 1) (numpy `random`/`rand`).
    pub fn rand(&self, shape: &[usize], dtype: DType) -> Tensor {
        self.uniform(0.0, 1.0, shape, dtype)
    }
    /// Standard normal (numpy `standard_normal`/`randn`).
    pub fn randn(&self, shape: &[usize], dtype: DType) -> Tensor {
        self.normal(0.0, 1.0, shape, dtype)
    }
    /// Uniform in [low, high).
    pub fn uniform(&self, low: f64, high: f64, shape: &[usize], dtype: DType) -> Tensor {
        self.draw(
            Dist::Uniform {
                low: F64(low),
                high: F64(high),
            },
            shape,
            dtype,
        )
    }
    /// Normal with `mean` and standard deviation `std`.
    pub fn normal(&self, mean: f64, std: f64, shape: &[usize], dtype: DType) -> Tensor {
        self.draw(
            Dist::Normal {
                mean: F64(mean),
                std: F64(std),
            },
            shape,
            dtype,
        )
    }
    /// Integers uniform in [low, high).
    ///
    /// # Errors
    /// `low >= high`.
    pub fn randint(&self, low: i64, high: i64, shape: &[usize], dtype: DType) -> Result<Tensor> {
        if low >= high || dtype.is_float() || dtype == DType::Bool {
            return Err(Error::invalid(
                "randint",
                format!("need low < high and an integer dtype, got [{low}, {high}) {dtype}"),
            ));
        }
        Ok(self.draw(Dist::RandInt { low, high }, shape, dtype))
    }
}
