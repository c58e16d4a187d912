//! Unit tests of the judge over hand-built facts: the state, the evidence it records and
//! the reason `messages` words from it. Every rule here is also checked against caches
//! written by the real interpreters in `tests/interpreters.rs`.

use std::ffi::{OsStr, OsString};

use super::*;
use crate::layout::CacheName;
use crate::pyc::header::SourceStat;
use crate::pyc::magic::lookup;
use crate::pyc::source_hash::source_hash;

const M312: u16 = 3531;
const MTIME: u32 = 1_700_000_000;

/// The reason printed for a verdict.
fn reason_of(v: &Verdict) -> Option<String> {
    crate::messages::reason(v)
}

fn i32le(n: i32) -> [u8; 4] {
    n.to_le_bytes()
}

/// A minimal `<module>` code object in CPython 3.12's marshal layout (`return None`),
/// accepted by the real 3.12 `marshal.loads`.
fn body_312() -> Vec<u8> {
    let mut b = vec![b'c'];
    for n in [0, 0, 0, 1, 0] {
        b.extend(i32le(n));
    }
    let bytes = |b: &mut Vec<u8>, data: &[u8]| {
        b.push(b's');
        b.extend(i32le(data.len() as i32));
        b.extend(data);
    };
    let short = |b: &mut Vec<u8>, s: &[u8]| {
        b.push(b'z');
        b.push(s.len() as u8);
        b.extend(s);
    };
    bytes(&mut b, &[151, 0, 121, 0]);
    b.extend(b")\x01N)\x00)\x00");
    bytes(&mut b, b"");
    short(&mut b, b"x.py");
    short(&mut b, b"<module>");
    short(&mut b, b"<module>");
    b.extend(i32le(1));
    bytes(&mut b, b"");
    bytes(&mut b, b"");
    b
}

fn timestamp_pyc(magic: u16, mtime: u32, size: u32) -> Vec<u8> {
    let mut v = magic.to_le_bytes().to_vec();
    v.extend(b"\r\n");
    v.extend(0u32.to_le_bytes());
    v.extend(mtime.to_le_bytes());
    v.extend(size.to_le_bytes());
    v.extend(body_312());
    v
}

fn hash_pyc(magic: u16, flags: u32, hash: u64) -> Vec<u8> {
    let mut v = magic.to_le_bytes().to_vec();
    v.extend(b"\r\n");
    v.extend(flags.to_le_bytes());
    v.extend(hash.to_le_bytes());
    v.extend(body_312());
    v
}

fn tagged(tag: &str) -> CacheName {
    CacheName::Tagged {
        stem: OsString::from("mod"),
        tag: tag.into(),
        optimization: 0,
    }
}

fn legacy() -> CacheName {
    CacheName::Legacy {
        stem: OsString::from("mod"),
        pyo: false,
    }
}

/// A source whose ctime is its mtime (an ordinary edit).
fn present(secs: i64, nsec: u32, size: u64, hash: Option<u64>) -> SourceFacts {
    let mtime_ns = i128::from(secs) * 1_000_000_000 + i128::from(nsec);
    SourceFacts::Present {
        stat: SourceStat {
            mtime_secs: secs,
            mtime_nsec: nsec,
            size,
        },
        mtime_ns,
        ctime_ns: mtime_ns,
        hash,
    }
}

/// `source` with its inode changed at `ctime_ns` (a copy that kept the mtime).
fn with_ctime(source: SourceFacts, ctime_ns: i128) -> SourceFacts {
    match source {
        SourceFacts::Present {
            stat,
            mtime_ns,
            hash,
            ..
        } => SourceFacts::Present {
            stat,
            mtime_ns,
            ctime_ns,
            hash,
        },
        other => other,
    }
}

/// The cache file itself was written 2 s after the source's mtime.
const CACHE_WRITTEN: i128 = (MTIME as i128 + 2) * 1_000_000_000;
/// The check runs an hour later.
const NOW: i128 = CACHE_WRITTEN + 3600 * 1_000_000_000;

