//! Finding caches: a parallel walk of the given paths (and of their mirror under a pycache
//! prefix) that yields every bytecode cache with the source it belongs to.
//!
//! The walk never follows a symlinked directory (so it cannot loop or leave the tree),
//! skips VCS directories and `--exclude` globs, reads no `.gitignore` (caches are usually
//! ignored by git, and they are exactly what we look for), and works on raw path bytes so
//! non-UTF-8 names survive. It classifies by name only; reading and judging happen in the
//! caller's sink, on the walker's threads, so the scan streams and memory stays flat.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::GlobSet;
use ignore::{DirEntry, WalkBuilder, WalkState};

use crate::layout::{self, CacheName};
use crate::verdict::Location;

/// Directories of version-control systems: never walked.
pub const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", "CVS"];

/// One cache found by the walk.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The cache's path as reached from the PATH argument (or under the prefix).
    pub path: PathBuf,
    /// The directory the walk started from (the PATH, or its mirror under the prefix):
    /// actions open directories beneath it without following symlinks.
    pub root: Arc<Path>,
    pub name: CacheName,
    pub location: Location,
    /// The source the cache belongs to, as reached from the PATH argument.
    pub source: Option<PathBuf>,
}

/// What the walk reports to its sink.
#[derive(Debug)]
pub enum WalkEvent {
    Cache(Candidate),
    /// A directory or entry that could not be read; the walk goes on.
    Error {
        path: PathBuf,
        message: String,
    },
    /// A tool-cache directory (see [`WalkOptions::report_debris`]); not descended into.
    Debris {
        root: Arc<Path>,
        path: PathBuf,
    },
    /// A `.py` source (see [`WalkOptions::report_sources`]); a symlink to a file counts.
    Source {
        root: Arc<Path>,
        path: PathBuf,
    },
}

/// How to walk; resolved once from the command line.
#[derive(Clone, Debug)]
pub struct WalkOptions {
    pub threads: usize,
    pub excludes: GlobSet,
    /// Absolute pycache prefix, if any: walked as a mirror and skipped in the normal walk.
    pub pycache_prefix: Option<PathBuf>,
    /// Report directories named in [`crate::actions::clean::DEBRIS_DIRS`] instead of
    /// walking into them.
    pub report_debris: bool,
    /// Also report `.py` sources (for `compile`).
    pub report_sources: bool,
}

/// A PATH argument to walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// As the user gave it; reported paths start with it.
    pub path: PathBuf,
    /// The absolute forms under which an interpreter may have named its sources: the
    /// lexically absolute path and, when different, the symlink-resolved one. Each has its
    /// own mirror under a pycache prefix.
    pub absolute_forms: Vec<PathBuf>,
}

/// Walk one root (a directory or a single file) and, when a prefix is set, its mirrors
/// under the prefix. Events arrive on the walker's threads.
pub fn walk_root<F>(root: &Root, options: &WalkOptions, sink: &F)
where
    F: Fn(WalkEvent) + Sync,
{
    walk_root_per_thread(root, options, &|| sink);
}

