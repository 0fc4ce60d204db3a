//! The Backend trait: what the Executor needs from a device. Backends register with a Session
//! as trait objects; the runtime imports none of them.

use crate::chunk::{ChunkData, ChunkNode};
use crate::error::Result;

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

/// A compute backend.
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
