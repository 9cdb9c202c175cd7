//! Paths as the reference resolves them: made absolute against a base, and symlinks
//! resolved like Python's `os.path.realpath`.

use std::path::{Path, PathBuf};

pub(super) fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Symlinks resolved like Python's `os.path.realpath`: a path that does not exist is
/// kept (normalised) so that the "script not found" error can name it.
pub(super) fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| normalise(path))
}

pub(super) fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