/// As [`walk_root`], with one sink per walker thread: `make_sink` is called once on each
/// thread, and the sink it returns receives that thread's events and is dropped when the
/// thread's share of the walk ends. A sink that gathers results can keep them unshared
/// while the walk runs and merge them once, in its `Drop`.
pub fn walk_root_per_thread<M, S>(root: &Root, options: &WalkOptions, make_sink: &M)
where
    M: Fn() -> S + Sync,
    S: FnMut(WalkEvent) + Send,
{
    run(&root.path, &root.path, options, Mode::Tree, make_sink);
    if let Some(prefix) = &options.pycache_prefix {
        for absolute in &root.absolute_forms {
            let mirror = layout::prefix_mirror_dir(prefix, absolute);
            if mirror.is_dir() {
                run(
                    &mirror,
                    &root.path,
                    options,
                    Mode::Mirror { mirror: &mirror },
                    make_sink,
                );
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Mode<'a> {
    Tree,
    /// Walking `PREFIX/<abs root>`; caches map back to sources under the root.
    Mirror {
        mirror: &'a Path,
    },
}

fn run<M, S>(start: &Path, root: &Path, options: &WalkOptions, mode: Mode<'_>, make_sink: &M)
where
    M: Fn() -> S + Sync,
    S: FnMut(WalkEvent) + Send,
{
    let mut builder = WalkBuilder::new(start);
    builder
        .standard_filters(false)
        .follow_links(false)
        .threads(options.threads);
    {
        let excludes = options.excludes.clone();
        let start = start.to_path_buf();
        let prefix = options.pycache_prefix.clone();
        let in_tree = matches!(mode, Mode::Tree);
        builder.filter_entry(move |entry| {
            keep_entry(
                entry,
                &start,
                &excludes,
                prefix.as_deref().filter(|_| in_tree),
            )
        });
    }
    builder.build_parallel().run(|| {
        let mut sink = make_sink();
        // One allocation per thread, not one shared counter: every event clones it, and a
        // reference count bounced between cores costs more than the rest of the event.
        let walk_root: Arc<Path> = Arc::from(start);
        Box::new(move |result| {
            match result {
                Ok(entry) => {
                    if options.report_debris && is_debris_dir(&entry) {
                        sink(WalkEvent::Debris {
                            root: walk_root.clone(),
                            path: entry.into_path(),
                        });
                        return WalkState::Skip;
                    }
                    if options.report_sources && matches!(mode, Mode::Tree) && is_source(&entry) {
                        sink(WalkEvent::Source {
                            root: walk_root.clone(),
                            path: entry.into_path(),
                        });
                    } else if let Some(event) = classify_entry(entry, root, &walk_root, mode) {
                        sink(WalkEvent::Cache(event));
                    }
                }
                Err(err) => {
                    let path = error_path(&err).unwrap_or_else(|| start.to_path_buf());
                    sink(WalkEvent::Error {
                        path,
                        message: error_message(&err),
                    });
                }
            }
            WalkState::Continue
        })
    });
}

/// A `NAME.py` file (or a symlink to one) outside `__pycache__`.
fn is_source(entry: &DirEntry) -> bool {
    if !entry.file_name().as_encoded_bytes().ends_with(b".py") || entry.file_name().len() < 4 {
        return false;
    }
    match entry.file_type() {
        Some(t) if t.is_file() => true,
        Some(t) if t.is_symlink() => entry.path().is_file(),
        _ => false,
    }
}

fn is_debris_dir(entry: &DirEntry) -> bool {
    entry.depth() > 0
        && entry.file_type().is_some_and(|t| t.is_dir())
        && crate::actions::clean::DEBRIS_DIRS
            .iter()
            .any(|d| entry.file_name() == *d)
}

fn keep_entry(entry: &DirEntry, start: &Path, excludes: &GlobSet, prefix: Option<&Path>) -> bool {
    if entry.depth() == 0 {
        return true;
    }
    let name = entry.file_name();
    let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
    if is_dir && VCS_DIRS.iter().any(|v| name == *v) {
        return false;
    }
    if !excludes.is_empty() {
        let rel = entry.path().strip_prefix(start).unwrap_or(entry.path());
        if excludes.is_match(name) || excludes.is_match(rel) || excludes.is_match(entry.path()) {
            return false;
        }
    }
    if let (Some(prefix), true) = (prefix, is_dir) {
        if same_dir(entry.path(), prefix) {
            return false;
        }
    }
    true
}

/// Is `path` (as walked) the directory `abs` (absolute)? Only called for directories.
fn same_dir(path: &Path, abs: &Path) -> bool {
    match (std::fs::canonicalize(path), std::fs::canonicalize(abs)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn classify_entry(
    entry: DirEntry,
    root: &Path,
    walk_root: &Arc<Path>,
    mode: Mode<'_>,
) -> Option<Candidate> {
    // A symlink is never a cache we judge or touch: only regular files.
    if !entry.file_type()?.is_file() {
        return None;
    }
    let path = entry.into_path();
    let parent = path.parent().unwrap_or(Path::new(""));
    let file_name = path.file_name()?;
    match mode {
        Mode::Tree => {
            let in_pycache = parent.file_name().is_some_and(layout::is_pycache_dir);
            let name = layout::classify(file_name, in_pycache)?;
            let location = if in_pycache {
                Location::PyCache
            } else {
                Location::Beside
            };
            let source = layout::source_path(parent, &name);
            Some(Candidate {
                path,
                root: walk_root.clone(),
                name,
                location,
                source,
            })
        }
        Mode::Mirror { mirror } => {
            let name = layout::classify(file_name, true)?;
            let rel_dir = parent.strip_prefix(mirror).ok()?;
            let source = match &name {
                CacheName::Tagged { stem, .. } => {
                    let mut file = stem.clone();
                    file.push(".py");
                    Some(root.join(rel_dir).join(file))
                }
                _ => None,
            };
            Some(Candidate {
                path: path.to_path_buf(),
                root: walk_root.clone(),
                name,
                location: Location::Prefix,
                source,
            })
        }
    }
}

fn error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

fn error_message(err: &ignore::Error) -> String {
    match err {
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => error_message(err),
        ignore::Error::Io(io) => crate::facts::io_message(io),
        other => other.to_string(),
    }
}

/// The candidate for one named file (for `inspect`): placed by its directory, or under
/// `prefix` when it lies there. `None` when the name is not a cache name at all.
pub fn candidate_for_file(
    path: &Path,
    absolute: &Path,
    prefix: Option<&Path>,
) -> Option<Candidate> {
    let file_name = path.file_name()?;
    let parent = path.parent().unwrap_or(Path::new(""));
    let root: Arc<Path> = Arc::from(parent);
    if parent.file_name().is_some_and(layout::is_pycache_dir) {
        let name = layout::classify(file_name, true)?;
        let source = layout::source_path(parent, &name);
        return Some(Candidate {
            path: path.to_path_buf(),
            root: root.clone(),
            name,
            location: Location::PyCache,
            source,
        });
    }
    if let Some(rel) = prefix.and_then(|p| absolute.parent()?.strip_prefix(p).ok()) {
        let name = layout::classify(file_name, true)?;
        let source = match &name {
            CacheName::Tagged { stem, .. } => {
                let mut file = stem.clone();
                file.push(".py");
                Some(Path::new("/").join(rel).join(file))
            }
            _ => None,
        };
        return Some(Candidate {
            path: path.to_path_buf(),
            root: root.clone(),
            name,
            location: Location::Prefix,
            source,
        });
    }
    let name = layout::classify(file_name, false)?;
    let source = layout::source_path(parent, &name);
    Some(Candidate {
        path: path.to_path_buf(),
        root,
        name,
        location: Location::Beside,
        source,
    })
}
