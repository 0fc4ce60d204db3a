//! tessera-runtime: the backend-neutral core of Tessera.
//!
//! Data path: `Tensor` methods record nodes in a `Graph` -> the `Tiler` cuts it into a
//! `ChunkGraph` -> the `Executor` (`exec::run`) runs chunk tasks on a `Backend` -> host arrays.
#![warn(missing_docs)]

pub mod array;
pub mod backend;
pub mod chunk;
pub mod dtype;
pub mod error;
pub mod exec;
pub mod external;
pub mod fuse;
pub mod graph;
pub mod hostpool;
pub mod io;
pub mod ir;
pub mod linalg;
pub mod op;
pub mod philox;
pub mod remote;
pub mod schedule;
pub mod session;
pub mod storage;
pub mod tensor;
pub mod tile;

pub use array::{Elem, HostArray, HostSlice};
pub use backend::{Backend, DeviceChunk, DeviceInfo, NullBackend};
pub use dtype::{DType, Scalar};
pub use error::{Error, FileError, Result, Tier};
pub use exec::{Link, MemoryStats, RunStats, Stages};
pub use graph::{Graph, Node, NodeId};
pub use hostpool::PooledAlloc;
pub use session::{Config, Generator, Session};
pub use storage::{MemoryConfig, Order};
pub use tensor::{
    all, broadcast_shapes, concatenate, s, stack, where_, Axes, Lstsq, Operand, SliceArg, Tensor,
    Unique,
};
