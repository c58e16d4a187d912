//! The words: every reason pycguard gives for a verdict is written here, and only here,
//! from the typed [`Evidence`] the judge and the proof stage recorded.
//!
//! Keeping the sentences apart from the rules lets the judge stay pure (it compares
//! numbers and formats nothing, not even a date) and lets each printer choose: the human
//! report and `inspect` print [`reason`], the JSON report writes it as `reason` (schema 1)
//! — the same text either way. Instants are put in the local time zone here, through
//! [`crate::timefmt`], like `ls -l` does.

use std::ffi::OsStr;

use crate::pyc::magic::{MtimeRule, Series};
use crate::pyc::source_hash::stored_hex;
use crate::stat::FileKind;
use crate::timefmt;
use crate::verdict::{Damage, Evidence, Gone, NotAFile, NotAFileAt, Reader, Verdict};

/// `1 cache`, `2 caches`: a count and its noun, singular or plural.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The reason printed for a verdict: its evidence in words, with a note when `check --deep`
/// could not prove it; `None` for an unremarkable fresh cache.
pub fn reason(verdict: &Verdict) -> Option<String> {
    let said = verdict.evidence.as_deref().map(evidence);
    match (said, &verdict.unproven) {
        (said, None) => said,
        (Some(said), Some(why)) => Some(format!("{said} ({})", not_proven(why))),
        (None, Some(why)) => Some(not_proven(why)),
    }
}

fn not_proven(why: &str) -> String {
    format!("not proven: {why}; judged by header only")
}

