//! Which Python runs the scoring script, and why: `--python`, a named conda env, the
//! active virtualenv, the active conda env, then `python3`/`python` on PATH.

use std::path::{Path, PathBuf};

use crate::conda;
use crate::config::PythonRequest;
use crate::platform;
use crate::startup_error::StartupError;

/// The chosen interpreter and what starting it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpreter {
    pub program: PathBuf,
    /// Why this one, for the start-up log ("the active virtualenv /x").
    pub reason: String,
    /// Variables to set for it (a conda env that is not activated).
    pub extra_env: Vec<(String, String)>,
}

/// Resolves the request in the documented order; the error says everything it tried.
pub fn choose(request: &PythonRequest) -> Result<Interpreter, StartupError> {
    if let Some(path) = &request.explicit_path {
        return explicit(path, request.path_var.as_deref());
    }
    if let Some(name) = &request.conda_env {
        return named_conda_env(name, request);
    }
    let mut tried = Vec::new();
    if let Some(prefix) = &request.virtual_env {
        if let Some(program) = first_existing(&platform::pythons_in_env(prefix)) {
            return Ok(found(
                program,
                format!("the active virtualenv (VIRTUAL_ENV={})", prefix.display()),
            ));
        }
        tried.push(format!(
            "VIRTUAL_ENV={} (no Python inside)",
            prefix.display()
        ));
    }
    if let Some(prefix) = &request.conda_prefix {
        if let Some(program) = first_existing(&platform::pythons_in_env(prefix)) {
            return Ok(found(
                program,
                format!("the active conda env (CONDA_PREFIX={})", prefix.display()),
            ));
        }
        tried.push(format!(
            "CONDA_PREFIX={} (no Python inside)",
            prefix.display()
        ));
    }
    for name in ["python3", "python"] {
        if let Some(program) = find_on_path(name, request.path_var.as_deref()) {
            return Ok(found(program, format!("`{name}` on PATH")));
        }
        tried.push(format!("`{name}` on PATH"));
    }
    Err(StartupError::boot(format!(
        "No Python interpreter was found to run the scoring script. Tried: {}. \
         Activate a virtualenv or conda env, put python3 on PATH, or pass --python /path/to/python.",
        tried.join("; ")
    )))
}

fn found(program: PathBuf, reason: String) -> Interpreter {
    Interpreter {
        program,
        reason,
        extra_env: Vec::new(),
    }
}

fn explicit(path: &Path, path_var: Option<&str>) -> Result<Interpreter, StartupError> {
    // A bare name ("python3.11") is looked up on PATH like a shell would.
    let is_bare_name = path.components().count() == 1;
    let program = if is_bare_name {
        find_on_path(&path.to_string_lossy(), path_var)
    } else {
        Some(path.to_path_buf())
    };
    match program.filter(|program| program.is_file()) {
        Some(program) => Ok(found(program, "--python (or AZMLINFSRV_PYTHON)".into())),
        None => Err(StartupError::boot(format!(
            "The Python interpreter given with --python (or AZMLINFSRV_PYTHON) does not exist: {}. \
             Pass the full path of a python executable, for example .venv/bin/python.",
            path.display()
        ))),
    }
}

fn named_conda_env(name: &str, request: &PythonRequest) -> Result<Interpreter, StartupError> {
    let candidates = if conda::is_prefix_path(name) {
        // conda activate takes a folder too, and makes it absolute.
        let folder = Path::new(name);
        vec![std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf())]
    } else {
        conda::env_candidates(name, request)
    };
    for prefix in &candidates {
        let Some(program) = first_existing(&platform::pythons_in_env(prefix)) else {
            continue;
        };
        let reason = format!("the conda env '{name}' at {}", prefix.display());
        // Already active in the server's shell: the server inherited what activation
        // set, and activating again would stack the env on itself.
        if request.conda_prefix.as_deref() == Some(prefix.as_path()) {
            tracing::info!(target: "azmlinfsrv", "The conda env '{name}' at {} is already active (CONDA_PREFIX); its variables are passed on as they are", prefix.display());
            return Ok(found(program, reason));
        }
        let activation = conda::activate(prefix, name, request);
        tracing::info!(target: "azmlinfsrv", "Activated the conda env '{name}' at {} {}: {}", prefix.display(), activation.method, activation.summary());
        return Ok(Interpreter {
            program,
            reason,
            extra_env: activation.env(),
        });
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(StartupError::boot(format!(
        "The conda env '{name}' (--conda_env) was not found, or has no Python. Looked in: {}. \
         Check the name with `conda env list` (and install python into the env), or pass \
         --conda_env with the env's folder, or --python with the env's python.",
        if tried.is_empty() {
            "nowhere (no conda installation found)".to_string()
        } else {
            tried.join(", ")
        }
    )))
}

fn first_existing(paths: &[PathBuf]) -> Option<PathBuf> {
    paths.iter().find(|path| path.is_file()).cloned()
}

pub(crate) fn find_on_path(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    which::which_in(name, path_var, cwd).ok()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_env(root: &Path) -> PathBuf {
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let python = bin.join("python3");
        std::fs::write(&python, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        python
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("azmlinfsrv-interp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn virtualenv_wins_over_path() {
        let dir = scratch("venv");
        let python = fake_env(&dir);
        let request = PythonRequest {
            virtual_env: Some(dir.clone()),
            path_var: Some("/usr/bin".into()),
            ..Default::default()
        };
        let chosen = choose(&request).unwrap();
        assert_eq!(chosen.program, python);
        assert!(chosen.reason.contains("virtualenv"));
    }

    #[test]
    fn named_conda_env_is_found_under_home_and_activated() {
        let home = scratch("home");
        let python = fake_env(&home.join("miniconda3").join("envs").join("ml"));
        let request = PythonRequest {
            conda_env: Some("ml".into()),
            home: Some(home.clone()),
            path_var: Some("/usr/bin".into()),
            ..Default::default()
        };
        let chosen = choose(&request).unwrap();
        assert_eq!(chosen.program, python);
        let path = &chosen
            .extra_env
            .iter()
            .find(|(k, _)| k == "PATH")
            .unwrap()
            .1;
        assert!(path.starts_with(&home.join("miniconda3/envs/ml/bin").display().to_string()));
    }

    #[test]
    fn missing_interpreter_says_what_was_tried() {
        let request = PythonRequest {
            path_var: Some("/nonexistent".into()),
            ..Default::default()
        };
        let error = choose(&request).unwrap_err();
        assert!(error.message.contains("python3") && error.message.contains("--python"));
        let error = choose(&PythonRequest {
            explicit_path: Some("/no/such/python".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(error.message.contains("/no/such/python"));
    }
}
