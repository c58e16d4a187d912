//! `check --deep`: prove caches against their sources with the interpreter that wrote them.
//!
//! Runs after the normal check, on its report (which then keeps every entry). For every
//! cache the interpreter accepts (header verdict fresh or suspect, hash-based ones
//! included) whose source exists:
//!
//! 1. read the cache and the source and hash both (blake3, in parallel); find the
//!    interpreter with the cache's exact magic number ([`crate::interpreters`]); look the
//!    pair up in the verification [`store`] ([`crate::store::proofs`]);
//! 2. send what the store does not know to a [`pool::Pool`] of that interpreter's workers:
//!    compile the source as the importer would (`dont_inherit=True`, the optimisation level
//!    of the file name; a legacy cache tries 0, 1 and 2) and compare code objects
//!    ([`compare`] turns the answer into a verdict);
//! 3. remember the new proofs.
//!
//! Nothing is imported or executed: the workers only `compile()` and `marshal.loads()`.
//! pytest-rewritten caches are not recompiled (their code is not a plain compile): a
//! checked-hash one (pytest 9.2+) was already verified by its source hash, a timestamp one
//! keeps its header verdict; so does a cache whose interpreter is absent. The
//! [`DeepSummary`] counts those left judged by header. Ctrl-C or SIGTERM stops the workers
//! (killed and reaped) and the run ends with exit 130 or 143 (see
//! [`crate::signals`]).

pub mod compare;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::ProgressBar;

use crate::progress::Progress;

use crate::interpreters::{Interpreter, Interpreters};
use crate::layout::CacheName;
use crate::pyc::{header, magic};
use crate::read::{self, Follow, ReadError, MAX_FILE_BYTES};
use crate::report::{Entry, Report, ScanError, Summary};
use crate::signals::{interrupt_flag, Interrupted};
use crate::store::proofs as store;
use crate::verdict::{Checked, State};
use crate::worker::pool::{Job, JobOutcome, Pool, PoolError};
use store::{FileFacts, Proof, Store};

/// How the deep stage runs (resolved by [`crate::settings`]).
#[derive(Clone, Debug)]
pub struct ProveConfig {
    /// Worker processes per interpreter (`--jobs`, default one per core).
    pub workers: usize,
    /// Per-file time limit of a worker.
    pub timeout: Duration,
    /// pycguard's cache directory (the proof store); `None` with `--no-cache`.
    pub cache_dir: Option<PathBuf>,
    /// Show a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// What the deep stage did, for the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeepSummary {
    /// Caches proven in this run by compiling their sources.
    pub compiled: usize,
    /// Caches whose proof was found in the store.
    pub remembered: usize,
    /// Caches not proven because no interpreter with their magic number was found, by
    /// the interpreter that would prove them (`Python 3.9`).
    pub missing_interpreter: BTreeMap<String, usize>,
    /// pytest-rewritten caches, judged by header only.
    pub pytest: usize,
    /// Caches whose proof failed (worker crashed or hung twice, damaged body…), with why.
    pub failed: Vec<(PathBuf, String)>,
    /// Other caches that cannot be proven (e.g. Python 2 `.pyo`), with why.
    pub other: Vec<(PathBuf, String)>,
}

impl DeepSummary {
    /// Caches that stay judged by their header.
    pub fn unproven(&self) -> usize {
        self.missing_interpreter.values().sum::<usize>()
            + self.pytest
            + self.failed.len()
            + self.other.len()
    }
}

/// A cache to prove, after phase 1.
struct Pending {
    entry: usize,
    levels: Vec<u8>,
    key: store::Key,
}

/// What phase 1 learned about a cache file, for the store.
type Learned = Option<(store::Key, FileFacts)>;

enum Looked {
    Hit(Proof, usize),
    Miss(Pending, usize),
    NoInterpreter(String),
    Skip(String),
    Unreadable(String),
}

