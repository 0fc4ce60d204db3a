//! `tessera._tessera`: the Python extension module. A thin layer over the Rust runtime: every
//! function records a node in the process's session graph (or runs it, in eager mode); the
//! pure-Python package (`python/tessera`) gives it numpy's and the Array API's names.
//!
//! Errors become the exceptions numpy raises (see [`to_py`]); a Rust panic inside a call
//! becomes a `RuntimeError` instead of crashing the interpreter (PyO3 turns it into a
//! `PanicException`, and the runtime's executors already catch panics in kernels).

use ndarray::ArrayD;
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{
    PyIndexError, PyMemoryError, PyNotImplementedError, PyOSError, PyOverflowError, PyRuntimeError,
    PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyEllipsis, PyFloat, PyInt, PyList, PySlice, PyTuple};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tessera::op::{BinaryOp, ReduceOp, UnaryOp};
use tessera::{
    Axes, DType, Error, HostArray, MemoryConfig, Operand, Scalar, Session, SliceArg, Tensor,
};

mod interrupt;
mod remote;
mod shared;

/// The extension's Rust allocations (chunk buffers, results) go through Tessera's host pool, as
/// in the CLI: a loop that makes a fresh 400 MB output per step reuses freed buffers instead of
/// paying the OS's page faults and zeroing each time.
#[global_allocator]
static ALLOC: tessera::PooledAlloc = tessera::PooledAlloc;

/// The process's session and the backend name it runs on.
struct Current {
    sess: Session,
    backend: String,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);
/// Set in a child process after `fork()`: rayon's worker threads (and any GPU context) did not
/// survive the fork, so a run there would wait for threads that do not exist.
static FORKED: AtomicBool = AtomicBool::new(false);

fn current() -> MutexGuard<'static, Option<Current>> {
    CURRENT.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_fork() -> PyResult<()> {
    if FORKED.load(Ordering::Relaxed) {
        return Err(PyRuntimeError::new_err(
            "tessera was used before this process was forked; its worker threads do not exist \
             in the child. Start worker processes with multiprocessing's 'spawn' or \
             'forkserver' context (or fork before first use of tessera)",
        ));
    }
    Ok(())
}

/// The session, created on first use on the best backend present.
fn sess() -> PyResult<Session> {
    check_fork()?;
    let mut cur = current();
    if cur.is_none() {
        let s = tessera::session("auto").map_err(to_py)?;
        let backend = s.backend().name().to_string();
        *cur = Some(Current { sess: s, backend });
    }
    Ok(cur.as_ref().expect("set above").sess.clone())
}

/// Maps a runtime error to the exception numpy raises for the same mistake.
fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::ShapeMismatch { .. } | Error::BadReshape { .. } | Error::EmptyReduction { .. } => {
            PyValueError::new_err(msg)
        }
        Error::AxisOutOfRange { .. } => Python::attach(|py| {
            match py
                .import("numpy.exceptions")
                .and_then(|m| m.getattr("AxisError"))
                .and_then(|c| c.call1((msg.clone(),)))
            {
                Ok(inst) => PyErr::from_value(inst),
                Err(_) => PyIndexError::new_err(msg),
            }
        }),
        Error::UnsupportedDType { .. } | Error::SessionMismatch { .. } => PyTypeError::new_err(msg),
        Error::ScalarOverflow { .. } => PyOverflowError::new_err(msg),
        Error::InvalidArgument { .. } => PyValueError::new_err(msg),
        Error::Unsupported { .. } => PyNotImplementedError::new_err(msg),
        Error::OutOfMemory { .. } => PyMemoryError::new_err(msg),
        Error::Io(_) => PyOSError::new_err(msg),
        Error::File { kind, .. } => match kind {
            tessera::FileError::NotFound => pyo3::exceptions::PyFileNotFoundError::new_err(msg),
            tessera::FileError::Malformed => PyValueError::new_err(msg),
            tessera::FileError::Io => PyOSError::new_err(msg),
            tessera::FileError::Unsupported => PyTypeError::new_err(msg),
        },
        Error::LinAlg { .. } => Python::attach(|py| {
            match py
                .import("numpy.linalg")
                .and_then(|m| m.getattr("LinAlgError"))
                .and_then(|c| c.call1((msg.clone(),)))
            {
                Ok(inst) => PyErr::from_value(inst),
                Err(_) => PyValueError::new_err(msg),
            }
        }),
        Error::Cancelled => pyo3::exceptions::PyKeyboardInterrupt::new_err(msg),
        Error::IndexOutOfBounds { .. } => PyIndexError::new_err(msg),
        // The driver's own exception (a kernel's LinAlgError stays one), else ExecutorError.
        Error::Executor { .. } => {
            remote::take_error().unwrap_or_else(|| remote::ExecutorError::new_err(msg))
        }
        _ => PyRuntimeError::new_err(msg),
    }
}

trait PyRes<T> {
    fn py(self) -> PyResult<T>;
}
impl<T> PyRes<T> for tessera::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// The dtype numpy calls `name` (as [`DType::name`] spells it).
fn dtype_of(name: &str) -> PyResult<DType> {
    [DType::Bool, DType::I32, DType::I64, DType::F32, DType::F64]
        .into_iter()
        .find(|d| d.name() == name)
        .ok_or_else(|| {
            PyTypeError::new_err(format!(
                "dtype {name} is not supported by tessera (it has bool, int32, int64, float32, \
                 float64)"
            ))
        })
}

/// A lazy tensor of the runtime.
#[pyclass(name = "RawTensor", module = "tessera._tessera", frozen)]
struct PyTensor {
    t: Tensor,
}

fn wrap(t: tessera::Result<Tensor>) -> PyResult<PyTensor> {
    let t = t.py()?;
    if let Some(e) = t.error() {
        return Err(to_py(e.clone()));
    }
    Ok(PyTensor { t })
}

