//! The start-up text users and their scripts grep for: the banner, the `Server Settings`
//! block and the `Server Routes` block, in the reference's layout.

use super::Settings;
use crate::logging::{self, LogFormat};

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
    match logging::format() {
        LogFormat::Text => print_text(settings),
        LogFormat::Json => print_json(settings),
    }
}

/// The JSON format's start-up records: each notice one record, then one record with the
/// settings and routes as objects (keys in snake case), so that a log query reads a
/// setting by its key instead of parsing a dozen lines of text.
fn print_json(settings: &Settings) {
    for notice in notices(settings) {
        logging::write_server_record(notice, None);
    }
    let settings_object: serde_json::Map<String, serde_json::Value> = settings_lines(settings)
        .into_iter()
        .map(|(label, value)| (snake_case(label), value.into()))
        .collect();
    let (liveness, score) = routes(settings);
    let fields = serde_json::json!({
        "settings": settings_object,
        "routes": {"liveness_probe": liveness, "score": score},
    });
    logging::write_server_record(
        &format!(
            "Azure ML Inferencing HTTP server v{}",
            env!("CARGO_PKG_VERSION")
        ),
        Some(&fields),
    );
}

/// `Worker Timeout (seconds)` → `worker_timeout_seconds`.
fn snake_case(label: &str) -> String {
    label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("_")
}

/// The lines before the banner: what is missing or refused.
fn notices(settings: &Settings) -> Vec<&'static str> {
    let mut notices = Vec::new();
    if settings.model_dir.is_none() {
        notices.push("The environment variable 'AZUREML_MODEL_DIR' has not been set.");
        notices.push("Use the --model_dir command line argument to set it.");
    }
    match settings.app_insights.is_key_valid {
        Some(true) => notices.push("Valid Application Insights instrumentation key provided."),
        Some(false) => {
            notices.push("Invalid Application Insights instrumentation key provided.");
            notices.push("Application Insights has been disabled.");
        }
        None => {}
    }
    notices
}

/// The liveness and score routes as the banner shows them.
fn routes(settings: &Settings) -> (String, String) {
    let health_port = settings.health_port.unwrap_or(settings.port);
    (
        format!("GET   127.0.0.1:{health_port}/"),
        format!("POST  127.0.0.1:{}/score", settings.port),
    )
}

fn print_text(settings: &Settings) {
    let mut text = String::new();
    for notice in notices(settings) {
        text.push_str(notice);
        text.push('\n');
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
    let (liveness, score) = routes(settings);
    text.push_str(&format!("Liveness Probe: {liveness}\n"));
    text.push_str(&format!("Score:          {score}\n\n"));
    logging::print_plain(&text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_snake_case_keys() {
        assert_eq!(
            snake_case("Worker Timeout (seconds)"),
            "worker_timeout_seconds"
        );
        assert_eq!(
            snake_case("Inferencing HTTP server version"),
            "inferencing_http_server_version"
        );
    }
}
