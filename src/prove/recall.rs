//! Recalling proofs by identity while the scan runs: the warm path of `check --deep`.
//!
//! A cache the [`proven`](crate::store::proven) memo knows — the same cache file (by
//! identity), proven equal against the same source file (by identity) by the same
//! compiler build at the same optimisation levels — gets its proof here, on the scan's
//! threads, as soon as it is judged: no file is opened, nothing is hashed, no interpreter
//! runs, and the entry need not be kept for the deep stage. So a warm proof of an
//! unchanged tree costs about what a shallow check does, and its memory stays flat in the
//! size of the tree. Everything else (`apply` answers `false`) goes on to the deep stage,
//! which proves by content and then [`Recall::remember`]s what it proved equal.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::interpreters::{Interpreter, Interpreters};
use crate::pyc::magic;
use crate::report::{Entry, Identities};
use crate::store::proven::{self, ProvenMemo, ProverId};
use crate::store::RunStart;

use super::compare;
use super::store::{Proof, Prover};

/// The proven memo of one run, with what it needs to match records: the identity of
/// every interpreter's build.
pub struct Recall<'a> {
    memo: ProvenMemo,
    interpreters: &'a Interpreters,
    provers: Vec<ProverId>,
    names: Vec<String>,
    recalled: AtomicUsize,
    /// Distinguishes this recall's entries in the threads' [`CHOSEN`] cache.
    id: u64,
}

static NEXT_RECALL_ID: AtomicU64 = AtomicU64::new(1);

/// The interpreter a recall chose for the caches of one magic number in one directory.
struct Chosen {
    recall: u64,
    dir: PathBuf,
    magic: [u8; 4],
    choice: Option<usize>,
}

thread_local! {
    /// The last choice this thread made: caches of one directory come one after another,
    /// and choosing among interpreters that share a magic number resolves the path.
    static CHOSEN: RefCell<Option<Chosen>> = const { RefCell::new(None) };
}