/// A Python scalar operand (NEP 50 "weak": it takes the tensor's dtype kind).
fn scalar_of(v: &Bound<'_, PyAny>) -> PyResult<Option<Scalar>> {
    if v.is_instance_of::<PyBool>() {
        return Ok(Some(Scalar::Bool(v.extract()?)));
    }
    if v.is_instance_of::<PyInt>() {
        return match v.extract::<i64>() {
            Ok(i) => Ok(Some(Scalar::Int(i))),
            Err(_) => Err(PyOverflowError::new_err(format!(
                "Python integer {v} out of bounds for int64"
            ))),
        };
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(Some(Scalar::Float(v.extract()?)));
    }
    Ok(None)
}

/// numpy's and the Array API's names for the runtime's elementwise ops.
fn unary_of(name: &str) -> Option<UnaryOp> {
    let name = match name {
        "bitwise_invert" => "invert",
        n => n,
    };
    UnaryOp::from_name(name)
}

fn binary_of(name: &str) -> Option<BinaryOp> {
    let name = match name {
        "divide" => "true_divide",
        "bitwise_left_shift" => "left_shift",
        "bitwise_right_shift" => "right_shift",
        n => n,
    };
    BinaryOp::from_name(name)
}

fn reduce_of(name: &str) -> PyResult<ReduceOp> {
    use ReduceOp::*;
    Ok(match name {
        "sum" => Sum,
        "prod" => Prod,
        "mean" => Mean,
        "var" => Var,
        "std" => Std,
        "min" => Min,
        "max" => Max,
        "any" => Any,
        "all" => All,
        _ => return Err(PyValueError::new_err(format!("no reduction named {name}"))),
    })
}

/// A tensor operand or a Python scalar.
enum Arg {
    T(Tensor),
    S(Scalar),
}

impl Arg {
    fn extract(v: &Bound<'_, PyAny>) -> PyResult<Arg> {
        if let Ok(t) = v.cast::<PyTensor>() {
            return Ok(Arg::T(t.get().t.clone()));
        }
        match scalar_of(v)? {
            Some(s) => Ok(Arg::S(s)),
            None => Err(PyTypeError::new_err(format!(
                "operand of type {} is neither a tessera tensor nor a Python scalar",
                v.get_type().name()?
            ))),
        }
    }
    fn operand(&self) -> Operand<'_> {
        match self {
            Arg::T(t) => Operand::T(t),
            Arg::S(s) => Operand::S(*s),
        }
    }
}

fn axes_of(axis: Option<Vec<isize>>) -> Axes {
    match axis {
        None => Axes::All,
        Some(v) => Axes::Some(v),
    }
}

/// Runs `f` with the GIL released, in a way Ctrl-C can stop (see [`interrupt`]).
fn run_detached<T: Send + 'static>(
    py: Python<'_>,
    f: impl FnOnce() -> tessera::Result<T> + Send + 'static,
) -> PyResult<T> {
    interrupt::run(py, f)
}

/// Owns a kept result while numpy arrays view it.
#[pyclass(frozen)]
struct Kept {
    _data: Arc<HostArray>,
}

