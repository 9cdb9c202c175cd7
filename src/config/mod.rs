//! One immutable `Settings` value, merged once at start-up from the command line, the
//! environment, the config file and the defaults (in that order of precedence). Nothing
//! else in the server reads the environment.
//!
//! - `flags`: the raw command line; `config_file`: the JSON config file;
//! - `values`: every value checked in one place, whatever its source;
//! - `child_env`: what the workers get exported; `banner`: the start-up text;
//! - `paths`: paths resolved as the reference resolves them;
//! - `properties`: property tests of all of the above (any text gives a value or an error).

pub mod banner;
mod child_env;
mod config_file;
mod flags;
mod paths;
#[cfg(test)]
mod properties;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use flags::Flags;

use crate::logging::LogFormat;
use crate::openapi::ServiceDescription;
use crate::startup_error::StartupError;
use config_file::ConfigFile;
use paths::{absolute, normalise, real_path};

/// The version string sent in `x-ms-server-version` and shown in the banner.
pub const SERVER_VERSION: &str = concat!("azmlinfsrv/", env!("CARGO_PKG_VERSION"));

const DEFAULT_PORT: u16 = 5001;
const DEFAULT_HEALTH_PORT: u16 = 5000;
const DEFAULT_SCORING_TIMEOUT_MS: &str = "3600000";
const DEFAULT_QUEUE_LIMIT: usize = 1024;
const DEFAULT_MAX_BODY_MB: usize = 100;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
const DEFAULT_READ_TIMEOUT_SECS: u64 = 30;

/// How the user asked for a Python interpreter, and the variables that finding and
/// activating it depend on; `interpreter` and `conda` resolve it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PythonRequest {
    pub explicit_path: Option<PathBuf>,
    /// `--conda_env`: an env name, or the path of an env folder.
    pub conda_env: Option<String>,
    pub virtual_env: Option<PathBuf>,
    /// The conda env already active in the server's shell, if any.
    pub conda_prefix: Option<PathBuf>,
    pub conda_exe: Option<PathBuf>,
    /// How many conda envs are stacked in the server's shell (activation adds one).
    pub conda_shlvl: Option<String>,
    /// The root of a micromamba installation (its envs are `<root>/envs/NAME`).
    pub mamba_root_prefix: Option<PathBuf>,
    pub path_var: Option<String>,
    pub home: Option<PathBuf>,
}

/// Application Insights as asked for (the key must be a UUID to turn it on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppInsights {
    pub is_enabled: bool,
    pub key: Option<String>,
    /// Whether the key is a UUID, when App Insights was asked for with a key (the banner
    /// says so, in the reference's words); `None` when not asked for.
    pub is_key_valid: Option<bool>,
    /// Where envelopes go: the `IngestionEndpoint` of `APPLICATIONINSIGHTS_CONNECTION_STRING`,
    /// else the public endpoint; no trailing `/`.
    pub ingestion_endpoint: String,
    /// `APP_INSIGHTS_LOG_RESPONSE_ENABLED` (default on): the answer body goes into the
    /// request telemetry's `Response Value`.
    pub is_response_logged: bool,
    /// `AML_MODEL_DC_STORAGE_ENABLED=true`: a `model_data_collection` trace per request.
    pub is_model_data_collected: bool,
    /// `HOSTNAME`, else `Unknown` (the reference's `Container Id`).
    pub container_id: String,
    /// `WORKSPACE_NAME`, else empty.
    pub workspace_name: String,
}

/// The public ingestion endpoint, used when no connection string names another.
pub const DEFAULT_INGESTION_ENDPOINT: &str = "https://dc.services.visualstudio.com";

/// Raw values the banner shows as the user gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShownValues {
    pub config_file_variable: Option<String>,
    pub worker_timeout: Option<String>,
    pub separate_health_endpoint: Option<String>,
    pub cors_origins: Option<String>,
}

