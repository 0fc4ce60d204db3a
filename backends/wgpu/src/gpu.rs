//! One opened adapter: device and queue, a buffer pool, the pipeline cache, launches with
//! dispatch shapes inside the adapter's limits, and read-back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tessera_runtime::{Error, Result, Tier};

/// Bytes of idle buffers the pool keeps per device; beyond it freed buffers are dropped.
const POOL_BYTES: u64 = 256 << 20;
/// Smallest buffer the pool hands out (bindings must not be empty).
const MIN_BUFFER: u64 = 256;

/// Threads per workgroup of every 1-D kernel (the generated ABI and the library kernels).
pub(crate) const WORKGROUP: u64 = 256;

/// What a pipeline is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PipeKey {
    /// A generated kernel, by `KernelKey`.
    Ir(u64),
    /// A library kernel by name (shaders/, with its prelude).
    Library(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Storage,
    Readback,
}

#[derive(Default)]
struct Pool {
    free: HashMap<(Kind, u64), Vec<wgpu::Buffer>>,
    bytes: u64,
}

/// An opened adapter.
pub(crate) struct Gpu {
    /// Position in the backend's adapter list (the `Tier::Device` index).
    pub(crate) index: usize,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    /// SHADER_F64 was granted.
    pub(crate) f64: bool,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: Mutex<HashMap<PipeKey, Arc<wgpu::ComputePipeline>>>,
    pool: Mutex<Pool>,
}

/// A pooled buffer: goes back to the pool when dropped.
pub(crate) struct Buf<'a> {
    gpu: &'a Gpu,
    kind: Kind,
    buf: Option<wgpu::Buffer>,
}

impl Buf<'_> {
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        self.buf.as_ref().expect("buffer present until drop")
    }
}

impl Drop for Buf<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.gpu.give_back(self.kind, b);
        }
    }
}

/// One dispatch of a compute pipeline.
pub(crate) struct Dispatch<'a> {
    pub(crate) pipeline: Arc<wgpu::ComputePipeline>,
    /// Buffers in binding order.
    pub(crate) bindings: Vec<&'a wgpu::Buffer>,
    pub(crate) grid: [u32; 3],
}

pub(crate) fn backend_err(msg: impl Into<String>) -> Error {
    Error::Backend {
        backend: "wgpu".into(),
        msg: msg.into(),
    }
}

