//! Start-up and shutdown: binds the ports, starts the worker pool and the HTTP server,
//! turns a boot failure into exit 3, and drains everything on SIGTERM / Ctrl+C.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{banner, Settings};
use crate::http::{AppState, BodyBudget, Cors};
use crate::interpreter;
use crate::model_dir_tree;
use crate::openapi::{ScriptSchemas, SwaggerDocuments};
use crate::runner_files;
use crate::shutdown;
use crate::startup_error::StartupError;
use crate::worker::launcher::{DebugSetup, ProcessLauncher};
use crate::worker::pool::{BootCause, BootFailure, FirstLoadHook, Pool, PoolConfig, Timings};
use crate::worker::process::LaunchSpec;
use crate::worker::wire::{CodeLocation, ErrorKind, LoadParams};

/// The largest answer body (or stream chunk) taken from a worker: bounded so that a
/// script cannot make the server hold any amount of memory; far above any real answer.
const MAX_ANSWER_BYTES: usize = 1024 * 1024 * 1024;

/// The least the bodies of all requests in flight may take together (the budget is
/// twice the largest body, at least this).
const MIN_BODY_BUDGET_BYTES: usize = 1024 * 1024 * 1024;

/// Lines of the model directory listed when `init()` fails.
const MODEL_DIR_TREE_LINES: usize = 200;

/// Runs the server until it is asked to stop (Ok) or cannot boot (Err with exit code).
pub async fn run(settings: Settings) -> Result<(), StartupError> {
    if settings.is_metrics_on {
        crate::metrics::install();
    }
    banner::print(&settings);
    if let Some(path) = &settings.config_file {
        tracing::info!(target: "azmlinfsrv", "Loaded the config file {}", path.display());
    }
    for notice in &settings.notices {
        tracing::warn!(target: "azmlinfsrv", "{notice}");
    }
    let interpreter = interpreter::choose(&settings.python)?;
    tracing::info!(target: "azmlinfsrv", "Using Python {} ({})", interpreter.program.display(), interpreter.reason);
    let runner_script = runner_files::install(settings.cache_home.as_deref(), &settings.temp_dir)?;

    // Bind before starting Python: a port in use fails fast and leaves nothing behind.
    let listener = bind(settings.port).await?;
    let health_listener = match settings.health_port {
        Some(port) => Some(bind(port).await?),
        None => None,
    };

    let mut child_env = settings.child_env.clone();
    child_env.extend(interpreter.extra_env.iter().cloned());
    let launch = LaunchSpec {
        python: interpreter.program.clone(),
        runner_script,
        entry_script: settings.entry_script.clone(),
        working_dir: settings.app_root.clone(),
        env: child_env,
        max_payload: MAX_ANSWER_BYTES,
        stream_stall_timeout: settings.read_timeout,
    };
    let load_params = LoadParams {
        entry_script: settings
            .entry_script
            .as_ref()
            .map(|path| path.display().to_string()),
        app_root: settings.app_root.display().to_string(),
        source_dir: settings.source_dir.clone(),
        model_dir: settings.model_dir.clone(),
        log_level: settings.log_level.clone(),
        scoring_timeout_ms: settings.scoring_timeout_ms(),
        debug: None,
    };
    // Before the workers start, so that what init() prints is traced too.
    crate::app_insights::start(&settings);
    if settings.is_debug_errors {
        tracing::warn!(target: "azmlinfsrv", "--debug_errors is on: a run() that fails answers its client with the exception, the file and line, and the traceback. Use it on your own machine only, never where others can reach the server");
    }
    let (boot_failures_tx, mut boot_failures) = mpsc::unbounded_channel();
    let swagger = Arc::new(OnceLock::new());
    let pool = Pool::start(
        PoolConfig {
            launcher: Arc::new(ProcessLauncher {
                spec: launch,
                load_params,
                debug: DebugSetup {
                    listen_port: settings.debug_listen_port,
                    is_wait: settings.is_debug_wait,
                    connect_port: settings.debug_port,
                },
            }),
            worker_count: settings.worker_count,
            queue_limit: settings.queue_limit,
            scoring_timeout: settings.scoring_timeout,
            on_first_load: swagger_builder(&settings, swagger.clone()),
            timings: Timings::default(),
        },
        boot_failures_tx,
    );
    tracing::info!(target: "azmlinfsrv", "Scoring timeout is set to {}", settings.scoring_timeout_ms());
    if settings.scoring_timeout.is_none() {
        // The contract's line above stays as users grep for it; this one says what 0 means.
        tracing::info!(target: "azmlinfsrv", "SCORING_TIMEOUT_MS is 0: there is no scoring timeout, a request may run as long as run() takes");
    }

    let state = Arc::new(AppState {
        pool: pool.clone(),
        cors: Cors::new(settings.cors_origins.clone()),
        server_version: settings
            .is_server_version_header_on
            .then(|| HeaderValue::from_static(crate::config::SERVER_VERSION)),
        scoring_timeout_ms: u128::from(settings.scoring_timeout_ms()),
        max_body_bytes: settings.max_body_bytes,
        body_budget: BodyBudget::new(
            settings
                .max_body_bytes
                .saturating_mul(2)
                .max(MIN_BODY_BUDGET_BYTES),
        ),
        queue_limit: settings.queue_limit,
        is_debug_errors: settings.is_debug_errors,
        read_timeout: settings.read_timeout,
        swagger,
    });

    let stop_serving = CancellationToken::new();
    if settings.reload {
        crate::reload::watch(&settings, pool.clone(), stop_serving.clone());
    }
    let connections = TaskTracker::new();
    tokio::spawn(crate::http::serve(
        listener,
        state.clone(),
        stop_serving.clone(),
        connections.clone(),
    ));
    if let Some(health_listener) = health_listener {
        tokio::spawn(crate::http::serve(
            health_listener,
            state.clone(),
            stop_serving.clone(),
            connections.clone(),
        ));
    }

    let outcome = tokio::select! {
        _ = shutdown::requested() => Ok(()),
        Some(failure) = boot_failures.recv() => Err(failure),
    };
    match outcome {
        Ok(()) => {
            tracing::info!(target: "azmlinfsrv", "Shutting down: no new requests are accepted; waiting up to {} s for {} connection(s) in flight", settings.shutdown_grace.as_secs(), connections.len());
            stop_serving.cancel();
            connections.close();
            if tokio::time::timeout(settings.shutdown_grace, connections.wait())
                .await
                .is_err()
            {
                tracing::warn!(target: "azmlinfsrv", "Requests still in flight after the grace period are cut off");
            }
            pool.shutdown().await;
            crate::app_insights::flush_on_shutdown().await;
            tracing::info!(target: "azmlinfsrv", "Server stopped");
            Ok(())
        }
        Err(failure) => {
            stop_serving.cancel();
            report_boot_failure(&settings, &failure);
            pool.shutdown().await;
            crate::app_insights::flush_on_shutdown().await;
            let at = failure
                .location
                .as_ref()
                .map(|location| format!(" (at {})", describe_location(location)))
                .unwrap_or_default();
            Err(StartupError::boot(format!(
                "The scoring script could not start, so the server is exiting (status 3): {}{at}",
                failure.message
            )))
        }
    }
}

