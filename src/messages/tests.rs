//! Every kind of evidence, worded: the exact sentence `check` prints for it.

use super::*;
use crate::pyc::header::{HeaderError, InvalidationMode};
use crate::pyc::magic::lookup;
use crate::pyc::marshal::MarshalError;
use crate::verdict::{Checked, Severity, State};

const S312: Series = Series::cpython(3, 12);

fn py(major: u8, minor: u8) -> Series {
    Series::cpython(major, minor)
}

/// A variant's position in [`Evidence`]; no wildcard, so a new variant does not compile
/// until it is listed here, and [`every_variant_is_worded`] then asks for its sentence.
fn variant(e: &Evidence) -> usize {
    match e {
        Evidence::PartialWrite => 0,
        Evidence::Misnamed => 1,
        Evidence::UnreadLevel { .. } => 2,
        Evidence::TaggedOutOfPlace { .. } => 3,
        Evidence::SourceMissing { .. } => 4,
        Evidence::NoSourceName => 5,
        Evidence::LegacyIgnored { .. } => 6,
        Evidence::Ghost { .. } => 7,
        Evidence::Sourceless { .. } => 8,
        Evidence::SourcelessUnknownMagic { .. } => 9,
        Evidence::SourcelessUnimportable { .. } => 10,
        Evidence::MagicDisagreesWithTag { .. } => 11,
        Evidence::ForeignMagic { .. } => 12,
        Evidence::ForeignMagicBesideSource { .. } => 13,
        Evidence::UnknownMagic { .. } => 14,
        Evidence::PytestRejectsFlags { .. } => 15,
        Evidence::BadHeader { .. } => 16,
        Evidence::WriterIgnoresPycache { .. } => 17,
        Evidence::MtimeMismatch { .. } => 18,
        Evidence::MtimeUnrepresentable { .. } => 19,
        Evidence::SizeMismatch { .. } => 20,
        Evidence::HashMismatch { .. } => 21,
        Evidence::BodyDamaged { .. } => 22,
        Evidence::SourceNewerThanCache { .. } => 23,
        Evidence::SourceReplaced { .. } => 24,
        Evidence::NotAFile { .. } => 25,
        Evidence::ProvenSame { .. } => 26,
        Evidence::CodeDiffers { .. } => 27,
        Evidence::SourceSyntaxError { .. } => 28,
    }
}
const VARIANTS: usize = 29;

/// The magic value 3650 with `\r\n`: no series pycguard knows.
fn unknown_magic() -> HeaderError {
    HeaderError::UnknownMagic {
        raw: [0x42, 0x0e, 0x0d, 0x0a],
    }
}

fn truncated() -> HeaderError {
    HeaderError::Truncated {
        magic: lookup([0xcb, 0x0d, 0x0d, 0x0a]).unwrap(),
        len: 12,
        need: 16,
    }
}

fn eof() -> MarshalError {
    MarshalError::EofObject { offset: 10 }
}

fn not_a_file(kind: FileKind, via_symlink: bool, at: NotAFileAt) -> Evidence {
    Evidence::NotAFile {
        found: NotAFile { kind, via_symlink },
        at,
        source_name: "x.py".into(),
        reader_series: Some(S312),
    }
}