/// Prove the caches of `report` (see the module docs) with `interpreters`. The report's
/// summary is recomputed; every entry must have been kept (`Keep::All`).
pub fn run(
    report: &mut Report,
    config: &ProveConfig,
    interpreters: &Interpreters,
) -> Result<DeepSummary, Interrupted> {
    let result = prove_all(report, config, interpreters, &interrupt_flag());
    report.summary = Summary::default();
    for entry in &report.entries {
        report.summary.add(&entry.verdict);
    }
    result
}

/// Would the interpreter run this cache instead of compiling its source (header verdict
/// fresh or suspect, source present)? Those are the caches a proof can upgrade;
/// pytest-rewritten ones among them cannot be recompiled ([`CacheName::is_pytest`]).
pub fn provable(entry: &Entry) -> bool {
    matches!(entry.verdict.state, State::Fresh | State::Suspect) && entry.source.is_some()
}

/// A cache whose code a plain `compile()` cannot reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unprovable {
    #[error("a Python 2 .pyo needs `python -O`, which a plain compile() cannot reproduce")]
    Python2Pyo,
}

/// The optimisation levels to compile a cache at: the one in its name, or for a legacy
/// cache (which records none) every level; an error when it cannot be reproduced.
pub fn levels_for(name: &CacheName, major: u8) -> Result<Vec<u8>, Unprovable> {
    match name {
        CacheName::Legacy { pyo: true, .. } if major == 2 => Err(Unprovable::Python2Pyo),
        CacheName::Legacy { .. } if major == 2 => Ok(vec![0]),
        _ => Ok(name
            .optimization()
            .map_or_else(|| vec![0, 1, 2], |level| vec![level])),
    }
}

fn prove_all(
    report: &mut Report,
    config: &ProveConfig,
    interpreters: &Interpreters,
    interrupt: &Arc<AtomicBool>,
) -> Result<DeepSummary, Interrupted> {
    let mut summary = DeepSummary::default();
    let wanted = select(report, &mut summary);
    let store = match &config.cache_dir {
        Some(dir) => Store::load(dir),
        None => Store::disabled(),
    };
    let progress = Progress::bar(config.progress, "proving caches", wanted.len() as u64);
    progress.set_message("hashing");
    let bar = progress.handle();
    // Phase 1: hash, find the interpreter, look up the store (in parallel).
    let looked = look_up_all(
        report,
        &wanted,
        interpreters,
        &store,
        config,
        interrupt,
        &bar,
    );
    if interrupt.load(Ordering::SeqCst) {
        progress.clear();
        return Err(Interrupted);
    }
    let mut store = store;
    store.set_interrupt(Arc::clone(interrupt));
    let groups = apply_looked(report, looked, interpreters, &mut store, &mut summary);
    // Phase 2: compile and compare what the store did not know.
    progress.set_message("compiling");
    let proven = prove_groups(
        report,
        groups,
        interpreters,
        config,
        interrupt,
        &mut store,
        &bar,
        &mut summary,
    );
    store.save();
    progress.clear();
    proven?;
    report.errors.sort_by(|a, b| a.path.cmp(&b.path));
    summary.failed.sort();
    Ok(summary)
}

/// The entries to prove; pytest's caches are counted (or, checked by hash, need nothing).
fn select(report: &mut Report, summary: &mut DeepSummary) -> Vec<usize> {
    let mut wanted = Vec::new();
    for (i, entry) in report.entries.iter_mut().enumerate() {
        if !provable(entry) {
            continue;
        }
        if entry.name.is_pytest() {
            if entry.verdict.checked == Checked::Hash {
                // pytest 9.2+ re-hashes the source before it runs the cache, and the hash
                // matched: nothing a proof could add, and nothing left unproven.
                continue;
            }
            compare::not_proven(
                &mut entry.verdict,
                "pytest rewrites the code of its caches, so a plain compile cannot reproduce it",
            );
            summary.pytest += 1;
            continue;
        }
        wanted.push(i);
    }
    wanted
}

