//! Watching trees for `pycguard watch`: file-system events (the `notify` crate: inotify
//! on Linux, FSEvents or kqueue elsewhere) become touched paths, touched paths settle
//! ([`settle`]), and a settled path becomes the PATHs of a small scan ([`Target`]).
//!
//! What a settled path asks for, decided when it is due, by what is there *then* (so an
//! atomic save's temporary file, gone by then, asks for nothing):
//!
//! | found at the path | scanned |
//! |---|---|
//! | a source (`NAME.py`) | the source as PATH: every cache the tree walk pairs with it, under a pycache prefix too |
//! | nothing, and the name is a source's | each cache of that source still there (`__pycache__/NAME.*.pyc`, `NAME.pyc`, `NAME.pyo`, its caches under the prefix): they are now orphans or ghosts |
//! | a cache | the cache as PATH — unless it is the very file this watch wrote ([`Written`]) |
//! | a directory that appeared (created, moved in) | the directory (a `__pycache__`: each cache in it): what was written into it before its watch was installed sent no event |
//! | anything else | nothing |
//!
//! Paths the tree walk would not enter are left alone here too: VCS directories, the
//! `--exclude` globs, virtual environments and `.tox`/`.nox`/`node_modules` beneath a PATH
//! (unless `--include-venvs`).
//!
//! Events are only waited for (the notify thread blocks in the kernel; the command's loop
//! in a timed channel receive), so an idle watch uses no CPU to speak of. Opening and
//! reading files (the interpreter importing, pycguard judging) are not changes and are
//! dropped where they arrive.

pub mod settle;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::escape;
use crate::layout::{self, CacheName};
use crate::store::FileIdentity;
use crate::walk::{WalkOptions, ENV_DIRS, VCS_DIRS, VENV_MARKER};
pub use settle::{Pending, Touch};

/// A tree that cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {}: the limit of inotify watches is reached (raise it with sysctl fs.inotify.max_user_watches=N)", escape::path(.path))]
    TooManyWatches { path: PathBuf },
    #[error("cannot watch {}: {}", escape::path(.path), escape::text(.message))]
    Other { path: PathBuf, message: String },
}

impl WatchError {
    fn of(path: &Path, err: notify::Error) -> WatchError {
        let path = path.to_path_buf();
        match err.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::TooManyWatches { path },
            notify::ErrorKind::Io(e) => WatchError::Other {
                path,
                message: crate::read::io_message(&e),
            },
            other => WatchError::Other {
                path,
                message: format!("{other:?}"),
            },
        }
    }
}

/// What the watcher reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Something happened at this path.
    Touched(PathBuf, Touch),
    /// Events were lost (the kernel's queue overflowed): every tree must be looked at.
    Rescan,
    /// The watcher itself reported an error (the watch goes on).
    Error(String),
}

/// The file-system watches of one `pycguard watch`.
pub struct TreeWatcher {
    // Kept alive: dropping it ends the watches.
    _watcher: RecommendedWatcher,
    events: Receiver<notify::Result<notify::Event>>,
    /// Each watched directory as watched (absolute) and as given: events name paths by
    /// the first, the scans and the output by the second.
    given: Vec<(PathBuf, PathBuf)>,
}

impl TreeWatcher {
    /// Watch each directory in `dirs` with everything beneath it (new directories are
    /// watched as they appear), and the directory of each file in `files` on its own (a
    /// file's own watch would end at the first atomic save, which replaces it). Paths are
    /// reported as given (relative ones relative to `cwd`).
    pub fn start(
        dirs: &[PathBuf],
        files: &[PathBuf],
        cwd: &Path,
    ) -> Result<TreeWatcher, WatchError> {
        let (tx, events) = mpsc::channel();
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut watcher =
            RecommendedWatcher::new(tx, config).map_err(|e| WatchError::of(Path::new("."), e))?;
        let mut given = Vec::new();
        for dir in dirs {
            let absolute = layout::lexically_absolute(cwd, dir);
            watcher
                .watch(&absolute, RecursiveMode::Recursive)
                .map_err(|e| WatchError::of(dir, e))?;
            given.push((absolute, dir.clone()));
        }
        for file in files {
            let parent = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let absolute = layout::lexically_absolute(cwd, parent);
            watcher
                .watch(&absolute, RecursiveMode::NonRecursive)
                .map_err(|e| WatchError::of(parent, e))?;
            // Only the file itself is of interest in its directory.
            given.push((layout::lexically_absolute(cwd, file), file.clone()));
        }
        // The longest first: a PATH inside another is named by its own form.
        given.sort_by_key(|(absolute, _)| std::cmp::Reverse(absolute.components().count()));
        Ok(TreeWatcher {
            _watcher: watcher,
            events,
            given,
        })
    }

