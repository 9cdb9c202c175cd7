//! Property tests of settings parsing: any text for any setting, from the environment or
//! the config file, gives `Settings` or a `StartupError` that names what to fix, never
//! a panic; and the value checks accept exactly the values their messages promise.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;

use super::{values, Environment, Flags, Settings};

/// Every variable `Settings::resolve` reads.
const ENV_KEYS: &[&str] = &[
    "AML_APP_INSIGHTS_ENABLED",
    "AML_APP_INSIGHTS_KEY",
    "AML_APP_ROOT",
    "AML_CORS_ORIGINS",
    "AZMLINFSRV_CONDA_ENV",
    "AZMLINFSRV_MAX_BODY_MB",
    "AZMLINFSRV_PYTHON",
    "AZMLINFSRV_QUEUE_LIMIT",
    "AZMLINFSRV_READ_TIMEOUT",
    "AZMLINFSRV_SHUTDOWN_GRACE",
    "AZUREML_CONFIG_FILE",
    "AZUREML_DEBUG_PORT",
    "AZUREML_ENTRY_SCRIPT",
    "AZUREML_LOG_LEVEL",
    "AZUREML_MODEL_DIR",
    "AZUREML_SOURCE_DIRECTORY",
    "CONDA_EXE",
    "CONDA_PREFIX",
    "CONDA_SHLVL",
    "HOME",
    "LOCALAPPDATA",
    "MAMBA_ROOT_PREFIX",
    "PATH",
    "SCORING_TIMEOUT_MS",
    "SEPERATE_HEALTH_ENDPOINT",
    "SERVER_VERSION_LOG_RESPONSE_ENABLED",
    "SERVICE_NAME",
    "SERVICE_PATH_PREFIX",
    "SERVICE_VERSION",
    "TMPDIR",
    "USERPROFILE",
    "VIRTUAL_ENV",
    "WORKER_COUNT",
    "WORKER_TIMEOUT",
    "XDG_CACHE_HOME",
];

/// Bounded so that `cargo test` stays fast.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Text a setting might hold: anything, and often something number-shaped (huge,
/// negative, fractional, padded) since that is where the checks have edges.
fn setting_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Environment values cannot hold NUL.
        any::<String>().prop_map(|text| text.replace('\0', "")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{15,30}",
        any::<f64>().prop_map(|x| x.to_string()),
        (0u32..70_000).prop_map(|n| format!(" {n} ")),
        Just(String::new()),
    ]
}

/// The app folder: one that does not exist, so that no `config.json` is found there.
fn app_dir() -> PathBuf {
    std::env::temp_dir().join("azmlinfsrv-properties-no-such-app")
}

fn flags_with_script() -> Flags {
    Flags {
        entry_script: Some(PathBuf::from("score.py")),
        ..Flags::default()
    }
}

/// A start-up error must say what to fix: one of the settings given, or the config file.
fn names_a_cause(message: &str, keys: &[&str]) -> bool {
    keys.iter().any(|key| message.contains(key)) || message.contains("config file")
}

/// JSON values of every kind, a level or two deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
            .prop_map(Value::from),
        setting_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..3)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Config file text: objects of known keys with any JSON values, any JSON, or any text.
fn config_text() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(ENV_KEYS.to_vec());
    prop_oneof![
        prop::collection::btree_map(keys, json_value(), 0..8).prop_map(|map| {
            Value::Object(map.into_iter().map(|(k, v)| (k.to_string(), v)).collect()).to_string()
        }),
        json_value().prop_map(|value| value.to_string()),
        any::<String>(),
    ]
}

/// A config file in a folder of its own, removed when dropped.
struct ConfigFileOnDisk {
    folder: PathBuf,
}