async fn bind(port: u16) -> Result<TcpListener, StartupError> {
    let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    TcpListener::bind(address).await.map_err(|err| {
        StartupError::usage(format!(
            "Cannot listen on port {port}: {err}. Another process (maybe another azmlinfsrv) is using it; \
             stop it or choose another port with --port."
        ))
    })
}

/// Builds the OpenAPI documents as soon as the first runner has loaded the script
/// (its schemas feed them), before any `init()` runs: so `/swagger.json` is ready
/// whenever `GET /` is, and a broken user swagger file stops the start-up (exit 3),
/// as with the reference.
fn swagger_builder(
    settings: &Settings,
    documents: Arc<OnceLock<SwaggerDocuments>>,
) -> FirstLoadHook {
    let service = settings.service.clone();
    let app_root = settings.app_root.clone();
    Box::new(move |load| {
        let built = SwaggerDocuments::build(
            &service,
            &ScriptSchemas::from_json(&load.schemas),
            &app_root,
        )
        .map_err(|error| error.to_string())?;
        for line in built.startup_log() {
            tracing::info!(target: "azmlinfsrv.swagger", "{line}");
        }
        let _ = documents.set(built);
        Ok(())
    })
}

/// The log a user needs when the script cannot start: what failed, Python's traceback,
/// and for a failed `init()` the model directory's contents.
fn report_boot_failure(settings: &Settings, failure: &BootFailure) {
    let traceback = failure.traceback.as_deref().unwrap_or("");
    match &failure.cause {
        BootCause::Script(ErrorKind::InitFailed) => {
            tracing::error!(target: "azmlinfsrv.user_script", "User's init function failed");
            tracing::error!(target: "azmlinfsrv.user_script", "Encountered Exception: {traceback}");
            match &settings.model_dir {
                Some(dir) => {
                    let tree =
                        model_dir_tree::describe(std::path::Path::new(dir), MODEL_DIR_TREE_LINES);
                    tracing::error!(target: "azmlinfsrv", "Model directory {dir} contains:\n{}", tree.join("\n"));
                }
                None => {
                    tracing::error!(target: "azmlinfsrv", "AZUREML_MODEL_DIR is not set (use --model_dir), so there is no model directory to list")
                }
            }
        }
        _ if !traceback.is_empty() => {
            tracing::error!(target: "azmlinfsrv.user_script", "{}\n{traceback}", failure.message);
        }
        _ => {}
    }
    if let Some(location) = &failure.location {
        tracing::error!(target: "azmlinfsrv.user_script", "The error is at {}", describe_location(location));
    }
}

/// `/x/score.py:12 (in init)`: the form editors and terminals turn into a link.
fn describe_location(location: &CodeLocation) -> String {
    let line = location
        .line
        .map(|line| format!(":{line}"))
        .unwrap_or_default();
    let function = location
        .function
        .as_deref()
        .map(|function| format!(" (in {function})"))
        .unwrap_or_default();
    format!("{}{line}{function}", location.file)
}
