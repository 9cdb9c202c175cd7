//! One immutable `Settings` value, merged once at start-up from the command line, the
//! environment, the config file and the defaults (in that order of precedence). Nothing
//! else in the server reads the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cli::Flags;
use crate::startup_error::StartupError;

/// The version string sent in `x-ms-server-version` and shown in the banner.
pub const SERVER_VERSION: &str = concat!("azmlinfsrv/", env!("CARGO_PKG_VERSION"));

const DEFAULT_PORT: u16 = 5001;
const DEFAULT_HEALTH_PORT: u16 = 5000;
const DEFAULT_SCORING_TIMEOUT_MS: u64 = 3_600_000;
const DEFAULT_QUEUE_LIMIT: usize = 1024;
const DEFAULT_MAX_BODY_MB: usize = 100;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
const DEFAULT_READ_TIMEOUT_SECS: usize = 30;

/// Keys a config file may hold: the environment variables the contract lists.
const CONFIG_KEYS: &[&str] = &[
    "AML_APP_ROOT",
    "AZUREML_SOURCE_DIRECTORY",
    "AZUREML_ENTRY_SCRIPT",
    "SERVICE_NAME",
    "WORKSPACE_NAME",
    "SERVICE_PATH_PREFIX",
    "SERVICE_VERSION",
    "SCORING_TIMEOUT_MS",
    "AZUREML_LOG_LEVEL",
    "AML_APP_INSIGHTS_ENABLED",
    "AML_APP_INSIGHTS_KEY",
    "AML_MODEL_DC_STORAGE_ENABLED",
    "APP_INSIGHTS_LOG_RESPONSE_ENABLED",
    "AML_CORS_ORIGINS",
    "AZUREML_MODEL_DIR",
    "HOSTNAME",
    "AZUREML_DEBUG_PORT",
];

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

/// What `/swagger.json` says about the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInfo {
    pub name: String,
    pub version: String,
    pub path_prefix: String,
}

/// Everything the server needs to know, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub entry_script: PathBuf,
    pub app_root: PathBuf,
    pub source_dir: Option<String>,
    pub model_dir: Option<String>,
    pub config_file: Option<PathBuf>,
    pub port: u16,
    /// The second listener's port, only when `SEPERATE_HEALTH_ENDPOINT=true`.
    pub health_port: Option<u16>,
    pub worker_count: usize,
    pub scoring_timeout: Duration,
    pub log_level: String,
    pub service: ServiceInfo,
    pub cors_origins: Vec<String>,
    /// `Some("azmlinfsrv/x.y.z")` unless `SERVER_VERSION_LOG_RESPONSE_ENABLED` is false.
    pub server_version_header: Option<String>,
    pub python: PythonRequest,
    pub queue_limit: usize,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    /// How long a client may take to send its headers, and then its body.
    pub read_timeout: Duration,
    /// Variables exported to the runners, as the reference exports them to its workers.
    pub child_env: Vec<(String, String)>,
    /// The `Server Settings` block, label and value, in the contract's order.
    pub banner_lines: Vec<(&'static str, String)>,
    /// Whether the App Insights key is a UUID, when App Insights was asked for with a
    /// key (the banner says so, in the reference's words); `None` when not asked for.
    pub is_app_insights_key_valid: Option<bool>,
    /// Warnings to give once logging is up (unknown or ignored config keys).
    pub notices: Vec<String>,
}

/// A snapshot of the process environment, so that merging is a pure function.
pub type Environment = BTreeMap<String, String>;