impl<'a> Recall<'a> {
    /// Open the memo in `cache_dir` (`None`: `--no-cache`, nothing recalled). Call before
    /// the scan: the memo's run starts now, before any file it may learn about is read.
    pub fn open(cache_dir: Option<&Path>, interpreters: &'a Interpreters) -> Recall<'a> {
        let memo = match cache_dir {
            Some(dir) => ProvenMemo::load(dir, RunStart::now()),
            None => ProvenMemo::disabled(),
        };
        Recall {
            memo,
            interpreters,
            provers: interpreters
                .all()
                .iter()
                .map(|i| proven::prover_id(&Prover::identity(i)))
                .collect(),
            names: interpreters
                .all()
                .iter()
                .map(Interpreter::display_name)
                .collect(),
            recalled: AtomicUsize::new(0),
            id: NEXT_RECALL_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Caches whose proof was recalled.
    pub fn recalled(&self) -> usize {
        self.recalled.load(Ordering::Relaxed)
    }

    /// Upgrade `entry` with a proof remembered for exactly its files; whether there was one.
    pub fn apply(&self, entry: &mut Entry) -> bool {
        if !self.memo.is_enabled() || !super::provable(entry) || entry.name.is_pytest() {
            return false;
        }
        let Some(ids) = entry.identities else {
            return false;
        };
        let Some(recalled) = self.memo.recall(&ids.cache) else {
            return false;
        };
        let Some(index) = self.choose(recalled.magic, &entry.path) else {
            return false;
        };
        let Some(pair) = self.pair(entry, &ids, recalled.magic, index) else {
            return false;
        };
        if pair != recalled.pair {
            return false;
        }
        compare::apply_to(entry, &Proof::Equal, &self.names[index]);
        self.recalled.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Remember that `entry`'s cache (magic `magic`) was proven equal by interpreter
    /// `index`, when `read` — the identities of the files whose bytes were proven — are
    /// the ones the scan saw (else the files changed meanwhile: nothing is remembered).
    pub fn remember(&self, entry: &Entry, read: &Identities, magic: [u8; 4], index: usize) {
        let Some(ids) = entry.identities else {
            return;
        };
        if ids != *read {
            return;
        }
        if let Some(pair) = self.pair(entry, &ids, magic, index) {
            self.memo.remember(ids.cache, magic, &ids.source, pair);
        }
    }

    /// The pair `entry` is proven against with interpreter `index`.
    fn pair(
        &self,
        entry: &Entry,
        ids: &Identities,
        magic: [u8; 4],
        index: usize,
    ) -> Option<[u8; 16]> {
        let series = magic::lookup(magic)?.series;
        let levels = super::levels_for(&entry.name, series.major).ok()?;
        Some(proven::pair(&ids.source, &self.provers[index], &levels))
    }

    /// The interpreter that proves a cache of `magic` at `path` (a regular file, not a
    /// link): [`Interpreters::for_cache`], asked once per directory.
    fn choose(&self, magic: [u8; 4], path: &Path) -> Option<usize> {
        let dir = path.parent().unwrap_or(Path::new(""));
        CHOSEN.with(|chosen| {
            let mut chosen = chosen.borrow_mut();
            if let Some(c) = chosen.as_ref() {
                if c.recall == self.id && c.magic == magic && c.dir == dir {
                    return c.choice;
                }
            }
            let choice = self.interpreters.for_cache(magic, path);
            *chosen = Some(Chosen {
                recall: self.id,
                dir: dir.to_path_buf(),
                magic,
                choice,
            });
            choice
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpreters::Origin;
    use crate::layout::CacheName;
    use crate::pyc::header::InvalidationMode;
    use crate::pyc::magic::Series;
    use crate::store::FileIdentity;
    use crate::verdict::{Checked, Severity, State, Verdict};
    use std::sync::Arc;

    const MAGIC: [u8; 4] = [0xcb, 0x0d, 0x0d, 0x0a];

    fn python(version: &str, ino: u64) -> Interpreter {
        Interpreter {
            path: PathBuf::from("/usr/bin/python3.12"),
            resolved: PathBuf::from("/usr/bin/python3.12"),
            stamp: FileIdentity {
                dev: 1,
                ino,
                size: 9,
                mtime_ns: 1,
                ctime_ns: 1,
            },
            version: version.into(),
            series: Some(Series::cpython(3, 12)),
            magic: MAGIC,
            cache_tag: Some("cpython-312".into()),
            implementation: "cpython".into(),
            version_info: (3, 12),
            origin: Origin::Path,
            executable: PathBuf::from("/usr/bin/python3.12"),
            prefixes: vec![PathBuf::from("/usr")],
            venv: None,
            remembered_in: None,
        }
    }

    fn id(ino: u64) -> FileIdentity {
        FileIdentity {
            dev: 7,
            ino,
            size: 100,
            mtime_ns: 5,
            ctime_ns: 6,
        }
    }

    /// A fresh header verdict for files that do not exist: recalling must not read them.
    fn entry(state: State, optimization: u8, ids: Option<Identities>) -> Entry {
        Entry {
            path: PathBuf::from("/nonexistent/__pycache__/m.cpython-312.pyc"),
            root: Arc::from(Path::new("/nonexistent")),
            name: CacheName::Tagged {
                stem: "m".into(),
                tag: "cpython-312".into(),
                optimization,
            },
            source: Some(PathBuf::from("/nonexistent/m.py")),
            verdict: Verdict {
                state,
                severity: Severity::Ok,
                evidence: None,
                unproven: None,
                interpreter: Some(Series::cpython(3, 12)),
                tag: Some("cpython-312".into()),
                invalidation: Some(InvalidationMode::Timestamp),
                optimization: Some(optimization),
                checked: Checked::Header,
                future_source_mtime: None,
            },
            identities: ids,
        }
    }

    #[test]
    fn a_remembered_pair_is_recalled_without_reading_and_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        let ids = Identities {
            cache: id(1),
            source: id(2),
        };
        let interpreters = Interpreters::from_list(vec![python("3.12.1", 40)]);
        let recall = Recall::open(Some(dir.path()), &interpreters);
        recall.remember(&entry(State::Fresh, 0, Some(ids)), &ids, MAGIC, 0);
        // Read while the files changed: not remembered.
        let moved = Identities {
            source: id(3),
            ..ids
        };
        recall.remember(&entry(State::Fresh, 0, Some(moved)), &ids, MAGIC, 0);

        let recall = Recall::open(Some(dir.path()), &interpreters);
        let mut e = entry(State::Fresh, 0, Some(ids));
        assert!(recall.apply(&mut e));
        assert_eq!(
            (e.verdict.state, e.verdict.checked),
            (State::Fresh, Checked::Deep)
        );
        assert_eq!(recall.recalled(), 1);
        let misses = [
            ("another source", entry(State::Fresh, 0, Some(moved))),
            ("no identities", entry(State::Fresh, 0, None)),
            ("another level", entry(State::Fresh, 1, Some(ids))),
            ("stale by header", entry(State::Stale, 0, Some(ids))),
        ];
        for (what, mut e) in misses {
            assert!(!recall.apply(&mut e), "{what}");
            assert_eq!(e.verdict.checked, Checked::Header, "{what}");
        }
        // A suspect cache proven equal becomes fresh, with the proof as its evidence.
        let mut suspect = entry(State::Suspect, 0, Some(ids));
        assert!(recall.apply(&mut suspect));
        assert_eq!(suspect.verdict.state, State::Fresh);
        // Another build of the same version (its binary replaced): not recalled.
        let rebuilt = Interpreters::from_list(vec![python("3.12.1", 41)]);
        let recall = Recall::open(Some(dir.path()), &rebuilt);
        assert!(!recall.apply(&mut entry(State::Fresh, 0, Some(ids))));
        // --no-cache: nothing.
        let recall = Recall::open(None, &interpreters);
        assert!(!recall.apply(&mut entry(State::Fresh, 0, Some(ids))));
    }
}