/// Each kind of evidence (and each way of wording one) with its sentence.
fn examples() -> Vec<(Evidence, String)> {
    const NS: i128 = 1_000_000_000;
    let pytest92 = Reader::PytestCheckedHash { version: (9, 2) };
    let pytest83 = Reader::PytestTimestamp { version: (8, 3) };
    let at = |secs: i64| timefmt::seconds(secs);
    let at_ns = |ns: i128| timefmt::nanos(ns);
    let unknown = "magic number 3650 (42 0e 0d 0a) is not one of any interpreter pycguard knows";
    let mut all: Vec<(Evidence, String)> = vec![
        (
            Evidence::PartialWrite,
            "temporary file of a cache write that never completed; no interpreter reads it".into(),
        ),
        (
            Evidence::Misnamed,
            "not named NAME.TAG.pyc, so no interpreter looks for it".into(),
        ),
        (
            Evidence::UnreadLevel { level: "0".into() },
            "no interpreter reads .opt-0: optimisation level 0 has no suffix (NAME.TAG.pyc), and -O, -OO read .opt-1, .opt-2".into(),
        ),
        (
            Evidence::UnreadLevel { level: "01".into() },
            "no interpreter reads .opt-01: the level in a cache name is written without leading zeros (-O reads .opt-1, -OO .opt-2)".into(),
        ),
        (
            Evidence::TaggedOutOfPlace {
                tag: "cpython-312".into(),
            },
            "named for cpython-312 but outside __pycache__ and any pycache prefix; no interpreter looks for it here".into(),
        ),
        (
            Evidence::SourceMissing {
                source_name: "gone.py".into(),
            },
            "source gone.py does not exist; no interpreter imports this cache".into(),
        ),
        (
            Evidence::NoSourceName,
            "no source can be derived from this name".into(),
        ),
        (
            Evidence::LegacyIgnored {
                writer: py(3, 11),
                source_name: "m.py".into(),
            },
            "Python 3.11 ignores a legacy cache while m.py exists (it reads __pycache__)".into(),
        ),
        (
            Evidence::Ghost {
                source_name: "ghost.py".into(),
                writer: py(3, 11),
            },
            "source ghost.py deleted; Python 3.11 still imports this file".into(),
        ),
        (
            Evidence::Sourceless { writer: py(2, 7) },
            "no sources in this directory: a sourceless distribution (Python 2.7)".into(),
        ),
        (
            Evidence::SourcelessUnknownMagic {
                gone: Gone::NoSourcesInDirectory,
                error: unknown_magic(),
            },
            format!("no sources in this directory; {unknown}"),
        ),
        (
            Evidence::SourcelessUnimportable {
                gone: Gone::Deleted {
                    source_name: "m.py".into(),
                },
                damage: Damage::Header(truncated()),
            },
            "source m.py deleted, so importing the module reads this file, and that fails: header is truncated: 12 bytes where Python 3.12 writes 16".into(),
        ),
        (
            Evidence::SourcelessUnimportable {
                gone: Gone::NoSourcesInDirectory,
                damage: Damage::Body(eof()),
            },
            "no sources in this directory, so importing the module reads this file, and that fails: the body is damaged (EOF read where object expected (offset 10))".into(),
        ),
        (
            Evidence::MagicDisagreesWithTag {
                header_series: py(3, 11),
                magic: 3495,
                tag: "cpython-312".into(),
                reader: Reader::Importer,
                reader_series: S312,
            },
            "the header is Python 3.11's (magic 3495) but the name says cpython-312; Python 3.12 rejects it and recompiles it".into(),
        ),
        (
            Evidence::ForeignMagic {
                error: unknown_magic(),
                tag: "cpython-312-pytest-9.2.0".into(),
                reader: pytest92,
                reader_series: S312,
            },
            format!("{unknown}, but the name says cpython-312-pytest-9.2.0; pytest rejects it and rewrites it"),
        ),
        (
            Evidence::ForeignMagicBesideSource {
                error: unknown_magic(),
            },
            format!("{unknown}; Python 2, the only interpreter that reads a legacy cache beside its source, rejects it and recompiles it"),
        ),
        (
            Evidence::UnknownMagic {
                error: unknown_magic(),
            },
            unknown.into(),
        ),
        (
            Evidence::PytestRejectsFlags {
                flags: 7,
                mode: None,
                reader: pytest92,
            },
            "flags word 0x7: pytest 9.2 accepts only checked-hash caches (flags 0x3), so pytest rewrites it".into(),
        ),
        (
            Evidence::PytestRejectsFlags {
                flags: 3,
                mode: Some(InvalidationMode::CheckedHash),
                reader: pytest83,
            },
            "checked-hash cache (flags 0x3): pytest 8.3 accepts only timestamp caches (flags 0), so pytest rewrites it".into(),
        ),
        (
            Evidence::PytestRejectsFlags {
                flags: 1,
                mode: Some(InvalidationMode::UncheckedHash),
                reader: Reader::PytestUnknown,
            },
            "unchecked-hash cache (flags 0x1): pytest accepts only timestamp (flags 0) or checked-hash (flags 0x3) caches, so pytest rewrites it".into(),
        ),
        (
            Evidence::BadHeader {
                error: truncated(),
                reader: Reader::Importer,
                reader_series: Some(S312),
            },
            "header is truncated: 12 bytes where Python 3.12 writes 16; Python 3.12 regenerates it on import".into(),
        ),
        (
            Evidence::BadHeader {
                error: HeaderError::NoMagic { len: 2 },
                reader: Reader::Importer,
                reader_series: None,
            },
            "file is 2 bytes, too short to hold the 4-byte magic number; the interpreter regenerates it on import".into(),
        ),
        (
            Evidence::BadHeader {
                error: truncated(),
                reader: pytest83,
                reader_series: Some(S312),
            },
            "header is truncated: 12 bytes where Python 3.12 writes 16; pytest rewrites it".into(),
        ),
        (
            Evidence::WriterIgnoresPycache { writer: py(2, 7) },
            "written by Python 2.7, which never reads __pycache__".into(),
        ),
        (
            Evidence::MtimeMismatch {
                header: 1_700_000_000,
                source: 1_700_003_600,
            },
            format!(
                "source mtime {} differs from header {}",
                at(1_700_003_600),
                at(1_700_000_000)
            ),
        ),
        (
            Evidence::MtimeUnrepresentable {
                source: 1 << 32,
                writer: py(3, 6),
                rule: MtimeRule::Unmasked,
            },
            format!(
                "source mtime {} cannot match any Python 3.6 header (it compares the mtime unmasked), so the cache is rebuilt on every import",
                at(1 << 32)
            ),
        ),
        (
            Evidence::MtimeUnrepresentable {
                source: -5,
                writer: py(2, 7),
                rule: MtimeRule::SignExtended,
            },
            format!(
                "source mtime {} cannot match any Python 2.7 header (it compares the mtime sign-extended from 32 bits), so the cache is rebuilt on every import",
                at(-5)
            ),
        ),
        (
            Evidence::SizeMismatch {
                header: 42,
                source: 43,
            },
            "source is 43 bytes, header says 42".into(),
        ),
        (
            Evidence::HashMismatch {
                header: 0x0102_0304_0506_0708,
                source: 0x1112_1314_1516_1718,
                checked: false,
                reader: Reader::Importer,
                reader_series: py(3, 11),
            },
            "unchecked-hash cache: SipHash 0807060504030201 differs from source's 1817161514131211; Python 3.11 never checks it and runs the old code".into(),
        ),
        (
            Evidence::HashMismatch {
                header: 0x0102_0304_0506_0708,
                source: 0x1112_1314_1516_1718,
                checked: true,
                reader: Reader::Importer,
                reader_series: S312,
            },
            "SipHash 0807060504030201 differs from source's 1817161514131211; Python 3.12 checks it and recompiles".into(),
        ),
        (
            Evidence::HashMismatch {
                header: 0x0102_0304_0506_0708,
                source: 0x1112_1314_1516_1718,
                checked: true,
                reader: pytest92,
                reader_series: S312,
            },
            "SipHash 0807060504030201 differs from source's 1817161514131211; pytest checks it and rewrites it".into(),
        ),
        (
            Evidence::BodyDamaged {
                problem: eof(),
                reader: Reader::Importer,
                reader_series: S312,
            },
            "header matches but the body is damaged (EOF read where object expected (offset 10)); importing it with Python 3.12 fails".into(),
        ),
        (
            Evidence::BodyDamaged {
                problem: eof(),
                reader: pytest83,
                reader_series: S312,
            },
            "header matches but the body is damaged (EOF read where object expected (offset 10)); pytest rewrites it".into(),
        ),
        (
            Evidence::SourceNewerThanCache {
                source_ns: 1_700_000_000 * NS + 700_000_000,
                cache_ns: 1_700_000_000 * NS + 300_000_000,
                sized: true,
                reader: Reader::Importer,
                reader_series: S312,
            },
            format!(
                "source modified at {} after the cache was written at {}, yet the header matches (same second and size): Python 3.12 runs the cached code",
                at_ns(1_700_000_000 * NS + 700_000_000),
                at_ns(1_700_000_000 * NS + 300_000_000)
            ),
        ),
        (
            Evidence::SourceNewerThanCache {
                source_ns: 5 * NS,
                cache_ns: 4 * NS,
                sized: false,
                reader: Reader::Importer,
                reader_series: py(2, 7),
            },
            format!(
                "source modified at {} after the cache was written at {}, yet the header matches (same second; a Python 2 header holds no size): Python 2.7 runs the cached code",
                at_ns(5 * NS),
                at_ns(4 * NS)
            ),
        ),
        (
            Evidence::SourceReplaced {
                source_ctime_ns: 9 * NS,
                cache_ctime_ns: 2 * NS,
                sized: true,
                reader: pytest83,
                reader_series: S312,
            },
            format!(
                "source replaced or changed at {} (its ctime), after the cache was written at {}, while its mtime and size still match the header: a copy that keeps mtimes (tar -x, rsync -t, cp -p, a restore) leaves exactly this; pytest runs the cached rewritten code",
                at_ns(9 * NS),
                at_ns(2 * NS)
            ),
        ),
        (
            Evidence::SourceReplaced {
                source_ctime_ns: 9 * NS,
                cache_ctime_ns: 2 * NS,
                sized: false,
                reader: Reader::Importer,
                reader_series: py(2, 7),
            },
            format!(
                "source replaced or changed at {} (its ctime), after the cache was written at {}, while its mtime still matches the header (a Python 2 header holds no size): a copy that keeps mtimes (tar -x, rsync -t, cp -p, a restore) leaves exactly this; Python 2.7 runs the cached code",
                at_ns(9 * NS),
                at_ns(2 * NS)
            ),
        ),
        (
            Evidence::ProvenSame {
                prover: "Python 3.12.1".into(),
            },
            "the source changed after the cache was written, but it compiles to the same code (proven with Python 3.12.1)".into(),
        ),
        (
            Evidence::CodeDiffers {
                difference: Some("constant 60 became 300 in function get_timeout".into()),
                prover: "Python 3.11.7".into(),
                reader_series: Some(py(3, 11)),
            },
            "the cached code is not the source's: constant 60 became 300 in function get_timeout (compiled with Python 3.11.7); the header matches, so Python 3.11 runs the old code".into(),
        ),
        (
            Evidence::CodeDiffers {
                difference: None,
                prover: "Python 3.11.7".into(),
                reader_series: None,
            },
            "the cached code is not what the source compiles to (compiled with Python 3.11.7); the header matches, so the interpreter runs the old code".into(),
        ),
        (
            Evidence::SourceSyntaxError {
                line: Some(7),
                message: "invalid syntax".into(),
                reader_series: Some(py(3, 11)),
                source_name: Some("a.py".into()),
            },
            "Python 3.11 will run the old code; the source does not compile: a.py:7: SyntaxError: invalid syntax".into(),
        ),
        (
            Evidence::SourceSyntaxError {
                line: Some(7),
                message: "invalid syntax".into(),
                reader_series: Some(py(3, 11)),
                source_name: None,
            },
            "Python 3.11 will run the old code; the source does not compile: line 7: SyntaxError: invalid syntax".into(),
        ),
        (
            Evidence::SourceSyntaxError {
                line: None,
                message: "source code cannot contain null bytes".into(),
                reader_series: Some(py(3, 11)),
                source_name: Some("a.py".into()),
            },
            "Python 3.11 will run the old code; the source does not compile (source code cannot contain null bytes)".into(),
        ),
    ];
    let where_it_goes = "where the cache of x.py goes:";
    all.extend([
        (
            not_a_file(FileKind::Fifo, false, NotAFileAt::CacheOfSource),
            format!("a FIFO (named pipe) {where_it_goes} Python 3.12 opens it on `import x` and blocks forever"),
        ),
        (
            not_a_file(FileKind::CharDevice, true, NotAFileAt::CacheOfSource),
            format!("a symlink to a character device {where_it_goes} Python 3.12 reads the device on `import x` instead of a cache (from a /dev/zero it reads until memory runs out)"),
        ),
        (
            not_a_file(FileKind::Symlink, true, NotAFileAt::CacheOfSource),
            format!("a dangling symlink {where_it_goes} Python 3.12 cannot read a cache from it, compiles the source, and replaces it on the next import that can write here"),
        ),
        (
            not_a_file(FileKind::Directory, false, NotAFileAt::CacheOfSource),
            format!("a directory {where_it_goes} opening it fails, so Python 3.12 compiles the source on every import and can never write its cache"),
        ),
        (
            not_a_file(FileKind::Fifo, false, NotAFileAt::CacheOfMissingSource),
            "a FIFO (named pipe) named like a cache of x.py, which does not exist; no interpreter opens it".into(),
        ),
        (
            not_a_file(FileKind::Fifo, false, NotAFileAt::LegacyName),
            "a FIFO (named pipe) named like a legacy cache: Python 2 opens it on `import x` and blocks forever (Python 3 ignores it)".into(),
        ),
        (
            not_a_file(FileKind::Socket, false, NotAFileAt::LegacyName),
            "a socket, not a cache file; no interpreter takes it for one".into(),
        ),
        (
            not_a_file(FileKind::BlockDevice, false, NotAFileAt::OtherName),
            "a block device, not a cache file; no interpreter looks for this name".into(),
        ),
    ]);
    all
}

