//! Errors of the core runtime: every failure is a typed value naming the op and the operands.

use crate::dtype::DType;
use thiserror::Error;

/// Result alias used throughout the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A memory tier, for out-of-memory reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Tier {
    /// A device's own memory.
    Device(usize),
    /// Host RAM.
    Host,
    /// The spill directory on disk.
    Disk,
}

/// Everything that can go wrong while building or running a graph.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// Two operands cannot be broadcast together or have incompatible core shapes.
    #[error("{op}: shapes {lhs:?} and {rhs:?} are not compatible")]
    ShapeMismatch {
        /// The operation.
        op: String,
        /// Left operand shape.
        lhs: Vec<usize>,
        /// Right operand shape.
        rhs: Vec<usize>,
    },
    /// An axis argument is outside `-ndim..ndim`.
    #[error(
        "{op}: axis {axis} is out of range for an array of {ndim} dimensions (shape {shape:?})"
    )]
    AxisOutOfRange {
        /// The operation.
        op: String,
        /// The axis as given.
        axis: isize,
        /// Number of dimensions.
        ndim: usize,
        /// The operand's shape.
        shape: Vec<usize>,
    },
    /// An integer index outside `-len..len` of the axis it indexes (numpy's IndexError).
    #[error(
        "{op}: index {index} is out of bounds for axis {axis} with size {len} (shape {shape:?})"
    )]
    IndexOutOfBounds {
        /// The operation.
        op: String,
        /// The index as given.
        index: i64,
        /// The axis indexed.
        axis: usize,
        /// Its length.
        len: usize,
        /// The indexed operand's shape.
        shape: Vec<usize>,
    },
    /// A reshape to a shape with a different number of elements.
    #[error(
        "reshape: cannot reshape array of shape {from:?} ({from_size} elements) into shape {to:?}"
    )]
    BadReshape {
        /// Source shape.
        from: Vec<usize>,
        /// Number of elements in the source.
        from_size: usize,
        /// Requested shape (-1 shown as usize::MAX).
        to: Vec<isize>,
    },
    /// A dtype an op does not accept.
    #[error("{op}: unsupported dtype{}: {dtypes:?}", if .dtypes.len() > 1 { " combination" } else { "" })]
    UnsupportedDType {
        /// The operation.
        op: String,
        /// The operand dtypes.
        dtypes: Vec<DType>,
    },
    /// A weak (Python) integer scalar that the integer dtype of the arithmetic cannot hold
    /// (numpy 2, NEP 50: OverflowError).
    #[error("{op}: Python integer {value} out of bounds for {dtype}")]
    ScalarOverflow {
        /// The operation.
        op: String,
        /// The scalar as given.
        value: i64,
        /// The dtype it had to fit.
        dtype: DType,
    },
    /// A generic invalid argument (bad permutation, bad slice step, ...).
    #[error("{op}: invalid argument: {msg}")]
    InvalidArgument {
        /// The operation.
        op: String,
        /// What is wrong.
        msg: String,
    },
    /// A reduction without identity over an empty extent (numpy raises ValueError).
    #[error(
        "{op}: zero-size array (shape {shape:?}) to reduction operation which has no identity"
    )]
    EmptyReduction {
        /// The operation.
        op: String,
        /// Operand shape.
        shape: Vec<usize>,
    },
    /// Tensors from different sessions were combined.
    #[error("{op}: operands belong to different sessions")]
    SessionMismatch {
        /// The operation.
        op: String,
    },
    /// A feature the backend does not provide.
    #[error("{op} is not supported by backend {backend}")]
    Unsupported {
        /// The operation.
        op: String,
        /// The backend.
        backend: String,
    },
    /// A tier ran out of memory and nothing could be spilled.
    #[error("out of memory on {tier:?}: requested {requested} bytes, {available} available")]
    OutOfMemory {
        /// The tier.
        tier: Tier,
        /// Bytes requested.
        requested: u64,
        /// Bytes available.
        available: u64,
    },
    /// No backend of the requested kind is available on this machine.
    #[error("backend {backend} is not available: {reason}")]
    BackendUnavailable {
        /// The backend.
        backend: String,
        /// Why.
        reason: String,
    },
    /// An error raised inside a backend.
    #[error("backend {backend}: {msg}")]
    Backend {
        /// The backend.
        backend: String,
        /// Message.
        msg: String,
    },
    /// Serialization failed.
    #[error("serialization: {0}")]
    Serde(String),
    /// I/O error (spill files, fixtures).
    #[error("i/o: {0}")]
    Io(String),
    /// A file Tessera reads or writes: missing, malformed (a header, a size, a dtype that
    /// does not match), or an i/o error; names the file and, for a chunk, its box.
    #[error("{path}: {msg}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        msg: String,
        /// Which kind of failure.
        kind: FileError,
    },
    /// A matrix a linear-algebra kernel cannot factor or solve (numpy's `LinAlgError`): a
    /// singular matrix for `solve`/`inv`, one that is not positive definite for `cholesky`,
    /// an SVD or eigensolver that does not converge.
    #[error("{op}: {msg}")]
    LinAlg {
        /// The operation.
        op: String,
        /// What went wrong.
        msg: String,
    },
    /// A panic inside a run (a kernel, a copy, the executor itself), caught and stopped there:
    /// the run is abandoned, the session stays usable.
    #[error("{op} panicked: {message}")]
    Panic {
        /// What was running: the step or kernel (`kernel fused (chunk 12) on device 1`).
        op: String,
        /// The panic's message.
        message: String,
    },
    /// The run was stopped by [`crate::exec::cancel_runs`] (Ctrl-C in Python): its partial
    /// results are dropped and the session stays usable.
    #[error("the run was cancelled")]
    Cancelled,
    /// Another executor (Ray) could not finish the run: a chunk task failed or was lost past
    /// its retries. Names the executor and the chunk task.
    #[error("{executor} executor: {message}")]
    Executor {
        /// Which executor (`ray`).
        executor: String,
        /// What failed, naming the chunk task (its ops and shape).
        message: String,
    },
}

