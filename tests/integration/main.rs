//! Integration tests: every test starts the real `azmlinfsrv` binary against real
//! Python scripts and asserts on what a client (or an operator reading the log) sees.

mod util;

mod compat;
mod conda;
mod deploy;
mod distribution;
mod foundation;
mod lifecycle;
mod runner_unit_tests;
mod startup_failures;
