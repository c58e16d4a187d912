//! An on-disk table of small fixed-size records keyed by a file's [`FileIdentity`]: what
//! the [`super::scan_memo`] and the [`super::proven`] memo are built on, so that looking a
//! file up costs no more than a `stat` and, for up to 32 files, one `pread`.
//!
//! A record says something about the file with exactly this identity (device, inode,
//! size, mtime and ctime to the nanosecond): [`PAYLOAD_LEN`] bytes whose meaning is the
//! user's. A file is only remembered when [`RunStart::may_remember`] allows it (the
//! racily-clean rule of [`super::identity`]: not changed within two seconds of the run's
//! start), so a write that lands in the same timestamp tick as our read cannot hide
//! behind a record.
//!
//! The table is a hash table of [`SLOTS`] slots of [`SLOT_LEN`] bytes (never in the
//! scanned tree, always in pycguard's cache directory), in groups of [`GROUP_SLOTS`]: a
//! file's group is chosen by its device and the block of [`BLOCK_INODES`] inode numbers
//! it falls in, its [`WAYS`] possible slots by the rest of its inode number. Files written
//! together get neighbouring inode numbers, so one `pread` of a group (one 4 KiB page)
//! answers for up to 16 files, and each thread keeps its last [`RECENT_GROUPS`] groups;
//! learning is one `pwrite`. Four ways per inode make it rare that a file finds no slot
//! (five blocks whose group numbers collide would be needed; with two ways, as before,
//! about one cache in 250 of a copied 25k-cache tree lost its slot to another on every
//! run). Nothing else is loaded into memory, so memory does not grow with the tree, and
//! the file is bounded by construction (`SLOTS × SLOT_LEN`, sparse). When every slot of a
//! file is taken by others, the one written longest ago is replaced: eviction is by age,
//! and only ever of whole slots. A group read earlier in the run may miss a record
//! written since, never hold a wrong one: a slot only ever answers for its fingerprint,
//! and one identity always gets the same slot. Each slot carries a 128-bit fingerprint of
//! the identity and a checksum, so a torn write, two runs writing at once, or a damaged
//! file only ever produce a miss.
//!
//! ```text
//! slot   fingerprint 16 | payload 36 | written at (u32 LE, minutes since 1970) 4 | checksum 8
//! ```
//!
//! File: a [`super::format`] header (the table's own magic and version, parameters: the
//! user's and the geometry), zero-padded to [`HEADER_LEN`], then the slots. A file with
//! another header or size (another format, version or program, or damaged) is replaced
//! by a new empty table, and files of earlier formats are removed. Every I/O failure is
//! silent: a table only saves work, it never changes a verdict.

use std::cell::RefCell;
use std::fs::File;
use std::hash::Hasher;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13x128};

use super::format::{Format, FormatError};
use super::{Access, CacheDir, FileIdentity, RunStart, StoreError};

/// Slots in a table (a power of two).
pub const SLOTS: u64 = 1 << 20;
/// Bytes per slot.
pub const SLOT_LEN: u64 = 64;
/// Bytes of a slot that are the user's.
pub const PAYLOAD_LEN: usize = 36;
/// Slots per group: [`WAYS`] for each of [`BLOCK_INODES`] consecutive inode numbers.
pub const GROUP_SLOTS: u64 = 64;
/// Consecutive inode numbers that share a group.
pub const BLOCK_INODES: u64 = 16;
/// Slots a file may use.
pub const WAYS: usize = (GROUP_SLOTS / BLOCK_INODES) as usize;
const GROUPS: u64 = SLOTS / GROUP_SLOTS;
const GROUP_LEN: usize = (GROUP_SLOTS * SLOT_LEN) as usize;
/// Groups each thread keeps from its last reads (of every table it uses).
pub const RECENT_GROUPS: usize = 16;
/// Bytes before the first slot: the header, zero-padded (the slots stay page-aligned).
pub const HEADER_LEN: u64 = 4096;
/// Bytes of a whole table file.
pub const FILE_LEN: u64 = HEADER_LEN + SLOTS * SLOT_LEN;

const PAYLOAD_AT: usize = 16;
const AGE_AT: usize = PAYLOAD_AT + PAYLOAD_LEN;
const SUM_AT: usize = AGE_AT + 4;

