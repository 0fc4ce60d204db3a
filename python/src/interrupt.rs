//! Runs a graph with the GIL released so that Ctrl-C can stop it.
//!
//! Python handles SIGINT by setting a flag that only the main thread acts on
//! (`PyErr_CheckSignals`). The run goes to a worker thread while the calling thread, without
//! the GIL, waits for it in short slices and checks for signals between them; on
//! `KeyboardInterrupt` it cancels the runtime's runs in flight (`exec::cancel_runs`: each stops
//! at its next chunk task), waits for the worker to unwind (spill files are removed on the way
//! out), and raises the `KeyboardInterrupt`. The session stays usable.

use pyo3::prelude::*;
use std::sync::mpsc;
use std::time::Duration;
use tessera::Session;

/// How often the waiting thread looks for a pending signal.
const SLICE: Duration = Duration::from_millis(20);

pub(crate) fn run<T: Send>(
    py: Python<'_>,
    _s: &Session,
    f: impl FnOnce() -> tessera::Result<T> + Send,
) -> PyResult<T> {
    py.detach(|| {
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            scope.spawn(move || {
                // A panic becomes an error here: a panicking scoped thread would re-panic when
                // the scope ends, through the interpreter.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                    .unwrap_or_else(|p| Err(tessera::Error::from_panic("execute", p.as_ref())));
                // The receiver outlives the scope's threads; a failed send cannot happen.
                let _ = tx.send(r);
            });
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
    })
}
