//! The magic-number table: which interpreter series wrote a cache, and therefore which
//! rules (header layout, mtime comparison, source-hash algorithm, marshal dialect) judge it.
//!
//! A cache is judged by the rules of the series that wrote it, never by the rules of the
//! interpreter pycguard happens to run next to. Pre-release magics fall inside a series'
//! range and belong to that series (`_bootstrap_external.py` keeps the authoritative list).
//! Pure data and lookups; no I/O.

use std::fmt;

/// The Python implementation that writes a family of magic numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Implementation {
    CPython,
    PyPy,
}

impl Implementation {
    /// The lowercase name used in cache tags and in pycguard's JSON (`cpython`, `pypy`).
    pub fn name(self) -> &'static str {
        match self {
            Implementation::CPython => "cpython",
            Implementation::PyPy => "pypy",
        }
    }

    /// The name people write (`Python`, `PyPy`).
    pub fn display_name(self) -> &'static str {
        match self {
            Implementation::CPython => "Python",
            Implementation::PyPy => "PyPy",
        }
    }
}

/// A language series such as CPython 3.12 or PyPy 3.9 (the Python version PyPy implements).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Series {
    pub implementation: Implementation,
    pub major: u8,
    pub minor: u8,
}

impl Series {
    pub const fn cpython(major: u8, minor: u8) -> Series {
        Series {
            implementation: Implementation::CPython,
            major,
            minor,
        }
    }

    pub const fn pypy(major: u8, minor: u8) -> Series {
        Series {
            implementation: Implementation::PyPy,
            major,
            minor,
        }
    }

    /// `cpython-3.12`: the identifier used in JSON output.
    pub fn id(&self) -> String {
        format!(
            "{}-{}.{}",
            self.implementation.name(),
            self.major,
            self.minor
        )
    }

    /// True when this series' importer reads caches from `__pycache__` (PEP 3147, 3.2+).
    pub fn uses_pycache(&self) -> bool {
        (self.major, self.minor) >= (3, 2)
    }

    /// True when this series' cache header records the source's size (3.3 and later).
    pub fn header_has_size(&self) -> bool {
        (self.major, self.minor) >= (3, 3)
    }

    /// The cache tag this series' importer looks for (`cpython-312`, `pypy39`), when it has one.
    pub fn cache_tag(&self) -> Option<String> {
        if !self.uses_pycache() {
            return None;
        }
        Some(match self.implementation {
            Implementation::CPython => format!("cpython-{}{}", self.major, self.minor),
            Implementation::PyPy => format!("pypy{}{}", self.major, self.minor),
        })
    }
}

impl fmt::Display for Series {
    /// `Python 3.12`, `PyPy 3.9`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}.{}",
            self.implementation.display_name(),
            self.major,
            self.minor
        )
    }
}

/// How many bytes of header precede the marshal body, and what they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderLayout {
    /// 2.x, PyPy2, 3.0–3.2: magic, mtime.
    Legacy8,
    /// 3.3–3.6: magic, mtime, size.
    Sized12,
    /// 3.7+ (PEP 552): magic, flags, then mtime + size or an 8-byte source hash.
    Pep552,
}

impl HeaderLayout {
    pub fn byte_len(self) -> usize {
        match self {
            HeaderLayout::Legacy8 => 8,
            HeaderLayout::Sized12 => 12,
            HeaderLayout::Pep552 => 16,
        }
    }
}

/// How the importer compares the header mtime with the source's mtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtimeRule {
    /// 2.x and 3.0–3.2 (C `import.c`): integer `st_mtime` masked to 32 bits, compared with
    /// the header read as a sign-extended 32-bit value; no size check.
    SignExtended,
    /// 3.3–3.6: `int(st_mtime)` compared unmasked with the unsigned header value.
    Unmasked,
    /// 3.7+: `int(st_mtime) & 0xFFFFFFFF` compared with the unsigned header value.
    Masked,
}

/// The SipHash variant `importlib.util.source_hash` uses for hash-based caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipRounds {
    Sip24,
    Sip13,
}

/// Everything pycguard knows about one magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MagicInfo {
    /// The 16-bit magic value (bytes 0–1, little-endian).
    pub value: u16,
    /// The four bytes as stored: value + `\r\n`.
    pub raw: [u8; 4],
    pub series: Series,
    pub header: HeaderLayout,
    pub mtime_rule: MtimeRule,
    /// Present for series that support hash-based caches (3.7+).
    pub source_hash: Option<SipRounds>,
}

