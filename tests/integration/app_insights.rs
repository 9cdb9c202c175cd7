//! Application Insights: a local ingestion endpoint (an HTTP server in the test) takes
//! the envelopes the server posts when the connection string points at it; the tests
//! check the request, trace and exception items that arrive (timeouts included), model
//! data collection, `APP_INSIGHTS_LOG_RESPONSE_ENABLED=false`, the `init()` failure
//! sent before exit 3, and that an endpoint that never answers changes no answer's
//! latency nor the shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check;
use crate::util::{test_script, Launch, Server};

const KEY: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// A local ingestion endpoint on 127.0.0.1.
struct Collector {
    port: u16,
    /// Every envelope received, and each post's `content-type`.
    envelopes: Arc<Mutex<Vec<Value>>>,
    content_types: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    /// Answers every post with 200 and keeps its envelopes.
    fn answering() -> Collector {
        Collector::start(false)
    }

    /// Accepts connections and never answers (nor reads): a hung endpoint.
    fn hanging() -> Collector {
        Collector::start(true)
    }

    fn start(is_hanging: bool) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let envelopes = Arc::new(Mutex::new(Vec::new()));
        let content_types = Arc::new(Mutex::new(Vec::new()));
        let (kept, types) = (envelopes.clone(), content_types.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                if is_hanging {
                    held.push(stream);
                    continue;
                }
                let (kept, types) = (kept.clone(), types.clone());
                std::thread::spawn(move || serve_posts(stream, &kept, &types));
            }
        });
        Collector {
            port,
            envelopes,
            content_types,
        }
    }

    fn connection_string(&self) -> String {
        format!(
            "InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:{}/",
            self.port
        )
    }

    fn envelopes(&self) -> Vec<Value> {
        self.envelopes.lock().unwrap().clone()
    }

    /// The `baseData` of the envelopes named `Microsoft.ApplicationInsights.<kind>`.
    fn items(&self, kind: &str) -> Vec<Value> {
        let name = format!("Microsoft.ApplicationInsights.{kind}");
        self.envelopes()
            .into_iter()
            .filter(|envelope| envelope["name"] == name.as_str())
            .map(|envelope| envelope["data"]["baseData"].clone())
            .collect()
    }
}

/// Reads HTTP/1.1 posts off one keep-alive connection, keeping their JSON arrays.
fn serve_posts(stream: TcpStream, kept: &Mutex<Vec<Value>>, types: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut length = 0;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        assert!(
            line.starts_with("POST /v2.1/track "),
            "unexpected request line {line:?}"
        );
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => types.lock().unwrap().push(value.trim().to_string()),
                "content-encoding" => panic!("the reference does not compress; got {value}"),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let batch: Value = serde_json::from_slice(&body).expect("a JSON body");
        let items = batch.as_array().expect("a JSON array of envelopes").clone();
        let answer = format!(
            r#"{{"itemsReceived": {0}, "itemsAccepted": {0}, "errors": []}}"#,
            items.len()
        );
        kept.lock().unwrap().extend(items);
        let _ = write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
    }
}

fn with_app_insights(launch: Launch, collector: &Collector) -> Launch {
    launch
        .env("AML_APP_INSIGHTS_ENABLED", "true")
        .env("AML_APP_INSIGHTS_KEY", KEY)
        .env(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            collector.connection_string(),
        )
}

/// SIGTERM, and the exit: flushing on shutdown delivers what is queued.
fn stop(mut server: Server) -> Server {
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(30));
    check!(
        server,
        status.is_some(),
        "the server did not stop after SIGTERM"
    );
    server
}