fn facts<'a>(
    name: &'a CacheName,
    location: Location,
    bytes: &'a [u8],
    body: &'a BodyFacts,
    source: SourceFacts,
) -> CacheFacts<'a> {
    CacheFacts {
        name,
        location,
        bytes,
        body,
        cache_mtime_ns: CACHE_WRITTEN,
        cache_ctime_ns: CACHE_WRITTEN,
        now_ns: NOW,
        source_name: Some(OsStr::new("mod.py")),
        source,
    }
}

fn judge_with(name: &CacheName, location: Location, bytes: &[u8], source: SourceFacts) -> Verdict {
    judge(&facts(name, location, bytes, &BodyFacts::of(bytes), source))
}

fn pycache(bytes: &[u8], source: SourceFacts) -> Verdict {
    judge_with(&tagged("cpython-312"), Location::PyCache, bytes, source)
}

#[test]
fn matching_timestamp_is_fresh_by_header() {
    let v = pycache(
        &timestamp_pyc(M312, MTIME, 42),
        present(MTIME.into(), 5, 42, None),
    );
    assert_eq!(v.state, State::Fresh);
    assert_eq!(v.severity, Severity::Ok);
    assert_eq!(v.evidence, None);
    assert_eq!(reason_of(&v), None);
    assert_eq!(v.checked, Checked::Header);
    assert_eq!(v.interpreter, Some(Series::cpython(3, 12)));
    assert_eq!(v.invalidation, Some(InvalidationMode::Timestamp));
    assert_eq!(v.optimization, Some(0));
    assert_eq!(v.tag.as_deref(), Some("cpython-312"));
}

#[test]
fn mtime_or_size_mismatch_is_stale() {
    let v = pycache(
        &timestamp_pyc(M312, MTIME, 42),
        present(i64::from(MTIME) + 4, 0, 42, None),
    );
    assert_eq!(v.state, State::Stale);
    assert_eq!(v.severity, Severity::Warning);
    assert_eq!(
        v.evidence.as_deref(),
        Some(&Evidence::MtimeMismatch {
            header: MTIME,
            source: i64::from(MTIME) + 4
        })
    );
    let reason = reason_of(&v).unwrap();
    assert!(
        reason.starts_with("source mtime ") && reason.contains(" differs from header "),
        "{reason}"
    );
    let v = pycache(
        &timestamp_pyc(M312, MTIME, 42),
        present(MTIME.into(), 0, 43, None),
    );
    assert_eq!(v.state, State::Stale);
    assert_eq!(
        v.evidence.as_deref(),
        Some(&Evidence::SizeMismatch {
            header: 42,
            source: 43
        })
    );
    assert_eq!(
        reason_of(&v).as_deref(),
        Some("source is 43 bytes, header says 42")
    );
}

#[test]
fn source_changed_after_cache_write_is_suspect() {
    let name = tagged("cpython-312");
    let bytes = timestamp_pyc(M312, MTIME, 42);
    let body = BodyFacts::of(&bytes);
    let written = i128::from(MTIME) * 1_000_000_000 + 300_000_000;
    let v = judge(&CacheFacts {
        cache_mtime_ns: written,
        cache_ctime_ns: written,
        ..facts(
            &name,
            Location::PyCache,
            &bytes,
            &body,
            present(MTIME.into(), 700_000_000, 42, None),
        )
    });
    assert_eq!(v.state, State::Suspect);
    assert_eq!(v.severity, Severity::Warning);
    assert_eq!(
        v.evidence.as_deref(),
        Some(&Evidence::SourceNewerThanCache {
            source_ns: i128::from(MTIME) * 1_000_000_000 + 700_000_000,
            cache_ns: written,
            sized: true,
            reader: Reader::Importer,
            reader_series: Series::cpython(3, 12),
        })
    );
    let reason = reason_of(&v).unwrap();
    assert!(reason.contains("runs the cached code"), "{reason}");
    assert!(reason.contains("same second and size"), "{reason}");
    assert_eq!(v.future_source_mtime, None);
}

