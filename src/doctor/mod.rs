//! `doctor`'s findings: typed facts about a tree, the interpreters and the environment,
//! each with a severity; [`crate::output::doctor`] words them (evidence and remedy).
//!
//! Everything here reuses the pipelines: the scan report (proven by [`crate::prove`]),
//! the interpreters found, the sources the compile planner finds, the worker pool (the
//! compile cost of sources a service cannot cache is measured by compiling them in
//! memory: [`Job::Compile`] returns the bytes, nothing is written), and
//! [`crate::procs::running`] for processes running old code. What a service user may
//! write is asked of the kernel as that user ([`access`]).

pub mod access;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::actions::compile::{choose_interpreters, FoundTree};
use crate::interpreters::{Interpreter, Interpreters};
use crate::layout::{self, CacheName};
use crate::procs::running::Running;
use crate::prove::DeepSummary;
use crate::report::Report;
use crate::scan;
use crate::verdict::{Evidence, Severity as CacheSeverity, State};
use crate::worker::pool::{Invalidation, Job, JobOutcome, Pool};
use access::Denied;

use crate::exit::Policy as ExitPolicy;
use crate::interpreters::Discovery as InterpreterDiscovery;
use crate::prove::ProveConfig as DeepConfig;
use crate::scan::ScanConfig as TreeConfig;

/// `pycguard doctor` (resolved by `settings`).
#[derive(Clone, Debug)]
pub struct DoctorConfig {
    pub scan: TreeConfig,
    pub policy: ExitPolicy,
    pub discovery: InterpreterDiscovery,
    pub prove: DeepConfig,
    /// `--user NAME`: the name and its uid.
    pub user: Option<(String, u32)>,
    /// The cache-related variables of pycguard's own environment.
    pub environment: CacheEnvironment,
    /// The optimisation level Python run from this environment uses (`PYTHONOPTIMIZE`).
    pub optimize_level: u8,
    pub cwd: std::path::PathBuf,
    pub timeout: std::time::Duration,
}

/// The environment variables that change what Python does with caches, as set here.
#[derive(Clone, Debug, Default)]
pub struct CacheEnvironment {
    pub dont_write_bytecode: bool,
    /// `PYTHONPYCACHEPREFIX`, absolute.
    pub pycache_prefix: Option<PathBuf>,
    pub source_date_epoch: bool,
    pub optimize: Option<String>,
    pub python_path: Option<std::ffi::OsString>,
}

/// How much a finding matters (and what the exit status makes of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// An environment variable that changes what Python does with caches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `PYTHONDONTWRITEBYTECODE`: no cache is written — but existing ones are still read.
    DontWriteBytecode,
    /// `PYTHONPYCACHEPREFIX`: 3.8+ reads and writes caches only under it; the number of
    /// `__pycache__` caches under PATHS those interpreters will not read.
    PycachePrefix { prefix: PathBuf, ignored: usize },
    /// `SOURCE_DATE_EPOCH`: `py_compile`/`compileall` (and `pycguard compile`) write
    /// checked-hash caches.
    SourceDateEpoch,
    /// `PYTHONOPTIMIZE`: `.opt-N` caches are read and written; level-0 caches under
    /// PATHS are then not used.
    Optimize { value: String, level0_caches: usize },
    /// `PYTHONPATH`: directories searched before site-packages, and which of them lie
    /// under PATHS.
    PythonPath { dirs: Vec<PathBuf> },
}

/// The user a `--user` check is for.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub uid: u32,
}

/// A directory that the user cannot make or write caches in.
#[derive(Clone, Debug)]
pub struct Unwritable {
    pub user: User,
    pub cache_dir: PathBuf,
    pub denied: Denied,
    /// Sources whose cache for the interpreter is missing or not fresh: each start of
    /// that interpreter as the user compiles them again.
    pub recompiled: Vec<PathBuf>,
    /// Sources whose caches are fresh (read, but never refreshed by the user after an edit).
    pub fresh: usize,
    /// The measured time to compile `recompiled` (in memory), and with what.
    pub cost: Option<CompileCost>,
}

/// What compiling some sources took (the sum of each job's time in a worker).
#[derive(Clone, Debug)]
pub struct CompileCost {
    pub total: Duration,
    pub compiled: usize,
    pub failed: usize,
    pub interpreter: String,
}

