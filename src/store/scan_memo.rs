//! The scan memo: which cache files pycguard has already read and found well-formed, so
//! that a repeated `check` of an unchanged tree costs one `stat` (plus one small `pread`)
//! per cache instead of an open, a read of the whole file and a walk of its marshal body.
//!
//! A record says: the file with this [`FileIdentity`] (device, inode, size, mtime and
//! ctime to the nanosecond) starts with these header bytes and its body unmarshals. A file
//! is only remembered when [`RunStart::may_remember`] allows it (the racily-clean rule of
//! [`super::identity`]: not changed within two seconds of the run's start), so a write
//! that lands in the same timestamp tick as our read cannot hide behind a record.
//!
//! The memo is an on-disk hash table of fixed-size slots in the pycguard cache directory
//! (never in the scanned tree), in groups of [`GROUP_SLOTS`]: a file's group is chosen by
//! its device and the block of 32 inode numbers it falls in, its two possible slots by the
//! rest of its inode number. Files written together get neighbouring inode numbers, so one
//! `pread` of a group (3 KiB) answers for up to 32 files, and each thread keeps its last
//! [`RECENT_GROUPS`] groups; learning is one `pwrite`. Nothing else is loaded into
//! memory, so memory does not grow with the tree and the file is bounded by construction
//! ([`SLOTS`] × [`SLOT_LEN`], sparse). A group read earlier in the run may miss a record
//! written since, never hold a wrong one: a slot only ever answers for its fingerprint,
//! and one identity always has the same record. Each slot carries a 128-bit fingerprint
//! of the identity and a checksum, so a torn write, two runs writing at once, or a
//! damaged file only ever produce a miss.
//!
//! File: [`FILE_NAME`]. A [`super::format`] header (magic `PYCGMEMO`, format
//! [`FORMAT`]'s version, parameters: pycguard's version — whose marshal walker decided
//! "well-formed" — and the table's geometry), zero-padded to [`HEADER_LEN`], then the
//! slots. A file with another header or size (another format, version or program, or
//! damaged) is replaced by a new empty table, and files of earlier formats are removed.
//! Every I/O failure is silent: the memo only saves work, it never changes a verdict.

use std::cell::RefCell;
use std::fs::File;
use std::hash::Hasher;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};

use super::format::{Format, FormatError};
use super::{Access, CacheDir, FileIdentity, RunStart, StoreError};

/// File name of the memo inside the cache directory.
pub const FILE_NAME: &str = "scan-memo-v4.tbl";
/// Names of earlier formats, removed when the current one is created.
const OLD_FILE_NAMES: &[&str] = &["scan-memo-v2.tbl", "scan-memo-v3.tbl"];
/// The memo's file format (its version is the one in [`FILE_NAME`]).
pub const FORMAT: Format = Format {
    magic: *b"PYCGMEMO",
    version: 4,
};
/// Names the file in errors.
const WHAT: &str = "the scan memo";
/// Slots in the table (a power of two).
pub const SLOTS: u64 = 1 << 19;
/// Bytes per slot.
pub const SLOT_LEN: u64 = 48;
/// Slots per group: two ways for each of 32 consecutive inode numbers.
pub const GROUP_SLOTS: u64 = 64;
const GROUPS: u64 = SLOTS / GROUP_SLOTS;
const GROUP_LEN: usize = (GROUP_SLOTS * SLOT_LEN) as usize;
/// Groups each thread keeps from its last reads.
pub const RECENT_GROUPS: usize = 8;

/// Bytes before the first slot: the header, zero-padded (the slots stay page-aligned).
pub const HEADER_LEN: u64 = 4096;
/// Bytes of the whole table file.
const FILE_LEN: u64 = HEADER_LEN + SLOTS * SLOT_LEN;

/// Where a file's record may live, and the fingerprint that finds it.
trait Placed {
    /// The group and the first of the two slots (within the group) this file may use.
    fn place(&self) -> (u64, usize);
    /// 128-bit fingerprint; never zero (zero marks an empty slot).
    fn fingerprint(&self) -> u128;
}

