//! The verdict: one state per cache, decided from gathered facts exactly as the importer of
//! the series that wrote (or reads) the cache would decide — plus what the importer misses.
//!
//! Facts come in (name, location, bytes, the source's stat and hash), a [`Verdict`] goes
//! out; this module does no I/O, so every rule is unit-tested here and every rule is also
//! checked against caches written by real interpreters in `tests/`. The order of the
//! checks mirrors `SourceLoader.get_code`: where the importer looks, magic, header, flags,
//! mtime/size or hash, then `marshal.loads` of the body.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;

use crate::layout::CacheName;
use crate::pyc::header::{
    self, Header, HeaderError, Invalidation, SourceStat, TimestampCheck, FLAG_CHECK_SOURCE,
    FLAG_HASH_BASED,
};
use crate::pyc::magic::{self, Series};
use crate::pyc::marshal;
use crate::pyc::source_hash::stored_hex;
use crate::read::FileKind;
use crate::timefmt;

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
    /// One sentence naming the evidence; `None` for an unremarkable fresh cache.
    pub reason: Option<String>,
    /// The series that wrote the cache (from its magic; from its tag when the magic is unreadable).
    pub interpreter: Option<Series>,
    pub tag: Option<String>,
    /// `timestamp`, `checked-hash` or `unchecked-hash`, when the header was readable.
    pub invalidation: Option<&'static str>,
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
    Damaged(String),
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
            Err(e) => BodyFacts::Damaged(e.to_string()),
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
    /// File name of the source (for reasons), when the name maps to one.
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
        reason: None,
        interpreter: magic_series.or(tag_series),
        tag,
        invalidation: header.map(|h| h.invalidation.mode_name()),
        optimization: facts.name.optimization(),
        checked: Checked::Header,
        future_source_mtime: match facts.source {
            SourceFacts::Present { mtime_ns, .. } if mtime_ns > facts.now_ns => Some(mtime_ns),
            _ => None,
        },
    };
    let source_name = facts
        .source_name
        .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
        .unwrap_or_default();
    match facts.name {
        CacheName::PartialWrite => v.set(
            State::Orphan,
            "temporary file of a cache write that never completed; no interpreter reads it".into(),
        ),
        CacheName::Misnamed => v.set(
            State::Orphan,
            "not named NAME.TAG.pyc, so no interpreter looks for it".into(),
        ),
        CacheName::UnreadLevel { level, .. } => v.set(
            State::Orphan,
            if level == "0" {
                "no interpreter reads .opt-0: optimisation level 0 has no suffix (NAME.TAG.pyc), and -O, -OO read .opt-1, .opt-2".into()
            } else {
                format!("no interpreter reads .opt-{level}: the level in a cache name is written without leading zeros (-O reads .opt-1, -OO .opt-2)")
            },
        ),
        CacheName::TaggedOutOfPlace { tag, .. } => v.set(
            State::Orphan,
            format!("named for {tag} but outside __pycache__ and any pycache prefix; no interpreter looks for it here"),
        ),
        CacheName::Tagged { .. } => match facts.source {
            SourceFacts::Present { .. } => judge_against_source(facts, &parsed, tag_series, &mut v),
            _ => v.set(
                State::Orphan,
                format!("source {source_name} does not exist; no interpreter imports this cache"),
            ),
        },
        CacheName::Legacy { .. } => match facts.source {
            SourceFacts::Missing { dir_has_sources } => judge_sourceless(facts, &parsed, dir_has_sources, &source_name, &mut v),
            SourceFacts::NotApplicable => v.set(State::Orphan, "no source can be derived from this name".into()),
            SourceFacts::Present { .. } => match magic_series {
                Some(series) if series.uses_pycache() => v.set(
                    State::Orphan,
                    format!("{series} ignores a legacy cache while {source_name} exists (it reads __pycache__)"),
                ),
                _ => judge_against_source(facts, &parsed, None, &mut v),
            },
        },
    }
    v
}

