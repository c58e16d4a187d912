//! The verdict: one state per cache, decided from gathered facts exactly as the importer of
//! the series that wrote (or reads) the cache would decide — plus what the importer misses.
//!
//! Facts come in (name, location, bytes, the source's stat and hash), a [`Verdict`] goes
//! out; this module does no I/O, so every rule is unit-tested here and every rule is also
//! checked against caches written by real interpreters in `tests/`. The order of the
//! checks mirrors `SourceLoader.get_code`: where the importer looks, magic, header, flags,
//! mtime/size or hash, then `marshal.loads` of the body.
//!
//! The verdict says what was seen as typed [`Evidence`] (two sizes, two hashes, two
//! instants, a header error), not in words: `crate::messages` writes the reason, and only
//! there are dates put in the local time zone. So the judge formats nothing.

mod evidence;

use std::ffi::OsStr;
use std::fmt;

pub use self::evidence::{Damage, Evidence, Gone, NotAFileAt, Reader};
use crate::layout::CacheName;
use crate::pyc::header::{
    self, Header, HeaderError, Invalidation, InvalidationMode, SourceStat, TimestampCheck,
    FLAG_CHECK_SOURCE, FLAG_HASH_BASED,
};
use crate::pyc::magic::{self, Series};
use crate::pyc::marshal::{self, MarshalError};
use crate::stat::FileKind;

/// The state of one cache. Each cache gets exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Fresh,
    Stale,
    Suspect,
    HiddenStale,
    Ghost,
    Sourceless,
    Orphan,
    Corrupt,
    Unknown,
}

impl State {
    /// Every state, in the order of the JSON summary.
    pub const ALL: [State; 9] = [
        State::Fresh,
        State::Stale,
        State::Suspect,
        State::HiddenStale,
        State::Ghost,
        State::Sourceless,
        State::Orphan,
        State::Corrupt,
        State::Unknown,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            State::Fresh => "fresh",
            State::Stale => "stale",
            State::Suspect => "suspect",
            State::HiddenStale => "hidden-stale",
            State::Ghost => "ghost",
            State::Sourceless => "sourceless",
            State::Orphan => "orphan",
            State::Corrupt => "corrupt",
            State::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// What the state means for someone running the code, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            State::Fresh => "matches its source",
            State::Stale => "out of date; the interpreter will notice and recompile",
            State::Suspect => "source changed after the cache was written, but the header still matches: the interpreter trusts it",
            State::HiddenStale => "does not match its source, yet the interpreter runs it",
            State::Ghost => "source deleted, but the interpreter still imports this file",
            State::Sourceless => "sourceless distribution (no sources in the directory)",
            State::Orphan => "never used by any interpreter",
            State::Corrupt => "not a usable cache",
            State::Unknown => "written by no interpreter pycguard knows",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How much a state matters; decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// How far a verdict was proven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Checked {
    /// Header fields against the source's stat (what the importer checks).
    Header,
    /// The header's SipHash against the source bytes.
    Hash,
    /// The code object against a fresh compile of the source (`check --deep`).
    Deep,
}

impl Checked {
    pub fn name(self) -> &'static str {
        match self {
            Checked::Header => "header",
            Checked::Hash => "hash",
            Checked::Deep => "deep",
        }
    }
}

/// The judgement of one cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub state: State,
    pub severity: Severity,
    /// What decided the state; `None` for an unremarkable fresh cache. Worded (the
    /// `reason` of the output) by `crate::messages::reason`. Boxed: most caches have
    /// none, and a verdict stays as small as one that held a reason string.
    pub evidence: Option<Box<Evidence>>,
    /// Why `check --deep` could not prove this cache, in the words of the stage that
    /// tried; it stays judged by its header.
    pub unproven: Option<String>,
    /// The series that wrote the cache (from its magic; from its tag when the magic is unreadable).
    pub interpreter: Option<Series>,
    pub tag: Option<String>,
    /// How the header says it is kept in step with its source, when it was readable.
    pub invalidation: Option<InvalidationMode>,
    pub optimization: Option<u8>,
    pub checked: Checked,
    /// The source's mtime (nanoseconds) when it is later than the clock at the check: a
    /// skewed clock or a tool set it, so it is no evidence of when the source changed.
    /// Reported on its own (JSON `future_source_mtime`, a note in the summary).
    pub future_source_mtime: Option<i128>,
}

