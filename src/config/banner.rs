//! The start-up text users and their scripts grep for: the banner, the `Server Settings`
//! block and the `Server Routes` block, in the reference's layout.

use super::Settings;
use crate::logging::print_plain;

/// The `Server Settings` block, label and value, in the contract's order.
pub fn settings_lines(settings: &Settings) -> Vec<(&'static str, String)> {
    let or_none = |value: Option<String>| value.unwrap_or_else(|| "None".into());
    vec![
        (
            "Entry Script Name",
            or_none(
                settings
                    .entry_script
                    .as_ref()
                    .map(|path| path.display().to_string()),
            ),
        ),
        ("Model Directory", or_none(settings.model_dir.clone())),
        (
            "Config File",
            or_none(settings.shown.config_file_variable.clone()),
        ),
        ("Worker Count", settings.worker_count.to_string()),
        (
            "Worker Timeout (seconds)",
            or_none(settings.shown.worker_timeout.clone()),
        ),
        ("Server Port", settings.port.to_string()),
        (
            "Health Port",
            settings.health_port.unwrap_or(settings.port).to_string(),
        ),
        (
            "Application Insights Enabled",
            settings.app_insights.is_enabled.to_string(),
        ),
        (
            "Application Insights Key",
            if settings.app_insights.key.is_some() {
                "AppInsights key provided".into()
            } else {
                "None".into()
            },
        ),
        (
            "Inferencing HTTP server version",
            or_none(
                settings
                    .is_server_version_header_on
                    .then(|| super::SERVER_VERSION.to_string()),
            ),
        ),
        (
            "CORS for the specified origins",
            or_none(
                settings
                    .shown
                    .cors_origins
                    .as_ref()
                    .map(|text| format!("Enabling CORS for {text}")),
            ),
        ),
        (
            "Create dedicated endpoint for health",
            or_none(settings.shown.separate_health_endpoint.clone()),
        ),
    ]
}

pub fn print(settings: &Settings) {
    let mut text = String::new();
    if settings.model_dir.is_none() {
        text.push_str("The environment variable 'AZUREML_MODEL_DIR' has not been set.\n");
        text.push_str("Use the --model_dir command line argument to set it.\n");
    }
    match settings.app_insights.is_key_valid {
        Some(true) => text.push_str("Valid Application Insights instrumentation key provided.\n"),
        Some(false) => {
            text.push_str("Invalid Application Insights instrumentation key provided.\n");
            text.push_str("Application Insights has been disabled.\n");
        }
        None => {}
    }
    text.push_str(&format!(
        "\nAzure ML Inferencing HTTP server v{}\n\n",
        env!("CARGO_PKG_VERSION")
    ));
    text.push_str("\nServer Settings\n---------------\n");
    for (label, value) in settings_lines(settings) {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push_str("\n\nServer Routes\n---------------\n");
    let health_port = settings.health_port.unwrap_or(settings.port);
    text.push_str(&format!("Liveness Probe: GET   127.0.0.1:{health_port}/\n"));
    text.push_str(&format!(
        "Score:          POST  127.0.0.1:{}/score\n\n",
        settings.port
    ));
    print_plain(&text);
}
