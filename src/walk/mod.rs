//! Finding caches: a parallel walk of the given paths (and of their mirror under a pycache
//! prefix) that yields every bytecode cache with the source it belongs to.
//!
//! The walk never follows a symlinked directory (so it cannot loop or leave the tree),
//! skips VCS directories and `--exclude` globs, reads no `.gitignore` (caches are usually
//! ignored by git, and they are exactly what we look for), and works on raw path bytes so
//! non-UTF-8 names survive. It classifies by name only; reading and judging happen in the
//! caller's sink, on the walker's threads, so the scan streams and memory stays flat.
//!
//! Three things are decided per directory, from the listing the walker reads anyway:
//!
//! - **Environments are not the project** (as ruff and pyclean have it): a directory found
//!   beneath a PATH that holds `pyvenv.cfg`, and any directory named `.tox`, `.nox` or
//!   `node_modules`, is not walked unless [`WalkOptions::include_envs`]; the walk reports
//!   what it skipped ([`WalkSummary`]). A PATH that is one itself is walked.
//! - **A pycache prefix tree inside the walk is a mirror** of the sources it was written
//!   for, whether or not a prefix is set now (a service's unit may set
//!   `PYTHONPYCACHEPREFIX` where the shell does not): see [`WalkState::mirrored_dir`].
//! - **A file as PATH** is a source (its caches are found: every cache the directory walk
//!   would pair with it) or a cache; actions then work beneath the file's directory.
//!
//! It is a small work-sharing walker of its own rather than the `ignore` crate's: with no
//! ignore files to honour, `ignore` still built a matcher, a path and a `DirEntry` for every
//! entry and an `opendir` (with its `fstat`) per directory; reading directories with
//! `getdents64` and building paths only for what can matter took a bare walk of the
//! 66,651-entry benchmark tree from 56 ms to 39 ms, and 25 ms of CPU to 10 ms.
//!
//! Directories are listed by one of two engines behind the same interface ([`Engine`]):
//! `getdents64` into a reused buffer on Linux (`getdents.rs`, the default there), and
//! POSIX `readdir` for every Unix (`portable.rs`). Both list a directory the walker opened
//! itself (`O_DIRECTORY | O_NOFOLLOW`), so a directory swapped for a symlink after its
//! parent was read is refused, and both lend that open directory to the sink with each
//! event ([`DirContext`]) so that the sources and caches found in it are stat-ed by one
//! name instead of by a whole path. Everything else — scheduling, classification,
//! environments, prefixes — is shared and engine-independent; the engine is chosen at
//! build time (the `getdents` feature, on by default, compiles the Linux engine in) and
//! can be switched per walk ([`WalkOptions::engine`]; `PYCGUARD_WALK_ENGINE=portable`
//! for a whole run) so that every test runs on both.

use std::collections::HashMap;
use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use globset::GlobSet;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode as OpenMode, OFlags};
use rustix::io::Errno;

use crate::layout::{self, CacheName, DEBRIS_DIRS};
use crate::read::FileKind;
use crate::stat::FileStat;
use crate::verdict::Location;

#[cfg(all(target_os = "linux", feature = "getdents"))]
mod getdents;
mod portable;
#[cfg(test)]
mod tests;

/// Directories of version-control systems: never walked.
pub const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", "CVS"];

/// Directories that hold tools' environments rather than the project: not walked unless
/// [`WalkOptions::include_envs`] (a directory holding `pyvenv.cfg` is a virtualenv too).
pub const ENV_DIRS: &[&str] = &[".tox", ".nox", "node_modules"];

/// The file whose presence makes a directory a virtual environment (PEP 405).
pub const VENV_MARKER: &str = "pyvenv.cfg";

/// A directory the walk did not enter (see [`ENV_DIRS`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    /// As reached from the PATH argument (for a mirror under a pycache prefix: the source
    /// directory it mirrors).
    pub path: PathBuf,
    /// True for a virtual environment (`pyvenv.cfg` inside), false for a name in [`ENV_DIRS`].
    pub venv: bool,
}

/// What a walk learned besides its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkSummary {
    /// Environment directories not walked; sorted, each once.
    pub skipped: Vec<Skipped>,
    /// Absolute pycache prefixes recognised inside the walked trees by their layout.
    pub found_prefixes: Vec<PathBuf>,
}

impl WalkSummary {
    /// Add another walk's summary.
    pub fn merge(&mut self, other: WalkSummary) {
        self.skipped.extend(other.skipped);
        self.skipped.sort();
        self.skipped.dedup();
        self.found_prefixes.extend(other.found_prefixes);
        self.found_prefixes.sort();
        self.found_prefixes.dedup();
    }

    /// One line saying what was skipped and how to include it; `None` when nothing was.
    pub fn skipped_line(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let show = |p: &Path| {
            let s = p.to_string_lossy();
            s.strip_prefix("./").unwrap_or(&s).to_owned()
        };
        let list = |paths: Vec<&Path>| {
            const SHOWN: usize = 3;
            let mut names: Vec<String> = paths.iter().take(SHOWN).map(|p| show(p)).collect();
            if paths.len() > SHOWN {
                names.push(format!("{} more", paths.len() - SHOWN));
            }
            names.join(", ")
        };
        let mut parts = Vec::new();
        let venvs: Vec<&Path> = self
            .skipped
            .iter()
            .filter(|s| s.venv)
            .map(|s| s.path.as_path())
            .collect();
        if !venvs.is_empty() {
            parts.push(format!(
                "{} virtual {} ({})",
                venvs.len(),
                if venvs.len() == 1 {
                    "environment"
                } else {
                    "environments"
                },
                list(venvs)
            ));
        }
        let others: Vec<&Path> = self
            .skipped
            .iter()
            .filter(|s| !s.venv)
            .map(|s| s.path.as_path())
            .collect();
        if !others.is_empty() {
            parts.push(format!(
                "{} tool environment {} ({})",
                others.len(),
                if others.len() == 1 {
                    "directory"
                } else {
                    "directories"
                },
                list(others)
            ));
        }
        let total = self.skipped.len();
        Some(format!(
            "skipped {}; --include-venvs to include {}",
            parts.join(" and "),
            if total == 1 { "it" } else { "them" }
        ))
    }
}

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
    /// What the directory entry is: a regular file, a symlink (the importer reads through
    /// it, so it is judged by its target), or something else where a cache may be looked
    /// for (a FIFO, device, socket or directory: a hazard, never a cache).
    pub found_as: FoundAs,
}

