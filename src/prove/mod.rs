//! `check --deep`: prove caches against their sources with the interpreter that wrote them.
//!
//! Runs after the normal check, on its report. For every cache the interpreter accepts
//! (header verdict fresh or suspect, hash-based ones included) whose source exists:
//!
//! 0. [`Recall`]: a cache whose files are unchanged (by identity) since they were proven
//!    equal gets that proof without being read — during the scan for `check` and `fix`
//!    (which then need not keep the entry), else first thing here;
//! 1. read the cache and the source and hash both (blake3, in parallel); find the
//!    interpreter with the cache's exact magic number ([`crate::interpreters`]); look the
//!    pair up in the verification [`store`] ([`crate::store::proofs`], loaded only when
//!    something is left to look up), which holds proofs by content;
//! 2. send what the store does not know to a [`pool::Pool`] of that interpreter's workers:
//!    compile the source as the importer would (`dont_inherit=True`, the optimisation level
//!    of the file name; a legacy cache tries 0, 1 and 2) and compare — first the bytes of
//!    the marshalled code (compiled under the file name the cache records), then, when
//!    they differ, the code objects field by field ([`compare`] turns the answer into a
//!    verdict);
//! 3. remember the new proofs, by content and (equal ones, whose files did not change
//!    while they were read) by identity.
//!
//! Nothing is imported or executed: the workers only `compile()` and `marshal.loads()`.
//! pytest-rewritten caches are not recompiled (their code is not a plain compile): a
//! checked-hash one (pytest 9.2+) was already verified by its source hash, a timestamp one
//! keeps its header verdict; so does a cache whose interpreter is absent. The
//! [`DeepSummary`] counts those left judged by header. Ctrl-C or SIGTERM stops the workers
//! (killed and reaped) and the run ends with exit 130 or 143 (see
//! [`crate::signals`]).

pub mod compare;
pub mod recall;

pub use recall::Recall;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
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
use crate::report::{Entry, Identities, Report, ScanError};
use crate::signals::{interrupt_flag, Interrupted};
use crate::store::proofs as store;
use crate::store::FileIdentity;
use crate::verdict::{Checked, State};
use crate::worker::pool::{Job, JobOutcome, Pool, PoolError};
use store::{Proof, Store};

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
    /// Caches whose proof was remembered from an earlier run (by identity or by content).
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

/// The caches phase 2 proves, by the index of the interpreter that proves them.
type Groups = BTreeMap<usize, Vec<Pending>>;

/// A cache with the same key as one sent to be proven (its entry index, and it).
type Twin = (usize, Keyed);

/// A cache read and hashed in phase 1: its key, and what [`Recall::remember`] needs.
struct Keyed {
    pending: Pending,
    interpreter: usize,
    magic: [u8; 4],
    read: Identities,
}

enum Looked {
    Keyed(Keyed),
    NoInterpreter(String),
    Skip(String),
    Unreadable(String),
}

