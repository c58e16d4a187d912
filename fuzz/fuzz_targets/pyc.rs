//! Fuzz the pure pyc parsers with arbitrary cache files: the header parser, the marshal
//! walk under the cache's own dialect and under every CPython dialect, and the judge.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run pyc` from the repository root (see README).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pycguard::layout::CacheName;
use pycguard::messages;
use pycguard::pyc::{header, marshal};
use pycguard::verdict::{self, BodyFacts, CacheFacts, Location, SourceFacts};

/// One magic of each marshal dialect pycguard knows.
const DIALECT_MAGICS: &[u16] = &[62211, 3379, 3394, 3413, 3439, 3495, 3531, 3571, 3627];

fuzz_target!(|data: &[u8]| {
    let _ = header::parse(data);
    let body = BodyFacts::of(data);
    for &magic in DIALECT_MAGICS {
        if let Some(dialect) = marshal::Dialect::cpython(magic) {
            let valid = marshal::validate(data, dialect).is_ok();
            let summary = marshal::summarize(data, dialect);
            assert_eq!(valid, summary.is_ok(), "validate and summarize disagree");
        }
    }
    let name = CacheName::Tagged {
        stem: "m".into(),
        tag: "cpython-312".into(),
        optimization: 0,
    };
    for source in [
        SourceFacts::Missing { dir_has_sources: true },
        SourceFacts::Present {
            stat: header::SourceStat { mtime_secs: 1_700_000_000, mtime_nsec: 0, size: 10 },
            mtime_ns: 1_700_000_000_000_000_000,
            ctime_ns: 1_700_000_000_000_000_000,
            hash: Some(0x1234),
        },
    ] {
        let v = verdict::judge(&CacheFacts {
            name: &name,
            location: Location::PyCache,
            bytes: data,
            body: &body,
            cache_mtime_ns: 0,
            cache_ctime_ns: 0,
            now_ns: 1_800_000_000_000_000_000,
            source_name: None,
            source,
        });
        assert!(v.state == verdict::State::Fresh || v.evidence.is_some());
        // Wording any evidence never panics.
        let _ = messages::reason(&v);
    }
});
