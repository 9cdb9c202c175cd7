//! The bundled Python runner: embedded at build time (see `build.rs`) and written at
//! start-up to a private folder keyed by its contents, so that a debugger's breakpoints
//! in `runner.py` stay valid across restarts of the same build.
//!
//! Python runs whatever `runner.py` holds, so every folder on the way to it must be
//! ours: owned by the server's user, a real folder (not a symlink someone planted), not
//! writable by group or others (nor inside a folder others could rename it out of).
//! A cache folder that fails this, or that cannot be written (a read-only home in a
//! container), gives way to a private folder under the temporary directory.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::startup_error::StartupError;

include!(concat!(env!("OUT_DIR"), "/runner_files.rs"));

/// The module the interpreter is started with.
pub const ENTRY_FILE: &str = "runner.py";

/// How many fresh names to try for a private temporary folder before giving up.
const FRESH_FOLDER_ATTEMPTS: u32 = 16;

/// Writes the runner files (once per content) and returns the path of `runner.py`.
/// `cache_home` is the user's cache folder (`XDG_CACHE_HOME`, else `~/.cache`), if any;
/// `temp_dir` holds the private fallback.
pub fn install(cache_home: Option<&Path>, temp_dir: &Path) -> Result<PathBuf, StartupError> {
    let preferred = match cache_home {
        Some(home) => {
            let root = home.join("azmlinfsrv");
            match install_under(home, &root) {
                Ok(entry) => return Ok(entry),
                Err(why) => Some((root, why)),
            }
        }
        None => None,
    };
    let fallback = private_temp_folder(temp_dir, our_uid())?;
    let entry = install_under(temp_dir, &fallback).map_err(|why| {
        StartupError::boot(format!(
            "Cannot write the Python runner to {}: {why}. Set TMPDIR (or XDG_CACHE_HOME) to a \
             folder only this user can write to, and start again.",
            fallback.display()
        ))
    })?;
    match preferred {
        Some((root, why)) => {
            tracing::warn!(target: "azmlinfsrv", "Cannot use {} for the Python runner files ({why}); using the private folder {} instead", root.display(), fallback.display());
        }
        None => {
            tracing::info!(target: "azmlinfsrv", "Neither XDG_CACHE_HOME nor HOME is set: the Python runner files go to the private folder {}", fallback.display());
        }
    }
    Ok(entry)
}

/// Installs into `root` (whose parent is `base`), checking every folder on the way;
/// the error says why the folder cannot be used.
fn install_under(base: &Path, root: &Path) -> Result<PathBuf, String> {
    if !base.exists() {
        // `~/.cache` on a fresh account: ours to create, private.
        create_private_dir_all(base)
            .map_err(|err| format!("cannot create {}: {err}", base.display()))?;
    }
    check_parent(base, our_uid())?;
    ensure_private_dir(root, our_uid())?;
    let folder = root.join(runner_folder_name());
    let is_ours = std::fs::symlink_metadata(&folder)
        .ok()
        .map(|meta| check_private(&folder, &meta, our_uid()).is_ok());
    if is_ours == Some(false) {
        // Not ours (a symlink, a shared mode): `root` is private, so we may remove it.
        remove_entry(&folder).map_err(|err| {
            format!(
                "cannot replace {}, which is not private: {err}",
                folder.display()
            )
        })?;
    }
    if is_ours != Some(true) || !is_complete(&folder) {
        write_atomically(&folder).map_err(|err| format!("cannot write to it: {err}"))?;
    }
    let meta = std::fs::symlink_metadata(&folder)
        .map_err(|err| format!("cannot read {}: {err}", folder.display()))?;
    check_private(&folder, &meta, our_uid())?;
    Ok(folder.join(ENTRY_FILE))
}

/// A private folder of ours under `temp_dir`: `azmlinfsrv-<uid>` when it is ours and
/// private (so that restarts reuse it), else a fresh one with a unique name.
fn private_temp_folder(temp_dir: &Path, uid: u32) -> Result<PathBuf, StartupError> {
    let refuse = |why: String| {
        StartupError::boot(format!(
            "No private folder for the Python runner files: {why}. Set TMPDIR (or \
             XDG_CACHE_HOME) to a folder only this user can write to, and start again."
        ))
    };
    check_parent(temp_dir, uid).map_err(refuse)?;
    let shared_name = temp_dir.join(format!("azmlinfsrv-{uid}"));
    if ensure_private_dir(&shared_name, uid).is_ok() {
        return Ok(shared_name);
    }
    for attempt in 0..FRESH_FOLDER_ATTEMPTS {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let fresh = temp_dir.join(format!(
            "azmlinfsrv-{uid}-{}-{nanos:09}-{attempt}",
            std::process::id()
        ));
        // `create` (not `create_all`) fails if the name exists: the folder is ours alone.
        match private_dir_builder(false).create(&fresh) {
            Ok(()) => return Ok(fresh),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(refuse(format!("cannot create {}: {err}", fresh.display()))),
        }
    }
    Err(refuse(format!(
        "every name tried under {} is taken",
        temp_dir.display()
    )))
}