/// One finding.
#[derive(Clone, Debug)]
pub enum Finding {
    /// An interpreter found, and how many caches under PATHS are for it.
    Interpreter {
        name: String,
        path: PathBuf,
        tag: String,
        caches: usize,
    },
    /// Interpreters found that own no cache under PATHS (by name).
    Unused {
        names: Vec<String>,
    },
    /// Caches for an interpreter that is not on this machine (a removed Python).
    NoInterpreter {
        tag: String,
        caches: Vec<PathBuf>,
    },
    Environment(Setting),
    /// A cache directory the `--user` cannot make or write.
    Unwritable(Unwritable),
    /// Caches owned by root in a directory the `--user` owns: the user cannot replace
    /// them (inside a root-owned `__pycache__`) or its interpreter keeps rewriting them.
    RootOwned {
        user: User,
        cache_dir: PathBuf,
        caches: Vec<PathBuf>,
    },
    /// Caches in a state that is not fresh, with the reason of each.
    Caches {
        state: State,
        severity: Severity,
        caches: Vec<(PathBuf, Option<String>)>,
    },
    /// Sources with no cache for the interpreter the tree is for.
    SourcesWithoutCaches {
        interpreter: String,
        sources: Vec<PathBuf>,
    },
    /// Caches still judged by header only after proving (no interpreter to prove them…).
    HeaderOnly {
        caches: usize,
        missing: BTreeMap<String, usize>,
    },
    /// Sources whose mtime is in the future (clock skew, or set by a tool).
    FutureMtimes {
        caches: Vec<(PathBuf, i128)>,
    },
    /// Sources replaced after their cache was written with their mtime kept (ctime).
    Replaced {
        caches: Vec<PathBuf>,
    },
    /// A process running code from PATHS that may be older than the tree.
    Process(Box<Running>),
    /// What a process running code from PATHS was started with that changes what it
    /// does with caches (from `/proc/PID/environ` and its command line).
    ProcessSettings {
        pid: u32,
        unit: Option<String>,
        settings: Vec<ProcessSetting>,
    },
}

/// One cache-related setting of a running process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessSetting {
    /// `-B` or `PYTHONDONTWRITEBYTECODE`: it writes no caches.
    NoWrites { flag: bool },
    /// `-X pycache_prefix=` or `PYTHONPYCACHEPREFIX`: its caches are under this directory.
    Prefix { dir: PathBuf, flag: bool },
    /// `-O`… or `PYTHONOPTIMIZE`: it reads `.opt-N` caches.
    Optimize { level: String, flag: bool },
    /// `PYTHONPATH`.
    PythonPath { value: String },
}

impl Finding {
    pub fn severity(&self) -> Severity {
        match self {
            Finding::Interpreter { .. }
            | Finding::Unused { .. }
            | Finding::SourcesWithoutCaches { .. }
            | Finding::HeaderOnly { .. } => Severity::Info,
            Finding::NoInterpreter { .. }
            | Finding::RootOwned { .. }
            | Finding::FutureMtimes { .. }
            | Finding::Replaced { .. } => Severity::Warning,
            Finding::Environment(Setting::DontWriteBytecode) => Severity::Warning,
            Finding::Environment(_) => Severity::Info,
            Finding::Unwritable(u) if u.recompiled.is_empty() => Severity::Info,
            Finding::Unwritable(_) => Severity::Warning,
            Finding::Caches { severity, .. } => *severity,
            Finding::Process(_) => Severity::Error,
            Finding::ProcessSettings { settings, .. } => {
                if settings
                    .iter()
                    .any(|s| matches!(s, ProcessSetting::NoWrites { .. }))
                {
                    Severity::Warning
                } else {
                    Severity::Info
                }
            }
        }
    }

    /// A short name for the kind (JSON's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Interpreter { .. } => "interpreter",
            Finding::Unused { .. } => "interpreters-without-caches",
            Finding::NoInterpreter { .. } => "no-interpreter",
            Finding::Environment(_) => "environment",
            Finding::Unwritable(_) => "unwritable-cache-dir",
            Finding::RootOwned { .. } => "root-owned-caches",
            Finding::Caches { .. } => "caches",
            Finding::SourcesWithoutCaches { .. } => "sources-without-caches",
            Finding::HeaderOnly { .. } => "header-only",
            Finding::FutureMtimes { .. } => "future-mtimes",
            Finding::Replaced { .. } => "replaced-sources",
            Finding::Process(_) => "process",
            Finding::ProcessSettings { .. } => "process-environment",
        }
    }
}

/// The tag an interpreter's caches carry (`cpython-27` for Python 2, as `clean --tag`).
fn tag_of(i: &Interpreter) -> Option<String> {
    i.cache_tag.clone().or_else(|| {
        let legacy = CacheName::Legacy {
            stem: OsString::new(),
            pyo: false,
        };
        scan::interpreter_tag(&legacy, i.series)
    })
}