/// Where the cache sits relative to the places importers look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Inside a `__pycache__` directory.
    PyCache,
    /// Under a `sys.pycache_prefix` tree.
    Prefix,
    /// Anywhere else (legacy location beside the sources).
    Beside,
}

/// What was learned about a cache's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFacts {
    Present {
        stat: SourceStat,
        /// The source's mtime in nanoseconds since the epoch.
        mtime_ns: i128,
        /// The source's ctime (last change of its inode: content, mtime, owner, links) in
        /// nanoseconds since the epoch. Unlike the mtime it cannot be set back.
        ctime_ns: i128,
        /// `source_hash` of the source bytes under the cache's magic, when the header is
        /// hash-based (the only time the source is read).
        hash: Option<u64>,
    },
    Missing {
        /// Does the cache's directory hold any `.py` file (ghost vs sourceless)?
        dir_has_sources: bool,
    },
    /// The name maps to no source.
    NotApplicable,
}

/// What is known about the marshal body after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyFacts {
    /// `marshal.loads` of the writing series returns a code object.
    Valid,
    /// It would fail (or return a non-code object), for this reason.
    Damaged(MarshalError),
    /// Not walked: no usable header, or a marshal dialect pycguard does not know (PyPy).
    Unchecked,
}

impl BodyFacts {
    /// Walk the body of a whole cache file as the series named by its header would.
    pub fn of(bytes: &[u8]) -> BodyFacts {
        let Ok(h) = header::parse(bytes) else {
            return BodyFacts::Unchecked;
        };
        if h.magic.series.implementation != magic::Implementation::CPython {
            return BodyFacts::Unchecked;
        }
        let Some(dialect) = marshal::Dialect::cpython(h.magic.value) else {
            return BodyFacts::Unchecked;
        };
        match marshal::validate(&bytes[h.byte_len()..], dialect) {
            Ok(()) => BodyFacts::Valid,
            Err(e) => BodyFacts::Damaged(e),
        }
    }
}

/// Everything the judge needs about one cache.
#[derive(Clone, Copy, Debug)]
pub struct CacheFacts<'a> {
    pub name: &'a CacheName,
    pub location: Location,
    /// The cache file, or at least its header (enough for [`header::parse`]).
    pub bytes: &'a [u8],
    pub body: &'a BodyFacts,
    /// The cache file's own mtime in nanoseconds since the epoch.
    pub cache_mtime_ns: i128,
    /// The cache file's own ctime in nanoseconds since the epoch.
    pub cache_ctime_ns: i128,
    /// The clock when the facts were gathered: a source mtime later than this was set by
    /// a tool or a skewed clock, not by an edit, and says nothing about when it changed.
    pub now_ns: i128,
    /// File name of the source (for the evidence), when the name maps to one.
    pub source_name: Option<&'a OsStr>,
    pub source: SourceFacts,
}

impl CacheFacts<'_> {
    /// The parsed header (cheap; parsed on demand rather than stored twice).
    pub fn header(&self) -> Result<Header, HeaderError> {
        header::parse(self.bytes)
    }
}

/// How much later than the cache file's ctime the source's ctime must be before it counts
/// as evidence that the source was replaced after the cache was written.
///
/// Nothing that writes caches changes the source's inode after it: importlib,
/// `py_compile` and `compileall` read the source and then write the cache, so a healthy
/// cache's ctime is later than its source's. A deploy that replaces sources comes seconds
/// to days after the interpreter wrote its caches. Tools that touch a tree at once
/// (`chown -R`, `chmod -R`) change a source and its cache a moment apart in whatever order
/// they walk: on the benchmark corpus (24,776 pairs) the largest gap with the source
/// second was 0.036 s (`chown -R`) and 0.032 s (`chmod -R`). Two seconds (the window in
/// which the scan memo, like git's index, also distrusts a file) covers those with a wide
/// margin and still catches the deploy. A cache copied along with its source (`cp -a`,
/// `rsync -a`, `tar -x`, a restore) is not judged by ctime at all, see [`written_in_place`].
pub const CTIME_TOLERANCE_NS: i128 = 2_000_000_000;