impl Verdict {
    fn set(&mut self, state: State, reason: String) {
        self.state = state;
        self.severity = default_severity(state);
        self.reason = Some(reason);
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

fn who(series: Option<Series>) -> String {
    series.map_or_else(|| "the interpreter".to_owned(), |s| s.to_string())
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
    dir_has_sources: bool,
    source_name: &str,
    v: &mut Verdict,
) {
    let series = parsed.as_ref().ok().map(|h| h.magic.series);
    let damage = match parsed {
        Err(HeaderError::UnknownMagic { raw }) if newer_cpython_magic(raw) => None,
        Err(err) => Some(err.to_string()),
        Ok(_) => body_problem(facts.body).map(|p| format!("the body is damaged ({p})")),
    };
    let place = if dir_has_sources {
        format!("source {source_name} deleted")
    } else {
        "no sources in this directory".to_owned()
    };
    if let Some(problem) = damage {
        v.set(
            State::Corrupt,
            format!("{place}, so importing the module reads this file, and that fails: {problem}"),
        );
        v.severity = Severity::Error;
        return;
    }
    match (series, dir_has_sources) {
        (None, _) => {
            let err = parsed
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            v.set(State::Unknown, format!("{place}; {err}"));
        }
        (Some(s), true) => v.set(
            State::Ghost,
            format!("{place}; {s} still imports this file"),
        ),
        (Some(s), false) => v.set(
            State::Sourceless,
            format!("{place}: a sourceless distribution ({s})"),
        ),
    }
}

/// How the reader of a cache validates it: the importer of its series, or pytest's
/// `_read_pyc` for its assertion-rewritten caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    Importer,
    /// pytest before 9.2: flags must be 0; mtime and size masked to 32 bits.
    PytestTimestamp {
        version: (u32, u32),
    },
    /// pytest 9.2 and later: flags must be 3 (checked hash) and the SipHash must match.
    PytestCheckedHash {
        version: (u32, u32),
    },
    /// A pytest tag whose version cannot be read: either kind it writes is accepted.
    PytestUnknown,
}

impl Reader {
    fn of(name: &CacheName) -> Reader {
        if !name.is_pytest() {
            return Reader::Importer;
        }
        match name.pytest_version() {
            Some(version) if version >= (9, 2) => Reader::PytestCheckedHash { version },
            Some(version) => Reader::PytestTimestamp { version },
            None => Reader::PytestUnknown,
        }
    }

    fn is_pytest(self) -> bool {
        self != Reader::Importer
    }

    /// Who rejects and rebuilds a cache, for reasons: "Python 3.12 rejects it and
    /// recompiles it", "pytest rejects it and rewrites it".
    fn rejects(self, series: Option<Series>) -> String {
        match self {
            Reader::Importer => format!("{} rejects it and recompiles it", who(series)),
            _ => "pytest rejects it and rewrites it".to_owned(),
        }
    }

