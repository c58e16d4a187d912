//! `pycguard compile`: a `python -m compileall` that compiles only what pycguard's own
//! judgement says is missing or not fresh (`--force`: everything), in parallel through the
//! worker pool, for every interpreter the tree already has caches for (or `--python`).
//! An up-to-date tree costs what `check` costs: no interpreter is started (once each
//! interpreter's probe is remembered), and it is planned on the walk's threads.
//!
//! A pycache prefix in effect is exclusive for the interpreters that read one (3.8+): their
//! caches are judged and written under the prefix (`PREFIX/<abs dir>/NAME.TAG.pyc`, the
//! directories made as importlib makes them), and the `__pycache__` caches beside the
//! sources, which they never read, do not count as up to date for them. Older
//! interpreters ignore the prefix and get `__pycache__` caches as usual.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::actions::recompile::{self, Mode, Task, WriteError, WriteOptions};
use crate::actions::safe_fs::SafeFsError;
use crate::interpreters::{Interpreter, Interpreters, Origin, SearchPath};
use crate::layout;
use crate::report::ScanError;
use crate::scan::ScanConfig;
use crate::scan::{self, ScanWith, Scanned};
use crate::verdict::State;
use crate::walk::{self, Root};

/// The state of each judged cache, keyed by its path's bytes (hashing a `Path` parses its
/// components, which cost more than the rest of planning).
pub type CacheStates = HashMap<OsString, (State, Option<Mode>), foldhash::fast::RandomState>;

/// A source found by the walk, with the root it was found under.
pub type FoundSource = (Arc<Path>, PathBuf);

/// What the walk found: sources, the verdict of every cache already there (judged on the
/// walker's threads, as `check` does), the cache tags present, and unreadable entries.
#[derive(Debug, Default)]
pub struct FoundTree {
    pub sources: Vec<FoundSource>,
    /// One map per walker thread, never merged (merging cost more than a second lookup).
    pub caches: Vec<CacheStates>,
    pub tags: BTreeSet<String>,
    pub errors: Vec<ScanError>,
    /// What the walk skipped and recognised.
    pub walk: walk::WalkSummary,
}

/// What to compile.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Optimisation levels (0, 1, 2).
    pub levels: Vec<u8>,
    pub mode: Mode,
    /// Recompile fresh caches of another invalidation mode (`--invalidation-mode` given).
    pub convert: bool,
    pub force: bool,
    pub dry_run: bool,
    /// The absolute pycache prefix in effect, if any.
    pub prefix: Option<PathBuf>,
}

/// One source × interpreter × level that needs a cache.
#[derive(Clone, Debug)]
pub struct Planned {
    pub task: Task,
    pub interpreter: usize,
    /// Why: `missing` or the state of the existing cache.
    pub why: String,
}

/// Why a cache was not compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot create the pycache prefix {}: {}", .prefix.display(), crate::read::io_message(.err))]
    CreatePrefix { prefix: PathBuf, err: io::Error },
    #[error("cannot create it: {0}")]
    CreateDir(#[source] SafeFsError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What a compile did.
#[derive(Debug, Default)]
pub struct CompileOutcome {
    pub planned: Vec<Planned>,
    pub up_to_date: usize,
    pub failed: Vec<(PathBuf, CompileError)>,
}

/// One walker thread's share of a [`FoundTree`], merged into the shared one when the
/// thread is done (no lock is taken per file).
struct Collector<'a> {
    /// This thread's finds; its `caches` stay empty (see `states`).
    local: FoundTree,
    states: CacheStates,
    /// The tag of the last cache this thread saw (already in `local.tags`, or a pytest tag).
    last_tag: Option<String>,
    shared: &'a Mutex<FoundTree>,
}

impl Collector<'_> {
    fn found(&mut self, found: Scanned) {
        let tree = &mut self.local;
        match found {
            Scanned::Source { root, path } => tree.sources.push((root, path)),
            Scanned::Judged(entry) => {
                if let layout::CacheName::Tagged { tag, .. } = &entry.name {
                    // Most caches share one or two tags: compare with the last one first.
                    if self.last_tag.as_deref() != Some(tag.as_str()) {
                        if !tag.contains("-pytest-") && !tree.tags.contains(tag.as_str()) {
                            tree.tags.insert(tag.clone());
                        }
                        self.last_tag = Some(tag.clone());
                    }
                }
                self.states.insert(
                    entry.path.into_os_string(),
                    (entry.verdict.state, entry.verdict.invalidation),
                );
            }
            Scanned::Error(error) => tree.errors.push(error),
            Scanned::Unjudged(_) | Scanned::Debris { .. } => {}
        }
    }
}

