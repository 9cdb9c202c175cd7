//! The config file (`--config_file`, `AZUREML_CONFIG_FILE`, or a `config.json` found
//! beside the app or the script): a JSON object whose keys are environment variable
//! names, read once and consulted after the environment.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::paths::{absolute, real_path};
use super::{Environment, Flags};
use crate::startup_error::StartupError;

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

/// `--config_file`, else `AZUREML_CONFIG_FILE`, else a non-empty `config.json` in the app
/// root or in the entry script's folder (the reference's search order).
pub(super) fn locate(
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
pub(super) struct ConfigFile {
    path: Option<PathBuf>,
    values: serde_json::Map<String, Value>,
}

impl ConfigFile {
    pub(super) fn load(path: &Path) -> Result<Self, StartupError> {
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
    pub(super) fn get(&self, key: &str) -> Option<String> {
        match self.values.get(key)? {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            Value::Bool(flag) => Some(flag.to_string()),
            other => Some(other.to_string()),
        }
    }

    /// The reference reads the app root from the environment only; so do we, and say so
    /// instead of ignoring the key in silence.
    pub(super) fn ignored_app_root_warning(&self) -> Option<String> {
        let path = self.path.as_ref()?;
        self.values.contains_key("AML_APP_ROOT").then(|| {
            format!(
                "AML_APP_ROOT in the config file {} is ignored, as by the reference server: set the \
                 AML_APP_ROOT environment variable instead.",
                path.display()
            )
        })
    }

    pub(super) fn unknown_key_warning(&self) -> Option<String> {
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
