//! The verification store: remembered proofs, so that a repeated `check --deep` on an
//! unchanged tree only hashes files, and an edit re-proves only what changed.
//!
//! A record maps a key — blake3 of (format, prover version, the interpreter's identity,
//! the optimisation levels tried, blake3 of the whole cache file, blake3 of the source) —
//! to the outcome of the proof (equal, different with a reason, or a SyntaxError). A
//! record can only be found again with byte-identical cache and source files compiled by
//! the same interpreter build, so it can never vouch for anything it did not prove.
//!
//! File: `deep-proofs-v1.bin` in pycguard's cache directory. A 16-byte header (magic and
//! format version), then append-only records `u32 LE length, payload, 8-byte blake3 of the
//! payload`. Writers take an exclusive `flock` on `deep-proofs-v1.lock`, re-read the file,
//! and either append their new records in one write, or — when the file is damaged, of an
//! older format, or would outgrow [`MAX_BYTES`] — rewrite it (temporary file + rename)
//! with the valid records, newest kept. Readers need no lock: a torn or damaged record
//! ends the valid part of the file (the rest is ignored, and rebuilt by the next writer).
//! Every failure to read or write is silent: the store only saves work.
//!
//! So that an unchanged tree does not even read its caches again, the store also keeps
//! what was learned about each cache file — its blake3 and magic number — keyed by the
//! file's identity (device, inode, size, mtime and ctime to the nanosecond). The ctime
//! cannot be set from user space and changes on every write, so an unchanged identity
//! means unchanged bytes; like git's index, a file changed within [`RACY_WINDOW_NS`] of
//! the run's start is not remembered, so a write in the same timestamp tick as our read
//! cannot hide behind a record. Sources are always hashed.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::interpreters::Interpreter;

/// File name of the store inside pycguard's cache directory.
pub const FILE_NAME: &str = "deep-proofs-v1.bin";
const LOCK_NAME: &str = "deep-proofs-v1.lock";
const MAGIC: &[u8; 8] = b"PYCGPROF";
const FORMAT: u32 = 1;
const HEADER_LEN: usize = 16;
/// The store is kept below this size (about 500,000 records of typical size).
pub const MAX_BYTES: u64 = 32 << 20;
/// Longest reason kept in a record.
const MAX_TEXT: usize = 1024;
/// Bump when the worker's comparison changes what it proves: old records then never match.
pub const PROVER_VERSION: u32 = 1;

/// A record key.
pub type Key = [u8; 32];

/// Files changed this close to the run's start are not remembered by identity.
pub const RACY_WINDOW_NS: i128 = 2_000_000_000;

/// What is remembered about one cache file, by identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// blake3 of the whole file.
    pub hash: [u8; 32],
    /// Its first four bytes.
    pub magic: [u8; 4],
}

/// One record's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Proof(Proof),
    File(FileFacts),
}

/// The identity key of a file, or `None` when it changed too recently to be trusted
/// (`now_ns`: the run's start, nanoseconds since the epoch).
pub fn identity_key(meta: &std::fs::Metadata, now_ns: i128) -> Option<Key> {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    let mtime = ns(meta.mtime(), meta.mtime_nsec());
    let ctime = ns(meta.ctime(), meta.ctime_nsec());
    if now_ns - mtime.max(ctime) < RACY_WINDOW_NS {
        return None;
    }
    let mut h = blake3::Hasher::new();
    h.update(b"pycguard file identity 1");
    for v in [meta.dev(), meta.ino(), meta.size()] {
        h.update(&v.to_le_bytes());
    }
    h.update(&mtime.to_le_bytes());
    h.update(&ctime.to_le_bytes());
    Some(*h.finalize().as_bytes())
}

/// A remembered outcome (only outcomes that depend on nothing but the key's inputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    Equal,
    Different(Option<String>),
    SyntaxError { line: Option<u32>, message: String },
}

/// The key of one proof.
pub fn key(
    interpreter: &Interpreter,
    levels: &[u8],
    cache: &blake3::Hash,
    source: &blake3::Hash,
) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(MAGIC);
    h.update(&FORMAT.to_le_bytes());
    h.update(&PROVER_VERSION.to_le_bytes());
    let id = interpreter.identity();
    h.update(&(id.len() as u32).to_le_bytes());
    h.update(&id);
    h.update(&(levels.len() as u32).to_le_bytes());
    h.update(levels);
    h.update(cache.as_bytes());
    h.update(source.as_bytes());
    *h.finalize().as_bytes()
}