    fn name(self) -> String {
        match self {
            Reader::Importer => "the importer".to_owned(),
            Reader::PytestTimestamp { version: (a, b) }
            | Reader::PytestCheckedHash { version: (a, b) } => format!("pytest {a}.{b}"),
            Reader::PytestUnknown => "pytest".to_owned(),
        }
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
    let reader_kind = Reader::of(facts.name);
    let pytest = reader_kind.is_pytest();
    let file_magic = match parsed {
        Ok(h) => Some(h.magic),
        Err(e) => e.magic(),
    };
    // The reader compares the magic first (`_classify_pyc`, pytest's `_read_pyc` after
    // its length check): a cache of another series under this name is rejected whatever
    // else is wrong with it.
    if let (Some(reader), Some(m)) = (tag_series, file_magic) {
        if reader != m.series {
            v.set(
                State::Stale,
                format!(
                    "the header is {}'s (magic {}) but the name says {}; {}",
                    m.series,
                    m.value,
                    v.tag.as_deref().unwrap_or_default(),
                    reader_kind.rejects(Some(reader)),
                ),
            );
            return;
        }
    }
    let h = match parsed {
        Ok(h) => h,
        Err(err @ HeaderError::UnknownMagic { raw }) => {
            match tag_series {
                // The name says who reads it, and that interpreter rejects any other magic
                // (unless the name is of a Python newer than pycguard knows, and this could
                // be its magic).
                Some(reader) if magic::knows_series(reader) || !newer_cpython_magic(raw) => v.set(
                    State::Stale,
                    format!(
                        "{err}, but the name says {}; {}",
                        v.tag.as_deref().unwrap_or_default(),
                        reader_kind.rejects(Some(reader)),
                    ),
                ),
                // Beside its source only Python 2 reads a legacy cache (Python 3 reads
                // __pycache__), and it rejects a magic that is no interpreter's.
                None if matches!(facts.name, CacheName::Legacy { .. }) && !newer_cpython_magic(raw) => v.set(
                    State::Stale,
                    format!("{err}; Python 2, the only interpreter that reads a legacy cache beside its source, rejects it and recompiles it"),
                ),
                _ => v.set(State::Unknown, err.to_string()),
            }
            return;
        }
        Err(HeaderError::InvalidFlags { flags, .. }) if pytest => {
            v.set(
                State::Stale,
                format!(
                    "flags word {flags:#x}: {} accepts only {}, so pytest rewrites it",
                    reader_kind.name(),
                    pytest_flags_wanted(reader_kind)
                ),
            );
            return;
        }
        Err(err) => {
            let reader = tag_series.or_else(|| err.magic().map(|m| m.series));
            v.set(
                State::Corrupt,
                format!(
                    "{err}; {}",
                    if pytest {
                        "pytest rewrites it".to_owned()
                    } else {
                        format!("{} regenerates it on import", who(reader))
                    }
                ),
            );
            return;
        }
    };
    let writer = h.magic.series;
    if facts.location != Location::Beside && !writer.uses_pycache() {
        v.set(
            State::Orphan,
            format!("written by {writer}, which never reads __pycache__"),
        );
        return;
    }
    let reader = tag_series.unwrap_or(writer);
    let wanted_flags = match reader_kind {
        Reader::Importer | Reader::PytestUnknown => None,
        Reader::PytestTimestamp { .. } => Some(0),
        Reader::PytestCheckedHash { .. } => Some(FLAG_HASH_BASED | FLAG_CHECK_SOURCE),
    };
    let pytest_accepts = match reader_kind {
        Reader::PytestUnknown => h.flags == 0 || h.flags == FLAG_HASH_BASED | FLAG_CHECK_SOURCE,
        _ => wanted_flags.map_or(true, |f| f == h.flags),
    };
    if !pytest_accepts {
        v.set(
            State::Stale,
            format!(
                "{} cache (flags {:#x}): {} accepts only {}, so pytest rewrites it",
                h.invalidation.mode_name(),
                h.flags,
                reader_kind.name(),
                pytest_flags_wanted(reader_kind)
            ),
        );
        return;
    }
    match h.invalidation {
        Invalidation::Timestamp { mtime, size } => {
            // pytest masks the mtime to 32 bits on every series.
            let rule = if pytest {
                magic::MtimeRule::Masked
            } else {
                h.magic.mtime_rule
            };
            match header::compare_timestamp(rule, mtime, size, &stat) {
                TimestampCheck::Accepted => {}
                TimestampCheck::MtimeDiffers { header, source } => {
                    return v.set(
                        State::Stale,
                        format!(
                            "source mtime {} differs from header {}",
                            timefmt::seconds(source),
                            timefmt::seconds(i64::from(header))
                        ),
                    )
                }
                TimestampCheck::MtimeUnrepresentable { source } => {
                    return v.set(
                        State::Stale,
                        format!(
                            "source mtime {} cannot match any {writer} header (it compares {}), so the cache is rebuilt on every import",
                            timefmt::seconds(source),
                            match h.magic.mtime_rule {
                                magic::MtimeRule::SignExtended => "the mtime sign-extended from 32 bits",
                                _ => "the mtime unmasked",
                            }
                        ),
                    )
                }
                TimestampCheck::SizeDiffers { header, source } => {
                    return v.set(
                        State::Stale,
                        format!("source is {source} bytes, header says {header}"),
                    )
                }
            }
            if let Some(problem) = body_problem(facts.body) {
                return corrupt_body(v, reader, pytest, problem);
            }
            let runs = if pytest {
                "pytest runs the cached rewritten code".to_owned()
            } else {
                format!("{reader} runs the cached code")
            };
            let matches = if size.is_some() {
                "its mtime and size still match the header"
            } else {
                "its mtime still matches the header (a Python 2 header holds no size)"
            };
            if v.future_source_mtime.is_none() && mtime_ns > facts.cache_mtime_ns {
                v.set(
                    State::Suspect,
                    format!(
                        "source modified at {} after the cache was written at {}, yet {}: {runs}",
                        timefmt::nanos(mtime_ns),
                        timefmt::nanos(facts.cache_mtime_ns),
                        if size.is_some() {
                            "the header matches (same second and size)"
                        } else {
                            "the header matches (same second; a Python 2 header holds no size)"
                        }
                    ),
                );
            } else if written_in_place(facts)
                && ctime_ns > facts.cache_ctime_ns + CTIME_TOLERANCE_NS
            {
                v.set(
                    State::Suspect,
                    format!(
                        "source replaced or changed at {} (its ctime), after the cache was written at {}, while {matches}: \
                         a copy that keeps mtimes (tar -x, rsync -t, cp -p, a restore) leaves exactly this; {runs}",
                        timefmt::nanos(ctime_ns),
                        timefmt::nanos(facts.cache_ctime_ns),
                    ),
                );
            }
        }
        Invalidation::Hash { hash, check_source } => {
            v.checked = Checked::Hash;
            let Some(actual) = source_hash else {
                return;
            };
            if actual != hash {
                let evidence = format!(
                    "SipHash {} differs from source's {}",
                    stored_hex(hash),
                    stored_hex(actual)
                );
                if check_source {
                    return v.set(
                        State::Stale,
                        if pytest {
                            format!("{evidence}; pytest checks it and rewrites it")
                        } else {
                            format!("{evidence}; {reader} checks it and recompiles")
                        },
                    );
                }
                if let Some(problem) = body_problem(facts.body) {
                    return corrupt_body(v, reader, pytest, problem);
                }
                return v.set(
                    State::HiddenStale,
                    format!("unchecked-hash cache: {evidence}; {reader} never checks it and runs the old code"),
                );
            }
            if let Some(problem) = body_problem(facts.body) {
                corrupt_body(v, reader, pytest, problem);
            }
        }
    }
}

/// What a pytest version accepts, in words.
fn pytest_flags_wanted(reader: Reader) -> &'static str {
    match reader {
        Reader::PytestCheckedHash { .. } => "checked-hash caches (flags 0x3)",
        Reader::PytestTimestamp { .. } => "timestamp caches (flags 0)",
        _ => "timestamp (flags 0) or checked-hash (flags 0x3) caches",
    }
}

fn corrupt_body(v: &mut Verdict, reader: Series, pytest: bool, problem: String) {
    if pytest {
        v.set(
            State::Corrupt,
            format!("header matches but the body is damaged ({problem}); pytest rewrites it"),
        );
    } else {
        v.set(
            State::Corrupt,
            format!("header matches but the body is damaged ({problem}); importing it with {reader} fails"),
        );
        v.severity = Severity::Error;
    }
}

/// Would `marshal.loads` of the body fail (as importlib runs it, outside any fallback)?
fn body_problem(body: &BodyFacts) -> Option<String> {
    match body {
        BodyFacts::Damaged(problem) => Some(problem.clone()),
        BodyFacts::Valid | BodyFacts::Unchecked => None,
    }
}

#[cfg(test)]
mod tests;

/// A cache path that holds no regular file (after following a symlink, as the importer
/// does): what the importer would find there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAFile {
    /// What opening the path gives; [`FileKind::Symlink`] for a link that leads nowhere.
    pub kind: FileKind,
    /// The path itself is a symlink (to `kind`).
    pub via_symlink: bool,
}