#[test]
fn a_source_replaced_with_its_mtime_kept_is_suspect_by_its_ctime() {
    let bytes = timestamp_pyc(M312, MTIME, 42);
    let source = present(MTIME.into(), 0, 42, None);
    // Replaced an hour after the cache was written, mtime and size restored.
    let replaced = with_ctime(source, CACHE_WRITTEN + 3600 * 1_000_000_000);
    let v = pycache(&bytes, replaced);
    assert_eq!((v.state, v.severity), (State::Suspect, Severity::Warning));
    assert_eq!(
        v.evidence.as_deref(),
        Some(&Evidence::SourceReplaced {
            source_ctime_ns: CACHE_WRITTEN + 3600 * 1_000_000_000,
            cache_ctime_ns: CACHE_WRITTEN,
            sized: true,
            reader: Reader::Importer,
            reader_series: Series::cpython(3, 12),
        })
    );
    let reason = reason_of(&v).unwrap();
    assert!(reason.contains("(its ctime)"), "{reason}");
    assert!(reason.contains("mtime and size still match"), "{reason}");
    assert!(
        reason.contains("Python 3.12 runs the cached code"),
        "{reason}"
    );
    // Within the tolerance (a tree copied or chowned in one go) it is no evidence.
    let v = pycache(
        &bytes,
        with_ctime(source, CACHE_WRITTEN + CTIME_TOLERANCE_NS),
    );
    assert_eq!(v.state, State::Fresh, "{v:?}");
    // Changed before the cache was written: the ordinary case.
    let v = pycache(&bytes, with_ctime(source, CACHE_WRITTEN - 1));
    assert_eq!(v.state, State::Fresh);
    // The cache itself was copied with its mtime kept (cp -a, tar -x) a while ago: its
    // ctime no longer says when it was written, so it is no evidence.
    let body = BodyFacts::of(&bytes);
    let name = tagged("cpython-312");
    let copied = CacheFacts {
        cache_ctime_ns: CACHE_WRITTEN + 600 * 1_000_000_000,
        ..facts(&name, Location::PyCache, &bytes, &body, replaced)
    };
    assert!(!written_in_place(&copied));
    assert_eq!(judge(&copied).state, State::Fresh);
    // A checked-hash cache is verified by the interpreter: ctime says nothing more.
    let magic = lookup([0xcb, 0x0d, 0x0d, 0x0a]).unwrap();
    let good = source_hash(&magic, b"x = 1\n").unwrap();
    let v = pycache(
        &hash_pyc(M312, 3, good),
        with_ctime(present(1, 0, 6, Some(good)), NOW),
    );
    assert_eq!(v.state, State::Fresh);
}

#[test]
fn a_future_source_mtime_is_no_evidence_of_an_edit() {
    // CPython's own tests use 2**32 - 1, 2**33 - 5 and 2**35.
    for secs in [(1i64 << 32) - 1, (1 << 33) - 5, 1 << 35] {
        let masked = (secs & 0xFFFF_FFFF) as u32;
        // The mtime was set (os.utime) before the import wrote the cache.
        let source = with_ctime(present(secs, 0, 42, None), CACHE_WRITTEN - 1);
        let v = pycache(&timestamp_pyc(M312, masked, 42), source);
        assert_eq!(
            (v.state, reason_of(&v).as_deref()),
            (State::Fresh, None),
            "{secs}"
        );
        assert_eq!(
            v.future_source_mtime,
            Some(i128::from(secs) * 1_000_000_000)
        );
        // 3.6 compares unmasked: stale from 2**32 on, future or not.
        let mut six = timestamp_pyc(3379, masked, 42);
        six.drain(4..8);
        let name = tagged("cpython-36");
        let v = judge(&facts(
            &name,
            Location::PyCache,
            &six,
            &BodyFacts::Valid,
            source,
        ));
        let want = if secs < 1 << 32 {
            State::Fresh
        } else {
            State::Stale
        };
        assert_eq!(v.state, want, "{secs}: {v:?}");
    }
}

