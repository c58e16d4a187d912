//! The result of a scan: one entry per cache, the per-state summary, and the entries that
//! could not be judged. Printers read it; actions (fix, clean) consume it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::layout::CacheName;
use crate::store::FileIdentity;

use crate::verdict::{Checked, Severity, State, Verdict};

/// One judged cache.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: PathBuf,
    /// Where the walk that found it started (see [`crate::walk::Candidate::root`]).
    pub root: Arc<Path>,
    /// What the name says (tag, optimisation level, legacy or not).
    pub name: CacheName,
    pub source: Option<PathBuf>,
    pub verdict: Verdict,
    /// The identities of the cache and its source as the scan saw them, when both are
    /// regular files and the cache was not reached through a link: what `check --deep`
    /// recalls proofs by ([`crate::store::proven`]).
    pub identities: Option<Identities>,
}

/// A cache's and its source's identities, from the scan's own `stat`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identities {
    pub cache: FileIdentity,
    pub source: FileIdentity,
}

/// A cache (or directory) that could not be judged; the scan went on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanError {
    pub path: PathBuf,
    pub message: String,
}

/// Counts per state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    counts: [usize; State::ALL.len()],
    /// Fresh and suspect caches whose code was not compared with the source.
    pub header_only: usize,
    /// Of those, the ones whose header holds no size (Python 2, 3.0–3.2): judged by the
    /// mtime alone, as their interpreter does.
    pub header_only_unsized: usize,
    /// Caches whose source's mtime is later than the clock (clock skew, or set by a
    /// tool): that mtime is no evidence of when the source changed.
    pub future_source_mtimes: usize,
    /// Caches of error severity, and of warning severity (they decide the exit status).
    pub errors: usize,
    pub warnings: usize,
    pub worst: Option<Severity>,
}

impl Summary {
    pub fn add(&mut self, verdict: &Verdict) {
        self.counts[verdict.state as usize] += 1;
        if matches!(verdict.state, State::Fresh | State::Suspect)
            && verdict.checked == Checked::Header
        {
            self.header_only += 1;
            if verdict.interpreter.is_some_and(|s| !s.header_has_size()) {
                self.header_only_unsized += 1;
            }
        }
        if verdict.future_source_mtime.is_some() {
            self.future_source_mtimes += 1;
        }
        match verdict.severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
            _ => {}
        }
        self.worst = self.worst.max(Some(verdict.severity));
    }

    pub fn count(&self, state: State) -> usize {
        self.counts[state as usize]
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// Everything a scan found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The entries kept (all of them, or only the non-fresh ones), sorted by path.
    pub entries: Vec<Entry>,
    /// Counts of every cache judged, kept or not.
    pub summary: Summary,
    /// Counts of the caches judged but not kept (so that a stage that changes the kept
    /// entries' verdicts can count again: `settled` plus the kept entries).
    pub settled: Summary,
    /// Sorted by path.
    pub errors: Vec<ScanError>,
    /// What the walk skipped and recognised (environments, pycache prefixes).
    pub walk: crate::walk::WalkSummary,
}

impl Report {
    /// Count again after the kept entries' verdicts changed.
    pub fn recount(&mut self) {
        self.summary = self.settled.clone();
        for entry in &self.entries {
            self.summary.add(&entry.verdict);
        }
    }

    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
        self.errors.sort_by(|a, b| a.path.cmp(&b.path));
    }
}
