//! Model data collection (`AML_MODEL_DC_STORAGE_ENABLED=true`): the model ids parsed
//! from `AZUREML_MODEL_DIR` as the reference parses them, and the JSON text of a
//! request's input and prediction.

use std::path::Path;

/// `name:version` of each model under the model directory:
/// - `.../azureml-models/NAME/VERSION` (the last part all digits): that one model;
/// - otherwise every `NAME/VERSION` folder below it whose version is a number.
///
/// A missing or unreadable folder gives no ids (telemetry must not fail the server).
pub fn model_ids(model_dir: Option<&str>) -> Vec<String> {
    let Some(dir) = model_dir.map(Path::new).filter(|dir| dir.exists()) else {
        return Vec::new();
    };
    let last = dir.file_name().and_then(|name| name.to_str()).unwrap_or("");
    if !last.is_empty() && last.bytes().all(|byte| byte.is_ascii_digit()) {
        let name = dir
            .parent()
            .and_then(|parent| parent.file_name())
            .and_then(|name| name.to_str())
            .unwrap_or("");
        return vec![format!("{name}:{last}")];
    }
    let mut ids = Vec::new();
    for model in sorted_entries(dir) {
        let Some(model_name) = model.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        for version in sorted_entries(&model) {
            if let Some(number) = version
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
            {
                ids.push(format!("{model_name}:{number}"));
            }
        }
    }
    ids
}

fn sorted_entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir())
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    entries
}

/// A body as JSON text: itself (compacted) when it is JSON, else a JSON string of its
/// text (or of a note for binary bodies).
pub fn as_json_text(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        return value.to_string();
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => text.to_string(),
        Err(_) => format!("(binary body of {} bytes)", body.len()),
    };
    serde_json::Value::String(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_follow_the_reference_layouts() {
        let root = std::env::temp_dir().join(format!("azmlinfsrv-models-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sklearn/3")).unwrap();
        std::fs::create_dir_all(root.join("sklearn/1")).unwrap();
        std::fs::create_dir_all(root.join("bert/12")).unwrap();
        std::fs::create_dir_all(root.join("bert/notes")).unwrap();
        let all = model_ids(root.to_str());
        assert_eq!(all, ["bert:12", "sklearn:1", "sklearn:3"]);
        let one = model_ids(root.join("sklearn/3").to_str());
        assert_eq!(one, ["sklearn:3"]);
        assert!(model_ids(Some("/no/such/models")).is_empty());
        assert!(model_ids(None).is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn bodies_become_json_text() {
        assert_eq!(as_json_text(br#"{"a": [1, 2]}"#), r#"{"a":[1,2]}"#);
        assert_eq!(as_json_text(b"plain"), r#""plain""#);
        assert_eq!(as_json_text(&[0xff, 0xfe]), r#""(binary body of 2 bytes)""#);
    }
}
