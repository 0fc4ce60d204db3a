//! tessera-wgpu: the wgpu backend (Vulkan, Metal, DX12). Input: chunk tasks with host-resident
//! inputs (the `Backend` trait). Output: their results, computed on a GPU adapter and read back.
//!
//! - Adapters: every adapter of the enabled wgpu backends is listed ([`WgpuBackend::devices`]);
//!   `WGPU_BACKEND` (e.g. `vulkan`) restricts the backends, [`WgpuOptions::adapter`] (or
//!   `TESSERA_WGPU_ADAPTER`, an index or a name substring) picks the adapter that runs chunks;
//!   by default the best kind wins (discrete > integrated > virtual > other > CPU/software).
//!   A device is opened on that adapter with its full limits and `SHADER_F64` where offered.
//! - Kernels: fused chunks render their `KernelIr` with `tessera_kernels::WgslRenderer`; lone
//!   elementwise ops, casts, where, fills, random draws and reduction/arg partials become a
//!   one-op `KernelIr` and take the same path. Library kernels (`shaders/`): a strided copy
//!   (transpose, broadcast, strided slices, assemble/concatenate; raw u32 words, so every dtype
//!   including int64 moves bit-exactly), a reshape gather, a tiled GEMM with workgroup memory
//!   (f32, f64 with SHADER_F64, i32, bool), a stable bitonic lane sort of (key, position) pairs
//!   in workgroup memory for float32/int32 `sort`/`argsort` lanes (`sort.rs`; the host gathers
//!   the values by the positions). Pipelines are cached by `KernelKey` / kernel name.
//! - Host steps: the reduction combine/final steps (a few values per output element), the
//!   index-function sources (arange, linspace, eye; computed in f64, which a GPU may lack, and
//!   returned as host arrays anyway), user constants, int64 fills and chunk-local reshapes (a
//!   metadata change) run on the host through `tessera-cpu`, the reference implementation.
//! - Limits: a buffer larger than `max_storage_buffer_binding_size` / `max_buffer_size` is an
//!   `Error::OutOfMemory` naming the limit (reported in `devices()` details, so a caller can
//!   choose smaller chunks); dispatches use a 2-D grid past 65,535 workgroups.
//! - dtypes: f32, i32, bool everywhere; f64 only with `SHADER_F64` and not in transcendental
//!   functions; int64 *values* are `Error::Unsupported` (WGSL has no 64-bit integers), while
//!   int64 data movement (u32-pair copies), int64 results of arg reductions and integer sum/prod
//!   partials, and casts from int64 inputs work. See the README's dtype matrix.

mod data;
mod gpu;
mod ops;
mod sort;

/// The wgpu crate this backend is built on (for [`WgpuOptions::backends`]).
pub use wgpu;

use gpu::Gpu;
use tessera_cpu::CpuBackend;
use tessera_kernels::lower;
use tessera_runtime::chunk::{ChunkData, ChunkNode, ChunkOp};
use tessera_runtime::ir::{Inst, InstKind, KernelParams, ReduceKind};
use tessera_runtime::{Backend, DType, DeviceInfo, Error, HostArray, Result};

/// How to choose adapters.
#[derive(Debug, Clone, Default)]
pub struct WgpuOptions {
    /// wgpu backends to enumerate; `None`: `WGPU_BACKEND` if set, else every compiled one.
    pub backends: Option<wgpu::Backends>,
    /// The adapter that runs chunks: an index into the adapter list or a case-insensitive
    /// substring of its name. `None`: `TESSERA_WGPU_ADAPTER` if set, else the best kind.
    pub adapter: Option<String>,
}

impl WgpuOptions {
    /// Options from the environment (`WGPU_BACKEND`, `TESSERA_WGPU_ADAPTER`).
    pub fn from_env() -> Self {
        WgpuOptions {
            backends: wgpu::Backends::from_env(),
            adapter: std::env::var("TESSERA_WGPU_ADAPTER").ok(),
        }
    }
}

/// What `devices()` reports for one adapter.
#[derive(Debug, Clone)]
struct AdapterEntry {
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
}

/// The wgpu backend: the adapters found and a device on the chosen one.
pub struct WgpuBackend {
    adapters: Vec<AdapterEntry>,
    gpu: Gpu,
    host: CpuBackend,
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WgpuBackend({} via {:?})",
            self.gpu.info.name, self.gpu.info.backend
        )
    }
}