impl NotAFile {
    fn what(&self) -> String {
        match (self.via_symlink, self.kind) {
            (true, FileKind::Symlink) => "a dangling symlink".to_owned(),
            (true, kind) => format!("a symlink to {}", kind.describe()),
            (false, kind) => kind.describe().to_owned(),
        }
    }
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
    let mut v = Verdict {
        state: State::Orphan,
        severity: Severity::Warning,
        reason: None,
        interpreter: tag_series,
        tag,
        invalidation: None,
        optimization: name.optimization(),
        checked: Checked::Header,
        future_source_mtime: None,
    };
    let what = found.what();
    let source_name = source_name
        .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
        .unwrap_or_default();
    let module = source_name.strip_suffix(".py").unwrap_or(&source_name);
    let mut set = |state: State, severity: Severity, reason: String| {
        v.state = state;
        v.severity = severity;
        v.reason = Some(reason);
    };
    let hang_or_read = |who: &str| {
        match found.kind {
        FileKind::Fifo => Some(format!(
            "{who} opens it on `import {module}` and blocks forever"
        )),
        FileKind::CharDevice | FileKind::BlockDevice => Some(format!(
            "{who} reads the device on `import {module}` instead of a cache (from a /dev/zero it reads until memory runs out)"
        )),
        _ => None,
    }
    };
    match name {
        CacheName::Tagged { .. } => match source {
            SourceFacts::Present { .. } => {
                let who = who(tag_series);
                if let Some(effect) = hang_or_read(&who) {
                    set(
                        State::Corrupt,
                        Severity::Error,
                        format!("{what} where the cache of {source_name} goes: {effect}"),
                    );
                } else if matches!(found.kind, FileKind::Socket | FileKind::Symlink) {
                    set(
                        State::Stale,
                        Severity::Warning,
                        format!("{what} where the cache of {source_name} goes: {who} cannot read a cache from it, compiles the source, and replaces it on the next import that can write here"),
                    );
                } else {
                    set(
                        State::Corrupt,
                        Severity::Warning,
                        format!("{what} where the cache of {source_name} goes: opening it fails, so {who} compiles the source on every import and can never write its cache"),
                    );
                }
            }
            _ => set(
                State::Orphan,
                Severity::Warning,
                format!("{what} named like a cache of {source_name}, which does not exist; no interpreter opens it"),
            ),
        },
        // Python 2 opens it (and blocks on a FIFO); from a device it reads four bytes,
        // finds no magic number and goes on without it.
        CacheName::Legacy { .. } if found.kind == FileKind::Fifo => set(
            State::Corrupt,
            Severity::Error,
            format!("{what} named like a legacy cache: Python 2 opens it on `import {module}` and blocks forever (Python 3 ignores it)"),
        ),
        CacheName::Legacy { .. } => set(
            State::Orphan,
            Severity::Warning,
            format!("{what}, not a cache file; no interpreter takes it for one"),
        ),
        _ => set(
            State::Orphan,
            Severity::Warning,
            format!("{what}, not a cache file; no interpreter looks for this name"),
        ),
    }
    v
}