/// Encode one record (length, payload, checksum).
pub fn encode_record(key: &Key, record: &Record) -> Vec<u8> {
    let mut payload = Vec::with_capacity(80);
    payload.extend_from_slice(key);
    let proof = match record {
        Record::Proof(proof) => proof,
        Record::File(facts) => {
            payload.push(3);
            payload.extend_from_slice(&0u32.to_le_bytes());
            payload.extend_from_slice(&facts.hash);
            payload.extend_from_slice(&facts.magic);
            return seal(payload);
        }
    };
    let (kind, line, text): (u8, u32, &str) = match proof {
        Proof::Equal => (0, 0, ""),
        Proof::Different(reason) => (1, 0, reason.as_deref().unwrap_or("")),
        Proof::SyntaxError { line, message } => {
            (2, line.map_or(0, |l| l.saturating_add(1)), message)
        }
    };
    let text = truncate(text, MAX_TEXT);
    payload.push(kind);
    payload.extend_from_slice(&line.to_le_bytes());
    payload.extend_from_slice(text.as_bytes());
    seal(payload)
}

/// Length, payload, checksum.
fn seal(payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&blake3::hash(&payload).as_bytes()[..8]);
    out
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Decode the records of a whole store file. Returns the records in file order and
/// whether the file is intact (right header, no damaged or torn record).
pub fn decode_file(bytes: &[u8]) -> (Vec<(Key, Record)>, bool) {
    let mut records = Vec::new();
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC || bytes[8..12] != FORMAT.to_le_bytes() {
        return (records, false);
    }
    let mut rest = &bytes[HEADER_LEN..];
    while !rest.is_empty() {
        let Some(record) = decode_record(rest) else {
            return (records, false);
        };
        let (key, proof, used) = record;
        records.push((key, proof));
        rest = &rest[used..];
    }
    (records, true)
}

fn decode_record(bytes: &[u8]) -> Option<(Key, Record, usize)> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if !(37..=37 + MAX_TEXT).contains(&len) {
        return None;
    }
    let payload = bytes.get(4..4 + len)?;
    let sum = bytes.get(4 + len..4 + len + 8)?;
    if &blake3::hash(payload).as_bytes()[..8] != sum {
        return None;
    }
    let key: Key = payload[..32].try_into().ok()?;
    let line = u32::from_le_bytes(payload[33..37].try_into().ok()?);
    if payload[32] == 3 {
        let rest = &payload[37..];
        if rest.len() != 36 {
            return None;
        }
        let facts = FileFacts {
            hash: rest[..32].try_into().ok()?,
            magic: rest[32..].try_into().ok()?,
        };
        return Some((key, Record::File(facts), 4 + len + 8));
    }
    let text = std::str::from_utf8(&payload[37..]).ok()?.to_owned();
    let proof = match payload[32] {
        0 if text.is_empty() => Proof::Equal,
        1 => Proof::Different(Some(text).filter(|t| !t.is_empty())),
        2 => Proof::SyntaxError {
            line: line.checked_sub(1),
            message: text,
        },
        _ => return None,
    };
    Some((key, Record::Proof(proof), 4 + len + 8))
}

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT.to_le_bytes());
    h
}

/// The store of one run: what was loaded, and what this run adds.
#[derive(Debug, Default)]
pub struct Store {
    dir: Option<PathBuf>,
    known: HashMap<Key, Record>,
    added: Vec<(Key, Record)>,
}

impl Store {
    /// A store that remembers nothing (`--no-cache`).
    pub fn disabled() -> Store {
        Store::default()
    }

    /// Load the store in `dir`; a missing, damaged or older file gives an empty or partial
    /// store (what is valid is used).
    pub fn load(dir: &Path) -> Store {
        let (records, _) = read_store(&dir.join(FILE_NAME))
            .map(|b| decode_file(&b))
            .unwrap_or_default();
        Store {
            dir: Some(dir.to_path_buf()),
            known: records.into_iter().collect(),
            added: Vec::new(),
        }
    }