impl ConfigFileOnDisk {
    fn new(text: &str) -> ConfigFileOnDisk {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let folder = std::env::temp_dir().join(format!(
            "azmlinfsrv-config-properties-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&folder).expect("a scratch folder");
        std::fs::write(folder.join("config.json"), text).expect("writing the config file");
        ConfigFileOnDisk { folder }
    }

    fn path(&self) -> PathBuf {
        self.folder.join("config.json")
    }
}

impl Drop for ConfigFileOnDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn whole_numbers_are_accepted_exactly_when_at_least_the_minimum(text in setting_text(), min in 0u64..5) {
        match values::whole_number("WORKER_COUNT", &text, min, "a count") {
            Ok(value) => {
                prop_assert!(value >= min);
                prop_assert_eq!(text.trim().parse::<u64>().ok(), Some(value));
            }
            Err(error) => {
                prop_assert!(text.trim().parse::<u64>().map_or(true, |value| value < min));
                prop_assert!(error.message.contains("WORKER_COUNT"), "{}", error.message);
                prop_assert_eq!(error.exit_code, 3);
            }
        }
    }

    #[test]
    fn scoring_timeouts_are_off_in_range_or_refused_by_name(text in setting_text()) {
        let number = text.trim().parse::<u64>().ok();
        match values::scoring_timeout(&text) {
            Ok(None) => prop_assert_eq!(number, Some(0)),
            Ok(Some(timeout)) => {
                prop_assert_eq!(Some(timeout.as_millis() as u64), number);
                prop_assert!(timeout.as_millis() <= u128::from(values::MAX_SCORING_TIMEOUT_MS));
            }
            Err(error) => {
                prop_assert!(number.is_none_or(|ms| ms > values::MAX_SCORING_TIMEOUT_MS));
                prop_assert!(error.message.contains("SCORING_TIMEOUT_MS"), "{}", error.message);
            }
        }
    }

    #[test]
    fn ports_are_accepted_exactly_in_range(text in setting_text()) {
        let number = text.trim().parse::<i64>().ok();
        match values::port("AZUREML_DEBUG_PORT", &text) {
            Ok(port) => prop_assert_eq!(Some(i64::from(port)), number.filter(|n| (1..=65535).contains(n))),
            Err(error) => {
                prop_assert!(number.is_none_or(|n| !(1..=65535).contains(&n)));
                prop_assert!(error.message.contains("AZUREML_DEBUG_PORT"), "{}", error.message);
            }
        }
    }

    #[test]
    fn any_environment_gives_settings_or_an_error_naming_a_setting(
        env in prop::collection::btree_map(prop::sample::select(ENV_KEYS.to_vec()), setting_text(), 0..12)
    ) {
        let keys: Vec<&str> = env.keys().copied().collect();
        let env: Environment = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        match Settings::resolve(&flags_with_script(), &env, &app_dir()) {
            Ok(settings) => {
                prop_assert!(settings.worker_count >= 1 && settings.queue_limit >= 1);
                // Times a timer can add to an `Instant` without overflowing.
                prop_assert!(settings.read_timeout.as_secs() <= values::MAX_SECONDS);
                prop_assert!(settings.shutdown_grace.as_secs() <= values::MAX_SECONDS);
            }
            Err(error) => {
                prop_assert!(names_a_cause(&error.message, &keys), "{}", error.message);
                prop_assert!(error.exit_code == 1 || error.exit_code == 3);
            }
        }
    }

    #[test]
    fn any_config_file_gives_settings_or_an_error_naming_a_setting(text in config_text()) {
        let file = ConfigFileOnDisk::new(&text);
        let flags = Flags {
            config_file: Some(file.path()),
            ..Flags::default()
        };
        match Settings::resolve(&flags, &Environment::new(), Path::new(&file.folder)) {
            Ok(settings) => prop_assert_eq!(settings.config_file, Some(file.path())),
            Err(error) => {
                prop_assert!(names_a_cause(&error.message, ENV_KEYS), "{}", error.message);
                prop_assert!(error.exit_code == 1 || error.exit_code == 3);
            }
        }
    }
}
