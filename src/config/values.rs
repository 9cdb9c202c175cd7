//! Every setting's value checked in one place, whichever source it came from (flag,
//! environment variable or config file), with a message that names the setting, the
//! value and what is accepted.

use std::time::Duration;

use crate::logging::LogFormat;
use crate::startup_error::StartupError;

/// The longest `SCORING_TIMEOUT_MS` accepted: about 24.8 days, the most a POSIX interval
/// timer (and so the runner's deadline) can hold without overflowing.
pub const MAX_SCORING_TIMEOUT_MS: u64 = i32::MAX as u64;

/// The longest time in seconds accepted (`AZMLINFSRV_READ_TIMEOUT`,
/// `AZMLINFSRV_SHUTDOWN_GRACE` and their flags): a year. Far longer ones overflow the
/// clock arithmetic of timers (hyper panicked on every connection, adding 2^64 s to an
/// `Instant`).
pub const MAX_SECONDS: u64 = 365 * 86_400;

/// A time in seconds of at least `min` and at most `MAX_SECONDS`, as text from any source.
pub fn seconds(name: &str, text: &str, min: u64) -> Result<u64, StartupError> {
    let secs = whole_number(name, text, min, "a time in seconds")?;
    if secs > MAX_SECONDS {
        return Err(StartupError::boot(format!(
            "Configuration error: {name} is '{text}', longer than the {MAX_SECONDS} seconds \
             (a year) accepted. Use a smaller value."
        )));
    }
    Ok(secs)
}

/// A whole number of at least `min`, as text from any source.
pub fn whole_number<T>(name: &str, text: &str, min: T, what: &str) -> Result<T, StartupError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match text.trim().parse::<T>() {
        Ok(value) if value >= min => Ok(value),
        _ => Err(StartupError::boot(format!(
            "Configuration error: {name} is '{text}', but it must be {what}, a whole number \
             of at least {min}. Fix {name} (command line, environment variable or config file) \
             and start again."
        ))),
    }
}

/// `SCORING_TIMEOUT_MS`: 0 turns the timeout off, as with the reference (whose timer
/// `setitimer(0)` never fires); values past what a timer can hold are refused instead of
/// failing every request.
pub fn scoring_timeout(text: &str) -> Result<Option<Duration>, StartupError> {
    let name = "SCORING_TIMEOUT_MS";
    let millis: u64 = whole_number(name, text, 0, "a time in milliseconds")?;
    if millis > MAX_SCORING_TIMEOUT_MS {
        return Err(StartupError::boot(format!(
            "Configuration error: {name} is '{text}', longer than the {MAX_SCORING_TIMEOUT_MS} ms \
             (about 24.8 days) a timer can hold. Use a smaller value, or 0 for no scoring timeout."
        )));
    }
    Ok((millis > 0).then(|| Duration::from_millis(millis)))
}

/// An on/off switch from the environment (`AZMLINFSRV_RELOAD=true`).
pub fn switch(name: &str, text: &str) -> Result<bool, StartupError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(StartupError::boot(format!(
            "Configuration error: {name} is '{text}', but it must be true or false. Fix {name} \
             and start again."
        ))),
    }
}

/// A port from the environment or the config file, checked like the `--port` flag.
pub fn port(name: &str, text: &str) -> Result<u16, StartupError> {
    match text.trim().parse::<i64>() {
        Ok(port) if (1..=65535).contains(&port) => Ok(port as u16),
        _ => Err(StartupError::boot(format!(
            "Configuration error: {name} is '{text}', which is not a port: use a whole number \
             in the [1, 65535] range."
        ))),
    }
}

/// `--debug_port`: worker N listens on the base port plus N, so every worker's port
/// must be a port.
pub fn debug_ports(base: u16, worker_count: usize) -> Result<u16, StartupError> {
    let last = u64::from(base) + worker_count.saturating_sub(1) as u64;
    if last > 65535 {
        return Err(StartupError::boot(format!(
            "Configuration error: --debug_port (AZMLINFSRV_DEBUG_PORT) is {base}, and with \
             {worker_count} workers the last one would listen on port {last}, which does not \
             exist. Choose a lower port or fewer workers (--worker_count 1 is best for debugging)."
        )));
    }
    Ok(base)
}

/// `--log_format` / `AZMLINFSRV_LOG_FORMAT`: `text` or `json`, in any case.
pub fn log_format(name: &str, text: &str) -> Result<LogFormat, StartupError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(StartupError::boot(format!(
            "Configuration error: {name} is '{text}', but it must be 'text' (the Azure ML \
             server's log lines) or 'json' (one JSON object per line). Fix {name} and start again."
        ))),
    }
}

