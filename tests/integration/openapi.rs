//! `/swagger.json` is valid OpenAPI for each version it serves (2.0, 3.0, 3.1), for an
//! undecorated script and for one whose `@input_schema` types are numpy and pandas:
//! checked with `openapi-spec-validator`, run from its own venv.

use std::process::Command;

use serde_json::Value;

use crate::check;
use crate::util::{
    in_venv, openapi_env, output_text, schema_env, test_script, Launch, Scratch, Server,
};

/// `(query, the version field the document must declare)`.
const VERSIONS: [(&str, &str, &str); 3] = [
    ("2", "swagger", "2.0"),
    ("3", "openapi", "3.0"),
    ("3.1", "openapi", "3.1"),
];

/// Fetches every version from `server` into `scratch`, checks the version fields, and
/// returns the files written.
fn fetch_documents(server: &Server, scratch: &Scratch, label: &str) -> Vec<String> {
    let mut files = Vec::new();
    for (query, field, version) in VERSIONS {
        let response = server.get(&format!("/swagger.json?version={query}"));
        check!(
            server,
            response.status == 200,
            "{label} v{query}: {}",
            response.text()
        );
        let document: Value = response.json();
        let declared = document[field].as_str().unwrap_or("");
        check!(
            server,
            declared.starts_with(version),
            "{label} v{query} declares {field} = {declared:?}"
        );
        files.push(
            scratch
                .write(&format!("{label}-{query}.json"), &response.text())
                .display()
                .to_string(),
        );
    }
    files
}

#[test]
fn swagger_documents_are_valid_openapi() {
    let scratch = Scratch::new("openapi");
    let validator = openapi_env().join("bin").join("python");

    let plain = Launch::script(&test_script("probe.py"))
        .env("SERVICE_PATH_PREFIX", "/api/v1/")
        .env("SERVICE_NAME", "plain \"quoted\" service")
        .start();
    let mut files = fetch_documents(&plain, &scratch, "plain");
    let prefixed = plain.get("/swagger.json").json();
    check!(
        plain,
        prefixed["paths"].get("/api/v1/score").is_some(),
        "{}",
        prefixed["paths"]
    );
    check!(
        plain,
        prefixed["info"]["title"] == "plain \"quoted\" service"
    );
    drop(plain);

    let schema = in_venv(Launch::script(&test_script("schema.py")), &schema_env()).start();
    files.extend(fetch_documents(&schema, &scratch, "schema"));
    let document = schema.get("/swagger.json?version=3").json();
    let input = &document["components"]["schemas"]["ServiceInput"];
    check!(
        schema,
        input["properties"]["matrix"]["type"] == "array"
            && input["properties"]["frame"]["type"] == "array"
            && input["properties"]["factor"]["type"] == "integer",
        "ServiceInput from the decorators: {input}"
    );
    drop(schema);

    let output = Command::new(&validator)
        .arg(test_script("validate_openapi.py"))
        .args(&files)
        .output()
        .expect("run the OpenAPI validator");
    let report = output_text(&output);
    assert!(
        output.status.success(),
        "invalid OpenAPI documents:\n{report}"
    );
    assert_eq!(
        report.matches("VALID ").count() - report.matches("INVALID ").count(),
        files.len(),
        "every document checked:\n{report}"
    );
}

#[test]
fn swagger_files_in_the_app_root_replace_the_generated_documents() {
    let scratch = Scratch::new("user-swagger");
    let script = scratch.write(
        "score.py",
        "def init():\n    pass\n\n\ndef run(data):\n    return data\n",
    );
    let user_v2 =
        r#"{"swagger": "2.0", "info": {"title": "user v2", "version": "7"}, "paths": {}}"#;
    let user_v3 =
        r#"{"openapi": "3.0.1", "info": {"title": "user v3", "version": "7"}, "paths": {}}"#;
    scratch.write("swagger.json", user_v2);
    scratch.write("swagger3.json", user_v3);
    let server = Launch::script(&script).start();
    for (query, title) in [
        ("", "user v2"),
        ("?version=2", "user v2"),
        ("?version=3", "user v3"),
        ("?version=3.1", "ML service"),
    ] {
        let response = server.get(&format!("/swagger.json{query}"));
        check!(
            server,
            response.status == 200 && response.json()["info"]["title"] == title,
            "{query}: {} {}",
            response.status,
            response.text()
        );
    }
    let unknown = server.get("/swagger.json?version=7");
    check!(server, unknown.status == 404);
    check!(
        server,
        unknown.json()["message"]
            == "Swagger version [7] is not valid. Supported versions: [2, 3, 3.1]."
    );
    check!(
        server,
        server
            .output
            .wait_for("GET /swagger.json 404 ", std::time::Duration::from_secs(5)),
        "swagger requests are in the access log"
    );
}