    /// Wait up to `timeout` for events, then take every event already queued. An empty
    /// list: nothing happened (or only reads).
    pub fn wait(&self, timeout: Duration) -> Vec<Change> {
        let mut changes = Vec::new();
        match self.events.recv_timeout(timeout) {
            Ok(event) => changes.extend(changes_of(event).into_iter().map(|c| self.as_given(c))),
            Err(RecvTimeoutError::Timeout) => return changes,
            Err(RecvTimeoutError::Disconnected) => {
                changes.push(Change::Error("the file-system watcher stopped".into()));
                return changes;
            }
        }
        while let Ok(event) = self.events.try_recv() {
            changes.extend(changes_of(event).into_iter().map(|c| self.as_given(c)));
        }
        changes
    }

    /// A change with its path as the PATH it lies beneath was given.
    fn as_given(&self, change: Change) -> Change {
        let Change::Touched(path, touch) = change else {
            return change;
        };
        let path = self
            .given
            .iter()
            .find_map(|(absolute, given)| {
                let rel = path.strip_prefix(absolute).ok()?;
                Some(if rel.as_os_str().is_empty() {
                    given.clone()
                } else {
                    given.join(rel)
                })
            })
            .unwrap_or(path);
        Change::Touched(path, touch)
    }
}

/// The changes one event reports (pure).
pub fn changes_of(event: notify::Result<notify::Event>) -> Vec<Change> {
    let event = match event {
        Ok(event) => event,
        Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
            return vec![Change::Error(
                "the limit of inotify watches is reached: new directories are not watched (raise it with sysctl fs.inotify.max_user_watches=N)".into(),
            )]
        }
        Err(e) => return vec![Change::Error(e.to_string())],
    };
    if event.need_rescan() {
        return vec![Change::Rescan];
    }
    let touched = |path: PathBuf, appeared: bool| Change::Touched(path, Touch { appeared });
    match event.kind {
        // Opening, reading and closing are no changes (a write is also a modify event).
        EventKind::Access(_) => Vec::new(),
        EventKind::Create(_) => event.paths.into_iter().map(|p| touched(p, true)).collect(),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut paths = event.paths.into_iter();
            let from = paths.next().map(|p| touched(p, false));
            from.into_iter()
                .chain(paths.map(|p| touched(p, true)))
                .collect()
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
            event.paths.into_iter().map(|p| touched(p, false)).collect()
        }
        // Moved into place (or a rename the backend could not pair): may be new.
        EventKind::Modify(ModifyKind::Name(_)) => {
            event.paths.into_iter().map(|p| touched(p, true)).collect()
        }
        _ => event.paths.into_iter().map(|p| touched(p, false)).collect(),
    }
}

/// What to scan for a settled path: the PATH of a small scan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A source or a cache, as a file PATH.
    File(PathBuf),
    /// A directory that appeared, walked whole.
    Tree(PathBuf),
}

impl Target {
    pub fn path(&self) -> &Path {
        match self {
            Target::File(p) | Target::Tree(p) => p,
        }
    }
}

/// The caches this watch wrote, by the identity each had when written: the events its
/// own writes cause must not make it judge them again.
#[derive(Debug, Default)]
pub struct Written {
    files: HashMap<PathBuf, FileIdentity>,
}

impl Written {
    /// Remember the file now at `path` as written by this watch.
    pub fn remember(&mut self, path: &Path) {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            self.files
                .insert(path.to_path_buf(), FileIdentity::of_metadata(&meta));
        }
    }

    /// Is the file at `path` (with metadata `meta`) the one this watch wrote there?
    fn wrote(&mut self, path: &Path, meta: &std::fs::Metadata) -> bool {
        match self.files.get(path) {
            Some(id) if *id == FileIdentity::of_metadata(meta) => true,
            Some(_) => {
                // Replaced since: forget it.
                self.files.remove(path);
                false
            }
            None => false,
        }
    }
}

/// Where the watched trees are and what their walk leaves out.
pub struct Scope<'a> {
    /// The directory PATHs, as given.
    pub dirs: &'a [PathBuf],
    /// The file PATHs, as given.
    pub files: &'a [PathBuf],
    pub walk: &'a WalkOptions,
}