impl Placed for FileIdentity {
    fn place(&self) -> (u64, usize) {
        let mut h = SipHasher13::new_with_keys(0x0067_726f_7570, 0x0069_6e6f_6465);
        h.write_u64(self.dev);
        h.write_u64(self.ino >> 5);
        let group = h.finish() & (GROUPS - 1);
        (group, (self.ino & 31) as usize * 2)
    }

    fn fingerprint(&self) -> u128 {
        let mut h = SipHasher13x128::new_with_keys(0x7079_6367_7561_7264, 0x6d65_6d6f);
        for v in [
            self.dev,
            self.ino,
            self.size,
            self.mtime_ns as u64,
            self.ctime_ns as u64,
        ] {
            h.write_u64(v);
        }
        h.finish128().as_u128().max(1)
    }
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
}

fn slot_checksum(slot: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x736c_6f74, 0x6368_6563_6b73_756d);
    h.write(&slot[..40]);
    h.finish()
}

/// Encode a slot: fingerprint (16) | header len (1) | header (16) | pad (7) | checksum (8).
pub fn encode_slot(fingerprint: u128, record: &Record) -> [u8; SLOT_LEN as usize] {
    let mut slot = [0u8; SLOT_LEN as usize];
    slot[..16].copy_from_slice(&fingerprint.to_le_bytes());
    slot[16] = record.header_len;
    slot[17..33].copy_from_slice(&record.header);
    let sum = slot_checksum(&slot);
    slot[40..].copy_from_slice(&sum.to_le_bytes());
    slot
}

/// Decode a slot; `None` for an empty, torn or damaged one.
pub fn decode_slot(slot: &[u8]) -> Option<(u128, Record)> {
    let fingerprint = u128::from_le_bytes(slot[..16].try_into().ok()?);
    let sum = u64::from_le_bytes(slot[40..48].try_into().ok()?);
    if fingerprint == 0 || slot[16] > 16 || slot_checksum(slot) != sum {
        return None;
    }
    Some((
        fingerprint,
        Record {
            header_len: slot[16],
            header: slot[17..33].try_into().ok()?,
        },
    ))
}

/// What a table is built for: the pycguard version whose marshal walker decided
/// "well-formed", and the table's geometry.
fn header_params() -> Vec<u8> {
    let mut p = Vec::new();
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    p.push(version.len() as u8);
    p.extend(version);
    p.extend(SLOTS.to_le_bytes());
    p.extend(SLOT_LEN.to_le_bytes());
    p
}

/// The table's first [`HEADER_LEN`] bytes.
fn file_header() -> Vec<u8> {
    let mut h = FORMAT.header(&header_params());
    h.resize(HEADER_LEN as usize, 0);
    h
}

/// The memo of one run.
pub struct Memo {
    table: Option<File>,
    writable: bool,
    run: RunStart,
    /// Distinguishes this memo's groups in the threads' [`RECENT`] lists.
    id: u64,
}

static NEXT_MEMO_ID: AtomicU64 = AtomicU64::new(1);

/// One group as read (and since written) by this thread.
struct RecentGroup {
    memo: u64,
    group: u64,
    bytes: Box<[u8; GROUP_LEN]>,
}

thread_local! {
    /// Most recently used last.
    static RECENT: RefCell<Vec<RecentGroup>> = const { RefCell::new(Vec::new()) };
}

impl Memo {
    /// A memo that remembers nothing (`--no-cache`).
    pub fn disabled() -> Memo {
        Memo {
            table: None,
            writable: false,
            run: RunStart::at_ns(0),
            id: 0,
        }
    }