    pub fn get(&self, key: &Key) -> Option<&Proof> {
        match self.known.get(key) {
            Some(Record::Proof(proof)) => Some(proof),
            _ => None,
        }
    }

    /// What is remembered about the file with this identity key.
    pub fn file(&self, key: &Key) -> Option<FileFacts> {
        match self.known.get(key) {
            Some(Record::File(facts)) => Some(*facts),
            _ => None,
        }
    }

    pub fn insert(&mut self, key: Key, proof: Proof) {
        self.insert_record(key, Record::Proof(proof));
    }

    pub fn insert_file(&mut self, key: Key, facts: FileFacts) {
        self.insert_record(key, Record::File(facts));
    }

    fn insert_record(&mut self, key: Key, record: Record) {
        if self.dir.is_none() || self.known.get(&key) == Some(&record) {
            return;
        }
        self.known.insert(key, record.clone());
        self.added.push((key, record));
    }

    /// Write what this run added. Never fails loudly.
    pub fn save(&mut self) {
        let Some(dir) = self.dir.clone() else {
            return;
        };
        if self.added.is_empty() {
            return;
        }
        let _ = self.save_in(&dir);
        self.added.clear();
    }

    fn save_in(&self, dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let lock = open_own(&dir.join(LOCK_NAME), true)?;
        let _guard = Flock::exclusive(&lock)?;
        let path = dir.join(FILE_NAME);
        let existing = read_store(&path).unwrap_or_default();
        let (records, intact) = decode_file(&existing);
        let new: Vec<u8> = self
            .added
            .iter()
            .flat_map(|(k, p)| encode_record(k, p))
            .collect();
        if intact && (existing.len() + new.len()) as u64 <= MAX_BYTES {
            let mut file = open_own(&path, false)?;
            return file.write_all(&new);
        }
        // Rebuild: the valid records (newest last wins), ours last, the oldest dropped
        // until the file fits in half the bound.
        let mut all = records;
        all.extend(self.added.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let mut size = HEADER_LEN as u64;
        for (k, p) in all.iter().rev() {
            if !seen.insert(*k) {
                continue;
            }
            let record = encode_record(k, p);
            size += record.len() as u64;
            if size > MAX_BYTES / 2 {
                break;
            }
            kept.push(record);
        }
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&header())?;
        for record in kept.iter().rev() {
            tmp.write_all(record)?;
        }
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The store file, read without following a link or blocking, at most twice the bound
/// (a larger one is not ours: ignored, and rebuilt by the next save).
fn read_store(path: &Path) -> Result<Vec<u8>, crate::read::ReadError> {
    crate::read::read(
        path,
        crate::read::Follow::No,
        "the proof store",
        2 * MAX_BYTES,
    )
}

/// Open one of the store's own files for writing (the lock: created if missing; the store:
/// appended to) without following a link or blocking on a FIFO; only a regular file will do.
fn open_own(path: &Path, create: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    if create {
        options.create(true).truncate(false).write(true);
    } else {
        options.append(true);
    }
    let file = options
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .mode(0o600)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// How long a save waits for another run holding the lock before giving up (the store
/// only saves work).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// An exclusive `flock` held until dropped.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn exclusive(file: &'a File) -> std::io::Result<Flock<'a>> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            // SAFETY: flock on a valid, open descriptor owned by `file`.
            #[allow(unsafe_code)] // until the store takes rustix's flock
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r == 0 {
                return Ok(Flock(file));
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => {}
                std::io::ErrorKind::WouldBlock
                    if std::time::Instant::now() < deadline && !crate::signals::interrupted() =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => return Err(err),
            }
        }
    }
}

