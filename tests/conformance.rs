//! The conformance suite recorded from the reference server (`tests/conformance`),
//! replayed against our binary by this crate: which scenarios run, in what order and
//! how many at once, the report, and the verdict. A test crate of its own so that it
//! runs after the integration tests, not beside them: some cases time requests.
//!
//! `CONFORMANCE_ONLY=hello,schema_*,hello/request_id_*` replays a selection;
//! `CONFORMANCE_SERVER="cmd args"` replays against another server command (e.g. the
//! reference, to check re-recorded goldens). See `tests/conformance/README.md`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[path = "integration/util.rs"]
mod util;

#[path = "conformance/expect.rs"]
mod expect;
#[path = "conformance/golden.rs"]
mod golden;
#[path = "conformance/pyjson.rs"]
mod pyjson;
#[path = "conformance/replay.rs"]
mod replay;

use golden::Scenario;
use replay::{CaseResult, Setup};

/// The number of cases recorded (30 scenarios); a smaller count means goldens were lost.
const RECORDED_CASES: usize = 187;

/// A venv with what the recorded scenarios import (inference-schema, numpy, flask).
fn conformance_venv() -> std::path::PathBuf {
    util::venv("conformance", &["inference-schema", "numpy", "flask"])
}

/// Python's `fnmatch.fnmatchcase`: `*`, `?`, `[seq]`, `[!seq]`.
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|skip| go(&p[1..], &n[skip..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match p.iter().skip(2).position(|&c| c == ']') {
                Some(end) if !n.is_empty() => {
                    let set = &p[1..end + 2];
                    let (negate, set) = match set.first() {
                        Some('!') => (true, &set[1..]),
                        _ => (false, set),
                    };
                    let mut hit = false;
                    let mut i = 0;
                    while i < set.len() {
                        if i + 2 < set.len() && set[i + 1] == '-' {
                            hit |= set[i] <= n[0] && n[0] <= set[i + 2];
                            i += 3;
                        } else {
                            hit |= set[i] == n[0];
                            i += 1;
                        }
                    }
                    hit != negate && go(&p[end + 3..], &n[1..])
                }
                Some(_) => false,
                // No closing bracket: a literal '['.
                None => n.first() == Some(&'[') && go(&p[1..], &n[1..]),
            },
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// The `CONFORMANCE_ONLY` patterns; a case runs when its scenario or `scenario/case`
/// matches one (no patterns: everything).
struct Filter(Vec<String>);

impl Filter {
    fn from_env() -> Filter {
        let value = std::env::var("CONFORMANCE_ONLY").unwrap_or_default();
        Filter(
            value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    fn case(&self, scenario: &str, case: &str) -> bool {
        let full = format!("{scenario}/{case}");
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|p| glob_match(p, scenario) || glob_match(p, &full))
    }

    fn scenario(&self, s: &Scenario) -> bool {
        ["startup_fails", "log"]
            .into_iter()
            .chain(s.cases.iter().map(|c| c.name.as_str()))
            .any(|case| self.case(&s.name, case))
    }
}

/// How many cases a full replay of `s` reports.
fn case_count(s: &Scenario) -> usize {
    if s.startup == Some(golden::Startup::Fail) {
        1
    } else {
        s.cases.len() + usize::from(!s.log_contains.is_empty())
    }
}

/// Prints a scenario's lines together (scenarios finish in any order) and keeps them.
struct Report {
    results: Mutex<Vec<CaseResult>>,
}

impl Report {
    fn add(&self, (results, log_tail): (Vec<CaseResult>, Option<String>)) {
        let mut text = String::new();
        for r in &results {
            if r.problems.is_empty() {
                text.push_str(&format!("PASS {}\n", r.name));
            } else {
                text.push_str(&format!("FAIL {}: {}\n", r.name, r.problems.join(" | ")));
            }
        }
        if let Some(tail) = log_tail {
            text.push_str(&tail);
            text.push('\n');
        }
        // print! (not io::stdout) so that the test harness captures it without
        // --nocapture; the lock keeps one scenario's lines together.
        let mut all = self.results.lock().unwrap();
        print!("{text}");
        all.extend(results);
    }
}

#[test]
fn every_recorded_case_of_the_reference_passes() {
    let started = Instant::now();
    let filter = Filter::from_env();
    let scenarios: Vec<Scenario> = golden::load_scenarios()
        .into_iter()
        .filter(|s| filter.scenario(s))
        .collect();
    assert!(
        !scenarios.is_empty(),
        "CONFORMANCE_ONLY={:?} selects no scenario",
        filter.0
    );
    let command = match std::env::var("CONFORMANCE_SERVER") {
        Ok(cmd) => replay::absolutize(cmd.split_whitespace().map(String::from).collect()),
        Err(_) => vec![util::BINARY.to_string()],
    };
    let log_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("conformance-logs-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir).unwrap();
    let setup = Setup {
        command,
        venv: conformance_venv(),
        log_dir: log_dir.clone(),
    };
    let report = Report {
        results: Mutex::new(Vec::new()),
    };
    let run = |s: &Scenario| replay::run_scenario(&setup, s, &|case| filter.case(&s.name, case));

    // Scenarios that measure time run one at a time after the others, so that no
    // server start-up (Python importing numpy: the heavy part) competes with them.
    // The others run two at a time: most of a scenario is waiting for its server.
    let timed = |s: &&Scenario| s.cases.iter().any(golden::Case::is_timed);
    let (timed, untimed): (Vec<&Scenario>, Vec<&Scenario>) = scenarios.iter().partition(timed);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(s) = untimed.get(next.fetch_add(1, Ordering::Relaxed)) {
                    report.add(run(s));
                }
            });
        }
    });
    for s in &timed {
        report.add(run(s));
    }

    let results = report.results.into_inner().unwrap();
    let failures: Vec<String> = results
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| format!("FAIL {}: {}", r.name, r.problems.join(" | ")))
        .collect();
    let passed = results.len() - failures.len();
    println!(
        "server logs: {} ({:.1}s)",
        log_dir.display(),
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "conformance failures (server logs in {}):\n{}",
        log_dir.display(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&log_dir);
    if filter.0.is_empty() {
        let recorded: usize = scenarios.iter().map(case_count).sum();
        assert_eq!(results.len(), recorded, "every recorded case must run");
        assert!(
            results.len() >= RECORDED_CASES,
            "only {} cases recorded, {RECORDED_CASES} expected: goldens are missing",
            results.len()
        );
    } else {
        assert!(!results.is_empty(), "CONFORMANCE_ONLY selected no case");
    }
}

#[test]
fn filters_match_like_fnmatch() {
    assert!(glob_match("schema_*", "schema_std"));
    assert!(glob_match("hello/request_id_*", "hello/request_id_echo"));
    assert!(!glob_match("hello", "hello/x"));
    assert!(glob_match("worker_count_[12]", "worker_count_2"));
    assert!(!glob_match("worker_count_[!12]", "worker_count_2"));
    assert!(glob_match("h?llo", "hello"));
    let filter = Filter(vec!["hello/swagger_*".into()]);
    assert!(filter.case("hello", "swagger_default"));
    assert!(!filter.case("hello", "score_post_json"));
    assert!(!filter.case("echo_input", "swagger_default"));
}