/// Phase 1 over every wanted entry, on `config.workers` threads.
fn look_up_all(
    report: &Report,
    wanted: &[usize],
    interpreters: &Interpreters,
    store: &Store,
    config: &ProveConfig,
    interrupt: &AtomicBool,
    bar: &ProgressBar,
) -> Vec<(usize, Looked, Learned)> {
    let entries = &report.entries;
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, Looked, Learned)>> = Mutex::new(Vec::with_capacity(wanted.len()));
    std::thread::scope(|s| {
        for _ in 0..config.workers.max(1) {
            s.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    if interrupt.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = wanted.get(n) else { break };
                    let entry = &entries[i];
                    let (looked, file) = look_up(
                        &entry.path,
                        entry.source.as_deref().expect("filtered"),
                        &entry.name,
                        interpreters,
                        store,
                    );
                    if !matches!(looked, Looked::Miss(..)) {
                        bar.inc(1);
                    }
                    mine.push((i, looked, file));
                }
                out.lock().expect("poisoned").extend(mine);
            });
        }
    });
    out.into_inner().expect("poisoned")
}

/// Apply what phase 1 found (store hits, missing interpreters, skips, unreadable files);
/// the misses, grouped by interpreter, are left for phase 2.
fn apply_looked(
    report: &mut Report,
    looked: Vec<(usize, Looked, Learned)>,
    interpreters: &Interpreters,
    store: &mut Store,
    summary: &mut DeepSummary,
) -> BTreeMap<usize, Vec<Pending>> {
    let mut groups: BTreeMap<usize, Vec<Pending>> = BTreeMap::new();
    for (i, looked, file) in looked {
        if let Some((key, facts)) = file {
            store.insert_file(key, facts);
        }
        let entry = &mut report.entries[i];
        match looked {
            Looked::Hit(proof, interp) => {
                let prover = interpreters.all()[interp].display_name();
                compare::apply_to(entry, &proof, &prover);
                summary.remembered += 1;
            }
            Looked::Miss(mut pending, interp) => {
                pending.entry = i;
                groups.entry(interp).or_default().push(pending);
            }
            Looked::NoInterpreter(who) => {
                compare::not_proven(&mut entry.verdict, &format!("no {who} interpreter found"));
                *summary.missing_interpreter.entry(who).or_default() += 1;
            }
            Looked::Skip(why) => {
                compare::not_proven(&mut entry.verdict, &why);
                summary.other.push((entry.path.clone(), why));
            }
            Looked::Unreadable(message) => {
                report.errors.push(ScanError {
                    path: entry.path.clone(),
                    message,
                });
            }
        }
    }
    groups
}

/// Phase 2: each interpreter's pending caches through a pool of its workers.
#[allow(clippy::too_many_arguments)]
fn prove_groups(
    report: &mut Report,
    groups: BTreeMap<usize, Vec<Pending>>,
    interpreters: &Interpreters,
    config: &ProveConfig,
    interrupt: &Arc<AtomicBool>,
    store: &mut Store,
    bar: &ProgressBar,
    summary: &mut DeepSummary,
) -> Result<(), Interrupted> {
    for (interp, mut pending) in groups {
        pending.sort_by_key(|p| p.entry);
        let group = Group {
            pending: &pending,
            interpreter: &interpreters.all()[interp],
            config,
            interrupt,
            bar,
        };
        match prove_group(report, &group, store, summary) {
            Ok(()) => {}
            Err(PoolError::Start {
                interpreter,
                message,
            }) => {
                let why = format!("{interpreter} could not run pycguard's worker: {message}");
                for p in &pending {
                    let entry = &mut report.entries[p.entry];
                    compare::not_proven(&mut entry.verdict, &why);
                    summary.failed.push((entry.path.clone(), why.clone()));
                    bar.inc(1);
                }
            }
            Err(PoolError::Interrupted) => return Err(Interrupted),
        }
    }
    Ok(())
}

