//! The start-up text users and their scripts grep for: the banner, the `Server Settings`
//! block and the `Server Routes` block, in the reference's layout.

use crate::config::Settings;
use crate::logging::print_plain;

pub fn print(settings: &Settings) {
    let mut text = String::new();
    if settings.model_dir.is_none() {
        text.push_str("The environment variable 'AZUREML_MODEL_DIR' has not been set.\n");
        text.push_str("Use the --model_dir command line argument to set it.\n");
    }
    match settings.is_app_insights_key_valid {
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
    for (label, value) in &settings.banner_lines {
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