impl Drop for Collector<'_> {
    fn drop(&mut self) {
        let local = std::mem::take(&mut self.local);
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let states = std::mem::take(&mut self.states);
        if !states.is_empty() {
            shared.caches.push(states);
        }
        if shared.sources.is_empty() {
            shared.sources = local.sources;
        } else {
            shared.sources.extend(local.sources);
        }
        shared.tags.extend(local.tags);
        shared.errors.extend(local.errors);
    }
}

/// Walk the sources and the caches under `config`, judging each cache as it is found.
pub fn find_sources(config: &ScanConfig) -> FoundTree {
    let found = Mutex::new(FoundTree::default());
    let make_sink = || {
        let mut collector = Collector {
            local: FoundTree::default(),
            states: CacheStates::default(),
            last_tag: None,
            shared: &found,
        };
        move |scanned| collector.found(scanned)
    };
    let with = ScanWith {
        sources: true,
        ..ScanWith::CACHES
    };
    let walked = scan::scan(config, with, &make_sink);
    // Unsorted: the order of compile jobs does not matter (listings are sorted instead).
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.errors.sort_by(|a, b| a.path.cmp(&b.path));
    found.walk = walked;
    found
}

/// What a first walk of the tree learns so that an up-to-date tree needs nothing else,
/// in memory that does not grow with the tree: the tags present, and per (tag, level) a
/// multiset fingerprint of the sources that have a fresh cache — compared with the same
/// fingerprint of every source found. A keyed 128-bit sum of the path hashes (the key
/// chosen at random per run, so no file name can be crafted to collide): equal sums and
/// counts mean the two multisets are equal, that is, every source has a fresh cache at
/// exactly the path the plan would look for. Anything else — a missing or stale cache,
/// a path in another form — is found unequal, and the tree is then walked again and
/// planned source by source ([`find_sources`], [`run`]), as before: the survey can only
/// save work, never skip a compile.
#[derive(Debug, Default)]
pub struct Survey {
    sources: Fingerprint,
    fresh: HashMap<(String, u8), Fingerprint>,
    pub tags: BTreeSet<String>,
    pub errors: Vec<ScanError>,
    pub walk: walk::WalkSummary,
}

/// A multiset of paths, as a count and a wrapping sum of their keyed hashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fingerprint {
    count: u64,
    sum: u128,
}

impl Fingerprint {
    fn add(&mut self, keys: &PathKeys, path: &Path) {
        self.count += 1;
        self.sum = self
            .sum
            .wrapping_add(keys.hash(path.as_os_str().as_bytes()));
    }

    fn merge(&mut self, other: Fingerprint) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

/// The run's random keys for path hashes (two independent 64-bit SipHash keys).
struct PathKeys(std::hash::RandomState, std::hash::RandomState);

impl PathKeys {
    fn new() -> PathKeys {
        PathKeys(std::hash::RandomState::new(), std::hash::RandomState::new())
    }

    fn hash(&self, bytes: &[u8]) -> u128 {
        use std::hash::BuildHasher;
        (u128::from(self.0.hash_one(bytes)) << 64) | u128::from(self.1.hash_one(bytes))
    }
}

impl Survey {
    /// When the survey proves the tree up to date for `interpreters` with `options`, the
    /// number of caches that are (what [`run`] would report); `None` when the tree must be
    /// planned source by source.
    pub fn up_to_date(
        &self,
        interpreters: &[Interpreter],
        options: &CompileOptions,
    ) -> Option<usize> {
        if options.force {
            return None;
        }
        let mut caches = 0;
        for i in interpreters {
            let Some(tag) = &i.cache_tag else {
                continue;
            };
            // Caches under a pycache prefix are planned by their absolute paths.
            if options.prefix.is_some() && layout::reads_pycache_prefix(i.version_info) {
                return None;
            }
            for &level in &options.levels {
                if self.fresh.get(&(tag.clone(), level)) != Some(&self.sources) {
                    return None;
                }
                caches += self.sources.count as usize;
            }
        }
        Some(caches)
    }

