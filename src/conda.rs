//! Conda envs: where a named env lives (conda, mamba and micromamba installations) and
//! the environment variables `conda activate` would give it, for runners that are started
//! without a shell.
//!
//! Activation is asked of conda itself when it is installed (`conda shell.posix activate
//! PREFIX`, whose shell code runs in `sh`); otherwise it is rebuilt from the env's own
//! files as conda would: the PATH entries, `CONDA_PREFIX`, `CONDA_DEFAULT_ENV`,
//! `CONDA_SHLVL`, `CONDA_PROMPT_MODIFIER`, the env's variables from `conda-meta/state`
//! (`conda env config vars set`), then the effects of its `etc/conda/activate.d/*.sh`
//! scripts, sourced in `sh` in name order. Nothing conda would not set is added (no
//! `LD_LIBRARY_PATH`: conda leaves the loader to the env's RPATHs).
//!
//! An env that is already active (`CONDA_PREFIX` without `--conda_env`, or `--conda_env`
//! naming the active env) needs nothing: the server inherited what activation set, and
//! the runners inherit it from the server.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config::PythonRequest;
use crate::interpreter::find_on_path;
use crate::platform::PATH_SEPARATOR;

/// How long one `activate.d` script (or the shell running conda's answer) may take: long
/// enough for a script that probes a GPU, short enough that a hung one is noticed.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(10);

/// How long `conda` may take to answer (it is a Python program that can be slow to start
/// on a cold disk or a network home folder).
const CONDA_DEADLINE: Duration = Duration::from_secs(30);

/// Separates the environment before a script from the one after it in the shell's output.
const ENV_MARK: &str = "__azmlinfsrv_after_activation__";

/// Variables the shell itself maintains: a change to them is not activation's doing,
/// and a script's `cd` must not move the runner.
const SHELL_OWN_VARIABLES: &[&str] = &["_", "PWD", "OLDPWD", "SHLVL"];

/// Installations whose `envs/` folder may hold a named env, relative to the home folder:
/// conda's installers (Miniconda, Anaconda, Miniforge, Mambaforge), micromamba's default
/// roots, and the per-user `~/.conda/envs` of `conda create --prefix`-less installs.
const HOME_ROOTS: &[&str] = &[
    "miniconda3",
    "anaconda3",
    "miniforge3",
    "mambaforge",
    "micromamba",
    ".local/share/mamba",
    ".conda",
];

/// One variable that activation sets, and where it came from (for the start-up log).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub name: String,
    pub value: String,
    /// `None` for what activation itself sets; else the file or command it came from.
    pub origin: Option<String>,
}

/// The variables a runner needs so that it is as if `conda activate` had run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Activation {
    /// In the order applied: a later entry for the same name wins.
    pub applied: Vec<Applied>,
    /// How the variables were obtained ("conda's answer", "the env's files").
    pub method: String,
}

impl Activation {
    /// The variables to set for the runner, last value of each name.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        for applied in &self.applied {
            match env.iter_mut().find(|(name, _)| *name == applied.name) {
                Some(entry) => entry.1 = applied.value.clone(),
                None => env.push((applied.name.clone(), applied.value.clone())),
            }
        }
        env
    }

    /// "PATH, CONDA_PREFIX, MY_VAR (from conda-meta/state), FOO (from …/foo.sh)".
    pub fn summary(&self) -> String {
        if self.applied.is_empty() {
            return "set nothing".to_string();
        }
        let names: Vec<String> = self
            .applied
            .iter()
            .map(|applied| match &applied.origin {
                Some(origin) => format!("{} (from {origin})", applied.name),
                None => applied.name.clone(),
            })
            .collect();
        format!("set {}", names.join(", "))
    }
}

/// Whether `--conda_env` was given a folder rather than a name (`conda activate` takes
/// both).
pub fn is_prefix_path(name_or_path: &str) -> bool {
    name_or_path.contains('/') || name_or_path.contains(std::path::MAIN_SEPARATOR)
}

/// The conda executable to ask: `CONDA_EXE` (set by conda's shell hook) or `conda` on PATH.
pub fn conda_executable(request: &PythonRequest) -> Option<PathBuf> {
    request
        .conda_exe
        .clone()
        .filter(|path| path.is_file())
        .or_else(|| find_on_path("conda", request.path_var.as_deref()))
}