/// A folder that holds ours: others must not be able to rename our folder out of it
/// (so: owned by us or root, and either not writable by group/others or sticky, as
/// `/tmp` is).
fn check_parent(path: &Path, uid: u32) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|err| format!("cannot read it: {err}"))?;
    check_owner_and_mode(path, &meta, uid, Holder::Parent)
}

/// Who a folder is checked for: a parent may also be root's, or writable by others
/// when sticky (others cannot rename what is ours out of it); our own folder may not.
#[derive(Clone, Copy, PartialEq)]
enum Holder {
    Parent,
    Ours,
}

/// A folder owned by `uid` (or root, for a parent) that others cannot write.
fn check_owner_and_mode(
    path: &Path,
    meta: &std::fs::Metadata,
    uid: u32,
    holder: Holder,
) -> Result<(), String> {
    if !meta.is_dir() {
        return Err(format!("{} is not a folder", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let is_root_parent = holder == Holder::Parent && meta.uid() == 0;
        if meta.uid() != uid && !is_root_parent {
            return Err(format!(
                "{} belongs to another user (uid {}, we are uid {uid})",
                path.display(),
                meta.uid()
            ));
        }
        let is_sticky_parent = holder == Holder::Parent && meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !is_sticky_parent {
            return Err(format!(
                "{} can be written by other users (mode {:o})",
                path.display(),
                meta.mode() & 0o777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (uid, holder);
    Ok(())
}

/// Creates `path` as a private folder, or checks that the one there is ours.
fn ensure_private_dir(path: &Path, uid: u32) -> Result<(), String> {
    match private_dir_builder(false).create(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(format!("cannot create {}: {err}", path.display())),
    }
    // `symlink_metadata`: a symlink planted in our place is refused, not followed.
    let meta = std::fs::symlink_metadata(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    check_private(path, &meta, uid)
}

/// A real folder (not a symlink), owned by `uid`, not writable by group or others.
fn check_private(path: &Path, meta: &std::fs::Metadata, uid: u32) -> Result<(), String> {
    if meta.file_type().is_symlink() {
        return Err(format!("{} is a symbolic link", path.display()));
    }
    check_owner_and_mode(path, meta, uid, Holder::Ours)
}

#[cfg(unix)]
fn our_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Owners are not checked off Unix: there is no uid to compare.
#[cfg(not(unix))]
fn our_uid() -> u32 {
    0
}

fn remove_entry(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Keyed by version and contents: another build never reuses (or breaks) this one.
fn runner_folder_name() -> String {
    format!(
        "runner-{}-{:016x}",
        env!("CARGO_PKG_VERSION"),
        content_hash()
    )
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
    private_dir_builder(true).create(path)
}

/// Folders created with mode 0700: only the server's user can enter them.
fn private_dir_builder(is_recursive: bool) -> std::fs::DirBuilder {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(is_recursive);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
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

    /// Folder privacy (Unix modes and owners).
    #[cfg(unix)]
    mod privacy {
        use super::super::*;

        /// A scratch folder (mode 0700) removed when dropped.
        struct Scratch(PathBuf);

        impl Scratch {
            fn new(name: &str) -> Scratch {
                use std::sync::atomic::{AtomicU32, Ordering};
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "azmlinfsrv-test-{name}-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                let _ = std::fs::remove_dir_all(&path);
                create_private_dir_all(&path).unwrap();
                Scratch(path)
            }

            /// A sub-folder with `mode`.
            fn folder(&self, name: &str, mode: u32) -> PathBuf {
                let path = self.0.join(name);
                std::fs::create_dir_all(&path).unwrap();
                set_mode(&path, mode);
                path
            }
        }

        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }

        fn set_mode(path: &Path, mode: u32) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }

        fn mode_of(path: &Path) -> u32 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::symlink_metadata(path)
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        }

        #[test]
        fn a_private_cache_home_is_used_and_reused() {
            let scratch = Scratch::new("private-cache");
            let cache = scratch.folder("cache", 0o700);
            let temp = scratch.folder("tmp", 0o700);
            let entry = install(Some(&cache), &temp).unwrap();
            let root = cache.join("azmlinfsrv");
            assert_eq!(entry, root.join(runner_folder_name()).join(ENTRY_FILE));
            assert!(entry.is_file());
            assert_eq!(mode_of(&root), 0o700);
            assert_eq!(install(Some(&cache), &temp).unwrap(), entry);
            assert_eq!(
                std::fs::read_dir(&temp).unwrap().count(),
                0,
                "no fallback used"
            );
        }

        #[test]
        fn a_cache_home_others_can_write_to_gives_way_to_a_private_temp_folder() {
            let scratch = Scratch::new("shared-cache");
            let cache = scratch.folder("cache", 0o777);
            let temp = scratch.folder("tmp", 0o700);
            let entry = install(Some(&cache), &temp).unwrap();
            assert!(entry.starts_with(&temp), "{}", entry.display());
            assert!(entry.is_file());
            assert!(!cache.join("azmlinfsrv").exists(), "nothing written there");
            let private = temp.join(format!("azmlinfsrv-{}", our_uid()));
            assert!(entry.starts_with(&private), "{}", entry.display());
            assert_eq!(mode_of(&private), 0o700);
        }

        #[test]
        fn a_shared_azmlinfsrv_folder_is_refused() {
            let scratch = Scratch::new("shared-root");
            let cache = scratch.folder("cache", 0o700);
            scratch.folder("cache/azmlinfsrv", 0o777);
            let temp = scratch.folder("tmp", 0o700);
            let entry = install(Some(&cache), &temp).unwrap();
            assert!(entry.starts_with(&temp), "{}", entry.display());
        }

        #[test]
        fn a_symlink_in_place_of_our_folder_is_refused_not_followed() {
            let scratch = Scratch::new("planted-root");
            let cache = scratch.folder("cache", 0o700);
            let elsewhere = scratch.folder("elsewhere", 0o700);
            std::os::unix::fs::symlink(&elsewhere, cache.join("azmlinfsrv")).unwrap();
            let temp = scratch.folder("tmp", 0o700);
            let entry = install(Some(&cache), &temp).unwrap();
            assert!(entry.starts_with(&temp), "{}", entry.display());
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        }

        #[test]
        fn a_planted_runner_folder_inside_our_folder_is_replaced() {
            let scratch = Scratch::new("planted-runner");
            let cache = scratch.folder("cache", 0o700);
            let root = scratch.folder("cache/azmlinfsrv", 0o700);
            let elsewhere = scratch.folder("elsewhere", 0o777);
            let folder = root.join(runner_folder_name());
            std::os::unix::fs::symlink(&elsewhere, &folder).unwrap();
            let temp = scratch.folder("tmp", 0o700);
            let entry = install(Some(&cache), &temp).unwrap();
            assert_eq!(entry, folder.join(ENTRY_FILE));
            assert!(!std::fs::symlink_metadata(&folder)
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
            // A complete copy with a mode others can write to is replaced too.
            set_mode(&folder, 0o777);
            assert_eq!(install(Some(&cache), &temp).unwrap(), entry);
            assert_eq!(mode_of(&folder) & 0o022, 0);
        }

        #[test]
        fn an_unwritable_cache_home_falls_back_to_a_private_temp_folder() {
            let scratch = Scratch::new("unwritable-cache");
            // A file where a folder should be: nothing can be created below it, even by root
            // (for whom a read-only mode is no obstacle).
            std::fs::write(scratch.0.join("file"), "").unwrap();
            let cache = scratch.0.join("file").join("cache");
            let temp = scratch.folder("tmp", 0o700);
            let entry = install(Some(&cache), &temp).unwrap();
            assert!(
                entry.starts_with(&temp) && entry.is_file(),
                "{}",
                entry.display()
            );
        }

        #[test]
        fn without_a_cache_home_the_private_temp_folder_is_reused() {
            let scratch = Scratch::new("no-cache-home");
            let temp = scratch.folder("tmp", 0o700);
            let entry = install(None, &temp).unwrap();
            assert!(entry.starts_with(temp.join(format!("azmlinfsrv-{}", our_uid()))));
            assert_eq!(install(None, &temp).unwrap(), entry);
        }

        #[test]
        fn a_temp_folder_name_taken_by_a_shared_folder_gives_a_fresh_private_one() {
            let scratch = Scratch::new("taken-temp");
            let temp = scratch.folder("tmp", 0o1777);
            let taken = scratch.folder(&format!("tmp/azmlinfsrv-{}", our_uid()), 0o777);
            let fresh = private_temp_folder(&temp, our_uid()).unwrap();
            assert_ne!(fresh, taken);
            assert!(fresh.starts_with(&temp));
            assert_eq!(mode_of(&fresh), 0o700);
            assert!(install(None, &temp).unwrap().starts_with(&temp));
        }

        #[test]
        fn a_temp_folder_others_can_rename_into_is_an_error_naming_tmpdir() {
            let scratch = Scratch::new("shared-temp");
            let temp = scratch.folder("tmp", 0o777);
            let error = install(None, &temp).unwrap_err();
            assert!(error.message.contains("TMPDIR"), "{}", error.message);
            assert!(error.message.contains("mode 777"), "{}", error.message);
        }

        #[test]
        fn a_folder_of_another_user_is_refused() {
            let scratch = Scratch::new("foreign");
            let meta = std::fs::symlink_metadata(&scratch.0).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert!(check_private(&scratch.0, &meta, meta.uid()).is_ok());
            let other = meta.uid().wrapping_add(1);
            let why = check_private(&scratch.0, &meta, other).unwrap_err();
            assert!(why.contains("another user"), "{why}");
        }
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
