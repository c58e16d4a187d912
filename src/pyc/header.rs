//! Parsing a cache header and replaying the importer's freshness comparison on it.
//!
//! The header says who wrote the cache and what it was checked against: a source mtime
//! (+ size from 3.3), or from 3.7 (PEP 552) optionally a SipHash of the source bytes. The
//! comparison rules differ per series in ways that matter (3.3–3.6 compare the mtime
//! unmasked, 2.x sign-extends it, 3.7+ masks it); [`compare_timestamp`] replays them
//! exactly so that pycguard's verdict is the interpreter's. Pure functions, no I/O.

use super::magic::{self, HeaderLayout, MagicInfo, MtimeRule};

/// Flags bit 0 (PEP 552): the cache is validated by a source hash, not by mtime/size.
pub const FLAG_HASH_BASED: u32 = 0b01;
/// Flags bit 1: with bit 0, the importer checks the hash against the source on import.
pub const FLAG_CHECK_SOURCE: u32 = 0b10;

/// How a cache is kept in step with its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// mtime (+ size) recorded in the header.
    Timestamp { mtime: u32, size: Option<u32> },
    /// SipHash of the source; `check_source` false means the importer never checks it.
    Hash { hash: u64, check_source: bool },
}

impl Invalidation {
    /// The mode this header was written in.
    pub fn mode(&self) -> InvalidationMode {
        match self {
            Invalidation::Timestamp { .. } => InvalidationMode::Timestamp,
            Invalidation::Hash {
                check_source: true, ..
            } => InvalidationMode::CheckedHash,
            Invalidation::Hash {
                check_source: false,
                ..
            } => InvalidationMode::UncheckedHash,
        }
    }

    /// The name used in pycguard's JSON and in `py_compile.PycInvalidationMode`.
    pub fn mode_name(&self) -> &'static str {
        self.mode().name()
    }
}

/// `py_compile.PycInvalidationMode`: how a cache is (or is to be) kept in step with its
/// source. What a header says (see [`Invalidation::mode`]) and what `fix` and `compile`
/// write (`--invalidation-mode`) are the same three modes, so this one type serves both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidationMode {
    #[default]
    Timestamp,
    CheckedHash,
    UncheckedHash,
}

impl InvalidationMode {
    /// The name used on the command line, in JSON and (upper-cased, `_` for `-`) by
    /// `py_compile`.
    pub fn name(self) -> &'static str {
        match self {
            InvalidationMode::Timestamp => "timestamp",
            InvalidationMode::CheckedHash => "checked-hash",
            InvalidationMode::UncheckedHash => "unchecked-hash",
        }
    }

    pub fn from_name(name: &str) -> Option<InvalidationMode> {
        [
            InvalidationMode::Timestamp,
            InvalidationMode::CheckedHash,
            InvalidationMode::UncheckedHash,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// A header the importer of its series accepts as well-formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub magic: MagicInfo,
    /// PEP 552 flags word; 0 for series before 3.7.
    pub flags: u32,
    pub invalidation: Invalidation,
}

impl Header {
    /// Length of the header; the marshal body starts here.
    pub fn byte_len(&self) -> usize {
        self.magic.header.byte_len()
    }
}

/// Why a file's first bytes are not a usable header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("file is {len} bytes, too short to hold the 4-byte magic number")]
    NoMagic { len: usize },
    #[error("magic number {value} ({raw}) is not one of any interpreter pycguard knows", value = u16::from_le_bytes([.raw[0], .raw[1]]), raw = hex4(.raw))]
    UnknownMagic { raw: [u8; 4] },
    #[error("header is truncated: {len} bytes where {series} writes {need}", series = .magic.series)]
    Truncated {
        magic: MagicInfo,
        len: usize,
        need: usize,
    },
    #[error("flags word {flags:#x} has bits other than 0 and 1 set (the importer rejects it as \"invalid flags\")")]
    InvalidFlags { magic: MagicInfo, flags: u32 },
}

impl HeaderError {
    /// The magic, when it was read and known.
    pub fn magic(&self) -> Option<MagicInfo> {
        match self {
            HeaderError::Truncated { magic, .. } | HeaderError::InvalidFlags { magic, .. } => {
                Some(*magic)
            }
            _ => None,
        }
    }
}

