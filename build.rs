//! Embeds every Python module of `runner/` (not its tests) into the binary, so that the
//! list of runner files is never maintained by hand.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let runner_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runner");
    println!("cargo:rerun-if-changed={}", runner_dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&runner_dir)
        .expect("the runner/ folder is missing")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".py"))
        .collect();
    names.sort();
    let mut code = String::from("/// (file name, contents) of every runner module.\npub const RUNNER_FILES: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = runner_dir.join(name);
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