#[test]
fn requests_prints_and_run_errors_arrive_as_the_reference_sends_them() {
    let collector = Collector::answering();
    let server = with_app_insights(Launch::script(&test_script("app_insights.py")), &collector)
        .env("SERVICE_NAME", "ai-test-service")
        .env("WORKSPACE_NAME", "ai-test-ws")
        .env("HOSTNAME", "ai-test-host")
        .start();
    let ok = server.request(
        "POST",
        "/score",
        &[("x-ms-client-request-id", "client-ok-1")],
        br#"{"tag": "ok-1", "trace": "t-1"}"#,
    );
    check!(server, ok.status == 200);
    let failed = server.post("/score", r#"{"fail": "purpose"}"#);
    check!(server, failed.status == 500);
    check!(server, server.get("/").status == 200);
    let server = stop(server);
    let log = server.describe();
    assert!(
        log.contains("azmlinfsrv - Starting up app insights client"),
        "{log}"
    );

    let requests = collector.items("Request");
    assert_eq!(
        requests.len(),
        2,
        "one request item per /score, none for GET /: {requests:#?}\n{log}"
    );
    let item_of = |answer: &crate::util::Response| {
        let id = answer
            .header("x-ms-request-id")
            .expect("x-ms-request-id")
            .to_string();
        requests
            .iter()
            .find(|item| item["properties"]["Request Id"] == id.as_str())
            .unwrap_or_else(|| panic!("no request item with Request Id {id}: {requests:#?}"))
            .clone()
    };
    let ok_item = item_of(&ok);
    assert_eq!(ok_item["name"], "/score");
    assert_eq!(ok_item["responseCode"], "200");
    assert_eq!(ok_item["success"], true);
    let duration = ok_item["duration"].as_str().unwrap();
    assert!(
        duration.starts_with("0.00:00:"),
        "d.hh:mm:ss.fff, got {duration}"
    );
    let properties = &ok_item["properties"];
    assert_eq!(properties["Client Request Id"], "client-ok-1");
    assert_eq!(properties["Container Id"], "ai-test-host");
    assert_eq!(properties["Response Value"], ok.text().as_str());
    assert_eq!(properties["resultCode"], "200");
    assert_eq!(properties["success"], "True");
    assert_eq!(properties["http_method"], "POST");
    assert_eq!(properties["Workspace Name"], "ai-test-ws");
    assert_eq!(properties["Service Name"], "ai-test-service");
    let failed_item = item_of(&failed);
    assert_eq!(failed_item["responseCode"], "500");
    assert_eq!(failed_item["success"], false);
    assert_eq!(failed_item["properties"]["success"], "False");

    let envelopes = collector.envelopes();
    assert!(envelopes.iter().all(|envelope| envelope["iKey"] == KEY));
    assert!(
        envelopes
            .iter()
            .all(|e| e["tags"]["ai.cloud.role"] == "ai-test-service"),
        "the cloud role is SERVICE_NAME: {envelopes:#?}"
    );
    let content_types = collector.content_types.lock().unwrap().clone();
    assert!(
        content_types.iter().all(|t| t == "application/json"),
        "{content_types:?}"
    );

    let messages: Vec<String> = collector
        .items("Message")
        .iter()
        .map(|item| item["message"].as_str().unwrap_or("").to_string())
        .collect();
    for printed in [
        "AI-INIT-PRINT-7c1d",
        "AI-RUN-PRINT ok-1",
        "AI-TRACE-RECORD t-1",
    ] {
        assert_eq!(
            messages.iter().filter(|m| *m == printed).count(),
            1,
            "one trace for {printed:?}, got {messages:?}\n{log}"
        );
    }

    let exceptions = collector.items("Exception");
    assert_eq!(exceptions.len(), 1, "{exceptions:#?}\n{log}");
    let exception = &exceptions[0];
    let details = &exception["exceptions"][0];
    let type_name = details["typeName"].as_str().unwrap();
    assert!(
        type_name.ends_with("ModelBroke"),
        "the user's own type, got {type_name}"
    );
    assert_eq!(details["message"], "the model broke on purpose");
    let stack = details["stack"].as_str().unwrap();
    assert!(
        stack.contains("raise ModelBroke"),
        "the traceback as the stack: {stack}"
    );
    assert_eq!(
        exception["properties"]["Request Id"],
        failed.header("x-ms-request-id").unwrap()
    );
    assert_eq!(exception["properties"]["Client Request Id"], "");
}

#[test]
fn model_data_timeouts_and_the_response_value_switch() {
    let collector = Collector::answering();
    let models = crate::util::Scratch::new("ai-models");
    models.write("churn/3/model.pkl", "");
    models.write("churn/4/model.pkl", "");
    models.write("bert/12/weights.bin", "");
    let server = with_app_insights(Launch::script(&test_script("app_insights.py")), &collector)
        .env("AML_MODEL_DC_STORAGE_ENABLED", "true")
        .env("APP_INSIGHTS_LOG_RESPONSE_ENABLED", "false")
        .env("SCORING_TIMEOUT_MS", "1000")
        .env("AZUREML_MODEL_DIR", models.path.display().to_string())
        .start();
    let answer = server.post("/score", r#"{"tag": "mdc", "x": [1, 2]}"#);
    check!(server, answer.status == 200);
    let late = server.post("/score", r#"{"tag": "late", "sleep": 30}"#);
    check!(server, late.status == 500);
    let server = stop(server);

    let requests = collector.items("Request");
    check!(server, requests.len() == 2, "{requests:#?}");
    for request in &requests {
        let properties = &request["properties"];
        assert!(
            properties.get("Response Value").is_none(),
            "left out: {properties:#?}"
        );
    }
    let exceptions = collector.items("Exception");
    check!(
        server,
        exceptions.len() == 1,
        "the timeout is an exception: {exceptions:#?}"
    );
    let details = &exceptions[0]["exceptions"][0];
    assert!(
        details["typeName"].as_str().unwrap().contains("Timeout"),
        "{details:#?}"
    );
    assert_eq!(
        exceptions[0]["properties"]["Request Id"],
        late.header("x-ms-request-id").unwrap()
    );
    let collected: Vec<Value> = collector
        .items("Message")
        .into_iter()
        .filter(|item| item["message"] == "model_data_collection")
        .collect();
    check!(
        server,
        collected.len() == 1,
        "one model data trace, for the answered request: {collected:#?}"
    );
    let properties = &collected[0]["properties"];
    assert_eq!(
        properties["Request Id"],
        answer.header("x-ms-request-id").unwrap()
    );
    let input: Value = serde_json::from_str(properties["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input, serde_json::json!({"tag": "mdc", "x": [1, 2]}));
    let prediction: Value =
        serde_json::from_str(properties["Prediction"].as_str().unwrap()).unwrap();
    assert_eq!(prediction, answer.json());
    assert_eq!(properties["Models"], r#"["bert:12","churn:3","churn:4"]"#);
}

#[test]
fn an_init_failure_is_sent_before_the_server_exits_3() {
    let collector = Collector::answering();
    let mut server =
        with_app_insights(Launch::script(&test_script("init_raises.py")), &collector).spawn();
    let status = server.wait_exit(Duration::from_secs(60));
    check!(
        server,
        status.and_then(|s| s.code()) == Some(3),
        "exit 3, got {status:?}"
    );
    let exceptions = collector.items("Exception");
    check!(
        server,
        exceptions.len() == 1,
        "one exception item: {exceptions:#?}"
    );
    let details = &exceptions[0]["exceptions"][0];
    assert_eq!(details["typeName"], "RuntimeError");
    assert_eq!(details["message"], "INIT-FAILED-FOR-TEST-41ab");
}

/// Milliseconds of each of `count` sequential requests.
fn latencies(server: &Server, count: usize) -> Vec<f64> {
    let mut times: Vec<f64> = (0..count)
        .map(|index| {
            let started = Instant::now();
            let answer = server.post("/score", &format!(r#"{{"tag": "t{index}"}}"#));
            check!(server, answer.status == 200);
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

#[test]
fn a_hanging_endpoint_changes_no_answer_latency_and_no_shutdown() {
    let script = test_script("app_insights.py");
    let baseline_server = Launch::script(&script).start();
    let baseline = latencies(&baseline_server, 30);
    // Said at every start, telemetry on or off, as by the reference.
    let baseline_log = baseline_server.output.text();
    check!(
        baseline_server,
        baseline_log.contains("azmlinfsrv - Starting up app insights client")
    );
    drop(stop(baseline_server));

    let collector = Collector::hanging();
    let server = with_app_insights(Launch::script(&script), &collector).start();
    // 3000 printed lines: full batches go to the endpoint at once and hang there, and
    // the queue fills up: the lines must be dropped, not waited for.
    let started = Instant::now();
    let flood = server.post("/score", r#"{"tag": "flood", "prints": 3000}"#);
    check!(server, flood.status == 200);
    check!(
        server,
        server
            .output
            .wait_for("telemetry item(s) dropped", Duration::from_secs(30)),
        "the drops are said in the log"
    );
    let flood_secs = started.elapsed().as_secs_f64();
    let hung = latencies(&server, 30);
    let median = |times: &[f64]| times[times.len() / 2];
    // Generous: a loaded 2-core machine; a request that waited on the endpoint would
    // take the exporter's post timeout (10 s) or forever.
    check!(
        server,
        median(&hung) < median(&baseline) * 5.0 + 50.0,
        "median latency with a hanging endpoint {:.1} ms, without telemetry {:.1} ms",
        median(&hung),
        median(&baseline)
    );
    check!(
        server,
        hung[hung.len() - 1] < 2000.0,
        "slowest answer {:.0} ms",
        hung[hung.len() - 1]
    );
    check!(
        server,
        flood_secs < 20.0,
        "3000 printed lines took {flood_secs:.1} s"
    );

    let stopping = Instant::now();
    let server = stop(server);
    let stop_secs = stopping.elapsed().as_secs_f64();
    // The flush on shutdown waits at most 3 s for the endpoint.
    check!(
        server,
        stop_secs < 8.0,
        "shutdown took {stop_secs:.1} s with the endpoint hanging"
    );
}
