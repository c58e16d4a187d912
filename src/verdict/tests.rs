//! Unit tests of the judge over hand-built facts. Every rule here is also checked against
//! caches written by the real interpreters in `tests/interpreters.rs`.

use std::ffi::{OsStr, OsString};

use super::*;
use crate::layout::CacheName;
use crate::pyc::header::SourceStat;
use crate::pyc::magic::lookup;
use crate::pyc::source_hash::source_hash;

const M312: u16 = 3531;
const MTIME: u32 = 1_700_000_000;

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

fn present(secs: i64, nsec: u32, size: u64, hash: Option<u64>) -> SourceFacts {
    SourceFacts::Present {
        stat: SourceStat {
            mtime_secs: secs,
            mtime_nsec: nsec,
            size,
        },
        mtime_ns: i128::from(secs) * 1_000_000_000 + i128::from(nsec),
        hash,
    }
}

/// The cache file itself was written 2 s after the source's mtime.
const CACHE_WRITTEN: i128 = (MTIME as i128 + 2) * 1_000_000_000;

fn judge_with(name: &CacheName, location: Location, bytes: &[u8], source: SourceFacts) -> Verdict {
    judge(&CacheFacts {
        name,
        location,
        bytes,
        body: &BodyFacts::of(bytes),
        cache_mtime_ns: CACHE_WRITTEN,
        source_name: Some(OsStr::new("mod.py")),
        source,
    })
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
    assert_eq!(v.reason, None);
    assert_eq!(v.checked, Checked::Header);
    assert_eq!(v.interpreter, Some(Series::cpython(3, 12)));
    assert_eq!(v.invalidation, Some("timestamp"));
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
    let reason = v.reason.unwrap();
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
        v.reason.as_deref(),
        Some("source is 43 bytes, header says 42")
    );
}

#[test]
fn source_changed_after_cache_write_is_suspect() {
    let name = tagged("cpython-312");
    let bytes = timestamp_pyc(M312, MTIME, 42);
    let v = judge(&CacheFacts {
        name: &name,
        location: Location::PyCache,
        bytes: &bytes,
        body: &BodyFacts::of(&bytes),
        cache_mtime_ns: i128::from(MTIME) * 1_000_000_000 + 300_000_000,
        source_name: Some(OsStr::new("mod.py")),
        source: present(MTIME.into(), 700_000_000, 42, None),
    });
    assert_eq!(v.state, State::Suspect);
    assert_eq!(v.severity, Severity::Warning);
    assert!(v.reason.unwrap().contains("runs the cached code"));
}

#[test]
fn hash_based_caches() {
    let magic = lookup([0xcb, 0x0d, 0x0d, 0x0a]).unwrap();
    let good = source_hash(&magic, b"x = 1\n").unwrap();
    let other = source_hash(&magic, b"x = 2\n").unwrap();

    let v = pycache(&hash_pyc(M312, 3, good), present(1, 0, 6, Some(good)));
    assert_eq!((v.state, v.checked), (State::Fresh, Checked::Hash));
    assert_eq!(v.invalidation, Some("checked-hash"));

    let v = pycache(&hash_pyc(M312, 3, good), present(1, 0, 6, Some(other)));
    assert_eq!(v.state, State::Stale);
    assert!(v.reason.unwrap().contains("checks it and recompiles"));

    let v = pycache(&hash_pyc(M312, 1, good), present(1, 0, 6, Some(good)));
    assert_eq!(
        (v.state, v.invalidation),
        (State::Fresh, Some("unchecked-hash"))
    );

    let v = pycache(&hash_pyc(M312, 1, good), present(1, 0, 6, Some(other)));
    assert_eq!(v.state, State::HiddenStale);
    assert_eq!(v.severity, Severity::Error);
    assert_eq!(v.checked, Checked::Hash);
    let reason = v.reason.unwrap();
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
    assert!(v
        .reason
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
    assert!(v.reason.unwrap().contains("Python 3.12 regenerates it"));
    let full = timestamp_pyc(M312, MTIME, 42);
    let v = pycache(&full[..12], src);
    assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
    let mut flags = full.clone();
    flags[4] = 4;
    let v = pycache(&flags, src);
    assert_eq!((v.state, v.severity), (State::Corrupt, Severity::Warning));
    assert!(v.reason.unwrap().contains("invalid flags"));
}

#[test]
fn unknown_magic_is_info() {
    let mut bytes = timestamp_pyc(M312, MTIME, 42);
    bytes[0] = 0x42;
    bytes[1] = 0x0e; // 3650: newer than pycguard knows
    let v = pycache(&bytes, present(MTIME.into(), 0, 42, None));
    assert_eq!((v.state, v.severity), (State::Unknown, Severity::Info));
    assert_eq!(v.invalidation, None);
    assert_eq!(
        v.interpreter,
        Some(Series::cpython(3, 12)),
        "falls back to the tag"
    );
}

#[test]
fn magic_that_disagrees_with_the_tag_is_stale() {
    let v = pycache(
        &timestamp_pyc(3495, MTIME, 42),
        present(MTIME.into(), 0, 42, None),
    );
    assert_eq!(v.state, State::Stale);
    assert_eq!(v.interpreter, Some(Series::cpython(3, 11)));
    assert!(v.reason.unwrap().contains("Python 3.12 rejects it"));
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
        v.reason.as_deref(),
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
    // Python 2 never reads __pycache__.
    let v = pycache(&py2, present(MTIME.into(), 0, 999, None));
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
    ] {
        let v = judge_with(&name, Location::PyCache, b"", SourceFacts::NotApplicable);
        assert_eq!(v.state, State::Orphan, "{name:?}");
        assert!(v.reason.is_some());
    }
}

#[test]
fn state_names_round_trip() {
    for s in State::ALL {
        assert_eq!(State::from_name(s.name()), Some(s));
    }
    assert_eq!(State::from_name("nope"), None);
}