/// Everything the server needs to know, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None`: a config file named no script; the runner imports `main` from the app root.
    pub entry_script: Option<PathBuf>,
    pub app_root: PathBuf,
    pub source_dir: Option<String>,
    pub model_dir: Option<String>,
    pub config_file: Option<PathBuf>,
    pub port: u16,
    /// The second listener's port, only when `SEPERATE_HEALTH_ENDPOINT=true`.
    pub health_port: Option<u16>,
    pub worker_count: usize,
    /// `None`: `SCORING_TIMEOUT_MS=0`, no scoring timeout.
    pub scoring_timeout: Option<Duration>,
    pub log_level: String,
    pub service: ServiceDescription,
    pub cors_origins: Vec<String>,
    /// `x-ms-server-version` on answers (`SERVER_VERSION_LOG_RESPONSE_ENABLED`).
    pub is_server_version_header_on: bool,
    pub app_insights: AppInsights,
    /// `AZUREML_DEBUG_PORT` (connect mode): workers connect to a debugger listening there.
    pub debug_port: Option<u16>,
    /// `--debug_port` (listen mode): worker N listens for a debugger on this port + N.
    pub debug_listen_port: Option<u16>,
    /// `--debug_wait`: in listen mode, workers wait for a debugger before the import.
    pub is_debug_wait: bool,
    /// `--debug_errors`: a failed run() answers with the exception's details.
    pub is_debug_errors: bool,
    pub python: PythonRequest,
    pub queue_limit: usize,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    /// How long a client may take to send its headers, and then its body.
    pub read_timeout: Duration,
    /// The user's cache folder, where the runner files are kept: `XDG_CACHE_HOME`, else
    /// `$HOME/.cache`, else `LOCALAPPDATA` (absolute paths only, as the XDG spec says).
    pub cache_home: Option<PathBuf>,
    /// `TMPDIR` (else the system's temporary folder): the private fallback goes there.
    pub temp_dir: PathBuf,
    /// `--reload`: new workers when the code is saved.
    pub reload: bool,
    /// `GET /metrics` is served (`--no_metrics`, `AZMLINFSRV_METRICS`).
    pub is_metrics_on: bool,
    pub log_format: LogFormat,
    /// Variables exported to the workers, as the reference exports them to its workers.
    pub child_env: Vec<(String, String)>,
    pub shown: ShownValues,
    /// Warnings to give once logging is up (unknown or ignored config keys).
    pub notices: Vec<String>,
}

/// A snapshot of the process environment, so that merging is a pure function.
pub type Environment = BTreeMap<String, String>;

/// Where a value comes from: the environment first, then the config file.
struct Sources<'a> {
    env: &'a Environment,
    config: ConfigFile,
}

impl Sources<'_> {
    fn lookup(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned().or_else(|| self.config.get(key))
    }

    fn env(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned()
    }

    /// A flag's value, else its environment variable checked by `parse`, else `default`.
    fn flag_or_env<T>(
        &self,
        flag: Option<T>,
        key: &str,
        parse: impl Fn(&str, &str) -> Result<T, StartupError>,
        default: T,
    ) -> Result<T, StartupError> {
        match (flag, self.env.get(key)) {
            (Some(value), _) => Ok(value),
            (None, Some(text)) => parse(key, text),
            (None, None) => Ok(default),
        }
    }
}