/// Is the cache file's inode as its writer left it (ctime within [`CTIME_TOLERANCE_NS`] of
/// its mtime)? Only then does its ctime say when the cache was written. A cache copied with
/// its mtime kept (`cp -a`, `rsync -a`, `tar -x`, a restore) or chowned later has a ctime
/// of that later moment, shared with its source within however long the copy of their
/// directory took: `tar -x` of the benchmark corpus put sources up to 3 s after their
/// `__pycache__` (a directory of large files extracted after its cache directory), more on
/// a slower disk. No tolerance bounds that, so such a cache's ctime is no evidence; its
/// header, and `check --deep`, still judge it.
pub fn written_in_place(facts: &CacheFacts<'_>) -> bool {
    facts.cache_ctime_ns - facts.cache_mtime_ns <= CTIME_TOLERANCE_NS
}

/// Judge one cache.
pub fn judge(facts: &CacheFacts<'_>) -> Verdict {
    let parsed = facts.header();
    let header = parsed.as_ref().ok();
    let tag = facts.name.tag().map(str::to_owned);
    let tag_series = tag.as_deref().and_then(magic::series_of_tag);
    let magic_series = header.map(|h| h.magic.series).or_else(|| {
        parsed
            .as_ref()
            .err()
            .and_then(|e| e.magic())
            .map(|m| m.series)
    });
    let mut v = Verdict {
        state: State::Fresh,
        severity: Severity::Ok,
        evidence: None,
        unproven: None,
        interpreter: magic_series.or(tag_series),
        tag,
        invalidation: header.map(|h| h.invalidation.mode()),
        optimization: facts.name.optimization(),
        checked: Checked::Header,
        future_source_mtime: match facts.source {
            SourceFacts::Present { mtime_ns, .. } if mtime_ns > facts.now_ns => Some(mtime_ns),
            _ => None,
        },
    };
    let source_name = || facts.source_name.unwrap_or_default().to_os_string();
    match facts.name {
        CacheName::PartialWrite => v.set(State::Orphan, Evidence::PartialWrite),
        CacheName::Misnamed => v.set(State::Orphan, Evidence::Misnamed),
        CacheName::UnreadLevel { level, .. } => v.set(
            State::Orphan,
            Evidence::UnreadLevel {
                level: level.clone(),
            },
        ),
        CacheName::TaggedOutOfPlace { tag, .. } => v.set(
            State::Orphan,
            Evidence::TaggedOutOfPlace { tag: tag.clone() },
        ),
        CacheName::Tagged { .. } => match facts.source {
            SourceFacts::Present { .. } => judge_against_source(facts, &parsed, tag_series, &mut v),
            _ => v.set(
                State::Orphan,
                Evidence::SourceMissing {
                    source_name: source_name(),
                },
            ),
        },
        CacheName::Legacy { .. } => match facts.source {
            SourceFacts::Missing { dir_has_sources } => {
                let gone = if dir_has_sources {
                    Gone::Deleted {
                        source_name: source_name(),
                    }
                } else {
                    Gone::NoSourcesInDirectory
                };
                judge_sourceless(facts, &parsed, gone, &mut v)
            }
            SourceFacts::NotApplicable => v.set(State::Orphan, Evidence::NoSourceName),
            SourceFacts::Present { .. } => match magic_series {
                Some(series) if series.uses_pycache() => v.set(
                    State::Orphan,
                    Evidence::LegacyIgnored {
                        writer: series,
                        source_name: source_name(),
                    },
                ),
                _ => judge_against_source(facts, &parsed, None, &mut v),
            },
        },
    }
    v
}

impl Verdict {
    fn set(&mut self, state: State, evidence: Evidence) {
        self.state = state;
        self.severity = default_severity(state);
        self.evidence = Some(Box::new(evidence));
    }
}

/// The severity of a state; `corrupt` is an error only when the import fails, which the
/// judge decides case by case.
pub fn default_severity(state: State) -> Severity {
    match state {
        State::Fresh => Severity::Ok,
        State::Sourceless | State::Unknown => Severity::Info,
        State::Stale | State::Suspect | State::Orphan | State::Corrupt => Severity::Warning,
        State::HiddenStale | State::Ghost => Severity::Error,
    }
}

