//! `azmlinfsrv`: a drop-in replacement for the Azure ML inference HTTP server.
//!
//! # Layout
//! - `config`: the command line (`flags`), the environment and the config file merged
//!   into one immutable `Settings`; the variables exported to workers; the banner.
//! - `interpreter`, `conda`, `platform`: which Python runs the script; what activating
//!   a conda env sets; OS differences.
//! - `runner_files`: the bundled Python program (the **runner**, `runner/`), written to
//!   a private cache folder at start-up.
//! - `worker`: a **worker** is one Python process running the runner: the frames'
//!   types (`wire`), their framing, one process (`process`), how the pool starts them
//!   (`launcher`), and the pool of worker slots with its queue (`pool`).
//! - `http`: routes, request ids, CORS, errors, body limits, access log.
//! - `openapi`: the `/swagger.json` documents.
//! - `server`: wires them together; `shutdown`: stop signals; `logging`: line format.
//! - `app_insights`: Application Insights telemetry, batched off the request path.
//! - `metrics`: the Prometheus metrics served at `/metrics`.

mod app_insights;
mod conda;
mod config;
mod http;
mod interpreter;
mod logging;
mod metrics;
mod model_dir_tree;
mod openapi;
mod platform;
mod reload;
mod runner_files;
mod server;
mod shutdown;
mod startup_error;
mod worker;

use clap::Parser;

use crate::config::{Flags, Settings};

fn main() {
    metrics::mark_process_start();
    let flags = match Flags::try_parse() {
        Ok(flags) => flags,
        Err(error) => exit_on_bad_flags(error),
    };
    // `vars_os`: `vars` panics on a variable that is not UTF-8; such a value is kept
    // (lossily) so that a setting spelled so fails its own check, naming the setting.
    let env: config::Environment = std::env::vars_os()
        .map(|(key, value)| {
            (
                key.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let settings = match Settings::resolve(&flags, &env, &cwd) {
        Ok(settings) => settings,
        Err(error) => {
            logging::install(tracing::Level::INFO, logging::LogFormat::Text);
            tracing::error!(target: "azmlinfsrv", "{}", error.message);
            logging::flush();
            std::process::exit(error.exit_code);
        }
    };
    // AZUREML_LOG_LEVEL can make the server more verbose (DEBUG) but never hides the
    // lines users grep for (the reference ignores it for its own lines altogether).
    logging::install(
        logging::level_from_name(&settings.log_level).max(tracing::Level::INFO),
        settings.log_format,
    );
    let runtime = match build_runtime(settings.worker_count) {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(target: "azmlinfsrv", "Cannot start the async runtime: {error}");
            logging::flush();
            std::process::exit(1);
        }
    };
    let exit_code = match runtime.block_on(server::run(settings)) {
        Ok(()) => 0,
        Err(error) => {
            tracing::error!(target: "azmlinfsrv", "{}", error.message);
            error.exit_code
        }
    };
    // Runners are killed on drop; do not wait for stray blocking tasks.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    logging::flush();
    std::process::exit(exit_code);
}

/// The async runtime. The Python workers need CPU too: the server takes about half of
/// the cores, at most one thread per worker. On a small machine that is one thread,
/// where a current-thread runtime saves the cross-thread wake-ups of every request
/// (measured: p99 at 64 connections 7.6 ms instead of 53 ms on 2 cores).
fn build_runtime(worker_count: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = (cores / 2).clamp(1, worker_count.max(1));
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// Help and version exit 0; any other argument error prints the error and the help and
/// exits 1, like the reference (which remaps argparse's 2).
fn exit_on_bad_flags(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            std::process::exit(0);
        }
        _ => {
            let _ = error.print();
            eprintln!();
            let _ = <Flags as clap::CommandFactory>::command().print_help();
            std::process::exit(1);
        }
    }
}
