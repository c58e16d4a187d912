//! The proven memo: which (cache, source) pairs `check --deep` proved equal, remembered by
//! the files' identities, so that a warm proof of an unchanged tree reads neither file —
//! like git's index, a file whose identity (device, inode, size, mtime and ctime to the
//! nanosecond) is unchanged since it was proven, and was not racily clean then, is not
//! read again.
//!
//! A record lives in an identity [`table`](super::table) under the cache's identity and
//! says: this cache (magic number [`Recalled::magic`]) was proven equal to a fresh compile
//! of the source with the identity, by the compiler build, at the optimisation levels
//! that [`pair`] hashes. Whatever changes — a byte of the cache (its ctime moves), a byte
//! of the source, another interpreter build (its [`ProverId`]), another level — the
//! record no longer matches and the pair is proven again, by content
//! ([`super::proofs`]), which is also where outcomes other than "equal" are kept.
//! Both files must pass the racily-clean rule ([`super::identity`]) to be remembered.
//!
//! File: [`FILE_NAME`]: magic `PYCGPRVN`, format [`FORMAT`]'s version, parameters: the
//! prover version of [`super::proofs::PROVER_VERSION`] and the geometry. Payload: magic
//! (4 bytes) | pair fingerprint (16) | zeros.

use std::path::Path;

use super::format::Format;
use super::proofs::PROVER_VERSION;
use super::table::{Payload, Spec, Table, PAYLOAD_LEN};
use super::{CacheDir, FileIdentity, RunStart};

/// File name of the memo inside the cache directory.
pub const FILE_NAME: &str = "proven-v1.tbl";
/// The memo's file format (its version is the one in [`FILE_NAME`]).
pub const FORMAT: Format = Format {
    magic: *b"PYCGPRVN",
    version: 1,
};
const SPEC: Spec = Spec {
    file_name: FILE_NAME,
    old_names: &[],
    format: FORMAT,
    params: || PROVER_VERSION.to_le_bytes().to_vec(),
    what: "the proven memo",
};

/// What identifies a compiler build in the memo: 128 bits of blake3 of its identity
/// ([`super::proofs::Prover::identity`]).
pub type ProverId = [u8; 16];

pub fn prover_id(identity: &[u8]) -> ProverId {
    let hash = blake3::hash(identity);
    hash.as_bytes()[..16].try_into().expect("16 bytes")
}

/// The fingerprint of what a cache was proven against: the source's identity, the
/// compiler build and the optimisation levels.
pub fn pair(source: &FileIdentity, prover: &ProverId, levels: &[u8]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"pycguard proven pair 1");
    for v in [source.dev, source.ino, source.size] {
        h.update(&v.to_le_bytes());
    }
    h.update(&source.mtime_ns.to_le_bytes());
    h.update(&source.ctime_ns.to_le_bytes());
    h.update(prover);
    h.update(&(levels.len() as u32).to_le_bytes());
    h.update(levels);
    h.finalize().as_bytes()[..16].try_into().expect("16 bytes")
}

/// What the memo holds for one cache identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recalled {
    /// The cache's magic number (which interpreter proves it).
    pub magic: [u8; 4],
    /// The [`pair`] it was proven equal against.
    pub pair: [u8; 16],
}

impl Recalled {
    fn to_payload(self) -> Payload {
        let mut p = [0u8; PAYLOAD_LEN];
        p[..4].copy_from_slice(&self.magic);
        p[4..20].copy_from_slice(&self.pair);
        p
    }

    fn from_payload(p: &Payload) -> Option<Recalled> {
        p[20..].iter().all(|&b| b == 0).then(|| Recalled {
            magic: p[..4].try_into().expect("4 bytes"),
            pair: p[4..20].try_into().expect("16 bytes"),
        })
    }
}

/// The memo of one run.
pub struct ProvenMemo {
    table: Table,
}

impl ProvenMemo {
    /// A memo that remembers nothing (`--no-cache`).
    pub fn disabled() -> ProvenMemo {
        ProvenMemo {
            table: Table::disabled(),
        }
    }