/// A read-only numpy array over a result the graph keeps: one copy of the data, shared by
/// numpy and later graphs (writing to it would change what those graphs read).
fn kept_to_py(py: Python<'_>, data: Arc<HostArray>) -> PyResult<Bound<'_, PyAny>> {
    let owner = Bound::new(
        py,
        Kept {
            _data: data.clone(),
        },
    )?
    .into_any();
    // SAFETY: `owner` holds the Arc, so the buffer outlives the numpy array (numpy keeps the
    // container as the array's base); a kept result is never mutated or reallocated.
    let arr = unsafe {
        match data.as_ref() {
            HostArray::Bool(x) => PyArrayDyn::borrow_from_array(x, owner).into_any(),
            HostArray::I32(x) => PyArrayDyn::borrow_from_array(x, owner).into_any(),
            HostArray::I64(x) => PyArrayDyn::borrow_from_array(x, owner).into_any(),
            HostArray::F32(x) => PyArrayDyn::borrow_from_array(x, owner).into_any(),
            HostArray::F64(x) => PyArrayDyn::borrow_from_array(x, owner).into_any(),
        }
    };
    arr.getattr("flags")?.setattr("writeable", false)?;
    Ok(arr)
}

#[pymethods]
impl PyTensor {
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.t.shape())
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        self.t.dtype().name()
    }
    #[getter]
    fn ndim(&self) -> usize {
        self.t.ndim()
    }
    #[getter]
    fn size(&self) -> usize {
        self.t.size()
    }
    /// The graph node's id (for tests of graph sharing).
    #[getter]
    fn node(&self) -> PyResult<u32> {
        Ok(self.t.node_id().py()?.0)
    }
    /// The requested chunk shape, or None when chunks are sized from the byte budget.
    #[getter]
    fn chunks<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        match self.t.chunk_hint() {
            Some(c) => Ok(Some(PyTuple::new(py, c)?)),
            None => Ok(None),
        }
    }
    /// Elements the graph behind this tensor would compute (0 when its value is held).
    #[getter]
    fn pending_elements(&self) -> usize {
        self.t.pending_elements()
    }
    /// True when the tensor's value is held (executed and kept, or user data).
    #[getter]
    fn is_materialized(&self) -> bool {
        self.t.is_materialized()
    }

    fn unary(&self, name: &str) -> PyResult<PyTensor> {
        let op = unary_of(name)
            .ok_or_else(|| PyNotImplementedError::new_err(format!("no elementwise op {name}")))?;
        wrap(self.t.unary(op))
    }
    /// `self <op> other`, or `other <op> self` when `reflected`.
    #[pyo3(signature = (name, other, reflected=false))]
    fn binary(&self, name: &str, other: &Bound<'_, PyAny>, reflected: bool) -> PyResult<PyTensor> {
        let op = binary_of(name)
            .ok_or_else(|| PyNotImplementedError::new_err(format!("no elementwise op {name}")))?;
        let o = Arg::extract(other)?;
        let me = Operand::T(&self.t);
        if reflected {
            wrap(self.t.binary_op(op, o.operand(), me))
        } else {
            wrap(self.t.binary_op(op, me, o.operand()))
        }
    }
    fn where_(&self, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let (a, b) = (Arg::extract(a)?, Arg::extract(b)?);
        wrap(self.t.where_(a.operand(), b.operand()))
    }
    fn clip(&self, lo: &Bound<'_, PyAny>, hi: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let (lo, hi) = (Arg::extract(lo)?, Arg::extract(hi)?);
        wrap(self.t.clip(lo.operand(), hi.operand()))
    }
    fn astype(&self, dtype: &str) -> PyResult<PyTensor> {
        wrap(self.t.astype(dtype_of(dtype)?))
    }
    #[pyo3(signature = (name, axis=None, keepdims=false, ddof=0))]
    fn reduce(
        &self,
        name: &str,
        axis: Option<Vec<isize>>,
        keepdims: bool,
        ddof: u32,
    ) -> PyResult<PyTensor> {
        wrap(
            self.t
                .reduce(reduce_of(name)?, axes_of(axis), keepdims, ddof),
        )
    }
    /// Stable sort (or argsort) along `axis`.
    #[pyo3(signature = (axis, descending=false, arg=false))]
    fn sort(&self, axis: isize, descending: bool, arg: bool) -> PyResult<PyTensor> {
        wrap(if arg {
            self.t.argsort(axis, descending)
        } else {
            self.t.sort(axis, descending)
        })
    }
    /// Cumulative sum (or product) along `axis` (None: flattened), in `dtype` when given.
    #[pyo3(signature = (prod, axis=None, dtype=None, include_initial=false))]
    fn scan(
        &self,
        prod: bool,
        axis: Option<isize>,
        dtype: Option<&str>,
        include_initial: bool,
    ) -> PyResult<PyTensor> {
        let dt = dtype.map(dtype_of).transpose()?;
        wrap(if prod {
            self.t.cumprod(axis, dt, include_initial)
        } else {
            self.t.cumsum(axis, dt, include_initial)
        })
    }
    /// Elements (slices) at integer `indices` along `axis` (None: flattened).
    #[pyo3(signature = (indices, axis=None))]
    fn take(&self, indices: &PyTensor, axis: Option<isize>) -> PyResult<PyTensor> {
        wrap(self.t.take(&indices.t, axis))
    }
    /// numpy's take_along_axis.
    fn take_along_axis(&self, indices: &PyTensor, axis: isize) -> PyResult<PyTensor> {
        wrap(self.t.take_along_axis(&indices.t, axis))
    }
    /// The coordinates of the non-zero elements, one int64 tensor per dimension (runs the
    /// stage that measures their number).
    fn nonzero(&self) -> PyResult<Vec<PyTensor>> {
        self.t
            .nonzero()
            .py()?
            .into_iter()
            .map(|t| wrap(Ok(t)))
            .collect()
    }
    /// `self[mask]` for a bool mask over the leading dimensions (runs the measuring stage).
    fn mask_select(&self, mask: &PyTensor) -> PyResult<PyTensor> {
        wrap(self.t.mask_select(&mask.t))
    }
    /// [values, first indices, inverse, counts] of the flattened tensor (runs the sort and
    /// the measuring stage).
    fn unique(&self, equal_nan: bool) -> PyResult<Vec<PyTensor>> {
        let u = self.t.unique(equal_nan).py()?;
        [u.values, u.indices, u.inverse, u.counts]
            .into_iter()
            .map(|t| wrap(Ok(t)))
            .collect()
    }
    /// numpy's searchsorted of `v` in this sorted 1-D tensor: int64 positions.
    #[pyo3(signature = (v, right=false))]
    fn searchsorted(&self, v: &PyTensor, right: bool) -> PyResult<PyTensor> {
        wrap(self.t.searchsorted(&v.t, right))
    }
    /// numpy's bincount (the data's max is executed first: the length depends on it).
    #[pyo3(signature = (weights=None, minlength=0))]
    fn bincount(&self, weights: Option<&PyTensor>, minlength: usize) -> PyResult<PyTensor> {
        wrap(self.t.bincount(weights.map(|w| &w.t), minlength))
    }
    /// numpy's histogram with `bins` equal bins: [counts, edges].
    #[pyo3(signature = (bins, range=None, weights=None, density=false))]
    fn histogram(
        &self,
        bins: usize,
        range: Option<(f64, f64)>,
        weights: Option<&PyTensor>,
        density: bool,
    ) -> PyResult<Vec<PyTensor>> {
        let (h, e) = self
            .t
            .histogram(bins, range, weights.map(|w| &w.t), density)
            .py()?;
        Ok(vec![wrap(Ok(h))?, wrap(Ok(e))?])
    }
    /// numpy's histogram with explicit bin edges: [counts, edges].
    #[pyo3(signature = (edges, weights=None, density=false))]
    fn histogram_edges(
        &self,
        edges: &PyTensor,
        weights: Option<&PyTensor>,
        density: bool,
    ) -> PyResult<Vec<PyTensor>> {
        let (h, e) = self
            .t
            .histogram_edges(&edges.t, weights.map(|w| &w.t), density)
            .py()?;
        Ok(vec![wrap(Ok(h))?, wrap(Ok(e))?])
    }
    /// numpy's partition (or argpartition) at `kth` along `axis`: the stable sort.
    #[pyo3(signature = (kth, axis=-1, arg=false))]
    fn partition(&self, kth: Vec<isize>, axis: isize, arg: bool) -> PyResult<PyTensor> {
        wrap(if arg {
            self.t.argpartition(&kth, axis)
        } else {
            self.t.partition(&kth, axis)
        })
    }
    /// Brute-force k nearest neighbours of `queries`' rows among this tensor's rows:
    /// [squared distances, int64 row positions], nearest first.
    fn knn(&self, queries: &PyTensor, k: usize) -> PyResult<Vec<PyTensor>> {
        let (d, i) = self.t.knn(&queries.t, k).py()?;
        Ok(vec![wrap(Ok(d))?, wrap(Ok(i))?])
    }
    /// The k largest (or smallest) along `axis`, best first: [values, int64 positions].
    #[pyo3(signature = (k, axis=-1, largest=true))]
    fn topk(&self, k: usize, axis: isize, largest: bool) -> PyResult<Vec<PyTensor>> {
        let (v, i) = self.t.topk(k, axis, largest).py()?;
        Ok(vec![wrap(Ok(v))?, wrap(Ok(i))?])
    }
    #[pyo3(signature = (name, axis=None))]
    fn argreduce(&self, name: &str, axis: Option<isize>) -> PyResult<PyTensor> {
        wrap(match name {
            "argmin" => self.t.argmin(axis),
            "argmax" => self.t.argmax(axis),
            _ => return Err(PyValueError::new_err(format!("no reduction named {name}"))),
        })
    }
    fn reshape(&self, shape: Vec<isize>) -> PyResult<PyTensor> {
        wrap(self.t.reshape(&shape))
    }
    #[pyo3(signature = (axes=None))]
    fn transpose(&self, axes: Option<Vec<isize>>) -> PyResult<PyTensor> {
        wrap(self.t.transpose(axes.as_deref()))
    }
    fn broadcast_to(&self, shape: Vec<usize>) -> PyResult<PyTensor> {
        wrap(self.t.broadcast_to(&shape))
    }
    #[pyo3(signature = (axes=None))]
    fn squeeze(&self, axes: Option<Vec<isize>>) -> PyResult<PyTensor> {
        wrap(self.t.squeeze(axes.as_deref()))
    }
    fn expand_dims(&self, axis: isize) -> PyResult<PyTensor> {
        wrap(self.t.expand_dims(axis))
    }
    /// Basic indexing: a list of ints, slices, None and Ellipsis.
    fn index(&self, items: &Bound<'_, PyList>) -> PyResult<PyTensor> {
        let mut args = Vec::with_capacity(items.len());
        for it in items.iter() {
            args.push(slice_arg(&it)?);
        }
        // numpy raises IndexError for an index out of bounds or too many indices.
        match self.t.slice(&args) {
            Err(e @ Error::InvalidArgument { .. }) => Err(PyIndexError::new_err(e.to_string())),
            r => wrap(r),
        }
    }
    fn positive(&self) -> PyResult<PyTensor> {
        wrap(self.t.positive())
    }
    #[pyo3(signature = (axes=None))]
    fn flip(&self, axes: Option<Vec<isize>>) -> PyResult<PyTensor> {
        wrap(self.t.flip(axes.as_deref()))
    }
    #[pyo3(signature = (shift, axes=None))]
    fn roll(&self, shift: Vec<isize>, axes: Option<Vec<isize>>) -> PyResult<PyTensor> {
        wrap(self.t.roll(&shift, axes.as_deref()))
    }
    fn tile(&self, reps: Vec<usize>) -> PyResult<PyTensor> {
        wrap(self.t.tile(&reps))
    }
    #[pyo3(signature = (repeats, axis=None))]
    fn repeat(&self, repeats: i64, axis: Option<isize>) -> PyResult<PyTensor> {
        wrap(self.t.repeat(repeats, axis))
    }
    fn moveaxis(&self, src: Vec<isize>, dst: Vec<isize>) -> PyResult<PyTensor> {
        wrap(self.t.moveaxis(&src, &dst))
    }
    fn matrix_transpose(&self) -> PyResult<PyTensor> {
        wrap(self.t.matrix_transpose())
    }
    fn expand_dims_axes(&self, axes: Vec<isize>) -> PyResult<PyTensor> {
        wrap(self.t.expand_dims_axes(&axes))
    }
    fn unstack(&self, axis: isize) -> PyResult<Vec<PyTensor>> {
        self.t
            .unstack(axis)
            .py()?
            .into_iter()
            .map(|t| wrap(Ok(t)))
            .collect()
    }
    fn tril(&self, k: i64) -> PyResult<PyTensor> {
        wrap(self.t.tril(k))
    }
    fn triu(&self, k: i64) -> PyResult<PyTensor> {
        wrap(self.t.triu(k))
    }
    #[pyo3(signature = (n, axis, prepend=None, append=None))]
    fn diff(
        &self,
        n: usize,
        axis: isize,
        prepend: Option<&PyTensor>,
        append: Option<&PyTensor>,
    ) -> PyResult<PyTensor> {
        wrap(
            self.t
                .diff(n, axis, prepend.map(|p| &p.t), append.map(|a| &a.t)),
        )
    }
    fn vecdot(&self, other: &PyTensor, axis: isize) -> PyResult<PyTensor> {
        wrap(self.t.vecdot(&other.t, axis))
    }
    #[pyo3(signature = (axis=None, keepdims=false))]
    fn count_nonzero(&self, axis: Option<Vec<isize>>, keepdims: bool) -> PyResult<PyTensor> {
        wrap(self.t.count_nonzero(axes_of(axis), keepdims))
    }
    fn matmul(&self, other: &PyTensor) -> PyResult<PyTensor> {
        wrap(self.t.matmul(&other.t))
    }
    fn dot(&self, other: &PyTensor) -> PyResult<PyTensor> {
        wrap(self.t.dot(&other.t))
    }
    fn tensordot(&self, other: &PyTensor, a: Vec<isize>, b: Vec<isize>) -> PyResult<PyTensor> {
        wrap(self.t.tensordot(&other.t, &a, &b))
    }
    /// The dense linear-algebra kernels by numpy's name: a list of result tensors (Q, R;
    /// U, S, Vh; w, V; sign, logabsdet; or one). `other` is the right-hand side of solves;
    /// `flag` is `complete` (qr), `full_matrices` (svd), `upper` (cholesky); `tol` the
    /// cutoff (pinv, matrix_rank); `n` the power (matrix_power) or offset (diagonal, trace).
    #[pyo3(signature = (name, other=None, flag=false, tol=None, n=0))]
    fn linalg(
        &self,
        name: &str,
        other: Option<&PyTensor>,
        flag: bool,
        tol: Option<f64>,
        n: i64,
    ) -> PyResult<Vec<PyTensor>> {
        let t = &self.t;
        let rhs = || {
            other.map(|o| &o.t).ok_or_else(|| {
                PyValueError::new_err(format!("linalg.{name} needs a second operand"))
            })
        };
        let v: Vec<tessera::Tensor> = match name {
            "qr" => t.qr(flag).map(|(q, r)| vec![q, r]),
            "qr_r" => t.qr_r().map(|r| vec![r]),
            "svd" => t.svd(flag).map(|(u, s, vh)| vec![u, s, vh]),
            "svdvals" => t.svdvals().map(|x| vec![x]),
            "cholesky" => t.cholesky(flag).map(|x| vec![x]),
            "eigh" => t.eigh().map(|(w, v)| vec![w, v]),
            "eigvalsh" => t.eigvalsh().map(|x| vec![x]),
            "solve" => t.solve(rhs()?).map(|x| vec![x]),
            "inv" => t.inv().map(|x| vec![x]),
            "det" => t.det().map(|x| vec![x]),
            "slogdet" => t.slogdet().map(|(s, l)| vec![s, l]),
            "pinv" => t.pinv(tol).map(|x| vec![x]),
            "matrix_rank" => t.matrix_rank(tol).map(|x| vec![x]),
            "lstsq" => t
                .lstsq(rhs()?, tol)
                .map(|l| vec![l.x, l.residuals, l.rank, l.s]),
            "matrix_power" => t.matrix_power(n).map(|x| vec![x]),
            "diagonal" => t.diagonal(n).map(|x| vec![x]),
            "trace" => t.trace(n).map(|x| vec![x]),
            _ => return Err(PyValueError::new_err(format!("no linalg function {name}"))),
        }
        .map_err(to_py)?;
        Ok(v.into_iter().map(|t| PyTensor { t }).collect())
    }
    fn with_chunks(&self, chunk: Vec<usize>) -> PyResult<PyTensor> {
        wrap(self.t.with_chunks(&chunk))
    }
    /// Runs the graph behind this tensor (GIL released; Ctrl-C stops it) and returns the
    /// value as a read-only numpy array. The result is kept in the graph: later graphs read it
    /// instead of recomputing, and it is freed with the tensor.
    fn execute<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        check_fork()?;
        let t = self.t.clone();
        let a = run_detached(py, move || t.materialize())?;
        kept_to_py(py, a)
    }
    fn __repr__(&self) -> String {
        format!("{:?}", self.t)
    }
}

