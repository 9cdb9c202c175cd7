//! `--conda_env`: a conda env that is not activated runs the script as if `conda activate`
//! had run. The envs are laid out as conda lays them out (`<root>/envs/NAME` with
//! `conda-meta/`, `etc/conda/activate.d/*.sh` and a real Python), under conda, mamba and
//! micromamba roots; the script reports what it sees in `os.environ`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check;
use crate::util::{system_python, test_script, Launch, Scratch, Server};

/// What `conda env config vars set MODEL_FLAVOUR=sklearn` leaves in `conda-meta/state`.
const STATE: &str = r#"{"env_vars": {"MODEL_FLAVOUR": "sklearn"}}"#;

/// An activation script that exports a variable built from what activation set before it,
/// appends to a variable the server already has, and prints (which must not matter).
const SET_VARS_SH: &str = r#"# installed by a package, as conda packages install theirs
export FROM_ACTIVATE_D="set_vars.sh in $CONDA_DEFAULT_ENV, flavour $MODEL_FLAVOUR"
export MODEL_SEARCH_PATH="${MODEL_SEARCH_PATH}:${CONDA_PREFIX}/models"
echo "set_vars.sh was sourced"
"#;

/// A conda env at `prefix`: a real Python (a venv made in place, as `conda create` makes
/// a Python there), its `conda-meta` files and one activation script.
fn conda_env(prefix: &Path) -> PathBuf {
    std::fs::create_dir_all(prefix.parent().unwrap()).unwrap();
    let output = Command::new(system_python())
        .args(["-m", "venv", "--without-pip"])
        .arg(prefix)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python3 -m venv {} failed: {}",
        prefix.display(),
        crate::util::output_text(&output)
    );
    let write = |relative: &str, text: &str| {
        let path = prefix.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "conda-meta/history",
        "==> 2026-01-01 00:00:00 <==\n# cmd: conda create -n ml python=3.11\n",
    );
    write("conda-meta/state", STATE);
    write("etc/conda/activate.d/set_vars.sh", SET_VARS_SH);
    prefix.to_path_buf()
}

/// The probe script with `--conda_env NAME`, in an environment where nothing of the
/// developer's shell can leak in: no conda, no LD_LIBRARY_PATH (so one seen by the
/// script was added by us), HOME in the scratch folder.
fn launch(conda_env: &str, home: &Path) -> Launch {
    let mut launch = Launch::script(&test_script("conda_env_probe.py"))
        .arg("--conda_env")
        .arg(conda_env)
        .env("HOME", home.display().to_string())
        .env("PATH", "/usr/bin:/bin")
        .env("MODEL_SEARCH_PATH", "/opt/models");
    for key in [
        "LD_LIBRARY_PATH",
        "CONDA_EXE",
        "CONDA_SHLVL",
        "CONDA_DEFAULT_ENV",
        "CONDA_PROMPT_MODIFIER",
        "MAMBA_ROOT_PREFIX",
        "AZMLINFSRV_CONDA_ENV",
        "USERPROFILE",
    ] {
        launch = launch.without_env(key);
    }
    launch
}

/// What `run()` saw.
fn probe(server: &Server) -> Value {
    let response = server.post("/score", "{}");
    check!(
        server,
        response.status == 200,
        "score answered {}: {}",
        response.status,
        response.text()
    );
    response.json()
}

fn text<'a>(seen: &'a Value, name: &str) -> Option<&'a str> {
    seen.get(name).and_then(Value::as_str)
}