/// Prove the caches of `report` (see the module docs) with `interpreters`; `recall` (opened
/// before the scan) may already have upgraded some while the scan ran. The report's
/// summary is recounted; every entry still to be proven must have been kept.
pub fn run(
    report: &mut Report,
    config: &ProveConfig,
    interpreters: &Interpreters,
    recall: &Recall<'_>,
) -> Result<DeepSummary, Interrupted> {
    let result = prove_all(report, config, interpreters, recall, &interrupt_flag());
    report.recount();
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
    recall: &Recall<'_>,
    interrupt: &Arc<AtomicBool>,
) -> Result<DeepSummary, Interrupted> {
    let mut summary = DeepSummary::default();
    let wanted = select(report, recall, &mut summary);
    summary.remembered = recall.recalled();
    if wanted.is_empty() {
        return Ok(summary);
    }
    let progress = Progress::bar(config.progress, "proving caches", wanted.len() as u64);
    progress.set_message("hashing");
    let bar = progress.handle();
    // Phase 1: hash, find the interpreter (in parallel); then look the keys up.
    let looked = look_up_all(report, &wanted, interpreters, config, interrupt, &bar);
    if interrupt.load(Ordering::SeqCst) {
        progress.clear();
        return Err(Interrupted);
    }
    let keys: HashSet<store::Key> = looked
        .iter()
        .filter_map(|(_, l)| match l {
            Looked::Keyed(k) => Some(k.pending.key),
            _ => None,
        })
        .collect();
    let mut store = match &config.cache_dir {
        Some(dir) => Store::load_matching(dir, &keys),
        None => Store::disabled(),
    };
    store.set_interrupt(Arc::clone(interrupt));
    let (groups, twins) = apply_looked(report, looked, interpreters, recall, &store, &mut summary);
    // Phase 2: compile and compare what the store did not know, each distinct (cache,
    // source, build) once; then give its twins (hard links, copies) the same proof.
    progress.set_message("compiling");
    let cx = Context {
        interpreters,
        config,
        interrupt,
        recall,
        bar: &bar,
    };
    let mut proven = prove_groups(report, groups, &cx, &mut store, &mut summary);
    if proven.is_ok() {
        let left = apply_twins(
            report,
            twins,
            interpreters,
            recall,
            &store,
            &mut summary,
            &bar,
        );
        proven = prove_groups(report, left, &cx, &mut store, &mut summary);
    }
    store.save();
    progress.clear();
    proven?;
    report.errors.sort_by(|a, b| a.path.cmp(&b.path));
    summary.failed.sort();
    Ok(summary)
}

/// The entries to prove (those `recall` does not know); pytest's caches are counted (or,
/// checked by hash, need nothing).
fn select(report: &mut Report, recall: &Recall<'_>, summary: &mut DeepSummary) -> Vec<usize> {
    let mut wanted = Vec::new();
    for (i, entry) in report.entries.iter_mut().enumerate() {
        // Proven already: recalled while the scan ran.
        if !provable(entry) || entry.verdict.checked == Checked::Deep || recall.apply(entry) {
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
    config: &ProveConfig,
    interrupt: &AtomicBool,
    bar: &ProgressBar,
) -> Vec<(usize, Looked)> {
    let entries = &report.entries;
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, Looked)>> = Mutex::new(Vec::with_capacity(wanted.len()));
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
                    let looked = look_up(
                        &entry.path,
                        entry.source.as_deref().expect("filtered"),
                        &entry.name,
                        interpreters,
                    );
                    if !matches!(looked, Looked::Keyed(..)) {
                        bar.inc(1);
                    }
                    mine.push((i, looked));
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
    looked: Vec<(usize, Looked)>,
    interpreters: &Interpreters,
    recall: &Recall<'_>,
    store: &Store,
    summary: &mut DeepSummary,
) -> (Groups, Vec<Twin>) {
    let mut groups = Groups::new();
    let mut first_of: HashSet<store::Key> = HashSet::new();
    let mut twins = Vec::new();
    for (i, looked) in looked {
        let entry = &mut report.entries[i];
        match looked {
            Looked::Keyed(keyed) => match store.get(&keyed.pending.key) {
                Some(proof) => {
                    remembered(entry, &keyed, proof, interpreters, recall);
                    summary.remembered += 1;
                }
                None if !first_of.insert(keyed.pending.key) => twins.push((i, keyed)),
                None => keyed.pend(i, &mut groups),
            },
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
    (groups, twins)
}

/// Give each twin (the same cache and source bytes, for the same build, as a cache proven
/// in this run) its twin's proof; the twins whose twin could not be proven are returned,
/// to be proven themselves.
fn apply_twins(
    report: &mut Report,
    twins: Vec<Twin>,
    interpreters: &Interpreters,
    recall: &Recall<'_>,
    store: &Store,
    summary: &mut DeepSummary,
    bar: &ProgressBar,
) -> Groups {
    let mut left = Groups::new();
    for (i, keyed) in twins {
        let entry = &mut report.entries[i];
        match store.get(&keyed.pending.key) {
            Some(proof) => {
                remembered(entry, &keyed, proof, interpreters, recall);
                summary.remembered += 1;
                bar.inc(1);
            }
            None => keyed.pend(i, &mut left),
        }
    }
    left
}

/// Give `entry` a proof found for its key (remembered, or made for its twin in this run);
/// an equal one is remembered by identity too.
fn remembered(
    entry: &mut Entry,
    keyed: &Keyed,
    proof: &Proof,
    interpreters: &Interpreters,
    recall: &Recall<'_>,
) {
    let prover = interpreters.all()[keyed.interpreter].display_name();
    compare::apply_to(entry, proof, &prover);
    if *proof == Proof::Equal {
        recall.remember(entry, &keyed.read, keyed.magic, keyed.interpreter);
    }
}

impl Keyed {
    /// Leave the cache of entry `i` for phase 2, in its interpreter's group.
    fn pend(self, i: usize, groups: &mut Groups) {
        let mut pending = self.pending;
        pending.entry = i;
        groups.entry(self.interpreter).or_default().push(pending);
    }
}

/// What phase 2 needs besides the report, the store and the summary.
struct Context<'a> {
    interpreters: &'a Interpreters,
    config: &'a ProveConfig,
    interrupt: &'a Arc<AtomicBool>,
    recall: &'a Recall<'a>,
    bar: &'a ProgressBar,
}

/// Phase 2: each interpreter's pending caches through a pool of its workers.
fn prove_groups(
    report: &mut Report,
    groups: BTreeMap<usize, Vec<Pending>>,
    cx: &Context<'_>,
    store: &mut Store,
    summary: &mut DeepSummary,
) -> Result<(), Interrupted> {
    for (interp, mut pending) in groups {
        pending.sort_by_key(|p| p.entry);
        let group = Group {
            pending: &pending,
            index: interp,
            interpreter: &cx.interpreters.all()[interp],
            cx,
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
                    cx.bar.inc(1);
                }
            }
            Err(PoolError::Interrupted) => return Err(Interrupted),
        }
    }
    Ok(())
}