#[test]
fn python2_reasons_never_claim_a_size() {
    let mut py2 = vec![0x03, 0xf3, 0x0d, 0x0a];
    py2.extend(MTIME.to_le_bytes());
    py2.extend(b"N");
    let body = BodyFacts::Valid;
    let name = legacy();
    let same_second = judge(&CacheFacts {
        cache_mtime_ns: i128::from(MTIME) * 1_000_000_000 + 100,
        cache_ctime_ns: i128::from(MTIME) * 1_000_000_000 + 100,
        ..facts(
            &name,
            Location::Beside,
            &py2,
            &body,
            present(MTIME.into(), 500, 7, None),
        )
    });
    let replaced = judge(&facts(
        &name,
        Location::Beside,
        &py2,
        &body,
        with_ctime(present(MTIME.into(), 0, 7, None), NOW),
    ));
    for v in [same_second, replaced] {
        assert_eq!(v.state, State::Suspect, "{v:?}");
        let reason = reason_of(&v).unwrap();
        assert!(!reason.contains("and size"), "{reason}");
        assert!(reason.contains("holds no size"), "{reason}");
    }
}

#[test]
fn hash_based_caches() {
    let magic = lookup([0xcb, 0x0d, 0x0d, 0x0a]).unwrap();
    let good = source_hash(&magic, b"x = 1\n").unwrap();
    let other = source_hash(&magic, b"x = 2\n").unwrap();

    let v = pycache(&hash_pyc(M312, 3, good), present(1, 0, 6, Some(good)));
    assert_eq!((v.state, v.checked), (State::Fresh, Checked::Hash));
    assert_eq!(v.invalidation, Some(InvalidationMode::CheckedHash));

    let v = pycache(&hash_pyc(M312, 3, good), present(1, 0, 6, Some(other)));
    assert_eq!(v.state, State::Stale);
    assert!(reason_of(&v).unwrap().contains("checks it and recompiles"));

    let v = pycache(&hash_pyc(M312, 1, good), present(1, 0, 6, Some(good)));
    assert_eq!(
        (v.state, v.invalidation),
        (State::Fresh, Some(InvalidationMode::UncheckedHash))
    );

    let v = pycache(&hash_pyc(M312, 1, good), present(1, 0, 6, Some(other)));
    assert_eq!(v.state, State::HiddenStale);
    assert_eq!(v.severity, Severity::Error);
    assert_eq!(v.checked, Checked::Hash);
    assert_eq!(
        v.evidence.as_deref(),
        Some(&Evidence::HashMismatch {
            header: good,
            source: other,
            checked: false,
            reader: Reader::Importer,
            reader_series: Series::cpython(3, 12),
        })
    );
    let reason = reason_of(&v).unwrap();
    assert!(
        reason.contains(&crate::pyc::source_hash::stored_hex(good)),
        "{reason}"
    );
    assert!(
        reason.contains(&crate::pyc::source_hash::stored_hex(other)),
        "{reason}"
    );
}

#[test]
fn damaged_body_under_an_accepted_header_fails_the_import() {
    let mut bytes = timestamp_pyc(M312, MTIME, 42);
    bytes.truncate(16 + 10);
    let v = pycache(&bytes, present(MTIME.into(), 0, 42, None));
    assert_eq!(v.state, State::Corrupt);
    assert_eq!(v.severity, Severity::Error);
    assert!(matches!(
        v.evidence.as_deref(),
        Some(&Evidence::BodyDamaged {
            reader: Reader::Importer,
            ..
        })
    ));
    assert!(reason_of(&v)
        .unwrap()
        .contains("importing it with Python 3.12 fails"));

    // Under a stale header the body is never loaded: the cache is simply rebuilt.
    let v = pycache(&bytes, present(i64::from(MTIME) + 1, 0, 42, None));
    assert_eq!(v.state, State::Stale);

    // pytest reads the body inside a try and rewrites the cache.
    let v = judge_with(
        &tagged("cpython-312-pytest-8.3.4"),
        Location::PyCache,
        &bytes,
        present(MTIME.into(), 0, 42, None),
    );
    assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
}

#[test]
fn unusable_headers_are_regenerated_corrupt_warnings() {
    let src = present(MTIME.into(), 0, 42, None);
    let v = pycache(b"\xcb\x0d", src);
    assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
    assert!(reason_of(&v)
        .unwrap()
        .contains("Python 3.12 regenerates it"));
    let full = timestamp_pyc(M312, MTIME, 42);
    let v = pycache(&full[..12], src);
    assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
    let mut flags = full.clone();
    flags[4] = 4;
    let v = pycache(&flags, src);
    assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
    assert!(reason_of(&v).unwrap().contains("invalid flags"));
}

