//! The raw command line, as the user typed it: the reference's flags plus ours.
//! Values are validated here only where the reference validates them (ports, worker
//! count); merging with the environment and the config file happens in `settings`.

use std::path::PathBuf;

use clap::Parser;

use crate::worker::wire::PROTOCOL_VERSION;

/// Azure ML Inferencing HTTP server, in Rust.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "azmlinfsrv",
    version = version_text(),
    about = concat!("Azure ML Inferencing HTTP server v", env!("CARGO_PKG_VERSION")),
    long_about = None
)]
pub struct Flags {
    /// The relative or absolute path to the scoring script.
    #[arg(long = "entry_script", value_name = "ENTRY_SCRIPT")]
    pub entry_script: Option<PathBuf>,

    /// The relative or absolute path to the model directory, exported to the script as
    /// AZUREML_MODEL_DIR.
    #[arg(long = "model_dir", value_name = "MODEL_DIR")]
    pub model_dir: Option<String>,

    /// The instrumentation key of the Application Insights resource to publish logs to.
    #[arg(long = "appinsights_instrumentation_key", value_name = "KEY")]
    pub appinsights_instrumentation_key: Option<String>,

    /// The serving port of the server. Default is 5001.
    #[arg(long = "port", value_name = "PORT", value_parser = parse_port)]
    pub port: Option<u16>,

    /// The health port of the server (used when SEPERATE_HEALTH_ENDPOINT=true). Default is 5000.
    #[arg(long = "health_port", value_name = "HEALTH_PORT", value_parser = parse_port)]
    pub health_port: Option<u16>,

    /// The number of Python worker processes that run the scoring script. Default is 1.
    #[arg(long = "worker_count", value_name = "WORKER_COUNT", value_parser = parse_worker_count)]
    pub worker_count: Option<usize>,

    /// Enable CORS for the specified origins, separated by ",". Example: "microsoft.com, bing.com"
    #[arg(long = "access_control_allow_origins", value_name = "ORIGINS")]
    pub access_control_allow_origins: Option<String>,

    /// The relative or absolute path to the configuration file.
    #[arg(long = "config_file", value_name = "CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// The Python interpreter that runs the scoring script (also AZMLINFSRV_PYTHON).
    /// Default: the active virtualenv, the active conda env, then python3 on PATH.
    #[arg(long = "python", value_name = "PYTHON")]
    pub python: Option<PathBuf>,

    /// The name of a conda environment (need not be activated) whose Python runs the
    /// scoring script (also AZMLINFSRV_CONDA_ENV).
    #[arg(long = "conda_env", value_name = "NAME")]
    pub conda_env: Option<String>,

    /// How many requests may wait for a free worker before new ones get 503
    /// (also AZMLINFSRV_QUEUE_LIMIT). Default: 1024.
    #[arg(long = "queue_limit", value_name = "N", value_parser = parse_positive)]
    pub queue_limit: Option<usize>,

    /// The largest request body accepted, in MiB (also AZMLINFSRV_MAX_BODY_MB). Default: 100.
    #[arg(long = "max_body_mb", value_name = "MIB", value_parser = parse_positive)]
    pub max_body_mb: Option<usize>,

    /// Seconds that requests in flight get to finish after SIGTERM or Ctrl+C
    /// (also AZMLINFSRV_SHUTDOWN_GRACE). Default: 30.
    #[arg(long = "shutdown_grace", value_name = "SECONDS", value_parser = parse_grace)]
    pub shutdown_grace: Option<u64>,

    /// Seconds a client gets to send its request headers, and again its body, before the
    /// server gives up on it (also AZMLINFSRV_READ_TIMEOUT). Default: 30.
    #[arg(long = "read_timeout", value_name = "SECONDS", value_parser = parse_read_timeout)]
    pub read_timeout: Option<usize>,

    /// Reload the workers when the entry script, a Python file beside it or under
    /// AZUREML_SOURCE_DIRECTORY, or the config file is saved (also AZMLINFSRV_RELOAD=true).
    /// For local development.
    #[arg(long = "reload")]
    pub reload: bool,