fn hex4(raw: &[u8; 4]) -> String {
    raw.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Parse the header at the start of `data` (the whole file or at least its first 16 bytes).
pub fn parse(data: &[u8]) -> Result<Header, HeaderError> {
    if data.len() < 4 {
        return Err(HeaderError::NoMagic { len: data.len() });
    }
    let raw = [data[0], data[1], data[2], data[3]];
    let magic = magic::lookup(raw).ok_or(HeaderError::UnknownMagic { raw })?;
    let need = magic.header.byte_len();
    if data.len() < need {
        return Err(HeaderError::Truncated {
            magic,
            len: data.len(),
            need,
        });
    }
    let (flags, invalidation) = match magic.header {
        HeaderLayout::Legacy8 => (
            0,
            Invalidation::Timestamp {
                mtime: u32_at(data, 4),
                size: None,
            },
        ),
        HeaderLayout::Sized12 => (
            0,
            Invalidation::Timestamp {
                mtime: u32_at(data, 4),
                size: Some(u32_at(data, 8)),
            },
        ),
        HeaderLayout::Pep552 => {
            let flags = u32_at(data, 4);
            if flags & !(FLAG_HASH_BASED | FLAG_CHECK_SOURCE) != 0 {
                return Err(HeaderError::InvalidFlags { magic, flags });
            }
            let invalidation = if flags & FLAG_HASH_BASED != 0 {
                let mut hash = [0u8; 8];
                hash.copy_from_slice(&data[8..16]);
                Invalidation::Hash {
                    hash: u64::from_le_bytes(hash),
                    check_source: flags & FLAG_CHECK_SOURCE != 0,
                }
            } else {
                Invalidation::Timestamp {
                    mtime: u32_at(data, 8),
                    size: Some(u32_at(data, 12)),
                }
            };
            (flags, invalidation)
        }
    };
    Ok(Header {
        magic,
        flags,
        invalidation,
    })
}

/// A source file's stat, as the importer sees it (`os.stat`, following symlinks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceStat {
    /// `st_mtim.tv_sec` (floor seconds, may be negative).
    pub mtime_secs: i64,
    /// `st_mtim.tv_nsec`, 0..1e9.
    pub mtime_nsec: u32,
    pub size: u64,
}

impl SourceStat {
    /// `int(os.stat(path).st_mtime)` exactly as Python 3 computes it: the float
    /// `sec + nsec * 1e-9` truncated toward zero. The float rounds a time a few hundred
    /// nanoseconds before a second boundary up to the next second, and the importer
    /// writes and compares that value, so pycguard must too.
    pub fn python3_mtime(&self) -> i64 {
        let float = self.mtime_secs as f64 + f64::from(self.mtime_nsec) * 1e-9;
        float.trunc() as i64
    }

    /// The C `st_mtime` (integer seconds, floor) that Python 2 and 3.0–3.2 use.
    pub fn c_mtime(&self) -> i64 {
        self.mtime_secs
    }

    /// The mtime that `rule`'s importer computes, before any masking.
    pub fn importer_mtime(&self, rule: MtimeRule) -> i64 {
        match rule {
            MtimeRule::SignExtended => self.c_mtime(),
            MtimeRule::Unmasked | MtimeRule::Masked => self.python3_mtime(),
        }
    }
}

/// The outcome of the importer's timestamp comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampCheck {
    /// The importer trusts the cache.
    Accepted,
    /// The mtimes differ (`source` is what the importer computed from the stat).
    MtimeDiffers { header: u32, source: i64 },
    /// The source's mtime cannot be represented the way this series compares it, so the
    /// cache is rejected on every import whatever it holds.
    MtimeUnrepresentable { source: i64 },
    /// The sizes differ (3.3+).
    SizeDiffers { header: u32, source: u64 },
}