impl Settings {
    /// Merges flags, environment and config file. `cwd` is the working directory.
    pub fn resolve(flags: &Flags, env: &Environment, cwd: &Path) -> Result<Self, StartupError> {
        if flags.entry_script.is_none() && flags.config_file.is_none() {
            return Err(StartupError::usage(
                "Either provide an entry_script using --entry_script or provide a path to the \
                 configuration file using --config_file",
            ));
        }
        // Unset: the working directory itself (the reference exports `os.getcwd()`).
        let app_root = match env.get("AML_APP_ROOT") {
            Some(root) if Path::new(root).is_absolute() => PathBuf::from(root),
            Some(root) => normalise(&cwd.join(root)),
            None => cwd.to_path_buf(),
        };
        let entry_from_flag = flags
            .entry_script
            .as_ref()
            .map(|path| real_path(&absolute(cwd, path)));
        let config_file =
            config_file::locate(flags, env, cwd, &app_root, entry_from_flag.as_deref());
        let config = match &config_file {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let mut notices = Vec::new();
        notices.extend(config.unknown_key_warning());
        notices.extend(config.ignored_app_root_warning());
        let sources = Sources { env, config };

        // A config file without a script: the reference imports `main` from the app root.
        let entry_script = entry_from_flag.or_else(|| {
            sources
                .lookup("AZUREML_ENTRY_SCRIPT")
                .map(|path| real_path(&absolute(&app_root, Path::new(&path))))
        });
        let worker_count = sources.flag_or_env(
            flags.worker_count,
            "WORKER_COUNT",
            |key, text| values::whole_number(key, text, 1, "a count of worker processes"),
            1,
        )?;
        // The reference ignores SERVER_PORT from the environment: only --port moves it.
        let port = flags.port.unwrap_or(DEFAULT_PORT);
        let separate_health_endpoint = sources.env("SEPERATE_HEALTH_ENDPOINT");
        let health_port = (separate_health_endpoint.as_deref() == Some("true"))
            .then(|| flags.health_port.unwrap_or(DEFAULT_HEALTH_PORT));
        let is_server_version_header_on = env
            .get("SERVER_VERSION_LOG_RESPONSE_ENABLED")
            .is_none_or(|v| v.eq_ignore_ascii_case("true"));
        let app_insights = app_insights(flags, &sources);
        let cors_text = flags
            .access_control_allow_origins
            .clone()
            .or_else(|| sources.lookup("AML_CORS_ORIGINS"));
        let cors_origins = cors_text
            .iter()
            .flat_map(|text| text.split(','))
            .map(|origin| origin.trim().to_string())
            .filter(|origin| !origin.is_empty())
            .collect();
        let scoring_timeout = values::scoring_timeout(
            &sources
                .lookup("SCORING_TIMEOUT_MS")
                .unwrap_or_else(|| DEFAULT_SCORING_TIMEOUT_MS.into()),
        )?;
        let debug_port = sources
            .lookup("AZUREML_DEBUG_PORT")
            .map(|text| values::port("AZUREML_DEBUG_PORT", &text))
            .transpose()?;
        let debug_listen_port = sources
            .flag_or_env(
                flags.debug_port.map(Some),
                "AZMLINFSRV_DEBUG_PORT",
                |key, text| values::port(key, text).map(Some),
                None,
            )?
            .map(|port| values::debug_ports(port, worker_count))
            .transpose()?;
        let is_debug_wait = sources.flag_or_env(
            flags.debug_wait.then_some(true),
            "AZMLINFSRV_DEBUG_WAIT",
            values::switch,
            false,
        )?;
        if is_debug_wait && debug_listen_port.is_none() {
            return Err(StartupError::usage(
                "--debug_wait (AZMLINFSRV_DEBUG_WAIT) makes workers wait for a debugger on the \
                 port given by --debug_port (AZMLINFSRV_DEBUG_PORT), which is not set: add \
                 --debug_port 5678, say.",
            ));
        }
        let is_debug_errors = sources.flag_or_env(
            flags.debug_errors.then_some(true),
            "AZMLINFSRV_DEBUG_ERRORS",
            values::switch,
            false,
        )?;
        let queue_limit = sources.flag_or_env(
            flags.queue_limit,
            "AZMLINFSRV_QUEUE_LIMIT",
            |key, text| values::whole_number(key, text, 1, "a count of requests"),
            DEFAULT_QUEUE_LIMIT,
        )?;
        let max_body_mb = sources.flag_or_env(
            flags.max_body_mb,
            "AZMLINFSRV_MAX_BODY_MB",
            |key, text| values::whole_number(key, text, 1, "a size in MiB"),
            DEFAULT_MAX_BODY_MB,
        )?;
        let shutdown_grace_secs = sources.flag_or_env(
            flags.shutdown_grace,
            "AZMLINFSRV_SHUTDOWN_GRACE",
            |key, text| values::seconds(key, text, 0),
            DEFAULT_SHUTDOWN_GRACE_SECS,
        )?;
        let read_timeout_secs = sources.flag_or_env(
            flags.read_timeout.map(|secs| secs as u64),
            "AZMLINFSRV_READ_TIMEOUT",
            |key, text| values::seconds(key, text, 1),
            DEFAULT_READ_TIMEOUT_SECS,
        )?;
        let reload = sources.flag_or_env(
            flags.reload.then_some(true),
            "AZMLINFSRV_RELOAD",
            values::switch,
            false,
        )?;
        if reload && debug_listen_port.is_some() {
            // A reload starts the new workers while the old ones still hold the ports.
            return Err(StartupError::usage(
                "--reload cannot be used with --debug_port (AZMLINFSRV_DEBUG_PORT): a reload \
                 starts new workers while the old ones still listen on the debug ports. Use one \
                 of them, or attach the debugger by pid (the log names each worker's pid).",
            ));
        }
        let is_metrics_on = sources.flag_or_env(
            flags.no_metrics.then_some(false),
            "AZMLINFSRV_METRICS",
            values::switch,
            true,
        )?;
        let log_format_flag = flags
            .log_format
            .as_deref()
            .map(|text| values::log_format("--log_format", text))
            .transpose()?;
        let log_format = sources.flag_or_env(
            log_format_flag,
            "AZMLINFSRV_LOG_FORMAT",
            values::log_format,
            LogFormat::Text,
        )?;
        let shown = ShownValues {
            config_file_variable: flags
                .config_file
                .as_ref()
                .map(|path| real_path(&absolute(cwd, path)).display().to_string())
                .or_else(|| sources.env("AZUREML_CONFIG_FILE")),
            worker_timeout: sources.env("WORKER_TIMEOUT"),
            separate_health_endpoint,
            cors_origins: cors_text,
        };
        let mut settings = Settings {
            entry_script,
            source_dir: sources.lookup("AZUREML_SOURCE_DIRECTORY"),
            app_root,
            model_dir: flags
                .model_dir
                .clone()
                .or_else(|| sources.lookup("AZUREML_MODEL_DIR")),
            config_file,
            port,
            health_port,
            worker_count,
            scoring_timeout,
            log_level: sources
                .lookup("AZUREML_LOG_LEVEL")
                .unwrap_or_else(|| "INFO".into()),
            service: ServiceDescription {
                service_name: sources
                    .lookup("SERVICE_NAME")
                    .unwrap_or_else(|| "ML service".into()),
                service_version: sources
                    .lookup("SERVICE_VERSION")
                    .unwrap_or_else(|| "1.0".into()),
                path_prefix: sources.lookup("SERVICE_PATH_PREFIX").unwrap_or_default(),
            },
            cors_origins,
            is_server_version_header_on,
            app_insights,
            debug_port,
            debug_listen_port,
            is_debug_wait,
            is_debug_errors,
            python: python_request(flags, env),
            queue_limit,
            max_body_bytes: max_body_mb.saturating_mul(1024 * 1024),
            shutdown_grace: Duration::from_secs(shutdown_grace_secs),
            read_timeout: Duration::from_secs(read_timeout_secs),
            cache_home: cache_home(env),
            temp_dir: env
                .get("TMPDIR")
                .map(PathBuf::from)
                .filter(|dir| dir.is_absolute())
                .unwrap_or_else(default_temp_dir),
            reload,
            is_metrics_on,
            log_format,
            child_env: Vec::new(),
            shown,
            notices,
        };
        settings.child_env = child_env::exported(&settings, flags);
        Ok(settings)
    }

    /// `SCORING_TIMEOUT_MS` as given (0 when off), for messages and the runner.
    pub fn scoring_timeout_ms(&self) -> u64 {
        self.scoring_timeout
            .map_or(0, |timeout| timeout.as_millis() as u64)
    }
}

fn app_insights(flags: &Flags, sources: &Sources) -> AppInsights {
    let key = flags
        .appinsights_instrumentation_key
        .clone()
        .or_else(|| sources.lookup("AML_APP_INSIGHTS_KEY"));
    let is_true = |name: &str| {
        sources
            .lookup(name)
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    };
    // "true" in any case, as the reference's settings parse it.
    let is_asked_for =
        flags.appinsights_instrumentation_key.is_some() || is_true("AML_APP_INSIGHTS_ENABLED");
    let is_enabled = is_asked_for && key.as_deref().is_some_and(values::is_uuid);
    let ingestion_endpoint = sources
        .env("APPLICATIONINSIGHTS_CONNECTION_STRING")
        .and_then(|text| ingestion_endpoint_of(&text))
        .unwrap_or_else(|| DEFAULT_INGESTION_ENDPOINT.to_string());
    AppInsights {
        is_enabled,
        is_key_valid: (is_asked_for && key.is_some()).then_some(is_enabled),
        key,
        ingestion_endpoint,
        is_response_logged: !sources
            .lookup("APP_INSIGHTS_LOG_RESPONSE_ENABLED")
            .is_some_and(|value| value.eq_ignore_ascii_case("false")),
        is_model_data_collected: is_true("AML_MODEL_DC_STORAGE_ENABLED"),
        container_id: sources
            .env("HOSTNAME")
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "Unknown".into()),
        workspace_name: sources.lookup("WORKSPACE_NAME").unwrap_or_default(),
    }
}

