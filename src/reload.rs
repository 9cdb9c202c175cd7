//! `--reload`: watches the scoring code and the config file, and on a save asks the pool
//! for a new generation of workers (`Pool::reload`), logging what changed and whether the
//! new code started. A burst of saves (or an editor's write-a-temp-file-then-rename)
//! gives one reload: events are debounced by `notify-debouncer-full`, and what arrives
//! while a reload runs is folded into the next one. Only writes, creations, renames and
//! removals count: the workers reading the script on import must not trigger a reload.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::event::ModifyKind;
use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::worker::pool::Pool;

/// Quiet time after the last event before a reload starts: long enough to gather an
/// editor's several writes (they come within a few milliseconds), short enough to feel
/// immediate; the new code must answer within 1 s plus `init()` of the save, and
/// starting Python takes a good part of that second on a small machine.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Folders under a watched tree whose Python files are not the user's code: a virtual
/// environment beside the script, caches, version control.
fn is_ignored_folder(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "__pycache__" | "site-packages" | "node_modules")
}

/// Which files a change to counts: the entry script, the config file, and `*.py`
/// under the script's folder and `AZUREML_SOURCE_DIRECTORY`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSet {
    files: Vec<PathBuf>,
    python_trees: Vec<PathBuf>,
    config_file: Option<PathBuf>,
    /// Paths are shown relative to it in the log.
    base: PathBuf,
}

impl WatchSet {
    pub fn of(settings: &Settings) -> WatchSet {
        let app_root = canonical(&settings.app_root);
        let entry_script = settings.entry_script.as_deref().map(canonical);
        // Without an entry script the runner imports `main` from the app root.
        let script_dir = entry_script
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| app_root.clone(), Path::to_path_buf);
        let mut python_trees = vec![script_dir];
        if let Some(source_dir) = &settings.source_dir {
            let source_dir = canonical(&app_root.join(source_dir));
            if !python_trees.iter().any(|tree| source_dir.starts_with(tree)) {
                python_trees.push(source_dir);
            }
        }
        let config_file = settings.config_file.as_deref().map(canonical);
        WatchSet {
            files: entry_script.into_iter().collect(),
            python_trees,
            config_file,
            base: app_root,
        }
    }

    /// Whether a change to `path` should reload the workers.
    pub fn counts(&self, path: &Path) -> bool {
        if self.files.iter().any(|file| file == path) || self.is_config_file(path) {
            return true;
        }
        let is_python = path.extension().is_some_and(|ext| ext == "py");
        is_python
            && self.python_trees.iter().any(|tree| {
                path.strip_prefix(tree).is_ok_and(|inside| {
                    inside.parent().is_none_or(|folders| {
                        !folders.components().any(|part| match part {
                            Component::Normal(name) => is_ignored_folder(&name.to_string_lossy()),
                            _ => false,
                        })
                    })
                })
            })
    }

    fn is_config_file(&self, path: &Path) -> bool {
        self.config_file.as_deref() == Some(path)
    }

    /// The folders to hand to the file watcher: a file replaced by a rename is seen
    /// only through its folder.
    fn folders(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut folders: Vec<(PathBuf, RecursiveMode)> = self
            .python_trees
            .iter()
            .map(|tree| (tree.clone(), RecursiveMode::Recursive))
            .collect();
        let config_dir = self.config_file.as_deref().and_then(Path::parent);
        if let Some(dir) = config_dir {
            if !self.python_trees.iter().any(|tree| dir.starts_with(tree)) {
                folders.push((dir.to_path_buf(), RecursiveMode::NonRecursive));
            }
        }
        folders
    }

    /// `path` as the log shows it: relative to the app root when under it.
    pub fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.base)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Whether an event changes a file's contents or presence: opening and reading it (as