/// What kind of directory entry a [`Candidate`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoundAs {
    File,
    Symlink,
    /// Not a regular file nor a symlink (never [`FileKind::Regular`] or `Symlink`).
    Special(FileKind),
}

impl FoundAs {
    fn of(kind: Kind) -> Option<FoundAs> {
        match kind {
            Kind::File => Some(FoundAs::File),
            Kind::Symlink => Some(FoundAs::Symlink),
            Kind::Special(k) => Some(FoundAs::Special(k)),
            Kind::Dir => Some(FoundAs::Special(FileKind::Directory)),
            Kind::Unknown => None,
        }
    }
}

/// What the walk reports to its sink, with the directory it was found in
/// ([`DirContext`]).
#[derive(Debug)]
pub enum WalkEvent {
    Cache(Candidate),
    /// A directory or entry that could not be read; the walk goes on.
    Error {
        path: PathBuf,
        error: io::Error,
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
    /// Report directories named in [`DEBRIS_DIRS`] instead of walking into them.
    pub report_debris: bool,
    /// Also report `.py` sources (for `compile`).
    pub report_sources: bool,
    /// Walk virtual environments and [`ENV_DIRS`] found beneath a PATH too.
    pub include_envs: bool,
    /// How directories are listed.
    pub engine: Engine,
    /// Set (by SIGINT or SIGTERM) to end the walk: every thread stops at its next entry.
    pub interrupt: Arc<AtomicBool>,
}

/// How the walk lists directories. The result is the same; the cost is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Linux `getdents64` into one reused buffer per thread (rustix `RawDir`).
    #[cfg(all(target_os = "linux", feature = "getdents"))]
    Getdents,
    /// POSIX `readdir` on the walker's open directory (rustix `Dir`): every Unix.
    Portable,
}

impl Engine {
    /// Every engine this build has, the default first.
    pub const ALL: &'static [Engine] = &[
        #[cfg(all(target_os = "linux", feature = "getdents"))]
        Engine::Getdents,
        Engine::Portable,
    ];

    /// The name `PYCGUARD_WALK_ENGINE` gives it.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(all(target_os = "linux", feature = "getdents"))]
            Engine::Getdents => "getdents",
            Engine::Portable => "portable",
        }
    }

    /// The engine a setting names (`portable`, `getdents`); unset or empty: the default.
    pub fn from_setting(value: Option<&OsStr>) -> Result<Engine, UnknownEngine> {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(Engine::default());
        };
        Engine::ALL
            .iter()
            .copied()
            .find(|engine| value == engine.name())
            .ok_or_else(|| UnknownEngine {
                value: value.to_string_lossy().into_owned(),
            })
    }
}

impl Default for Engine {
    /// `getdents` where it is built in (Linux), else `portable`.
    fn default() -> Engine {
        Engine::ALL[0]
    }
}

/// A walk engine that this build does not have.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown walk engine {value:?} in PYCGUARD_WALK_ENGINE (this build has: {})",
    Engine::ALL.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
)]
pub struct UnknownEngine {
    pub value: String,
}

/// The directory a walker thread is reading, open, lent to the sink with every event found
/// in it: a source or cache in it (or, below a directory other than the walk's start, in
/// its parent) is stat-ed by one or two names instead of by every component of a deep path
/// — the largest kernel cost of a scan. Events found outside a listing (a file given as
/// PATH, directories decided at the end of the walk) come with [`DirContext::NONE`], and
/// every stat then takes the whole path.
#[derive(Clone, Copy, Debug)]
pub struct DirContext<'a> {
    open: Option<OpenDir<'a>>,
}

#[derive(Clone, Copy, Debug)]
struct OpenDir<'a> {
    path: &'a Path,
    fd: BorrowedFd<'a>,
    /// False for the walk's start (maybe a symlink): its `..` is not its path's parent.
    parent_is_dotdot: bool,
}

impl DirContext<'_> {
    /// No open directory: every path is stat-ed whole.
    pub const NONE: DirContext<'static> = DirContext { open: None };

    /// `stat` (`follow`) or `lstat` of `path`: relative to the open directory when `path`
    /// lies in it or in its parent, else by the whole path.
    pub fn stat(&self, path: &Path, follow: bool) -> io::Result<FileStat> {
        match self.stat_near(path, follow) {
            Some(result) => result,
            None if follow => std::fs::metadata(path).map(|m| FileStat::from(&m)),
            None => std::fs::symlink_metadata(path).map(|m| FileStat::from(&m)),
        }
    }

    /// As [`DirContext::stat`] when `path` lies in or beside the open directory; `None`
    /// for any other path, and always for [`DirContext::NONE`].
    pub fn stat_near(&self, path: &Path, follow: bool) -> Option<io::Result<FileStat>> {
        let open = self.open.as_ref()?;
        let bytes = path.as_os_str().as_bytes();
        let slash = bytes.iter().rposition(|&b| b == b'/')?;
        let (dir, name) = (&bytes[..slash], &bytes[slash + 1..]);
        if name.is_empty() || name == b"." || name == b".." {
            return None;
        }
        let here = open.path.as_os_str().as_bytes();
        // "../NAME" is built on the stack: this runs once per source.
        let mut up = [0u8; 3 + 255];
        let relative: &[u8] = if dir == here {
            name
        } else if open.parent_is_dotdot
            && name.len() <= 255
            && here.len() > dir.len() + 1
            && here.starts_with(dir)
            && here[dir.len()] == b'/'
            && !here[dir.len() + 1..].contains(&b'/')
        {
            up[..3].copy_from_slice(b"../");
            up[3..3 + name.len()].copy_from_slice(name);
            &up[..3 + name.len()]
        } else {
            return None;
        };
        let flags = if follow {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        };
        Some(
            rfs::statat(open.fd, OsStr::from_bytes(relative), flags)
                .map(|st| FileStat::from(&st))
                .map_err(io::Error::from),
        )
    }
}