/// Hash one cache (or take its hash from the store when its identity is unchanged) and
/// its source, and decide what to do with it. Also returns what was learned about the
/// cache file, for the store.
fn look_up(
    cache_path: &Path,
    source_path: &Path,
    name: &CacheName,
    interpreters: &Interpreters,
    store: &Store,
) -> (Looked, Learned) {
    let unreadable =
        |what: &str, e: ReadError| Looked::Unreadable(format!("cannot read {what}: {e}"));
    // Opened once, without blocking, through a link as the importer reads it; its
    // identity is the opened file's.
    let (mut file, st) = match read::open(cache_path, Follow::Yes, "the cache") {
        Ok(opened) => opened,
        Err(e) => return (unreadable("the cache", e), None),
    };
    let identity = store.identity_key(&st);
    let mut learned = None;
    let facts = match identity.and_then(|k| store.file(&k)) {
        Some(facts) => facts,
        None => {
            let mut cache = Vec::new();
            if let Err(e) = read::read_opened(&mut file, st.size, MAX_FILE_BYTES, &mut cache) {
                return (unreadable("the cache", e), None);
            }
            let Some(magic) = cache.get(..4).and_then(|m| m.try_into().ok()) else {
                return (
                    Looked::Skip("it was truncated during the check".into()),
                    None,
                );
            };
            let facts = FileFacts {
                hash: *blake3::hash(&cache).as_bytes(),
                magic,
            };
            learned = identity.map(|k| (k, facts));
            facts
        }
    };
    let Some(info) = magic::lookup(facts.magic) else {
        return (
            Looked::Skip("its header changed during the check".into()),
            learned,
        );
    };
    let series = info.series;
    let Some(index) = interpreters.for_cache(facts.magic, cache_path) else {
        // Another build of the series (a pre-release magic) would compile differently.
        let who = match interpreters.for_series(series) {
            Some(_) => format!("{series} (magic {})", info.value),
            None => series.to_string(),
        };
        return (Looked::NoInterpreter(who), learned);
    };
    let interpreter = &interpreters.all()[index];
    let levels = match levels_for(name, series.major) {
        Ok(l) => l,
        Err(why) => return (Looked::Skip(why.to_string()), learned),
    };
    let source = match read::read(source_path, Follow::Yes, "the source", MAX_FILE_BYTES) {
        Ok(b) => b,
        Err(e) => return (unreadable("its source", e), learned),
    };
    let key = store::key(
        interpreter,
        &levels,
        &blake3::Hash::from(facts.hash),
        &blake3::hash(&source),
    );
    let looked = match store.get(&key) {
        Some(proof) => Looked::Hit(proof.clone(), index),
        None => Looked::Miss(
            Pending {
                entry: 0,
                levels,
                key,
            },
            index,
        ),
    };
    (looked, learned)
}