    fn merge(&mut self, other: Survey) {
        self.sources.merge(other.sources);
        for (k, f) in other.fresh {
            self.fresh.entry(k).or_default().merge(f);
        }
        self.tags.extend(other.tags);
        self.errors.extend(other.errors);
    }
}

/// Walk the sources and the caches under `config` once, judging each cache as it is found,
/// and keep only the [`Survey`].
pub fn survey(config: &ScanConfig, options: &CompileOptions) -> Survey {
    let convert_to = options.convert.then_some(options.mode);
    let keys = PathKeys::new();
    let shared = Mutex::new(Survey::default());
    let make_sink = || {
        let mut mine = SurveySink {
            local: Survey::default(),
            keys: &keys,
            convert_to,
            shared: &shared,
            path: Vec::with_capacity(256),
        };
        move |scanned| mine.found(scanned)
    };
    let with = ScanWith {
        sources: true,
        ..ScanWith::CACHES
    };
    let walked = scan::scan(config, with, &make_sink);
    let mut survey = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    survey.errors.sort_by(|a, b| a.path.cmp(&b.path));
    survey.walk = walked;
    survey
}

/// One walker thread's share of a [`Survey`], merged when the thread is done.
struct SurveySink<'a> {
    local: Survey,
    keys: &'a PathKeys,
    /// `--invalidation-mode` given: a fresh cache of another mode is to be recompiled.
    convert_to: Option<Mode>,
    shared: &'a Mutex<Survey>,
    path: Vec<u8>,
}

impl SurveySink<'_> {
    fn found(&mut self, found: Scanned) {
        match found {
            Scanned::Source { path, .. } => self.local.sources.add(self.keys, &path),
            Scanned::Judged(entry) => {
                let layout::CacheName::Tagged {
                    tag, optimization, ..
                } = &entry.name
                else {
                    return;
                };
                if !tag.contains("-pytest-") && !self.local.tags.contains(tag.as_str()) {
                    self.local.tags.insert(tag.clone());
                }
                let converts = self
                    .convert_to
                    .is_some_and(|mode| entry.verdict.invalidation.is_some_and(|had| had != mode));
                let (State::Fresh, false, Some(source)) =
                    (entry.verdict.state, converts, &entry.source)
                else {
                    return;
                };
                // Counted only at the very path the plan would look the source's cache up.
                if layout::write_cache_path(source, tag, *optimization, &mut self.path)
                    && self.path == entry.path.as_os_str().as_bytes()
                {
                    self.local
                        .fresh
                        .entry((tag.clone(), *optimization))
                        .or_default()
                        .add(self.keys, source);
                }
            }
            Scanned::Error(error) => self.local.errors.push(error),
            Scanned::Unjudged(_) | Scanned::Debris { .. } => {}
        }
    }
}

impl Drop for SurveySink<'_> {
    fn drop(&mut self) {
        let local = std::mem::take(&mut self.local);
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(local);
    }
}

/// The interpreters to compile for, each with why: `--python` given: exactly those; else
/// the interpreters whose caches the tree holds (one per tag); else the one the tree is
/// for ([`interpreter_for_tree`]).
pub fn choose_interpreters(
    found: &Interpreters,
    pythons_given: bool,
    tree_tags: &BTreeSet<String>,
    roots: &[Root],
    search: &SearchPath,
) -> Vec<(Interpreter, String)> {
    if pythons_given {
        return found
            .all()
            .iter()
            .filter(|i| i.origin == Origin::Flag)
            .map(|i| (i.clone(), "--python".to_owned()))
            .collect();
    }
    let mut by_tag: Vec<(Interpreter, String)> = Vec::new();
    for i in found.all() {
        let Some(tag) = i.cache_tag.as_ref().filter(|t| tree_tags.contains(*t)) else {
            continue;
        };
        if !by_tag.iter().any(|(a, _)| a.cache_tag == i.cache_tag) {
            by_tag.push((i.clone(), format!("the tree holds {tag} caches")));
        }
    }
    if by_tag.is_empty() {
        interpreter_for_tree(found, roots, search)
            .into_iter()
            .collect()
    } else {
        by_tag
    }
}