impl WalkOptions {
    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }
}

/// A PATH argument to walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// As the user gave it; reported paths start with it.
    pub path: PathBuf,
    /// The absolute forms under which an interpreter may have named its sources: the
    /// lexically absolute path (first) and, when different, the symlink-resolved one. Each
    /// has its own mirror under a pycache prefix.
    pub absolute_forms: Vec<PathBuf>,
}

/// Walk one root (a directory or a single file) and, when a prefix is set, its mirrors
/// under the prefix. Events arrive on the walker's threads.
#[cfg(test)]
pub fn walk_root<F>(root: &Root, options: &WalkOptions, sink: &F) -> WalkSummary
where
    F: Fn(WalkEvent, DirContext<'_>) + Sync,
{
    walk_root_per_thread(root, options, &|| sink)
}

/// As [`walk_root`], with one sink per walker thread: `make_sink` is called once on each
/// thread, and the sink it returns receives that thread's events and is dropped when the
/// thread's share of the walk ends. A sink that gathers results can keep them unshared
/// while the walk runs and merge them once, in its `Drop`.
pub fn walk_root_per_thread<M, S>(root: &Root, options: &WalkOptions, make_sink: &M) -> WalkSummary
where
    M: Fn() -> S + Sync,
    S: FnMut(WalkEvent, DirContext<'_>) + Send,
{
    let root_abs = match root.absolute_forms.first() {
        Some(abs) => abs.clone(),
        None => std::env::current_dir()
            .map(|cwd| crate::layout::lexically_absolute(&cwd, &root.path))
            .unwrap_or_else(|_| root.path.clone()),
    };
    let state = WalkState::default();
    let walk = Walk {
        root: &root.path,
        root_abs: &root_abs,
        options,
        state: &state,
    };
    walk.run(&root.path, Mode::Tree, make_sink);
    if let Some(prefix) = &options.pycache_prefix {
        if std::fs::metadata(&root.path).is_ok_and(|m| m.is_dir()) {
            for absolute in &root.absolute_forms {
                let mirror = layout::prefix_mirror_dir(prefix, absolute);
                if mirror.is_dir() {
                    walk.run(&mirror, Mode::Mirror { mirror: &mirror }, make_sink);
                }
            }
        }
    }
    state.into_summary()
}

/// One PATH's walks (its tree, then its mirrors under a prefix) and what they share.
struct Walk<'a> {
    /// The PATH as the user gave it.
    root: &'a Path,
    /// Its lexically absolute form.
    root_abs: &'a Path,
    options: &'a WalkOptions,
    state: &'a WalkState,
}

/// What the threads of one PATH's walks share besides their backlog.
#[derive(Default)]
struct WalkState {
    skipped: Mutex<Vec<Skipped>>,
    /// Absolute pycache prefixes recognised by their layout so far (usually none or one).
    prefixes: Mutex<Vec<PathBuf>>,
    /// Directories asked whether they hold `pyvenv.cfg` (only for mirrored directories:
    /// the tree's own listings already say).
    venv_dirs: Mutex<HashMap<PathBuf, bool>>,
    /// Directories with tagged caches outside `__pycache__` whose prefix was not recognised
    /// when they were read (their only caches' sources are gone): decided once the walk
    /// has seen every directory, so the verdict never depends on the order of the walk.
    undecided: Mutex<Vec<Undecided>>,
}

impl WalkState {
    fn skip(&self, path: PathBuf, venv: bool) {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Skipped { path, venv });
    }

    fn into_summary(self) -> WalkSummary {
        let mut summary = WalkSummary::default();
        summary.merge(WalkSummary {
            skipped: self.skipped.into_inner().unwrap_or_else(|e| e.into_inner()),
            found_prefixes: self
                .prefixes
                .into_inner()
                .unwrap_or_else(|e| e.into_inner()),
        });
        summary
    }

    /// The absolute source directory that the directory `dir_abs` (absolute, holding
    /// tagged caches named for `stems` outside any `__pycache__`) mirrors under a pycache
    /// prefix, if it is one.
    ///
    /// The rule: `dir_abs` is `P/s1/…/sn` where `P` is the prefix and `/s1/…/sn` the
    /// directory the interpreter's sources were in (importlib joins the prefix with the
    /// source directory minus its root). `P` is the prefix in effect (`configured`), or
    /// one already recognised in this walk, or else the shortest ancestor for which
    /// `/s1/…/sn/STEM.py` exists for one of (the first two of) `stems` — at most one
    /// `stat` per ancestor, and only for a directory holding tagged caches outside
    /// `__pycache__`, which nothing but a prefix tree (or a misplaced cache) has. Once
    /// recognised, every other directory under `P` costs a comparison of paths.
    fn mirrored_dir(
        &self,
        dir_abs: &Path,
        stems: &[&OsStr],
        configured: Option<&Path>,
    ) -> Option<PathBuf> {
        if let Some(source) = self.known_source(dir_abs, configured) {
            return Some(source);
        }
        let parts: Vec<&OsStr> = dir_abs
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part),
                _ => None,
            })
            .collect();
        for split in 1..parts.len() {
            let mut source = PathBuf::from("/");
            source.extend(&parts[split..]);
            let holds_source = stems.iter().take(2).any(|stem| {
                let mut name = stem.to_os_string();
                name.push(".py");
                std::fs::metadata(source.join(name)).is_ok_and(|m| m.is_file())
            });
            if holds_source {
                let mut prefix = PathBuf::from("/");
                prefix.extend(&parts[..split]);
                self.prefixes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(prefix);
                return Some(source);
            }
        }
        None
    }

    /// The source directory `dir_abs` mirrors under the prefix in effect or one already
    /// recognised, without looking at the file system.
    fn known_source(&self, dir_abs: &Path, configured: Option<&Path>) -> Option<PathBuf> {
        let below = |prefix: &Path| -> Option<PathBuf> {
            let rest = dir_abs.strip_prefix(prefix).ok()?;
            (!rest.as_os_str().is_empty()).then(|| Path::new("/").join(rest))
        };
        if let Some(source) = configured.and_then(below) {
            return Some(source);
        }
        let known = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
        known.iter().find_map(|p| below(p))
    }

    /// The nearest directory from `dir` up to (not including) `stop` that holds
    /// `pyvenv.cfg`: a mirrored directory belongs to a virtual environment when the
    /// source directory it mirrors does. Answers are remembered per directory.
    fn venv_holding(&self, dir: &Path, stop: &Path) -> Option<PathBuf> {
        let mut current = Some(dir);
        while let Some(d) = current {
            if d == stop || !d.starts_with(stop) || d.as_os_str().is_empty() {
                return None;
            }
            let known = self
                .venv_dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(d)
                .copied();
            let holds = known.unwrap_or_else(|| {
                let holds =
                    std::fs::symlink_metadata(d.join(VENV_MARKER)).is_ok_and(|m| !m.is_dir());
                self.venv_dirs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(d.to_path_buf(), holds);
                holds
            });
            if holds {
                return Some(d.to_path_buf());
            }
            current = d.parent();
        }
        None
    }
}

