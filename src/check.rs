//! `pycguard check`: walk → facts → verdict → report.
//!
//! Judging happens on the walker's threads as caches are found (so reading and parsing run
//! in parallel with the directory walk), and only the entries the printer needs are kept:
//! a check of a healthy 100k-file tree keeps counts, not 100k records.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::config::ScanConfig;
use crate::facts::{self, DirSources};
use crate::report::{Entry, Report, ScanError};
use crate::store::scan_memo::Memo;
use crate::verdict::{self, CacheFacts, State};
use crate::walk::{self, Candidate, WalkEvent};

/// Which entries the report keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Every cache (JSON output lists fresh ones too).
    All,
    /// Everything but fresh caches (human output prints problems only).
    Problems,
}

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(64 * 1024));
}

/// Judge one found cache; the error says why it could not be judged.
pub fn judge_candidate(
    candidate: Candidate,
    dirs: &DirSources,
    memo: &Memo,
) -> Result<Entry, ScanError> {
    READ_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        let gathered = facts::gather(&candidate, &mut buf, dirs, memo).map_err(|e| ScanError {
            path: candidate.path.clone(),
            message: e.to_string(),
        })?;
        let source_name = candidate.source.as_deref().and_then(|s| s.file_name());
        let verdict = match gathered.not_a_file {
            Some(found) => {
                verdict::judge_not_a_file(&candidate.name, gathered.source, source_name, found)
            }
            None => verdict::judge(&CacheFacts {
                name: &candidate.name,
                location: candidate.location,
                bytes: &buf,
                body: &gathered.body,
                cache_mtime_ns: gathered.cache_mtime_ns,
                cache_ctime_ns: gathered.cache_ctime_ns,
                now_ns: now_ns(),
                source_name,
                source: gathered.source,
            }),
        };
        if buf.capacity() > 4 << 20 {
            // Do not keep one huge file's buffer for the rest of the scan.
            *buf = Vec::with_capacity(64 * 1024);
        }
        Ok(Entry {
            path: candidate.path,
            root: candidate.root,
            name: candidate.name,
            source: candidate.source,
            verdict,
        })
    })
}

/// The clock now, in nanoseconds since the epoch (read per cache: a vDSO call, and a long
/// scan must not take a source edited while it runs for one with a future mtime).
fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Scan every root of `config` and judge every cache found.
pub fn run(config: &ScanConfig, keep: Keep) -> Report {
    let report = Mutex::new(Report::default());
    let dirs = DirSources::default();
    let memo = match &config.cache_dir {
        Some(dir) => Memo::load(dir),
        None => Memo::disabled(),
    };
    let sink = |event: WalkEvent| {
        let outcome = match event {
            WalkEvent::Cache(candidate) => judge_candidate(candidate, &dirs, &memo),
            WalkEvent::Error { path, message } => Err(ScanError { path, message }),
            WalkEvent::Debris { .. } | WalkEvent::Source { .. } => return,
        };
        let mut report = report.lock().expect("poisoned");
        match outcome {
            Ok(entry) => {
                report.summary.add(&entry.verdict);
                if keep == Keep::All || entry.verdict.state != State::Fresh {
                    report.entries.push(entry);
                }
            }
            Err(error) => report.errors.push(error),
        }
    };
    let mut walked = walk::WalkSummary::default();
    for root in &config.roots {
        walked.merge(walk::walk_root(root, &config.walk, &sink));
    }
    memo.save();
    let mut report = report.into_inner().expect("poisoned");
    report.walk = walked;
    report.sort();
    report
}

/// Paths of every root, for messages.
pub fn root_paths(config: &ScanConfig) -> Vec<PathBuf> {
    config.roots.iter().map(|r| r.path.clone()).collect()
}
