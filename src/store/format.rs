//! The versioned header every binary store file starts with, and the checksum its
//! records carry.
//!
//! ```text
//! magic      8 bytes    which store this is ("PYCGMEMO", "PYCGPROF")
//! version    u32 LE     its format version: bumped whenever what is written changes
//! params     u32 LE n   length, then n bytes the file was built for (slot counts, the
//!                       program version), compared as a whole
//! checksum   8 bytes    blake3 of everything above, truncated
//! ```
//!
//! [`Format::check`] accepts only a header of exactly this store, version and parameters;
//! anything else — another program's file, an older version, a damaged byte — is an
//! error, and the store then ignores the file and rebuilds it (a newer version gets a new
//! file name, so runs of two versions do not rebuild each other's file). The records
//! after the header carry their own [`checksum`] (or, in the scan memo's hot path, a
//! faster keyed hash), so damage after the header loses only what it touches.

/// The identity of one store's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub magic: [u8; 8],
    pub version: u32,
}

/// Bytes of a [`checksum`].
pub const CHECKSUM_LEN: usize = 8;

/// Why a file is not of the expected format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("{0} bytes: too short for a store header")]
    Truncated(usize),
    #[error("not this store's file (magic {0:02x?})")]
    Foreign([u8; 8]),
    #[error("format version {found}, not {expected}")]
    OtherVersion { found: u32, expected: u32 },
    #[error("the header is damaged")]
    Damaged,
    #[error("built for other parameters")]
    OtherParameters,
    #[error("{found} bytes long, not {expected}")]
    OtherSize { found: u64, expected: u64 },
}

/// blake3 of `bytes`, truncated to [`CHECKSUM_LEN`].
pub fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut sum = [0u8; CHECKSUM_LEN];
    sum.copy_from_slice(&blake3::hash(bytes).as_bytes()[..CHECKSUM_LEN]);
    sum
}

impl Format {
    /// Length of the header with `params_len` bytes of parameters.
    pub const fn header_len(params_len: usize) -> usize {
        8 + 4 + 4 + params_len + CHECKSUM_LEN
    }

    /// The header of a file of this format built for `params`.
    pub fn header(&self, params: &[u8]) -> Vec<u8> {
        let mut h = Vec::with_capacity(Format::header_len(params.len()));
        h.extend_from_slice(&self.magic);
        h.extend_from_slice(&self.version.to_le_bytes());
        h.extend_from_slice(&(params.len() as u32).to_le_bytes());
        h.extend_from_slice(params);
        let sum = checksum(&h);
        h.extend_from_slice(&sum);
        h
    }

    /// Check that `bytes` starts with the header of this format built for `params`; the
    /// header's length (where the records start).
    pub fn check(&self, bytes: &[u8], params: &[u8]) -> Result<usize, FormatError> {
        let fixed = Format::header_len(0);
        if bytes.len() < fixed {
            return Err(FormatError::Truncated(bytes.len()));
        }
        let magic: [u8; 8] = bytes[..8].try_into().expect("8 bytes");
        if magic != self.magic {
            return Err(FormatError::Foreign(magic));
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let version = word(8);
        let params_len = word(12) as usize;
        let len = Format::header_len(params_len.min(bytes.len()));
        if bytes.len() < len {
            // A length field pointing past the end: damaged, unless the version differs.
            return Err(if version == self.version {
                FormatError::Damaged
            } else {
                FormatError::OtherVersion {
                    found: version,
                    expected: self.version,
                }
            });
        }
        let body = len - CHECKSUM_LEN;
        if bytes[body..len] != checksum(&bytes[..body]) {
            return Err(FormatError::Damaged);
        }
        if version != self.version {
            return Err(FormatError::OtherVersion {
                found: version,
                expected: self.version,
            });
        }
        if &bytes[16..body] != params {
            return Err(FormatError::OtherParameters);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Format = Format {
        magic: *b"PYCGTEST",
        version: 3,
    };

    #[test]
    fn a_header_is_accepted_only_by_its_own_format() {
        let h = TEST.header(b"params");
        assert_eq!(h.len(), Format::header_len(6));
        let mut file = h.clone();
        file.extend_from_slice(b"records");
        assert_eq!(TEST.check(&file, b"params"), Ok(h.len()));
        assert_eq!(
            TEST.check(&file, b"other!"),
            Err(FormatError::OtherParameters)
        );
        let older = Format { version: 2, ..TEST }.header(b"params");
        assert_eq!(
            TEST.check(&older, b"params"),
            Err(FormatError::OtherVersion {
                found: 2,
                expected: 3
            })
        );
        let foreign = Format {
            magic: *b"SOMEONE.",
            ..TEST
        }
        .header(b"params");
        assert!(matches!(
            TEST.check(&foreign, b"params"),
            Err(FormatError::Foreign(_))
        ));
        assert_eq!(TEST.check(b"short", b""), Err(FormatError::Truncated(5)));
        assert!(TEST.check(b"", b"").is_err());
    }

    #[test]
    fn every_damaged_byte_of_a_header_is_found() {
        let h = TEST.header(b"params");
        for at in 0..h.len() {
            for bit in 0..8 {
                let mut bad = h.clone();
                bad[at] ^= 1 << bit;
                assert!(TEST.check(&bad, b"params").is_err(), "byte {at} bit {bit}");
            }
        }
        // A parameter length pointing past the end of the file.
        let mut long = h.clone();
        long[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(TEST.check(&long, b"params"), Err(FormatError::Damaged));
        for cut in 0..h.len() {
            assert!(TEST.check(&h[..cut], b"params").is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn checksums_differ_for_different_bytes() {
        assert_eq!(checksum(b"a"), checksum(b"a"));
        assert_ne!(checksum(b"a"), checksum(b"b"));
        assert_eq!(checksum(b"").len(), CHECKSUM_LEN);
    }
}