    /// Open the memo in `dir`; `run` is when the run started (before any file it may
    /// learn about was looked at).
    pub fn load(dir: &Path, run: RunStart) -> ProvenMemo {
        ProvenMemo {
            table: Table::open(&CacheDir::new(dir), &SPEC, run),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.table.is_enabled()
    }

    /// What is remembered for the cache with exactly this identity.
    pub fn recall(&self, cache: &FileIdentity) -> Option<Recalled> {
        self.table
            .lookup(cache)
            .and_then(|p| Recalled::from_payload(&p))
    }

    /// Is the cache with identity `cache` (magic `magic`) proven equal against `pair`?
    pub fn is_proven(&self, cache: &FileIdentity, magic: [u8; 4], pair: &[u8; 16]) -> bool {
        self.recall(cache)
            .is_some_and(|r| r.magic == magic && r.pair == *pair)
    }

    /// Remember that the cache with identity `cache` (magic `magic`) was proven equal
    /// against `pair` of the source with identity `source` — unless either file is racily
    /// clean.
    pub fn remember(
        &self,
        cache: FileIdentity,
        magic: [u8; 4],
        source: &FileIdentity,
        pair: [u8; 16],
    ) {
        if self.table.may_remember(source) {
            self.table
                .remember(cache, Recalled { magic, pair }.to_payload());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ino: u64, ctime_ns: i64) -> FileIdentity {
        FileIdentity {
            dev: 1,
            ino,
            size: 100,
            mtime_ns: 5,
            ctime_ns,
        }
    }

    const MAGIC: [u8; 4] = [0xcb, 0x0d, 0x0d, 0x0a];

    #[test]
    fn a_pair_changes_with_the_source_the_build_and_the_levels() {
        let prover = prover_id(b"/usr/bin/python3.12\x003.12.1");
        let base = pair(&id(2, 7), &prover, &[0]);
        assert_eq!(base, pair(&id(2, 7), &prover, &[0]));
        assert_ne!(base, pair(&id(2, 8), &prover, &[0]), "source ctime");
        assert_ne!(base, pair(&id(3, 7), &prover, &[0]), "source inode");
        let other = prover_id(b"/usr/bin/python3.12\x003.12.2");
        assert_ne!(base, pair(&id(2, 7), &other, &[0]), "interpreter build");
        assert_ne!(base, pair(&id(2, 7), &prover, &[1]), "level");
        assert_ne!(base, pair(&id(2, 7), &prover, &[0, 1, 2]), "levels");
    }

    #[test]
    fn only_the_exact_cache_and_pair_are_proven() {
        let dir = tempfile::tempdir().unwrap();
        let now = RunStart::now();
        let prover = prover_id(b"python");
        let p = pair(&id(2, 7), &prover, &[0]);
        ProvenMemo::load(dir.path(), now).remember(id(1, 7), MAGIC, &id(2, 7), p);
        let memo = ProvenMemo::load(dir.path(), now);
        assert!(memo.is_proven(&id(1, 7), MAGIC, &p));
        assert_eq!(
            memo.recall(&id(1, 7)),
            Some(Recalled {
                magic: MAGIC,
                pair: p
            })
        );
        // The cache rewritten (its ctime moves), another magic, another pair: not proven.
        assert!(!memo.is_proven(&id(1, 8), MAGIC, &p));
        assert!(!memo.is_proven(&id(1, 7), [0x6f, 0x0d, 0x0d, 0x0a], &p));
        assert!(!memo.is_proven(&id(1, 7), MAGIC, &pair(&id(2, 8), &prover, &[0])));
    }

    #[test]
    fn racily_clean_caches_or_sources_are_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStart::at_ns(1_000_000_000_000);
        let memo = ProvenMemo::load(dir.path(), run);
        let racy = 1_000_000_000_000 - 1;
        let p = [9; 16];
        memo.remember(id(1, racy), MAGIC, &id(2, 7), p);
        memo.remember(id(3, 7), MAGIC, &id(4, racy), p);
        memo.remember(id(5, 7), MAGIC, &id(6, 7), p);
        let memo = ProvenMemo::load(dir.path(), run);
        assert!(memo.recall(&id(1, racy)).is_none(), "racy cache");
        assert!(memo.recall(&id(3, 7)).is_none(), "racy source");
        assert!(memo.is_proven(&id(5, 7), MAGIC, &p));
    }

    #[test]
    fn a_payload_that_is_no_record_is_not_believed() {
        let r = Recalled {
            magic: MAGIC,
            pair: [3; 16],
        };
        let mut p = r.to_payload();
        assert_eq!(Recalled::from_payload(&p), Some(r));
        p[30] = 1;
        assert_eq!(Recalled::from_payload(&p), None);
        let memo = ProvenMemo::disabled();
        memo.remember(id(1, 7), MAGIC, &id(2, 7), [3; 16]);
        assert!(memo.recall(&id(1, 7)).is_none());
    }
}
