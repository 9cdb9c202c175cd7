//! The documents checked against the reference's recorded answers.

use super::python_json::{python_float_repr, python_json_text};
use super::user_files::is_python_truthy;
use super::versions::UnknownVersion;
use super::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The conformance cases recorded from the reference, kept in the repository.
const CONFORMANCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");

fn user_swagger_app_root() -> PathBuf {
    Path::new(CONFORMANCE_DIR).join("apps/user_swagger")
}

fn golden_scenario(scenario_name: &str) -> Value {
    let path = Path::new(CONFORMANCE_DIR).join(format!("goldens/{scenario_name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn golden_case<'a>(scenario: &'a Value, case_name: &str) -> &'a Value {
    scenario["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["name"] == case_name)
        .unwrap_or_else(|| panic!("no case {case_name}"))
}

/// A fresh folder under the system temp dir, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "azmlinfsrv-swagger-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        ScratchDir(path)
    }

    fn write(&self, file_name: &str, contents: &[u8]) -> &Self {
        std::fs::write(self.0.join(file_name), contents).unwrap();
        self
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn default_service() -> ServiceDescription {
    ServiceDescription {
        service_name: "ML service".to_owned(),
        service_version: "1.0".to_owned(),
        path_prefix: String::new(),
    }
}

/// The service settings a scenario starts the server with (reference defaults).
fn scenario_service(scenario: &Value) -> ServiceDescription {
    let env = &scenario["env"];
    let setting = |name: &str, default: &str| env[name].as_str().unwrap_or(default).to_owned();
    ServiceDescription {
        service_name: setting("SERVICE_NAME", "ML service"),
        service_version: setting("SERVICE_VERSION", "1.0"),
        path_prefix: setting("SERVICE_PATH_PREFIX", ""),
    }
}

/// The `version` query parameter of a recorded request path, as werkzeug reads it.
fn version_query(request_path: &str) -> Option<String> {
    let (_, query) = request_path.split_once('?')?;
    assert!(
        !query.contains('%') && !query.contains('+'),
        "decode {query} first"
    );
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some(("version", value)) => Some(value.to_owned()),
            None if pair == "version" => Some(String::new()),
            _ => None,
        })
}

fn documents_for_scenario(scenario: &Value, schemas: &ScriptSchemas) -> SwaggerDocuments {
    let empty_app_root = ScratchDir::new();
    let app_root = match scenario["env"]["AML_APP_ROOT"].as_str() {
        Some(configured) => PathBuf::from(configured.replace("{CONF}", CONFORMANCE_DIR)),
        None => empty_app_root.0.clone(),
    };
    SwaggerDocuments::build(&scenario_service(scenario), schemas, &app_root).unwrap()
}

/// Replays every recorded `GET /swagger.json` of a scenario against the documents
/// built for it: status, parsed body, and for `200` the exact bytes the reference
/// sent. Returns the names of the cases checked.
fn replay_swagger_cases(scenario_name: &str, schemas: &ScriptSchemas) -> Vec<String> {
    let scenario = golden_scenario(scenario_name);
    let documents = documents_for_scenario(&scenario, schemas);
    let mut checked = Vec::new();
    for case in scenario["cases"].as_array().unwrap() {
        let request = &case["request"];
        let path = request["path"].as_str().unwrap_or_default();
        if request["method"] != "GET"
            || !(path == "/swagger.json" || path.starts_with("/swagger.json?"))
        {
            continue;
        }
        let case_name = case["name"].as_str().unwrap();
        let expected_body = &case["expect"]["body"]["json"];
        let query = version_query(path);
        match (
            case["expect"]["status"].as_u64(),
            documents.find(query.as_deref()),
        ) {
            (Some(200), Ok(body)) => {
                let served: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(&served, expected_body, "{scenario_name}/{case_name}");
                let recorded_text = case["recorded"]["body_text"].as_str().unwrap();
                assert_eq!(
                    std::str::from_utf8(body).unwrap(),
                    recorded_text,
                    "{scenario_name}/{case_name}: bytes differ from the reference's"
                );
            }
            (Some(404), Err(not_found)) => {
                assert_eq!(
                    &json!({"message": not_found.to_string()}),
                    expected_body,
                    "{scenario_name}/{case_name}"
                );
            }
            (status, outcome) => {
                panic!("{scenario_name}/{case_name}: expected {status:?}, got {outcome:?}")
            }
        }
        checked.push(case_name.to_owned());
    }
    checked
}

/// What the runner reports for a decorated script: the schemas the golden v2
/// document carries, for every version.
fn schemas_recorded_in(scenario_name: &str) -> ScriptSchemas {
    let scenario = golden_scenario(scenario_name);
    let definitions =
        &golden_case(&scenario, "swagger_v2")["expect"]["body"]["json"]["definitions"];
    let declared =
        json!({"input": definitions["ServiceInput"], "output": definitions["ServiceOutput"]});
    ScriptSchemas::from_json(&json!({"2": declared, "3": declared, "3.1": declared}))
}

#[test]
fn hello_swagger_cases_match_the_reference() {
    let checked = replay_swagger_cases("hello", &ScriptSchemas::undecorated());
    assert_eq!(
        checked,
        [
            "swagger_default",
            "swagger_v2",
            "swagger_v3",
            "swagger_v3_1",
            "swagger_v2_0_alias",
            "swagger_v3_0_alias",
            "swagger_v7_404",
            "swagger_empty_version_404",
        ]
    );
}

#[test]
fn hello_swagger_cases_match_with_the_runner_protocol_example() {
    // The `hello` runner handshake from runner/PROTOCOL.md.
    let schemas = ScriptSchemas::from_json(&json!({
        "2": {"input": null, "output": null},
        "3": {"input": null, "output": null},
        "3.1": {"input": null, "output": null},
    }));
    assert_eq!(schemas, ScriptSchemas::undecorated());
    assert_eq!(replay_swagger_cases("hello", &schemas).len(), 8);
    assert_eq!(
        ScriptSchemas::from_json(&Value::Null),
        ScriptSchemas::undecorated()
    );
}

#[test]
fn service_settings_and_path_prefix_match_the_reference() {
    let checked = replay_swagger_cases("swagger_service_env", &ScriptSchemas::undecorated());
    assert_eq!(
        checked,
        [
            "swagger_default",
            "swagger_v2",
            "swagger_v3",
            "swagger_v3_1"
        ]
    );
}

#[test]
fn standard_python_schemas_match_the_reference() {
    let checked = replay_swagger_cases("schema_std", &schemas_recorded_in("schema_std"));
    assert_eq!(
        checked,
        [
            "swagger_default",
            "swagger_v2",
            "swagger_v3",
            "swagger_v3_1"
        ]
    );
}

#[test]
fn numpy_schemas_match_the_reference() {
    let checked = replay_swagger_cases("schema_numpy", &schemas_recorded_in("schema_numpy"));
    assert_eq!(checked, ["swagger_v2", "swagger_v3", "swagger_v3_1"]);
}

#[test]
fn user_files_match_the_reference() {
    let checked = replay_swagger_cases("user_swagger_app_root_env", &ScriptSchemas::undecorated());
    assert_eq!(
        checked,
        [
            "swagger_default",
            "swagger_v2",
            "swagger_v2_0",
            "swagger_v3",
            "swagger_v3_0",
            "swagger_v3_1_generated",
            "swagger_v4_404",
        ]
    );
}

#[test]
fn user_files_are_logged_like_the_reference() {
    let app_root = user_swagger_app_root();
    let documents =
        SwaggerDocuments::build(&default_service(), &ScriptSchemas::undecorated(), &app_root)
            .unwrap();
    assert_eq!(
        documents.startup_log(),
        [
            format!(
                "Loaded user's swagger file for version [2] from {}",
                app_root.join("swagger.json").display()
            ),
            format!(
                "Loaded user's swagger file for version [3] from {}",
                app_root.join("swagger3.json").display()
            ),
            "Swaggers are prepared for the following versions: [2, 3, 3.1].".to_owned(),
        ]
    );
}

#[test]
fn generated_documents_are_logged_like_the_reference() {
    let app_root = ScratchDir::new();
    let documents = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::undecorated(),
        &app_root.0,
    )
    .unwrap();
    assert_eq!(
        documents.startup_log(),
        ["Swaggers are prepared for the following versions: [2, 3, 3.1]."]
    );
}

