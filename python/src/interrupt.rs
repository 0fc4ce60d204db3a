//! Runs a graph with the GIL released so that Ctrl-C can stop it.
//!
//! Python handles SIGINT by setting a flag that only the main thread acts on
//! (`PyErr_CheckSignals`). The run goes to a worker thread while the calling thread, without
//! the GIL, waits for it in short slices and checks for signals between them; on
//! `KeyboardInterrupt` it cancels the runtime's runs in flight (`exec::cancel_runs`: each stops
//! at its next chunk task), waits for the worker to unwind (spill files are removed on the way
//! out), and raises the `KeyboardInterrupt`. The session stays usable.
//!
//! Workers are kept and reused (one per concurrent caller): a fresh thread per run cost about
//! a millisecond, mostly in the backend's per-thread state warming up again.

use pyo3::prelude::*;
use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;
use std::time::Duration;

/// How often the waiting thread looks for a pending signal.
const SLICE: Duration = Duration::from_millis(20);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle workers, each waiting on its channel.
static IDLE: Mutex<Vec<Sender<Job>>> = Mutex::new(Vec::new());

fn idle() -> std::sync::MutexGuard<'static, Vec<Sender<Job>>> {
    IDLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `job` on an idle worker, or on a new one.
fn submit(job: Job) -> std::io::Result<()> {
    let mut job = job;
    while let Some(tx) = idle().pop() {
        match tx.send(job) {
            Ok(()) => return Ok(()),
            // That worker is gone; try the next.
            Err(mpsc::SendError(j)) => job = j,
        }
    }
    let (tx, rx) = mpsc::channel::<Job>();
    tx.send(job).expect("the receiver is alive");
    std::thread::Builder::new()
        .name("tessera-run".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job();
                idle().push(tx.clone());
            }
        })?;
    Ok(())
}

pub(crate) fn run<T: Send + 'static>(
    py: Python<'_>,
    f: impl FnOnce() -> tessera::Result<T> + Send + 'static,
) -> PyResult<T> {
    py.detach(|| {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            // A panic becomes an error here instead of ending the worker.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|p| Err(tessera::Error::from_panic("execute", p.as_ref())));
            // The caller waits for this result (it never stops receiving first).
            let _ = tx.send(r);
        });
        submit(job).map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "could not start a thread to run the graph: {e}"
            ))
        })?;
        let mut interrupted: Option<PyErr> = None;
        loop {
            match rx.recv_timeout(SLICE) {
                Ok(r) => {
                    return match interrupted {
                        Some(e) => Err(e),
                        None => r.map_err(crate::to_py),
                    };
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if interrupted.is_none() {
                        if let Err(e) = Python::attach(|py| py.check_signals()) {
                            tessera::exec::cancel_runs();
                            interrupted = Some(e);
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "the run's thread ended without a result",
                    ));
                }
            }
        }
    })
}