impl Settings {
    /// Merges flags, environment and config file. `cwd` is the working directory.
    pub fn resolve(flags: &Flags, env: &Environment, cwd: &Path) -> Result<Self, StartupError> {
        if flags.entry_script.is_none() && flags.config_file.is_none() {
            return Err(StartupError::usage(
                "Either provide an entry_script using --entry_script or provide a path to the \
                 configuration file using --config_file",
            ));
        }
        let mut notices = Vec::new();
        let mut child_env: Vec<(String, String)> = Vec::new();

        // Unset: the working directory itself (the reference exports `os.getcwd()`).
        let app_root = match env.get("AML_APP_ROOT") {
            Some(root) if Path::new(root).is_absolute() => PathBuf::from(root),
            Some(root) => normalise(&cwd.join(root)),
            None => cwd.to_path_buf(),
        };
        child_env.push(("AML_APP_ROOT".into(), app_root.display().to_string()));

        let entry_from_flag = flags
            .entry_script
            .as_ref()
            .map(|p| real_path(&absolute(cwd, p)));
        let config_file =
            locate_config_file(flags, env, cwd, &app_root, entry_from_flag.as_deref());
        let config = match &config_file {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        notices.extend(config.unknown_key_warning());
        notices.extend(config.ignored_app_root_warning());
        let lookup = |key: &str| env.get(key).cloned().or_else(|| config.get(key));

        let entry_script =
            match entry_from_flag {
                Some(path) => path,
                None => match lookup("AZUREML_ENTRY_SCRIPT") {
                    Some(path) => real_path(&absolute(&app_root, Path::new(&path))),
                    None => return Err(StartupError::usage(
                        "Either provide an entry_script using --entry_script or provide a path \
                         to the configuration file using --config_file (the config file names \
                         no AZUREML_ENTRY_SCRIPT)",
                    )),
                },
            };
        child_env.push((
            "AZUREML_ENTRY_SCRIPT".into(),
            entry_script.display().to_string(),
        ));
        child_env.push(("TRANSPORT_PROTOCOL".into(), "grpc".into()));
        if let Some(path) = &flags.config_file {
            child_env.push((
                "AZUREML_CONFIG_FILE".into(),
                real_path(&absolute(cwd, path)).display().to_string(),
            ));
        }

        let model_dir = flags
            .model_dir
            .clone()
            .or_else(|| lookup("AZUREML_MODEL_DIR"));
        if let Some(dir) = &flags.model_dir {
            child_env.push(("AZUREML_MODEL_DIR".into(), dir.clone()));
        }

        let worker_count = match flags.worker_count {
            Some(count) => count,
            None => parse_env_number(env, "WORKER_COUNT", 1usize)?.max(1),
        };
        child_env.push(("WORKER_COUNT".into(), worker_count.to_string()));

        // The reference ignores SERVER_PORT from the environment: only --port moves it.
        let port = flags.port.unwrap_or(DEFAULT_PORT);
        let is_health_separate =
            env.get("SEPERATE_HEALTH_ENDPOINT").map(String::as_str) == Some("true");
        let health_port =
            is_health_separate.then(|| flags.health_port.unwrap_or(DEFAULT_HEALTH_PORT));
        child_env.push(("SERVER_PORT".into(), port.to_string()));
        child_env.push((
            "HEALTH_PORT".into(),
            health_port.unwrap_or(port).to_string(),
        ));

        let is_version_header_on = env
            .get("SERVER_VERSION_LOG_RESPONSE_ENABLED")
            .is_none_or(|v| v.eq_ignore_ascii_case("true"));
        let server_version_header = is_version_header_on.then(|| SERVER_VERSION.to_string());
        if let Some(version) = &server_version_header {
            child_env.push(("HTTP_X_MS_SERVER_VERSION".into(), version.clone()));
        }

        let app_insights_key = flags
            .appinsights_instrumentation_key
            .clone()
            .or_else(|| lookup("AML_APP_INSIGHTS_KEY"));
        let asks_for_app_insights = flags.appinsights_instrumentation_key.is_some()
            || lookup("AML_APP_INSIGHTS_ENABLED").as_deref() == Some("true");
        let is_app_insights_on =
            asks_for_app_insights && app_insights_key.as_deref().is_some_and(is_uuid);
        let is_app_insights_key_valid =
            (asks_for_app_insights && app_insights_key.is_some()).then_some(is_app_insights_on);
        child_env.push((
            "AML_APP_INSIGHTS_ENABLED".into(),
            is_app_insights_on.to_string(),
        ));
        if let Some(key) = &flags.appinsights_instrumentation_key {
            child_env.push(("AML_APP_INSIGHTS_KEY".into(), key.clone()));
        }

        let cors_text = flags
            .access_control_allow_origins
            .clone()
            .or_else(|| lookup("AML_CORS_ORIGINS"));
        if let Some(origins) = &flags.access_control_allow_origins {
            child_env.push(("AML_CORS_ORIGINS".into(), origins.clone()));
        }
        let cors_origins: Vec<String> = cors_text
            .iter()
            .flat_map(|text| text.split(','))
            .map(|origin| origin.trim().to_string())
            .filter(|origin| !origin.is_empty())
            .collect();

        let scoring_timeout_ms = match lookup("SCORING_TIMEOUT_MS") {
            Some(text) => parse_number::<u64>("SCORING_TIMEOUT_MS", &text)?,
            None => DEFAULT_SCORING_TIMEOUT_MS,
        };
        let debug_port = lookup("AZUREML_DEBUG_PORT")
            .map(|text| parse_number::<u16>("AZUREML_DEBUG_PORT", &text))
            .transpose()?;
        if let Some(port) = debug_port {
            // The runner waits for the debugger; a port from the config file must reach it too.
            child_env.push(("AZUREML_DEBUG_PORT".into(), port.to_string()));
        }

        let python = PythonRequest {
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
        };

        let queue_limit = match flags.queue_limit {
            Some(limit) => limit,
            None => parse_env_number(env, "AZMLINFSRV_QUEUE_LIMIT", DEFAULT_QUEUE_LIMIT)?,
        };
        let max_body_mb = match flags.max_body_mb {
            Some(limit) => limit,
            None => parse_env_number(env, "AZMLINFSRV_MAX_BODY_MB", DEFAULT_MAX_BODY_MB)?,
        };
        let shutdown_grace_secs = match flags.shutdown_grace {
            Some(secs) => secs,
            None => parse_env_number(
                env,
                "AZMLINFSRV_SHUTDOWN_GRACE",
                DEFAULT_SHUTDOWN_GRACE_SECS,
            )?,
        };

        let read_timeout_secs = match flags.read_timeout {
            Some(secs) => secs,
            None => parse_env_number(env, "AZMLINFSRV_READ_TIMEOUT", DEFAULT_READ_TIMEOUT_SECS)?,
        };

        let exported = |key: &str| {
            child_env
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
                .or_else(|| env.get(key).cloned())
                .unwrap_or_else(|| "None".to_string())
        };
        let banner_lines = vec![
            ("Entry Script Name", entry_script.display().to_string()),
            (
                "Model Directory",
                model_dir.clone().unwrap_or_else(|| "None".into()),
            ),
            ("Config File", exported("AZUREML_CONFIG_FILE")),
            ("Worker Count", worker_count.to_string()),
            ("Worker Timeout (seconds)", exported("WORKER_TIMEOUT")),
            ("Server Port", port.to_string()),
            ("Health Port", health_port.unwrap_or(port).to_string()),
            (
                "Application Insights Enabled",
                is_app_insights_on.to_string(),
            ),
            (
                "Application Insights Key",
                if app_insights_key.is_some() {
                    "AppInsights key provided".into()
                } else {
                    "None".into()
                },
            ),
            (
                "Inferencing HTTP server version",
                server_version_header
                    .clone()
                    .unwrap_or_else(|| "None".into()),
            ),
            (
                "CORS for the specified origins",
                match &cors_text {
                    Some(text) => format!("Enabling CORS for {text}"),
                    None => "None".into(),
                },
            ),
            (
                "Create dedicated endpoint for health",
                exported("SEPERATE_HEALTH_ENDPOINT"),
            ),
        ];

        Ok(Settings {
            entry_script,
            source_dir: lookup("AZUREML_SOURCE_DIRECTORY"),
            app_root,
            model_dir,
            config_file,
            port,
            health_port,
            worker_count,
            scoring_timeout: Duration::from_millis(scoring_timeout_ms),
            log_level: lookup("AZUREML_LOG_LEVEL").unwrap_or_else(|| "INFO".into()),
            service: ServiceInfo {
                name: lookup("SERVICE_NAME").unwrap_or_else(|| "ML service".into()),
                version: lookup("SERVICE_VERSION").unwrap_or_else(|| "1.0".into()),
                path_prefix: lookup("SERVICE_PATH_PREFIX").unwrap_or_default(),
            },
            cors_origins,
            server_version_header,
            python,
            queue_limit,
            max_body_bytes: max_body_mb.saturating_mul(1024 * 1024),
            shutdown_grace: Duration::from_secs(shutdown_grace_secs),
            read_timeout: Duration::from_secs(read_timeout_secs as u64),
            child_env,
            banner_lines,
            is_app_insights_key_valid,
            notices,
        })
    }
}

/// `--config_file`, else `AZUREML_CONFIG_FILE`, else a non-empty `config.json` in the app
/// root or in the entry script's folder (the reference's search order).
fn locate_config_file(
    flags: &Flags,
    env: &Environment,
    cwd: &Path,
    app_root: &Path,
    entry_script: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(path) = &flags.config_file {
        return Some(real_path(&absolute(cwd, path)));
    }
    if let Some(path) = env.get("AZUREML_CONFIG_FILE") {
        let path = absolute(cwd, Path::new(path));
        if is_non_empty_file(&path) {
            return Some(path);
        }
    }
    let script_dir = entry_script.and_then(Path::parent);
    [Some(app_root), script_dir]
        .into_iter()
        .flatten()
        .map(|dir| dir.join("config.json"))
        .find(|path| is_non_empty_file(path))
}

fn is_non_empty_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() > 0)
}