#[test]
fn unknown_magic_under_a_known_tag_is_stale() {
    let mut bytes = timestamp_pyc(M312, MTIME, 42);
    bytes[0] = 0x42;
    bytes[1] = 0x0e; // 3650: newer than pycguard knows
    let src = present(MTIME.into(), 0, 42, None);
    let v = pycache(&bytes, src);
    assert_eq!((v.state, v.severity), (State::Stale, Severity::Warning));
    assert_eq!(v.invalidation, None);
    assert_eq!(
        v.interpreter,
        Some(Series::cpython(3, 12)),
        "falls back to the tag"
    );
    assert!(matches!(
        v.evidence.as_deref(),
        Some(&Evidence::ForeignMagic {
            error: HeaderError::UnknownMagic { .. },
            ..
        })
    ));
    assert!(
        reason_of(&v).unwrap().contains("Python 3.12 rejects it"),
        "named for the tag's interpreter"
    );
    // Garbage, as CPython's test_bad_magic writes it.
    let mut zeros = timestamp_pyc(M312, MTIME, 42);
    zeros[..4].copy_from_slice(&[0; 4]);
    let v = pycache(&zeros, src);
    assert_eq!((v.state, v.severity), (State::Stale, Severity::Warning));
    // A tag of a Python newer than pycguard knows: 3650 may well be its magic.
    let v = judge_with(&tagged("cpython-315"), Location::PyCache, &bytes, src);
    assert_eq!((v.state, v.severity), (State::Unknown, Severity::Info));
    // But garbage is no interpreter's magic.
    let v = judge_with(&tagged("cpython-315"), Location::PyCache, &zeros, src);
    assert_eq!(v.state, State::Stale);
    // A tag that names no series: nobody to say who reads it.
    let v = judge_with(&tagged("jython-27"), Location::PyCache, &zeros, src);
    assert_eq!((v.state, v.severity), (State::Unknown, Severity::Info));
}

#[test]
fn magic_that_disagrees_with_the_tag_is_stale() {
    let v = pycache(
        &timestamp_pyc(3495, MTIME, 42),
        present(MTIME.into(), 0, 42, None),
    );
    assert_eq!(v.state, State::Stale);
    assert_eq!(v.interpreter, Some(Series::cpython(3, 11)));
    assert_eq!(
        v.evidence.as_deref(),
        Some(&Evidence::MagicDisagreesWithTag {
            header_series: Series::cpython(3, 11),
            magic: 3495,
            tag: "cpython-312".into(),
            reader: Reader::Importer,
            reader_series: Series::cpython(3, 12),
        })
    );
    assert!(reason_of(&v).unwrap().contains("Python 3.12 rejects it"));
}

#[test]
fn missing_sources() {
    let bytes = timestamp_pyc(M312, MTIME, 42);
    let v = pycache(
        &bytes,
        SourceFacts::Missing {
            dir_has_sources: true,
        },
    );
    assert_eq!((v.state, v.severity), (State::Orphan, Severity::Warning));

    let v = judge_with(
        &legacy(),
        Location::Beside,
        &bytes,
        SourceFacts::Missing {
            dir_has_sources: true,
        },
    );
    assert_eq!((v.state, v.severity), (State::Ghost, Severity::Error));
    assert_eq!(
        v.evidence.as_deref(),
        Some(&Evidence::Ghost {
            source_name: "mod.py".into(),
            writer: Series::cpython(3, 12)
        })
    );
    assert_eq!(
        reason_of(&v).as_deref(),
        Some("source mod.py deleted; Python 3.12 still imports this file")
    );

    let v = judge_with(
        &legacy(),
        Location::Beside,
        &bytes,
        SourceFacts::Missing {
            dir_has_sources: false,
        },
    );
    assert_eq!((v.state, v.severity), (State::Sourceless, Severity::Info));

    let mut damaged = bytes.clone();
    damaged.truncate(20);
    let v = judge_with(
        &legacy(),
        Location::Beside,
        &damaged,
        SourceFacts::Missing {
            dir_has_sources: false,
        },
    );
    assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Error));
}