impl Scope<'_> {
    /// The PATH `path` lies beneath (or is), if it is inside the watch and the walk would
    /// reach it.
    fn reaches(&self, path: &Path) -> bool {
        if self.files.iter().any(|f| f == path) {
            return true;
        }
        let Some(root) = self.dirs.iter().find(|d| path.starts_with(d)) else {
            return false;
        };
        let rel = path.strip_prefix(root).unwrap_or(path);
        let names: Vec<&OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let Some((_, dirs)) = names.split_last() else {
            return true; // the PATH itself
        };
        if dirs
            .iter()
            .any(|n| VCS_DIRS.iter().any(|v| *n == OsStr::new(v)))
        {
            return false;
        }
        let excludes = &self.walk.excludes;
        if !excludes.is_empty() {
            let mut sub = PathBuf::new();
            for name in &names {
                sub.push(name);
                if excludes.is_match(name)
                    || excludes.is_match(&sub)
                    || excludes.is_match(root.join(&sub))
                {
                    return false;
                }
            }
        }
        if !self.walk.include_envs {
            if dirs
                .iter()
                .any(|n| ENV_DIRS.iter().any(|e| *n == OsStr::new(e)))
            {
                return false;
            }
            // A virtual environment beneath the PATH (the PATH itself may be one).
            let mut dir = root.to_path_buf();
            for name in dirs {
                dir.push(name);
                if dir.join(VENV_MARKER).exists() {
                    return false;
                }
            }
        }
        true
    }
}

/// What to scan for a path that settled (see the module docs). `prefix` is the pycache
/// prefix in effect, `cwd` what relative paths are relative to.
pub fn targets(
    path: &Path,
    touch: Touch,
    scope: &Scope<'_>,
    written: &mut Written,
    prefix: Option<&Path>,
    cwd: &Path,
) -> Vec<Target> {
    if !scope.reaches(path) {
        return Vec::new();
    }
    let Some(name) = path.file_name() else {
        return Vec::new();
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return if is_source_name(name) {
                caches_of_gone_source(path, prefix, cwd)
                    .into_iter()
                    .map(Target::File)
                    .collect()
            } else {
                Vec::new()
            };
        }
        // Unreadable: the scan says why.
        Err(_) => return vec![Target::File(path.to_path_buf())],
    };
    if meta.is_dir() {
        if !touch.appeared {
            return Vec::new();
        }
        if layout::is_pycache_dir(name) {
            return list(path)
                .into_iter()
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| layout::classify(n, true).is_some())
                })
                .filter(|p| !std::fs::symlink_metadata(p).is_ok_and(|m| written.wrote(p, &m)))
                .map(Target::File)
                .collect();
        }
        return vec![Target::Tree(path.to_path_buf())];
    }
    if is_source_name(name) && !in_pycache(path) {
        return vec![Target::File(path.to_path_buf())];
    }
    if layout::classify(name, in_pycache(path)).is_some() {
        if written.wrote(path, &meta) {
            return Vec::new();
        }
        return vec![Target::File(path.to_path_buf())];
    }
    Vec::new()
}

/// `NAME.py`, as the walk names a source.
fn is_source_name(name: &OsStr) -> bool {
    name.len() >= 4 && name.as_bytes().ends_with(b".py")
}

