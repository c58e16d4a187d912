//! The scan pipeline: walk → facts → verdict → report. Every command that looks at a
//! tree (`check`, `fix`, `clean`, `compile`, `interpreters`) goes through [`scan`], the
//! one sink of the walk, and so sees each cache judged the same way.
//!
//! Judging happens on the walker's threads as caches are found (so reading and parsing run
//! in parallel with the directory walk), and only what the consumer keeps is kept: a
//! check of a healthy 100k-file tree keeps counts, not 100k records ([`run`]).
//!
//! A cache that vanishes between the directory listing and its read (another run removed
//! it) is not reported at all: it is no longer part of the tree.
//!
//! Two rules that more than one command needs live here, once:
//! - **sourceless or ghost without reading the cache** ([`Unjudged::presumed_sourceless`],
//!   for `clean`, which removes without reading): a legacy cache whose source is gone is
//!   a ghost when its directory still holds sources and a sourceless distribution when it
//!   holds none — the fact [`crate::facts`] gathers (`SourceFacts::Missing {
//!   dir_has_sources }`) and [`crate::verdict`] decides on;
//! - **which interpreter a cache is for, by tag** ([`interpreter_tag`], what `clean --tag`
//!   matches, exactly): the tag in its name without pytest's suffix, else the tag of the
//!   interpreter its magic number names.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::facts::{self, DirSources};
use crate::layout::CacheName;
use crate::pyc::magic::{self, Series};
use crate::report::{Entry, Identities, Report, ScanError};
use crate::store::scan_memo::Memo;
use crate::verdict::{self, CacheFacts, SourceFacts, State};
use crate::walk::{
    self, Candidate, DirContext, FoundAs, Root, WalkEvent, WalkOptions, WalkSummary,
};

/// Which entries the report keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Every cache (JSON output lists fresh ones too).
    All,
    /// Everything but fresh caches (human output prints problems only).
    Problems,
}

/// What a scan learns besides caches, and how much it learns about each cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanWith {
    /// Read and judge every cache ([`Scanned::Judged`]); else report it unread
    /// ([`Scanned::Unjudged`]).
    pub judge: bool,
    /// Report `.py` sources too (`compile`).
    pub sources: bool,
    /// Report tool-cache directories instead of walking them (`clean --debris`).
    pub debris: bool,
}

impl ScanWith {
    /// Judge every cache; nothing else.
    pub const CACHES: ScanWith = ScanWith {
        judge: true,
        sources: false,
        debris: false,
    };
}

/// One thing a scan found, delivered on the walker thread that found it.
#[derive(Debug)]
pub enum Scanned {
    /// A cache, judged.
    Judged(Entry),
    /// A cache, found but not read.
    Unjudged(Unjudged),
    /// A `.py` source (see [`ScanWith::sources`]).
    Source { root: Arc<Path>, path: PathBuf },
    /// A tool-cache directory (see [`ScanWith::debris`]).
    Debris { root: Arc<Path>, path: PathBuf },
    /// A cache or directory that could not be read; the scan went on.
    Error(ScanError),
}

/// A cache found but not read (see [`ScanWith::judge`]).
#[derive(Debug)]
pub struct Unjudged {
    pub candidate: Candidate,
    dirs: Arc<DirSources>,
}

impl Unjudged {
    /// Is it a cache of a sourceless distribution, as its verdict would say? Learned
    /// without reading it (see the module docs; a damaged one would be judged `corrupt`).
    pub fn presumed_sourceless(&self) -> bool {
        let c = &self.candidate;
        let (CacheName::Legacy { .. }, Some(source)) = (&c.name, &c.source) else {
            return false;
        };
        if source.is_file() {
            return false;
        }
        matches!(
            facts::missing(c, source, &self.dirs),
            SourceFacts::Missing {
                dir_has_sources: false
            }
        )
    }

    /// The tag of the interpreter it is for ([`interpreter_tag`]); a legacy cache's magic
    /// number is read for it (4 bytes, never blocking: a FIFO or device is not opened).
    pub fn interpreter_tag(&self) -> Option<String> {
        let c = &self.candidate;
        if c.name.tag().is_some() {
            return interpreter_tag(&c.name, None);
        }
        if !matches!(c.found_as, FoundAs::File | FoundAs::Symlink) {
            return None;
        }
        let head = crate::read::read_head(&c.path, crate::read::Follow::Yes, 4).ok()?;
        let series = magic::lookup(head.try_into().ok()?)?.series;
        interpreter_tag(&c.name, Some(series))
    }
}