/// Replay the importer's timestamp check of `rule` for a header mtime/size against a source.
pub fn compare_timestamp(
    rule: MtimeRule,
    header_mtime: u32,
    header_size: Option<u32>,
    source: &SourceStat,
) -> TimestampCheck {
    let source_mtime = source.importer_mtime(rule);
    let mtime_ok = match rule {
        MtimeRule::Masked => i64::from(header_mtime) == source_mtime & 0xFFFF_FFFF,
        MtimeRule::Unmasked => {
            if !(0..=i64::from(u32::MAX)).contains(&source_mtime) {
                return TimestampCheck::MtimeUnrepresentable {
                    source: source_mtime,
                };
            }
            i64::from(header_mtime) == source_mtime
        }
        MtimeRule::SignExtended => {
            let masked = source_mtime & 0xFFFF_FFFF;
            if masked > i64::from(i32::MAX) {
                // The header is read back sign-extended, so it can never equal this.
                return TimestampCheck::MtimeUnrepresentable {
                    source: source_mtime,
                };
            }
            i64::from(header_mtime as i32) == masked
        }
    };
    if !mtime_ok {
        return TimestampCheck::MtimeDiffers {
            header: header_mtime,
            source: source_mtime,
        };
    }
    if let Some(size) = header_size {
        if u64::from(size) != source.size & 0xFFFF_FFFF {
            return TimestampCheck::SizeDiffers {
                header: size,
                source: source.size,
            };
        }
    }
    TimestampCheck::Accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header16(magic: u16, flags: u32, a: u32, b: u32) -> Vec<u8> {
        let mut v = magic.to_le_bytes().to_vec();
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(&flags.to_le_bytes());
        v.extend_from_slice(&a.to_le_bytes());
        v.extend_from_slice(&b.to_le_bytes());
        v
    }

    fn stat(secs: i64, nsec: u32, size: u64) -> SourceStat {
        SourceStat {
            mtime_secs: secs,
            mtime_nsec: nsec,
            size,
        }
    }

    #[test]
    fn parses_each_generation() {
        let h = parse(&header16(3531, 0, 1_700_000_000, 42)).unwrap();
        assert_eq!(
            h.invalidation,
            Invalidation::Timestamp {
                mtime: 1_700_000_000,
                size: Some(42)
            }
        );
        assert_eq!(h.byte_len(), 16);

        let mut six = header16(3379, 0, 0, 0);
        six[4..8].copy_from_slice(&7u32.to_le_bytes());
        six[8..12].copy_from_slice(&9u32.to_le_bytes());
        let h = parse(&six[..12]).unwrap();
        assert_eq!(
            h.invalidation,
            Invalidation::Timestamp {
                mtime: 7,
                size: Some(9)
            }
        );
        assert_eq!(h.byte_len(), 12);

        let h = parse(&[0x03, 0xf3, 0x0d, 0x0a, 5, 0, 0, 0]).unwrap();
        assert_eq!(
            h.invalidation,
            Invalidation::Timestamp {
                mtime: 5,
                size: None
            }
        );
        assert_eq!(h.byte_len(), 8);
    }

    #[test]
    fn parses_hash_based_headers() {
        let mut v = header16(3531, 3, 0, 0);
        v[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        let h = parse(&v).unwrap();
        assert_eq!(
            h.invalidation,
            Invalidation::Hash {
                hash: 0x1122_3344_5566_7788,
                check_source: true
            }
        );
        assert_eq!(h.invalidation.mode_name(), "checked-hash");
        let h = parse(&header16(3531, 1, 0, 0)).unwrap();
        assert_eq!(h.invalidation.mode_name(), "unchecked-hash");
        // Flags = 2 alone is accepted as a plain timestamp cache.
        let h = parse(&header16(3531, 2, 10, 20)).unwrap();
        assert_eq!(h.invalidation.mode_name(), "timestamp");
        assert_eq!(h.flags, 2);
    }

    #[test]
    fn invalidation_mode_names_round_trip() {
        for mode in [
            InvalidationMode::Timestamp,
            InvalidationMode::CheckedHash,
            InvalidationMode::UncheckedHash,
        ] {
            assert_eq!(InvalidationMode::from_name(mode.name()), Some(mode));
        }
        assert_eq!(InvalidationMode::from_name("checked_hash"), None);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(parse(b"\x03\xf3"), Err(HeaderError::NoMagic { len: 2 }));
        assert!(matches!(
            parse(b"abcdefghijklmnop"),
            Err(HeaderError::UnknownMagic { .. })
        ));
        let short = header16(3531, 0, 0, 0);
        assert!(matches!(
            parse(&short[..15]),
            Err(HeaderError::Truncated {
                len: 15,
                need: 16,
                ..
            })
        ));
        assert!(matches!(
            parse(&header16(3531, 4, 0, 0)),
            Err(HeaderError::InvalidFlags { flags: 4, .. })
        ));
        let msg = parse(&header16(3531, 4, 0, 0)).unwrap_err().to_string();
        assert!(msg.contains("0x4"), "{msg}");
        let msg = parse(b"abcdefghijklmnop").unwrap_err().to_string();
        assert!(msg.contains("61 62 63 64"), "{msg}");
    }

    #[test]
    fn python3_mtime_rounds_like_a_float() {
        assert_eq!(
            stat(1_700_000_000, 999_999_999, 0).python3_mtime(),
            1_700_000_001
        );
        assert_eq!(
            stat(1_700_000_000, 999_999_000, 0).python3_mtime(),
            1_700_000_000
        );
        assert_eq!(stat(1_700_000_000, 0, 0).python3_mtime(), 1_700_000_000);
        // Truncation toward zero for times before 1970.
        assert_eq!(stat(-2, 500_000_000, 0).python3_mtime(), -1);
        assert_eq!(stat(-2, 500_000_000, 0).c_mtime(), -2);
    }

    #[test]
    fn masked_comparison_3_7_plus() {
        let s = stat(1_700_000_000, 5, 42);
        assert_eq!(
            compare_timestamp(MtimeRule::Masked, 1_700_000_000, Some(42), &s),
            TimestampCheck::Accepted
        );
        assert_eq!(
            compare_timestamp(MtimeRule::Masked, 1_699_999_999, Some(42), &s),
            TimestampCheck::MtimeDiffers {
                header: 1_699_999_999,
                source: 1_700_000_000
            }
        );
        assert_eq!(
            compare_timestamp(MtimeRule::Masked, 1_700_000_000, Some(41), &s),
            TimestampCheck::SizeDiffers {
                header: 41,
                source: 42
            }
        );
        // Beyond 2^32 seconds the importer masks both sides.
        let far = stat((1 << 32) + 5, 0, (1 << 32) + 3);
        assert_eq!(
            compare_timestamp(MtimeRule::Masked, 5, Some(3), &far),
            TimestampCheck::Accepted
        );
        // Negative mtimes are masked too.
        let neg = stat(-10, 0, 1);
        assert_eq!(
            compare_timestamp(
                MtimeRule::Masked,
                (-10i64 & 0xFFFF_FFFF) as u32,
                Some(1),
                &neg
            ),
            TimestampCheck::Accepted
        );
    }

    #[test]
    fn unmasked_comparison_3_3_to_3_6() {
        let s = stat(1_700_000_000, 0, 42);
        assert_eq!(
            compare_timestamp(MtimeRule::Unmasked, 1_700_000_000, Some(42), &s),
            TimestampCheck::Accepted
        );
        let neg = stat(-10, 0, 1);
        assert_eq!(
            compare_timestamp(
                MtimeRule::Unmasked,
                (-10i64 & 0xFFFF_FFFF) as u32,
                Some(1),
                &neg
            ),
            TimestampCheck::MtimeUnrepresentable { source: -10 }
        );
        let far = stat((1 << 32) + 5, 0, 3);
        assert_eq!(
            compare_timestamp(MtimeRule::Unmasked, 5, Some(3), &far),
            TimestampCheck::MtimeUnrepresentable {
                source: (1 << 32) + 5
            }
        );
        // The size is still masked in 3.3–3.6.
        let big = stat(7, 0, (1 << 32) + 3);
        assert_eq!(
            compare_timestamp(MtimeRule::Unmasked, 7, Some(3), &big),
            TimestampCheck::Accepted
        );
    }

    #[test]
    fn sign_extended_comparison_python2() {
        let s = stat(1_700_000_000, 0, 42);
        assert_eq!(
            compare_timestamp(MtimeRule::SignExtended, 1_700_000_000, None, &s),
            TimestampCheck::Accepted
        );
        // No size check at all.
        assert_eq!(
            compare_timestamp(
                MtimeRule::SignExtended,
                1_700_000_000,
                None,
                &stat(1_700_000_000, 0, 1)
            ),
            TimestampCheck::Accepted
        );
        // [2^31, 2^32) can never match: stale on every import.
        let late = stat(1 << 31, 0, 0);
        assert_eq!(
            compare_timestamp(MtimeRule::SignExtended, 1 << 31, None, &late),
            TimestampCheck::MtimeUnrepresentable { source: 1 << 31 }
        );
        // Python 2 uses the floor second, not the float.
        let edge = stat(1_700_000_000, 999_999_999, 0);
        assert_eq!(
            compare_timestamp(MtimeRule::SignExtended, 1_700_000_000, None, &edge),
            TimestampCheck::Accepted
        );
    }
}
