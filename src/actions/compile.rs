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
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::actions::recompile::{self, Mode, Task, Written};
use crate::check;
use crate::config::ScanConfig;
use crate::facts::DirSources;
use crate::interpreters::Interpreter;
use crate::layout;
use crate::store::scan_memo::Memo;
use crate::verdict::State;
use crate::walk::{self, WalkEvent};

/// The state of each judged cache, keyed by its path's bytes (hashing a `Path` parses its
/// components, which cost more than the rest of planning).
pub type CacheStates = HashMap<OsString, State, foldhash::fast::RandomState>;

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
    pub errors: Vec<(PathBuf, String)>,
    /// What the walk skipped and recognised.
    pub walk: walk::WalkSummary,
}

/// What to compile.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Optimisation levels (0, 1, 2).
    pub levels: Vec<u8>,
    pub mode: Mode,
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

/// What a compile did.
#[derive(Debug, Default)]
pub struct CompileOutcome {
    pub planned: Vec<Planned>,
    pub up_to_date: usize,
    pub failed: Vec<(PathBuf, String)>,
    pub scan_errors: Vec<(PathBuf, String)>,
    /// Cache tags found in the tree (to choose default interpreters).
    pub tags_seen: BTreeSet<String>,
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
    dirs: &'a DirSources,
    memo: &'a Memo,
}

impl Collector<'_> {
    fn event(&mut self, event: WalkEvent) {
        let found = &mut self.local;
        match event {
            WalkEvent::Source { root, path } => found.sources.push((root, path)),
            WalkEvent::Cache(c) => {
                if let layout::CacheName::Tagged { tag, .. } = &c.name {
                    // Most caches share one or two tags: compare with the last one first.
                    if self.last_tag.as_deref() != Some(tag.as_str()) {
                        if !tag.contains("-pytest-") && !found.tags.contains(tag.as_str()) {
                            found.tags.insert(tag.clone());
                        }
                        self.last_tag = Some(tag.clone());
                    }
                }
                match check::judge_candidate(c, self.dirs, self.memo) {
                    Ok(entry) => {
                        self.states
                            .insert(entry.path.into_os_string(), entry.verdict.state);
                    }
                    Err(e) => found.errors.push((e.path, e.message)),
                }
            }
            WalkEvent::Error { path, message } => found.errors.push((path, message)),
            WalkEvent::Debris { .. } => {}
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
    let dirs = DirSources::default();
    let memo = match &config.cache_dir {
        Some(dir) => Memo::load(dir),
        None => Memo::disabled(),
    };
    let mut options = config.walk.clone();
    options.report_sources = true;
    let make_sink = || {
        let mut collector = Collector {
            local: FoundTree::default(),
            states: CacheStates::default(),
            last_tag: None,
            shared: &found,
            dirs: &dirs,
            memo: &memo,
        };
        move |event| collector.event(event)
    };
    let mut walked = walk::WalkSummary::default();
    for root in &config.roots {
        walked.merge(walk::walk_root_per_thread(root, &options, &make_sink));
    }
    memo.save();
    // Unsorted: the order of compile jobs does not matter (listings are sorted instead).
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.walk = walked;
    found
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
                        let absolute = crate::config::lexically_absolute(cwd, source);
                        let Some(path) = layout::prefix_cache_path(prefix, &absolute, tag, level)
                        else {
                            continue;
                        };
                        cache_bytes.clear();
                        cache_bytes.extend_from_slice(path.as_os_str().as_bytes());
                        root
                    }
                };
                let why = if options.force {
                    Some("forced")
                } else {
                    let path = OsStr::from_bytes(&cache_bytes);
                    match caches.iter().find_map(|states| states.get(path)) {
                        Some(State::Fresh) => None,
                        Some(state) => Some(state.name()),
                        None => Some("missing"),
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
                        why: why.to_owned(),
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
    workers: usize,
    timeout: Duration,
) -> CompileOutcome {
    let mut outcome = CompileOutcome {
        tags_seen: found.tags,
        ..CompileOutcome::default()
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
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
    // Planning is a lookup per source; split it over the walk's thread count.
    let chunk = found.sources.len().div_ceil(workers.max(1)).max(1024);
    let plans: Vec<(Vec<Planned>, usize)> = std::thread::scope(|scope| {
        let planners: Vec<_> = found
            .sources
            .chunks(chunk)
            .map(|sources| {
                let (targets, cwd, caches) = (&targets, &cwd, &found.caches);
                scope.spawn(move || plan(sources, caches, targets, options, cwd))
            })
            .collect();
        planners
            .into_iter()
            .map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for (planned, up_to_date) in plans {
        outcome.planned.extend(planned);
        outcome.up_to_date += up_to_date;
    }
    if options.dry_run {
        outcome
            .planned
            .sort_by(|a, b| a.task.source.as_os_str().cmp(b.task.source.as_os_str()));
        return outcome;
    }
    // The directories of the prefix tree, made before the caches are written into them.
    let mut made_dirs: Vec<(PathBuf, Arc<Path>)> = Vec::new();
    if let (Some(prefix), Some(root)) = (&options.prefix, &prefix_root) {
        let dirs: BTreeSet<&Path> = outcome
            .planned
            .iter()
            .filter(|p| p.task.root == *root)
            .filter_map(|p| p.task.cache.parent())
            .collect();
        if !dirs.is_empty() {
            if let Err(e) = std::fs::create_dir_all(prefix) {
                let message = format!(
                    "cannot create the pycache prefix {}: {}",
                    prefix.display(),
                    crate::facts::io_message(&e)
                );
                outcome.failed.push((prefix.clone(), message));
            }
        }
        let inherit_owner = crate::actions::safe_fs::effective_uid() == 0;
        let mut unmade: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            match crate::actions::safe_fs::create_dirs_beneath(prefix, dir, inherit_owner) {
                Ok(made) => made_dirs.extend(made.into_iter().map(|d| (d, root.clone()))),
                Err(e) => {
                    outcome
                        .failed
                        .push((dir.to_path_buf(), format!("cannot create it: {e}")));
                    unmade.push(dir.to_path_buf());
                }
            }
        }
        // Caches whose directory could not be made are reported with it, not tried.
        outcome.planned.retain(|p| {
            !p.task
                .cache
                .parent()
                .is_some_and(|d| unmade.iter().any(|u| u == d))
        });
    }
    for (index, interpreter) in interpreters.iter().enumerate() {
        let (planned, tasks): (Vec<&Planned>, Vec<Task>) = outcome
            .planned
            .iter()
            .filter(|p| p.interpreter == index)
            .map(|p| (p, p.task.clone()))
            .unzip();
        let written = recompile::write_all(interpreter, &tasks, workers, timeout);
        for (p, w) in planned.into_iter().zip(written) {
            if let Written::Failed(message) = w {
                outcome.failed.push((p.task.cache.clone(), message));
            }
        }
    }
    if !outcome.failed.is_empty() {
        // Directories made for caches that could not be written go again (deepest first).
        made_dirs.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
        for (dir, root) in made_dirs {
            let _ = crate::actions::clean::remove_dir_if_empty(&root, &dir);
        }
    }
    outcome.failed.sort();
    outcome
}