/// The cache tag of the interpreter a cache is for: the tag in its name without pytest's
/// suffix (`cpython-312-pytest-8.3.4` is for `cpython-312`), else the tag of `series`
/// (from its magic number); a series older than `__pycache__` gets `cpython-27`.
/// `clean --tag` selects the caches whose tag this is, exactly.
pub fn interpreter_tag(name: &CacheName, series: Option<Series>) -> Option<String> {
    if let Some(tag) = name.tag() {
        return Some(tag.split("-pytest-").next().unwrap_or(tag).to_owned());
    }
    let series = series?;
    Some(series.cache_tag().unwrap_or_else(|| {
        format!(
            "{}-{}{}",
            series.implementation.name(),
            series.major,
            series.minor
        )
    }))
}

/// A `--tag` value that names no interpreter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("not a cache tag (an interpreter's sys.implementation.cache_tag, such as cpython-312 or pypy310)")]
    Malformed,
    #[error("names pytest's caches; give the interpreter's tag (cpython-312), which matches its pytest caches too")]
    Pytest,
    #[error("is empty; an empty tag would select every cache (give one such as cpython-312)")]
    Empty,
    #[error("cache tags are lowercase: {0}")]
    Uppercase(String),
    #[error("matches no cache: {implementation}'s tags are spelled {tag}")]
    Misspelled {
        implementation: &'static str,
        tag: String,
    },
}

/// Check a `--tag` value (also the config file's `tag`): one an interpreter could have
/// (a malformed tag matches nothing, and that is an error, not an empty run).
pub fn check_tag(tag: &str) -> Result<(), TagError> {
    if tag.trim().is_empty() {
        return Err(TagError::Empty);
    }
    if tag.contains("-pytest-") {
        return Err(TagError::Pytest);
    }
    if tag.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(TagError::Uppercase(tag.to_ascii_lowercase()));
    }
    // CPython writes `cpython-312`, PyPy `pypy310`: the other spelling matches nothing.
    if let Some(digits) = tag.strip_prefix("cpython") {
        if digits.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            return Err(TagError::Misspelled {
                implementation: "CPython",
                tag: format!("cpython-{digits}"),
            });
        }
    }
    if let Some(digits) = tag.strip_prefix("pypy-") {
        return Err(TagError::Misspelled {
            implementation: "PyPy",
            tag: format!("pypy{digits}"),
        });
    }
    if !crate::layout::is_tag(tag) {
        return Err(TagError::Malformed);
    }
    Ok(())
}

/// What to scan and how (resolved by `settings`).
#[derive(Clone, Debug)]
pub struct ScanConfig {
    pub roots: Vec<Root>,
    pub walk: WalkOptions,
    /// pycguard's cache directory; `None` with `--no-cache` (or when no home is known).
    pub cache_dir: Option<PathBuf>,
}

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(64 * 1024));
}

/// Judge one found cache; the error says why it could not be judged.
pub fn judge_candidate(
    candidate: Candidate,
    dir: DirContext<'_>,
    dirs: &DirSources,
    memo: &Memo,
) -> Result<Entry, ScanError> {
    judge_found(candidate, dir, dirs, memo).map_err(|(path, e)| ScanError {
        path,
        message: e.to_string(),
    })
}