fn slice_arg(it: &Bound<'_, PyAny>) -> PyResult<SliceArg> {
    if it.is_none() {
        return Ok(SliceArg::NewAxis);
    }
    if it.is_instance_of::<PyEllipsis>() {
        return Ok(SliceArg::Ellipsis);
    }
    if let Ok(s) = it.cast::<PySlice>() {
        let get = |name: &str| -> PyResult<Option<isize>> {
            let v = s.getattr(name)?;
            if v.is_none() {
                Ok(None)
            } else {
                let i: i128 = v
                    .call_method0("__index__")?
                    .extract()
                    .map_err(|_| PyIndexError::new_err("slice indices must be integers or None"))?;
                // Beyond isize a bound only clamps (as numpy's PySlice_AdjustIndices does).
                Ok(Some(
                    i.clamp(isize::MIN as i128 + 1, isize::MAX as i128) as isize
                ))
            }
        };
        let step = get("step")?.unwrap_or(1);
        if step == 0 {
            return Err(PyValueError::new_err("slice step cannot be zero"));
        }
        return Ok(SliceArg::Range {
            start: get("start")?,
            stop: get("stop")?,
            step,
        });
    }
    if it.is_instance_of::<PyBool>() {
        return Err(PyIndexError::new_err(
            "boolean indices are not supported (boolean masks are issue 19's data-dependent \
             shapes)",
        ));
    }
    match it.call_method0("__index__") {
        Ok(i) => {
            let i: i64 = i
                .extract()
                .map_err(|_| PyIndexError::new_err(format!("index {it} is out of bounds")))?;
            Ok(SliceArg::Index(i as isize))
        }
        Err(_) => Err(PyIndexError::new_err(format!(
            "only integers, slices (`:`), ellipsis (`...`), None and tessera tensors of \
             integers are valid indices; got {}",
            it.get_type().name()?
        ))),
    }
}

