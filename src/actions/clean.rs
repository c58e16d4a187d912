//! `pycguard clean`: remove bytecode caches (all of them, or only some states, or only one
//! interpreter's) and, on request, the usual tool caches — the job people do today with
//! `find -delete` or `pyclean`, without their failure modes: symlinks are never followed,
//! sourceless distributions are kept unless asked for, only `__pycache__` directories that
//! this run emptied are removed, and a failed deletion is reported and fails the run.
//!
//! Without `--state`, no cache is read: the name, the source's existence and, for legacy
//! caches whose source is gone, whether the directory still holds sources decide (a legacy
//! cache is only read when `--tag` must learn its interpreter from its magic). Deletions
//! happen on the walker's threads as caches are found.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::actions::safe_fs::{self, Dir, SafeFsError};
use crate::layout;
use crate::report::{Entry, ScanError};
use crate::scan::ScanConfig;
use crate::scan::{self, ScanWith, Scanned};
use crate::verdict::State;
use crate::walk;

/// What to clean.
#[derive(Clone, Debug)]
pub struct CleanOptions {
    /// Only caches in these states (judged fully); `None`: every cache but sourceless ones.
    pub states: Option<Vec<State>>,
    /// Only caches of these interpreters (`cpython-39`, matched exactly against
    /// [`scan::interpreter_tag`]); empty: all.
    pub tags: Vec<String>,
    pub debris: bool,
    pub dry_run: bool,
    /// Counts each cache removed (see [`crate::progress`]; hidden by default).
    pub progress: indicatif::ProgressBar,
}

/// Why something could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error(transparent)]
    Fs(#[from] SafeFsError),
    #[error("no file name")]
    NoFileName,
}

/// What a clean did (or, dry, would do).
#[derive(Debug, Default)]
pub struct CleanOutcome {
    pub removed: Vec<PathBuf>,
    pub debris_removed: Vec<PathBuf>,
    pub dirs_removed: Vec<PathBuf>,
    pub kept_sourceless: usize,
    pub failed: Vec<(PathBuf, CleanError)>,
    /// Entries the scan could not read.
    pub scan_errors: Vec<ScanError>,
    /// What the walk skipped (environments).
    pub walk: walk::WalkSummary,
}

thread_local! {
    /// The directory this thread last opened: the walk yields a directory's entries together.
    static LAST_DIR: RefCell<Option<(PathBuf, Arc<Dir>)>> = const { RefCell::new(None) };
}

/// Open `dir` beneath `root`, reusing this thread's last open directory.
pub fn cached_dir(root: &Path, dir: &Path) -> Result<Arc<Dir>, SafeFsError> {
    LAST_DIR.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((path, open)) = last.as_ref() {
            if path == dir {
                return Ok(open.clone());
            }
        }
        let open = Arc::new(safe_fs::open_dir_beneath(root, dir, None)?);
        *last = Some((dir.to_path_buf(), open.clone()));
        Ok(open)
    })
}

/// Remove one file found by the walk, beneath its root.
pub fn remove_cache(root: &Path, path: &Path) -> Result<(), CleanError> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let name = path.file_name().ok_or(CleanError::NoFileName)?;
    // Removed by another run first (or its directory with it): done all the same.
    let result = cached_dir(root, parent).and_then(|dir| dir.remove_file(name));
    match result {
        Err(SafeFsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => Ok(other?),
    }
}

/// Does a judged cache match `--state` and `--tag`?
fn selected(entry: &Entry, states: &[State], tags: &[String]) -> bool {
    states.contains(&entry.verdict.state)
        && (tags.is_empty()
            || scan::interpreter_tag(&entry.name, entry.verdict.interpreter)
                .is_some_and(|t| tags.contains(&t)))
}