/// An App Insights key must look like a UUID (the reference's check).
pub fn is_uuid(text: &str) -> bool {
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

    #[test]
    fn numbers_below_the_minimum_or_not_numbers_name_the_setting() {
        assert_eq!(whole_number("X", " 3 ", 1usize, "a count"), Ok(3));
        for text in ["0", "-1", "abc", "", "1.5"] {
            let error = whole_number("AZMLINFSRV_READ_TIMEOUT", text, 1u64, "seconds").unwrap_err();
            assert!(error.message.contains("AZMLINFSRV_READ_TIMEOUT"));
            assert!(error.message.contains(&format!("'{text}'")));
            assert_eq!(error.exit_code, 3);
        }
    }

    #[test]
    fn scoring_timeout_zero_is_off_and_huge_values_are_refused() {
        assert_eq!(scoring_timeout("0"), Ok(None));
        assert_eq!(
            scoring_timeout("1000"),
            Ok(Some(Duration::from_millis(1000)))
        );
        assert!(scoring_timeout("2147483647").is_ok());
        let error = scoring_timeout("99999999999999").unwrap_err();
        assert!(error.message.contains("SCORING_TIMEOUT_MS") && error.message.contains("24.8"));
        assert!(scoring_timeout("-5").is_err());
    }

    #[test]
    fn times_in_seconds_are_at_most_a_year() {
        assert_eq!(
            seconds("AZMLINFSRV_READ_TIMEOUT", "31536000", 1),
            Ok(MAX_SECONDS)
        );
        let error = seconds("AZMLINFSRV_READ_TIMEOUT", "18446744073709551615", 1).unwrap_err();
        assert!(
            error.message.contains("AZMLINFSRV_READ_TIMEOUT") && error.message.contains("a year")
        );
        assert!(seconds("AZMLINFSRV_SHUTDOWN_GRACE", "0", 0).is_ok());
        assert!(seconds("AZMLINFSRV_READ_TIMEOUT", "0", 1).is_err());
    }

    #[test]
    fn switches_are_true_or_false_and_anything_else_names_the_variable() {
        assert_eq!(switch("AZMLINFSRV_RELOAD", "true"), Ok(true));
        assert_eq!(switch("AZMLINFSRV_RELOAD", " TRUE "), Ok(true));
        assert_eq!(switch("AZMLINFSRV_RELOAD", "false"), Ok(false));
        let error = switch("AZMLINFSRV_RELOAD", "maybe").unwrap_err();
        assert!(error.message.contains("AZMLINFSRV_RELOAD") && error.message.contains("'maybe'"));
    }

    #[test]
    fn switches_and_debug_ports_are_checked() {
        assert_eq!(switch("AZMLINFSRV_DEBUG_WAIT", "TRUE"), Ok(true));
        assert_eq!(switch("AZMLINFSRV_DEBUG_WAIT", "0"), Ok(false));
        let error = switch("AZMLINFSRV_DEBUG_WAIT", "yes please").unwrap_err();
        assert!(
            error.message.contains("AZMLINFSRV_DEBUG_WAIT")
                && error.message.contains("'yes please'")
        );
        assert_eq!(debug_ports(5678, 4), Ok(5678));
        assert_eq!(debug_ports(65535, 1), Ok(65535));
        let error = debug_ports(65535, 2).unwrap_err();
        assert!(error.message.contains("65536"), "{}", error.message);
    }

    #[test]
    fn switches_and_log_formats_name_the_setting_when_wrong() {
        assert_eq!(switch("AZMLINFSRV_METRICS", "False"), Ok(false));
        assert_eq!(switch("AZMLINFSRV_METRICS", " true "), Ok(true));
        let error = switch("AZMLINFSRV_METRICS", "maybe").unwrap_err();
        assert!(error.message.contains("AZMLINFSRV_METRICS") && error.message.contains("'maybe'"));
        assert_eq!(log_format("--log_format", "JSON"), Ok(LogFormat::Json));
        assert_eq!(log_format("--log_format", "text"), Ok(LogFormat::Text));
        let error = log_format("--log_format", "xml").unwrap_err();
        assert!(error.message.contains("--log_format") && error.message.contains("'xml'"));
    }

    #[test]
    fn ports_are_checked_like_the_flag() {
        assert_eq!(port("HEALTH_PORT", "5000"), Ok(5000));
        assert!(port("HEALTH_PORT", "0").is_err());
        assert!(port("HEALTH_PORT", "70000").is_err());
    }
}