/// Read a cache or a source whole, through a link as the importer reads it (without
/// blocking, a regular file only, at most [`MAX_FILE_BYTES`]); its bytes and the identity
/// of the file opened.
fn read_file(path: &Path, what: &'static str) -> Result<(Vec<u8>, FileIdentity), ReadError> {
    let mut bytes = Vec::new();
    let st = read::read_into(path, Follow::Yes, what, MAX_FILE_BYTES, &mut bytes)?;
    Ok((bytes, FileIdentity::of(&st)))
}

/// Read and hash one cache and its source, and decide what to do with it.
fn look_up(
    cache_path: &Path,
    source_path: &Path,
    name: &CacheName,
    interpreters: &Interpreters,
) -> Looked {
    let unreadable =
        |what: &str, e: ReadError| Looked::Unreadable(format!("cannot read {what}: {e}"));
    let (cache, cache_id) = match read_file(cache_path, "the cache") {
        Ok(read) => read,
        Err(e) => return unreadable("the cache", e),
    };
    let Some(raw) = cache.get(..4).and_then(|m| <[u8; 4]>::try_from(m).ok()) else {
        return Looked::Skip("it was truncated during the check".into());
    };
    let Some(info) = magic::lookup(raw) else {
        return Looked::Skip("its header changed during the check".into());
    };
    let series = info.series;
    let Some(index) = interpreters.for_cache(raw, cache_path) else {
        // Another build of the series (a pre-release magic) would compile differently.
        let who = match interpreters.for_series(series) {
            Some(_) => format!("{series} (magic {})", info.value),
            None => series.to_string(),
        };
        return Looked::NoInterpreter(who);
    };
    let interpreter = &interpreters.all()[index];
    let levels = match levels_for(name, series.major) {
        Ok(l) => l,
        Err(why) => return Looked::Skip(why.to_string()),
    };
    let (source, source_id) = match read_file(source_path, "the source") {
        Ok(read) => read,
        Err(e) => return unreadable("its source", e),
    };
    let key = store::key(
        interpreter,
        &levels,
        &blake3::hash(&cache),
        &blake3::hash(&source),
    );
    Looked::Keyed(Keyed {
        pending: Pending {
            entry: 0,
            levels,
            key,
        },
        interpreter: index,
        magic: raw,
        read: Identities {
            cache: cache_id,
            source: source_id,
        },
    })
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

/// What a job was made of: the key of exactly the bytes sent, and for [`Recall::remember`]
/// the cache's magic and the identities of the files those bytes were read from.
#[derive(Clone, Copy)]
struct Sent {
    key: store::Key,
    magic: [u8; 4],
    read: Identities,
}

/// The job for one pending cache, read again now (so the bytes proven are the bytes
/// hashed).
fn make_job(
    cache_path: &Path,
    source_path: &Path,
    levels: &[u8],
    interpreter: &Interpreter,
) -> Result<(Job, Sent), JobError> {
    let (cache, cache_id) = read_file(cache_path, "the cache").map_err(JobError::Cache)?;
    let (source, source_id) = read_file(source_path, "the source").map_err(JobError::Source)?;
    let h = header::parse(&cache).map_err(JobError::Header)?;
    let sent = Sent {
        key: store::key(
            interpreter,
            levels,
            &blake3::hash(&cache),
            &blake3::hash(&source),
        ),
        magic: h.magic.raw,
        read: Identities {
            cache: cache_id,
            source: source_id,
        },
    };
    let body = cache[h.byte_len()..].to_vec();
    Ok((
        Job::Prove {
            source,
            filename: source_path.to_path_buf(),
            body,
            optimize_levels: levels.to_vec(),
        },
        sent,
    ))
}

/// What one group of pending caches needs while its pool runs.
struct Group<'a> {
    pending: &'a [Pending],
    /// The interpreter's index in the [`Interpreters`].
    index: usize,
    interpreter: &'a Interpreter,
    cx: &'a Context<'a>,
}