/// One sentence saying what the evidence shows and what the reader of the cache does.
pub fn evidence(evidence: &Evidence) -> String {
    match evidence {
        Evidence::PartialWrite => {
            "temporary file of a cache write that never completed; no interpreter reads it".into()
        }
        Evidence::Misnamed => "not named NAME.TAG.pyc, so no interpreter looks for it".into(),
        Evidence::UnreadLevel { level } if level == "0" => {
            "no interpreter reads .opt-0: optimisation level 0 has no suffix (NAME.TAG.pyc), and -O, -OO read .opt-1, .opt-2".into()
        }
        Evidence::UnreadLevel { level } => format!(
            "no interpreter reads .opt-{level}: the level in a cache name is written without leading zeros (-O reads .opt-1, -OO .opt-2)"
        ),
        Evidence::TaggedOutOfPlace { tag } => format!(
            "named for {tag} but outside __pycache__ and any pycache prefix; no interpreter looks for it here"
        ),
        Evidence::SourceMissing { source_name } => format!(
            "source {} does not exist; no interpreter imports this cache",
            name(source_name)
        ),
        Evidence::NoSourceName => "no source can be derived from this name".into(),
        Evidence::LegacyIgnored {
            writer,
            source_name,
        } => format!(
            "{writer} ignores a legacy cache while {} exists (it reads __pycache__)",
            name(source_name)
        ),
        Evidence::Ghost {
            source_name,
            writer,
        } => format!(
            "source {} deleted; {writer} still imports this file",
            name(source_name)
        ),
        Evidence::Sourceless { writer } => {
            format!("no sources in this directory: a sourceless distribution ({writer})")
        }
        Evidence::SourcelessUnknownMagic { gone, error } => format!("{}; {error}", place(gone)),
        Evidence::SourcelessUnimportable { gone, damage } => format!(
            "{}, so importing the module reads this file, and that fails: {}",
            place(gone),
            match damage {
                Damage::Header(error) => error.to_string(),
                Damage::Body(problem) => format!("the body is damaged ({problem})"),
            }
        ),
        Evidence::MagicDisagreesWithTag {
            header_series,
            magic,
            tag,
            reader,
            reader_series,
        } => format!(
            "the header is {header_series}'s (magic {magic}) but the name says {tag}; {}",
            rejects(*reader, *reader_series)
        ),
        Evidence::ForeignMagic {
            error,
            tag,
            reader,
            reader_series,
        } => format!(
            "{error}, but the name says {tag}; {}",
            rejects(*reader, *reader_series)
        ),
        Evidence::ForeignMagicBesideSource { error } => format!(
            "{error}; Python 2, the only interpreter that reads a legacy cache beside its source, rejects it and recompiles it"
        ),
        Evidence::UnknownMagic { error } => error.to_string(),
        Evidence::PytestRejectsFlags {
            flags,
            mode,
            reader,
        } => format!(
            "{}: {} accepts only {}, so pytest rewrites it",
            match mode {
                Some(mode) => format!("{} cache (flags {flags:#x})", mode.name()),
                None => format!("flags word {flags:#x}"),
            },
            reader_name(*reader),
            pytest_flags_wanted(*reader)
        ),
        Evidence::BadHeader {
            error,
            reader,
            reader_series,
        } => {
            if reader.is_pytest() {
                format!("{error}; pytest rewrites it")
            } else {
                format!("{error}; {} regenerates it on import", who(*reader_series))
            }
        }
        Evidence::WriterIgnoresPycache { writer } => {
            format!("written by {writer}, which never reads __pycache__")
        }
        Evidence::MtimeMismatch { header, source } => format!(
            "source mtime {} differs from header {}",
            timefmt::seconds(*source),
            timefmt::seconds(i64::from(*header))
        ),
        Evidence::MtimeUnrepresentable {
            source,
            writer,
            rule,
        } => format!(
            "source mtime {} cannot match any {writer} header (it compares {}), so the cache is rebuilt on every import",
            timefmt::seconds(*source),
            match rule {
                MtimeRule::SignExtended => "the mtime sign-extended from 32 bits",
                _ => "the mtime unmasked",
            }
        ),
        Evidence::SizeMismatch { header, source } => {
            format!("source is {source} bytes, header says {header}")
        }
        Evidence::HashMismatch {
            header,
            source,
            checked,
            reader,
            reader_series,
        } => {
            let differs = format!(
                "SipHash {} differs from source's {}",
                stored_hex(*header),
                stored_hex(*source)
            );
            match (checked, reader.is_pytest()) {
                (true, true) => format!("{differs}; pytest checks it and rewrites it"),
                (true, false) => format!("{differs}; {reader_series} checks it and recompiles"),
                (false, _) => format!(
                    "unchecked-hash cache: {differs}; {reader_series} never checks it and runs the old code"
                ),
            }
        }
        Evidence::BodyDamaged {
            problem,
            reader,
            reader_series,
        } => {
            if reader.is_pytest() {
                format!("header matches but the body is damaged ({problem}); pytest rewrites it")
            } else {
                format!("header matches but the body is damaged ({problem}); importing it with {reader_series} fails")
            }
        }
        Evidence::SourceNewerThanCache {
            source_ns,
            cache_ns,
            sized,
            reader,
            reader_series,
        } => format!(
            "source modified at {} after the cache was written at {}, yet {}: {}",
            timefmt::nanos(*source_ns),
            timefmt::nanos(*cache_ns),
            if *sized {
                "the header matches (same second and size)"
            } else {
                "the header matches (same second; a Python 2 header holds no size)"
            },
            runs(*reader, *reader_series)
        ),
        Evidence::SourceReplaced {
            source_ctime_ns,
            cache_ctime_ns,
            sized,
            reader,
            reader_series,
        } => format!(
            "source replaced or changed at {} (its ctime), after the cache was written at {}, while {}: \
             a copy that keeps mtimes (tar -x, rsync -t, cp -p, a restore) leaves exactly this; {}",
            timefmt::nanos(*source_ctime_ns),
            timefmt::nanos(*cache_ctime_ns),
            if *sized {
                "its mtime and size still match the header"
            } else {
                "its mtime still matches the header (a Python 2 header holds no size)"
            },
            runs(*reader, *reader_series)
        ),
        Evidence::NotAFile {
            found,
            at,
            source_name,
            reader_series,
        } => not_a_file(*found, *at, &name(source_name), *reader_series),
        Evidence::ProvenSame { prover } => format!(
            "the source changed after the cache was written, but it compiles to the same code (proven with {prover})"
        ),
        Evidence::CodeDiffers {
            difference,
            prover,
            reader_series,
        } => {
            let reader = who(*reader_series);
            match difference {
                Some(d) => format!(
                    "the cached code is not the source's: {d} (compiled with {prover}); the header matches, so {reader} runs the old code"
                ),
                None => format!(
                    "the cached code is not what the source compiles to (compiled with {prover}); the header matches, so {reader} runs the old code"
                ),
            }
        }
        Evidence::SourceSyntaxError {
            line,
            message,
            reader_series,
            source_name,
        } => {
            let reader = who(*reader_series);
            match (line, source_name) {
                (Some(n), Some(source)) => format!(
                    "{reader} will run the old code; the source does not compile: {}:{n}: SyntaxError: {message}",
                    name(source)
                ),
                (Some(n), None) => format!(
                    "{reader} will run the old code; the source does not compile: line {n}: SyntaxError: {message}"
                ),
                (None, _) => format!(
                    "{reader} will run the old code; the source does not compile ({message})"
                ),
            }
        }
    }
}

