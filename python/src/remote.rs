//! The Rust half of the Ray executor (`tessera/_ray.py` is the other): the driver's plan as a
//! Python object, the hook that sends a session's runs to Python, and a worker's task runner.
//!
//! The driver tiles and fuses as for a local run; `tessera::remote::RemotePlan` cuts the chunk
//! graph into groups. `_ray.py` submits one Ray task per remote group (its spec bytes and the
//! object refs of its input groups) and runs the driver groups (user data, writes) here.

use crate::shared::NumpyBuffer;
use crate::{host_from_numpy, sess, to_py, PyRes};
use numpy::{PyArrayDyn, PyUntypedArray};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tessera::array::Region;
use tessera::chunk::{ChunkData, ChunkOp};
use tessera::external::ExternalArray;
use tessera::remote::{ArgField, RemoteExecutor, RemotePlan};
use tessera::{Error, HostArray, Session};

pyo3::create_exception!(
    _tessera,
    ExecutorError,
    pyo3::exceptions::PyRuntimeError,
    "Another executor (Ray) could not finish a run: a chunk task was lost past its retries."
);

/// The exception the driver's Python code raised for the last failed remote run, handed back
/// to the caller as it was (a kernel's `LinAlgError` stays one) by [`crate::to_py`].
static LAST_ERROR: Mutex<Option<PyErr>> = Mutex::new(None);

pub(crate) fn take_error() -> Option<PyErr> {
    LAST_ERROR.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// A numpy array owning `a`'s data (moved, not copied).
pub(crate) fn host_into_py(py: Python<'_>, a: HostArray) -> Bound<'_, PyAny> {
    match a {
        HostArray::Bool(x) => PyArrayDyn::from_owned_array(py, x).into_any(),
        HostArray::I32(x) => PyArrayDyn::from_owned_array(py, x).into_any(),
        HostArray::I64(x) => PyArrayDyn::from_owned_array(py, x).into_any(),
        HostArray::F32(x) => PyArrayDyn::from_owned_array(py, x).into_any(),
        HostArray::F64(x) => PyArrayDyn::from_owned_array(py, x).into_any(),
    }
}

fn chunk_of(fields: &Bound<'_, PyAny>) -> PyResult<ChunkData> {
    let mut out = Vec::new();
    for f in fields.try_iter()? {
        out.push(host_from_numpy(f?.cast::<PyUntypedArray>()?)?);
    }
    Ok(out)
}

/// A task argument's fields as a worker reads them: numpy arrays in memory in row-major order
/// (the object store's, read-only) are read in place by fused kernels; others are copied.
fn shared_of(fields: &Bound<'_, PyAny>) -> PyResult<Vec<ArgField>> {
    let mut out = Vec::new();
    for f in fields.try_iter()? {
        let f = f?;
        let a = f.cast::<PyUntypedArray>()?;
        out.push(match NumpyBuffer::of(a) {
            Some(b) if b.flat().is_some() => ArgField::Shared(Arc::new(b)),
            _ => ArgField::Host(host_from_numpy(a)?),
        });
    }
    Ok(out)
}

fn chunk_to_py(py: Python<'_>, data: ChunkData) -> PyResult<Bound<'_, PyList>> {
    PyList::new(py, data.into_iter().map(|a| host_into_py(py, a)))
}

/// User data already in the object store, by the data's address and the box put: the Weak
/// keeps the address from being reused while the entry lives, and an entry whose data was
/// freed is dropped (so a key never names other data).
type PutCache = HashMap<(usize, Region), (Weak<HostArray>, Py<PyAny>)>;
static PUT_CACHE: Mutex<Option<PutCache>> = Mutex::new(None);

/// A chunk graph cut into groups (one Ray task each), as the driver's Python code sees it.
#[pyclass(frozen, name = "RemotePlan", module = "tessera._tessera")]
pub(crate) struct PyRemotePlan {
    plan: Arc<RemotePlan>,
}

impl PyRemotePlan {
    fn check(&self, g: usize) -> PyResult<()> {
        if g >= self.plan.groups().len() {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "group {g} of a plan of {} groups",
                self.plan.groups().len()
            )));
        }
        Ok(())
    }

    /// The user data a driver group puts (weakly) and the put cache's key: the data's address
    /// and the box. Only Tessera's own immutable data (copies made by `ts.array`, kept
    /// results): an external array (a numpy array shared in place, a file) may change between
    /// runs, so it is read and put again each time, as a local run reads it each time.
    fn source(&self, g: usize) -> Option<(Weak<HostArray>, (usize, Region))> {
        let grp = &self.plan.groups()[g];
        let node = self.plan.graph().node(*grp.nodes.last()?);
        match &node.op {
            ChunkOp::Constant { data, region } => Some((
                Arc::downgrade(data),
                (Arc::as_ptr(data) as usize, region.clone()),
            )),
            _ => None,
        }
    }
}

