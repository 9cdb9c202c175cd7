//! Integration tests: every test starts the real `azmlinfsrv` binary against real Python
//! scripts (`tests/scripts/`) and asserts on what a client (or an operator reading the
//! log) sees. One module per topic; `util` is the harness.

mod util;

mod conda;
mod config;
mod deploy;
mod distribution;
mod examples;
mod headers;
mod inputs;
mod lifecycle;
mod limits;
mod logs;
mod metrics;
mod openapi;
mod outputs;
mod request_path;
mod runner_unit_tests;
mod startup;