/// The parsed config file: keys are environment variable names.
#[derive(Debug, Default)]
struct ConfigFile {
    path: Option<PathBuf>,
    values: serde_json::Map<String, Value>,
}

impl ConfigFile {
    fn load(path: &Path) -> Result<Self, StartupError> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            StartupError::usage(format!(
                "Cannot read the config file {}: {err}. Check the path given to --config_file.",
                path.display()
            ))
        })?;
        let values = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(values)) => values,
            Ok(_) => {
                return Err(StartupError::boot(format!(
                    "Invalid config file {}: it must hold a JSON object whose keys are environment \
                     variable names, for example {{\"SCORING_TIMEOUT_MS\": 5000}}.",
                    path.display()
                )))
            }
            Err(err) => {
                return Err(StartupError::boot(format!(
                    "Invalid config file {}: {err}. Fix the JSON and start the server again.",
                    path.display()
                )))
            }
        };
        Ok(ConfigFile {
            path: Some(path.to_path_buf()),
            values,
        })
    }

    /// The value as the environment would spell it (numbers and booleans as text).
    fn get(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            Value::Bool(flag) => Some(flag.to_string()),
            other => Some(other.to_string()),
        }
    }

    /// The reference reads the app root from the environment only; so do we, and say so
    /// instead of ignoring the key in silence.
    fn ignored_app_root_warning(&self) -> Option<String> {
        let path = self.path.as_ref()?;
        self.values.contains_key("AML_APP_ROOT").then(|| {
            format!(
                "AML_APP_ROOT in the config file {} is ignored, as by the reference server: set the \
                 AML_APP_ROOT environment variable instead.",
                path.display()
            )
        })
    }

    fn unknown_key_warning(&self) -> Option<String> {
        let unknown: Vec<&str> = self
            .values
            .keys()
            .map(String::as_str)
            .filter(|key| !CONFIG_KEYS.contains(key))
            .collect();
        let path = self.path.as_ref()?;
        (!unknown.is_empty()).then(|| {
            format!(
                "Found extra keys in the config file {} that are not supported by the server \
                 and are ignored: {:?}",
                path.display(),
                unknown
            )
        })
    }
}