impl Gpu {
    /// Opens a device on `adapter` with its full limits and SHADER_F64 where offered.
    pub(crate) fn open(index: usize, adapter: &wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let f64 = adapter.features().contains(wgpu::Features::SHADER_F64);
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tessera"),
            required_features: if f64 {
                wgpu::Features::SHADER_F64
            } else {
                wgpu::Features::empty()
            },
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::BackendUnavailable {
            backend: "wgpu".into(),
            reason: format!("request_device on {}: {e}", info.name),
        })?;
        // Errors are caught by the error scope of each chunk; anything escaping them is logged
        // instead of wgpu's default panic.
        device.on_uncaptured_error(Arc::new(|e| eprintln!("tessera-wgpu: uncaptured: {e}")));
        device.set_device_lost_callback(|reason, msg| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                eprintln!("tessera-wgpu: device lost ({reason:?}): {msg}");
            }
        });
        Ok(Gpu {
            index,
            info,
            limits,
            f64,
            device,
            queue,
            pipelines: Mutex::new(HashMap::new()),
            pool: Mutex::new(Pool::default()),
        })
    }

    /// Largest buffer a kernel may bind (bytes).
    pub(crate) fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Checks that a buffer of `bytes` can be bound.
    ///
    /// # Errors
    /// `OutOfMemory` naming the binding limit, so a caller can cut smaller chunks.
    pub(crate) fn check_size(&self, bytes: u64) -> Result<()> {
        if bytes > self.max_binding() {
            return Err(Error::OutOfMemory {
                tier: Tier::Device(self.index),
                requested: bytes,
                available: self.max_binding(),
            });
        }
        Ok(())
    }

    fn size_class(&self, bytes: u64) -> u64 {
        let b = bytes.max(MIN_BUFFER);
        let p = b.next_power_of_two();
        if p <= self.max_binding() {
            p
        } else {
            b.div_ceil(MIN_BUFFER) * MIN_BUFFER
        }
    }

    fn take(&self, kind: Kind, bytes: u64) -> Result<Buf<'_>> {
        self.check_size(bytes)?;
        let size = self.size_class(bytes);
        let reused = {
            let mut pool = self.pool.lock().expect("pool");
            let b = pool.free.get_mut(&(kind, size)).and_then(Vec::pop);
            if b.is_some() {
                pool.bytes -= size;
            }
            b
        };
        let buf = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: match kind {
                    Kind::Storage => {
                        wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_SRC
                            | wgpu::BufferUsages::COPY_DST
                    }
                    Kind::Readback => wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                },
                mapped_at_creation: false,
            })
        });
        Ok(Buf {
            gpu: self,
            kind,
            buf: Some(buf),
        })
    }

    fn give_back(&self, kind: Kind, b: wgpu::Buffer) {
        let size = b.size();
        let mut pool = self.pool.lock().expect("pool");
        if pool.bytes + size <= POOL_BYTES {
            pool.bytes += size;
            pool.free.entry((kind, size)).or_default().push(b);
        }
    }

    /// A storage buffer holding `bytes` (padded to a multiple of 4).
    pub(crate) fn upload(&self, bytes: &[u8]) -> Result<Buf<'_>> {
        let b = self.take(Kind::Storage, bytes.len() as u64)?;
        if !bytes.is_empty() {
            let pad = bytes.len().next_multiple_of(4);
            if pad == bytes.len() {
                self.queue.write_buffer(b.buffer(), 0, bytes);
            } else {
                let mut v = bytes.to_vec();
                v.resize(pad, 0);
                self.queue.write_buffer(b.buffer(), 0, &v);
            }
        }
        Ok(b)
    }

    /// A storage buffer of u32 words.
    pub(crate) fn upload_words(&self, words: &[u32]) -> Result<Buf<'_>> {
        self.upload(bytemuck::cast_slice(words))
    }

    /// An output buffer of at least `bytes` (contents undefined until written).
    pub(crate) fn output(&self, bytes: u64) -> Result<Buf<'_>> {
        self.take(Kind::Storage, bytes)
    }

    /// The pipeline for `key`, compiling `source()` on a miss.
    pub(crate) fn pipeline(
        &self,
        key: PipeKey,
        source: impl FnOnce() -> Result<String>,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self.pipelines.lock().expect("pipelines").get(&key) {
            return Ok(p.clone());
        }
        let src = source()?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: None,
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: None,
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(backend_err(format!("compiling kernel {key:?}: {e}")));
        }
        let p = Arc::new(pipeline);
        self.pipelines
            .lock()
            .expect("pipelines")
            .insert(key, p.clone());
        Ok(p)
    }

    /// Number of compiled pipelines (for tests and `info`).
    pub(crate) fn pipelines_cached(&self) -> usize {
        self.pipelines.lock().expect("pipelines").len()
    }

    /// A 2-D grid of at least `groups` workgroups within the per-dimension limit.
    ///
    /// # Errors
    /// More workgroups than a 2-D grid can hold.
    pub(crate) fn grid(&self, groups: u64) -> Result<[u32; 3]> {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let groups = groups.max(1);
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(backend_err(format!(
                "{groups} workgroups exceed a {max} x {max} grid"
            )));
        }
        Ok([x as u32, y as u32, 1])
    }

    /// A grid for a grid-stride loop over `n` elements (256 per workgroup).
    pub(crate) fn grid_for(&self, n: u64) -> Result<[u32; 3]> {
        self.grid(n.div_ceil(WORKGROUP))
    }

    /// Records `dispatches` (clearing `clear` first), copies `reads` back and returns their
    /// bytes (`(buffer, bytes)` each). Validation and out-of-memory errors become `Error`s.
    pub(crate) fn run(
        &self,
        clear: &[&wgpu::Buffer],
        dispatches: &[Dispatch],
        reads: &[(&wgpu::Buffer, u64)],
    ) -> Result<Vec<Vec<u8>>> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = self.device.create_command_encoder(&Default::default());
        for b in clear {
            enc.clear_buffer(b, 0, None);
        }
        for d in dispatches {
            let entries: Vec<wgpu::BindGroupEntry> = d
                .bindings
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: b.as_entire_binding(),
                })
                .collect();
            let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &d.pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(d.grid[0], d.grid[1], d.grid[2]);
        }
        let mut staging = Vec::with_capacity(reads.len());
        for (b, bytes) in reads {
            let size = bytes.next_multiple_of(4);
            let rb = self.take(Kind::Readback, size)?;
            if size > 0 {
                enc.copy_buffer_to_buffer(b, 0, rb.buffer(), 0, size);
            }
            staging.push((rb, *bytes));
        }
        self.queue.submit([enc.finish()]);
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = v.or(o) {
            return Err(backend_err(e.to_string()));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for (k, (rb, bytes)) in staging.iter().enumerate() {
            let size = bytes.next_multiple_of(4);
            if size > 0 {
                let tx = tx.clone();
                rb.buffer()
                    .slice(..size)
                    .map_async(wgpu::MapMode::Read, move |r| {
                        let _ = tx.send((k, r));
                    });
            }
        }
        drop(tx);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| backend_err(format!("poll: {e}")))?;
        for (_, r) in rx.iter() {
            r.map_err(|e| backend_err(format!("read-back map: {e}")))?;
        }
        let mut out = Vec::with_capacity(staging.len());
        for (rb, bytes) in &staging {
            if *bytes == 0 {
                out.push(Vec::new());
                continue;
            }
            let size = bytes.next_multiple_of(4);
            let v = {
                let view = rb
                    .buffer()
                    .slice(..size)
                    .get_mapped_range()
                    .map_err(|e| backend_err(format!("read-back view: {e}")))?;
                view[..*bytes as usize].to_vec()
            };
            rb.buffer().unmap();
            out.push(v);
        }
        Ok(out)
    }
}