#[cfg(test)]
mod not_a_file_tests {
    use super::*;

    fn tagged() -> CacheName {
        CacheName::Tagged {
            stem: "x".into(),
            tag: "cpython-312".into(),
            optimization: 0,
        }
    }

    fn present() -> SourceFacts {
        SourceFacts::Present {
            stat: SourceStat {
                mtime_secs: 1,
                mtime_nsec: 0,
                size: 1,
            },
            mtime_ns: 1,
            ctime_ns: 1,
            hash: None,
        }
    }

    fn judge(name: &CacheName, source: SourceFacts, kind: FileKind, link: bool) -> Verdict {
        judge_not_a_file(
            name,
            source,
            Some(OsStr::new("x.py")),
            NotAFile {
                kind,
                via_symlink: link,
            },
        )
    }

    #[test]
    fn a_fifo_or_device_where_a_cache_goes_is_an_error() {
        for (kind, link) in [
            (FileKind::Fifo, false),
            (FileKind::Fifo, true),
            (FileKind::CharDevice, false),
            (FileKind::BlockDevice, true),
        ] {
            let v = judge(&tagged(), present(), kind, link);
            assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Error));
            let reason = v.reason.unwrap();
            assert!(reason.contains("import x"), "{reason}");
            assert_eq!(reason.starts_with("a symlink to"), link, "{reason}");
        }
        let v = judge(&tagged(), present(), FileKind::Fifo, false);
        assert_eq!(
            v.reason.as_deref(),
            Some("a FIFO (named pipe) where the cache of x.py goes: Python 3.12 opens it on `import x` and blocks forever")
        );
    }

    #[test]
    fn what_the_importer_replaces_or_skips_is_a_warning() {
        let v = judge(&tagged(), present(), FileKind::Socket, false);
        assert_eq!((v.state, v.severity), (State::Stale, Severity::Warning));
        let v = judge(&tagged(), present(), FileKind::Symlink, true);
        assert_eq!(v.state, State::Stale);
        assert!(v.reason.unwrap().starts_with("a dangling symlink"));
        let v = judge(&tagged(), present(), FileKind::Directory, false);
        assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
        let missing = SourceFacts::Missing {
            dir_has_sources: true,
        };
        assert_eq!(
            judge(&tagged(), missing, FileKind::Fifo, false).state,
            State::Orphan
        );
        let legacy = CacheName::Legacy {
            stem: "x".into(),
            pyo: false,
        };
        let v = judge(&legacy, missing, FileKind::Fifo, false);
        assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Error));
        assert!(v.reason.unwrap().contains("Python 2"));
        assert_eq!(
            judge(&legacy, present(), FileKind::Socket, false).state,
            State::Orphan
        );
        assert_eq!(
            judge(&CacheName::PartialWrite, present(), FileKind::Fifo, false).state,
            State::Orphan
        );
    }
}