    /// Each worker listens for a debugger (debugpy) on 127.0.0.1: worker 0 on PORT,
    /// worker 1 on PORT+1, ... (also AZMLINFSRV_DEBUG_PORT). For local debugging only.
    #[arg(long = "debug_port", value_name = "PORT", value_parser = parse_port)]
    pub debug_port: Option<u16>,

    /// With --debug_port: each worker waits for a debugger to attach before it imports
    /// the scoring script (also AZMLINFSRV_DEBUG_WAIT=true).
    #[arg(long = "debug_wait")]
    pub debug_wait: bool,

    /// A run() that raises answers 500 with the exception's type, message, file, line
    /// and traceback (also AZMLINFSRV_DEBUG_ERRORS=true). For local use only: clients
    /// see your code's tracebacks.
    #[arg(long = "debug_errors")]
    pub debug_errors: bool,

    /// Turns off the Prometheus metrics at GET /metrics (also AZMLINFSRV_METRICS=false).
    /// Default: on.
    #[arg(long = "no_metrics")]
    pub no_metrics: bool,

    /// The log's format: "text" (the Azure ML server's lines) or "json" (one JSON
    /// object per line, for log collectors); also AZMLINFSRV_LOG_FORMAT. Default: text.
    #[arg(long = "log_format", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// What `--version` prints after the name: ours, and the runner protocol we speak, so a
/// bug report says both (`azmlinfsrv 0.1.0 (runner protocol 1)`).
fn version_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (runner protocol {PROTOCOL_VERSION})",
            env!("CARGO_PKG_VERSION")
        )
    })
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<i64>() {
        Ok(port) if (1..=65535).contains(&port) => Ok(port as u16),
        _ => Err(format!(
            "Specified port '{text}' is invalid. Please specify a port within the [1, 65535] range."
        )),
    }
}

fn parse_worker_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<i64>() {
        Ok(count) if count > 0 => Ok(count as usize),
        _ => Err(format!(
            "Specified worker count '{text}' is invalid. Please specify a worker count greater than zero."
        )),
    }
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(value) if value > 0 => Ok(value),
        _ => Err(format!("'{text}' is not a whole number greater than zero.")),
    }
}

/// `--shutdown_grace`: checked as `AZMLINFSRV_SHUTDOWN_GRACE` is (clap names the flag).
fn parse_grace(text: &str) -> Result<u64, String> {
    super::values::seconds("the grace period", text, 0).map_err(|error| error.message)
}

/// `--read_timeout`: checked as `AZMLINFSRV_READ_TIMEOUT` is (clap names the flag).
fn parse_read_timeout(text: &str) -> Result<usize, String> {
    super::values::seconds("the read timeout", text, 1)
        .map(|secs| secs as usize)
        .map_err(|error| error.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_is_checked_with_a_message_naming_value_and_range() {
        assert_eq!(parse_port("5001"), Ok(5001));
        let message = parse_port("70000").unwrap_err();
        assert!(message.contains("'70000'") && message.contains("[1, 65535]"));
        assert!(parse_port("0").is_err());
        assert!(parse_port("abc").is_err());
    }

    #[test]
    fn worker_count_must_be_positive() {
        assert_eq!(parse_worker_count("2"), Ok(2));
        assert!(parse_worker_count("0")
            .unwrap_err()
            .contains("greater than zero"));
    }

    #[test]
    fn version_names_ours_and_the_protocol() {
        let error = Flags::try_parse_from(["azmlinfsrv", "--version"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(
            error.to_string().trim(),
            format!(
                "azmlinfsrv {} (runner protocol {PROTOCOL_VERSION})",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn flags_use_the_reference_spelling() {
        let flags = Flags::try_parse_from([
            "azmlinfsrv",
            "--entry_script",
            "score.py",
            "--worker_count",
            "3",
            "--access_control_allow_origins",
            "a, b",
        ])
        .unwrap();
        assert_eq!(flags.worker_count, Some(3));
        assert_eq!(flags.access_control_allow_origins.as_deref(), Some("a, b"));
    }
}