/// A record's bytes.
pub type Payload = [u8; PAYLOAD_LEN];

/// Which table a file is: its name, the names of its earlier formats, its format, and
/// the parameters it is built for (beside the geometry, which is always checked).
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub file_name: &'static str,
    pub old_names: &'static [&'static str],
    pub format: Format,
    pub params: fn() -> Vec<u8>,
    /// Names the file in errors.
    pub what: &'static str,
}

impl Spec {
    fn header_params(&self) -> Vec<u8> {
        let mut p = (self.params)();
        p.extend(SLOTS.to_le_bytes());
        p.extend(SLOT_LEN.to_le_bytes());
        p
    }

    /// The table's first [`HEADER_LEN`] bytes.
    pub fn file_header(&self) -> Vec<u8> {
        let mut h = self.format.header(&self.header_params());
        h.resize(HEADER_LEN as usize, 0);
        h
    }
}

/// Where a file's record may live, and the fingerprint that finds it.
trait Placed {
    /// The group and the first of the [`WAYS`] slots (within the group) this file may use.
    fn place(&self) -> (u64, usize);
    /// 128-bit fingerprint; never zero (zero marks an empty slot).
    fn fingerprint(&self) -> u128;
}

impl Placed for FileIdentity {
    fn place(&self) -> (u64, usize) {
        let mut h = SipHasher13::new_with_keys(0x0067_726f_7570, 0x0069_6e6f_6465);
        h.write_u64(self.dev);
        h.write_u64(self.ino / BLOCK_INODES);
        let group = h.finish() & (GROUPS - 1);
        (group, (self.ino % BLOCK_INODES) as usize * WAYS)
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

fn slot_checksum(slot: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x736c_6f74, 0x6368_6563_6b73_756d);
    h.write(&slot[..SUM_AT]);
    h.finish()
}

/// One decoded slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub fingerprint: u128,
    pub payload: Payload,
    /// When it was written, in minutes since 1970 (what eviction compares).
    pub written: u32,
}

