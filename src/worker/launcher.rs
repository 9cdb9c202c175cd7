//! Starting real workers for the pool: spawn the Python process, load the script, and
//! (later) run `init()`, each step within its deadline. Says in the log when a worker is
//! ready, with what a developer needs to attach a debugger to it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::pool::{BootFailure, Launcher, Loaded};
use super::process::{CallError, LaunchSpec, WorkerProcess};
use super::wire::{DebugListen, LoadParams};

/// How long importing the script may take before the worker is killed.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long importing may take when the worker first waits for a debugger to attach
/// (a developer may take their time): as good as no limit.
const LOAD_TIMEOUT_WAITING_FOR_DEBUGGER: Duration = Duration::from_secs(365 * 86_400);
/// How long `init()` may take (loading a large model) before the worker is killed.
const INIT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// How the workers meet a debugger, as configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DebugSetup {
    /// `--debug_port`: worker N listens on this port + N.
    pub listen_port: Option<u16>,
    /// `--debug_wait`: a listening worker waits for its debugger before the import.
    pub is_wait: bool,
    /// `AZUREML_DEBUG_PORT`: each worker connects to a debugger and waits for it.
    pub connect_port: Option<u16>,
}

impl DebugSetup {
    /// `load`'s `debug` member for worker `slot_id`.
    fn listen_params(&self, slot_id: usize) -> Option<DebugListen> {
        let base = self.listen_port?;
        // Settings checked that base + (worker count - 1) is a port.
        let port = u16::try_from(usize::from(base) + slot_id).unwrap_or(u16::MAX);
        Some(DebugListen {
            mode: "listen",
            port,
            wait: self.is_wait,
        })
    }

    /// Whether `load` may wait for a developer (a debugger to attach) before it imports.
    fn waits_for_debugger(&self) -> bool {
        (self.listen_port.is_some() && self.is_wait) || self.connect_port.is_some()
    }
}

pub struct ProcessLauncher {
    pub spec: LaunchSpec,
    pub load_params: LoadParams,
    pub debug: DebugSetup,
}

impl Launcher for ProcessLauncher {
    fn launch(&self, slot_id: usize) -> BoxFuture<'_, Result<Loaded, BootFailure>> {
        async move {
            let worker = WorkerProcess::spawn(&self.spec, slot_id)
                .await
                .map_err(|err| BootFailure::from_call("start the Python runner", err))?;
            tracing::info!(target: "azmlinfsrv", "Started a scoring process: pid {}, Python {} ({})", worker.hello.pid, worker.hello.python_version, worker.hello.python_executable);
            let listen = self.debug.listen_params(slot_id);
            let load_params = LoadParams {
                debug: listen.clone(),
                ..self.load_params.clone()
            };
            let load_timeout = if self.debug.waits_for_debugger() {
                LOAD_TIMEOUT_WAITING_FOR_DEBUGGER
            } else {
                LOAD_TIMEOUT
            };
            let load = worker
                .load(&load_params, load_timeout)
                .await
                .map_err(|err| boot_failure("load the scoring script", err))?;
            let worker = Arc::new(worker);
            let init = {
                let worker = worker.clone();
                async move {
                    worker
                        .run_init(INIT_TIMEOUT)
                        .await
                        .map_err(|err| boot_failure("run init()", err))?;
                    tracing::info!(target: "azmlinfsrv", "{}", ready_line(slot_id, &worker, listen.as_ref()));
                    Ok(())
                }
                .boxed()
            };
            Ok(Loaded {
                worker,
                load,
                init,
            })
        }
        .boxed()
    }
}

/// A start-up step failed; when the script itself raised (importing it, or `init()`),
/// App Insights gets the exception, as with the reference.
fn boot_failure(step: &str, error: CallError) -> BootFailure {
    if let CallError::Rpc(rpc) = &error {
        crate::app_insights::track_boot_failure(rpc);
    }
    BootFailure::from_call(step, error)
}

/// `Worker 0 is ready: pid 4242 (Python 3.11.7 /x/bin/python). To debug it: ...`: the
/// pid a process picker asks for, and the one command that attaches a debugger.
fn ready_line(slot_id: usize, worker: &WorkerProcess, listen: Option<&DebugListen>) -> String {
    let hello = &worker.hello;
    let (pid, version, python) = (hello.pid, &hello.python_version, &hello.python_executable);
    let hint = match listen {
        Some(listen) => format!(
            "It listens for a debugger: attach to 127.0.0.1:{}",
            listen.port
        ),
        None => format!(
            "To debug it: {python} -m debugpy --listen 127.0.0.1:5678 --pid {pid}, then attach to 127.0.0.1:5678"
        ),
    };
    format!("Worker {slot_id} is ready: pid {pid} (Python {version} {python}). {hint}")
}
