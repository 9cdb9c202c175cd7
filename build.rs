//! Embeds every Python file of `runner/` (its subfolders too, but not its tests or
//! recorded frames) into the binary, so that the list of runner files is never
//! maintained by hand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Subfolders of `runner/` that are not part of the program the server ships.
const NOT_SHIPPED: &[&str] = &["tests", "frames"];

fn main() {
    let runner_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runner");
    let mut files = Vec::new();
    collect_python_files(&runner_dir, &runner_dir, &mut files);
    // Sorted by name so the generated table, and so the content hash, is stable.
    files.sort();
    let mut code = String::from(
        "/// (path relative to `runner/` with `/` separators, contents) of every runner file.\n\
         pub const RUNNER_FILES: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("runner_files.rs");
    std::fs::write(out, code).unwrap();
}

/// Adds (relative name, path) of every `.py` under `dir`; every folder visited is watched
/// so that a new or removed file triggers a rebuild.
fn collect_python_files(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()));
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap();
        let name = relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            if dir == root && NOT_SHIPPED.contains(&name.as_str()) {
                continue;
            }
            if name.ends_with("__pycache__") {
                continue;
            }
            collect_python_files(root, &path, files);
        } else if name.ends_with(".py") {
            files.push((name, path));
        }
    }
}