/// The checks every activation from the env's files must pass.
fn check_activated_from_files(server: &Server, seen: &Value, prefix: &Path, env_name: &str) {
    let prefix_text = prefix.display().to_string();
    check!(
        server,
        text(seen, "sys.prefix") == Some(prefix_text.as_str()),
        "the env's Python runs the script: {seen}"
    );
    check!(
        server,
        text(seen, "MODEL_FLAVOUR") == Some("sklearn"),
        "the env's own variable (conda-meta/state) is set: {seen}"
    );
    check!(
        server,
        text(seen, "FROM_ACTIVATE_D")
            == Some(format!("set_vars.sh in {env_name}, flavour sklearn").as_str()),
        "the activate.d script ran after the basic and state variables: {seen}"
    );
    check!(
        server,
        text(seen, "MODEL_SEARCH_PATH")
            == Some(format!("/opt/models:{prefix_text}/models").as_str()),
        "the activate.d script appended to the inherited variable: {seen}"
    );
    check!(
        server,
        text(seen, "CONDA_PREFIX") == Some(prefix_text.as_str()),
        "{seen}"
    );
    check!(
        server,
        text(seen, "CONDA_DEFAULT_ENV") == Some(env_name),
        "{seen}"
    );
    check!(
        server,
        text(seen, "CONDA_PROMPT_MODIFIER") == Some(format!("({env_name}) ").as_str()),
        "{seen}"
    );
    check!(
        server,
        text(seen, "PATH").is_some_and(|path| path.starts_with(&format!("{prefix_text}/bin:"))),
        "PATH starts with the env's bin: {seen}"
    );
    check!(
        server,
        seen.get("LD_LIBRARY_PATH") == Some(&Value::Null),
        "conda does not set LD_LIBRARY_PATH, so neither do we: {seen}"
    );
}

#[test]
fn miniconda_env_is_activated_with_its_config_vars_and_activate_d_scripts() {
    let scratch = Scratch::new("conda-miniconda");
    let prefix = conda_env(&scratch.path.join("miniconda3/envs/ml"));
    let server = launch("ml", &scratch.path).start();
    let seen = probe(&server);
    check_activated_from_files(&server, &seen, &prefix, "ml");
    check!(server, text(&seen, "CONDA_SHLVL") == Some("1"), "{seen}");
    let log = server.output.text();
    check!(
        server,
        log.contains(&format!(
            "Activated the conda env 'ml' at {}",
            prefix.display()
        )) && log.contains("MODEL_FLAVOUR (from conda-meta/state)")
            && log.contains("FROM_ACTIVATE_D (from etc/conda/activate.d/set_vars.sh)"),
        "one start-up line says what was set and where from"
    );
}

#[test]
fn mambaforge_env_is_found_under_home() {
    let scratch = Scratch::new("conda-mambaforge");
    let prefix = conda_env(&scratch.path.join("mambaforge/envs/ml"));
    let server = launch("ml", &scratch.path).start();
    let seen = probe(&server);
    check_activated_from_files(&server, &seen, &prefix, "ml");
}