fn chunked(t: Tensor, chunk: Option<Vec<usize>>) -> PyResult<PyTensor> {
    match chunk {
        Some(c) => wrap(t.with_chunks(&c)),
        None => wrap(Ok(t)),
    }
}

#[pyfunction]
#[pyo3(signature = (shape, value, dtype, chunk=None))]
fn full(
    shape: Vec<usize>,
    value: &Bound<'_, PyAny>,
    dtype: &str,
    chunk: Option<Vec<usize>>,
) -> PyResult<PyTensor> {
    let s = sess()?;
    let v = scalar_of(value)?
        .ok_or_else(|| PyTypeError::new_err("full: the fill value must be a Python scalar"))?;
    chunked(s.full(&shape, v, dtype_of(dtype)?), chunk)
}

#[pyfunction]
#[pyo3(signature = (start, stop, step, dtype, chunk=None))]
fn arange(
    start: f64,
    stop: f64,
    step: f64,
    dtype: &str,
    chunk: Option<Vec<usize>>,
) -> PyResult<PyTensor> {
    let s = sess()?;
    chunked(s.arange(start, stop, step, dtype_of(dtype)?).py()?, chunk)
}

#[pyfunction]
#[pyo3(signature = (start, stop, num, endpoint, dtype, chunk=None))]
fn linspace(
    start: f64,
    stop: f64,
    num: usize,
    endpoint: bool,
    dtype: &str,
    chunk: Option<Vec<usize>>,
) -> PyResult<PyTensor> {
    let s = sess()?;
    chunked(
        s.linspace(start, stop, num, endpoint, dtype_of(dtype)?),
        chunk,
    )
}