/// The interpreters and the caches each owns; the caches of tags no interpreter has.
pub fn interpreter_findings(report: &Report, interpreters: &Interpreters) -> Vec<Finding> {
    let mut by_tag: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in &report.entries {
        if let Some(tag) = scan::interpreter_tag(&entry.name, entry.verdict.interpreter) {
            by_tag.entry(tag).or_default().push(entry.path.clone());
        }
    }
    let mut findings = Vec::new();
    let mut known = Vec::new();
    let mut unused = Vec::new();
    for i in interpreters.all() {
        let Some(tag) = tag_of(i) else { continue };
        if known.contains(&tag) {
            continue;
        }
        known.push(tag.clone());
        match by_tag.get(&tag).map_or(0, Vec::len) {
            0 => unused.push(i.display_name()),
            caches => findings.push(Finding::Interpreter {
                name: i.display_name(),
                path: i.path.clone(),
                caches,
                tag,
            }),
        }
    }
    if !unused.is_empty() {
        findings.push(Finding::Unused { names: unused });
    }
    for (tag, caches) in by_tag {
        if !known.contains(&tag) {
            findings.push(Finding::NoInterpreter { tag, caches });
        }
    }
    findings
}

/// The cache-related environment (see [`Setting`]).
pub fn environment_findings(config: &DoctorConfig, report: &Report) -> Vec<Finding> {
    let env = &config.environment;
    let mut findings = Vec::new();
    if env.dont_write_bytecode {
        findings.push(Finding::Environment(Setting::DontWriteBytecode));
    }
    if let Some(prefix) = &env.pycache_prefix {
        let ignored = report
            .entries
            .iter()
            .filter(|e| !e.path.starts_with(prefix) && matches!(e.name, CacheName::Tagged { .. }))
            .filter(|e| {
                e.verdict
                    .interpreter
                    .is_some_and(|s| layout::reads_pycache_prefix((s.major.into(), s.minor.into())))
            })
            .count();
        findings.push(Finding::Environment(Setting::PycachePrefix {
            prefix: prefix.clone(),
            ignored,
        }));
    }
    if env.source_date_epoch {
        findings.push(Finding::Environment(Setting::SourceDateEpoch));
    }
    if let Some(value) = &env.optimize {
        let level0_caches = report
            .entries
            .iter()
            .filter(|e| e.name.optimization() == Some(0))
            .count();
        findings.push(Finding::Environment(Setting::Optimize {
            value: value.clone(),
            level0_caches,
        }));
    }
    if let Some(path) = &env.python_path {
        findings.push(Finding::Environment(Setting::PythonPath {
            dirs: std::env::split_paths(path).collect(),
        }));
    }
    findings
}

/// Findings from the proven report: caches by state, header-only ones, future mtimes,
/// sources replaced with their mtime kept.
pub fn cache_findings(report: &Report, deep: &DeepSummary) -> Vec<Finding> {
    let mut findings = Vec::new();
    for state in State::ALL {
        if state == State::Fresh {
            continue;
        }
        let entries: Vec<_> = report
            .entries
            .iter()
            .filter(|e| e.verdict.state == state)
            .collect();
        if entries.is_empty() {
            continue;
        }
        let severity = match entries.iter().map(|e| e.verdict.severity).max() {
            Some(CacheSeverity::Error) => Severity::Error,
            Some(CacheSeverity::Warning) => Severity::Warning,
            _ => Severity::Info,
        };
        findings.push(Finding::Caches {
            state,
            severity,
            caches: entries
                .iter()
                .map(|e| (e.path.clone(), crate::messages::reason(&e.verdict)))
                .collect(),
        });
    }
    if report.summary.header_only > 0 {
        findings.push(Finding::HeaderOnly {
            caches: report.summary.header_only,
            missing: deep.missing_interpreter.clone(),
        });
    }
    let future: Vec<_> = report
        .entries
        .iter()
        .filter_map(|e| Some((e.path.clone(), e.verdict.future_source_mtime?)))
        .collect();
    if !future.is_empty() {
        findings.push(Finding::FutureMtimes { caches: future });
    }
    let replaced: Vec<_> = report
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.verdict.evidence.as_deref(),
                Some(Evidence::SourceReplaced { .. })
            )
        })
        .map(|e| e.path.clone())
        .collect();
    if !replaced.is_empty() {
        findings.push(Finding::Replaced { caches: replaced });
    }
    findings
}