/// Folders that may hold the env named `name`, most authoritative first: what
/// `conda info --envs --json` lists, the `envs` folder of the installation conda runs
/// from, `MAMBA_ROOT_PREFIX`, then the usual installation folders in the home folder.
pub fn env_candidates(name: &str, request: &PythonRequest) -> Vec<PathBuf> {
    let in_root = |root: &Path| {
        if name == "base" {
            root.to_path_buf()
        } else {
            root.join("envs").join(name)
        }
    };
    let mut candidates = Vec::new();
    if let Some(conda_exe) = conda_executable(request) {
        candidates.extend(envs_listed_by_conda(&conda_exe, name));
        // conda is <root>/bin/conda (or <root>\Scripts\conda.exe, <root>\condabin\conda.bat).
        if let Some(root) = conda_exe.parent().and_then(Path::parent) {
            candidates.push(in_root(root));
        }
    }
    if let Some(root) = &request.mamba_root_prefix {
        candidates.push(in_root(root));
    }
    if let Some(home) = &request.home {
        for root in HOME_ROOTS {
            candidates.push(in_root(&home.join(root)));
        }
    }
    let mut unique = Vec::new();
    for candidate in candidates {
        if !unique.contains(&candidate) {
            unique.push(candidate);
        }
    }
    unique
}

/// The envs `conda info --envs --json` lists whose folder is named `name` (or the root
/// env, for "base"). Any failure just means conda has nothing to add.
fn envs_listed_by_conda(conda_exe: &Path, name: &str) -> Vec<PathBuf> {
    let mut command = Command::new(conda_exe);
    command.args(["info", "--envs", "--json"]);
    let finished = match run_with_deadline(command, CONDA_DEADLINE) {
        Ok(finished) if finished.status.success() => finished,
        Ok(finished) => {
            tracing::debug!(target: "azmlinfsrv", "`{} info --envs --json` failed with {}: {}", conda_exe.display(), finished.status, finished.stderr.trim());
            return Vec::new();
        }
        Err(why) => {
            tracing::warn!(target: "azmlinfsrv", "Could not list conda envs with `{} info --envs --json`: it {why}. Looking in the usual envs folders instead.", conda_exe.display());
            return Vec::new();
        }
    };
    let Ok(info) = serde_json::from_slice::<serde_json::Value>(&finished.stdout) else {
        return Vec::new();
    };
    let root = info
        .get("root_prefix")
        .and_then(|v| v.as_str())
        .map(PathBuf::from);
    let envs = info
        .get("envs")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    envs.iter()
        .filter_map(|env| env.as_str().map(PathBuf::from))
        .filter(|prefix| {
            let is_base = root.as_deref() == Some(prefix.as_path());
            (name == "base" && is_base) || prefix.file_name().is_some_and(|leaf| leaf == name)
        })
        .collect()
}

/// What `conda activate` would set for the env at `prefix`, called `name` (the name the
/// user gave, or the folder). Asks conda when it is installed and falls back to the
/// env's own files, saying why. Never fails: at worst the runner gets the basic variables.
pub fn activate(prefix: &Path, name: &str, request: &PythonRequest) -> Activation {
    if let Some(conda_exe) = conda_executable(request) {
        match activate_with_conda(&conda_exe, prefix) {
            Ok(activation) => return activation,
            Err(why) => {
                tracing::warn!(target: "azmlinfsrv", "Asking conda to activate {} (`{} shell.posix activate`) failed: {why}. Activating it from the env's own files instead (conda-meta/state, etc/conda/activate.d).", prefix.display(), conda_exe.display());
            }
        }
    }
    activate_from_files(prefix, name, request)
}