#[test]
fn version_query_values_and_aliases() {
    use SwaggerVersion::*;
    let accepted = [
        (None, V2),
        (Some("2"), V2),
        (Some("2.0"), V2),
        (Some("3"), V3),
        (Some("3.0"), V3),
        (Some("3.1"), V3_1),
    ];
    for (query, version) in accepted {
        assert_eq!(SwaggerVersion::from_query(query), Ok(version), "{query:?}");
    }
    for rejected in ["", "7", "4", "3.10", "2.00", " 2", "v2", "3.1.0", "V3"] {
        assert_eq!(
            SwaggerVersion::from_query(Some(rejected)),
            Err(UnknownVersion {
                requested: rejected.to_owned()
            })
        );
    }
}

#[test]
fn unknown_version_messages() {
    let message = |query: &str| {
        SwaggerVersion::from_query(Some(query))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message("7"),
        "Swagger version [7] is not valid. Supported versions: [2, 3, 3.1]."
    );
    assert_eq!(
        message(""),
        "Swagger version [] is not valid. Supported versions: [2, 3, 3.1]."
    );
}

#[test]
fn path_prefix_is_normalised_like_the_reference() {
    let cases = [
        ("", ""),
        ("/api/v1/", "/api/v1"),
        ("api", "/api"),
        ("api/", "/api"),
        ("//api//v1//", "/api//v1"),
        ("/", "/"),
        (" api ", "/ api "),
    ];
    for (configured, normalised) in cases {
        let service = ServiceDescription {
            path_prefix: configured.to_owned(),
            ..default_service()
        };
        assert_eq!(
            service.normalised_path_prefix(),
            normalised,
            "{configured:?}"
        );
        let documents = SwaggerDocuments::build(
            &service,
            &ScriptSchemas::undecorated(),
            &ScratchDir::new().0,
        )
        .unwrap();
        for version in SwaggerVersion::ALL {
            let document: Value =
                serde_json::from_slice(documents.document(version).unwrap()).unwrap();
            let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
            assert_eq!(
                paths,
                [
                    &format!("{normalised}/"),
                    &format!("{normalised}/score"),
                    &format!("{normalised}/swagger.json")
                ]
            );
        }
    }
}