fn default_temp_dir() -> PathBuf {
    if cfg!(unix) {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    }
}

fn cache_home(env: &Environment) -> Option<PathBuf> {
    let absolute = |key: &str| {
        env.get(key)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .or_else(|| absolute("LOCALAPPDATA"))
}

/// `IngestionEndpoint=...` of an Application Insights connection string
/// (`Key=value;Key=value`, keys in any case), without its trailing `/`.
fn ingestion_endpoint_of(connection_string: &str) -> Option<String> {
    connection_string.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let value = value.trim().trim_end_matches('/');
        (name.trim().eq_ignore_ascii_case("IngestionEndpoint") && !value.is_empty())
            .then(|| value.to_string())
    })
}

fn python_request(flags: &Flags, env: &Environment) -> PythonRequest {
    PythonRequest {
        explicit_path: flags
            .python
            .clone()
            .or_else(|| env.get("AZMLINFSRV_PYTHON").map(PathBuf::from)),
        conda_env: flags
            .conda_env
            .clone()
            .or_else(|| env.get("AZMLINFSRV_CONDA_ENV").cloned()),
        virtual_env: env.get("VIRTUAL_ENV").map(PathBuf::from),
        conda_prefix: env.get("CONDA_PREFIX").map(PathBuf::from),
        conda_exe: env.get("CONDA_EXE").map(PathBuf::from),
        conda_shlvl: env.get("CONDA_SHLVL").cloned(),
        mamba_root_prefix: env.get("MAMBA_ROOT_PREFIX").map(PathBuf::from),
        path_var: env.get("PATH").cloned(),
        home: env
            .get("HOME")
            .or_else(|| env.get("USERPROFILE"))
            .map(PathBuf::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_with_script() -> Flags {
        Flags {
            entry_script: Some(PathBuf::from("score.py")),
            ..Flags::default()
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> Environment {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_reference() {
        let settings =
            Settings::resolve(&flags_with_script(), &Environment::new(), Path::new("/app"))
                .unwrap();
        assert_eq!(settings.port, 5001);
        assert_eq!(settings.health_port, None);
        assert_eq!(settings.worker_count, 1);
        assert_eq!(
            settings.scoring_timeout,
            Some(Duration::from_millis(3_600_000))
        );
        assert_eq!(settings.service.service_name, "ML service");
        assert_eq!(settings.entry_script, Some(PathBuf::from("/app/score.py")));
        assert_eq!(settings.app_root, PathBuf::from("/app"));
        assert!(settings.is_server_version_header_on);
    }

    #[test]
    fn command_line_wins_over_environment() {
        let mut flags = flags_with_script();
        flags.access_control_allow_origins = Some("http://x".into());
        let env = env_of(&[
            ("AML_CORS_ORIGINS", "http://a, http://b"),
            ("SCORING_TIMEOUT_MS", "1000"),
        ]);
        let settings = Settings::resolve(&flags, &env, Path::new("/app")).unwrap();
        assert_eq!(settings.cors_origins, vec!["http://x"]);
        assert_eq!(settings.scoring_timeout, Some(Duration::from_millis(1000)));
    }

    #[test]
    fn reload_is_off_unless_the_flag_or_the_variable_turns_it_on() {
        let resolve = |flags: &Flags, env: &[(&str, &str)]| {
            Settings::resolve(flags, &env_of(env), Path::new("/app")).map(|s| s.reload)
        };
        assert_eq!(resolve(&flags_with_script(), &[]), Ok(false));
        assert_eq!(
            resolve(&flags_with_script(), &[("AZMLINFSRV_RELOAD", "true")]),
            Ok(true)
        );
        let mut flags = flags_with_script();
        flags.reload = true;
        assert_eq!(resolve(&flags, &[("AZMLINFSRV_RELOAD", "false")]), Ok(true));
        assert!(resolve(&flags_with_script(), &[("AZMLINFSRV_RELOAD", "sometimes")]).is_err());
    }

    #[test]
    fn metrics_and_log_format_come_from_flag_or_environment() {
        let settings =
            Settings::resolve(&flags_with_script(), &Environment::new(), Path::new("/app"))
                .unwrap();
        assert!(settings.is_metrics_on);
        assert_eq!(settings.log_format, LogFormat::Text);
        let env = env_of(&[
            ("AZMLINFSRV_METRICS", "false"),
            ("AZMLINFSRV_LOG_FORMAT", "json"),
        ]);
        let settings = Settings::resolve(&flags_with_script(), &env, Path::new("/app")).unwrap();
        assert!(!settings.is_metrics_on);
        assert_eq!(settings.log_format, LogFormat::Json);
        let mut flags = flags_with_script();
        flags.no_metrics = true;
        flags.log_format = Some("text".into());
        let env = env_of(&[
            ("AZMLINFSRV_METRICS", "true"),
            ("AZMLINFSRV_LOG_FORMAT", "json"),
        ]);
        let settings = Settings::resolve(&flags, &env, Path::new("/app")).unwrap();
        assert!(!settings.is_metrics_on, "the flag wins");
        assert_eq!(settings.log_format, LogFormat::Text);
        let env = env_of(&[("AZMLINFSRV_LOG_FORMAT", "yaml")]);
        let error = Settings::resolve(&flags_with_script(), &env, Path::new("/app")).unwrap_err();
        assert!(error.message.contains("AZMLINFSRV_LOG_FORMAT"));
    }

    #[test]
    fn cors_origins_are_split_and_trimmed() {
        let env = env_of(&[("AML_CORS_ORIGINS", "http://a.example, http://b.example")]);
        let settings = Settings::resolve(&flags_with_script(), &env, Path::new("/app")).unwrap();
        assert_eq!(
            settings.cors_origins,
            vec!["http://a.example", "http://b.example"]
        );
    }

    #[test]
    fn reload_and_debug_listen_ports_do_not_go_together() {
        let mut flags = flags_with_script();
        flags.reload = true;
        flags.debug_port = Some(5678);
        let error = Settings::resolve(&flags, &Environment::new(), Path::new("/app")).unwrap_err();
        assert_eq!(error.exit_code, 1);
        assert!(error.message.contains("--reload") && error.message.contains("--debug_port"));
    }

    #[test]
    fn neither_script_nor_config_is_a_usage_error() {
        let error =
            Settings::resolve(&Flags::default(), &Environment::new(), Path::new("/")).unwrap_err();
        assert_eq!(error.exit_code, 1);
        assert!(error.message.contains("--entry_script"));
    }

    #[test]
    fn a_bad_timeout_is_a_boot_error_naming_the_variable() {
        let env = env_of(&[("SCORING_TIMEOUT_MS", "abc")]);
        let error = Settings::resolve(&flags_with_script(), &env, Path::new("/app")).unwrap_err();
        assert_eq!(error.exit_code, 3);
        assert!(error.message.contains("SCORING_TIMEOUT_MS") && error.message.contains("abc"));
    }

    #[test]
    fn debug_listen_mode_comes_from_flags_or_environment() {
        let settings =
            Settings::resolve(&flags_with_script(), &Environment::new(), Path::new("/app"))
                .unwrap();
        assert_eq!(settings.debug_listen_port, None);
        assert!(!settings.is_debug_wait && !settings.is_debug_errors);
        let env = env_of(&[
            ("AZMLINFSRV_DEBUG_PORT", "5678"),
            ("AZMLINFSRV_DEBUG_WAIT", "true"),
            ("AZMLINFSRV_DEBUG_ERRORS", "true"),
        ]);
        let settings = Settings::resolve(&flags_with_script(), &env, Path::new("/app")).unwrap();
        assert_eq!(settings.debug_listen_port, Some(5678));
        assert!(settings.is_debug_wait && settings.is_debug_errors);
        let mut flags = flags_with_script();
        flags.debug_port = Some(6000);
        let settings = Settings::resolve(&flags, &env, Path::new("/app")).unwrap();
        assert_eq!(settings.debug_listen_port, Some(6000));
        let env = env_of(&[("AZMLINFSRV_DEBUG_PORT", "99999")]);
        let error = Settings::resolve(&flags_with_script(), &env, Path::new("/app")).unwrap_err();
        assert!(error.message.contains("AZMLINFSRV_DEBUG_PORT"));
        let mut flags = flags_with_script();
        flags.debug_wait = true;
        let error = Settings::resolve(&flags, &Environment::new(), Path::new("/app")).unwrap_err();
        assert!(error.message.contains("--debug_port"), "{}", error.message);
    }

    #[test]
    fn health_port_needs_the_separate_endpoint_switch() {
        let mut flags = flags_with_script();
        flags.health_port = Some(6000);
        let settings = Settings::resolve(&flags, &Environment::new(), Path::new("/app")).unwrap();
        assert_eq!(settings.health_port, None);
        let env = env_of(&[("SEPERATE_HEALTH_ENDPOINT", "true")]);
        let settings = Settings::resolve(&flags, &env, Path::new("/app")).unwrap();
        assert_eq!(settings.health_port, Some(6000));
    }

    #[test]
    fn app_insights_key_must_be_a_uuid() {
        assert!(values::is_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!values::is_uuid("not-a-key"));
        let mut flags = flags_with_script();
        flags.appinsights_instrumentation_key = Some("bogus".into());
        let settings = Settings::resolve(&flags, &Environment::new(), Path::new("/app")).unwrap();
        assert_eq!(settings.app_insights.is_key_valid, Some(false));
        assert!(settings
            .child_env
            .contains(&("AML_APP_INSIGHTS_ENABLED".into(), "false".into())));
        flags.appinsights_instrumentation_key = Some("0f8fad5b-d9cb-469f-a165-70867728950e".into());
        let settings = Settings::resolve(&flags, &Environment::new(), Path::new("/app")).unwrap();
        assert_eq!(settings.app_insights.is_key_valid, Some(true));
        let settings =
            Settings::resolve(&flags_with_script(), &Environment::new(), Path::new("/app"))
                .unwrap();
        assert_eq!(settings.app_insights.is_key_valid, None);
    }

    #[test]
    fn ingestion_endpoint_comes_from_the_connection_string() {
        let key = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let env = env_of(&[
            ("AML_APP_INSIGHTS_ENABLED", "TRUE"),
            ("AML_APP_INSIGHTS_KEY", key),
            (
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                "InstrumentationKey=x;ingestionendpoint=http://127.0.0.1:9/;LiveEndpoint=y",
            ),
        ]);
        let settings = Settings::resolve(&flags_with_script(), &env, Path::new("/app")).unwrap();
        assert!(settings.app_insights.is_enabled);
        assert_eq!(
            settings.app_insights.ingestion_endpoint,
            "http://127.0.0.1:9"
        );
        assert_eq!(settings.app_insights.container_id, "Unknown");
        assert!(settings.app_insights.is_response_logged);
        let settings =
            Settings::resolve(&flags_with_script(), &Environment::new(), Path::new("/app"))
                .unwrap();
        assert_eq!(
            settings.app_insights.ingestion_endpoint,
            DEFAULT_INGESTION_ENDPOINT
        );
    }

    #[test]
    fn app_root_is_the_working_directory_or_made_absolute() {
        let settings = Settings::resolve(
            &flags_with_script(),
            &Environment::new(),
            Path::new("/work/app"),
        )
        .unwrap();
        assert_eq!(settings.app_root.as_os_str(), "/work/app");
        let env = env_of(&[("AML_APP_ROOT", "./sub/../code")]);
        let settings =
            Settings::resolve(&flags_with_script(), &env, Path::new("/work/app")).unwrap();
        assert_eq!(settings.app_root.as_os_str(), "/work/app/code");
    }
}