/// [`judge_candidate`], with the typed error and the cache's path.
fn judge_found(
    candidate: Candidate,
    dir: DirContext<'_>,
    dirs: &DirSources,
    memo: &Memo,
) -> Result<Entry, (PathBuf, facts::FactsError)> {
    READ_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        let gathered = facts::gather(&candidate, dir, &mut buf, dirs, memo)
            .map_err(|e| (candidate.path.clone(), e))?;
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
        let identities = match (gathered.cache_identity, gathered.source_identity) {
            (Some(cache), Some(source)) => Some(Identities { cache, source }),
            _ => None,
        };
        Ok(Entry {
            path: candidate.path,
            root: candidate.root,
            name: candidate.name,
            source: candidate.source,
            verdict,
            identities,
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

/// Scan every root of `config`: each walker thread calls `make_sink` once and gives the
/// sink it returns everything that thread finds, judged as `with` says. The scan memo is
/// loaded before and saved after (when judging).
pub fn scan<M, S>(config: &ScanConfig, with: ScanWith, make_sink: &M) -> WalkSummary
where
    M: Fn() -> S + Sync,
    S: FnMut(Scanned) + Send,
{
    let dirs = Arc::new(DirSources::default());
    let memo = match (&config.cache_dir, with.judge) {
        (Some(dir), true) => Memo::load(dir),
        _ => Memo::disabled(),
    };
    let mut options = config.walk.clone();
    options.report_sources = with.sources;
    options.report_debris = with.debris;
    let make_walk_sink = || {
        let mut sink = make_sink();
        let (dirs, memo) = (&dirs, &memo);
        move |event: WalkEvent, dir: DirContext<'_>| {
            sink(match event {
                WalkEvent::Cache(candidate) if with.judge => {
                    match judge_found(candidate, dir, dirs, memo) {
                        Ok(entry) => Scanned::Judged(entry),
                        // Listed, then gone before it could be read (another run removed
                        // it): not part of the tree any more, and no error of it.
                        Err((_, facts::FactsError::CacheVanished)) => return,
                        Err((path, e)) => Scanned::Error(ScanError {
                            path,
                            message: e.to_string(),
                        }),
                    }
                }
                WalkEvent::Cache(candidate) => Scanned::Unjudged(Unjudged {
                    candidate,
                    dirs: Arc::clone(dirs),
                }),
                WalkEvent::Error { path, error } => Scanned::Error(ScanError {
                    path,
                    message: crate::read::io_message(&error),
                }),
                WalkEvent::Source { root, path } => Scanned::Source { root, path },
                WalkEvent::Debris { root, path } => Scanned::Debris { root, path },
            })
        }
    };
    let mut walked = WalkSummary::default();
    for root in &config.roots {
        walked.merge(walk::walk_root_per_thread(root, &options, &make_walk_sink));
    }
    memo.save();
    walked
}

/// Scan every root of `config` and judge every cache found: the report of `check`.
pub fn run(config: &ScanConfig, keep: Keep) -> Report {
    run_with(config, &|entry: &mut Entry| {
        keep == Keep::All || entry.verdict.state != State::Fresh
    })
}

/// [`run`], with `keep` deciding on each judged entry, on the walker's threads, whether
/// the report keeps it; it may change the entry first (`check --deep` upgrades the
/// verdicts of caches it recalls a proof for, and keeps only what it still has to prove).
pub fn run_with(config: &ScanConfig, keep: &(dyn Fn(&mut Entry) -> bool + Sync)) -> Report {
    let report = Mutex::new(Report::default());
    let make_sink = || {
        |found: Scanned| match found {
            Scanned::Judged(mut entry) => {
                let kept = keep(&mut entry);
                let mut report = report.lock().expect("poisoned");
                report.summary.add(&entry.verdict);
                if kept {
                    report.entries.push(entry);
                } else {
                    report.settled.add(&entry.verdict);
                }
            }
            Scanned::Error(error) => report.lock().expect("poisoned").errors.push(error),
            Scanned::Unjudged(_) | Scanned::Source { .. } | Scanned::Debris { .. } => {}
        }
    };
    let walked = scan(config, ScanWith::CACHES, &make_sink);
    let mut report = report.into_inner().expect("poisoned");
    report.walk = walked;
    report.sort();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyc::magic::Implementation;

    fn tagged(tag: &str) -> CacheName {
        CacheName::Tagged {
            stem: "m".into(),
            tag: tag.into(),
            optimization: 0,
        }
    }

    #[test]
    fn tags_match_the_interpreter_exactly() {
        let legacy = CacheName::Legacy {
            stem: "m".into(),
            pyo: false,
        };
        assert_eq!(
            interpreter_tag(&tagged("cpython-311"), None).as_deref(),
            Some("cpython-311")
        );
        assert_eq!(
            interpreter_tag(&tagged("cpython-312-pytest-8.3.4"), None).as_deref(),
            Some("cpython-312")
        );
        assert_eq!(
            interpreter_tag(&legacy, Some(Series::cpython(3, 11))).as_deref(),
            Some("cpython-311")
        );
        assert_eq!(
            interpreter_tag(&legacy, Some(Series::cpython(2, 7))).as_deref(),
            Some("cpython-27")
        );
        assert_eq!(
            interpreter_tag(
                &legacy,
                Some(Series {
                    implementation: Implementation::PyPy,
                    major: 3,
                    minor: 9
                })
            )
            .as_deref(),
            Some("pypy39")
        );
        assert_eq!(interpreter_tag(&legacy, None), None);
    }

    #[test]
    fn tag_values_are_checked() {
        for ok in [
            "cpython-311",
            "cpython-31",
            "pypy310",
            "cpython-27",
            "pypy3-71",
        ] {
            assert_eq!(check_tag(ok), Ok(()), "{ok}");
        }
        for bad in ["cpython", "cpython-3.11", "311", "cpython 311", "-311"] {
            assert_eq!(check_tag(bad), Err(TagError::Malformed), "{bad}");
        }
        assert_eq!(check_tag("cpython-312-pytest-8.3.4"), Err(TagError::Pytest));
        // Tags that match nothing, each said how.
        assert_eq!(check_tag(""), Err(TagError::Empty));
        assert_eq!(check_tag("  "), Err(TagError::Empty));
        assert_eq!(
            check_tag("CPython-39"),
            Err(TagError::Uppercase("cpython-39".into()))
        );
        assert_eq!(
            check_tag("cpython39"),
            Err(TagError::Misspelled {
                implementation: "CPython",
                tag: "cpython-39".into()
            })
        );
        assert_eq!(
            check_tag("pypy-310"),
            Err(TagError::Misspelled {
                implementation: "PyPy",
                tag: "pypy310".into()
            })
        );
    }
}