/// every new worker does) does not, nor does the access time a read may update.
fn is_a_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Resolves symlinks, so that the watcher's paths and ours compare equal.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Starts watching; every change reloads the pool's workers until `stop` is cancelled.
/// A watcher that cannot start is a warning, not a start-up failure: the server still
/// serves, it only does not reload.
pub fn watch(settings: &Settings, pool: Pool, stop: CancellationToken) {
    let set = WatchSet::of(settings);
    let (changes_tx, changes) = mpsc::unbounded_channel::<Vec<PathBuf>>();
    let filter = set.clone();
    let debouncer = new_debouncer(
        DEBOUNCE,
        None,
        move |result: DebounceEventResult| match result {
            Ok(events) => {
                let paths: Vec<PathBuf> = events
                    .into_iter()
                    .filter(|event| is_a_change(&event.event.kind))
                    .flat_map(|event| event.event.paths)
                    .filter(|path| filter.counts(path))
                    .collect();
                if !paths.is_empty() {
                    let _ = changes_tx.send(paths);
                }
            }
            Err(errors) => {
                for error in errors {
                    tracing::warn!(target: "azmlinfsrv", "--reload: the file watcher reported an error: {error}; saves may be missed until the next change is seen")
                }
            }
        },
    );
    let mut debouncer = match debouncer {
        Ok(debouncer) => debouncer,
        Err(error) => {
            tracing::warn!(target: "azmlinfsrv", "--reload: cannot start a file watcher ({error}); the server runs without reloading: restart it to try changes");
            return;
        }
    };
    let mut watched = Vec::new();
    for (folder, mode) in set.folders() {
        match debouncer.watch(&folder, mode) {
            Ok(()) => watched.push(folder.display().to_string()),
            Err(error) => {
                tracing::warn!(target: "azmlinfsrv", "--reload: cannot watch {} ({error}); changes there will not reload the workers (on Linux, a low fs.inotify.max_user_watches can cause this)", folder.display())
            }
        }
    }
    if watched.is_empty() {
        return;
    }
    tracing::info!(target: "azmlinfsrv", "Reload on save: watching the Python files in {}{}", watched.join(", "), set.config_file.as_ref().map(|file| format!(" and the config file {}", file.display())).unwrap_or_default());
    tokio::spawn(async move {
        // Owned by the task: dropping it stops the watching.
        let _debouncer = debouncer;
        reload_on_changes(set, pool, changes, stop).await;
    });
}

async fn reload_on_changes(
    set: WatchSet,
    pool: Pool,
    mut changes: mpsc::UnboundedReceiver<Vec<PathBuf>>,
    stop: CancellationToken,
) {
    loop {
        let mut changed = tokio::select! {
            Some(changed) = changes.recv() => changed,
            _ = stop.cancelled() => return,
        };
        // Saves that came in while the last reload ran: one reload covers them all.
        while let Ok(more) = changes.try_recv() {
            changed.extend(more);
        }
        changed.sort();
        changed.dedup();
        let names: Vec<String> = changed.iter().map(|path| set.shown(path)).collect();
        tracing::info!(target: "azmlinfsrv", "Reloading: {} changed", names.join(", "));
        if changed.iter().any(|path| set.is_config_file(path)) {
            tracing::warn!(target: "azmlinfsrv", "The config file is read once, at start-up: the new workers run with the settings the server started with; restart azmlinfsrv to apply changed settings");
        }
        let outcome = tokio::select! {
            outcome = pool.reload() => outcome,
            _ = stop.cancelled() => return,
        };
        match outcome {
            Ok(count) => {
                let workers = if count == 1 {
                    "worker runs"
                } else {
                    "workers run"
                };
                tracing::info!(target: "azmlinfsrv", "Reloaded: {count} {workers} the new code")
            }
            Err(failure) => {
                tracing::error!(target: "azmlinfsrv", "The new code failed to start ({}); the old workers keep serving. Fix it and save again.{}",
                    failure.pointer(&set.base),
                    failure.traceback.as_deref().map(|traceback| format!("\n{}", traceback.trim_end())).unwrap_or_default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> WatchSet {
        WatchSet {
            files: vec![PathBuf::from("/app/src/score.py")],
            python_trees: vec![PathBuf::from("/app/src"), PathBuf::from("/lib/shared")],
            config_file: Some(PathBuf::from("/app/config.json")),
            base: PathBuf::from("/app"),
        }
    }

    #[test]
    fn the_script_python_files_beside_it_and_the_config_file_count() {
        let set = set();
        for path in [
            "/app/src/score.py",
            "/app/src/helpers.py",
            "/app/src/pkg/deep/util.py",
            "/lib/shared/common.py",
            "/app/config.json",
        ] {
            assert!(set.counts(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn editor_temp_files_caches_and_environments_do_not_count() {
        let set = set();
        for path in [
            "/app/src/.score.py.swp",
            "/app/src/score.py~",
            "/app/src/4913",
            "/app/src/notes.txt",
            "/app/src/__pycache__/score.cpython-311.py",
            "/app/src/.venv/lib/python3.11/site-packages/numpy/core.py",
            "/app/src/venv/lib/python3.11/site-packages/numpy/core.py",
            "/app/other.py",
            "/app/other.json",
        ] {
            assert!(!set.counts(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn reading_a_file_is_not_a_change() {
        use notify_debouncer_full::notify::event::{
            AccessKind, AccessMode, MetadataKind, RenameMode,
        };
        assert!(!is_a_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Read
        ))));
        assert!(!is_a_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_a_change(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(is_a_change(&EventKind::Modify(ModifyKind::Any)));
        let atime = EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime));
        assert!(!is_a_change(&atime));
    }

    #[test]
    fn the_config_folder_is_watched_only_when_not_already_in_a_tree() {
        let folders = set().folders();
        assert_eq!(folders.len(), 3);
        assert_eq!(folders[2].0, PathBuf::from("/app"));
        assert_eq!(set().shown(Path::new("/app/src/score.py")), "src/score.py");
    }
}