/// Runs conda's own activation code in `sh` and keeps what it exported.
fn activate_with_conda(conda_exe: &Path, prefix: &Path) -> Result<Activation, String> {
    let mut command = Command::new(conda_exe);
    command.args(["shell.posix", "activate"]).arg(prefix);
    let finished = run_with_deadline(command, CONDA_DEADLINE)?;
    if !finished.status.success() {
        return Err(format!(
            "it exited with {}: {}",
            finished.status,
            last_lines(&finished.stderr)
        ));
    }
    let code = String::from_utf8_lossy(&finished.stdout).into_owned();
    if code.trim().is_empty() {
        return Err("it printed no activation code".to_string());
    }
    let changes = shell_changes(r#"eval "$1""#, &code, &[])?;
    let origin = format!("{} shell.posix activate", conda_exe.display());
    Ok(Activation {
        applied: changes
            .into_iter()
            .map(|(name, value)| Applied {
                name,
                value,
                origin: None,
            })
            .collect(),
        method: format!("as `{origin}` does"),
    })
}

/// Rebuilds activation from the env's files, in conda's order: the basic variables, the
/// env's own variables, then the `activate.d` scripts (which see both).
fn activate_from_files(prefix: &Path, name: &str, request: &PythonRequest) -> Activation {
    let mut applied: Vec<Applied> = basic_variables(prefix, name, request)
        .into_iter()
        .map(|(name, value)| Applied {
            name,
            value,
            origin: None,
        })
        .collect();

    let state_path = prefix.join("conda-meta").join("state");
    match std::fs::read_to_string(&state_path) {
        Ok(text) => match state_env_vars(&text) {
            Ok(vars) => applied.extend(vars.into_iter().map(|(name, value)| Applied {
                name,
                value,
                origin: Some("conda-meta/state".to_string()),
            })),
            Err(why) => {
                tracing::warn!(target: "azmlinfsrv", "The conda env's variables in {} were not set: {why}. Fix the file, or reset the variables with `conda env config vars set NAME=VALUE -p {}`.", state_path.display(), prefix.display());
            }
        },
        // No state file: the env has no variables of its own (the usual case).
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(target: "azmlinfsrv", "Cannot read {} ({error}); the conda env's own variables were not set.", state_path.display());
        }
    }

    for script in activate_scripts(prefix) {
        let relative = script
            .strip_prefix(prefix)
            .unwrap_or(&script)
            .display()
            .to_string();
        let exports = Activation {
            applied: applied.clone(),
            method: String::new(),
        }
        .env();
        match shell_changes(r#". "$1""#, &script.display().to_string(), &exports) {
            Ok(changes) => applied.extend(changes.into_iter().map(|(name, value)| Applied {
                name,
                value,
                origin: Some(relative.clone()),
            })),
            Err(why) => {
                tracing::warn!(target: "azmlinfsrv", "The conda activation script {} {why}; the server continues without its effects. Fix the script, or check what it does with `sh -x {}`.", script.display(), script.display());
            }
        }
    }
    Activation {
        applied,
        method: "from its files".to_string(),
    }
}

/// The variables `conda activate` always sets, as conda computes them.
fn basic_variables(prefix: &Path, name: &str, request: &PythonRequest) -> Vec<(String, String)> {
    let old_shlvl: u32 = request
        .conda_shlvl
        .as_deref()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    // Activating replaces the active env's PATH entries rather than stacking on them.
    let old_dirs: Vec<String> = match &request.conda_prefix {
        Some(old_prefix) if old_shlvl > 0 => path_dirs(old_prefix)
            .iter()
            .map(|dir| dir.display().to_string())
            .collect(),
        _ => Vec::new(),
    };
    let mut path_parts: Vec<String> = path_dirs(prefix)
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    if let Some(path_var) = &request.path_var {
        path_parts.extend(
            path_var
                .split(PATH_SEPARATOR)
                .filter(|part| !part.is_empty() && !old_dirs.iter().any(|old| old == part))
                .map(str::to_string),
        );
    }
    // conda names an env by its name when it was given one, else by its full path.
    let display_name = if is_prefix_path(name) {
        prefix.display().to_string()
    } else {
        name.to_string()
    };
    let mut vars = vec![
        ("PATH".to_string(), path_parts.join(PATH_SEPARATOR)),
        ("CONDA_PREFIX".to_string(), prefix.display().to_string()),
        ("CONDA_SHLVL".to_string(), (old_shlvl + 1).to_string()),
        ("CONDA_DEFAULT_ENV".to_string(), display_name.clone()),
        (
            "CONDA_PROMPT_MODIFIER".to_string(),
            format!("({display_name}) "),
        ),
    ];
    // conda keeps the env it replaced as CONDA_PREFIX_<old level>, for `conda deactivate`.
    if let (Some(old_prefix), true) = (&request.conda_prefix, old_shlvl > 0) {
        vars.push((
            format!("CONDA_PREFIX_{old_shlvl}"),
            old_prefix.display().to_string(),
        ));
    }
    vars
}

/// The folders activation puts first on PATH (conda's list for Windows).
fn path_dirs(prefix: &Path) -> Vec<PathBuf> {
    if cfg!(windows) {
        vec![
            prefix.to_path_buf(),
            prefix.join("Library").join("mingw-w64").join("bin"),
            prefix.join("Library").join("usr").join("bin"),
            prefix.join("Library").join("bin"),
            prefix.join("Scripts"),
            prefix.join("bin"),
        ]
    } else {
        vec![prefix.join("bin")]
    }
}