impl Walk<'_> {
    /// An absolute source directory as reached from the PATH when it lies beneath it
    /// (`./pkg` rather than `/home/u/app/pkg`), else as it is.
    fn as_reached(&self, absolute: &Path) -> PathBuf {
        match absolute.strip_prefix(self.root_abs) {
            Ok(rest) if rest.as_os_str().is_empty() => self.root.to_path_buf(),
            Ok(rest) => self.root.join(rest),
            Err(_) => absolute.to_path_buf(),
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

/// One directory waiting to be read.
struct DirJob {
    path: PathBuf,
    /// The walk's starting directory: a symlink there is followed (as the user named it).
    is_start: bool,
}

/// The directories still to read, shared by the walker threads (a stack: depth first,
/// so the backlog stays small).
struct Backlog {
    jobs: Vec<DirJob>,
    /// Threads reading a directory now (they may add more).
    busy: usize,
    /// Threads waiting for work (waking nobody would still cost a system call).
    idle: usize,
    /// Set when the walk is over, or when a thread panicked (the others stop too).
    done: bool,
}

/// Shared state of one walk.
struct Shared<'a> {
    backlog: Mutex<Backlog>,
    wakeup: Condvar,
    start: &'a Path,
    root: &'a Path,
    options: &'a WalkOptions,
    walk: &'a Walk<'a>,
    mode: Mode<'a>,
    /// Device and inode of the pycache prefix when it is to be skipped (tree mode): a
    /// directory is the prefix when it is the same inode, found with one `lstat`.
    skip_dir: Option<(u64, u64)>,
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hand back the directories found and take the next one; `None` when the walk is over.
    fn next_job(&self, found: &mut Vec<DirJob>, finished_one: bool) -> Option<DirJob> {
        let mut backlog = self.lock();
        if finished_one {
            backlog.busy -= 1;
        }
        if !found.is_empty() {
            backlog.jobs.append(found);
            if backlog.idle > 0 {
                self.wakeup.notify_all();
            }
        }
        loop {
            if self.options.interrupted() {
                // SIGINT or SIGTERM: stop every walker thread at its next directory.
                backlog.done = true;
                self.wakeup.notify_all();
            }
            if backlog.done {
                return None;
            }
            if let Some(job) = backlog.jobs.pop() {
                backlog.busy += 1;
                return Some(job);
            }
            if backlog.busy == 0 {
                backlog.done = true;
                if backlog.idle > 0 {
                    self.wakeup.notify_all();
                }
                return None;
            }
            backlog.idle += 1;
            backlog = self.wakeup.wait(backlog).unwrap_or_else(|e| e.into_inner());
            backlog.idle -= 1;
        }
    }
}

impl Shared<'_> {
    /// One walker thread's share of the walk: directories from the backlog, listed by
    /// `lister`, until the walk is over.
    fn work<L: Lister, S: FnMut(WalkEvent, DirContext<'_>)>(&self, mut lister: L, sink: &mut S) {
        // One allocation per thread, not one shared counter: every event clones it, and a
        // reference count bounced between cores costs more than the rest of the event.
        let walk_root: Arc<Path> = Arc::from(self.start);
        let mut found = Vec::new();
        let mut pending = Vec::new();
        let mut job = self.next_job(&mut found, false);
        while let Some(dir) = job {
            read_dir(
                self,
                &mut lister,
                &dir,
                &walk_root,
                &mut found,
                &mut pending,
                sink,
            );
            job = self.next_job(&mut found, true);
        }
    }
}

/// Ends the walk for every thread if this one unwinds (a panicking sink), so the others
/// do not wait forever for the directories it was reading.
struct StopOnPanic<'a, 'b>(&'a Shared<'b>);

impl Drop for StopOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().done = true;
            self.0.wakeup.notify_all();
        }
    }
}

/// How an engine lists a directory the walker has opened: the only part of the walk that
/// differs between engines.
trait Lister {
    /// Call `each` with the name and type (`d_type`: [`FileType::Unknown`] where a file
    /// system does not fill it in) of every entry of `dir`, `.` and `..` included, until
    /// `each` breaks. An error ends the listing; the entries before it were seen.
    fn list<F>(&mut self, dir: &OwnedFd, each: F) -> Result<(), Errno>
    where
        F: FnMut(&CStr, FileType) -> ControlFlow<()>;
}

