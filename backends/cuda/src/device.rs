//! Devices, streams, memory and transfers.
//!
//! - [`Gpu`]: one physical GPU: its (primary) context, properties, loaded kernels. Its default
//!   memory pool keeps freed memory (release threshold = max), so the stream-ordered allocator
//!   (`cuMemAllocAsync`) is the device memory pool: chunk buffers come and go without
//!   `cuMemAlloc`/`cuMemFree` round trips.
//! - [`Lane`]: one device as the Scheduler sees it (a GPU, or a virtual share of one): a
//!   compute stream (kernels, cuBLAS), a copy stream (transfers), pinned staging buffers.
//!   Dependencies between the streams are events: every buffer records its last write and
//!   reads (cudarc's event tracking), and a stream waits for them before it touches the buffer.
//! - Transfers go through two pinned staging buffers per lane and direction: the CPU copies
//!   piece i+1 (with all cores) while the DMA engine moves piece i, so copies run at pinned
//!   speed from pageable arrays and overlap the compute stream's kernels.

use cudarc::driver::sys;
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, PinnedHostSlice,
};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tessera_runtime::{DType, Elem, Error, HostArray, Result};

use crate::compile::{arch_for, PtxCache};

/// Bytes of one staging buffer (two per lane and direction).
pub(crate) const STAGE: usize = 32 << 20;

/// A driver error as a backend error, naming what was being done.
pub(crate) fn drv(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| {
        let oom = matches!(e.0, sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY);
        Error::Backend {
            backend: "cuda".into(),
            msg: if oom {
                format!("{what}: device out of memory ({e:?})")
            } else {
                format!("{what}: {e:?}")
            },
        }
    }
}

/// A backend error.
pub(crate) fn backend_err(msg: impl Into<String>) -> Error {
    Error::Backend {
        backend: "cuda".into(),
        msg: msg.into(),
    }
}

/// Bytes per element in device buffers (bool is one byte, 0 or 1, as on the host).
pub(crate) fn elem_bytes(d: DType) -> usize {
    match d {
        DType::Bool => 1,
        DType::I32 | DType::F32 => 4,
        DType::I64 | DType::F64 => 8,
    }
}

/// One physical GPU.
pub(crate) struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub ordinal: usize,
    pub name: String,
    pub cc: (i32, i32),
    pub sms: usize,
    pub total_bytes: u64,
    /// Free bytes when the backend opened.
    pub free_bytes: u64,
    functions: Mutex<HashMap<(String, String), CudaFunction>>,
}

impl Gpu {
    pub(crate) fn open(ordinal: usize) -> Result<Gpu> {
        let ctx = CudaContext::new(ordinal).map_err(drv("opening a CUDA context"))?;
        let name = ctx.name().map_err(drv("device name"))?;
        let cc = ctx
            .compute_capability()
            .map_err(drv("compute capability"))?;
        let sms = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(drv("multiprocessor count"))? as usize;
        let (free, total) = ctx.mem_get_info().map_err(drv("cuMemGetInfo"))?;
        if ctx.has_async_alloc() {
            // SAFETY: the device handle comes from a live context; the attribute value is a
            // u64 as CU_MEMPOOL_ATTR_RELEASE_THRESHOLD requires, alive across the call.
            unsafe {
                let pool = cudarc::driver::result::device::get_default_mem_pool(ctx.cu_device())
                    .map_err(drv("default memory pool"))?;
                let mut keep = u64::MAX;
                sys::cuMemPoolSetAttribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                    &mut keep as *mut u64 as *mut std::ffi::c_void,
                )
                .result()
                .map_err(drv("memory pool release threshold"))?;
            }
        }
        Ok(Gpu {
            ctx,
            ordinal,
            name,
            cc,
            sms: sms.max(1),
            total_bytes: total as u64,
            free_bytes: free as u64,
            functions: Mutex::new(HashMap::new()),
        })
    }

    /// The virtual architecture kernels are compiled for.
    pub(crate) fn arch(&self) -> &'static str {
        arch_for(self.cc)
    }

    /// Kernel `name` of module `module` (a generated kernel is its own module; the library
    /// kernels share one), compiled from the CUDA C that `src` renders (or found in `cache`)
    /// and loaded once per context. Within a process a module's source never changes (a
    /// generated kernel's name is the hash of its IR), so `src` runs only on the first call.
    pub(crate) fn function(
        &self,
        cache: &PtxCache,
        module: &str,
        name: &str,
        src: impl FnOnce() -> Result<String>,
    ) -> Result<CudaFunction> {
        let key = (module.to_string(), name.to_string());
        if let Some(f) = self.functions.lock().expect("functions").get(&key) {
            return Ok(f.clone());
        }
        let ptx = cache.get(module, &src()?, self.arch())?;
        let loaded = self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx.to_string()))
            .map_err(drv("loading a PTX module"))?;
        let f = loaded
            .load_function(name)
            .map_err(drv("finding a kernel in its module"))?;
        self.functions
            .lock()
            .expect("functions")
            .insert(key, f.clone());
        Ok(f)
    }
}