/// Prove one interpreter's pending caches with a pool of its workers.
fn prove_group(
    report: &mut Report,
    group: &Group<'_>,
    store: &mut Store,
    summary: &mut DeepSummary,
) -> Result<(), PoolError> {
    let pending = group.pending;
    let config = group.cx.config;
    let workers = config.workers.max(1).min(pending.len());
    let mut pool = Pool::start(group.interpreter, workers, config.timeout)?;
    pool.set_interrupt(Arc::clone(group.cx.interrupt));
    // The worker's own hello may have corrected a remembered version.
    let prover = pool.interpreter().display_name();
    // What was actually sent (the file may have changed since phase 1).
    let sent: RefCell<HashMap<usize, Sent>> = RefCell::new(HashMap::new());
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
            Ok((job, what)) => {
                sent.borrow_mut().insert(i, what);
                Some(job)
            }
            Err(why) => {
                unsent.borrow_mut().push((i, why));
                None
            }
        }
    };
    let on_done = |i: usize, outcome: JobOutcome| {
        group.cx.bar.inc(1);
        let entry = &mut entries[pending[i].entry];
        let what = sent.borrow_mut().remove(&i);
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
        if let (Proof::Equal, Some(what)) = (&proof, &what) {
            group
                .cx
                .recall
                .remember(entry, &what.read, what.magic, group.index);
        }
        store.insert(what.map_or(pending[i].key, |w| w.key), proof);
    };
    let outcome = pool.run_with(pending.len(), make, on_done);
    for (i, why) in unsent.into_inner() {
        group.cx.bar.inc(1);
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
