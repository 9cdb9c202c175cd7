//! The environment the server exports to its Python workers, on top of its own: the
//! variables the reference exports to its workers, in one table.

use super::{Flags, Settings, SERVER_VERSION};

/// `(variable, value)` pairs for every worker, given the resolved settings and the
/// command line. Some rows are exported only when their flag was given: a value that
/// came from the config file stays out of `os.environ`, as with the reference.
pub fn exported(settings: &Settings, flags: &Flags) -> Vec<(String, String)> {
    let rows: Vec<(&str, Option<String>)> = vec![
        // Always absolute: the working directory when unset.
        (
            "AML_APP_ROOT",
            Some(settings.app_root.display().to_string()),
        ),
        // Absolute, symlinks resolved; unset when `main` is imported instead.
        (
            "AZUREML_ENTRY_SCRIPT",
            settings
                .entry_script
                .as_ref()
                .map(|path| path.display().to_string()),
        ),
        // Sic: the reference exports it although it speaks HTTP.
        ("TRANSPORT_PROTOCOL", Some("grpc".into())),
        (
            "AZUREML_CONFIG_FILE",
            flags
                .config_file
                .is_some()
                .then_some(settings.config_file.as_ref())
                .flatten()
                .map(|path| path.display().to_string()),
        ),
        ("AZUREML_MODEL_DIR", flags.model_dir.clone()),
        ("WORKER_COUNT", Some(settings.worker_count.to_string())),
        ("SERVER_PORT", Some(settings.port.to_string())),
        (
            "HEALTH_PORT",
            Some(settings.health_port.unwrap_or(settings.port).to_string()),
        ),
        (
            "HTTP_X_MS_SERVER_VERSION",
            settings
                .is_server_version_header_on
                .then(|| SERVER_VERSION.to_string()),
        ),
        (
            "AML_APP_INSIGHTS_ENABLED",
            Some(settings.app_insights.is_enabled.to_string()),
        ),
        (
            "AML_APP_INSIGHTS_KEY",
            flags.appinsights_instrumentation_key.clone(),
        ),
        (
            "AML_CORS_ORIGINS",
            flags.access_control_allow_origins.clone(),
        ),
        // Under --reload no worker writes bytecode caches: Python trusts a cached .pyc
        // whose source has the same size and modification second, so a quick edit of
        // the same length would otherwise reload the old code.
        (
            "PYTHONDONTWRITEBYTECODE",
            settings.reload.then(|| "1".to_string()),
        ),
        // The runner connects to the debugger; a port from the config file must reach it.
        (
            "AZUREML_DEBUG_PORT",
            settings.debug_port.map(|port| port.to_string()),
        ),
    ];
    rows.into_iter()
        .filter_map(|(name, value)| Some((name.to_string(), value?)))
        .collect()
}