#[test]
fn micromamba_root_prefix_env_stacks_on_the_active_env() {
    let scratch = Scratch::new("conda-micromamba");
    let root = scratch.path.join("micromamba-root");
    let prefix = conda_env(&root.join("envs/ml"));
    let home = scratch.path.join("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    // The shell has micromamba's base env active (level 1): activating replaces its bin
    // on PATH and remembers it as CONDA_PREFIX_1, as conda does.
    let server = launch("ml", &home)
        .env("MAMBA_ROOT_PREFIX", root.display().to_string())
        .env("CONDA_PREFIX", root.display().to_string())
        .env("CONDA_SHLVL", "1")
        .env("PATH", format!("{}/bin:/usr/bin:/bin", root.display()))
        .start();
    let seen = probe(&server);
    check_activated_from_files(&server, &seen, &prefix, "ml");
    check!(server, text(&seen, "CONDA_SHLVL") == Some("2"), "{seen}");
    let root_text = root.display().to_string();
    check!(
        server,
        text(&seen, "CONDA_PREFIX_1") == Some(root_text.as_str()),
        "{seen}"
    );
    check!(
        server,
        text(&seen, "PATH") == Some(format!("{}/bin:/usr/bin:/bin", prefix.display()).as_str()),
        "the base env's bin is replaced, not kept behind: {seen}"
    );
}

#[test]
fn env_given_by_its_folder_is_named_by_its_folder() {
    let scratch = Scratch::new("conda-by-path");
    let prefix = conda_env(&scratch.path.join("projects/envs/ml"));
    let prefix_text = prefix.display().to_string();
    let server = launch(&prefix_text, &scratch.path.join("nowhere")).start();
    let seen = probe(&server);
    check_activated_from_files(&server, &seen, &prefix, &prefix_text);
}

#[test]
fn conda_on_path_is_asked_and_its_answer_wins() {
    let scratch = Scratch::new("conda-exe");
    // Listed only by `conda info --envs`, in no folder we would look in ourselves.
    let prefix = conda_env(&scratch.path.join("custom-place/ml"));
    let fake_conda = scratch.write(
        "fake-conda/bin/conda",
        &format!(
            r#"#!/bin/sh
# Answers like conda: `info --envs --json` and `shell.posix activate PREFIX`.
case "$1 $2" in
  "info --envs") echo '{{"envs": ["{root}", "{prefix}"], "root_prefix": "{root}"}}' ;;
  "shell.posix activate")
    echo "PS1='(ml) '"
    echo "export PATH='$3/bin:/usr/bin:/bin'"
    echo "export CONDA_PREFIX='$3'"
    echo "export CONDA_SHLVL='1'"
    echo "export CONDA_DEFAULT_ENV='ml'"
    echo "export ACTIVATED_BY='fake conda'"
    echo ". \"$3/etc/conda/activate.d/set_vars.sh\"" ;;
  *) echo "fake conda: unexpected arguments: $*" >&2; exit 2 ;;
esac
"#,
            root = scratch.path.join("fake-conda").display(),
            prefix = prefix.display()
        ),
    );
    make_executable(&fake_conda);
    let server = launch("ml", &scratch.path.join("nowhere"))
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", fake_conda.parent().unwrap().display()),
        )
        .start();
    let seen = probe(&server);
    let prefix_text = prefix.display().to_string();
    check!(
        server,
        text(&seen, "ACTIVATED_BY") == Some("fake conda"),
        "conda's activation code was run: {seen}"
    );
    check!(
        server,
        text(&seen, "MODEL_FLAVOUR").is_none(),
        "conda's answer replaces our own reading of the env's files: {seen}"
    );
    check!(
        server,
        text(&seen, "CONDA_PREFIX") == Some(prefix_text.as_str())
            && text(&seen, "sys.prefix") == Some(prefix_text.as_str()),
        "{seen}"
    );
    check!(
        server,
        text(&seen, "FROM_ACTIVATE_D") == Some("set_vars.sh in ml, flavour "),
        "the activate.d script conda's code sources ran: {seen}"
    );
    check!(
        server,
        seen.get("LD_LIBRARY_PATH") == Some(&Value::Null),
        "{seen}"
    );
    check!(
        server,
        server.output.text().contains("shell.posix activate"),
        "the log says conda was asked"
    );
}

#[test]
fn hanging_activate_d_script_does_not_hang_start_up() {
    let scratch = Scratch::new("conda-hang");
    let prefix = conda_env(&scratch.path.join("miniconda3/envs/ml"));
    // Sorted before set_vars.sh: the scripts after it must still run.
    std::fs::write(
        prefix.join("etc/conda/activate.d/00_hang.sh"),
        "export AFTER_HANG=never\nsleep 1000\n",
    )
    .unwrap();
    let started = Instant::now();
    let server = launch("ml", &scratch.path).start();
    let took = started.elapsed();
    let seen = probe(&server);
    check!(
        server,
        took < Duration::from_secs(40),
        "start-up took {took:?}"
    );
    let log = server.output.text();
    check!(
        server,
        log.contains("00_hang.sh did not finish within 10 s"),
        "a warning names the script that hung"
    );
    check!(
        server,
        text(&seen, "AFTER_HANG").is_none(),
        "the hung script's effects are dropped: {seen}"
    );
    check!(
        server,
        text(&seen, "FROM_ACTIVATE_D").is_some() && text(&seen, "MODEL_FLAVOUR") == Some("sklearn"),
        "activation went on without it: {seen}"
    );
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
