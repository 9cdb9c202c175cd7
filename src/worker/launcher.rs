//! Starting real workers for the pool: spawn the Python process, load the script, and
//! (later) run `init()`, each step within its deadline.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::pool::{BootFailure, Launcher, Loaded};
use super::process::{CallError, LaunchSpec, WorkerProcess};
use super::wire::LoadParams;

/// How long importing the script may take before the worker is killed.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long `init()` may take (loading a large model) before the worker is killed.
const INIT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

pub struct ProcessLauncher {
    pub spec: LaunchSpec,
    pub load_params: LoadParams,
}

impl Launcher for ProcessLauncher {
    fn launch(&self, slot_id: usize) -> BoxFuture<'_, Result<Loaded, BootFailure>> {
        async move {
            let worker = WorkerProcess::spawn(&self.spec, slot_id)
                .await
                .map_err(|err| BootFailure::from_call("start the Python runner", err))?;
            tracing::info!(target: "azmlinfsrv", "Started a scoring process: pid {}, Python {} ({})", worker.hello.pid, worker.hello.python_version, worker.hello.python_executable);
            let load = worker
                .load(&self.load_params, LOAD_TIMEOUT)
                .await
                .map_err(|err| boot_failure("load the scoring script", err))?;
            let worker = Arc::new(worker);
            let init = {
                let worker = worker.clone();
                async move {
                    worker
                        .run_init(INIT_TIMEOUT)
                        .await
                        .map_err(|err| boot_failure("run init()", err))
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