#[test]
fn a_sourceless_legacy_cache_whose_import_fails_is_corrupt() {
    let full = timestamp_pyc(M312, MTIME, 42);
    let mut zeros = full.clone();
    zeros[..4].copy_from_slice(&[0; 4]);
    let mut flags = full.clone();
    flags[4] = 4;
    // CPython's SourcelessLoaderBadBytecodeTest states, and a damaged body.
    let states: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("partial magic", full[..3].to_vec()),
        ("magic only", full[..4].to_vec()),
        ("bad magic", zeros),
        ("partial flags", full[..7].to_vec()),
        ("partial timestamp", full[..11].to_vec()),
        ("partial hash", full[..13].to_vec()),
        ("partial size", full[..15].to_vec()),
        ("invalid flags", flags),
        ("no marshal", full[..16].to_vec()),
        ("bad marshal", [&full[..16], &b"<test>"[..]].concat()),
    ];
    for (what, bytes) in &states {
        for dir_has_sources in [true, false] {
            let v = judge_with(
                &legacy(),
                Location::Beside,
                bytes,
                SourceFacts::Missing { dir_has_sources },
            );
            assert_eq!(
                (v.state, v.severity),
                (State::Corrupt, Severity::Error),
                "{what} ({dir_has_sources}): {v:?}"
            );
            assert!(reason_of(&v).unwrap().contains("fails"), "{what}");
        }
    }
    // The magic of a Python newer than pycguard knows is not damage.
    let mut newer = full.clone();
    newer[..2].copy_from_slice(&3650u16.to_le_bytes());
    let v = judge_with(
        &legacy(),
        Location::Beside,
        &newer,
        SourceFacts::Missing {
            dir_has_sources: false,
        },
    );
    assert_eq!((v.state, v.severity), (State::Unknown, Severity::Info));
}

#[test]
fn an_unread_optimisation_level_is_an_orphan() {
    let name = CacheName::UnreadLevel {
        stem: "mod".into(),
        tag: "cpython-312".into(),
        level: "0".into(),
    };
    let v = judge_with(
        &name,
        Location::PyCache,
        &timestamp_pyc(M312, MTIME, 42),
        SourceFacts::NotApplicable,
    );
    assert_eq!((v.state, v.severity), (State::Orphan, Severity::Warning));
    assert!(reason_of(&v).unwrap().contains(".opt-0"));
    assert_eq!(v.tag.as_deref(), Some("cpython-312"));
}