fn kind_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn unavailable(reason: impl Into<String>) -> Error {
    Error::BackendUnavailable {
        backend: "wgpu".into(),
        reason: reason.into(),
    }
}

impl WgpuBackend {
    /// Opens the backend with [`WgpuOptions::from_env`].
    ///
    /// # Errors
    /// `BackendUnavailable` when no adapter exists or no device can be opened.
    pub fn new() -> Result<Self> {
        Self::with_options(WgpuOptions::from_env())
    }

    /// Opens the backend: enumerates adapters, picks one, opens a device on it.
    ///
    /// # Errors
    /// `BackendUnavailable` when no adapter (or no adapter matching `options.adapter`) exists
    /// or no device can be opened on it.
    pub fn with_options(options: WgpuOptions) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = options.backends.unwrap_or(wgpu::Backends::all());
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(desc_backends(&options)));
        if adapters.is_empty() {
            return Err(unavailable(format!(
                "no GPU adapter found for wgpu backends {:?} (set WGPU_BACKEND, install a \
                 Vulkan driver such as mesa-vulkan-drivers)",
                desc_backends(&options)
            )));
        }
        let entries: Vec<AdapterEntry> = adapters
            .iter()
            .map(|a| AdapterEntry {
                info: a.get_info(),
                limits: a.limits(),
                features: a.features(),
            })
            .collect();
        let pick = match &options.adapter {
            Some(sel) => match sel.parse::<usize>() {
                Ok(i) if i < entries.len() => i,
                Ok(i) => {
                    return Err(unavailable(format!(
                        "adapter {i} requested, {} found",
                        entries.len()
                    )))
                }
                Err(_) => {
                    let s = sel.to_lowercase();
                    entries
                        .iter()
                        .position(|e| e.info.name.to_lowercase().contains(&s))
                        .ok_or_else(|| unavailable(format!("no adapter named like {sel:?}")))?
                }
            },
            None => (0..entries.len())
                .min_by_key(|&i| kind_rank(entries[i].info.device_type))
                .expect("at least one adapter"),
        };
        let gpu = Gpu::open(pick, &adapters[pick])?;
        Ok(WgpuBackend {
            adapters: entries,
            gpu,
            host: CpuBackend::new(),
        })
    }

    /// The adapter that runs chunks.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.gpu.info
    }

    /// True when the running adapter is a CPU / software rasterizer (e.g. lavapipe).
    pub fn is_software(&self) -> bool {
        self.gpu.info.device_type == wgpu::DeviceType::Cpu
    }

    /// True when float64 kernels can run (`SHADER_F64`).
    pub fn has_f64(&self) -> bool {
        self.gpu.f64
    }

    /// Largest buffer one kernel binds, in bytes: chunks must stay below it.
    pub fn max_chunk_bytes(&self) -> u64 {
        self.gpu.max_binding()
    }

    /// Number of compiled pipelines in the cache.
    pub fn pipelines_cached(&self) -> usize {
        self.gpu.pipelines_cached()
    }

    fn host(&self, node: &ChunkNode, inputs: &[&ChunkData]) -> Result<ChunkData> {
        self.host.run_chunk(node, inputs)
    }
}

fn desc_backends(options: &WgpuOptions) -> wgpu::Backends {
    options.backends.unwrap_or(wgpu::Backends::all())
}

fn dtypes_line(f64: bool) -> String {
    format!(
        "f32 i32 bool{}; int64 moved and cast from, not computed",
        if f64 {
            " f64 (no transcendentals)"
        } else {
            " (no f64: SHADER_F64 missing)"
        }
    )
}

fn one(x: HostArray) -> ChunkData {
    vec![x]
}

impl Backend for WgpuBackend {
    fn name(&self) -> &str {
        "wgpu"
    }