#[pyfunction]
#[pyo3(signature = (n, m, k, dtype, chunk=None))]
fn eye(
    n: usize,
    m: Option<usize>,
    k: i64,
    dtype: &str,
    chunk: Option<Vec<usize>>,
) -> PyResult<PyTensor> {
    let s = sess()?;
    chunked(s.eye(n, m, k, dtype_of(dtype)?), chunk)
}

/// A tensor over a numpy array's data (bool, int32, int64, float32, float64; any strides).
#[pyfunction]
#[pyo3(signature = (array, chunk=None))]
fn from_numpy(array: &Bound<'_, PyUntypedArray>, chunk: Option<Vec<usize>>) -> PyResult<PyTensor> {
    let s = sess()?;
    let host = host_from_numpy(array)?;
    chunked(s.from_host(host), chunk)
}

/// A tensor reading `array`'s buffer in place (no copy), or `None` when the array cannot be
/// read in place (a dtype Tessera lacks, or unaligned elements): the caller copies it instead.
#[pyfunction]
#[pyo3(signature = (array, chunk=None))]
fn from_numpy_shared(
    array: &Bound<'_, PyUntypedArray>,
    chunk: Option<Vec<usize>>,
) -> PyResult<Option<PyTensor>> {
    let Some(buf) = shared::NumpyBuffer::of(array) else {
        return Ok(None);
    };
    let s = sess()?;
    chunked(s.from_external(Arc::new(buf)), chunk).map(Some)
}

fn host_from_numpy(array: &Bound<'_, PyUntypedArray>) -> PyResult<HostArray> {
    fn owned<T: numpy::Element + Copy>(a: &Bound<'_, PyUntypedArray>) -> PyResult<ArrayD<T>> {
        // Elements are read as `T`: a buffer not aligned for it (a view into a byte buffer,
        // an object store's record) is first copied by numpy, which aligns what it allocates.
        let align = std::mem::align_of::<T>();
        let a = a.cast::<PyArrayDyn<T>>()?;
        let aligned = (a.data() as usize).is_multiple_of(align)
            && a.strides().iter().all(|s| s % align as isize == 0);
        let copy;
        let a = if aligned {
            a
        } else {
            copy = a.call_method0("copy")?.cast_into::<PyArrayDyn<T>>()?;
            &copy
        };
        let r = a.try_readonly().map_err(|e| {
            PyValueError::new_err(format!("the numpy array is being written elsewhere: {e}"))
        })?;
        Ok(r.as_array().to_owned())
    }
    if array.cast::<PyArrayDyn<bool>>().is_ok() {
        return Ok(HostArray::Bool(owned(array)?));
    }
    if array.cast::<PyArrayDyn<i32>>().is_ok() {
        return Ok(HostArray::I32(owned(array)?));
    }
    if array.cast::<PyArrayDyn<i64>>().is_ok() {
        return Ok(HostArray::I64(owned(array)?));
    }
    if array.cast::<PyArrayDyn<f32>>().is_ok() {
        return Ok(HostArray::F32(owned(array)?));
    }
    if array.cast::<PyArrayDyn<f64>>().is_ok() {
        return Ok(HostArray::F64(owned(array)?));
    }
    Err(PyTypeError::new_err(format!(
        "numpy dtype {} is not supported by tessera (it has bool, int32, int64, float32, \
         float64)",
        array.dtype()
    )))
}

/// A generator with its own draw counter: consecutive draws of one generator differ.
#[pyclass(name = "RawGenerator", module = "tessera._tessera", frozen)]
struct PyGenerator {
    g: tessera::Generator,
}

#[pymethods]
impl PyGenerator {
    #[new]
    fn new(seed: u64) -> PyResult<Self> {
        Ok(PyGenerator {
            g: sess()?.random(seed),
        })
    }
    #[pyo3(signature = (dist, shape, dtype, a=0.0, b=1.0, chunk=None))]
    fn draw(
        &self,
        dist: &str,
        shape: Vec<usize>,
        dtype: &str,
        a: f64,
        b: f64,
        chunk: Option<Vec<usize>>,
    ) -> PyResult<PyTensor> {
        let d = dtype_of(dtype)?;
        let t = match dist {
            "uniform" => self.g.uniform(a, b, &shape, d),
            "normal" => self.g.normal(a, b, &shape, d),
            _ => return Err(PyValueError::new_err(format!("no distribution {dist}"))),
        };
        chunked(t, chunk)
    }
    #[pyo3(signature = (low, high, shape, dtype, chunk=None))]
    fn integers(
        &self,
        low: i64,
        high: i64,
        shape: Vec<usize>,
        dtype: &str,
        chunk: Option<Vec<usize>>,
    ) -> PyResult<PyTensor> {
        chunked(
            self.g.randint(low, high, &shape, dtype_of(dtype)?).py()?,
            chunk,
        )
    }
}

fn tensors_of(list: &Bound<'_, PyList>) -> PyResult<Vec<Tensor>> {
    list.iter()
        .map(|x| Ok(x.cast::<PyTensor>()?.get().t.clone()))
        .collect()
}

#[pyfunction]
fn concatenate(list: &Bound<'_, PyList>, axis: isize) -> PyResult<PyTensor> {
    let ts = tensors_of(list)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    wrap(tessera::concatenate(&refs, axis))
}

#[pyfunction]
fn stack(list: &Bound<'_, PyList>, axis: isize) -> PyResult<PyTensor> {
    let ts = tensors_of(list)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    wrap(tessera::stack(&refs, axis))
}

#[pyfunction]
fn broadcast_arrays(list: &Bound<'_, PyList>) -> PyResult<Vec<PyTensor>> {
    let ts = tensors_of(list)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    tessera::tensor::broadcast_arrays(&refs)
        .py()?
        .into_iter()
        .map(|t| wrap(Ok(t)))
        .collect()
}

