//! The Backend trait: what the Executor needs from a device. Backends register with a Session
//! as trait objects; the runtime imports none of them.

use crate::chunk::{ChunkData, ChunkNode};
use crate::error::{Error, Result};
use std::any::Any;
use std::sync::Arc;

/// A device a backend exposes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// Device name as the driver reports it.
    pub name: String,
    /// Kind (cpu, gpu, ...).
    pub kind: String,
    /// Bytes of memory the device can use.
    pub memory_bytes: u64,
    /// Free-form details (limits, features).
    pub details: Vec<(String, String)>,
}

/// A chunk's data held by a device (the device tier of the Scheduler).
pub enum DeviceChunk {
    /// Host memory standing in for device memory: what backends without their own memory
    /// (the CPU backend and its virtual devices) hold.
    Host(Arc<ChunkData>),
    /// A backend's own buffer (GPU memory), opaque to the runtime.
    Native(Box<dyn Any + Send + Sync>),
}

impl std::fmt::Debug for DeviceChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChunk::Host(d) => write!(f, "DeviceChunk::Host({} fields)", d.len()),
            DeviceChunk::Native(_) => write!(f, "DeviceChunk::Native"),
        }
    }
}

/// A compute backend.
///
/// The first three methods are all a backend must provide: it then runs every chunk on host
/// data, one device. The device-memory methods have host-memory defaults; a backend with its
/// own memory overrides them so that chunks stay resident between kernels.
pub trait Backend: Send + Sync {
    /// Short name: "cpu", "wgpu", "cuda".
    fn name(&self) -> &str;
    /// The devices this backend drives.
    fn devices(&self) -> Vec<DeviceInfo>;
    /// Runs one chunk task on host-resident inputs and returns its output.
    ///
    /// # Errors
    /// `Error::Unsupported` for ops the backend lacks; backend failures.
    fn run_chunk(&self, node: &ChunkNode, inputs: &[&ChunkData]) -> Result<ChunkData>;

    /// True when chunks should stay in the backend's own memory between kernels: the
    /// Scheduler then runs every graph (even on one device without budgets), moving data only
    /// where the plan says.
    fn device_resident(&self) -> bool {
        false
    }
    /// The chunk size this backend works best with (`None`: the session default). A GPU
    /// wants chunks large enough that launch and scheduling costs vanish next to a kernel.
    fn preferred_chunk_bytes(&self) -> Option<usize> {
        None
    }

    /// Copies host data to device `dev`.
    ///
    /// # Errors
    /// Backend failures (allocation, transfer).
    fn copy_htod(&self, dev: usize, data: &Arc<ChunkData>) -> Result<DeviceChunk> {
        let _ = dev;
        Ok(DeviceChunk::Host(data.clone()))
    }
    /// Copies a device chunk back to the host.
    ///
    /// # Errors
    /// Backend failures; a `Native` chunk the backend does not know.
    fn copy_dtoh(&self, dev: usize, chunk: &DeviceChunk) -> Result<Arc<ChunkData>> {
        let _ = dev;
        match chunk {
            DeviceChunk::Host(d) => Ok(d.clone()),
            DeviceChunk::Native(_) => Err(Error::Backend {
                backend: self.name().to_string(),
                msg: "copy_dtoh of a native buffer is not implemented".into(),
            }),
        }
    }
    /// Copies a chunk from device `src` to device `dst` (peer copy where the hardware has one).
    ///
    /// # Errors
    /// Backend failures.
    fn copy_dtod(&self, src: usize, dst: usize, chunk: &DeviceChunk) -> Result<DeviceChunk> {
        let host = self.copy_dtoh(src, chunk)?;
        self.copy_htod(dst, &host)
    }
    /// Runs one chunk task on device `dev` with device-resident inputs.
    ///
    /// # Errors
    /// As `run_chunk`.
    fn run_on(&self, dev: usize, node: &ChunkNode, inputs: &[&DeviceChunk]) -> Result<DeviceChunk> {
        let host: Vec<Arc<ChunkData>> = inputs
            .iter()
            .map(|c| self.copy_dtoh(dev, c))
            .collect::<Result<_>>()?;
        let refs: Vec<&ChunkData> = host.iter().map(|a| a.as_ref()).collect();
        let out = self.run_chunk(node, &refs)?;
        self.copy_htod(dev, &Arc::new(out))
    }
}

/// A backend that plans but never computes: for tiling and scheduling tests.
#[derive(Debug, Default)]
pub struct NullBackend;

impl Backend for NullBackend {
    fn name(&self) -> &str {
        "null"
    }
    fn devices(&self) -> Vec<DeviceInfo> {
        vec![]
    }
    fn run_chunk(&self, node: &ChunkNode, _inputs: &[&ChunkData]) -> Result<ChunkData> {
        Err(crate::error::Error::Unsupported {
            op: node.op.name().to_string(),
            backend: "null".into(),
        })
    }
}