/// Two pinned buffers and the events that say when the DMA using each is done.
struct Staging {
    bufs: [PinnedHostSlice<u8>; 2],
    done: [CudaEvent; 2],
}

impl Staging {
    fn new(ctx: &Arc<CudaContext>) -> Result<Staging> {
        // Portable, cacheable pinned memory: the CPU both writes it (uploads) and reads it
        // (downloads), so no write-combining.
        let alloc = || {
            // SAFETY: the buffer's bytes are uninitialized until written; every use writes a
            // piece before the DMA or the CPU reads that piece.
            unsafe { ctx.alloc_pinned_with_flags::<u8>(STAGE, sys::CU_MEMHOSTALLOC_PORTABLE) }
                .map_err(drv("allocating pinned staging memory"))
        };
        let event = || ctx.new_event(None).map_err(drv("creating an event"));
        Ok(Staging {
            bufs: [alloc()?, alloc()?],
            done: [event()?, event()?],
        })
    }
}

/// A chunk field in device memory: raw bytes, with its dtype and shape.
pub(crate) struct DevArray {
    pub buf: CudaSlice<u8>,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl DevArray {
    pub(crate) fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A chunk resident on one lane (`DeviceChunk::Native` holds this).
pub(crate) struct CudaChunk {
    pub lane: usize,
    pub fields: Vec<DevArray>,
}

/// One device as the Scheduler sees it.
pub(crate) struct Lane {
    pub gpu: Arc<Gpu>,
    pub compute: Arc<CudaStream>,
    pub copy: Arc<CudaStream>,
    pub blas: Mutex<cudarc::cublas::CudaBlas>,
    up: Mutex<Staging>,
    down: Mutex<Staging>,
    /// Bytes this lane may hold (its share of the GPU's free memory).
    pub budget: u64,
    /// Which share of its GPU this lane is (0 for a whole GPU).
    pub share: usize,
    /// This lane's device index in the backend (what the Scheduler calls the device).
    pub dev: usize,
}

/// Copies `src` into `dst` with every core (staging copies are memory-bound).
fn par_copy(dst: &mut [u8], src: &[u8]) {
    const PIECE: usize = 1 << 20;
    dst.par_chunks_mut(PIECE)
        .zip(src.par_chunks(PIECE))
        .for_each(|(d, s)| d.copy_from_slice(s));
}

/// The bytes of a host array in row-major order (borrowed when it is already standard).
fn host_bytes(x: &HostArray) -> std::borrow::Cow<'_, [u8]> {
    fn pod<T: Elem + bytemuck::Pod>(a: &ndarray::ArrayD<T>) -> std::borrow::Cow<'_, [u8]> {
        match a.as_slice() {
            Some(s) => std::borrow::Cow::Borrowed(bytemuck::cast_slice(s)),
            None => {
                let v: Vec<T> = a.iter().copied().collect();
                std::borrow::Cow::Owned(bytemuck::cast_slice(&v).to_vec())
            }
        }
    }
    match x {
        HostArray::Bool(a) => match a.as_slice() {
            Some(s) => std::borrow::Cow::Borrowed(bytemuck::cast_slice(s)),
            None => std::borrow::Cow::Owned(a.iter().map(|&b| b as u8).collect()),
        },
        HostArray::I32(a) => pod(a),
        HostArray::I64(a) => pod(a),
        HostArray::F32(a) => pod(a),
        HostArray::F64(a) => pod(a),
    }
}

