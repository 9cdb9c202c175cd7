//! Integration tests: every test starts the real `azmlinfsrv` binary against real Python
//! scripts (`tests/scripts/`) and asserts on what a client (or an operator reading the
//! log) sees. One module per topic; `util` is the harness.

mod dap;
mod util;

mod app_insights;
mod conda;
mod config;
mod debugging;
mod deploy;
mod distribution;
mod examples;
mod headers;
mod inputs;
mod integrity;
mod lifecycle;
mod limits;
mod logs;
mod metrics;
mod openapi;
mod outputs;
mod reload;
mod request_path;
mod runner_unit_tests;
mod settings;
mod startup;
