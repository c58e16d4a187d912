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

use crate::actions::safe_fs::{self, Dir};
use crate::check::{self, Keep};
use crate::config::ScanConfig;
use crate::facts::DirSources;
use crate::layout::{self, CacheName};
use crate::pyc::magic;
use crate::verdict::State;
use crate::walk::{self, Candidate, WalkEvent};

/// What to clean.
#[derive(Clone, Debug, Default)]
pub struct CleanOptions {
    /// Only caches in these states (judged fully); `None`: every cache but sourceless ones.
    pub states: Option<Vec<State>>,
    /// Only caches of these interpreters (`cpython-39`); empty: all.
    pub tags: Vec<String>,
    pub debris: bool,
    pub dry_run: bool,
}

/// What a clean did (or, dry, would do).
#[derive(Debug, Default)]
pub struct CleanOutcome {
    pub removed: Vec<PathBuf>,
    pub debris_removed: Vec<PathBuf>,
    pub dirs_removed: Vec<PathBuf>,
    pub kept_sourceless: usize,
    pub failed: Vec<(PathBuf, String)>,
    /// Entries the scan could not read.
    pub scan_errors: Vec<(PathBuf, String)>,
    /// What the walk skipped (environments).
    pub walk: walk::WalkSummary,
}

thread_local! {
    /// The directory this thread last opened: the walk yields a directory's entries together.
    static LAST_DIR: RefCell<Option<(PathBuf, Arc<Dir>)>> = const { RefCell::new(None) };
}

/// Open `dir` beneath `root`, reusing this thread's last open directory.
pub fn cached_dir(root: &Path, dir: &Path) -> Result<Arc<Dir>, safe_fs::SafeFsError> {
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
pub fn remove_cache(root: &Path, path: &Path) -> Result<(), String> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let name = path.file_name().ok_or("no file name")?;
    // Removed by another run first (or its directory with it): done all the same.
    let result = cached_dir(root, parent).and_then(|dir| dir.remove_file(name));
    match result {
        Err(safe_fs::SafeFsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|e| e.to_string()),
    }
}

/// The tag of the interpreter that wrote a cache: from the name, else from the magic.
fn tag_of(candidate: &Candidate) -> Option<String> {
    if let Some(tag) = candidate.name.tag() {
        return Some(tag.split("-pytest-").next().unwrap_or(tag).to_owned());
    }
    // Without blocking: a FIFO or device is never opened for its magic.
    if !matches!(
        candidate.found_as,
        walk::FoundAs::File | walk::FoundAs::Symlink
    ) {
        return None;
    }
    let head = crate::read::read_head(&candidate.path, crate::read::Follow::Yes, 4).ok()?;
    let series = magic::lookup(head.try_into().ok()?)?.series;
    Some(series.cache_tag().unwrap_or_else(|| {
        format!(
            "{}-{}{}",
            series.implementation.name(),
            series.major,
            series.minor
        )
    }))
}

/// Is this candidate (found without reading it) one of a sourceless distribution?
fn is_sourceless(candidate: &Candidate, dirs: &DirSources) -> bool {
    let (CacheName::Legacy { .. }, Some(source)) = (&candidate.name, &candidate.source) else {
        return false;
    };
    if source.is_file() {
        return false;
    }
    let dir = source
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    !dirs.has_sources(dir)
}

/// Run a clean over every root of `config`.
pub fn run(config: &ScanConfig, options: &CleanOptions) -> CleanOutcome {
    let outcome = Mutex::new(CleanOutcome::default());
    let emptied_candidates = Mutex::new(BTreeSet::<(PathBuf, Arc<Path>)>::new());
    let act = |root: &Arc<Path>, path: PathBuf| {
        let result = if options.dry_run {
            Ok(())
        } else {
            remove_cache(root, &path)
        };
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
            Err(message) => out.failed.push((path, message)),
        }
    };
    let tag_ok = |candidate: &Candidate| {
        options.tags.is_empty() || tag_of(candidate).is_some_and(|t| options.tags.contains(&t))
    };

    if let Some(states) = &options.states {
        let report = check::run(config, Keep::All);
        let mut out = outcome.lock().expect("poisoned");
        out.walk = report.walk.clone();
        out.scan_errors = report
            .errors
            .iter()
            .map(|e| (e.path.clone(), e.message.clone()))
            .collect();
        drop(out);
        for entry in report.entries {
            if crate::deep::interrupted() {
                break;
            }
            if !states.contains(&entry.verdict.state) {
                continue;
            }
            let tag = entry
                .verdict
                .tag
                .clone()
                .or_else(|| entry.verdict.interpreter.and_then(|s| s.cache_tag()));
            if !options.tags.is_empty()
                && !tag.is_some_and(|t| options.tags.iter().any(|w| t.starts_with(w.as_str())))
            {
                continue;
            }
            act(&entry.root, entry.path);
        }
    } else {
        let dirs = DirSources::default();
        let sink = |event: WalkEvent, _: walk::DirContext<'_>| match event {
            WalkEvent::Cache(candidate) => {
                if !tag_ok(&candidate) {
                    return;
                }
                if is_sourceless(&candidate, &dirs) {
                    outcome.lock().expect("poisoned").kept_sourceless += 1;
                    return;
                }
                act(&candidate.root, candidate.path);
            }
            WalkEvent::Debris { root, path } => {
                let result = if options.dry_run {
                    Ok(())
                } else {
                    remove_debris(&root, &path)
                };
                let mut out = outcome.lock().expect("poisoned");
                match result {
                    Ok(()) => out.debris_removed.push(path),
                    Err(message) => out.failed.push((path, message)),
                }
            }
            WalkEvent::Error { path, error } => {
                let message = crate::read::io_message(&error);
                outcome
                    .lock()
                    .expect("poisoned")
                    .scan_errors
                    .push((path, message));
            }
            WalkEvent::Source { .. } => {}
        };
        let mut walk_options = config.walk.clone();
        walk_options.report_debris = options.debris;
        let mut walked = walk::WalkSummary::default();
        for root in &config.roots {
            walked.merge(walk::walk_root(root, &walk_options, &sink));
        }
        outcome.lock().expect("poisoned").walk = walked;
    }
    // Forget this thread's open directory before removing directories.
    LAST_DIR.with(|last| last.borrow_mut().take());
    let mut out = outcome.into_inner().expect("poisoned");
    if !options.dry_run {
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
                Err(message) => out.failed.push((dir, message)),
            }
        }
    }
    out.removed.sort();
    out.debris_removed.sort();
    out.dirs_removed.sort();
    out.failed.sort();
    out.scan_errors.sort();
    out
}

/// Remove `dir` (a `__pycache__` directory) if it is empty; `Ok(false)` when it is not.
pub fn remove_dir_if_empty(root: &Path, dir: &Path) -> Result<bool, String> {
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
        Err(safe_fs::SafeFsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        other => other.map_err(|e| e.to_string()),
    }
}

fn remove_debris(root: &Path, path: &Path) -> Result<(), String> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let name: &OsStr = path.file_name().ok_or("no file name")?;
    let dir = safe_fs::open_dir_beneath(root, parent, None).map_err(|e| e.to_string())?;
    dir.remove_tree(name).map_err(|e| e.to_string())
}