/// Encode a slot (see the module docs).
pub fn encode_slot(slot: &Slot) -> [u8; SLOT_LEN as usize] {
    let mut out = [0u8; SLOT_LEN as usize];
    out[..PAYLOAD_AT].copy_from_slice(&slot.fingerprint.to_le_bytes());
    out[PAYLOAD_AT..AGE_AT].copy_from_slice(&slot.payload);
    out[AGE_AT..SUM_AT].copy_from_slice(&slot.written.to_le_bytes());
    let sum = slot_checksum(&out);
    out[SUM_AT..].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Decode a slot; `None` for an empty, torn or damaged one.
pub fn decode_slot(bytes: &[u8]) -> Option<Slot> {
    let fingerprint = u128::from_le_bytes(bytes.get(..PAYLOAD_AT)?.try_into().ok()?);
    let sum = u64::from_le_bytes(bytes.get(SUM_AT..SLOT_LEN as usize)?.try_into().ok()?);
    if fingerprint == 0 || slot_checksum(bytes) != sum {
        return None;
    }
    Some(Slot {
        fingerprint,
        payload: bytes[PAYLOAD_AT..AGE_AT].try_into().ok()?,
        written: u32::from_le_bytes(bytes[AGE_AT..SUM_AT].try_into().ok()?),
    })
}

/// One table, as opened by one run.
pub struct Table {
    file: Option<File>,
    writable: bool,
    run: RunStart,
    /// What this run's writes are stamped with.
    written: u32,
    /// Distinguishes this table's groups in the threads' [`RECENT`] lists.
    id: u64,
}

static NEXT_TABLE_ID: AtomicU64 = AtomicU64::new(1);

/// One group as read (and since written) by this thread.
struct RecentGroup {
    table: u64,
    group: u64,
    bytes: Box<[u8; GROUP_LEN]>,
}

thread_local! {
    /// Most recently used last.
    static RECENT: RefCell<Vec<RecentGroup>> = const { RefCell::new(Vec::new()) };
}

impl Table {
    /// A table that remembers nothing (`--no-cache`).
    pub fn disabled() -> Table {
        Table {
            file: None,
            writable: false,
            run: RunStart::at_ns(0),
            written: 0,
            id: 0,
        }
    }

    /// Open (or create, or replace when of another format) the table `spec` in `dir`.
    /// `run` is when the run started (before any file it may learn about was read).
    pub fn open(dir: &CacheDir, spec: &Spec, run: RunStart) -> Table {
        let (file, writable) = match open_file(dir, spec) {
            Ok((file, writable)) => (Some(file), writable),
            Err(_) => (None, false),
        };
        Table {
            file,
            writable,
            run,
            written: run.minutes(),
            id: NEXT_TABLE_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.file.is_some()
    }

    /// When this table's run started (what the racily-clean rule measures against).
    pub fn run(&self) -> RunStart {
        self.run
    }

    /// Run `op` on `group`'s bytes: from this thread's recent groups, else read.
    fn with_group<T>(&self, group: u64, op: impl FnOnce(&mut [u8; GROUP_LEN]) -> T) -> Option<T> {
        let file = self.file.as_ref()?;
        RECENT.with(|recent| {
            let mut recent = recent.borrow_mut();
            match recent
                .iter()
                .position(|r| r.table == self.id && r.group == group)
            {
                Some(i) => {
                    let hit = recent.remove(i);
                    recent.push(hit);
                }
                None => {
                    let mut bytes = Box::new([0u8; GROUP_LEN]);
                    let at = HEADER_LEN + group * GROUP_LEN as u64;
                    if file.read_at(&mut bytes[..], at).ok()? != GROUP_LEN {
                        return None;
                    }
                    if recent.len() >= RECENT_GROUPS {
                        recent.remove(0);
                    }
                    recent.push(RecentGroup {
                        table: self.id,
                        group,
                        bytes,
                    });
                }
            }
            recent.last_mut().map(|r| op(&mut r.bytes))
        })
    }

    /// The record of the file with exactly this identity.
    pub fn lookup(&self, identity: &FileIdentity) -> Option<Payload> {
        let fingerprint = identity.fingerprint();
        let (group, first) = identity.place();
        self.with_group(group, |bytes| {
            bytes[first * SLOT_LEN as usize..(first + WAYS) * SLOT_LEN as usize]
                .chunks_exact(SLOT_LEN as usize)
                .filter_map(decode_slot)
                .find(|s| s.fingerprint == fingerprint)
                .map(|s| s.payload)
        })?
    }

    /// May a file with this identity be remembered by this run (a writable table, and the
    /// racily-clean rule)?
    pub fn may_remember(&self, identity: &FileIdentity) -> bool {
        self.writable && self.run.may_remember(identity)
    }

    /// Remember `payload` for the file with this identity (unless it may not be).
    pub fn remember(&self, identity: FileIdentity, payload: Payload) {
        if !self.may_remember(&identity) {
            return;
        }
        let Some(file) = &self.file else {
            return;
        };
        let fingerprint = identity.fingerprint();
        let (group, first) = identity.place();
        let slot = encode_slot(&Slot {
            fingerprint,
            payload,
            written: self.written,
        });
        self.with_group(group, |cached| {
            let ways: Vec<Option<Slot>> = (first..first + WAYS)
                .map(|i| decode_slot(&cached[i * SLOT_LEN as usize..][..SLOT_LEN as usize]))
                .collect();
            if ways.iter().flatten().any(|s| {
                s.fingerprint == fingerprint && s.payload == payload && s.written == self.written
            }) {
                return;
            }
            // This file's slot, else an empty or damaged one, else the oldest (of equally
            // old ones, one the fingerprint picks).
            let way = ways
                .iter()
                .position(|s| s.is_some_and(|s| s.fingerprint == fingerprint))
                .or_else(|| ways.iter().position(Option::is_none))
                .unwrap_or_else(|| {
                    let start = (fingerprint >> 64) as usize % WAYS;
                    (0..WAYS)
                        .map(|k| (start + k) % WAYS)
                        .min_by_key(|&w| ways[w].map_or(0, |s| s.written))
                        .expect("WAYS > 0")
                });
            let index = first + way;
            let at = HEADER_LEN + group * GROUP_LEN as u64 + index as u64 * SLOT_LEN;
            if file.write_at(&slot, at).is_ok() {
                cached[index * SLOT_LEN as usize..][..SLOT_LEN as usize].copy_from_slice(&slot);
            }
        });
    }
}

/// Is the opened file (of fstat size `size`) a table of this spec and geometry?
fn check_file(spec: &Spec, file: &File, size: u64) -> Result<(), StoreError> {
    if size != FILE_LEN {
        return Err(FormatError::OtherSize {
            found: size,
            expected: FILE_LEN,
        }
        .into());
    }
    let mut head = vec![0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut head, 0)?;
    let len = spec.format.check(&head, &spec.header_params())?;
    if head[len..].iter().any(|&b| b != 0) {
        return Err(FormatError::Damaged.into());
    }
    Ok(())
}

/// Open the table in `dir` (read-write, else read-only: a read-only cache directory is
/// used, and nothing learned); an absent, damaged or foreign one, or one of another
/// format, is replaced by a new empty table. Whether it is writable.
fn open_file(dir: &CacheDir, spec: &Spec) -> Result<(File, bool), StoreError> {
    match dir.open_write(spec.file_name, spec.what, Access::ReadWrite) {
        Ok((file, st)) => {
            if check_file(spec, &file, st.size).is_ok() {
                return Ok((file, true));
            }
        }
        Err(_) => {
            if let Ok((file, st)) = dir.open_read(spec.file_name, spec.what) {
                if check_file(spec, &file, st.size).is_ok() {
                    return Ok((file, false));
                }
            }
        }
    }
    // Build a new table beside it and swap it in.
    dir.replace(spec.file_name, |tmp| {
        tmp.write_all_at(&spec.file_header(), 0)?;
        tmp.set_len(FILE_LEN)
    })?;
    dir.remove_old(spec.old_names);
    let (file, st) = dir.open_write(spec.file_name, spec.what, Access::ReadWrite)?;
    check_file(spec, &file, st.size)?;
    Ok((file, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::path::Path;
    use std::time::{SystemTime, UNIX_EPOCH};

    const SPEC: Spec = Spec {
        file_name: "test-table-v2.tbl",
        old_names: &["test-table-v1.tbl"],
        format: Format {
            magic: *b"PYCGTEST",
            version: 2,
        },
        params: || b"params".to_vec(),
        what: "the test table",
    };

    fn open(dir: &Path) -> Table {
        Table::open(&CacheDir::new(dir), &SPEC, RunStart::now())
    }

    fn old_identity(ino: u64) -> FileIdentity {
        FileIdentity {
            dev: 1,
            ino,
            size: 100,
            mtime_ns: 5,
            ctime_ns: 7,
        }
    }

    fn payload(bytes: &[u8]) -> Payload {
        let mut p = [0u8; PAYLOAD_LEN];
        p[..bytes.len()].copy_from_slice(bytes);
        p
    }

    #[test]
    fn slots_round_trip_and_reject_damage() {
        let slot = Slot {
            fingerprint: 42,
            payload: payload(b"\xcb\x0d\x0d\x0a0123456789ab"),
            written: 29_000_000,
        };
        let bytes = encode_slot(&slot);
        assert_eq!(decode_slot(&bytes), Some(slot));
        for at in [0, 15, 16, 20, 32, 51, 52, 55, 56, 63] {
            let mut bad = bytes;
            bad[at] ^= 0x10;
            assert_eq!(decode_slot(&bad), None, "flip at {at}");
        }
        assert_eq!(decode_slot(&[0u8; SLOT_LEN as usize]), None, "empty slot");
    }

    #[test]
    fn lookup_needs_the_exact_identity() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).remember(old_identity(3), payload(b"three"));
        let table = open(dir.path());
        assert_eq!(table.lookup(&old_identity(3)), Some(payload(b"three")));
        for change in [
            |i: &mut FileIdentity| i.ctime_ns += 1,
            |i: &mut FileIdentity| i.mtime_ns += 1,
            |i: &mut FileIdentity| i.size += 1,
            |i: &mut FileIdentity| i.ino += 1,
            |i: &mut FileIdentity| i.dev += 1,
        ] {
            let mut other = old_identity(3);
            change(&mut other);
            assert!(table.lookup(&other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn the_table_is_bounded_and_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let table = open(dir.path());
        for ino in 0..5000 {
            table.remember(old_identity(ino), payload(b"x"));
        }
        let len = fs::metadata(dir.path().join(SPEC.file_name)).unwrap().len();
        assert_eq!(len, FILE_LEN);
        let found = (0..5000)
            .filter(|&i| table.lookup(&old_identity(i)).is_some())
            .count();
        assert!(found > 4990, "{found} of 5000 kept");
    }

    #[test]
    fn a_full_pair_of_slots_evicts_the_older_record() {
        // WAYS + 1 files that share all their slots: same device, same inode low bits,
        // groups equal (found by search, the placement is a hash).
        let first_file = old_identity(3);
        let place = first_file.place();
        let files: Vec<FileIdentity> = std::iter::once(first_file)
            .chain(
                (1..u64::MAX)
                    .map(|k| old_identity(3 + k * BLOCK_INODES))
                    .filter(|i| i.place() == place),
            )
            .take(WAYS + 1)
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheDir::new(dir.path());
        let at = |minutes: i64| RunStart::at_ns(minutes * 60_000_000_000);
        for (i, f) in files[..WAYS].iter().enumerate() {
            Table::open(&cache, &SPEC, at(1_000 + i as i64)).remember(*f, payload(&[i as u8]));
        }
        // Every slot taken: the newest writer replaces the oldest record (the first),
        // whatever the fingerprints say.
        let last = files[WAYS];
        Table::open(&cache, &SPEC, at(2_000)).remember(last, payload(b"last"));
        let table = Table::open(&cache, &SPEC, at(2_000));
        assert_eq!(table.lookup(&files[0]), None);
        for (i, f) in files[1..WAYS].iter().enumerate() {
            assert_eq!(table.lookup(f), Some(payload(&[i as u8 + 1])));
        }
        assert_eq!(table.lookup(&last), Some(payload(b"last")));
        // Remembering the second again makes it new: then the third goes first.
        Table::open(&cache, &SPEC, at(3_000)).remember(files[1], payload(&[1]));
        Table::open(&cache, &SPEC, at(4_000)).remember(files[0], payload(&[0]));
        let table = Table::open(&cache, &SPEC, at(4_000));
        assert_eq!(table.lookup(&files[2]), None);
        assert_eq!(table.lookup(&files[0]), Some(payload(&[0])));
        assert_eq!(table.lookup(&files[1]), Some(payload(&[1])));
    }

    #[test]
    fn files_with_neighbouring_inodes_share_one_read_group() {
        let a = old_identity(64);
        let b = old_identity(79);
        let c = old_identity(80);
        assert_eq!(a.place().0, b.place().0);
        assert_ne!(a.place().1, b.place().1);
        assert_eq!(c.place().1, 0);
        let other_dev = FileIdentity { dev: 2, ..a };
        assert_eq!(other_dev.place().1, a.place().1);
        assert_eq!(GROUP_LEN, 4096, "one page per group");
    }

    #[test]
    fn a_group_read_before_another_writer_never_answers_wrongly() {
        let dir = tempfile::tempdir().unwrap();
        let reader = open(dir.path());
        let writer = open(dir.path());
        // The reader caches the (empty) group, then another table fills it.
        assert!(reader.lookup(&old_identity(7)).is_none());
        writer.remember(old_identity(7), payload(b"seven"));
        writer.remember(old_identity(8), payload(b"eight"));
        // Cached: a miss, never a wrong record; a new run sees both.
        assert!(reader.lookup(&old_identity(7)).is_none());
        let next = open(dir.path());
        assert_eq!(next.lookup(&old_identity(7)), Some(payload(b"seven")));
        assert_eq!(next.lookup(&old_identity(8)), Some(payload(b"eight")));
        // Its own writes are seen at once.
        next.remember(old_identity(9), payload(b"nine"));
        assert_eq!(next.lookup(&old_identity(9)), Some(payload(b"nine")));
    }

    #[test]
    fn an_earlier_format_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("test-table-v1.tbl"), b"old").unwrap();
        assert!(open(dir.path()).is_enabled());
        assert!(!dir.path().join("test-table-v1.tbl").exists());
        assert!(dir.path().join(SPEC.file_name).exists());
    }

    /// A table whose header is of an older version, other parameters or geometry,
    /// damaged, or whose size is wrong, is not believed: it is replaced by an empty one.
    #[test]
    fn a_table_with_another_header_or_size_is_replaced() {
        let params = SPEC.header_params();
        let older = Format {
            version: SPEC.format.version - 1,
            ..SPEC.format
        }
        .header(&params);
        let mut other = params.clone();
        other[1] ^= 1;
        let other_params = SPEC.format.header(&other);
        let mut damaged = SPEC.format.header(&params);
        damaged[20] ^= 1;
        let mut padding = SPEC.file_header();
        padding[HEADER_LEN as usize - 1] = 1;
        for (case, header, len) in [
            ("older", older, FILE_LEN),
            ("other parameters", other_params, FILE_LEN),
            ("damaged", damaged, FILE_LEN),
            ("padding", padding, FILE_LEN),
            ("shorter", SPEC.file_header(), FILE_LEN - SLOT_LEN),
            ("longer", SPEC.file_header(), FILE_LEN + 1),
        ] {
            let dir = tempfile::tempdir().unwrap();
            open(dir.path()).remember(old_identity(6), payload(b"h"));
            assert!(open(dir.path()).lookup(&old_identity(6)).is_some());
            let path = dir.path().join(SPEC.file_name);
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all_at(&vec![0; HEADER_LEN as usize], 0).unwrap();
            f.write_all_at(&header, 0).unwrap();
            f.set_len(len).unwrap();
            let table = open(dir.path());
            assert!(table.is_enabled(), "{case}");
            assert!(
                table.lookup(&old_identity(6)).is_none(),
                "{case}: not believed"
            );
            let bytes = fs::read(&path).unwrap();
            assert_eq!(bytes.len() as u64, FILE_LEN, "{case}");
            assert_eq!(
                bytes[..HEADER_LEN as usize],
                SPEC.file_header()[..],
                "{case}"
            );
        }
    }

    #[test]
    fn racily_clean_files_are_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let table = open(dir.path());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let racy = FileIdentity {
            ctime_ns: now,
            ..old_identity(4)
        };
        assert!(!table.may_remember(&racy));
        table.remember(racy, payload(b"x"));
        assert!(table.lookup(&racy).is_none());
    }

    #[test]
    fn a_disabled_table_does_nothing() {
        let table = Table::disabled();
        table.remember(old_identity(5), payload(b"x"));
        assert!(table.lookup(&old_identity(5)).is_none());
        assert!(!table.is_enabled());
    }

    #[test]
    fn a_damaged_or_foreign_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(SPEC.file_name),
            b"garbage that is not a table",
        )
        .unwrap();
        let table = open(dir.path());
        assert!(table.is_enabled());
        assert!(table.lookup(&old_identity(1)).is_none());
        table.remember(old_identity(6), payload(b"h"));
        assert!(open(dir.path()).lookup(&old_identity(6)).is_some());
        // Damage inside the table only loses the damaged slot.
        let path = dir.path().join(SPEC.file_name);
        let data = fs::read(&path).unwrap();
        let at = data[HEADER_LEN as usize..]
            .iter()
            .position(|&b| b != 0)
            .unwrap()
            + HEADER_LEN as usize;
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[data[at] ^ 0xff], at as u64).unwrap();
        assert!(open(dir.path()).lookup(&old_identity(6)).is_none());
    }

    #[test]
    fn two_writers_at_once_never_produce_a_wrong_record() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        let b = open(dir.path());
        std::thread::scope(|s| {
            s.spawn(|| {
                (0..2000u64).for_each(|i| a.remember(old_identity(i), payload(&i.to_le_bytes())))
            });
            s.spawn(|| {
                (0..2000u64).for_each(|i| b.remember(old_identity(i), payload(&i.to_le_bytes())))
            });
        });
        let table = open(dir.path());
        for i in 0..2000u64 {
            if let Some(p) = table.lookup(&old_identity(i)) {
                assert_eq!(p, payload(&i.to_le_bytes()));
            }
        }
    }
}