fn in_pycache(path: &Path) -> bool {
    path.parent()
        .and_then(Path::file_name)
        .is_some_and(layout::is_pycache_dir)
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

/// The caches still there of a source that is gone: `__pycache__/NAME.*.pyc`, legacy
/// `NAME.pyc` and `NAME.pyo`, and its caches under `prefix`.
pub fn caches_of_gone_source(source: &Path, prefix: Option<&Path>, cwd: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (source.parent(), source.file_name()) else {
        return Vec::new();
    };
    let stem = OsStr::from_bytes(&name.as_bytes()[..name.len() - 3]);
    let tagged_in = |cache_dir: &Path| -> Vec<PathBuf> {
        list(cache_dir)
            .into_iter()
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    matches!(layout::classify(n, true), Some(CacheName::Tagged { stem: s, .. }) if s == stem)
                })
            })
            .collect()
    };
    let mut caches = tagged_in(&dir.join(layout::PYCACHE_DIR));
    for suffix in [".pyc", ".pyo"] {
        let mut legacy = stem.to_os_string();
        legacy.push(suffix);
        let path = dir.join(legacy);
        if std::fs::symlink_metadata(&path).is_ok() {
            caches.push(path);
        }
    }
    if let Some(prefix) = prefix {
        let absolute = layout::lexically_absolute(cwd, dir);
        let mut forms = vec![absolute.clone()];
        if let Ok(real) = std::fs::canonicalize(&absolute) {
            if real != absolute {
                forms.push(real);
            }
        }
        for form in forms {
            caches.extend(tagged_in(&layout::prefix_mirror_dir(prefix, &form)));
        }
    }
    caches
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, Event};

    fn event(kind: EventKind, paths: &[&str]) -> notify::Result<Event> {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        Ok(e)
    }

    fn touched(path: &str, appeared: bool) -> Change {
        Change::Touched(PathBuf::from(path), Touch { appeared })
    }

    #[test]
    fn reads_are_not_changes_and_renames_appear_where_they_land() {
        assert!(changes_of(event(EventKind::Access(AccessKind::Read), &["a.py"])).is_empty());
        assert_eq!(
            changes_of(event(EventKind::Create(CreateKind::File), &["a.py"])),
            vec![touched("a.py", true)]
        );
        assert_eq!(
            changes_of(event(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["a.py"]
            )),
            vec![touched("a.py", false)]
        );
        assert_eq!(
            changes_of(event(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &[".a.py.swp", "a.py"]
            )),
            vec![touched(".a.py.swp", false), touched("a.py", true)]
        );
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(changes_of(Ok(overflow)), vec![Change::Rescan]);
    }

    fn options() -> WalkOptions {
        let mut globs = globset::GlobSetBuilder::new();
        globs.add(globset::Glob::new("build").unwrap());
        WalkOptions {
            threads: 1,
            excludes: globs.build().unwrap(),
            pycache_prefix: None,
            report_debris: false,
            report_sources: false,
            include_envs: false,
            engine: crate::walk::Engine::default(),
            interrupt: Default::default(),
        }
    }

    #[test]
    fn what_a_settled_path_asks_for() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path().to_path_buf();
        let write = |rel: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
            p
        };
        let source = write("pkg/m.py");
        let cache = write("pkg/__pycache__/m.cpython-312.pyc");
        let other = write("pkg/__pycache__/m.cpython-311.opt-1.pyc");
        write("pkg/__pycache__/mm.cpython-312.pyc");
        let legacy = write("pkg/gone.pyc");
        let gone_tagged = write("pkg/__pycache__/gone.cpython-312.pyc");
        let in_venv = write(".venv/lib/x.py");
        write(".venv/pyvenv.cfg");
        let excluded = write("build/y.py");
        let in_git = write(".git/z.py");
        let walk = options();
        let dirs = [root.clone()];
        let scope = Scope {
            dirs: &dirs,
            files: &[],
            walk: &walk,
        };
        let mut written = Written::default();
        let mut t = |p: &Path, appeared: bool| {
            targets(p, Touch { appeared }, &scope, &mut written, None, &root)
        };
        assert_eq!(t(&source, false), vec![Target::File(source.clone())]);
        assert_eq!(t(&cache, false), vec![Target::File(cache.clone())]);
        let mut gone = t(&root.join("pkg/gone.py"), false);
        gone.sort();
        assert_eq!(
            gone,
            vec![
                Target::File(gone_tagged.clone()),
                Target::File(legacy.clone())
            ]
        );
        assert!(t(&root.join("pkg/.m.py.tmp"), false).is_empty());
        assert!(
            t(&root.join("pkg"), false).is_empty(),
            "a directory's own metadata"
        );
        assert_eq!(
            t(&root.join("pkg"), true),
            vec![Target::Tree(root.join("pkg"))]
        );
        let mut listed = t(&root.join("pkg/__pycache__"), true);
        listed.sort();
        assert_eq!(listed.len(), 4);
        assert!(listed.contains(&Target::File(other.clone())));
        for outside in [&in_venv, &excluded, &in_git] {
            assert!(t(outside, false).is_empty(), "{}", outside.display());
        }
        assert!(t(Path::new("/elsewhere/a.py"), false).is_empty());
        // The cache this watch wrote is not judged again; once replaced, it is.
        written.remember(&cache);
        let mut t = |p: &Path| targets(p, Touch::default(), &scope, &mut written, None, &root);
        assert!(t(&cache).is_empty());
        std::fs::remove_file(&cache).unwrap();
        std::fs::write(&cache, b"other").unwrap();
        assert_eq!(t(&cache), vec![Target::File(cache.clone())]);
    }
}