/// The walk proper: directories are opened without following symlinks and listed by the
/// engine, entry types come from the listing itself (`d_type`; one `lstat` only where a
/// file system does not fill it in), and paths are built only for directories, names that
/// can be sources or caches, and whatever `--exclude` has to see.
impl<'w> Walk<'w> {
    fn run<M, S>(&'w self, start: &Path, mode: Mode<'_>, make_sink: &M)
    where
        M: Fn() -> S + Sync,
        S: FnMut(WalkEvent, DirContext<'_>) + Send,
    {
        let options = self.options;
        // The starting point is followed when it is a symlink, as the user named it.
        let meta = match std::fs::metadata(start) {
            Ok(meta) => meta,
            Err(error) => {
                let path = start.to_path_buf();
                make_sink()(WalkEvent::Error { path, error }, DirContext::NONE);
                return;
            }
        };
        if !meta.is_dir() {
            // stat only: a FIFO or device given as PATH is never opened here.
            let kind = match std::fs::symlink_metadata(start) {
                Ok(m) if m.file_type().is_symlink() => Kind::Symlink,
                _ if meta.is_file() => Kind::File,
                _ => Kind::Special(FileKind::from_mode(meta.mode())),
            };
            let mut sink = make_sink();
            self.walk_file(start, kind, &mut sink);
            return;
        }
        let shared = Shared {
            backlog: Mutex::new(Backlog {
                jobs: vec![DirJob {
                    path: start.to_path_buf(),
                    is_start: true,
                }],
                busy: 0,
                idle: 0,
                done: false,
            }),
            wakeup: Condvar::new(),
            start,
            root: self.root,
            options,
            walk: self,
            mode,
            skip_dir: match mode {
                Mode::Tree => options
                    .pycache_prefix
                    .as_ref()
                    .and_then(|prefix| std::fs::metadata(prefix).ok())
                    .map(|m| (m.dev(), m.ino())),
                Mode::Mirror { .. } => None,
            },
        };
        let threads = options.threads.max(1);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let _stop = StopOnPanic(&shared);
                    let mut sink = make_sink();
                    match options.engine {
                        #[cfg(all(target_os = "linux", feature = "getdents"))]
                        Engine::Getdents => shared.work(getdents::Getdents::new(), &mut sink),
                        Engine::Portable => shared.work(portable::Portable, &mut sink),
                    }
                    drop(sink);
                });
            }
        });
        self.emit_undecided(start, make_sink);
    }

    /// A file given as the PATH. A source brings every cache the directory walk would
    /// pair with it (`__pycache__/NAME.*.pyc`, legacy `NAME.pyc`/`NAME.pyo`, and its
    /// caches under the pycache prefix in effect); a cache is judged where it lies (under a
    /// prefix when it is in one). Actions then work beneath the file's directory (the
    /// directory holding `__pycache__` for a cache inside one), never beneath the file.
    fn walk_file<S: FnMut(WalkEvent, DirContext<'_>)>(
        &self,
        start: &Path,
        kind: Kind,
        sink: &mut S,
    ) {
        let options = self.options;
        let dir = start.parent().unwrap_or(Path::new(""));
        let Some(file_name) = start.file_name() else {
            return;
        };
        if is_source(start, kind) {
            let dir_root: Arc<Path> = Arc::from(dir);
            if options.report_sources {
                let source = WalkEvent::Source {
                    root: dir_root.clone(),
                    path: start.to_path_buf(),
                };
                sink(source, DirContext::NONE);
            }
            let name = file_name.as_bytes();
            let stem = OsStr::from_bytes(&name[..name.len() - 3]);
            let pycache = dir.join(layout::PYCACHE_DIR);
            self.caches_named(&pycache, stem, dir, &dir_root, Mode::Tree, sink);
            for suffix in [".pyc", ".pyo"] {
                let mut legacy = stem.to_os_string();
                legacy.push(suffix);
                let path = dir.join(legacy);
                if let Some(kind) = entry_kind(&path) {
                    if let Some(event) = file_event(path, kind, dir, &dir_root, options, Mode::Tree)
                    {
                        sink(event, DirContext::NONE);
                    }
                }
            }
            if let Some(prefix) = &options.pycache_prefix {
                let mut dir_forms: Vec<PathBuf> = Vec::new();
                let lexical = self.root_abs.parent().unwrap_or(Path::new("/"));
                dir_forms.push(lexical.to_path_buf());
                if let Ok(real) = std::fs::canonicalize(lexical) {
                    if real != lexical {
                        dir_forms.push(real);
                    }
                }
                for abs_dir in dir_forms {
                    let mirror = layout::prefix_mirror_dir(prefix, &abs_dir);
                    let mirror_root: Arc<Path> = Arc::from(mirror.as_path());
                    let mode = Mode::Mirror { mirror: &mirror };
                    self.caches_named(&mirror, stem, dir, &mirror_root, mode, sink);
                }
            }
            return;
        }
        let in_pycache = dir.file_name().is_some_and(layout::is_pycache_dir);
        let actions_root = if in_pycache {
            dir.parent().unwrap_or(Path::new(""))
        } else {
            dir
        };
        let walk_root: Arc<Path> = Arc::from(actions_root);
        if !in_pycache {
            // Under a prefix (the one in effect, or one recognised by its layout): a mirror.
            let dir_abs = self.root_abs.parent().unwrap_or(Path::new("/"));
            let configured = options.pycache_prefix.as_deref();
            let under_prefix = configured.is_some_and(|p| dir_abs.starts_with(p));
            let out_of_place = matches!(
                layout::classify(file_name, false),
                Some(CacheName::TaggedOutOfPlace { .. })
            );
            if under_prefix || out_of_place {
                let stem = match layout::classify(file_name, true) {
                    Some(CacheName::Tagged { stem, .. }) => Some(stem),
                    _ => None,
                };
                let stems: Vec<&OsStr> = stem.as_deref().into_iter().collect();
                if let Some(source_abs) = self.state.mirrored_dir(dir_abs, &stems, configured) {
                    let source_dir = self.as_reached(&source_abs);
                    let mode = Mode::Mirror { mirror: dir };
                    let path = start.to_path_buf();
                    if let Some(event) =
                        file_event(path, kind, &source_dir, &walk_root, options, mode)
                    {
                        sink(event, DirContext::NONE);
                    }
                    return;
                }
            }
        }
        if let Some(event) = file_event(
            start.to_path_buf(),
            kind,
            self.root,
            &walk_root,
            options,
            Mode::Tree,
        ) {
            sink(event, DirContext::NONE);
        }
    }

    /// The tagged caches for `stem` in `dir` (a `__pycache__` or a mirror directory), as
    /// found by a walk of it with `source_root` as the sources' directory.
    fn caches_named<S: FnMut(WalkEvent, DirContext<'_>)>(
        &self,
        dir: &Path,
        stem: &OsStr,
        source_root: &Path,
        walk_root: &Arc<Path>,
        mode: Mode<'_>,
        sink: &mut S,
    ) {
        let entries = match std::fs::read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            Ok(entries) => entries,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return
            }
            Err(error) => {
                let path = dir.to_path_buf();
                return sink(WalkEvent::Error { path, error }, DirContext::NONE);
            }
        };
        let mut names: Vec<OsString> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|name| {
                matches!(layout::classify(name, true), Some(CacheName::Tagged { stem: s, .. }) if s == stem)
            })
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(name);
            let Some(kind) = entry_kind(&path) else {
                continue;
            };
            if let Some(event) = file_event(path, kind, source_root, walk_root, self.options, mode)
            {
                sink(event, DirContext::NONE);
            }
        }
    }
}