/// Could these four bytes be the magic of a CPython newer than pycguard knows (a 3.x magic
/// value above the table, followed by `\r\n`)? Such a cache is not damage.
fn newer_cpython_magic(raw: &[u8; 4]) -> bool {
    let value = u16::from_le_bytes([raw[0], raw[1]]);
    raw[2..] == *b"\r\n" && (3650..4000).contains(&value)
}

/// A legacy cache whose source is gone: imported as-is by the interpreter (ghost) unless
/// the directory is a sourceless distribution. Either way the import reads this file and
/// nothing else, so a damaged header or body fails it: `corrupt`, an error.
fn judge_sourceless(
    facts: &CacheFacts<'_>,
    parsed: &Result<Header, HeaderError>,
    gone: Gone,
    v: &mut Verdict,
) {
    let damage = match parsed {
        Err(HeaderError::UnknownMagic { raw }) if newer_cpython_magic(raw) => None,
        Err(err) => Some(Damage::Header(*err)),
        Ok(_) => body_problem(facts.body).map(Damage::Body),
    };
    if let Some(damage) = damage {
        v.set(
            State::Corrupt,
            Evidence::SourcelessUnimportable { gone, damage },
        );
        v.severity = Severity::Error;
        return;
    }
    match (parsed, gone) {
        // Only an unknown magic (perhaps a newer CPython's) is left here.
        (Err(error), gone) => v.set(
            State::Unknown,
            Evidence::SourcelessUnknownMagic {
                gone,
                error: *error,
            },
        ),
        (Ok(h), Gone::Deleted { source_name }) => v.set(
            State::Ghost,
            Evidence::Ghost {
                source_name,
                writer: h.magic.series,
            },
        ),
        (Ok(h), Gone::NoSourcesInDirectory) => v.set(
            State::Sourceless,
            Evidence::Sourceless {
                writer: h.magic.series,
            },
        ),
    }
}

/// How the reader of a cache validates it: the importer of its series, or pytest's
/// `_read_pyc` for its assertion-rewritten caches.
fn reader_of(name: &CacheName) -> Reader {
    if !name.is_pytest() {
        return Reader::Importer;
    }
    match name.pytest_version() {
        Some(version) if version >= (9, 2) => Reader::PytestCheckedHash { version },
        Some(version) => Reader::PytestTimestamp { version },
        None => Reader::PytestUnknown,
    }
}

