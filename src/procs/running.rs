//! Which Python processes run code from the given trees, and what in those trees changed
//! after each one started — the running code may then be older than the tree (`ps`, and
//! `doctor`'s process findings).
//!
//! A process belongs to a PATH when its script, its `-m` module's file, its working
//! directory or its virtualenv lies under it (any of the PATH's absolute forms: as
//! given and with symlinks resolved), or when its working directory is an old release
//! beside a `current` symlink that is (or is inside) the PATH. Each PATH some process
//! belongs to is walked once (the scan pipeline, caches unread: only names and `lstat`s
//! are needed), and for each process the files under its PATHs are compared with its
//! start:
//! - a **source** whose mtime or ctime is later than the start by more than the start
//!   time's tolerance ([`super::start_tolerance_ns`]) changed after it started; the
//!   ctime counts because a deploy that keeps mtimes (`rsync -t`, `tar`, `git` restoring
//!   timestamps) still changes it;
//! - a **cache** counts the same way only when the process could not have written it
//!   itself: it runs with `-B` or `PYTHONDONTWRITEBYTECODE`, or the cache belongs to
//!   another uid than the process's (a process writes its own caches as it imports,
//!   which says nothing about old code); a cache `fix` rewrote as root for the owner the
//!   process runs as is therefore not reported — its source is, when it changed;
//! - files changed within the tolerance of the start cannot be ordered with it: they are
//!   counted (`unordered`), never listed as changed.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{old_release, OldRelease, Process};
use crate::report::ScanError;
use crate::scan::{self, ScanConfig, ScanWith, Scanned};
use crate::walk::Root;

/// A source or a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileRole {
    Source,
    Cache,
}

impl FileRole {
    pub fn name(self) -> &'static str {
        match self {
            FileRole::Source => "source",
            FileRole::Cache => "cache",
        }
    }
}

/// Which time showed the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangedBy {
    /// Its content was written (mtime).
    Modified,
    /// Its inode changed (ctime) while the mtime is older: replaced with its mtime kept.
    Replaced,
}

impl ChangedBy {
    pub fn name(self) -> &'static str {
        match self {
            ChangedBy::Modified => "mtime",
            ChangedBy::Replaced => "ctime",
        }
    }
}

/// One file that changed after a process started.
#[derive(Clone, Debug)]
pub struct Changed {
    /// As reached from the PATH argument.
    pub path: PathBuf,
    pub role: FileRole,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub by: ChangedBy,
}

/// A process that runs code from the given PATHs, and what is known against it.
#[derive(Clone, Debug)]
pub struct Running {
    pub process: Process,
    /// The PATH arguments it belongs to, as given.
    pub roots: Vec<PathBuf>,
    /// Sources and caches changed after it started, sorted by path.
    pub changed: Vec<Changed>,
    /// Files changed within the start time's tolerance (not ordered with the start).
    pub unordered: usize,
    pub old_release: Option<OldRelease>,
}

impl Running {
    /// Is the running code possibly older than the tree (what `ps` lists)?
    pub fn is_stale(&self) -> bool {
        !self.changed.is_empty() || self.old_release.is_some() || self.process.cwd_deleted
    }
}

/// What [`find`] gives.
#[derive(Debug, Default)]
pub struct RunningOutcome {
    /// Every Python process that belongs to a PATH, by pid.
    pub running: Vec<Running>,
    /// Entries the walk could not read.
    pub errors: Vec<ScanError>,
}

/// A file of a walked tree.
struct Seen {
    path: PathBuf,
    role: FileRole,
    mtime_ns: i128,
    ctime_ns: i128,
    uid: u32,
}