/// The env's variables as `conda env config vars set` keeps them:
/// `{"env_vars": {"NAME": "value"}}`, in the file's order.
pub fn state_env_vars(text: &str) -> Result<Vec<(String, String)>, String> {
    let state: serde_json::Value =
        serde_json::from_str(text).map_err(|error| format!("it is not valid JSON ({error})"))?;
    let Some(env_vars) = state.get("env_vars") else {
        return Ok(Vec::new());
    };
    let env_vars = env_vars
        .as_object()
        .ok_or("its \"env_vars\" is not a JSON object of NAME: value")?;
    Ok(env_vars
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Null => return None,
                other => other.to_string(),
            };
            // conda's marker for "unset this variable on activation": there is nothing of
            // ours to unset in a fresh runner, so it sets nothing.
            (value != "***unset***").then(|| (name.clone(), value))
        })
        .collect())
}

/// The env's `etc/conda/activate.d/*.sh` scripts in the order conda sources them (by
/// name). Windows envs' `.bat`/`.ps1` scripts need their own shells and are not run.
fn activate_scripts(prefix: &Path) -> Vec<PathBuf> {
    let dir = prefix.join("etc").join("conda").join("activate.d");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut scripts: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sh") && path.is_file())
        .collect();
    scripts.sort();
    scripts
}

/// Runs `body` (which may use `$1`, bound to `argument`) in `/bin/sh`, on top of the
/// server's environment plus `exports`, and returns the exported variables it added or
/// changed. The body's own output goes to stderr so it cannot corrupt the capture.
/// (Where there is no `/bin/sh`, as on Windows, starting it fails and the caller says so.)
fn shell_changes(
    body: &str,
    argument: &str,
    exports: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let script =
        format!("env -0; printf '%s\\0' {ENV_MARK}; {{ {body}\n}} 1>&2 </dev/null; env -0");
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(argument)
        .envs(exports.iter().map(|(k, v)| (k, v)));
    let finished = run_with_deadline(command, SCRIPT_DEADLINE)?;
    let Some((before, after)) = split_env_dumps(&finished.stdout) else {
        return Err(format!(
            "ended the shell (an `exit`, or a failing command under `set -e`) before its \
             environment could be read (exit status {}){}",
            finished.status,
            match last_lines(&finished.stderr) {
                text if text.is_empty() => String::new(),
                text => format!(": {text}"),
            }
        ));
    };
    Ok(changed_variables(&before, &after))
}

/// `env -0` output before and after the scripts, as two maps; `None` when the second
/// dump is missing (the shell exited early).
fn split_env_dumps(stdout: &[u8]) -> Option<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let entries: Vec<&[u8]> = stdout.split(|byte| *byte == 0).collect();
    let mark = entries
        .iter()
        .position(|entry| *entry == ENV_MARK.as_bytes())?;
    let after = &entries[mark + 1..];
    // A complete second dump ends with a NUL, leaving one empty entry at the end.
    if after.len() < 2 {
        return None;
    }
    Some((
        parse_env_entries(&entries[..mark]),
        parse_env_entries(after),
    ))
}

fn parse_env_entries(entries: &[&[u8]]) -> BTreeMap<String, String> {
    entries
        .iter()
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (name, value) = text.split_once('=')?;
            (!name.is_empty()).then(|| (name.to_string(), value.to_string()))
        })
        .collect()
}

/// Variables that are new or different after, without the shell's own bookkeeping.
/// Variables a script unset are not reported: a fresh runner has nothing to unset that
/// the server's environment did not give it.
pub fn changed_variables(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    after
        .iter()
        .filter(|(name, _)| !SHELL_OWN_VARIABLES.contains(&name.as_str()))
        .filter(|(name, value)| before.get(*name) != Some(*value))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// A helper process that finished in time.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs a helper (conda, sh) with stdin closed, collecting its output, and kills it and
/// everything it started if it is not done by `deadline`.
fn run_with_deadline(mut command: Command, deadline: Duration) -> Result<Finished, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so that a timeout also kills what it started (a `sleep`
    // in a script holds the pipe open after the shell itself is gone).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|error| format!("could not be started ({error})"))?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let timed_out = |child: &mut std::process::Child| {
        kill_process_group(child);
        format!("did not finish within {} s", deadline.as_secs())
    };
    let Ok(stdout) = stdout.recv_timeout(deadline) else {
        return Err(timed_out(&mut child));
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) => return Err(timed_out(&mut child)),
            Err(error) => return Err(format!("could not be waited for ({error})")),
        }
    };
    // stderr may be held open by something the helper left running; do not wait for it.
    let stderr = stderr
        .recv_timeout(Duration::from_millis(200))
        .unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

fn read_in_background(stream: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    if let Some(mut stream) = stream {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            let _ = sender.send(bytes);
        });
    }
    receiver
}