fn judge_against_source(
    facts: &CacheFacts<'_>,
    parsed: &Result<Header, HeaderError>,
    tag_series: Option<Series>,
    v: &mut Verdict,
) {
    let SourceFacts::Present {
        stat,
        mtime_ns,
        ctime_ns,
        hash: source_hash,
    } = facts.source
    else {
        return;
    };
    let reader = reader_of(facts.name);
    let pytest = reader.is_pytest();
    let file_magic = match parsed {
        Ok(h) => Some(h.magic),
        Err(e) => e.magic(),
    };
    let tag = || v.tag.clone().unwrap_or_default();
    // The reader compares the magic first (`_classify_pyc`, pytest's `_read_pyc` after
    // its length check): a cache of another series under this name is rejected whatever
    // else is wrong with it.
    if let (Some(reader_series), Some(m)) = (tag_series, file_magic) {
        if reader_series != m.series {
            let evidence = Evidence::MagicDisagreesWithTag {
                header_series: m.series,
                magic: m.value,
                tag: tag(),
                reader,
                reader_series,
            };
            return v.set(State::Stale, evidence);
        }
    }
    let h = match parsed {
        Ok(h) => h,
        Err(error @ HeaderError::UnknownMagic { raw }) => {
            let error = *error;
            let evidence = match tag_series {
                // The name says who reads it, and that interpreter rejects any other magic
                // (unless the name is of a Python newer than pycguard knows, and this could
                // be its magic).
                Some(reader_series)
                    if magic::knows_series(reader_series) || !newer_cpython_magic(raw) =>
                {
                    Evidence::ForeignMagic {
                        error,
                        tag: tag(),
                        reader,
                        reader_series,
                    }
                }
                // Beside its source only Python 2 reads a legacy cache (Python 3 reads
                // __pycache__), and it rejects a magic that is no interpreter's.
                None if matches!(facts.name, CacheName::Legacy { .. })
                    && !newer_cpython_magic(raw) =>
                {
                    Evidence::ForeignMagicBesideSource { error }
                }
                _ => return v.set(State::Unknown, Evidence::UnknownMagic { error }),
            };
            return v.set(State::Stale, evidence);
        }
        Err(HeaderError::InvalidFlags { flags, .. }) if pytest => {
            let evidence = Evidence::PytestRejectsFlags {
                flags: *flags,
                mode: None,
                reader,
            };
            return v.set(State::Stale, evidence);
        }
        Err(error) => {
            let evidence = Evidence::BadHeader {
                error: *error,
                reader,
                reader_series: tag_series.or_else(|| error.magic().map(|m| m.series)),
            };
            return v.set(State::Corrupt, evidence);
        }
    };
    let writer = h.magic.series;
    if facts.location != Location::Beside && !writer.uses_pycache() {
        return v.set(State::Orphan, Evidence::WriterIgnoresPycache { writer });
    }
    let reader_series = tag_series.unwrap_or(writer);
    let wanted_flags = match reader {
        Reader::Importer | Reader::PytestUnknown => None,
        Reader::PytestTimestamp { .. } => Some(0),
        Reader::PytestCheckedHash { .. } => Some(FLAG_HASH_BASED | FLAG_CHECK_SOURCE),
    };
    let pytest_accepts = match reader {
        Reader::PytestUnknown => h.flags == 0 || h.flags == FLAG_HASH_BASED | FLAG_CHECK_SOURCE,
        _ => wanted_flags.map_or(true, |f| f == h.flags),
    };
    if !pytest_accepts {
        let evidence = Evidence::PytestRejectsFlags {
            flags: h.flags,
            mode: Some(h.invalidation.mode()),
            reader,
        };
        return v.set(State::Stale, evidence);
    }
    match h.invalidation {
        Invalidation::Timestamp { mtime, size } => {
            // pytest masks the mtime to 32 bits on every series.
            let rule = if pytest {
                magic::MtimeRule::Masked
            } else {
                h.magic.mtime_rule
            };
            let evidence = match header::compare_timestamp(rule, mtime, size, &stat) {
                TimestampCheck::Accepted => None,
                TimestampCheck::MtimeDiffers { header, source } => {
                    Some(Evidence::MtimeMismatch { header, source })
                }
                TimestampCheck::MtimeUnrepresentable { source } => {
                    Some(Evidence::MtimeUnrepresentable {
                        source,
                        writer,
                        rule: h.magic.mtime_rule,
                    })
                }
                TimestampCheck::SizeDiffers { header, source } => {
                    Some(Evidence::SizeMismatch { header, source })
                }
            };
            if let Some(evidence) = evidence {
                return v.set(State::Stale, evidence);
            }
            if let Some(problem) = body_problem(facts.body) {
                return corrupt_body(v, reader, reader_series, problem);
            }
            let sized = size.is_some();
            if v.future_source_mtime.is_none() && mtime_ns > facts.cache_mtime_ns {
                let evidence = Evidence::SourceNewerThanCache {
                    source_ns: mtime_ns,
                    cache_ns: facts.cache_mtime_ns,
                    sized,
                    reader,
                    reader_series,
                };
                v.set(State::Suspect, evidence);
            } else if written_in_place(facts)
                && ctime_ns > facts.cache_ctime_ns + CTIME_TOLERANCE_NS
            {
                let evidence = Evidence::SourceReplaced {
                    source_ctime_ns: ctime_ns,
                    cache_ctime_ns: facts.cache_ctime_ns,
                    sized,
                    reader,
                    reader_series,
                };
                v.set(State::Suspect, evidence);
            }
        }
        Invalidation::Hash { hash, check_source } => {
            v.checked = Checked::Hash;
            let Some(actual) = source_hash else {
                return;
            };
            if actual != hash {
                let evidence = Evidence::HashMismatch {
                    header: hash,
                    source: actual,
                    checked: check_source,
                    reader,
                    reader_series,
                };
                if check_source {
                    return v.set(State::Stale, evidence);
                }
                if let Some(problem) = body_problem(facts.body) {
                    return corrupt_body(v, reader, reader_series, problem);
                }
                return v.set(State::HiddenStale, evidence);
            }
            if let Some(problem) = body_problem(facts.body) {
                corrupt_body(v, reader, reader_series, problem);
            }
        }
    }
}

