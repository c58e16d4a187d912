//! What the judge saw: the facts that decided a verdict, as data.
//!
//! The judge ([`super::judge`], [`super::judge_not_a_file`]) and the proof stage
//! (`deep::compare`) record *what* they found — two sizes, two hashes, two instants, the
//! header error, what sits where a cache goes — and never how to say it. Sentences and
//! local-time dates are written from these values in one place, `crate::messages`, so a
//! printer can word them, a JSON consumer can read them as numbers, and a test can
//! assert on a value rather than on a phrase. Every value here is a fact about the cache,
//! its name or its source; strings are names (a tag, a source file name) or the words of
//! a component that answered (the worker's difference, the prover's name), never prose
//! made up by the judge.

use std::ffi::OsString;

use super::NotAFile;
use crate::pyc::header::{HeaderError, InvalidationMode};
use crate::pyc::magic::{MtimeRule, Series};
use crate::pyc::marshal::MarshalError;

/// Who reads a cache and acts on what its header says: the importer of its series, or
/// pytest's `_read_pyc` for the caches of its assertion rewriter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
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
    pub fn is_pytest(self) -> bool {
        self != Reader::Importer
    }
}

/// Why a legacy cache's source is not there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gone {
    /// Other sources are in the directory: this one was deleted.
    Deleted { source_name: OsString },
    /// No `.py` file at all in the directory (a sourceless distribution).
    NoSourcesInDirectory,
}

/// What is wrong with a file the import reads as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    Header(HeaderError),
    Body(MarshalError),
}

/// Where a path that is not a regular file sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAFileAt {
    /// Where the cache of an existing source goes: the importer opens it.
    CacheOfSource,
    /// Named like the cache of a source that does not exist.
    CacheOfMissingSource,
    /// A legacy `NAME.pyc` name (Python 2 opens it).
    LegacyName,
    /// Any other name: no importer looks for it.
    OtherName,
}

/// The facts that decided one verdict. Worded by `crate::messages::evidence`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    // --- The name alone decides.
    /// `NAME.TAG.pyc.DIGITS`: the temporary file of a write that never completed.
    PartialWrite,
    /// A `.pyc` in `__pycache__` not named `NAME.TAG.pyc`.
    Misnamed,
    /// `.opt-LEVEL` spelled as no importer asks for it (`opt-0`, leading zeros, …).
    UnreadLevel { level: String },
    /// A tagged name outside `__pycache__` and any pycache prefix.
    TaggedOutOfPlace { tag: String },
    /// The tagged cache's source does not exist.
    SourceMissing { source_name: OsString },
    /// A legacy name from which no source name follows.
    NoSourceName,
    /// A legacy cache beside its existing source, written by a series that reads
    /// `__pycache__` instead.
    LegacyIgnored {
        writer: Series,
        source_name: OsString,
    },

    // --- A legacy cache without its source: the import reads this file as it is.
    /// The source was deleted; the writer still imports the cache.
    Ghost {
        source_name: OsString,
        writer: Series,
    },
    /// A sourceless distribution.
    Sourceless { writer: Series },
    /// No source, and a magic of no series pycguard knows (perhaps a newer CPython).
    SourcelessUnknownMagic { gone: Gone, error: HeaderError },
    /// No source, and the file cannot be imported: the import fails.
    SourcelessUnimportable { gone: Gone, damage: Damage },

    // --- The header against the name and the source.
    /// The header is another known series' than the name says.
    MagicDisagreesWithTag {
        header_series: Series,
        magic: u16,
        tag: String,
        reader: Reader,
        reader_series: Series,
    },
    /// A magic of no known series under a name whose interpreter rejects it.
    ForeignMagic {
        error: HeaderError,
        tag: String,
        reader: Reader,
        reader_series: Series,
    },
    /// A magic of no known series in a legacy cache beside its source (Python 2 reads it,
    /// and rejects it).
    ForeignMagicBesideSource { error: HeaderError },
    /// A magic of no known series, and nothing says who reads it.
    UnknownMagic { error: HeaderError },
    /// pytest's reader accepts only certain flags words; `mode` is `None` when the flags
    /// word is not even valid.
    PytestRejectsFlags {
        flags: u32,
        mode: Option<InvalidationMode>,
        reader: Reader,
    },
    /// The header cannot be used (truncated, invalid flags): regenerated on import.
    BadHeader {
        error: HeaderError,
        reader: Reader,
        reader_series: Option<Series>,
    },
    /// Written by a series that never reads `__pycache__` (found in one).
    WriterIgnoresPycache { writer: Series },
    /// The header's mtime (as stored) is not the source's (as the importer computes it).
    MtimeMismatch { header: u32, source: i64 },
    /// The source's mtime cannot be represented the way the writer compares it.
    MtimeUnrepresentable {
        source: i64,
        writer: Series,
        rule: MtimeRule,
    },
    /// The header's source size is not the source's.
    SizeMismatch { header: u32, source: u64 },
    /// The SipHash in the header is not the source's; `checked`: the reader checks it.
    HashMismatch {
        header: u64,
        source: u64,
        checked: bool,
        reader: Reader,
        reader_series: Series,
    },
    /// The header is accepted but the body fails `marshal.loads`.
    BodyDamaged {
        problem: MarshalError,
        reader: Reader,
        reader_series: Series,
    },
    /// The source's mtime is later than the cache file's own, yet the header matches
    /// (same second, same size).
    SourceNewerThanCache {
        source_ns: i128,
        cache_ns: i128,
        /// The header records a size (3.3+), so it matched too.
        sized: bool,
        reader: Reader,
        reader_series: Series,
    },
    /// The source's ctime is later than the cache file's (replaced with its mtime kept),
    /// yet the header matches.
    SourceReplaced {
        source_ctime_ns: i128,
        cache_ctime_ns: i128,
        sized: bool,
        reader: Reader,
        reader_series: Series,
    },

    // --- Not a regular file where a cache is named.
    NotAFile {
        found: NotAFile,
        at: NotAFileAt,
        source_name: OsString,
        /// The series its tag names.
        reader_series: Option<Series>,
    },

    // --- `check --deep`: the cached code against a fresh compile by `prover`.
    /// Suspect by header, but the source compiles to the same code.
    ProvenSame { prover: String },
    /// The code differs; `difference` is the worker's description, when it gave one.
    CodeDiffers {
        difference: Option<String>,
        prover: String,
        reader_series: Option<Series>,
    },
    /// The source does not compile, so the cache can only be older code.
    SourceSyntaxError {
        line: Option<u32>,
        message: String,
        reader_series: Option<Series>,
        /// The source's file name, so the message can say `a.py:LINE` (set by the proof
        /// stage, which knows the entry).
        source_name: Option<OsString>,
    },
}