fn shaped<T: Elem>(shape: &[usize], v: Vec<T>) -> HostArray {
    T::wrap(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v).expect("length matches"))
}

impl Lane {
    pub(crate) fn open(
        gpu: Arc<Gpu>,
        dev: usize,
        budget: u64,
        share: usize,
        tf32: bool,
    ) -> Result<Lane> {
        let compute = gpu.ctx.new_stream().map_err(drv("creating a stream"))?;
        let copy = gpu.ctx.new_stream().map_err(drv("creating a stream"))?;
        let blas = cudarc::cublas::CudaBlas::new(compute.clone())
            .map_err(|e| backend_err(format!("cuBLAS could not start: {e:?}")))?;
        let mode = if tf32 {
            cudarc::cublas::sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
        } else {
            cudarc::cublas::sys::cublasMath_t::CUBLAS_DEFAULT_MATH
        };
        // SAFETY: the handle is the live one just created; the mode is a valid enum value.
        let st = unsafe { cudarc::cublas::sys::cublasSetMathMode(*blas.handle(), mode) };
        if st != cudarc::cublas::sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            return Err(backend_err(format!("cublasSetMathMode: {st:?}")));
        }
        Ok(Lane {
            up: Mutex::new(Staging::new(&gpu.ctx)?),
            down: Mutex::new(Staging::new(&gpu.ctx)?),
            gpu,
            compute,
            copy,
            blas: Mutex::new(blas),
            budget,
            share,
            dev,
        })
    }

    /// A device buffer of `bytes` on the compute stream; on an allocation failure the device
    /// is synchronized once (stream-ordered frees may still be pending) and the allocation
    /// retried.
    pub(crate) fn alloc(&self, stream: &Arc<CudaStream>, bytes: usize) -> Result<CudaSlice<u8>> {
        // SAFETY: the bytes are uninitialized; every caller writes the whole buffer (a kernel
        // output, a copy destination) before anything reads it.
        match unsafe { stream.alloc::<u8>(bytes) } {
            Ok(b) => Ok(b),
            Err(_) => {
                self.gpu
                    .ctx
                    .synchronize()
                    .map_err(drv("synchronizing before a retried allocation"))?;
                // SAFETY: as above.
                unsafe { stream.alloc::<u8>(bytes) }.map_err(|e| {
                    if !matches!(e.0, sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY) {
                        return drv("allocating device memory")(e);
                    }
                    let free = self.gpu.ctx.mem_get_info().map(|m| m.0).unwrap_or(0);
                    Error::OutOfMemory {
                        tier: tessera_runtime::Tier::Device(self.dev),
                        requested: bytes as u64,
                        available: free as u64,
                    }
                })
            }
        }
    }

    /// Uploads a host array (through the pinned staging buffers, on the copy stream).
    pub(crate) fn upload(&self, x: &HostArray) -> Result<DevArray> {
        let bytes = host_bytes(x);
        let mut buf = self.alloc(&self.copy, bytes.len())?;
        self.upload_into(&bytes, &mut buf)?;
        Ok(DevArray {
            buf,
            dtype: x.dtype(),
            shape: x.shape().to_vec(),
        })
    }

    fn upload_into(&self, src: &[u8], dst: &mut CudaSlice<u8>) -> Result<()> {
        let mut st = self.up.lock().expect("staging");
        let st = &mut *st;
        for (i, piece) in src.chunks(STAGE).enumerate() {
            let j = i % 2;
            st.done[j]
                .synchronize()
                .map_err(drv("waiting for a staging buffer"))?;
            let stage = st.bufs[j]
                .as_mut_slice()
                .map_err(drv("mapping a staging buffer"))?;
            par_copy(&mut stage[..piece.len()], piece);
            let off = i * STAGE;
            let mut view = dst.slice_mut(off..off + piece.len());
            self.copy
                .memcpy_htod(&stage[..piece.len()], &mut view)
                .map_err(drv("host-to-device copy"))?;
            st.done[j]
                .record(&self.copy)
                .map_err(drv("recording a copy event"))?;
        }
        Ok(())
    }

    /// Downloads a device array into a host array.
    pub(crate) fn download(&self, x: &DevArray) -> Result<HostArray> {
        let n = x.len();
        Ok(match x.dtype {
            DType::Bool => {
                let mut v = vec![0u8; n];
                self.download_into(&x.buf, &mut v)?;
                shaped(
                    &x.shape,
                    v.into_iter().map(|b| b != 0).collect::<Vec<bool>>(),
                )
            }
            DType::I32 => shaped(&x.shape, self.download_pod::<i32>(&x.buf, n)?),
            DType::I64 => shaped(&x.shape, self.download_pod::<i64>(&x.buf, n)?),
            DType::F32 => shaped(&x.shape, self.download_pod::<f32>(&x.buf, n)?),
            DType::F64 => shaped(&x.shape, self.download_pod::<f64>(&x.buf, n)?),
        })
    }

    fn download_pod<T: bytemuck::Pod + Default + Clone>(
        &self,
        src: &CudaSlice<u8>,
        n: usize,
    ) -> Result<Vec<T>> {
        let mut v = vec![T::default(); n];
        self.download_into(src, bytemuck::cast_slice_mut(&mut v))?;
        Ok(v)
    }

    fn download_into(&self, src: &CudaSlice<u8>, dst: &mut [u8]) -> Result<()> {
        let mut st = self.down.lock().expect("staging");
        let st = &mut *st;
        let total = dst.len();
        let mut pending: [Option<(usize, usize)>; 2] = [None, None];
        let drain = |st: &mut Staging, j: usize, (off, len): (usize, usize), dst: &mut [u8]| {
            st.done[j]
                .synchronize()
                .map_err(drv("waiting for a device-to-host copy"))?;
            let stage = st.bufs[j]
                .as_slice()
                .map_err(drv("mapping a staging buffer"))?;
            par_copy(&mut dst[off..off + len], &stage[..len]);
            Ok::<(), Error>(())
        };
        let pieces: Vec<(usize, usize)> = (0..total)
            .step_by(STAGE)
            .map(|off| (off, STAGE.min(total - off)))
            .collect();
        for (i, &(off, len)) in pieces.iter().enumerate() {
            let j = i % 2;
            if let Some(p) = pending[j].take() {
                drain(st, j, p, dst)?;
            }
            let view = src.slice(off..off + len);
            let stage = st.bufs[j]
                .as_mut_slice()
                .map_err(drv("mapping a staging buffer"))?;
            self.copy
                .memcpy_dtoh(&view, &mut stage[..len])
                .map_err(drv("device-to-host copy"))?;
            st.done[j]
                .record(&self.copy)
                .map_err(drv("recording a copy event"))?;
            pending[j] = Some((off, len));
        }
        for i in pieces.len()..pieces.len() + 2 {
            let j = i % 2;
            if let Some(p) = pending[j].take() {
                drain(st, j, p, dst)?;
            }
        }
        Ok(())
    }

    /// A copy of `x` (on this lane, from any lane: peer copy across GPUs, a device copy on
    /// the same GPU).
    pub(crate) fn copy_from(&self, x: &DevArray) -> Result<DevArray> {
        let mut buf = self.alloc(&self.copy, x.buf.len())?;
        if !x.buf.is_empty() {
            self.copy
                .memcpy_dtod(&x.buf, &mut buf)
                .map_err(drv("device-to-device copy"))?;
        }
        Ok(DevArray {
            buf,
            dtype: x.dtype,
            shape: x.shape.clone(),
        })
    }

    /// Waits for everything queued on this lane's streams.
    pub(crate) fn synchronize(&self) -> Result<()> {
        self.compute
            .synchronize()
            .map_err(drv("synchronizing the compute stream"))?;
        self.copy
            .synchronize()
            .map_err(drv("synchronizing the copy stream"))
    }
}