#[test]
fn every_variant_is_worded() {
    let mut seen = [false; VARIANTS];
    for (evidence, want) in examples() {
        assert_eq!(super::evidence(&evidence), want, "{evidence:?}");
        seen[variant(&evidence)] = true;
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|&i| !seen[i]).collect();
    assert!(
        missing.is_empty(),
        "variants without an example: {missing:?}"
    );
}

#[test]
fn a_reason_joins_the_evidence_and_the_deep_note() {
    let mut v = Verdict {
        state: State::Fresh,
        severity: Severity::Ok,
        evidence: None,
        unproven: None,
        interpreter: Some(S312),
        tag: Some("cpython-312".into()),
        invalidation: Some(InvalidationMode::Timestamp),
        optimization: Some(0),
        checked: Checked::Header,
        future_source_mtime: None,
    };
    assert_eq!(reason(&v), None);
    v.unproven = Some("no Python 3.12 interpreter found".into());
    assert_eq!(
        reason(&v).as_deref(),
        Some("not proven: no Python 3.12 interpreter found; judged by header only")
    );
    v.evidence = Some(Box::new(Evidence::SizeMismatch {
        header: 1,
        source: 2,
    }));
    assert_eq!(
        reason(&v).as_deref(),
        Some("source is 2 bytes, header says 1 (not proven: no Python 3.12 interpreter found; judged by header only)")
    );
    v.unproven = None;
    assert_eq!(
        reason(&v).as_deref(),
        Some("source is 2 bytes, header says 1")
    );
}

#[test]
fn names_that_are_not_utf8_are_printed_lossily() {
    use std::os::unix::ffi::OsStringExt;
    let e = Evidence::SourceMissing {
        source_name: std::ffi::OsString::from_vec(b"caf\xe9.py".to_vec()),
    };
    assert_eq!(
        super::evidence(&e),
        "source caf\u{fffd}.py does not exist; no interpreter imports this cache"
    );
}