#[test]
fn pytest_caches_are_judged_as_their_pytest_version_reads_them() {
    let magic = lookup([0xcb, 0x0d, 0x0d, 0x0a]).unwrap();
    let good = source_hash(&magic, b"x = 1\n").unwrap();
    let other = source_hash(&magic, b"x = 2\n").unwrap();
    let src = |hash| present(MTIME.into(), 0, 6, hash);
    let new = tagged("cpython-312-pytest-9.2.0");
    let old = tagged("cpython-312-pytest-8.3.4");
    let odd = tagged("cpython-312-pytest-unknown");
    let j =
        |name: &CacheName, bytes: &[u8], source| judge_with(name, Location::PyCache, bytes, source);

    // pytest 9.2 writes checked-hash caches and reads nothing else.
    let v = j(&new, &hash_pyc(M312, 3, good), src(Some(good)));
    assert_eq!((v.state, v.checked), (State::Fresh, Checked::Hash), "{v:?}");
    let v = j(&new, &hash_pyc(M312, 3, good), src(Some(other)));
    assert_eq!(v.state, State::Stale);
    assert!(reason_of(&v)
        .unwrap()
        .contains("pytest checks it and rewrites it"));
    let v = j(&new, &timestamp_pyc(M312, MTIME, 6), src(None));
    assert_eq!(v.state, State::Stale);
    assert!(reason_of(&v)
        .unwrap()
        .contains("pytest 9.2 accepts only checked-hash"));
    let v = j(&new, &hash_pyc(M312, 1, good), src(Some(good)));
    assert_eq!(v.state, State::Stale, "unchecked hash: {v:?}");

    // pytest 9.1 and older write timestamp caches and read nothing else.
    let v = j(&old, &timestamp_pyc(M312, MTIME, 6), src(None));
    assert_eq!(v.state, State::Fresh, "{v:?}");
    let v = j(&old, &hash_pyc(M312, 3, good), src(Some(good)));
    assert_eq!(v.state, State::Stale);
    assert!(reason_of(&v)
        .unwrap()
        .contains("pytest 8.3 accepts only timestamp"));
    let v = j(
        &old,
        &timestamp_pyc(M312, MTIME, 6),
        with_ctime(src(None), NOW),
    );
    assert_eq!(v.state, State::Suspect);
    assert!(reason_of(&v)
        .unwrap()
        .contains("pytest runs the cached rewritten code"));

    // A version that cannot be read: either kind it writes.
    assert_eq!(
        j(&odd, &timestamp_pyc(M312, MTIME, 6), src(None)).state,
        State::Fresh
    );
    assert_eq!(
        j(&odd, &hash_pyc(M312, 3, good), src(Some(good))).state,
        State::Fresh
    );
    assert_eq!(
        j(&odd, &hash_pyc(M312, 1, good), src(Some(good))).state,
        State::Stale
    );

    // Garbage magic and bad flags: pytest's `_read_pyc` returns None and rewrites.
    let mut zeros = hash_pyc(M312, 3, good);
    zeros[..4].copy_from_slice(&[0; 4]);
    let v = j(&new, &zeros, src(Some(good)));
    assert_eq!((v.state, v.severity), (State::Stale, Severity::Warning));
    let v = j(&new, &hash_pyc(M312, 7, good), src(Some(good)));
    assert_eq!((v.state, v.severity), (State::Stale, Severity::Warning));
    // A damaged body is caught by pytest too.
    let mut damaged = hash_pyc(M312, 3, good);
    damaged.truncate(20);
    let v = j(&new, &damaged, src(Some(good)));
    assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
}

#[test]
fn garbage_magic_beside_its_source_is_rebuilt_by_python_2() {
    let mut zeros = timestamp_pyc(M312, MTIME, 42);
    zeros[..4].copy_from_slice(&[0; 4]);
    let v = judge_with(
        &legacy(),
        Location::Beside,
        &zeros,
        present(MTIME.into(), 0, 42, None),
    );
    assert_eq!((v.state, v.severity), (State::Stale, Severity::Warning));
    assert!(reason_of(&v)
        .unwrap()
        .contains("Python 2, the only interpreter"));
}

#[test]
fn python3_legacy_beside_its_source_is_an_orphan() {
    let v = judge_with(
        &legacy(),
        Location::Beside,
        &timestamp_pyc(M312, MTIME, 42),
        present(MTIME.into(), 0, 42, None),
    );
    assert_eq!(v.state, State::Orphan);
    assert_eq!(v.optimization, None);
    assert_eq!(v.tag, None);
}

#[test]
fn python2_rules_for_legacy_caches() {
    let mut py2 = vec![0x03, 0xf3, 0x0d, 0x0a];
    py2.extend(MTIME.to_le_bytes());
    py2.extend(b"c");
    let v = judge_with(
        &legacy(),
        Location::Beside,
        &py2,
        present(MTIME.into(), 0, 999, None),
    );
    assert_eq!(v.interpreter, Some(Series::cpython(2, 7)));
    assert_ne!(v.state, State::Stale, "Python 2 has no size check: {v:?}");
    // Named for 3.12 in __pycache__: 3.12 reads it, finds Python 2's magic and recompiles.
    let v = pycache(&py2, present(MTIME.into(), 0, 999, None));
    assert_eq!(v.state, State::Stale);
    assert!(reason_of(&v).unwrap().contains("Python 3.12 rejects it"));
    // Under a tag that names no series, Python 2 never reads __pycache__.
    let v = judge_with(
        &tagged("jython-27"),
        Location::PyCache,
        &py2,
        present(MTIME.into(), 0, 999, None),
    );
    assert_eq!(v.state, State::Orphan);
}