/// Why a cache could not be sent to be proven (it is reported as not proven).
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("cannot read the cache: {0}")]
    Cache(#[source] ReadError),
    #[error("cannot read its source: {0}")]
    Source(#[source] ReadError),
    #[error("its header changed during the check: {0}")]
    Header(#[source] header::HeaderError),
}

/// The job for one pending cache, read again now (so the bytes proven are the bytes
/// hashed): the job, and the key of exactly those bytes.
fn make_job(
    cache_path: &Path,
    source_path: &Path,
    levels: &[u8],
    interpreter: &Interpreter,
) -> Result<(Job, store::Key), JobError> {
    let cache = read::read(cache_path, Follow::Yes, "the cache", MAX_FILE_BYTES)
        .map_err(JobError::Cache)?;
    let source = read::read(source_path, Follow::Yes, "the source", MAX_FILE_BYTES)
        .map_err(JobError::Source)?;
    let h = header::parse(&cache).map_err(JobError::Header)?;
    let key = store::key(
        interpreter,
        levels,
        &blake3::hash(&cache),
        &blake3::hash(&source),
    );
    let body = cache[h.byte_len()..].to_vec();
    Ok((
        Job::Prove {
            source,
            filename: source_path.to_path_buf(),
            body,
            optimize_levels: levels.to_vec(),
        },
        key,
    ))
}

/// What one group of pending caches needs while its pool runs.
struct Group<'a> {
    pending: &'a [Pending],
    interpreter: &'a Interpreter,
    config: &'a ProveConfig,
    interrupt: &'a Arc<AtomicBool>,
    bar: &'a ProgressBar,
}

/// Prove one interpreter's pending caches with a pool of its workers.
fn prove_group(
    report: &mut Report,
    group: &Group<'_>,
    store: &mut Store,
    summary: &mut DeepSummary,
) -> Result<(), PoolError> {
    let pending = group.pending;
    let workers = group.config.workers.max(1).min(pending.len());
    let mut pool = Pool::start(group.interpreter, workers, group.config.timeout)?;
    pool.set_interrupt(Arc::clone(group.interrupt));
    // The worker's own hello may have corrected a remembered version.
    let prover = pool.interpreter().display_name();
    // Keys of the bytes actually sent (the file may have changed since phase 1).
    let sent: RefCell<HashMap<usize, store::Key>> = RefCell::new(HashMap::new());
    let unsent: RefCell<Vec<(usize, JobError)>> = RefCell::new(Vec::new());
    let entries = &mut report.entries;
    let paths: Vec<(PathBuf, PathBuf)> = pending
        .iter()
        .map(|p| {
            let e = &entries[p.entry];
            (e.path.clone(), e.source.clone().expect("filtered"))
        })
        .collect();
    let make = |i: usize| {
        let (cache, source) = &paths[i];
        match make_job(cache, source, &pending[i].levels, group.interpreter) {
            Ok((job, key)) => {
                sent.borrow_mut().insert(i, key);
                Some(job)
            }
            Err(why) => {
                unsent.borrow_mut().push((i, why));
                None
            }
        }
    };
    let on_done = |i: usize, outcome: JobOutcome| {
        group.bar.inc(1);
        let entry = &mut entries[pending[i].entry];
        let key = sent.borrow_mut().remove(&i).unwrap_or(pending[i].key);
        let proof = match outcome {
            JobOutcome::Proven { equal: true, .. } => Proof::Equal,
            JobOutcome::Proven { difference, .. } => Proof::Different(difference),
            JobOutcome::SyntaxError { line, message } => Proof::SyntaxError { line, message },
            JobOutcome::Compiled { .. } => {
                let why = "the worker answered a different question".to_owned();
                summary.failed.push((entry.path.clone(), why));
                return;
            }
            JobOutcome::Failed(why) => {
                compare::not_proven(&mut entry.verdict, &why);
                summary.failed.push((entry.path.clone(), why));
                return;
            }
        };
        compare::apply_to(entry, &proof, &prover);
        summary.compiled += 1;
        store.insert(key, proof);
    };
    let outcome = pool.run_with(pending.len(), make, on_done);
    for (i, why) in unsent.into_inner() {
        group.bar.inc(1);
        let entry = &mut report.entries[pending[i].entry];
        let why = why.to_string();
        compare::not_proven(&mut entry.verdict, &why);
        summary.failed.push((entry.path.clone(), why));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn levels_follow_the_name() {
        let tagged = |optimization| CacheName::Tagged {
            stem: OsString::from("m"),
            tag: "cpython-312".into(),
            optimization,
        };
        let legacy = |pyo| CacheName::Legacy {
            stem: OsString::from("m"),
            pyo,
        };
        assert_eq!(levels_for(&tagged(0), 3), Ok(vec![0]));
        assert_eq!(levels_for(&tagged(2), 3), Ok(vec![2]));
        assert_eq!(levels_for(&legacy(false), 3), Ok(vec![0, 1, 2]));
        assert_eq!(levels_for(&legacy(false), 2), Ok(vec![0]));
        assert!(levels_for(&legacy(true), 2).is_err());
    }
}