/// Inclusive magic ranges of CPython 3.x series (pre-releases included).
const CPYTHON3_RANGES: &[(u16, u16, u8)] = &[
    (3000, 3131, 0),
    (3141, 3151, 1),
    (3160, 3180, 2),
    (3190, 3230, 3),
    (3250, 3310, 4),
    (3320, 3351, 5),
    (3360, 3379, 6),
    (3390, 3399, 7),
    (3400, 3419, 8),
    (3420, 3429, 9),
    (3430, 3449, 10),
    (3450, 3499, 11),
    (3500, 3549, 12),
    (3550, 3599, 13),
    (3600, 3649, 14),
];

/// Inclusive magic ranges of CPython 2.x series.
const CPYTHON2_RANGES: &[(u16, u16, u8)] = &[
    (50823, 50823, 0),
    (60202, 60202, 1),
    (60717, 60717, 2),
    (62011, 62021, 3),
    (62031, 62061, 4),
    (62071, 62131, 5),
    (62151, 62161, 6),
    (62171, 62212, 7),
];

/// PyPy3 magics (they follow PyPy releases, not Python series).
const PYPY3_MAGICS: &[(u16, u8)] = &[
    (160, 6),
    (192, 6),
    (224, 7),
    (240, 7),
    (256, 8),
    (320, 9),
    (336, 9),
    (384, 10),
    (400, 11),
    (416, 11),
    (432, 11),
];

/// PyPy2.7's magic.
const PYPY2_MAGIC: u16 = 62218;

/// The magics CPython's final releases (`X.Y.Z`, no pre-release suffix) write, per series
/// (3.5.2 changed 3.5's). Pre-releases use others from the series' range.
const CPYTHON_RELEASE_MAGICS: &[((u8, u8), &[u16])] = &[
    ((2, 7), &[62211]),
    ((3, 0), &[3131]),
    ((3, 1), &[3151]),
    ((3, 2), &[3180]),
    ((3, 3), &[3230]),
    ((3, 4), &[3310]),
    ((3, 5), &[3350, 3351]),
    ((3, 6), &[3379]),
    ((3, 7), &[3394]),
    ((3, 8), &[3413]),
    ((3, 9), &[3425]),
    ((3, 10), &[3439]),
    ((3, 11), &[3495]),
    ((3, 12), &[3531]),
    ((3, 13), &[3571]),
    ((3, 14), &[3627]),
];

/// The magics a final release of `series` writes, when pycguard's table knows them
/// (CPython only: PyPy's follow PyPy releases).
pub fn release_magics(series: Series) -> Option<&'static [u16]> {
    if series.implementation != Implementation::CPython {
        return None;
    }
    CPYTHON_RELEASE_MAGICS
        .iter()
        .find(|(s, _)| *s == (series.major, series.minor))
        .map(|(_, magics)| *magics)
}

/// Look up the first four bytes of a cache. `None`: no interpreter pycguard knows wrote it.
pub fn lookup(raw: [u8; 4]) -> Option<MagicInfo> {
    if raw[2] != b'\r' || raw[3] != b'\n' {
        return None;
    }
    let value = u16::from_le_bytes([raw[0], raw[1]]);
    let series = series_of(value)?;
    let (header, mtime_rule) = match (series.major, series.minor) {
        (2, _) | (3, 0..=2) => (HeaderLayout::Legacy8, MtimeRule::SignExtended),
        (3, 3..=6) => (HeaderLayout::Sized12, MtimeRule::Unmasked),
        _ => (HeaderLayout::Pep552, MtimeRule::Masked),
    };
    let source_hash = match (series.implementation, series.major, series.minor) {
        (_, 3, 0..=6) | (_, 2, _) => None,
        (Implementation::PyPy, _, _) => Some(SipRounds::Sip24),
        (Implementation::CPython, 3, 7..=10) => Some(SipRounds::Sip24),
        _ => Some(SipRounds::Sip13),
    };
    Some(MagicInfo {
        value,
        raw,
        series,
        header,
        mtime_rule,
        source_hash,
    })
}

