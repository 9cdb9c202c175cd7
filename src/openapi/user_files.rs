//! The user's own swagger files in the app root, which replace a generated document.

use std::io;
use std::path::Path;

use serde_json::Value;

use super::{SwaggerError, SwaggerVersion};

/// The first usable user file for `version`, noting each file found in `startup_log`.
pub(super) fn read_user_document(
    version: SwaggerVersion,
    app_root: &Path,
    startup_log: &mut Vec<String>,
) -> Result<Option<Value>, SwaggerError> {
    for file_name in version.user_file_names() {
        let path = app_root.join(file_name);
        let Some(document) = read_json_file(&path, version)? else {
            continue;
        };
        startup_log.push(format!(
            "Loaded user's swagger file for version [{}] from {}",
            version.label(),
            path.display()
        ));
        // The reference tests the loaded value for truth, so `{}` or `[]` lets the next
        // file, or the generated document, take over.
        if is_python_truthy(&document) {
            return Ok(Some(document));
        }
    }
    Ok(None)
}

/// The JSON in `path`, `None` when there is no such file.
fn read_json_file(path: &Path, version: SwaggerVersion) -> Result<Option<Value>, SwaggerError> {
    let failure = |problem: String| SwaggerError {
        path: path.to_owned(),
        version,
        problem,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(failure(format!("it could not be read ({error})"))),
    };
    let text = String::from_utf8(bytes)
        .map_err(|error| failure(format!("it is not UTF-8 text ({})", error.utf8_error())))?;
    let document = serde_json::from_str(&text)
        .map_err(|error| failure(format!("it is not valid JSON ({error})")))?;
    Ok(Some(document))
}

pub(super) fn is_python_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(members) => !members.is_empty(),
    }
}