#[test]
fn service_name_and_version_are_placed_verbatim() {
    let awkward = "my \"quoted\" \\ svc\n$SERVICE_VERSION$ caf\u{e9} \\u0041";
    let service = ServiceDescription {
        service_name: awkward.to_owned(),
        service_version: "2.5 \"beta\"".to_owned(),
        path_prefix: String::new(),
    };
    let documents = SwaggerDocuments::build(
        &service,
        &ScriptSchemas::undecorated(),
        &ScratchDir::new().0,
    )
    .unwrap();
    for version in SwaggerVersion::ALL {
        let body = documents.document(version).unwrap();
        assert!(body.is_ascii(), "json.dumps escapes non-ASCII");
        let document: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            document["info"],
            json!({
                "title": awkward,
                "description": format!("API specification for the Azure Machine Learning service {awkward}"),
                "version": "2.5 \"beta\"",
            })
        );
    }
}

#[test]
fn version_3_1_is_version_3_with_another_openapi_field() {
    let schemas = schemas_recorded_in("schema_numpy");
    let documents =
        SwaggerDocuments::build(&default_service(), &schemas, &ScratchDir::new().0).unwrap();
    let parse =
        |version| serde_json::from_slice::<Value>(documents.document(version).unwrap()).unwrap();
    let (version_3, mut version_3_1) = (parse(SwaggerVersion::V3), parse(SwaggerVersion::V3_1));
    assert_eq!(version_3["openapi"], "3.0.3");
    assert_eq!(version_3_1["openapi"], "3.1.0");
    version_3_1["openapi"] = json!("3.0.3");
    assert_eq!(version_3, version_3_1);
    assert_eq!(parse(SwaggerVersion::V2)["swagger"], "2.0");
}