#[test]
fn debris_and_misplaced_names_are_orphans() {
    for name in [
        CacheName::PartialWrite,
        CacheName::Misnamed,
        CacheName::TaggedOutOfPlace {
            stem: "m".into(),
            tag: "cpython-312".into(),
        },
        CacheName::UnreadLevel {
            stem: "m".into(),
            tag: "cpython-312".into(),
            level: "x".into(),
        },
    ] {
        let v = judge_with(&name, Location::PyCache, b"", SourceFacts::NotApplicable);
        assert_eq!(v.state, State::Orphan, "{name:?}");
        assert!(reason_of(&v).is_some());
    }
}

#[test]
fn state_names_round_trip() {
    for s in State::ALL {
        assert_eq!(State::from_name(s.name()), Some(s));
    }
    assert_eq!(State::from_name("nope"), None);
}

mod not_a_file {
    use super::*;

    fn tagged312() -> CacheName {
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

    fn judge_path(name: &CacheName, source: SourceFacts, kind: FileKind, link: bool) -> Verdict {
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
            let v = judge_path(&tagged312(), present(), kind, link);
            assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Error));
            let reason = reason_of(&v).unwrap();
            assert!(reason.contains("import x"), "{reason}");
            assert_eq!(reason.starts_with("a symlink to"), link, "{reason}");
        }
        let v = judge_path(&tagged312(), present(), FileKind::Fifo, false);
        assert_eq!(
            reason_of(&v).as_deref(),
            Some("a FIFO (named pipe) where the cache of x.py goes: Python 3.12 opens it on `import x` and blocks forever")
        );
    }

    #[test]
    fn what_the_importer_replaces_or_skips_is_a_warning() {
        let v = judge_path(&tagged312(), present(), FileKind::Socket, false);
        assert_eq!((v.state, v.severity), (State::Stale, Severity::Warning));
        let v = judge_path(&tagged312(), present(), FileKind::Symlink, true);
        assert_eq!(v.state, State::Stale);
        assert!(reason_of(&v).unwrap().starts_with("a dangling symlink"));
        let v = judge_path(&tagged312(), present(), FileKind::Directory, false);
        assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
        let missing = SourceFacts::Missing {
            dir_has_sources: true,
        };
        assert_eq!(
            judge_path(&tagged312(), missing, FileKind::Fifo, false).state,
            State::Orphan
        );
        let legacy = CacheName::Legacy {
            stem: "x".into(),
            pyo: false,
        };
        let v = judge_path(&legacy, missing, FileKind::Fifo, false);
        assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Error));
        assert!(reason_of(&v).unwrap().contains("Python 2"));
        assert_eq!(
            judge_path(&legacy, present(), FileKind::Socket, false).state,
            State::Orphan
        );
        assert_eq!(
            judge_path(&CacheName::PartialWrite, present(), FileKind::Fifo, false).state,
            State::Orphan
        );
    }

    #[test]
    fn what_was_found_is_the_evidence() {
        let found = NotAFile {
            kind: FileKind::Fifo,
            via_symlink: true,
        };
        let v = judge_not_a_file(&tagged312(), present(), Some(OsStr::new("x.py")), found);
        assert_eq!(
            v.evidence.as_deref(),
            Some(&Evidence::NotAFile {
                found,
                at: NotAFileAt::CacheOfSource,
                source_name: "x.py".into(),
                reader_series: Some(Series::cpython(3, 12)),
            })
        );
    }
}

/// The judge records what it saw and words nothing: no sentence, no date, no local time
/// is made in `verdict` (they are written in `messages`).
#[test]
fn the_judge_formats_nothing() {
    for (file, text) in [
        ("verdict.rs", include_str!("../verdict.rs")),
        ("verdict/evidence.rs", include_str!("evidence.rs")),
    ] {
        for word in ["timefmt", "chrono", "format!", "write!", ".to_string()"] {
            assert!(!text.contains(word), "{file} uses {word}");
        }
    }
}
