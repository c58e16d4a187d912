//! `importlib.util.source_hash`: the SipHash a hash-based cache (PEP 552) records.
//!
//! The key is the cache's own four magic bytes read as a little-endian integer (k0) and
//! zero (k1); CPython 3.7–3.10 and every PyPy3 use SipHash-2-4, CPython 3.11+ SipHash-1-3.
//! The bytes are fed without a length prefix. Pure; verified by the spec's vectors.

use std::hash::Hasher;

use siphasher::sip::{SipHasher13, SipHasher24};

use super::magic::{MagicInfo, SipRounds};

/// The source hash `magic`'s interpreter computes for `source`, as the u64 whose
/// little-endian bytes are stored at header offset 8.
pub fn source_hash(magic: &MagicInfo, source: &[u8]) -> Option<u64> {
    let rounds = magic.source_hash?;
    let k0 = u64::from(u32::from_le_bytes(magic.raw));
    Some(siphash(rounds, k0, source))
}

fn siphash(rounds: SipRounds, k0: u64, data: &[u8]) -> u64 {
    match rounds {
        SipRounds::Sip24 => {
            let mut h = SipHasher24::new_with_keys(k0, 0);
            h.write(data);
            h.finish()
        }
        SipRounds::Sip13 => {
            let mut h = SipHasher13::new_with_keys(k0, 0);
            h.write(data);
            h.finish()
        }
    }
}

/// Hex of the 8 stored bytes, as Python's `source_hash(...).hex()` prints them.
pub fn stored_hex(hash: u64) -> String {
    hash.to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyc::magic::lookup;

    /// The table of `../shared/spec/pyc-cache.md` §4, produced by the real interpreters.
    #[test]
    fn spec_vectors() {
        let vectors: &[(u16, &str, &str)] = &[
            (3394, "20329d810db227ea", "85ee0caabd83b6a7"),
            (3413, "1506f08f32bf3ff3", "81e4881b3643e8e9"),
            (3425, "f1d665a9e50fdffa", "ac0bb7c83e5b1c5f"),
            (3439, "d94aade28c8cbebf", "8cc0cd2525e7fd27"),
            (3495, "4c0372aa93f75252", "738d9cd5d5e87f73"),
            (3531, "1522561917f5df08", "baf18eedc9387a25"),
            (3571, "e786e2893651120e", "27ec6d312f93b814"),
        ];
        for (value, x_eq_1, empty) in vectors {
            let b = value.to_le_bytes();
            let magic = lookup([b[0], b[1], b'\r', b'\n']).unwrap();
            assert_eq!(
                stored_hex(source_hash(&magic, b"x = 1\n").unwrap()),
                *x_eq_1,
                "magic {value} x = 1"
            );
            assert_eq!(
                stored_hex(source_hash(&magic, b"").unwrap()),
                *empty,
                "magic {value} empty"
            );
        }
    }

    #[test]
    fn series_without_hash_caches_have_no_hash() {
        let magic = lookup([0x33, 0x0d, 0x0d, 0x0a]).unwrap();
        assert_eq!(source_hash(&magic, b"x"), None);
    }
}