    fn devices(&self) -> Vec<DeviceInfo> {
        self.adapters
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let l = &e.limits;
                let f64 = e.features.contains(wgpu::Features::SHADER_F64);
                let mut details = vec![
                    ("selected".to_string(), (i == self.gpu.index).to_string()),
                    ("backend".into(), format!("{:?}", e.info.backend)),
                    ("device_type".into(), format!("{:?}", e.info.device_type)),
                    (
                        "driver".into(),
                        format!("{} {}", e.info.driver, e.info.driver_info),
                    ),
                    (
                        "vendor/device".into(),
                        format!("{:#06x}/{:#06x}", e.info.vendor, e.info.device),
                    ),
                    (
                        "max_storage_buffer_binding_size".into(),
                        l.max_storage_buffer_binding_size.to_string(),
                    ),
                    ("max_buffer_size".into(), l.max_buffer_size.to_string()),
                    (
                        "max_compute_workgroups_per_dimension".into(),
                        l.max_compute_workgroups_per_dimension.to_string(),
                    ),
                    (
                        "max_compute_invocations_per_workgroup".into(),
                        l.max_compute_invocations_per_workgroup.to_string(),
                    ),
                    (
                        "max_compute_workgroup_storage_size".into(),
                        l.max_compute_workgroup_storage_size.to_string(),
                    ),
                    (
                        "max_storage_buffers_per_shader_stage".into(),
                        l.max_storage_buffers_per_shader_stage.to_string(),
                    ),
                    ("features".into(), format!("{:?}", e.features)),
                    ("dtypes".into(), dtypes_line(f64)),
                ];
                if i == self.gpu.index {
                    details.push(("max_chunk_bytes".into(), self.gpu.max_binding().to_string()));
                }
                DeviceInfo {
                    name: e.info.name.clone(),
                    kind: if e.info.device_type == wgpu::DeviceType::Cpu {
                        "cpu (software gpu)".into()
                    } else {
                        "gpu".into()
                    },
                    // wgpu reports no memory size; the largest buffer is the useful bound.
                    memory_bytes: l.max_buffer_size,
                    details,
                }
            })
            .collect()
    }

    fn run_chunk(&self, node: &ChunkNode, inputs: &[&ChunkData]) -> Result<ChunkData> {
        let gpu = &self.gpu;
        let shape = &node.shape;
        let dt = node.dtype;
        let x = |i: usize| -> &HostArray { &inputs[i][0] };
        let all = || -> Vec<&HostArray> { inputs.iter().map(|d| &d[0]).collect() };
        let none = KernelParams::default();
        Ok(match &node.op {
            // float32 and int32 lanes sort on the GPU (a bitonic network); the rest on the host.
            ChunkOp::Sort {
                axis,
                descending,
                arg,
            } if matches!(x(0).dtype(), DType::F32 | DType::I32) => {
                match sort::sort(gpu, x(0), *axis, *descending, *arg)? {
                    Some(out) => one(out),
                    None => self.host(node, inputs)?,
                }
            }
            // Host steps (see the crate docs).
            ChunkOp::Constant { .. }
            | ChunkOp::External { .. }
            | ChunkOp::Write { .. }
            | ChunkOp::Dense(_)
            | ChunkOp::Sort { .. }
            | ChunkOp::TopKPartial { .. }
            | ChunkOp::KnnPartial { .. }
            | ChunkOp::TopKCombine { .. }
            | ChunkOp::TopKFinal { .. }
            | ChunkOp::SearchSortedPartial { .. }
            | ChunkOp::BinCountPartial { .. }
            | ChunkOp::HistogramPartial { .. }
            | ChunkOp::PartsSum
            | ChunkOp::Scan { .. }
            | ChunkOp::ScanTotal { .. }
            | ChunkOp::Take { .. }
            | ChunkOp::TakeAlong { .. }
            | ChunkOp::Compact { .. }
            | ChunkOp::BucketCount { .. }
            | ChunkOp::Bucketize { .. }
            | ChunkOp::Field { .. }
            | ChunkOp::BucketSort { .. }
            | ChunkOp::Arange { .. }
            | ChunkOp::Linspace { .. }
            | ChunkOp::Eye { .. }
            | ChunkOp::Reshape
            | ChunkOp::ReduceCombine { .. }
            | ChunkOp::ReduceFinal { .. }
            | ChunkOp::ArgCombine { .. }
            | ChunkOp::ArgFinal { .. } => self.host(node, inputs)?,
            ChunkOp::Full { .. } if dt == DType::I64 => self.host(node, inputs)?,
            ChunkOp::Full { value } => {
                ops::run_ir(gpu, &lower::full_ir(shape, *value, dt), &none, &[])?
            }
            ChunkOp::Random {
                seed,
                stream,
                dist,
                offset,
                full,
            } => {
                let (ir, params) = lower::random_ir(*seed, *stream, *dist, shape, offset, full, dt);
                ops::run_ir(gpu, &ir, &params, &[])?
            }
            ChunkOp::Unary(op) => {
                let ir = lower::one_op_ir(
                    shape,
                    &[dts(x(0))],
                    |v| inst(InstKind::Unary(*op, v[0]), dt),
                    None,
                );
                ops::run_ir(gpu, &ir, &none, &[x(0)])?
            }
            ChunkOp::Binary(op) => {
                let ins = [x(0), x(1)];
                let ir = lower::one_op_ir(
                    shape,
                    &ins.map(dts),
                    |v| inst(InstKind::Binary(*op, v[0], v[1]), dt),
                    None,
                );
                ops::run_ir(gpu, &ir, &none, &ins)?
            }
            ChunkOp::Where => {
                let ins = [x(0), x(1), x(2)];
                let ir = lower::one_op_ir(
                    shape,
                    &ins.map(dts),
                    |v| inst(InstKind::Where(v[0], v[1], v[2]), dt),
                    None,
                );
                ops::run_ir(gpu, &ir, &none, &ins)?
            }
            ChunkOp::Cast => {
                if x(0).dtype() == dt {
                    one(x(0).clone())
                } else {
                    let ir = lower::one_op_ir(
                        shape,
                        &[dts(x(0))],
                        |v| inst(InstKind::Cast(v[0]), dt),
                        None,
                    );
                    ops::run_ir(gpu, &ir, &none, &[x(0)])?
                }
            }
            ChunkOp::ReducePartial { op, axes } => {
                let ir =
                    lower::reduce_ir(x(0).dtype(), x(0).shape(), ReduceKind::Reduce(*op), axes);
                ops::run_ir(gpu, &ir, &none, &[x(0)])?
            }
            ChunkOp::ArgPartial { op, axis, offset } => {
                let ir =
                    lower::reduce_ir(x(0).dtype(), x(0).shape(), ReduceKind::Arg(*op), &[*axis]);
                let params = KernelParams {
                    arg_base: *offset as u64,
                    ..Default::default()
                };
                ops::run_ir(gpu, &ir, &params, &[x(0)])?
            }
            ChunkOp::Transpose { perm } => one(ops::transpose(gpu, x(0), perm)?),
            ChunkOp::BroadcastTo => one(ops::broadcast(gpu, x(0), shape)?),
            ChunkOp::Slice { region, steps } => one(ops::slice(gpu, x(0), region, steps, shape)?),
            ChunkOp::Assemble { pieces } => one(ops::assemble(gpu, &all(), pieces, shape, dt)?),
            ChunkOp::ReshapeGather { .. } => one(ops::reshape_gather(gpu, &all(), node)?),
            ChunkOp::Fused { ir, params, bound } => {
                // Bound user data: only the window the kernel reads goes to the device.
                let (windows, params) = lower::bound_windows(ir, params, bound)?;
                let mut chunks = inputs.iter().map(|d| &d[0]);
                let ins: Vec<&HostArray> = (0..ir.inputs.len())
                    .map(|k| match windows.iter().find(|(i, _)| *i == k) {
                        Some((_, data)) => Ok(data),
                        None => chunks.next().ok_or_else(|| {
                            gpu::backend_err("fused kernel: fewer chunk inputs than loads")
                        }),
                    })
                    .collect::<Result<_>>()?;
                ops::run_ir(gpu, ir, &params, &ins)?
            }
            ChunkOp::MatMul { accumulate } => {
                let acc = if *accumulate { Some(x(2)) } else { None };
                one(ops::matmul(gpu, node, x(0), x(1), acc)?)
            }
            // The general product with the transpose: no symmetric kernel on this backend.
            ChunkOp::Syrk { accumulate } => {
                let acc = if *accumulate { Some(x(1)) } else { None };
                let at = ops::transpose(gpu, x(0), &[1, 0])?;
                one(ops::matmul(gpu, node, x(0), &at, acc)?)
            }
        })
    }
}

/// An operand as (dtype, shape), what the lowering functions take.
fn dts(x: &HostArray) -> (DType, &[usize]) {
    (x.dtype(), x.shape())
}

fn inst(kind: InstKind, dtype: DType) -> Inst {
    Inst { kind, dtype }
}
