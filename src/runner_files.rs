//! The bundled Python runner: embedded at build time (see `build.rs`) and written at
//! start-up to a private folder keyed by its contents, so that a debugger's breakpoints
//! in `runner.py` stay valid across restarts of the same build.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::startup_error::StartupError;

include!(concat!(env!("OUT_DIR"), "/runner_files.rs"));

/// The module the interpreter is started with.
pub const ENTRY_FILE: &str = "runner.py";

/// Writes the runner files (once per content) and returns the path of `runner.py`.
pub fn install() -> Result<PathBuf, StartupError> {
    let folder = cache_root().join(format!(
        "runner-{}-{:016x}",
        env!("CARGO_PKG_VERSION"),
        content_hash()
    ));
    if !is_complete(&folder) {
        write_atomically(&folder).map_err(|err| {
            StartupError::boot(format!(
                "Cannot write the Python runner to {}: {err}. Make that folder writable, or set \
                 XDG_CACHE_HOME to a writable folder.",
                folder.display()
            ))
        })?;
    }
    Ok(folder.join(ENTRY_FILE))
}

fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    base.join("azmlinfsrv")
}

fn content_hash() -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    RUNNER_FILES.hash(&mut hasher);
    hasher.finish()
}

fn is_complete(folder: &Path) -> bool {
    RUNNER_FILES.iter().all(|(name, contents)| {
        std::fs::read_to_string(folder.join(name)).is_ok_and(|text| text == *contents)
    })
}

/// Writes into a fresh sibling folder, then renames it into place, so that two servers
/// starting at once never see a half-written runner.
fn write_atomically(folder: &Path) -> std::io::Result<()> {
    let parent = folder.parent().unwrap_or(Path::new("."));
    create_private_dir_all(parent)?;
    let staging = parent.join(format!(
        ".staging-{}-{}",
        std::process::id(),
        content_hash()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    create_private_dir_all(&staging)?;
    for (name, contents) in RUNNER_FILES {
        let path = staging.join(name);
        if let Some(folder) = path.parent() {
            // The runner's package is a subfolder; create it (and any deeper one) first.
            create_private_dir_all(folder)?;
        }
        std::fs::write(path, contents)?;
    }
    if folder.exists() {
        // A stale or partial folder from an interrupted start: replace it.
        let _ = std::fs::remove_dir_all(folder);
    }
    match std::fs::rename(&staging, folder) {
        Ok(()) => Ok(()),
        // Another server won the race with identical contents.
        Err(_) if is_complete(folder) => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Err(err) => Err(err),
    }
}

fn create_private_dir_all(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_entry_point_is_embedded() {
        assert!(RUNNER_FILES.iter().any(|(name, _)| *name == ENTRY_FILE));
    }

    #[test]
    fn the_package_is_embedded_but_not_the_tests_or_frames() {
        let names: Vec<&str> = RUNNER_FILES.iter().map(|(name, _)| *name).collect();
        for wanted in [
            "_azmlinfsrv_runner/__init__.py",
            "_azmlinfsrv_runner/serve.py",
            "_azmlinfsrv_runner/channel.py",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
        assert!(
            names
                .iter()
                .all(|name| !name.starts_with("tests/") && !name.starts_with("frames/")),
            "{names:?}"
        );
        assert!(names.iter().all(|name| !name.contains('\\')), "{names:?}");
    }

    #[test]
    fn written_files_keep_their_subfolders() {
        let scratch = std::env::temp_dir().join(format!(
            "azmlinfsrv-runner-files-test-{}",
            std::process::id()
        ));
        let folder = scratch.join("runner");
        write_atomically(&folder).unwrap();
        assert!(is_complete(&folder));
        assert!(folder.join("_azmlinfsrv_runner").join("serve.py").is_file());
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