fn kill_process_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on the process group we created for this child only.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The end of a helper's stderr, enough to say why it failed.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_gives_the_env_vars_in_order() {
        let vars = state_env_vars(
            r#"{"env_vars": {"MODEL_FLAVOUR": "sklearn", "A_FIRST": "1", "GONE": "***unset***"}}"#,
        )
        .unwrap();
        assert_eq!(
            vars,
            vec![
                ("MODEL_FLAVOUR".to_string(), "sklearn".to_string()),
                ("A_FIRST".to_string(), "1".to_string()),
            ]
        );
        assert_eq!(state_env_vars(r#"{"other": 1}"#).unwrap(), Vec::new());
        assert!(state_env_vars("{not json")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(state_env_vars(r#"{"env_vars": ["A"]}"#)
            .unwrap_err()
            .contains("env_vars"));
    }

    #[test]
    fn diff_keeps_new_and_changed_variables_only() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let before = map(&[
            ("KEEP", "1"),
            ("PATH", "/usr/bin"),
            ("PWD", "/a"),
            ("GONE", "x"),
        ]);
        let after = map(&[
            ("KEEP", "1"),
            ("PATH", "/env/bin:/usr/bin"),
            ("PWD", "/b"),
            ("NEW", "multi\nline"),
        ]);
        assert_eq!(
            changed_variables(&before, &after),
            vec![
                ("NEW".to_string(), "multi\nline".to_string()),
                ("PATH".to_string(), "/env/bin:/usr/bin".to_string()),
            ]
        );
    }

    #[test]
    fn env_dumps_split_at_the_mark_and_need_a_complete_second_dump() {
        let mut stdout = b"A=1\0B=x=y\0".to_vec();
        stdout.extend_from_slice(ENV_MARK.as_bytes());
        stdout.push(0);
        let early_exit = stdout.clone();
        stdout.extend_from_slice(b"A=2\0B=x=y\0");
        let (before, after) = split_env_dumps(&stdout).unwrap();
        assert_eq!(before.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(after.get("A").map(String::as_str), Some("2"));
        assert!(split_env_dumps(&early_exit).is_none());
    }

    #[test]
    fn basic_variables_stack_one_level_and_replace_the_active_env_on_path() {
        let request = PythonRequest {
            conda_prefix: Some("/c/envs/old".into()),
            conda_shlvl: Some("1".into()),
            path_var: Some("/c/envs/old/bin:/usr/bin".into()),
            ..Default::default()
        };
        let vars = basic_variables(Path::new("/c/envs/ml"), "ml", &request);
        let get = |key: &str| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if cfg!(unix) {
            assert_eq!(get("PATH"), Some("/c/envs/ml/bin:/usr/bin"));
        }
        assert_eq!(get("CONDA_SHLVL"), Some("2"));
        assert_eq!(get("CONDA_DEFAULT_ENV"), Some("ml"));
        assert_eq!(get("CONDA_PROMPT_MODIFIER"), Some("(ml) "));
        assert_eq!(get("CONDA_PREFIX_1"), Some("/c/envs/old"));
        assert_eq!(get("LD_LIBRARY_PATH"), None);
    }

    #[test]
    fn an_env_given_by_path_is_named_by_its_path() {
        let vars = basic_variables(
            Path::new("/data/envs/ml"),
            "/data/envs/ml",
            &PythonRequest::default(),
        );
        assert!(vars.contains(&("CONDA_DEFAULT_ENV".into(), "/data/envs/ml".into())));
        assert!(vars.contains(&("CONDA_SHLVL".into(), "1".into())));
    }

    #[test]
    fn summary_names_each_variable_and_its_origin() {
        let activation = Activation {
            applied: vec![
                Applied {
                    name: "PATH".into(),
                    value: "/a".into(),
                    origin: None,
                },
                Applied {
                    name: "MY_VAR".into(),
                    value: "1".into(),
                    origin: Some("conda-meta/state".into()),
                },
                Applied {
                    name: "PATH".into(),
                    value: "/b".into(),
                    origin: Some("etc/conda/activate.d/x.sh".into()),
                },
            ],
            method: String::new(),
        };
        assert_eq!(
            activation.summary(),
            "set PATH, MY_VAR (from conda-meta/state), PATH (from etc/conda/activate.d/x.sh)"
        );
        assert_eq!(
            activation.env(),
            vec![("PATH".into(), "/b".into()), ("MY_VAR".into(), "1".into())]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_hanging_script_is_stopped_at_the_deadline() {
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "sleep 1000"]);
        let started = Instant::now();
        let error = run_with_deadline(command, Duration::from_millis(300))
            .err()
            .unwrap();
        assert!(error.contains("did not finish"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