#[pyfunction]
fn meshgrid(list: &Bound<'_, PyList>, indexing: &str) -> PyResult<Vec<PyTensor>> {
    let ts = tensors_of(list)?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    tessera::tensor::meshgrid(&refs, indexing)
        .py()?
        .into_iter()
        .map(|t| wrap(Ok(t)))
        .collect()
}

/// Executes several tensors in one run (shared work done once); returns numpy arrays.
#[pyfunction]
fn execute_many<'py>(
    py: Python<'py>,
    list: &Bound<'py, PyList>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    check_fork()?;
    let ts = tensors_of(list)?;
    if ts.is_empty() {
        return Ok(vec![]);
    }
    let out = run_detached(py, move || {
        let refs: Vec<&Tensor> = ts.iter().collect();
        refs[0].session().materialize_many(&refs)
    })?;
    out.into_iter().map(|a| kept_to_py(py, a)).collect()
}

/// A tensor over the `.npy` file `path`, read chunk by chunk when a run needs it.
#[pyfunction]
#[pyo3(signature = (path, chunk=None))]
fn load_npy(path: std::path::PathBuf, chunk: Option<Vec<usize>>) -> PyResult<PyTensor> {
    let s = sess()?;
    wrap(tessera::io::load_npy(&s, &path, chunk.as_deref()))
}

/// A tensor over a raw binary file: `shape` elements of `dtype` in C order from `offset`.
#[pyfunction]
#[pyo3(signature = (path, dtype, shape, offset, big_endian, chunk=None))]
fn from_raw(
    path: std::path::PathBuf,
    dtype: &str,
    shape: Vec<usize>,
    offset: u64,
    big_endian: bool,
    chunk: Option<Vec<usize>>,
) -> PyResult<PyTensor> {
    let s = sess()?;
    wrap(tessera::io::from_raw(
        &s,
        &path,
        dtype_of(dtype)?,
        &shape,
        offset,
        big_endian,
        chunk.as_deref(),
    ))
}

/// A tensor over the Zarr array (v2 or v3) at `path`, read chunk by chunk (the store's chunks
/// unless `chunk` says otherwise).
#[pyfunction]
#[pyo3(signature = (path, chunk=None))]
fn from_zarr(path: std::path::PathBuf, chunk: Option<Vec<usize>>) -> PyResult<PyTensor> {
    let s = sess()?;
    wrap(tessera::io::from_zarr(&s, &path, chunk.as_deref()))
}

/// Writes `t` to a Zarr array at `path` chunk by chunk (the GIL released).
#[pyfunction]
#[pyo3(signature = (t, path, version, chunks, compressor, level, checksum, shards, overwrite))]
#[allow(clippy::too_many_arguments)]
fn to_zarr(
    py: Python<'_>,
    t: &Bound<'_, PyTensor>,
    path: std::path::PathBuf,
    version: u8,
    chunks: Option<Vec<usize>>,
    compressor: &str,
    level: i32,
    checksum: bool,
    shards: Option<Vec<usize>>,
    overwrite: bool,
) -> PyResult<()> {
    use tessera::io::ZarrCompressor;
    check_fork()?;
    let compressor = match compressor {
        "zstd" => ZarrCompressor::Zstd(level),
        "gzip" => ZarrCompressor::Gzip(level.clamp(0, 9) as u32),
        "blosc" => ZarrCompressor::Blosc(level.clamp(0, 9) as u8),
        "none" => ZarrCompressor::None,
        other => {
            return Err(PyValueError::new_err(format!(
                "to_zarr: compressor {other:?} (zstd, gzip, blosc or None)"
            )))
        }
    };
    let o = tessera::io::ZarrOptions {
        version,
        chunks,
        compressor,
        checksum,
        shards,
        overwrite,
    };
    let t = t.get().t.clone();
    run_detached(py, move || tessera::io::to_zarr(&t, &path, &o))
}

/// Writes `t` to the `.npy` (or, with `raw`, headerless) file `path` chunk by chunk (the GIL
/// released; Ctrl-C stops it and leaves no file).
#[pyfunction]
fn save_file(
    py: Python<'_>,
    t: &Bound<'_, PyTensor>,
    path: std::path::PathBuf,
    raw: bool,
) -> PyResult<()> {
    check_fork()?;
    let t = t.get().t.clone();
    run_detached(py, move || match raw {
        false => tessera::io::save_npy(&t, &path),
        true => tessera::io::save_raw(&t, &path),
    })
}

/// Switches to a backend ("auto", "cpu", "wgpu", "cuda"). Tensors of the previous session stay
/// valid on their own but cannot be mixed with new ones.
#[pyfunction]
fn set_backend(name: &str) -> PyResult<String> {
    check_fork()?;
    let s = tessera::session(name).map_err(|e| match e {
        Error::BackendUnavailable { .. } => PyRuntimeError::new_err(e.to_string()),
        e => to_py(e),
    })?;
    let backend = s.backend().name().to_string();
    let old = current().take();
    if let Some(old) = old {
        // Carry the options over: a backend switch is not a reset.
        let c = old.sess.config();
        s.set_eager(c.eager);
        s.set_fusion(c.fusion);
        s.set_chunk_bytes(c.chunk_bytes).py()?;
        s.set_memory(c.memory);
        s.set_host_limit(c.host_limit);
        s.set_remote(old.sess.remote());
    }
    *current() = Some(Current {
        sess: s,
        backend: backend.clone(),
    });
    Ok(backend)
}

#[pyfunction]
fn backend_name() -> PyResult<String> {
    sess()?;
    Ok(current().as_ref().expect("set").backend.clone())
}

/// The backends compiled in: (name, usable, reason when not).
#[pyfunction]
fn backends() -> Vec<(String, bool, String)> {
    tessera::backends()
        .into_iter()
        .map(|(n, r)| match r {
            Ok(_) => (n, true, String::new()),
            Err(e) => (n, false, e.to_string()),
        })
        .collect()
}