fn series_of(value: u16) -> Option<Series> {
    let in_ranges = |ranges: &[(u16, u16, u8)], major| {
        ranges
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&value))
            .map(|(_, _, minor)| Series::cpython(major, *minor))
    };
    if value == PYPY2_MAGIC {
        return Some(Series::pypy(2, 7));
    }
    if let Some((_, minor)) = PYPY3_MAGICS.iter().find(|(m, _)| *m == value) {
        return Some(Series::pypy(3, *minor));
    }
    in_ranges(CPYTHON3_RANGES, 3).or_else(|| in_ranges(CPYTHON2_RANGES, 2))
}

/// True when pycguard knows the magic numbers of `series` (so a magic outside them is not
/// that series').
pub fn knows_series(series: Series) -> bool {
    let ranges = match (series.implementation, series.major) {
        (Implementation::CPython, 3) => CPYTHON3_RANGES,
        (Implementation::CPython, 2) => CPYTHON2_RANGES,
        (Implementation::PyPy, 3) => {
            return PYPY3_MAGICS.iter().any(|(_, minor)| *minor == series.minor)
        }
        (Implementation::PyPy, 2) => return series.minor == 7,
        _ => return false,
    };
    ranges.iter().any(|(_, _, minor)| *minor == series.minor)
}