/// What a named entry is, not following a symlink; `None` when it is absent.
fn entry_kind(path: &Path) -> Option<Kind> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let t = meta.file_type();
    Some(if t.is_symlink() {
        Kind::Symlink
    } else if t.is_file() {
        Kind::File
    } else if t.is_dir() {
        Kind::Dir
    } else {
        Kind::Special(FileKind::from_mode(meta.mode()))
    })
}

/// What a directory entry is, from `d_type` (or `lstat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    /// A FIFO, socket or device.
    Special(FileKind),
    /// `d_type` not filled in.
    Unknown,
}

impl Kind {
    fn of(ft: FileType) -> Kind {
        match ft {
            FileType::Directory => Kind::Dir,
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            FileType::Unknown => Kind::Unknown,
            other => Kind::Special(FileKind::from_file_type(other)),
        }
    }
}

/// An entry of the directory being read whose event waits for the end of the listing
/// (until then it is not known whether the directory is a virtualenv, or a mirror).
enum Pending {
    File(PathBuf, Kind),
    /// A directory named like a cache (a hazard where the importer opens one).
    Dir(PathBuf),
    Debris(PathBuf),
}

/// Read one directory: open it, have the engine list it, classify its entries, and
/// report them (with the open directory lent to the sink) or hold them back until it is
/// known where its caches belong.
fn read_dir<L: Lister, S: FnMut(WalkEvent, DirContext<'_>)>(
    shared: &Shared<'_>,
    lister: &mut L,
    dir: &DirJob,
    walk_root: &Arc<Path>,
    found: &mut Vec<DirJob>,
    pending: &mut Vec<Pending>,
    sink: &mut S,
) {
    const NEXT: ControlFlow<()> = ControlFlow::Continue(());
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !dir.is_start {
        // Found as a directory by its parent; if it became a symlink since, do not follow.
        flags |= OFlags::NOFOLLOW;
    }
    let error = |err: Errno| WalkEvent::Error {
        path: dir.path.clone(),
        error: io::Error::from(err),
    };
    let fd = match rfs::open(&dir.path, flags, OpenMode::empty()) {
        Ok(fd) => fd,
        Err(err) => return sink(error(err), DirContext::NONE),
    };
    let here = DirContext {
        open: Some(OpenDir {
            path: &dir.path,
            fd: fd.as_fd(),
            parent_is_dotdot: !dir.is_start,
        }),
    };
    let options = shared.options;
    let found_before = found.len();
    pending.clear();
    let mut holds_venv_marker = false;
    let mut interrupted = false;
    // A `__pycache__` of the tree is neither a virtualenv nor a mirror: its entries need no
    // decision, so their events are not held back (most caches are in one).
    let immediate = matches!(shared.mode, Mode::Tree)
        && dir.path.file_name().is_some_and(layout::is_pycache_dir);
    let listed = lister.list(&fd, |file_name, file_type| {
        if options.interrupted() {
            interrupted = true;
            return ControlFlow::Break(());
        }
        let name = file_name.to_bytes();
        if name == b"." || name == b".." {
            return NEXT;
        }
        let mut kind = Kind::of(file_type);
        if kind == Kind::Unknown {
            // d_type not filled in by this file system: ask.
            kind = match rfs::statat(&fd, file_name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => match Kind::of(FileType::from_raw_mode(st.st_mode as _)) {
                    Kind::Unknown => return NEXT,
                    kind => kind,
                },
                Err(err) => {
                    let path = dir.path.join(OsStr::from_bytes(name));
                    sink(
                        WalkEvent::Error {
                            path,
                            error: err.into(),
                        },
                        here,
                    );
                    return NEXT;
                }
            };
        }
        if kind != Kind::Dir && name == VENV_MARKER.as_bytes() {
            holds_venv_marker = true;
            return NEXT;
        }
        let name = OsStr::from_bytes(name);
        if kind == Kind::Dir && VCS_DIRS.iter().any(|v| name == *v) {
            return NEXT;
        }
        let interesting = kind == Kind::Dir
            || (may_be_source_or_cache(name)
                && (options.report_sources || !name.as_bytes().ends_with(b".py")));
        if !interesting && options.excludes.is_empty() {
            return NEXT;
        }
        let path = dir.path.join(name);
        if !options.excludes.is_empty() {
            let rel = path.strip_prefix(shared.start).unwrap_or(&path);
            if options.excludes.is_match(name)
                || options.excludes.is_match(rel)
                || options.excludes.is_match(&path)
            {
                return NEXT;
            }
            if !interesting {
                return NEXT;
            }
        }
        if kind == Kind::Dir {
            if let Some((dev, ino)) = shared.skip_dir {
                let is_prefix = rfs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileStat::from(&st))
                    .is_ok_and(|st| st.dev == dev && st.ino == ino);
                if is_prefix {
                    return NEXT;
                }
            }
            if !options.include_envs && ENV_DIRS.iter().any(|d| name == *d) {
                // A mirror's copy of one is reported by the tree walk that met the original.
                if matches!(shared.mode, Mode::Tree) {
                    shared.walk.state.skip(path, false);
                }
                return NEXT;
            }
            if may_be_source_or_cache(name) {
                // A directory where the importer opens a cache: a hazard to report (and
                // still a directory to walk), once the directory's listing is read.
                pending.push(Pending::Dir(path.clone()));
            }
            if options.report_debris && DEBRIS_DIRS.iter().any(|d| name == *d) {
                pending.push(Pending::Debris(path));
                return NEXT;
            }
            found.push(DirJob {
                path,
                is_start: false,
            });
            return NEXT;
        }
        if immediate {
            if let Some(event) = file_event(path, kind, shared.root, walk_root, options, Mode::Tree)
            {
                sink(event, here);
            }
            return NEXT;
        }
        pending.push(Pending::File(path, kind));
        NEXT
    });
    if interrupted {
        return;
    }
    if let Err(err) = listed {
        sink(error(err), here);
    }
    if holds_venv_marker && !dir.is_start && !immediate && !options.include_envs {
        // A virtual environment beneath the PATH: none of it is the project's.
        found.truncate(found_before);
        pending.clear();
        shared.walk.state.skip(dir.path.clone(), true);
        return;
    }
    if pending.is_empty() {
        return;
    }
    // Where this directory's caches belong: beside their sources (the tree), or, for a
    // directory of a pycache prefix tree, in the source directory it mirrors.
    let mirrored: Option<(PathBuf, Mode<'_>)> = match shared.mode {
        Mode::Mirror { mirror } => Some((shared.root.to_path_buf(), Mode::Mirror { mirror })),
        Mode::Tree => match detect_mirror(shared, dir, pending) {
            Detected::Mirror(source_dir) => Some((
                source_dir,
                Mode::Mirror {
                    mirror: dir.path.as_path(),
                },
            )),
            Detected::Undecided(dir_abs) => {
                // Its prefix may yet be recognised elsewhere in this walk: decided at the end.
                shared
                    .walk
                    .state
                    .undecided
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Undecided {
                        dir: dir.path.clone(),
                        dir_abs,
                        pending: std::mem::take(pending),
                    });
                return;
            }
            Detected::Beside => None,
        },
    };
    let mut sink_here = |event| sink(event, here);
    let walk = shared.walk;
    walk.emit_dir(
        shared.mode,
        &dir.path,
        pending,
        mirrored,
        walk_root,
        &mut sink_here,
    );
}