/// The interpreter the tree is for (as `compile` chooses), when one is found.
pub fn tree_interpreter(
    config: &DoctorConfig,
    found: &FoundTree,
    interpreters: &Interpreters,
) -> Option<Interpreter> {
    choose_interpreters(
        interpreters,
        !config.discovery.pythons.is_empty(),
        &found.tags,
        &config.scan.roots,
        &config.discovery.search,
    )
    .into_iter()
    .next()
    .map(|(i, _)| i)
}

/// Where `interpreter` reads and writes the cache of `source` (as reached from PATH).
fn expected_cache(
    source: &Path,
    interpreter: &Interpreter,
    tag: &str,
    config: &DoctorConfig,
) -> Option<PathBuf> {
    let level = config.optimize_level;
    match &config.scan.walk.pycache_prefix {
        Some(prefix) if layout::reads_pycache_prefix(interpreter.version_info) => {
            let abs = layout::lexically_absolute(&config.cwd, source);
            layout::prefix_cache_path(prefix, &abs, tag, level)
        }
        _ => layout::cache_path(source, tag, level),
    }
}

/// Sources whose cache for `interpreter` is missing, and (with `--user`) the cache
/// directories that user cannot make or write, with the cost of compiling what each
/// start of the interpreter then compiles again.
pub fn source_findings(
    config: &DoctorConfig,
    found: &FoundTree,
    interpreter: &Interpreter,
    user: Option<&User>,
) -> Result<Vec<Finding>, access::AccessError> {
    let Some(tag) = tag_of(interpreter) else {
        return Ok(Vec::new());
    };
    let state_of = |cache: &Path| -> Option<State> {
        found
            .caches
            .iter()
            .find_map(|m| m.get(cache.as_os_str()).map(|(state, _)| *state))
    };
    let mut missing = Vec::new();
    let mut by_dir: BTreeMap<PathBuf, (Vec<PathBuf>, usize)> = BTreeMap::new();
    for (_, source) in &found.sources {
        let Some(cache) = expected_cache(source, interpreter, &tag, config) else {
            continue;
        };
        let state = state_of(&cache);
        if state.is_none() {
            missing.push(source.clone());
        }
        let dir = cache.parent().map(Path::to_path_buf).unwrap_or_default();
        let slot = by_dir.entry(dir).or_default();
        if state == Some(State::Fresh) {
            slot.1 += 1;
        } else {
            slot.0.push(source.clone());
        }
    }
    missing.sort();
    let mut findings = Vec::new();
    if !missing.is_empty() {
        findings.push(Finding::SourcesWithoutCaches {
            interpreter: interpreter.display_name(),
            sources: missing,
        });
    }
    let Some(user) = user else {
        return Ok(findings);
    };
    let checker = access::Checker::new(user.uid);
    let mut unwritable = Vec::new();
    for (dir, (mut recompiled, fresh)) in by_dir {
        // As reached from PATH (relative to the current directory, which the checking
        // thread shares), so that the evidence names it the way the user gave it.
        if let Some(denied) = checker.cache_dir(&dir)? {
            recompiled.sort();
            unwritable.push(Unwritable {
                user: user.clone(),
                cache_dir: dir,
                denied,
                recompiled,
                fresh,
                cost: None,
            });
        }
    }
    measure(config, interpreter, &mut unwritable);
    findings.extend(unwritable.into_iter().map(Finding::Unwritable));
    findings.extend(root_owned(found, user));
    Ok(findings)
}