/// The interpreter a tree without caches is for, and why, as a user would expect: the
/// virtualenv inside the tree, else the `python3` that `PATH` runs (through pyenv's shims
/// too), else the first interpreter found.
fn interpreter_for_tree(
    found: &Interpreters,
    roots: &[Root],
    search: &SearchPath,
) -> Option<(Interpreter, String)> {
    let shown = |path: &Path| -> String {
        for root in roots {
            let Some(abs) = root.absolute_forms.first() else {
                continue;
            };
            if let Ok(rest) = path.strip_prefix(abs) {
                let inside = root.path.join(rest);
                let text = inside.to_string_lossy().into_owned();
                return text.strip_prefix("./").unwrap_or(&text).to_owned();
            }
        }
        path.display().to_string()
    };
    if let Some(venv) = found.all().iter().find(|i| i.origin == Origin::Venv) {
        let holder = venv
            .path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&venv.path);
        let is_root = roots
            .iter()
            .any(|r| r.absolute_forms.first().is_some_and(|a| a == holder));
        let why = if is_root {
            "this tree is a virtualenv"
        } else {
            "the virtualenv in this tree"
        };
        return Some((venv.clone(), format!("{}: {why}", shown(&venv.path))));
    }
    let by_executable = |exe: &Path| -> Option<&Interpreter> {
        let resolved = std::fs::canonicalize(exe).ok()?;
        found.all().iter().find(|i| i.resolved == resolved)
    };
    if let Some((exe, how)) = search.python3_on_path() {
        if let Some(interpreter) = by_executable(&exe) {
            return Some((interpreter.clone(), how));
        }
    }
    found.all().first().map(|i| {
        (
            i.clone(),
            "the first Python found: no virtualenv in the tree, no python3 on PATH".to_owned(),
        )
    })
}

/// Where an interpreter's caches go: beside the sources, or under the pycache prefix.
#[derive(Clone)]
enum Target {
    PyCache,
    Prefix { prefix: PathBuf, root: Arc<Path> },
}

/// What `sources` need: the planned compiles and how many caches are already fresh.
fn plan(
    sources: &[FoundSource],
    caches: &[CacheStates],
    interpreters: &[(&Interpreter, Target)],
    options: &CompileOptions,
    cwd: &Path,
) -> (Vec<Planned>, usize) {
    let mut planned = Vec::new();
    let mut up_to_date = 0;
    let mut cache_bytes = Vec::with_capacity(256);
    for (root, source) in sources {
        for (index, (interpreter, target)) in interpreters.iter().enumerate() {
            let Some(tag) = &interpreter.cache_tag else {
                continue;
            };
            for &level in &options.levels {
                // The cache's path, built in place: allocating a PathBuf per source and
                // hashing it component by component cost more than the rest of the plan.
                let task_root = match target {
                    Target::PyCache => {
                        if !layout::write_cache_path(source, tag, level, &mut cache_bytes) {
                            continue;
                        }
                        root
                    }
                    Target::Prefix { prefix, root } => {
                        let absolute = crate::layout::lexically_absolute(cwd, source);
                        let Some(path) = layout::prefix_cache_path(prefix, &absolute, tag, level)
                        else {
                            continue;
                        };
                        cache_bytes.clear();
                        cache_bytes.extend_from_slice(path.as_os_str().as_bytes());
                        root
                    }
                };
                let why: Option<std::borrow::Cow<'static, str>> = if options.force {
                    Some("forced".into())
                } else {
                    let path = OsStr::from_bytes(&cache_bytes);
                    match caches.iter().find_map(|states| states.get(path)) {
                        Some((State::Fresh, Some(had)))
                            if options.convert && *had != options.mode =>
                        {
                            Some(format!("was {}", had.name()).into())
                        }
                        Some((State::Fresh, _)) => None,
                        Some((state, _)) => Some(state.name().into()),
                        None => Some("missing".into()),
                    }
                };
                match why {
                    None => up_to_date += 1,
                    Some(why) => planned.push(Planned {
                        task: Task {
                            source: source.clone(),
                            cache: PathBuf::from(OsStr::from_bytes(&cache_bytes)),
                            root: task_root.clone(),
                            optimize: level,
                            mode: options.mode,
                        },
                        interpreter: index,
                        why: why.into_owned(),
                    }),
                }
            }
        }
    }
    (planned, up_to_date)
}