    /// Open (or create, or replace when of another format) the table in `dir`.
    pub fn load(dir: &Path) -> Memo {
        // Before any file this run may learn is read.
        let run = RunStart::now();
        let (table, writable) = match open_table(&CacheDir::new(dir)) {
            Ok((file, writable)) => (Some(file), writable),
            Err(_) => (None, false),
        };
        Memo {
            table,
            writable,
            run,
            id: NEXT_MEMO_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.table.is_some()
    }

    /// Run `op` on `group`'s bytes: from this thread's recent groups, else read.
    fn with_group<T>(&self, group: u64, op: impl FnOnce(&mut [u8; GROUP_LEN]) -> T) -> Option<T> {
        let table = self.table.as_ref()?;
        RECENT.with(|recent| {
            let mut recent = recent.borrow_mut();
            match recent
                .iter()
                .position(|r| r.memo == self.id && r.group == group)
            {
                Some(i) => {
                    let hit = recent.remove(i);
                    recent.push(hit);
                }
                None => {
                    let mut bytes = Box::new([0u8; GROUP_LEN]);
                    let at = HEADER_LEN + group * GROUP_LEN as u64;
                    if table.read_at(&mut bytes[..], at).ok()? != GROUP_LEN {
                        return None;
                    }
                    if recent.len() >= RECENT_GROUPS {
                        recent.remove(0);
                    }
                    recent.push(RecentGroup {
                        memo: self.id,
                        group,
                        bytes,
                    });
                }
            }
            recent.last_mut().map(|r| op(&mut r.bytes))
        })
    }

    /// The record for a file with exactly this identity.
    pub fn lookup(&self, identity: &FileIdentity) -> Option<Record> {
        let fingerprint = identity.fingerprint();
        let (group, first) = identity.place();
        self.with_group(group, |bytes| {
            bytes[first * SLOT_LEN as usize..(first + 2) * SLOT_LEN as usize]
                .chunks_exact(SLOT_LEN as usize)
                .filter_map(decode_slot)
                .find(|(fp, _)| *fp == fingerprint)
                .map(|(_, r)| r)
        })?
    }

    /// Remember a file that was read whole and found well-formed (unless racily changed).
    pub fn remember(&self, identity: FileIdentity, bytes: &[u8]) {
        if !self.writable || !self.run.may_remember(&identity) {
            return;
        }
        let Some(table) = &self.table else {
            return;
        };
        let fingerprint = identity.fingerprint();
        let (group, first) = identity.place();
        let slot = encode_slot(fingerprint, &Record::new(bytes));
        self.with_group(group, |cached| {
            // This file's slot, else an empty or damaged one, else evict by fingerprint.
            let ways: Vec<Option<u128>> = (first..first + 2)
                .map(|i| decode_slot(&cached[i * SLOT_LEN as usize..][..SLOT_LEN as usize]))
                .map(|s| s.map(|(fp, _)| fp))
                .collect();
            let way = ways
                .iter()
                .position(|s| *s == Some(fingerprint))
                .or_else(|| ways.iter().position(Option::is_none))
                .unwrap_or(((fingerprint >> 64) & 1) as usize);
            let index = first + way;
            let at = HEADER_LEN + group * GROUP_LEN as u64 + index as u64 * SLOT_LEN;
            if table.write_at(&slot, at).is_ok() {
                cached[index * SLOT_LEN as usize..][..SLOT_LEN as usize].copy_from_slice(&slot);
            }
        });
    }

    /// Nothing to flush: records are written as they are learned. Kept so that callers
    /// mark the end of a run explicitly.
    pub fn save(self) {}
}

/// Is the opened file (of fstat size `size`) a table of this format, version and
/// geometry?
fn check_table(file: &File, size: u64) -> Result<(), StoreError> {
    if size != FILE_LEN {
        return Err(FormatError::OtherSize {
            found: size,
            expected: FILE_LEN,
        }
        .into());
    }
    let mut head = vec![0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut head, 0)?;
    let len = FORMAT.check(&head, &header_params())?;
    if head[len..].iter().any(|&b| b != 0) {
        return Err(FormatError::Damaged.into());
    }
    Ok(())
}

/// Open the table in `dir` (read-write, else read-only: a read-only cache directory is
/// used, and nothing learned); an absent, damaged or foreign one, or one of another
/// format, is replaced by a new empty table. Whether it is writable.
fn open_table(dir: &CacheDir) -> Result<(File, bool), StoreError> {
    match dir.open_write(FILE_NAME, WHAT, Access::ReadWrite) {
        Ok((file, st)) => {
            if check_table(&file, st.size).is_ok() {
                return Ok((file, true));
            }
        }
        Err(_) => {
            if let Ok((file, st)) = dir.open_read(FILE_NAME, WHAT) {
                if check_table(&file, st.size).is_ok() {
                    return Ok((file, false));
                }
            }
        }
    }
    // Build a new table beside it and swap it in.
    dir.replace(FILE_NAME, |tmp| {
        tmp.write_all_at(&file_header(), 0)?;
        tmp.set_len(FILE_LEN)
    })?;
    dir.remove_old(OLD_FILE_NAMES);
    let (file, st) = dir.open_write(FILE_NAME, WHAT, Access::ReadWrite)?;
    check_table(&file, st.size)?;
    Ok((file, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::time::{SystemTime, UNIX_EPOCH};

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
    fn slots_round_trip_and_reject_damage() {
        let record = Record::new(b"\xcb\x0d\x0d\x0a0123456789ab");
        let slot = encode_slot(42, &record);
        assert_eq!(decode_slot(&slot), Some((42, record)));
        for at in [0, 15, 16, 20, 32, 40, 47] {
            let mut bad = slot;
            bad[at] ^= 0x10;
            assert_eq!(decode_slot(&bad), None, "flip at {at}");
        }
        assert_eq!(decode_slot(&[0u8; 48]), None, "empty slot");
    }

    #[test]
    fn lookup_needs_the_exact_identity() {
        let dir = tempfile::tempdir().unwrap();
        let memo = Memo::load(dir.path());
        memo.remember(old_identity(3), b"\xcb\x0d\x0d\x0aheader..");
        let memo = Memo::load(dir.path());
        assert_eq!(
            memo.lookup(&old_identity(3)).unwrap().header(),
            b"\xcb\x0d\x0d\x0aheader.."
        );
        for change in [
            |i: &mut FileIdentity| i.ctime_ns += 1,
            |i: &mut FileIdentity| i.mtime_ns += 1,
            |i: &mut FileIdentity| i.size += 1,
            |i: &mut FileIdentity| i.ino += 1,
            |i: &mut FileIdentity| i.dev += 1,
        ] {
            let mut other = old_identity(3);
            change(&mut other);
            assert!(memo.lookup(&other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn the_table_is_bounded_and_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let memo = Memo::load(dir.path());
        for ino in 0..5000 {
            memo.remember(old_identity(ino), b"\x03\xf3\r\n1234");
        }
        let len = fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        assert_eq!(len, HEADER_LEN + SLOTS * SLOT_LEN);
        let found = (0..5000)
            .filter(|&i| memo.lookup(&old_identity(i)).is_some())
            .count();
        assert!(found > 4990, "{found} of 5000 kept");
    }

    #[test]
    fn files_with_neighbouring_inodes_share_one_read_group() {
        let a = old_identity(64);
        let b = old_identity(95);
        let c = old_identity(96);
        assert_eq!(a.place().0, b.place().0);
        assert_ne!(a.place().1, b.place().1);
        assert_eq!(c.place().1, 0);
        let other_dev = FileIdentity { dev: 2, ..a };
        assert_eq!(other_dev.place().1, a.place().1);
    }

    #[test]
    fn a_group_read_before_another_writer_never_answers_wrongly() {
        let dir = tempfile::tempdir().unwrap();
        let reader = Memo::load(dir.path());
        let writer = Memo::load(dir.path());
        // The reader caches the (empty) group, then another memo fills it.
        assert!(reader.lookup(&old_identity(7)).is_none());
        writer.remember(old_identity(7), b"seven");
        writer.remember(old_identity(8), b"eight");
        // Cached: a miss, never a wrong record; a new run sees both.
        assert!(reader.lookup(&old_identity(7)).is_none());
        let next = Memo::load(dir.path());
        assert_eq!(next.lookup(&old_identity(7)).unwrap().header(), b"seven");
        assert_eq!(next.lookup(&old_identity(8)).unwrap().header(), b"eight");
        // Its own writes are seen at once.
        next.remember(old_identity(9), b"nine");
        assert_eq!(next.lookup(&old_identity(9)).unwrap().header(), b"nine");
    }

    #[test]
    fn an_earlier_format_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("scan-memo-v2.tbl"), b"old").unwrap();
        fs::write(dir.path().join("scan-memo-v3.tbl"), b"old").unwrap();
        assert!(Memo::load(dir.path()).is_enabled());
        assert!(!dir.path().join("scan-memo-v2.tbl").exists());
        assert!(!dir.path().join("scan-memo-v3.tbl").exists());
        assert!(dir.path().join(FILE_NAME).exists());
    }

    /// A table whose header is of an older version, another program version or geometry,
    /// damaged, or whose size is wrong, is not believed: it is replaced by an empty one.
    #[test]
    fn a_table_with_another_header_or_size_is_replaced() {
        let older = Format {
            version: FORMAT.version - 1,
            ..FORMAT
        }
        .header(&header_params());
        let mut other_program = header_params();
        other_program[1] ^= 1;
        let other_program = FORMAT.header(&other_program);
        let mut damaged = FORMAT.header(&header_params());
        damaged[20] ^= 1;
        let mut padding = FORMAT.header(&header_params());
        padding.resize(HEADER_LEN as usize, 0);
        padding[HEADER_LEN as usize - 1] = 1;
        for (case, header, len) in [
            ("older", older, FILE_LEN),
            ("other program", other_program, FILE_LEN),
            ("damaged", damaged, FILE_LEN),
            ("padding", padding, FILE_LEN),
            ("shorter", file_header(), FILE_LEN - SLOT_LEN),
            ("longer", file_header(), FILE_LEN + 1),
        ] {
            let dir = tempfile::tempdir().unwrap();
            Memo::load(dir.path()).remember(old_identity(6), b"h");
            assert!(Memo::load(dir.path()).lookup(&old_identity(6)).is_some());
            let path = dir.path().join(FILE_NAME);
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all_at(&vec![0; HEADER_LEN as usize], 0).unwrap();
            f.write_all_at(&header, 0).unwrap();
            f.set_len(len).unwrap();
            let memo = Memo::load(dir.path());
            assert!(memo.is_enabled(), "{case}");
            assert!(
                memo.lookup(&old_identity(6)).is_none(),
                "{case}: not believed"
            );
            let table = fs::read(&path).unwrap();
            assert_eq!(table.len() as u64, FILE_LEN, "{case}");
            assert_eq!(table[..HEADER_LEN as usize], file_header()[..], "{case}");
        }
    }

    #[test]
    fn racily_clean_files_are_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let memo = Memo::load(dir.path());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let racy = FileIdentity {
            ctime_ns: now,
            ..old_identity(4)
        };
        memo.remember(racy, b"x");
        assert!(memo.lookup(&racy).is_none());
    }

    #[test]
    fn disabled_memo_does_nothing() {
        let memo = Memo::disabled();
        memo.remember(old_identity(5), b"x");
        assert!(memo.lookup(&old_identity(5)).is_none());
    }

    #[test]
    fn a_damaged_or_foreign_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"garbage that is not a memo").unwrap();
        let memo = Memo::load(dir.path());
        assert!(memo.is_enabled());
        assert!(memo.lookup(&old_identity(1)).is_none());
        memo.remember(old_identity(6), b"h");
        assert!(Memo::load(dir.path()).lookup(&old_identity(6)).is_some());
        // Damage inside the table only loses the damaged slot.
        let path = dir.path().join(FILE_NAME);
        let data = fs::read(&path).unwrap();
        let at = data[HEADER_LEN as usize..]
            .iter()
            .position(|&b| b != 0)
            .unwrap()
            + HEADER_LEN as usize;
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[data[at] ^ 0xff], at as u64).unwrap();
        assert!(Memo::load(dir.path()).lookup(&old_identity(6)).is_none());
    }

    #[test]
    fn two_writers_at_once_never_produce_a_wrong_record() {
        let dir = tempfile::tempdir().unwrap();
        let a = Memo::load(dir.path());
        let b = Memo::load(dir.path());
        std::thread::scope(|s| {
            s.spawn(|| (0..2000).for_each(|i| a.remember(old_identity(i), &i.to_le_bytes())));
            s.spawn(|| (0..2000).for_each(|i| b.remember(old_identity(i), &i.to_le_bytes())));
        });
        let memo = Memo::load(dir.path());
        for i in 0..2000u64 {
            if let Some(r) = memo.lookup(&old_identity(i)) {
                assert_eq!(r.header(), &i.to_le_bytes()[..]);
            }
        }
    }
}
