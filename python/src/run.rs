//! Long calls without the GIL: the work runs on a worker thread (inside a pool of `threads` threads
//! when asked) while the calling thread — Python's main thread, the only one that sees signals — waits
//! without the GIL, wakes at least every 50 ms to check for Ctrl-C, and calls the progress callback
//! with what the work reports. A KeyboardInterrupt (or an exception in the callback) raises the cancel
//! flag; the work's observer sees it and stops, and the exception is raised once the worker returns.

use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// What the worker sees: where to report progress, and whether to stop.
pub struct Watch<'a, P> {
    progress: Sender<Option<P>>,
    cancel: &'a AtomicBool,
}

impl<P> Watch<'_, P> {
    /// Report progress (dropped if nobody listens any more).
    pub fn report(&self, p: P) {
        let _ = self.progress.send(Some(p));
    }
    /// Whether the caller asked to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// A rayon pool of `threads` threads, or `None` for the global pool (all cores).
fn pool(threads: Option<usize>) -> PyResult<Option<rayon::ThreadPool>> {
    match threads {
        None => Ok(None),
        Some(0) => Err(pyo3::exceptions::PyValueError::new_err(
            "threads must be at least 1",
        )),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map(Some)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("thread pool: {e}"))),
    }
}

/// Run `work` on `threads` threads (see the module documentation); `on_progress` is called on the
/// calling thread, with the GIL, for each report. Returns the work's value, or the first exception
/// (KeyboardInterrupt, or the callback's).
pub fn run<T, P>(
    py: Python<'_>,
    threads: Option<usize>,
    mut on_progress: impl FnMut(Python<'_>, P) -> PyResult<()>,
    work: impl FnOnce(&Watch<'_, P>) -> T + Send,
) -> PyResult<T>
where
    T: Send,
    P: Send,
{
    let pool = pool(threads)?;
    let cancel = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Option<P>>();
    // `Receiver` is not `Sync`; the mutex lets the waiting closure (run without the GIL) borrow it.
    let rx = Mutex::new(rx);
    let mut failure: Option<PyErr> = None;
    let outcome = std::thread::scope(|s| {
        let cancel_ref = &cancel;
        let pool_ref = pool.as_ref();
        let worker = s.spawn(move || {
            let watch = Watch {
                progress: tx,
                cancel: cancel_ref,
            };
            let value = match pool_ref {
                Some(p) => p.install(|| work(&watch)),
                None => work(&watch),
            };
            let _ = watch.progress.send(None);
            value
        });
        loop {
            let message = py.detach(|| {
                rx.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .recv_timeout(Duration::from_millis(50))
            });
            match message {
                Ok(Some(p)) => {
                    if failure.is_none()
                        && let Err(e) = on_progress(py, p)
                    {
                        failure = Some(e);
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if failure.is_none()
                && let Err(e) = py.check_signals()
            {
                failure = Some(e);
                cancel.store(true, Ordering::Relaxed);
            }
        }
        py.detach(|| worker.join())
    });
    let value = outcome.map_err(|_| {
        pyo3::exceptions::PyRuntimeError::new_err("internal error: the worker thread panicked")
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(value),
    }
}

/// Run `work` without the GIL, on `threads` threads when asked (work that offers no cancellation hook:
/// scoring, simulation — fast enough that Ctrl-C is seen when they return).
pub fn detached<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    let pool = pool(threads)?;
    let value = py.detach(|| match pool {
        Some(p) => p.install(work),
        None => work(),
    });
    py.check_signals()?;
    Ok(value)
}