/// The processes of `processes` that belong to `config`'s roots, each compared with the
/// files under those roots (see the module docs).
pub fn find(config: &ScanConfig, processes: &[Process], tolerance_ns: i128) -> RunningOutcome {
    let mut running: Vec<Running> = Vec::new();
    for process in processes {
        let roots: Vec<PathBuf> = config
            .roots
            .iter()
            .filter(|root| belongs(process, root))
            .map(|root| root.path.clone())
            .collect();
        if roots.is_empty() {
            continue;
        }
        let old_release = process.cwd.as_deref().and_then(old_release);
        running.push(Running {
            process: process.clone(),
            roots,
            changed: Vec::new(),
            unordered: 0,
            old_release,
        });
    }
    let mut outcome = RunningOutcome::default();
    if running.is_empty() {
        return outcome;
    }
    let wanted: Vec<Root> = config
        .roots
        .iter()
        .filter(|root| running.iter().any(|r| r.roots.contains(&root.path)))
        .cloned()
        .collect();
    let (files, errors) = walk(config, wanted);
    outcome.errors = errors;
    for r in &mut running {
        for root in r.roots.clone() {
            for seen in files.get(&root).into_iter().flatten() {
                compare(r, seen, tolerance_ns);
            }
        }
        r.changed.sort_by(|a, b| a.path.cmp(&b.path));
    }
    outcome.running = running;
    outcome
}

fn compare(r: &mut Running, seen: &Seen, tolerance_ns: i128) {
    let p = &r.process;
    let changed_ns = seen.mtime_ns.max(seen.ctime_ns);
    let after = changed_ns - p.started_ns;
    if after <= -tolerance_ns {
        return;
    }
    if seen.role == FileRole::Cache {
        let own_uid = p.uids.map(|(_, effective)| effective);
        let could_write = p.writes_caches() && own_uid.map_or(true, |uid| uid == seen.uid);
        if could_write {
            return;
        }
    }
    if after <= tolerance_ns {
        r.unordered += 1;
        return;
    }
    let by = if seen.mtime_ns - p.started_ns > tolerance_ns {
        ChangedBy::Modified
    } else {
        ChangedBy::Replaced
    };
    r.changed.push(Changed {
        path: seen.path.clone(),
        role: seen.role,
        mtime_ns: seen.mtime_ns,
        ctime_ns: seen.ctime_ns,
        by,
    });
}

/// Does the process belong to this PATH?
fn belongs(p: &Process, root: &Root) -> bool {
    let under_root = |path: &Path| root.absolute_forms.iter().any(|f| path.starts_with(f));
    if p.places().any(under_root) {
        return true;
    }
    // `PATH` is (inside) a `current` symlink and the process runs in an older release.
    let Some(old) = p.cwd.as_deref().and_then(old_release) else {
        return false;
    };
    root.absolute_forms
        .iter()
        .any(|f| f.starts_with(&old.link) || f.starts_with(&old.points_to))
}

/// Every source and cache under `roots`, by the PATH it was found under (each PATH is
/// walked on its own, so a file is attributed to the PATH that reached it).
fn walk(config: &ScanConfig, roots: Vec<Root>) -> (BTreeMap<PathBuf, Vec<Seen>>, Vec<ScanError>) {
    let mut files: BTreeMap<PathBuf, Vec<Seen>> = BTreeMap::new();
    let mut errors = Vec::new();
    for root in roots {
        let (seen, errs) = walk_one(config, root.clone());
        files.entry(root.path).or_default().extend(seen);
        errors.extend(errs);
    }
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    (files, errors)
}

fn walk_one(config: &ScanConfig, root: Root) -> (Vec<Seen>, Vec<ScanError>) {
    let config = ScanConfig {
        roots: vec![root],
        ..config.clone()
    };
    type Found = (Vec<(PathBuf, FileRole)>, Vec<ScanError>);
    let found: Mutex<Found> = Mutex::default();
    let make_sink = || {
        |scanned: Scanned| {
            let item = match scanned {
                Scanned::Source { path, .. } => (path, FileRole::Source),
                Scanned::Unjudged(u) => (u.candidate.path, FileRole::Cache),
                Scanned::Error(e) => {
                    found.lock().expect("poisoned").1.push(e);
                    return;
                }
                Scanned::Judged(_) | Scanned::Debris { .. } => return,
            };
            found.lock().expect("poisoned").0.push(item);
        }
    };
    let with = ScanWith {
        judge: false,
        sources: true,
        debris: false,
    };
    scan::scan(&config, with, &make_sink);
    let (items, mut errors) = found.into_inner().expect("poisoned");
    let mut seen = Vec::with_capacity(items.len());
    for (path, role) in items {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(ScanError {
                        message: crate::read::io_message(&e),
                        path,
                    });
                }
                continue;
            }
        };
        seen.push(Seen {
            path,
            role,
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
            uid: meta.uid(),
        });
    }
    (seen, errors)
}
