//! The scan memo: which cache files pycguard has already read and found well-formed, so
//! that a repeated `check` of an unchanged tree costs one `stat` (plus one small `pread`)
//! per cache instead of an open, a read of the whole file and a walk of its marshal body.
//!
//! A record says: the file with this [`FileIdentity`] (device, inode, size, mtime and
//! ctime to the nanosecond) starts with these header bytes and its body unmarshals. It
//! lives in an identity [`table`](super::table) (`pread` of one page per 32 neighbouring
//! inodes, bounded, racily-clean rule, damage only ever a miss): payload = header length
//! (1 byte) and up to 16 header bytes, zero-padded.
//!
//! File: [`FILE_NAME`]: magic `PYCGMEMO`, format [`FORMAT`]'s version, parameters:
//! pycguard's version — whose marshal walker decided "well-formed" — and the geometry.

use std::path::Path;

use super::format::Format;
use super::table::{Payload, Spec, Table, PAYLOAD_LEN};
use super::{CacheDir, FileIdentity, RunStart};

/// File name of the memo inside the cache directory.
pub const FILE_NAME: &str = "scan-memo-v5.tbl";
/// The memo's file format (its version is the one in [`FILE_NAME`]).
pub const FORMAT: Format = Format {
    magic: *b"PYCGMEMO",
    version: 5,
};
const SPEC: Spec = Spec {
    file_name: FILE_NAME,
    old_names: &["scan-memo-v2.tbl", "scan-memo-v3.tbl", "scan-memo-v4.tbl"],
    format: FORMAT,
    params: program_version,
    what: "the scan memo",
};

/// The pycguard version whose marshal walker decided "well-formed".
fn program_version() -> Vec<u8> {
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    let mut p = vec![version.len() as u8];
    p.extend(version);
    p
}

/// A remembered, well-formed cache's first (up to 16) bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    header_len: u8,
    header: [u8; 16],
}

impl Record {
    pub fn new(bytes: &[u8]) -> Record {
        let len = bytes.len().min(16);
        let mut header = [0u8; 16];
        header[..len].copy_from_slice(&bytes[..len]);
        Record {
            header_len: len as u8,
            header,
        }
    }

    /// The remembered leading bytes (the whole header of every known series).
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }

    fn to_payload(self) -> Payload {
        let mut p = [0u8; PAYLOAD_LEN];
        p[0] = self.header_len;
        p[1..17].copy_from_slice(&self.header);
        p
    }

    fn from_payload(p: &Payload) -> Option<Record> {
        (p[0] <= 16 && p[17..].iter().all(|&b| b == 0)).then(|| Record {
            header_len: p[0],
            header: p[1..17].try_into().expect("16 bytes"),
        })
    }
}

/// The memo of one run.
pub struct Memo {
    table: Table,
}

impl Memo {
    /// A memo that remembers nothing (`--no-cache`).
    pub fn disabled() -> Memo {
        Memo {
            table: Table::disabled(),
        }
    }

    /// Open (or create, or replace when of another format) the memo in `dir`.
    pub fn load(dir: &Path) -> Memo {
        // Before any file this run may learn is read.
        let run = RunStart::now();
        Memo {
            table: Table::open(&CacheDir::new(dir), &SPEC, run),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.table.is_enabled()
    }

    /// The record for a file with exactly this identity.
    pub fn lookup(&self, identity: &FileIdentity) -> Option<Record> {
        self.table
            .lookup(identity)
            .and_then(|p| Record::from_payload(&p))
    }

    /// Remember a file that was read whole and found well-formed (unless racily changed).
    pub fn remember(&self, identity: FileIdentity, bytes: &[u8]) {
        self.table
            .remember(identity, Record::new(bytes).to_payload());
    }

    /// Nothing to flush: records are written as they are learned. Kept so that callers
    /// mark the end of a run explicitly.
    pub fn save(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn old_identity(ino: u64) -> FileIdentity {
        FileIdentity {
            dev: 1,
            ino,
            size: 100,
            mtime_ns: 5,
            ctime_ns: 7,
        }
    }

    #[test]
    fn records_round_trip_through_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let memo = Memo::load(dir.path());
        memo.remember(old_identity(3), b"\xcb\x0d\x0d\x0aheader..");
        memo.remember(old_identity(4), b"\x03\xf3\r\n0123456789abcdefXYZ");
        let memo = Memo::load(dir.path());
        assert_eq!(
            memo.lookup(&old_identity(3)).unwrap().header(),
            b"\xcb\x0d\x0d\x0aheader.."
        );
        // At most 16 bytes are kept: every known header.
        assert_eq!(
            memo.lookup(&old_identity(4)).unwrap().header(),
            b"\x03\xf3\r\n0123456789ab"
        );
        assert!(memo.lookup(&old_identity(5)).is_none());
    }

    #[test]
    fn a_payload_that_is_no_record_is_not_believed() {
        let mut p = Record::new(b"abc").to_payload();
        assert_eq!(Record::from_payload(&p), Some(Record::new(b"abc")));
        p[0] = 17;
        assert_eq!(Record::from_payload(&p), None);
        let mut p = Record::new(b"abc").to_payload();
        p[20] = 1;
        assert_eq!(Record::from_payload(&p), None);
    }

    #[test]
    fn earlier_formats_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for old in ["scan-memo-v2.tbl", "scan-memo-v3.tbl", "scan-memo-v4.tbl"] {
            fs::write(dir.path().join(old), b"old").unwrap();
        }
        assert!(Memo::load(dir.path()).is_enabled());
        for old in ["scan-memo-v2.tbl", "scan-memo-v3.tbl", "scan-memo-v4.tbl"] {
            assert!(!dir.path().join(old).exists(), "{old}");
        }
        assert!(dir.path().join(FILE_NAME).exists());
    }

    #[test]
    fn disabled_memo_does_nothing() {
        let memo = Memo::disabled();
        memo.remember(old_identity(5), b"x");
        assert!(memo.lookup(&old_identity(5)).is_none());
    }
}