impl Drop for Flock<'_> {
    #[allow(unsafe_code)] // until the store takes rustix's flock
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn records_round_trip() {
        let proofs = [
            Proof::Equal,
            Proof::Different(Some("constant 60 became 300 in function f".into())),
            Proof::Different(None),
            Proof::SyntaxError {
                line: Some(0),
                message: "invalid syntax".into(),
            },
            Proof::SyntaxError {
                line: None,
                message: "source code cannot contain null bytes".into(),
            },
        ];
        let mut file = header().to_vec();
        for (i, p) in proofs.iter().enumerate() {
            file.extend(encode_record(&k(i as u8), &Record::Proof(p.clone())));
        }
        let (records, intact) = decode_file(&file);
        assert!(intact);
        assert_eq!(records.len(), proofs.len());
        for ((key, proof), (i, expected)) in records.iter().zip(proofs.iter().enumerate()) {
            assert_eq!(*key, k(i as u8));
            assert_eq!(*proof, Record::Proof(expected.clone()));
        }
    }

    #[test]
    fn damage_ends_the_valid_part_and_never_yields_a_wrong_record() {
        let mut file = header().to_vec();
        file.extend(encode_record(&k(1), &Record::Proof(Proof::Equal)));
        let second = file.len();
        file.extend(encode_record(
            &k(2),
            &Record::Proof(Proof::Different(Some("x".into()))),
        ));
        file.extend(encode_record(&k(3), &Record::Proof(Proof::Equal)));
        // Flip one bit in the second record's payload: it and everything after are dropped.
        let mut damaged = file.clone();
        damaged[second + 10] ^= 1;
        let (records, intact) = decode_file(&damaged);
        assert!(!intact);
        assert_eq!(records, vec![(k(1), Record::Proof(Proof::Equal))]);
        // A torn tail.
        let (records, intact) = decode_file(&file[..file.len() - 3]);
        assert!(!intact);
        assert_eq!(records.len(), 2);
        // Older format or garbage: nothing.
        let mut old = file.clone();
        old[8] = 0;
        assert_eq!(decode_file(&old), (vec![], false));
        assert_eq!(decode_file(b"garbage").0, vec![]);
    }

    #[test]
    fn long_reasons_are_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let rec = encode_record(&k(1), &Record::Proof(Proof::Different(Some(long))));
        let mut file = header().to_vec();
        file.extend(rec);
        let (records, intact) = decode_file(&file);
        assert!(intact);
        match &records[0].1 {
            Record::Proof(Proof::Different(Some(t))) => assert!(t.len() <= MAX_TEXT),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn save_appends_and_rebuilds_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::load(dir.path());
        s.insert(k(1), Proof::Equal);
        s.save();
        let mut s = Store::load(dir.path());
        assert_eq!(s.get(&k(1)), Some(&Proof::Equal));
        s.insert(k(2), Proof::Different(None));
        s.save();
        let s = Store::load(dir.path());
        assert_eq!(s.get(&k(2)), Some(&Proof::Different(None)));
        // Damage the end of the file: the next save rebuilds it with what is valid.
        let path = dir.path().join(FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let mut s = Store::load(dir.path());
        assert_eq!(s.get(&k(1)), Some(&Proof::Equal));
        assert_eq!(s.get(&k(2)), None, "the damaged record is not used");
        s.insert(k(3), Proof::Equal);
        s.save();
        let (records, intact) = decode_file(&fs::read(&path).unwrap());
        assert!(intact);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn file_facts_round_trip_and_recent_files_are_not_trusted() {
        let facts = FileFacts {
            hash: [7; 32],
            magic: [0xcb, 0x0d, 0x0d, 0x0a],
        };
        let mut file = header().to_vec();
        file.extend(encode_record(&k(9), &Record::File(facts)));
        let (records, intact) = decode_file(&file);
        assert!(intact);
        assert_eq!(records, vec![(k(9), Record::File(facts))]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"x").unwrap();
        let meta = fs::metadata(&path).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        assert_eq!(identity_key(&meta, now), None, "just written: racy");
        let later = identity_key(&meta, now + 3_000_000_000).unwrap();
        assert_eq!(Some(later), identity_key(&meta, now + 9_000_000_000));
        fs::write(&path, b"y").unwrap();
        let meta2 = fs::metadata(&path).unwrap();
        assert_ne!(identity_key(&meta2, now + 9_000_000_000), Some(later));
    }

    #[test]
    fn disabled_store_remembers_nothing() {
        let mut s = Store::disabled();
        s.insert(k(1), Proof::Equal);
        assert_eq!(s.get(&k(1)), None);
        s.save();
    }
}
