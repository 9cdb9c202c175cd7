//! `--reload`: saving the scoring script starts new workers, and the old ones keep
//! serving until the new ones have run `init()`; a broken save leaves the old code
//! serving with the error's file and line in the log; the fixed save is picked up.
//! The scripts are copies in a scratch folder, edited while a client keeps sending.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::check;
use crate::util::{try_request, Launch, Scratch, Server};

/// How long `init()` takes in the edited scripts: the reload must wait for it.
const INIT_SECONDS: f64 = 0.5;
/// How long a reload's outcome may take to show in the log on a loaded machine.
const LOG_WAIT: Duration = Duration::from_secs(30);

/// A script answering `{"version": VERSION}`, whose `init()` takes `INIT_SECONDS`.
fn script(version: &str) -> String {
    format!(
        "import time\n\
         \n\
         def init():\n\
         \x20   time.sleep({INIT_SECONDS})\n\
         \n\
         def run(data):\n\
         \x20   return {{\"version\": \"{version}\"}}\n"
    )
}

/// Line 6 lacks its colon.
const SYNTAX_ERROR: &str = "import time\n\
    \n\
    def init():\n\
    \x20   pass\n\
    \n\
    def run(data)\n\
    \x20   return {\"version\": \"broken\"}\n";

/// `init()` raises on line 4.
const INIT_RAISES: &str = "import time\n\
    \n\
    def init():\n\
    \x20   raise ValueError(\"no model here\")\n\
    \n\
    def run(data):\n\
    \x20   return {\"version\": \"raises\"}\n";

fn start(scratch: &Scratch, workers: usize) -> Server {
    let script = scratch.write("score.py", &script("v1"));
    let server = Launch::script(&script)
        .arg("--reload")
        .arg("--worker_count")
        .arg(workers.to_string())
        .start();
    check!(
        server,
        server
            .output
            .wait_for("Reload on save: watching", Duration::from_secs(10))
    );
    server
}

/// Saves like an editor that writes a temporary file and renames it over the script.
fn save_by_rename(path: &Path, contents: &str) {
    let temporary = path.with_file_name(".score.py.tmp");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn version(server: &Server) -> String {
    let response = server.post("/score", "{}");
    check!(server, response.status == 200, "{}", response.text());
    response.json()["version"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// What the client saw: when each answer came, and its version or its failure.
type Answers = Arc<Mutex<Vec<(Instant, Result<String, String>)>>>;

/// A client that sends requests one after another until told to stop.
struct Client {
    answers: Answers,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Client {
    fn start(port: u16) -> Client {
        let answers = Answers::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let answers = answers.clone();
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let outcome = match try_request(port, "POST", "/score", &[], b"{}") {
                        Ok(response) if response.status == 200 => Ok(response.json()["version"]
                            .as_str()
                            .unwrap_or("")
                            .to_string()),
                        Ok(response) => Err(format!("{} {}", response.status, response.text())),
                        Err(error) => Err(error.to_string()),
                    };
                    answers.lock().unwrap().push((Instant::now(), outcome));
                }
            }
        });
        Client {
            answers,
            stop,
            thread: Some(thread),
        }
    }

    /// When the first answer from `version` came, waiting at most `timeout`.
    fn first_answer_from(&self, version: &str, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let answers = self.answers.lock().unwrap();
            let first = answers
                .iter()
                .find(|(_, outcome)| outcome.as_deref() == Ok(version));
            if let Some((at, _)) = first {
                return Some(*at);
            }
            drop(answers);
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    fn stop(mut self) -> Vec<(Instant, Result<String, String>)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}

#[test]
fn a_burst_of_saves_gives_one_reload_served_without_a_failed_request() {
    let scratch = Scratch::new("reload-burst");
    let server = start(&scratch, 2);
    let path = scratch.path.join("score.py");
    let client = Client::start(server.port);
    check!(
        server,
        client
            .first_answer_from("v1", Duration::from_secs(10))
            .is_some()
    );
    // An editor's save often writes the file more than once.
    let saved = Instant::now();
    for _ in 0..3 {
        std::fs::write(&path, script("v2")).unwrap();
    }
    let new_code_at = client.first_answer_from("v2", Duration::from_secs(30));
    check!(
        server,
        server
            .output
            .wait_for("Reloaded: 2 workers run the new code", LOG_WAIT)
    );
    let answers = client.stop();
    let Some(new_code_at) = new_code_at else {
        panic!("the new code never answered\n{}", server.describe());
    };
    let took = new_code_at - saved;
    check!(
        server,
        took < Duration::from_secs_f64(1.0 + INIT_SECONDS),
        "the new code answered {took:?} after the save"
    );
    let failures: Vec<_> = answers
        .iter()
        .filter_map(|(_, outcome)| outcome.as_ref().err())
        .collect();
    check!(
        server,
        failures.is_empty(),
        "requests failed during the reload: {failures:?}"
    );
    let during_init = answers
        .iter()
        .filter(|(at, outcome)| *at < new_code_at && outcome.as_deref() == Ok("v1"))
        .count();
    check!(
        server,
        during_init > 5,
        "the old code kept answering while the new one started: {during_init}"
    );
    let log = server.output.text();
    check!(
        server,
        log.matches("Reloading: score.py changed").count() == 1,
        "one reload for the burst"
    );
}

#[test]
fn a_broken_save_leaves_the_old_code_serving_and_the_fix_is_picked_up() {
    let scratch = Scratch::new("reload-broken");
    let server = start(&scratch, 1);
    let path = scratch.path.join("score.py");
    check!(server, version(&server) == "v1");

    std::fs::write(&path, SYNTAX_ERROR).unwrap();
    check!(
        server,
        server.output.wait_for(
            "The new code failed to start (score.py:6: SyntaxError",
            LOG_WAIT
        ),
        "the log names the file and line of the syntax error"
    );
    check!(
        server,
        server
            .output
            .text()
            .contains("the old workers keep serving")
    );
    check!(server, version(&server) == "v1");

    save_by_rename(&path, INIT_RAISES);
    check!(
        server,
        server.output.wait_for(
            "The new code failed to start (score.py:4: ValueError: no model here)",
            LOG_WAIT
        ),
        "the log names the file and line where init() raised"
    );
    check!(server, version(&server) == "v1");

    save_by_rename(&path, &script("v3"));
    check!(
        server,
        server
            .output
            .wait_for("Reloaded: 1 worker runs the new code", LOG_WAIT)
    );
    check!(server, version(&server) == "v3");
}