#[pymethods]
impl PyRemotePlan {
    fn __len__(&self) -> usize {
        self.plan.groups().len()
    }
    /// Every group as `(inputs, on_driver, out_bytes, nodes, device_work)`, in topological
    /// order (`device_work`: a task worth a GPU).
    fn groups(&self) -> Vec<(Vec<usize>, bool, u64, usize, bool)> {
        self.plan
            .groups()
            .iter()
            .map(|g| {
                (
                    g.inputs.clone(),
                    g.on_driver,
                    g.out_bytes,
                    g.nodes.len(),
                    g.device_work,
                )
            })
            .collect()
    }
    /// The groups whose values the run returns, in the order the callback returns them.
    #[getter]
    fn output_groups(&self) -> Vec<usize> {
        self.plan.output_groups().to_vec()
    }
    /// Ops and sink shape of group `g` (`fused+reduce_combine -> [1] f32`).
    fn label(&self, g: usize) -> PyResult<String> {
        self.check(g)?;
        Ok(self.plan.label(g))
    }
    /// The wire form of remote group `g` (for `run_task` on a worker).
    fn spec<'py>(&self, py: Python<'py>, g: usize) -> PyResult<Bound<'py, PyBytes>> {
        self.check(g)?;
        let bytes = self.plan.spec(g).py()?;
        Ok(PyBytes::new(py, &bytes))
    }
    /// Runs driver group `g` here with its inputs' values: returns its value's fields.
    fn run_on_driver<'py>(
        &self,
        py: Python<'py>,
        g: usize,
        args: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.check(g)?;
        let args: Vec<ChunkData> = args.iter().map(|a| chunk_of(&a)).collect::<PyResult<_>>()?;
        let plan = self.plan.clone();
        let out = py
            .detach(move || {
                let refs: Vec<&ChunkData> = args.iter().collect();
                plan.run_on_driver(g, &refs)
            })
            .py()?;
        chunk_to_py(py, out)
    }
    /// The object ref this process already put for driver group `g`'s data (the same user
    /// data and box, still alive), if any.
    fn cached_put(&self, py: Python<'_>, g: usize) -> PyResult<Option<Py<PyAny>>> {
        self.check(g)?;
        let Some((_, key)) = self.source(g) else {
            return Ok(None);
        };
        let mut cache = PUT_CACHE.lock().unwrap_or_else(|p| p.into_inner());
        let cache = cache.get_or_insert_with(HashMap::new);
        // Entries whose data was freed go (their refs too, so the store can free them).
        cache.retain(|_, (w, _)| w.strong_count() > 0);
        Ok(cache.get(&key).map(|(_, r)| r.clone_ref(py)))
    }
    /// Remembers `object_ref` as the put of driver group `g`'s data (see `cached_put`).
    fn cache_put(&self, g: usize, object_ref: Py<PyAny>) -> PyResult<()> {
        self.check(g)?;
        if let Some((source, key)) = self.source(g) {
            let mut cache = PUT_CACHE.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get_or_insert_with(HashMap::new)
                .insert(key, (source, object_ref));
        }
        Ok(())
    }
}

/// Drops every cached put (the executor was switched off or to another cluster).
#[pyfunction]
pub(crate) fn clear_put_cache() {
    *PUT_CACHE.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Sends a session's runs to a Python callable: `callback(plan)` returns the value of each
/// of `plan.output_groups` (a list of numpy arrays per group).
struct PyRemote {
    callback: Py<PyAny>,
    group_bytes: u64,
}

impl RemoteExecutor for PyRemote {
    fn name(&self) -> &str {
        "ray"
    }
    fn group_bytes(&self) -> u64 {
        self.group_bytes
    }
    fn run(&self, plan: Arc<RemotePlan>) -> tessera::Result<Vec<ChunkData>> {
        Python::attach(|py| {
            let fail = |e: PyErr| {
                let message = e.to_string();
                *LAST_ERROR.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Error::Executor {
                    executor: "ray".into(),
                    message,
                }
            };
            let out = self
                .callback
                .call1(py, (PyRemotePlan { plan },))
                .map_err(fail)?;
            let mut values = Vec::new();
            for v in out.bind(py).try_iter().map_err(fail)? {
                values.push(v.and_then(|v| chunk_of(&v)).map_err(fail)?);
            }
            Ok(values)
        })
    }
}

/// Sends this process's runs to `callback` (`None`: back to this process), merging chunk
/// tasks into groups of up to `group_bytes` of work.
#[pyfunction]
#[pyo3(signature = (callback, group_bytes))]
pub(crate) fn set_remote(callback: Option<Py<PyAny>>, group_bytes: u64) -> PyResult<()> {
    let s = sess()?;
    s.set_remote(callback.map(|callback| {
        Arc::new(PyRemote {
            callback,
            group_bytes,
        }) as Arc<dyn RemoteExecutor>
    }));
    Ok(())
}

/// Worker sessions by backend name: one per process and backend, made on first use.
static WORKER: Mutex<Option<HashMap<String, Session>>> = Mutex::new(None);

/// Runs one task (a plan's `spec` bytes) on this process's `backend` ("cpu", or "auto": the
/// best present) with its input groups' values; returns its value's fields. A Ray worker's
/// half of a remote run; the GIL is released while it runs.
#[pyfunction]
pub(crate) fn run_task<'py>(
    py: Python<'py>,
    spec: &[u8],
    args: &Bound<'py, PyList>,
    backend: &str,
) -> PyResult<Bound<'py, PyList>> {
    crate::check_fork()?;
    let session = {
        let mut w = WORKER.lock().unwrap_or_else(|p| p.into_inner());
        let w = w.get_or_insert_with(HashMap::new);
        match w.get(backend) {
            Some(s) => s.clone(),
            None => {
                let s = tessera::session(backend).map_err(to_py)?;
                w.insert(backend.to_string(), s.clone());
                s
            }
        }
    };
    let args: Vec<Vec<ArgField>> = args
        .iter()
        .map(|a| shared_of(&a))
        .collect::<PyResult<_>>()?;
    let spec = spec.to_vec();
    let out = py
        .detach(move || tessera::remote::run_task_shared(&spec, session.backend().as_ref(), args))
        .py()?;
    chunk_to_py(py, out)
}