#[test]
fn each_version_gets_its_own_schemas() {
    let schemas = ScriptSchemas::from_json(&json!({
        "2": {"input": {"type": "string"}, "output": null},
        "3": {"input": null, "output": {"type": "integer"}},
        "3.1": {"input": {"type": "number"}, "output": {"type": "boolean"}},
    }));
    let documents =
        SwaggerDocuments::build(&default_service(), &schemas, &ScratchDir::new().0).unwrap();
    let parse =
        |version| serde_json::from_slice::<Value>(documents.document(version).unwrap()).unwrap();
    let version_2 = parse(SwaggerVersion::V2);
    assert_eq!(
        version_2["definitions"]["ServiceInput"],
        json!({"type": "string"})
    );
    assert_eq!(
        version_2["definitions"]["ServiceOutput"],
        json!({"type": "object", "example": {}})
    );
    let version_3 = parse(SwaggerVersion::V3);
    assert_eq!(
        version_3["components"]["schemas"]["ServiceInput"],
        json!({"type": "object", "example": {}})
    );
    assert_eq!(
        version_3["components"]["schemas"]["ServiceOutput"],
        json!({"type": "integer"})
    );
    let version_3_1 = parse(SwaggerVersion::V3_1);
    assert_eq!(
        version_3_1["components"]["schemas"]["ServiceInput"],
        json!({"type": "number"})
    );
    assert_eq!(
        version_3_1["components"]["schemas"]["ServiceOutput"],
        json!({"type": "boolean"})
    );
}

#[test]
fn versions_the_decorators_cannot_describe_are_not_found() {
    // inference-schema reports versions 3.0 and 3.1 only, e.g. for a mixed-type array.
    let declared = json!({"input": {"type": "array"}, "output": null});
    let schemas = ScriptSchemas::from_json(&json!({"3": declared, "3.1": declared}));
    let documents =
        SwaggerDocuments::build(&default_service(), &schemas, &ScratchDir::new().0).unwrap();
    assert_eq!(
        documents.supported_versions(),
        [SwaggerVersion::V3, SwaggerVersion::V3_1]
    );
    assert_eq!(documents.document(SwaggerVersion::V2), None);
    let not_found = |query: Option<&str>| documents.find(query).unwrap_err().to_string();
    assert_eq!(
        not_found(None),
        "Swagger version [2] is not supported for the scoring script. Supported swagger versions: [3, 3.1]."
    );
    assert_eq!(
        not_found(Some("2.0")),
        "Swagger version [2.0] is not supported for the scoring script. Supported swagger versions: [3, 3.1]."
    );
    assert_eq!(
        not_found(Some("7")),
        "Swagger version [7] is not valid. Supported versions: [3, 3.1]."
    );
    assert!(documents.find(Some("3.0")).is_ok());
    assert_eq!(
        documents.startup_log(),
        ["Swaggers are prepared for versions [3, 3.1] and skipped for versions [2]."]
    );
}

#[test]
fn a_user_file_serves_a_version_the_decorators_cannot_describe() {
    let app_root = ScratchDir::new();
    app_root.write("swagger2.json", br#"{"swagger": "2.0", "from": "user"}"#);
    let documents = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::from_json(&json!({})),
        &app_root.0,
    )
    .unwrap();
    assert_eq!(
        documents.find(None).unwrap(),
        br#"{"swagger": "2.0", "from": "user"}"#
    );
    assert_eq!(
        documents.find(Some("3")).unwrap_err().to_string(),
        "Swagger version [3] is not supported for the scoring script. Supported swagger versions: [2]."
    );
    assert_eq!(
        documents.startup_log().last().unwrap(),
        "Swaggers are prepared for versions [2] and skipped for versions [3, 3.1]."
    );
}