/// The session's options as a dict.
#[pyfunction]
fn get_config<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let c = sess()?.config();
    let d = PyDict::new(py);
    d.set_item("eager", c.eager)?;
    d.set_item("fusion", c.fusion)?;
    d.set_item("chunk_bytes", c.chunk_bytes)?;
    let set = c.memory.is_some();
    let m = c.memory.unwrap_or_default();
    d.set_item("device_budget", m.device_bytes.filter(|_| set))?;
    d.set_item("host_budget", m.host_bytes.filter(|_| set))?;
    d.set_item("disk_budget", m.disk_bytes.filter(|_| set))?;
    d.set_item(
        "spill_dir",
        m.spill_dir.map(|p| p.to_string_lossy().into_owned()),
    )?;
    d.set_item("devices", m.devices)?;
    Ok(d)
}

/// Sets session options; a `None` budget removes it. All budgets None and no spill
/// directory/devices return runs to the in-memory executor.
#[pyfunction]
#[pyo3(signature = (eager, fusion, chunk_bytes, device_budget, host_budget, disk_budget, spill_dir, devices))]
#[allow(clippy::too_many_arguments)]
fn set_config(
    eager: bool,
    fusion: bool,
    chunk_bytes: usize,
    device_budget: Option<u64>,
    host_budget: Option<u64>,
    disk_budget: Option<u64>,
    spill_dir: Option<String>,
    devices: Option<usize>,
) -> PyResult<()> {
    let s = sess()?;
    if devices == Some(0) {
        return Err(PyValueError::new_err("devices must be at least 1"));
    }
    s.set_chunk_bytes(chunk_bytes).py()?;
    s.set_eager(eager);
    s.set_fusion(fusion);
    let any = device_budget.is_some()
        || host_budget.is_some()
        || disk_budget.is_some()
        || spill_dir.is_some()
        || devices.is_some();
    s.set_memory(any.then(|| MemoryConfig {
        device_bytes: device_budget,
        host_bytes: host_budget,
        disk_bytes: disk_budget,
        spill_dir: spill_dir.map(Into::into),
        devices,
        ..MemoryConfig::default()
    }));
    Ok(())
}

/// Statistics of the last run: tasks, peak bytes, per-op task counts, stage times.
#[pyfunction]
fn last_stats<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let st = sess()?.last_stats();
    let d = PyDict::new(py);
    d.set_item("tasks", st.tasks)?;
    d.set_item("peak_bytes", st.peak_bytes)?;
    let per = PyDict::new(py);
    for (k, v) in &st.per_op {
        per.set_item(k, v)?;
    }
    d.set_item("per_op", per)?;
    d.set_item("chunks", st.stages.chunks)?;
    d.set_item("seconds", st.stages.tile + st.stages.fuse + st.stages.run)?;
    Ok(d)
}

/// Number of nodes the session's graph holds (for tests of graph lifetimes).
#[pyfunction]
fn graph_len() -> PyResult<usize> {
    Ok(sess()?.graph_len())
}

/// Bytes of data the graph holds (user data, eager and kept results).
#[pyfunction]
fn held_bytes() -> PyResult<usize> {
    Ok(sess()?.held_bytes())
}

/// Bytes of kept results held in memory (a memory budget is charged for them; past half of
/// the host budget they spill to disk).
#[pyfunction]
fn kept_bytes() -> PyResult<u64> {
    Ok(sess()?.kept_bytes())
}

/// True when the session has a memory budget (executed tensors then leave their kept data
/// to the session, which may spill it, instead of holding a numpy view of it).
#[pyfunction]
fn memory_budgeted() -> PyResult<bool> {
    Ok(sess()?.config().memory.is_some())
}

/// Called by `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
fn _after_fork_in_child() {
    if current().is_some() {
        FORKED.store(true, Ordering::Relaxed);
    }
}

#[pymodule]
fn _tessera(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTensor>()?;
    m.add_class::<PyGenerator>()?;
    m.add_function(wrap_pyfunction!(full, m)?)?;
    m.add_function(wrap_pyfunction!(arange, m)?)?;
    m.add_function(wrap_pyfunction!(linspace, m)?)?;
    m.add_function(wrap_pyfunction!(eye, m)?)?;
    m.add_function(wrap_pyfunction!(from_numpy, m)?)?;
    m.add_function(wrap_pyfunction!(from_numpy_shared, m)?)?;
    m.add_function(wrap_pyfunction!(concatenate, m)?)?;
    m.add_function(wrap_pyfunction!(stack, m)?)?;
    m.add_function(wrap_pyfunction!(broadcast_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(meshgrid, m)?)?;
    m.add_function(wrap_pyfunction!(execute_many, m)?)?;
    m.add_function(wrap_pyfunction!(load_npy, m)?)?;
    m.add_function(wrap_pyfunction!(from_raw, m)?)?;
    m.add_function(wrap_pyfunction!(save_file, m)?)?;
    m.add_function(wrap_pyfunction!(from_zarr, m)?)?;
    m.add_function(wrap_pyfunction!(to_zarr, m)?)?;
    m.add_function(wrap_pyfunction!(set_backend, m)?)?;
    m.add_function(wrap_pyfunction!(backend_name, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add_function(wrap_pyfunction!(get_config, m)?)?;
    m.add_function(wrap_pyfunction!(set_config, m)?)?;
    m.add_function(wrap_pyfunction!(last_stats, m)?)?;
    m.add_function(wrap_pyfunction!(graph_len, m)?)?;
    m.add_function(wrap_pyfunction!(held_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(kept_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(memory_budgeted, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_child, m)?)?;
    m.add_class::<remote::PyRemotePlan>()?;
    m.add_function(wrap_pyfunction!(remote::set_remote, m)?)?;
    m.add_function(wrap_pyfunction!(remote::run_task, m)?)?;
    m.add_function(wrap_pyfunction!(remote::clear_put_cache, m)?)?;
    m.add("ExecutorError", m.py().get_type::<remote::ExecutorError>())?;
    Ok(())
}