/// A body that fails `marshal.loads` under a header the reader accepts: pytest rewrites
/// it (a warning), the importer fails the import (an error).
fn corrupt_body(v: &mut Verdict, reader: Reader, reader_series: Series, problem: MarshalError) {
    v.set(
        State::Corrupt,
        Evidence::BodyDamaged {
            problem,
            reader,
            reader_series,
        },
    );
    if !reader.is_pytest() {
        v.severity = Severity::Error;
    }
}

/// Would `marshal.loads` of the body fail (as importlib runs it, outside any fallback)?
fn body_problem(body: &BodyFacts) -> Option<MarshalError> {
    match body {
        BodyFacts::Damaged(problem) => Some(problem.clone()),
        BodyFacts::Valid | BodyFacts::Unchecked => None,
    }
}

/// A cache path that holds no regular file (after following a symlink, as the importer
/// does): what the importer would find there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAFile {
    /// What opening the path gives; [`FileKind::Symlink`] for a link that leads nowhere.
    pub kind: FileKind,
    /// The path itself is a symlink (to `kind`).
    pub via_symlink: bool,
}

/// Judge a cache path that is not a regular file: a FIFO where a cache goes makes the
/// import that opens it hang, a device is read instead of a cache; both are errors. What
/// the importer does was confirmed with the real interpreters (`tests/hostile.rs`):
/// Python 3 opens `__pycache__/NAME.TAG.pyc` without checking what it is whenever the
/// source exists (and reads a device whole), but looks for a sourceless legacy `NAME.pyc`
/// only when it is a regular file; Python 2 opens a legacy `NAME.pyc` beside its source or
/// in its place (a FIFO blocks it; from a device it reads a bad magic number and goes on).
pub fn judge_not_a_file(
    name: &CacheName,
    source: SourceFacts,
    source_name: Option<&OsStr>,
    found: NotAFile,
) -> Verdict {
    let tag = name.tag().map(str::to_owned);
    let tag_series = tag.as_deref().and_then(magic::series_of_tag);
    let blocks = found.kind == FileKind::Fifo;
    let device = matches!(found.kind, FileKind::CharDevice | FileKind::BlockDevice);
    let (state, severity, at) = match name {
        CacheName::Tagged { .. } => match source {
            SourceFacts::Present { .. } if blocks || device => {
                (State::Corrupt, Severity::Error, NotAFileAt::CacheOfSource)
            }
            // The importer reads no cache from it, compiles, and replaces it.
            SourceFacts::Present { .. }
                if matches!(found.kind, FileKind::Socket | FileKind::Symlink) =>
            {
                (State::Stale, Severity::Warning, NotAFileAt::CacheOfSource)
            }
            // Opening it fails on every import, and no cache can be written in its place.
            SourceFacts::Present { .. } => {
                (State::Corrupt, Severity::Warning, NotAFileAt::CacheOfSource)
            }
            _ => (
                State::Orphan,
                Severity::Warning,
                NotAFileAt::CacheOfMissingSource,
            ),
        },
        // Python 2 opens it (and blocks on a FIFO); from a device it reads four bytes,
        // finds no magic number and goes on without it.
        CacheName::Legacy { .. } if blocks => {
            (State::Corrupt, Severity::Error, NotAFileAt::LegacyName)
        }
        CacheName::Legacy { .. } => (State::Orphan, Severity::Warning, NotAFileAt::LegacyName),
        _ => (State::Orphan, Severity::Warning, NotAFileAt::OtherName),
    };
    Verdict {
        state,
        severity,
        evidence: Some(Box::new(Evidence::NotAFile {
            found,
            at,
            source_name: source_name.unwrap_or_default().to_os_string(),
            reader_series: tag_series,
        })),
        unproven: None,
        interpreter: tag_series,
        tag,
        invalidation: None,
        optimization: name.optimization(),
        checked: Checked::Header,
        future_source_mtime: None,
    }
}

#[cfg(test)]
mod tests;