/// Plan and (unless dry) compile.
pub fn run(
    found: FoundTree,
    interpreters: &[Interpreter],
    options: &CompileOptions,
    write: &WriteOptions,
) -> CompileOutcome {
    let mut outcome = CompileOutcome::default();
    let prefix_root: Option<Arc<Path>> = options.prefix.as_deref().map(Arc::from);
    let targets: Vec<(&Interpreter, Target)> = interpreters
        .iter()
        .map(|i| {
            let target = match (&options.prefix, &prefix_root) {
                (Some(prefix), Some(root)) if layout::reads_pycache_prefix(i.version_info) => {
                    Target::Prefix {
                        prefix: prefix.clone(),
                        root: root.clone(),
                    }
                }
                _ => Target::PyCache,
            };
            (i, target)
        })
        .collect();
    (outcome.planned, outcome.up_to_date) = plan_all(&found, &targets, options, write);
    if options.dry_run {
        outcome
            .planned
            .sort_by(|a, b| a.task.source.as_os_str().cmp(b.task.source.as_os_str()));
        return outcome;
    }
    // The directories of the prefix tree, made before the caches are written into them.
    let made_dirs = match (&options.prefix, &prefix_root) {
        (Some(prefix), Some(root)) => make_prefix_dirs(&mut outcome, prefix, root),
        _ => Vec::new(),
    };
    for (index, interpreter) in interpreters.iter().enumerate() {
        let (planned, tasks): (Vec<&Planned>, Vec<Task>) = outcome
            .planned
            .iter()
            .filter(|p| p.interpreter == index)
            .map(|p| (p, p.task.clone()))
            .unzip();
        let written = recompile::write_all(interpreter, &tasks, write);
        for (p, w) in planned.into_iter().zip(written) {
            if let Err(e) = w {
                outcome.failed.push((p.task.cache.clone(), e.into()));
            }
        }
    }
    if !outcome.failed.is_empty() {
        remove_made_dirs(made_dirs);
    }
    outcome.failed.sort_by(|a, b| a.0.cmp(&b.0));
    outcome
}

/// Plan every source: a lookup per source, split over the walk's thread count.
fn plan_all(
    found: &FoundTree,
    targets: &[(&Interpreter, Target)],
    options: &CompileOptions,
    write: &WriteOptions,
) -> (Vec<Planned>, usize) {
    let chunk = found.sources.len().div_ceil(write.workers.max(1)).max(1024);
    let cwd = write.cwd.as_path();
    let plans: Vec<(Vec<Planned>, usize)> = std::thread::scope(|scope| {
        let planners: Vec<_> = found
            .sources
            .chunks(chunk)
            .map(|sources| {
                let caches = &found.caches;
                scope.spawn(move || plan(sources, caches, targets, options, cwd))
            })
            .collect();
        planners
            .into_iter()
            .map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut all = Vec::new();
    let mut up_to_date = 0;
    for (planned, fresh) in plans {
        all.extend(planned);
        up_to_date += fresh;
    }
    (all, up_to_date)
}

/// Make the prefix-tree directories the planned caches go to (as importlib makes them;
/// as root, each new one gets its parent's owner). A directory that cannot be made is a
/// failure, and the caches meant for it are not tried. Returns the directories made.
fn make_prefix_dirs(
    outcome: &mut CompileOutcome,
    prefix: &Path,
    root: &Arc<Path>,
) -> Vec<(PathBuf, Arc<Path>)> {
    let dirs: BTreeSet<PathBuf> = outcome
        .planned
        .iter()
        .filter(|p| p.task.root == *root)
        .filter_map(|p| p.task.cache.parent().map(Path::to_path_buf))
        .collect();
    if !dirs.is_empty() {
        if let Err(err) = std::fs::create_dir_all(prefix) {
            let failure = CompileError::CreatePrefix {
                prefix: prefix.to_path_buf(),
                err,
            };
            outcome.failed.push((prefix.to_path_buf(), failure));
        }
    }
    let inherit_owner = crate::actions::safe_fs::effective_uid() == 0;
    let mut made = Vec::new();
    let mut unmade: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        match crate::actions::safe_fs::create_dirs_beneath(prefix, &dir, inherit_owner) {
            Ok(new) => made.extend(new.into_iter().map(|d| (d, root.clone()))),
            Err(e) => {
                outcome
                    .failed
                    .push((dir.clone(), CompileError::CreateDir(e)));
                unmade.push(dir);
            }
        }
    }
    outcome.planned.retain(|p| {
        !p.task
            .cache
            .parent()
            .is_some_and(|d| unmade.iter().any(|u| u == d))
    });
    made
}

/// Remove the directories made for caches that could not be written (deepest first; a
/// directory that holds anything stays).
fn remove_made_dirs(mut made: Vec<(PathBuf, Arc<Path>)>) {
    made.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
    for (dir, root) in made {
        let _ = crate::actions::clean::remove_dir_if_empty(&root, &dir);
    }
}