impl Walk<'_> {
    /// The events of one directory's entries, once it is known where its caches belong
    /// (`mirrored`: the source directory and mirror mode, for a directory of a prefix
    /// tree). A mirrored directory whose sources lie in a virtual environment is skipped
    /// as that environment is.
    fn emit_dir<S: FnMut(WalkEvent)>(
        &self,
        walk_mode: Mode<'_>,
        dir: &Path,
        pending: &mut Vec<Pending>,
        mirrored: Option<(PathBuf, Mode<'_>)>,
        walk_root: &Arc<Path>,
        sink: &mut S,
    ) {
        let options = self.options;
        if let (Some((source_root, Mode::Mirror { mirror })), false) =
            (&mirrored, options.include_envs)
        {
            let source_dir = match dir.strip_prefix(mirror) {
                Ok(rel) if !rel.as_os_str().is_empty() => source_root.join(rel),
                _ => source_root.clone(),
            };
            let (from, stop) = match walk_mode {
                Mode::Mirror { .. } => (source_dir, self.root.to_path_buf()),
                Mode::Tree => {
                    let absolute = match source_dir.strip_prefix(self.root) {
                        Ok(rel) => self.root_abs.join(rel),
                        Err(_) => source_dir,
                    };
                    let stop = if absolute.starts_with(self.root_abs) {
                        self.root_abs.to_path_buf()
                    } else {
                        PathBuf::from("/")
                    };
                    (absolute, stop)
                }
            };
            if let Some(venv) = self.state.venv_holding(&from, &stop) {
                let shown = match walk_mode {
                    Mode::Mirror { .. } => venv,
                    Mode::Tree => self.as_reached(&venv),
                };
                self.state.skip(shown, true);
                pending.clear();
                return;
            }
        }
        let (root, mode) = match &mirrored {
            Some((source_root, mode)) => (source_root.as_path(), *mode),
            None => (self.root, Mode::Tree),
        };
        for entry in pending.drain(..) {
            match entry {
                Pending::File(path, kind) => {
                    if let Some(event) = file_event(path, kind, root, walk_root, options, mode) {
                        sink(event);
                    }
                }
                Pending::Dir(path) => {
                    if let Some(candidate) = classify_file(path, root, walk_root, mode, Kind::Dir) {
                        if matches!(candidate.name, CacheName::Tagged { .. }) {
                            sink(WalkEvent::Cache(candidate));
                        }
                    }
                }
                Pending::Debris(path) => sink(WalkEvent::Debris {
                    root: walk_root.clone(),
                    path,
                }),
            }
        }
    }

    /// The directories left undecided by [`read_dir`], now that every prefix the walk
    /// could recognise is known; on the calling thread.
    fn emit_undecided<M, S>(&self, start: &Path, make_sink: &M)
    where
        M: Fn() -> S,
        S: FnMut(WalkEvent, DirContext<'_>),
    {
        let undecided = std::mem::take(
            &mut *self
                .state
                .undecided
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if undecided.is_empty() {
            return;
        }
        let mut sink = make_sink();
        let mut sink = |event| sink(event, DirContext::NONE);
        let walk_root: Arc<Path> = Arc::from(start);
        let configured = self.options.pycache_prefix.as_deref();
        for mut dir in undecided {
            let mirrored = self
                .state
                .known_source(&dir.dir_abs, configured)
                .map(|source| (self.as_reached(&source), Mode::Mirror { mirror: &dir.dir }));
            self.emit_dir(
                Mode::Tree,
                &dir.dir,
                &mut dir.pending,
                mirrored,
                &walk_root,
                &mut sink,
            );
        }
    }
}

/// What [`detect_mirror`] found about a directory.
enum Detected {
    /// No tagged caches outside `__pycache__`: an ordinary directory of the tree.
    Beside,
    /// Part of a pycache prefix tree, mirroring this source directory.
    Mirror(PathBuf),
    /// Tagged caches outside `__pycache__`, but no prefix recognised (yet); its absolute path.
    Undecided(PathBuf),
}

/// A directory whose decision waits for the end of the walk.
struct Undecided {
    dir: PathBuf,
    dir_abs: PathBuf,
    pending: Vec<Pending>,
}

/// For a directory of the tree: does it hold tagged caches outside `__pycache__`, and is
/// it then part of a pycache prefix tree (see [`WalkState::mirrored_dir`])? The source
/// directory is given as reached from the PATH when it lies beneath it.
fn detect_mirror(shared: &Shared<'_>, dir: &DirJob, pending: &[Pending]) -> Detected {
    if dir.path.file_name().is_some_and(layout::is_pycache_dir) {
        return Detected::Beside;
    }
    let mut stems: Vec<OsString> = Vec::new();
    for entry in pending {
        let Pending::File(path, Kind::File) = entry else {
            continue;
        };
        let Some(name) = path.file_name() else {
            continue;
        };
        if !name.as_bytes().ends_with(b".pyc") {
            continue;
        }
        if let Some(CacheName::TaggedOutOfPlace { stem, .. }) = layout::classify(name, false) {
            if !stems.contains(&stem) {
                stems.push(stem);
            }
            if stems.len() == 2 {
                break;
            }
        }
    }
    if stems.is_empty() {
        return Detected::Beside;
    }
    let walk = shared.walk;
    let dir_abs = match dir.path.strip_prefix(shared.start) {
        Ok(rel) if !rel.as_os_str().is_empty() => walk.root_abs.join(rel),
        _ => walk.root_abs.to_path_buf(),
    };
    let stems: Vec<&OsStr> = stems.iter().map(OsString::as_os_str).collect();
    match walk
        .state
        .mirrored_dir(&dir_abs, &stems, walk.options.pycache_prefix.as_deref())
    {
        Some(source_abs) => Detected::Mirror(walk.as_reached(&source_abs)),
        None => Detected::Undecided(dir_abs),
    }
}

/// Every source (`.py`) and every cache name (`.pyc`, `.pyo`, `.pyc.NNN`) contains ".py"
/// (a source only matters when sources are reported: no `.py` name is a cache name).
fn may_be_source_or_cache(name: &OsStr) -> bool {
    name.as_bytes().windows(3).any(|w| w == b".py")
}

/// The event for a file (or a symlink) found by the walk, if it is a source or a cache.
fn file_event(
    path: PathBuf,
    kind: Kind,
    root: &Path,
    walk_root: &Arc<Path>,
    options: &WalkOptions,
    mode: Mode<'_>,
) -> Option<WalkEvent> {
    if options.report_sources && matches!(mode, Mode::Tree) && is_source(&path, kind) {
        return Some(WalkEvent::Source {
            root: walk_root.clone(),
            path,
        });
    }
    // Symlinks and special files named like caches are reported too: the importer opens
    // them (through the link), so they are judged by what it would find.
    classify_file(path, root, walk_root, mode, kind).map(WalkEvent::Cache)
}

/// A `NAME.py` file (or a symlink to a file) outside `__pycache__`.
fn is_source(path: &Path, kind: Kind) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    if !name.as_bytes().ends_with(b".py") || name.len() < 4 {
        return false;
    }
    match kind {
        Kind::File => true,
        Kind::Symlink => path.is_file(),
        _ => false,
    }
}

fn classify_file(
    path: PathBuf,
    root: &Path,
    walk_root: &Arc<Path>,
    mode: Mode<'_>,
    kind: Kind,
) -> Option<Candidate> {
    let found_as = FoundAs::of(kind)?;
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
                found_as,
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
                path,
                root: walk_root.clone(),
                name,
                location: Location::Prefix,
                source,
                found_as,
            })
        }
    }
}