/// A file name as it is printed in a reason (lossy where it is not UTF-8).
fn name(source_name: &OsStr) -> String {
    source_name.to_string_lossy().into_owned()
}

/// The interpreter a cache is for, or "the interpreter" when nothing names it.
fn who(series: Option<Series>) -> String {
    series.map_or_else(|| "the interpreter".to_owned(), |s| s.to_string())
}

/// Where the source of a legacy cache went.
fn place(gone: &Gone) -> String {
    match gone {
        Gone::Deleted { source_name } => format!("source {} deleted", name(source_name)),
        Gone::NoSourcesInDirectory => "no sources in this directory".to_owned(),
    }
}

/// "Python 3.12 rejects it and recompiles it", "pytest rejects it and rewrites it".
fn rejects(reader: Reader, series: Series) -> String {
    match reader {
        Reader::Importer => format!("{series} rejects it and recompiles it"),
        _ => "pytest rejects it and rewrites it".to_owned(),
    }
}

/// What runs a cache the header check let through.
fn runs(reader: Reader, series: Series) -> String {
    if reader.is_pytest() {
        "pytest runs the cached rewritten code".to_owned()
    } else {
        format!("{series} runs the cached code")
    }
}

fn reader_name(reader: Reader) -> String {
    match reader {
        Reader::Importer => "the importer".to_owned(),
        Reader::PytestTimestamp { version: (a, b) }
        | Reader::PytestCheckedHash { version: (a, b) } => format!("pytest {a}.{b}"),
        Reader::PytestUnknown => "pytest".to_owned(),
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

/// What sits at a cache path that holds no regular file, and what the importer does.
fn not_a_file(
    found: NotAFile,
    at: NotAFileAt,
    source_name: &str,
    reader_series: Option<Series>,
) -> String {
    let what = match (found.via_symlink, found.kind) {
        (true, FileKind::Symlink) => "a dangling symlink".to_owned(),
        (true, kind) => format!("a symlink to {}", kind.describe()),
        (false, kind) => kind.describe().to_owned(),
    };
    let module = source_name.strip_suffix(".py").unwrap_or(source_name);
    let who = who(reader_series);
    match (at, found.kind) {
        (NotAFileAt::CacheOfSource, kind) => {
            let effect = match kind {
                FileKind::Fifo => format!("{who} opens it on `import {module}` and blocks forever"),
                FileKind::CharDevice | FileKind::BlockDevice => format!(
                    "{who} reads the device on `import {module}` instead of a cache (from a /dev/zero it reads until memory runs out)"
                ),
                FileKind::Socket | FileKind::Symlink => format!(
                    "{who} cannot read a cache from it, compiles the source, and replaces it on the next import that can write here"
                ),
                _ => format!(
                    "opening it fails, so {who} compiles the source on every import and can never write its cache"
                ),
            };
            format!("{what} where the cache of {source_name} goes: {effect}")
        }
        (NotAFileAt::CacheOfMissingSource, _) => format!(
            "{what} named like a cache of {source_name}, which does not exist; no interpreter opens it"
        ),
        (NotAFileAt::LegacyName, FileKind::Fifo) => format!(
            "{what} named like a legacy cache: Python 2 opens it on `import {module}` and blocks forever (Python 3 ignores it)"
        ),
        (NotAFileAt::LegacyName, _) => {
            format!("{what}, not a cache file; no interpreter takes it for one")
        }
        (NotAFileAt::OtherName, _) => {
            format!("{what}, not a cache file; no interpreter looks for this name")
        }
    }
}

#[cfg(test)]
mod tests;