fn parse_number<T: std::str::FromStr>(key: &str, text: &str) -> Result<T, StartupError> {
    text.trim().parse::<T>().map_err(|_| {
        StartupError::boot(format!(
            "Configuration error: {key} is '{text}', which is not a valid whole number. \
             Set {key} to a number (environment variable or config file) and start again."
        ))
    })
}

fn parse_env_number<T: std::str::FromStr>(
    env: &Environment,
    key: &str,
    default: T,
) -> Result<T, StartupError> {
    match env.get(key) {
        Some(text) => parse_number(key, text),
        None => Ok(default),
    }
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Symlinks resolved like Python's `os.path.realpath`: a path that does not exist is
/// kept (normalised) so that the "script not found" error can name it.
fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| normalise(path))
}

fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// An App Insights key must look like a UUID (the reference's check).
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(lengths)
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
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
        assert_eq!(settings.scoring_timeout, Duration::from_millis(3_600_000));
        assert_eq!(settings.service.name, "ML service");
        assert_eq!(settings.entry_script, PathBuf::from("/app/score.py"));
        assert_eq!(settings.app_root, PathBuf::from("/app"));
        assert!(settings.server_version_header.is_some());
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
        assert_eq!(settings.scoring_timeout, Duration::from_millis(1000));
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
        assert!(is_uuid("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_uuid("not-a-key"));
        let mut flags = flags_with_script();
        flags.appinsights_instrumentation_key = Some("bogus".into());
        let settings = Settings::resolve(&flags, &Environment::new(), Path::new("/app")).unwrap();
        assert_eq!(settings.is_app_insights_key_valid, Some(false));
        assert!(settings
            .child_env
            .contains(&("AML_APP_INSIGHTS_ENABLED".into(), "false".into())));
        flags.appinsights_instrumentation_key = Some("0f8fad5b-d9cb-469f-a165-70867728950e".into());
        let settings = Settings::resolve(&flags, &Environment::new(), Path::new("/app")).unwrap();
        assert_eq!(settings.is_app_insights_key_valid, Some(true));
        let settings =
            Settings::resolve(&flags_with_script(), &Environment::new(), Path::new("/app"))
                .unwrap();
        assert_eq!(settings.is_app_insights_key_valid, None);
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