/// Run a clean over every root of `config`. Removals happen on the walker's threads as
/// caches are found; with `--state` each cache is judged first, without it none is read.
pub fn run(config: &ScanConfig, options: &CleanOptions) -> CleanOutcome {
    let outcome = Mutex::new(CleanOutcome::default());
    let emptied_candidates = Mutex::new(BTreeSet::<(PathBuf, Arc<Path>)>::new());
    let act = |root: &Arc<Path>, path: PathBuf| {
        let result = if options.dry_run {
            Ok(())
        } else {
            remove_cache(root, &path)
        };
        options.progress.inc(1);
        let mut out = outcome.lock().expect("poisoned");
        match result {
            Ok(()) => {
                if let Some(dir) = path
                    .parent()
                    .filter(|d| d.file_name().is_some_and(layout::is_pycache_dir))
                {
                    emptied_candidates
                        .lock()
                        .expect("poisoned")
                        .insert((dir.to_path_buf(), root.clone()));
                }
                out.removed.push(path);
            }
            Err(e) => out.failed.push((path, e)),
        }
    };
    let tags = &options.tags;
    let make_sink = || {
        |found: Scanned| match found {
            Scanned::Judged(entry) => {
                let states = options.states.as_deref().unwrap_or_default();
                if selected(&entry, states, tags) && !crate::signals::interrupted() {
                    act(&entry.root, entry.path);
                }
            }
            Scanned::Unjudged(found) => {
                if !tags.is_empty() && !found.interpreter_tag().is_some_and(|t| tags.contains(&t)) {
                    return;
                }
                if found.presumed_sourceless() {
                    outcome.lock().expect("poisoned").kept_sourceless += 1;
                    return;
                }
                act(&found.candidate.root, found.candidate.path);
            }
            Scanned::Debris { root, path } => {
                let result = if options.dry_run {
                    Ok(())
                } else {
                    remove_debris(&root, &path)
                };
                let mut out = outcome.lock().expect("poisoned");
                match result {
                    Ok(()) => out.debris_removed.push(path),
                    Err(e) => out.failed.push((path, e)),
                }
            }
            Scanned::Error(error) => outcome.lock().expect("poisoned").scan_errors.push(error),
            Scanned::Source { .. } => {}
        }
    };
    let with = ScanWith {
        judge: options.states.is_some(),
        sources: false,
        debris: options.debris,
    };
    let walked = scan::scan(config, with, &make_sink);
    // Forget this thread's open directory before removing directories.
    LAST_DIR.with(|last| last.borrow_mut().take());
    let mut out = outcome.into_inner().expect("poisoned");
    out.walk = walked;
    if options.dry_run {
        out.dirs_removed = would_empty(
            emptied_candidates.into_inner().expect("poisoned"),
            &out.removed,
        );
    } else {
        // Deepest first, so nested emptied directories go too.
        let mut dirs: Vec<_> = emptied_candidates
            .into_inner()
            .expect("poisoned")
            .into_iter()
            .collect();
        dirs.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
        for (dir, root) in dirs {
            match remove_dir_if_empty(&root, &dir) {
                Ok(true) => out.dirs_removed.push(dir),
                Ok(false) => {}
                Err(e) => out.failed.push((dir, e.into())),
            }
        }
    }
    out.removed.sort();
    out.debris_removed.sort();
    out.dirs_removed.sort();
    out.failed.sort_by(|a, b| a.0.cmp(&b.0));
    out.scan_errors.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// For a dry run: the `__pycache__` directories the real run would remove — those every
/// entry of which is a cache it would remove (and that are not a PATH). Only listed,
/// never opened for writing.
fn would_empty(candidates: BTreeSet<(PathBuf, Arc<Path>)>, removed: &[PathBuf]) -> Vec<PathBuf> {
    let removed: BTreeSet<&Path> = removed.iter().map(PathBuf::as_path).collect();
    candidates
        .into_iter()
        .filter(|(dir, root)| dir.as_path() != &**root)
        .filter(|(dir, _)| match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .into_iter()
                .all(|e| e.is_ok_and(|e| removed.contains(dir.join(e.file_name()).as_path()))),
            Err(_) => false,
        })
        .map(|(dir, _)| dir)
        .collect()
}

/// Remove `dir` (a `__pycache__` directory) if it is empty; `Ok(false)` when it is not.
pub fn remove_dir_if_empty(root: &Path, dir: &Path) -> Result<bool, SafeFsError> {
    if dir == root {
        return Ok(false);
    }
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Ok(false);
    };
    let result =
        safe_fs::open_dir_beneath(root, parent, None).and_then(|p| p.remove_empty_dir(name));
    match result {
        // Removed by another run: not ours to report.
        Err(SafeFsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        other => other,
    }
}

fn remove_debris(root: &Path, path: &Path) -> Result<(), CleanError> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let name: &OsStr = path.file_name().ok_or(CleanError::NoFileName)?;
    let dir = safe_fs::open_dir_beneath(root, parent, None)?;
    Ok(dir.remove_tree(name)?)
}
