//! Scripts and command lines that cannot start: exit status and what the log says.

use std::time::Duration;

use crate::check;
use crate::util::{example, test_script, Launch, Scratch, Server};

fn exits_with(server: &mut Server, code: i32) {
    let status = server.wait_exit(Duration::from_secs(30));
    check!(
        server,
        status.and_then(|s| s.code()) == Some(code),
        "expected exit {code}, got {status:?}"
    );
}

#[test]
fn init_raising_exits_3_with_traceback_and_model_dir_tree() {
    let scratch = Scratch::new("init-raises");
    scratch.write("model/weights.bin", "x");
    let mut server = Launch::script(&test_script("init_raises.py"))
        .arg("--model_dir")
        .arg(scratch.path.display().to_string())
        .spawn();
    exits_with(&mut server, 3);
    let log = server.output.text();
    check!(server, log.contains("User's init function failed"));
    check!(
        server,
        log.contains("RuntimeError: INIT-FAILED-FOR-TEST-41ab")
    );
    check!(server, log.contains("Traceback (most recent call last)"));
    check!(
        server,
        log.contains("    weights.bin"),
        "model dir tree listed"
    );
}

#[test]
fn python_syntax_errors_show_pythons_own_message() {
    let mut server = Launch::script(&test_script("indentation_error.py")).spawn();
    exits_with(&mut server, 3);
    check!(
        server,
        server
            .output
            .text()
            .contains("IndentationError: unindent does not match any outer indentation level")
    );
}

#[test]
fn a_missing_script_is_named() {
    let scratch = Scratch::new("missing");
    let mut server = Launch::script(&scratch.path.join("does_not_exist.py")).spawn();
    exits_with(&mut server, 3);
    check!(server, server.output.text().contains("does_not_exist.py"));
}

#[test]
fn missing_init_or_run_names_the_function() {
    let scratch = Scratch::new("no-init");
    let no_init = scratch.write("no_init.py", "def run(data):\n    return data\n");
    let mut server = Launch::script(&no_init).spawn();
    exits_with(&mut server, 3);
    check!(
        server,
        server.output.text().contains("init()") && server.output.text().contains("no_init.py")
    );
    let no_run = scratch.write("no_run.py", "def init():\n    pass\n");
    let mut server = Launch::script(&no_run).spawn();
    exits_with(&mut server, 3);
    check!(server, server.output.text().contains("run()"));
}

#[test]
fn bad_command_lines_exit_1_with_a_clear_message() {
    let hello = example("hello/score.py");
    let mut launch = Launch::script(&hello);
    launch.args[3] = "70000".into();
    let mut server = launch.spawn();
    exits_with(&mut server, 1);
    check!(
        server,
        server.output.text().contains("70000") && server.output.text().contains("[1, 65535]")
    );

    let mut launch = Launch::script(&hello);
    launch.args = vec!["--port".into(), "5999".into()];
    let mut server = launch.spawn();
    exits_with(&mut server, 1);
    check!(server, server.output.text().contains("--entry_script"));

    let mut server = Launch::script(&hello)
        .arg("--worker_count")
        .arg("0")
        .spawn();
    exits_with(&mut server, 1);
    check!(server, server.output.text().contains("--worker_count"));
}

#[test]
fn a_missing_interpreter_says_what_was_tried() {
    let mut server = Launch::script(&example("hello/score.py"))
        .arg("--python")
        .arg("/no/such/python3")
        .spawn();
    exits_with(&mut server, 3);
    check!(server, server.output.text().contains("/no/such/python3"));
}

#[test]
fn a_broken_interpreter_is_a_clear_start_up_error() {
    let mut server = Launch::script(&example("hello/score.py"))
        .arg("--python")
        .arg("/bin/false")
        .spawn();
    exits_with(&mut server, 3);
    let log = server.output.text();
    check!(
        server,
        log.contains("/bin/false") && log.contains("working Python 3.8 or newer"),
        "the error names the interpreter and what it should be"
    );
}
