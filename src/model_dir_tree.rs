//! A listing of the model directory for the log when `init()` fails: most init failures
//! are a model file that is not where the script expects it.

use std::path::Path;

/// The tree under `root`, one line per entry, indented by depth, at most `max_lines`.
pub fn describe(root: &Path, max_lines: usize) -> Vec<String> {
    let mut lines = vec![format!("{}/", root.display())];
    walk(root, 1, max_lines, &mut lines);
    if lines.len() >= max_lines {
        lines.truncate(max_lines);
        lines.push(format!("... (listing stopped at {max_lines} lines)"));
    }
    lines
}

fn walk(dir: &Path, depth: usize, max_lines: usize, lines: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        if lines.len() >= max_lines {
            return;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        lines.push(format!(
            "{}{}{}",
            "  ".repeat(depth),
            name,
            if is_dir { "/" } else { "" }
        ));
        if is_dir {
            walk(&entry.path(), depth + 1, max_lines, lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nested_entries_and_stops_at_the_limit() {
        let root = std::env::temp_dir().join(format!("azmlinfsrv-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("model.pkl"), b"x").unwrap();
        std::fs::write(root.join("sub").join("weights.bin"), b"x").unwrap();
        let lines = describe(&root, 200);
        assert_eq!(&lines[1..], ["  model.pkl", "  sub/", "    weights.bin"]);
        let lines = describe(&root, 2);
        assert!(lines.last().unwrap().contains("stopped at 2 lines"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