#[test]
fn no_document_at_all() {
    let documents = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::from_json(&json!({})),
        &ScratchDir::new().0,
    )
    .unwrap();
    assert_eq!(documents.startup_log(), ["No swagger is prepared."]);
    assert_eq!(
        documents.find(Some("")).unwrap_err().to_string(),
        "Swagger version [] is not valid. Supported versions: []."
    );
    assert_eq!(
        documents.find(Some("3.1")).unwrap_err().to_string(),
        "Swagger version [3.1] is not supported for the scoring script. Supported swagger versions: []."
    );
}

#[test]
fn swagger2_json_is_used_when_there_is_no_swagger_json() {
    let app_root = ScratchDir::new();
    app_root.write(
        "swagger2.json",
        br#"{"swagger": "2.0", "info": {"title": "two"}}"#,
    );
    app_root.write("swagger3.1.json", br#"{"openapi": "3.1.0"}"#);
    let documents = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::undecorated(),
        &app_root.0,
    )
    .unwrap();
    assert_eq!(
        documents.document(SwaggerVersion::V2).unwrap(),
        br#"{"swagger": "2.0", "info": {"title": "two"}}"#
    );
    assert_eq!(
        documents.document(SwaggerVersion::V3_1).unwrap(),
        br#"{"openapi": "3.1.0"}"#
    );
    let generated_3: Value =
        serde_json::from_slice(documents.document(SwaggerVersion::V3).unwrap()).unwrap();
    assert_eq!(generated_3["openapi"], "3.0.3");
    assert_eq!(
        documents.startup_log(),
        [
            format!(
                "Loaded user's swagger file for version [2] from {}",
                app_root.0.join("swagger2.json").display()
            ),
            format!(
                "Loaded user's swagger file for version [3.1] from {}",
                app_root.0.join("swagger3.1.json").display()
            ),
            "Swaggers are prepared for the following versions: [2, 3, 3.1].".to_owned(),
        ]
    );
}

#[test]
fn empty_user_files_count_as_absent_but_are_logged() {
    // Observed on the reference: `{}` in swagger.json falls through to swagger2.json,
    // `[]` and `0` fall through to the generated documents; all four are "loaded".
    let app_root = ScratchDir::new();
    app_root
        .write("swagger.json", b"{}")
        .write(
            "swagger2.json",
            br#"{"swagger": "2.0", "from": "swagger2"}"#,
        )
        .write("swagger3.json", b"[]\n")
        .write("swagger3.1.json", b"0");
    let documents = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::undecorated(),
        &app_root.0,
    )
    .unwrap();
    assert_eq!(
        documents.find(Some("2")).unwrap(),
        br#"{"swagger": "2.0", "from": "swagger2"}"#
    );
    let generated = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::undecorated(),
        &ScratchDir::new().0,
    )
    .unwrap();
    for version in [SwaggerVersion::V3, SwaggerVersion::V3_1] {
        assert_eq!(documents.document(version), generated.document(version));
    }
    let loaded: Vec<&str> = documents.startup_log().iter().map(String::as_str).collect();
    assert_eq!(loaded.len(), 5);
    assert!(loaded[0].ends_with("swagger.json") && loaded[0].contains("version [2]"));
    assert!(loaded[1].ends_with("swagger2.json") && loaded[1].contains("version [2]"));
    assert!(loaded[2].ends_with("swagger3.json") && loaded[2].contains("version [3]"));
    assert!(loaded[3].ends_with("swagger3.1.json") && loaded[3].contains("version [3.1]"));
}