/// The series a cache tag names (`cpython-312` → CPython 3.12, `pypy39` → PyPy 3.9).
/// pytest's `cpython-312-pytest-8.3.4` names CPython 3.12 as well. Older PyPy tags such as
/// `pypy3-71` name no Python series and give `None`.
pub fn series_of_tag(tag: &str) -> Option<Series> {
    let base = tag.split("-pytest-").next().unwrap_or(tag);
    let (implementation, digits) = if let Some(rest) = base.strip_prefix("cpython-") {
        (Implementation::CPython, rest)
    } else if let Some(rest) = base.strip_prefix("pypy") {
        (Implementation::PyPy, rest)
    } else {
        return None;
    };
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let major = digits[..1].parse().ok()?;
    let minor = digits[1..].parse().ok()?;
    Some(Series {
        implementation,
        major,
        minor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(value: u16) -> [u8; 4] {
        let b = value.to_le_bytes();
        [b[0], b[1], b'\r', b'\n']
    }

    #[test]
    fn release_magics_match_the_spec_table() {
        let table: &[(u16, [u8; 4], Series)] = &[
            (62211, [0x03, 0xf3, 0x0d, 0x0a], Series::cpython(2, 7)),
            (3131, [0x3b, 0x0c, 0x0d, 0x0a], Series::cpython(3, 0)),
            (3151, [0x4f, 0x0c, 0x0d, 0x0a], Series::cpython(3, 1)),
            (3180, [0x6c, 0x0c, 0x0d, 0x0a], Series::cpython(3, 2)),
            (3230, [0x9e, 0x0c, 0x0d, 0x0a], Series::cpython(3, 3)),
            (3310, [0xee, 0x0c, 0x0d, 0x0a], Series::cpython(3, 4)),
            (3350, [0x16, 0x0d, 0x0d, 0x0a], Series::cpython(3, 5)),
            (3351, [0x17, 0x0d, 0x0d, 0x0a], Series::cpython(3, 5)),
            (3379, [0x33, 0x0d, 0x0d, 0x0a], Series::cpython(3, 6)),
            (3394, [0x42, 0x0d, 0x0d, 0x0a], Series::cpython(3, 7)),
            (3413, [0x55, 0x0d, 0x0d, 0x0a], Series::cpython(3, 8)),
            (3425, [0x61, 0x0d, 0x0d, 0x0a], Series::cpython(3, 9)),
            (3439, [0x6f, 0x0d, 0x0d, 0x0a], Series::cpython(3, 10)),
            (3495, [0xa7, 0x0d, 0x0d, 0x0a], Series::cpython(3, 11)),
            (3531, [0xcb, 0x0d, 0x0d, 0x0a], Series::cpython(3, 12)),
            (3571, [0xf3, 0x0d, 0x0d, 0x0a], Series::cpython(3, 13)),
            (3627, [0x2b, 0x0e, 0x0d, 0x0a], Series::cpython(3, 14)),
            (62218, [0x0a, 0xf3, 0x0d, 0x0a], Series::pypy(2, 7)),
        ];
        for (value, bytes, series) in table {
            if let Some(release) = release_magics(*series) {
                assert!(
                    release.contains(value),
                    "{value} is a release magic of {series}"
                );
            }
            assert_eq!(raw(*value), *bytes, "bytes of {value}");
            let info = lookup(*bytes).unwrap_or_else(|| panic!("{value} unknown"));
            assert_eq!(info.value, *value);
            assert_eq!(info.series, *series, "series of {value}");
        }
    }

    #[test]
    fn header_layout_and_rules_follow_the_series() {
        let l = |v| lookup(raw(v)).unwrap();
        assert_eq!(l(62211).header, HeaderLayout::Legacy8);
        assert_eq!(l(62211).mtime_rule, MtimeRule::SignExtended);
        assert_eq!(l(3180).header, HeaderLayout::Legacy8);
        assert_eq!(l(3230).header, HeaderLayout::Sized12);
        assert_eq!(l(3379).mtime_rule, MtimeRule::Unmasked);
        assert_eq!(l(3394).header, HeaderLayout::Pep552);
        assert_eq!(l(3394).mtime_rule, MtimeRule::Masked);
        assert_eq!(l(3379).source_hash, None);
        assert_eq!(l(3394).source_hash, Some(SipRounds::Sip24));
        assert_eq!(l(3439).source_hash, Some(SipRounds::Sip24));
        assert_eq!(l(3495).source_hash, Some(SipRounds::Sip13));
        assert_eq!(l(3571).source_hash, Some(SipRounds::Sip13));
        assert_eq!(l(336).source_hash, Some(SipRounds::Sip24));
        assert_eq!(l(336).header, HeaderLayout::Pep552);
        assert_eq!(l(160).header, HeaderLayout::Sized12);
    }

    #[test]
    fn prerelease_magics_belong_to_their_series() {
        assert_eq!(lookup(raw(3450)).unwrap().series, Series::cpython(3, 11));
        assert_eq!(lookup(raw(3549)).unwrap().series, Series::cpython(3, 12));
        assert_eq!(lookup(raw(3550)).unwrap().series, Series::cpython(3, 13));
        assert_eq!(lookup(raw(3410)).unwrap().series, Series::cpython(3, 8));
        assert_eq!(lookup(raw(62212)).unwrap().series, Series::cpython(2, 7));
    }

    #[test]
    fn unknown_magics_are_refused() {
        assert_eq!(lookup(raw(3650)), None, "3.15 is not known yet");
        assert_eq!(lookup(raw(1234)), None);
        assert_eq!(lookup(raw(3140)), None, "gap between 3.0 and 3.1");
        assert_eq!(lookup([0xcb, 0x0d, 0x0d, 0x0d]), None, "needs \\r\\n");
        assert_eq!(lookup(*b"\x7fELF"), None);
    }

    #[test]
    fn known_series() {
        assert!(knows_series(Series::cpython(3, 14)));
        assert!(knows_series(Series::cpython(2, 7)));
        assert!(knows_series(Series::pypy(3, 9)));
        assert!(!knows_series(Series::cpython(3, 15)));
        assert!(!knows_series(Series::pypy(3, 5)));
    }

    #[test]
    fn tags_name_series() {
        assert_eq!(series_of_tag("cpython-312"), Some(Series::cpython(3, 12)));
        assert_eq!(series_of_tag("cpython-36"), Some(Series::cpython(3, 6)));
        assert_eq!(
            series_of_tag("cpython-312-pytest-8.3.4"),
            Some(Series::cpython(3, 12))
        );
        assert_eq!(series_of_tag("pypy39"), Some(Series::pypy(3, 9)));
        assert_eq!(series_of_tag("pypy311"), Some(Series::pypy(3, 11)));
        assert_eq!(series_of_tag("pypy3-71"), None);
        assert_eq!(series_of_tag("jython-27"), None);
        assert_eq!(
            Series::cpython(3, 12).cache_tag().as_deref(),
            Some("cpython-312")
        );
        assert_eq!(Series::cpython(2, 7).cache_tag(), None);
        assert_eq!(Series::cpython(3, 12).id(), "cpython-3.12");
        assert_eq!(Series::pypy(3, 9).to_string(), "PyPy 3.9");
    }
}