impl Error {
    /// `Panic` from a caught panic's payload while running `op`.
    pub fn from_panic(op: impl Into<String>, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        Error::Panic {
            op: op.into(),
            message,
        }
    }
}

impl Error {
    pub(crate) fn shape(op: &str, lhs: &[usize], rhs: &[usize]) -> Self {
        Error::ShapeMismatch {
            op: op.to_string(),
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
        }
    }
    pub(crate) fn invalid(op: &str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op: op.to_string(),
            msg: msg.into(),
        }
    }
    pub(crate) fn dtype(op: &str, dtypes: &[DType]) -> Self {
        Error::UnsupportedDType {
            op: op.to_string(),
            dtypes: dtypes.to_vec(),
        }
    }
}

/// The kinds of [`Error::File`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileError {
    /// The file does not exist.
    NotFound,
    /// Its contents are not what they claim or what was asked for (a bad header, too short).
    Malformed,
    /// Reading or writing it failed (permissions, a full disk, a device error).
    Io,
    /// It holds a dtype or layout Tessera does not read (complex numbers, structured dtypes).
    Unsupported,
}

impl Error {
    /// An [`Error::File`] for `path`.
    pub fn file(path: &std::path::Path, kind: FileError, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.display().to_string(),
            msg: msg.into(),
            kind,
        }
    }

    /// An [`Error::File`] from an i/o error on `path` while doing `what`.
    pub fn file_io(path: &std::path::Path, what: &str, e: &std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => FileError::NotFound,
            std::io::ErrorKind::UnexpectedEof => FileError::Malformed,
            _ => FileError::Io,
        };
        let why = match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the file ends before the data (cut short?)".into()
            }
            _ => e.to_string(),
        };
        Error::file(path, kind, format!("{what}: {why}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

impl Error {
    /// `UnsupportedDType` for one operand.
    pub fn dtype_unsupported(op: &str, d: DType) -> Self {
        Error::dtype(op, &[d])
    }
}

impl Error {
    /// `InvalidArgument` for `op`.
    pub fn invalid_arg(op: &str, msg: impl Into<String>) -> Self {
        Error::invalid(op, msg)
    }
}