/// Compile every source each [`Unwritable`] recompiles, in memory through the worker
/// pool, and record how long the jobs took (the sum of each job's time in its worker:
/// what one process importing them all pays).
fn measure(config: &DoctorConfig, interpreter: &Interpreter, unwritable: &mut [Unwritable]) {
    let jobs: Vec<(usize, PathBuf)> = unwritable
        .iter()
        .enumerate()
        .flat_map(|(k, u)| u.recompiled.iter().map(move |s| (k, s.clone())))
        .collect();
    if jobs.is_empty() {
        return;
    }
    let Ok(mut pool) = Pool::start(
        interpreter,
        config.scan.walk.threads.min(jobs.len()),
        config.timeout,
    ) else {
        return;
    };
    let mut started: HashMap<usize, Instant> = HashMap::new();
    let mut costs: Vec<CompileCost> = unwritable
        .iter()
        .map(|_| CompileCost {
            total: Duration::ZERO,
            compiled: 0,
            failed: 0,
            interpreter: interpreter.display_name(),
        })
        .collect();
    let level = config.optimize_level;
    let cwd = &config.cwd;
    // Read without blocking (a FIFO named like a source is refused) and never past the
    // size limit every tree file has.
    let make = |i: usize| -> Option<Job> {
        let source_path = &jobs[i].1;
        let mut source = Vec::new();
        let stat = crate::read::read_into(
            source_path,
            crate::read::Follow::Yes,
            "the source",
            crate::read::MAX_FILE_BYTES,
            &mut source,
        )
        .ok()?;
        started.insert(i, Instant::now());
        Some(Job::Compile {
            filename: layout::lexically_absolute(cwd, source_path),
            optimize: level,
            invalidation: Invalidation::Timestamp {
                mtime: stat.mtime_secs as u32,
                size: stat.size as u32,
            },
            source,
        })
    };
    // The end of each job; its start is when `make` handed it to a free worker.
    let mut ends: Vec<(usize, Instant, bool)> = Vec::new();
    let result = pool.run_with(jobs.len(), make, |i, outcome| {
        ends.push((
            i,
            Instant::now(),
            matches!(outcome, JobOutcome::Compiled { .. }),
        ));
    });
    if result.is_err() {
        return;
    }
    for (i, end, ok) in ends {
        let cost = &mut costs[jobs[i].0];
        if ok {
            cost.compiled += 1;
        } else {
            cost.failed += 1;
        }
        if let Some(start) = started.get(&i) {
            cost.total += end.duration_since(*start);
        }
    }
    for (u, cost) in unwritable.iter_mut().zip(costs) {
        if cost.compiled + cost.failed > 0 {
            u.cost = Some(cost);
        }
    }
}

/// Caches owned by root in directories the user owns (grouped by cache directory).
fn root_owned(found: &FoundTree, user: &User) -> Vec<Finding> {
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for states in &found.caches {
        for path in states.keys() {
            let path = Path::new(path);
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                continue;
            };
            if meta.uid() != 0 || user.uid == 0 {
                continue;
            }
            let Some(cache_dir) = path.parent() else {
                continue;
            };
            // The directory the user owns: the source directory above `__pycache__`, or
            // the directory of a legacy cache.
            let holder = if cache_dir.file_name().is_some_and(layout::is_pycache_dir) {
                cache_dir.parent().unwrap_or(cache_dir)
            } else {
                cache_dir
            };
            if std::fs::symlink_metadata(holder).is_ok_and(|m| m.uid() == user.uid) {
                by_dir
                    .entry(cache_dir.to_path_buf())
                    .or_default()
                    .push(path.to_path_buf());
            }
        }
    }
    by_dir
        .into_iter()
        .map(|(cache_dir, mut caches)| {
            caches.sort();
            Finding::RootOwned {
                user: user.clone(),
                cache_dir,
                caches,
            }
        })
        .collect()
}

/// The processes running old code, and the cache settings of every process running
/// code from PATHS, as findings.
pub fn process_findings(running: Vec<Running>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = running.iter().filter_map(settings_of).collect();
    findings.extend(
        running
            .into_iter()
            .filter(Running::is_stale)
            .map(|r| Finding::Process(Box::new(r))),
    );
    findings
}

/// A process's cache-related settings (none: `None`). Variables count unless `-E`/`-I`
/// hides them; an unreadable environment shows only the command line's.
fn settings_of(r: &Running) -> Option<Finding> {
    let p = &r.process;
    let c = &p.command;
    let var = |name: &str| -> Option<String> {
        if c.ignores_environment {
            return None;
        }
        p.env(name).map(|v| v.to_string_lossy().into_owned())
    };
    let mut settings = Vec::new();
    if c.no_write {
        settings.push(ProcessSetting::NoWrites { flag: true });
    } else if var("PYTHONDONTWRITEBYTECODE").is_some() {
        settings.push(ProcessSetting::NoWrites { flag: false });
    }
    if let Some(dir) = &c.pycache_prefix {
        settings.push(ProcessSetting::Prefix {
            dir: dir.clone(),
            flag: true,
        });
    } else if let Some(dir) = var("PYTHONPYCACHEPREFIX") {
        settings.push(ProcessSetting::Prefix {
            dir: PathBuf::from(dir),
            flag: false,
        });
    }
    if c.optimize > 0 {
        settings.push(ProcessSetting::Optimize {
            level: c.optimize.to_string(),
            flag: true,
        });
    } else if let Some(level) = var("PYTHONOPTIMIZE") {
        settings.push(ProcessSetting::Optimize { level, flag: false });
    }
    if let Some(value) = var("PYTHONPATH") {
        settings.push(ProcessSetting::PythonPath { value });
    }
    (!settings.is_empty()).then(|| Finding::ProcessSettings {
        pid: p.pid,
        unit: p.unit.clone(),
        settings,
    })
}

/// Sort findings: most severe first, in the order they were gathered within a severity.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity()));
}