/// The candidate for one named file (for `inspect`): placed by its directory, or under
/// `prefix` (or a prefix recognised by its layout, see [`WalkState::mirrored_dir`]) when it
/// lies there. `None` when the name is not a cache name at all.
pub fn candidate_for_file(
    path: &Path,
    absolute: &Path,
    prefix: Option<&Path>,
) -> Option<Candidate> {
    let file_name = path.file_name()?;
    let parent = path.parent().unwrap_or(Path::new(""));
    let root: Arc<Path> = Arc::from(parent);
    let found_as = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => FoundAs::Symlink,
        Ok(m) if !m.is_file() => FoundAs::Special(FileKind::from_mode(
            std::os::unix::fs::MetadataExt::mode(&m),
        )),
        // Vanished or unreadable: reading it says why.
        _ => FoundAs::File,
    };
    if parent.file_name().is_some_and(layout::is_pycache_dir) {
        let name = layout::classify(file_name, true)?;
        let source = layout::source_path(parent, &name);
        return Some(Candidate {
            path: path.to_path_buf(),
            root: root.clone(),
            name,
            location: Location::PyCache,
            source,
            found_as,
        });
    }
    let mirrored = prefix
        .and_then(|p| absolute.parent()?.strip_prefix(p).ok())
        .map(|rel| Path::new("/").join(rel))
        .or_else(|| match layout::classify(file_name, false) {
            Some(CacheName::TaggedOutOfPlace { stem, .. }) => {
                WalkState::default().mirrored_dir(absolute.parent()?, &[stem.as_os_str()], None)
            }
            _ => None,
        });
    if let Some(source_dir) = mirrored {
        let name = layout::classify(file_name, true)?;
        let source = match &name {
            CacheName::Tagged { stem, .. } => {
                let mut file = stem.clone();
                file.push(".py");
                Some(source_dir.join(file))
            }
            _ => None,
        };
        return Some(Candidate {
            path: path.to_path_buf(),
            root: root.clone(),
            name,
            location: Location::Prefix,
            source,
            found_as,
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
        found_as,
    })
}