#[test]
fn python_falsy_values() {
    for falsy in [
        json!(null),
        json!(false),
        json!(0),
        json!(0.0),
        json!(-0.0),
        json!(""),
        json!([]),
        json!({}),
    ] {
        assert!(!is_python_truthy(&falsy), "{falsy}");
    }
    for truthy in [
        json!(true),
        json!(1),
        json!(-0.5),
        json!(" "),
        json!([0]),
        json!({"a": null}),
    ] {
        assert!(is_python_truthy(&truthy), "{truthy}");
    }
}

#[test]
fn invalid_user_file_is_a_start_up_error_naming_the_file() {
    let app_root = ScratchDir::new();
    app_root.write("swagger3.json", b"{not json");
    let error = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::undecorated(),
        &app_root.0,
    )
    .unwrap_err();
    let path = app_root.0.join("swagger3.json");
    assert_eq!(error.path, path);
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "Cannot load the user's swagger file {}: it is not valid JSON (",
            path.display()
        )),
        "{message}"
    );
    assert!(
        message.contains("version [3]") && message.contains("fix it, or remove it"),
        "{message}"
    );
}

#[test]
fn user_file_that_is_not_utf8_is_a_start_up_error() {
    let app_root = ScratchDir::new();
    app_root.write("swagger3.1.json", b"{\"a\": \"\xff\"}");
    let error = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::undecorated(),
        &app_root.0,
    )
    .unwrap_err();
    assert_eq!(error.path, app_root.0.join("swagger3.1.json"));
    assert!(
        error.to_string().contains("it is not UTF-8 text"),
        "{error}"
    );
}

#[test]
fn unreadable_user_file_is_a_start_up_error() {
    let app_root = ScratchDir::new();
    std::fs::create_dir(app_root.0.join("swagger.json")).unwrap();
    app_root.write("swagger2.json", br#"{"swagger": "2.0"}"#);
    let error = SwaggerDocuments::build(
        &default_service(),
        &ScriptSchemas::undecorated(),
        &app_root.0,
    )
    .unwrap_err();
    assert_eq!(error.path, app_root.0.join("swagger.json"));
    assert!(
        error.to_string().contains("it could not be read ("),
        "{error}"
    );
}

#[test]
fn missing_app_root_means_no_user_files() {
    let app_root = ScratchDir::new().0.join("does-not-exist");
    let documents =
        SwaggerDocuments::build(&default_service(), &ScriptSchemas::undecorated(), &app_root)
            .unwrap();
    assert_eq!(documents.supported_versions(), SwaggerVersion::ALL);
}

#[test]
fn json_text_is_written_as_python_json_dumps() {
    let value = json!({
        "ascii": "a \"b\" \\ / ~",
        "escapes": "\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}",
        "unicode": "caf\u{e9} \u{20ac} \u{1f600}",
        "caf\u{e9}": [1, -2, 18446744073709551615u64, 1.0, 21.5, null, true, false, [], {}],
    });
    assert_eq!(
        python_json_text(&value),
        r#"{"ascii": "a \"b\" \\ / ~", "escapes": "\n\r\t\b\f\u0001\u001f\u007f", "unicode": "caf\u00e9 \u20ac \ud83d\ude00", "caf\u00e9": [1, -2, 18446744073709551615, 1.0, 21.5, null, true, false, [], {}]}"#
    );
}

#[test]
fn floats_are_written_as_python_repr() {
    // Expected texts are Python 3.11's repr() of the same values.
    let cases = [
        (1e16, "1e+16"),
        (1234567890123456.0, "1234567890123456.0"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.5e300, "1.5e+300"),
        (1e22, "1e+22"),
        (21.0, "21.0"),
        (0.1, "0.1"),
        (-2.5e-7, "-2.5e-07"),
        (123456789.125, "123456789.125"),
        (1e-320, "1e-320"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (100.0, "100.0"),
        (12345678901234567.0, "1.2345678901234568e+16"),
        (0.30000000000000004, "0.30000000000000004"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Infinity"),
    ];
    for (value, python_repr) in cases {
        assert_eq!(python_float_repr(value), python_repr, "{value:e}");
    }
}
