//! The verification store: remembered proofs, so that a repeated `check --deep` on an
//! unchanged tree only hashes files, and an edit re-proves only what changed.
//!
//! A record maps a key — blake3 of (format, prover version, the interpreter's identity,
//! the optimisation levels tried, blake3 of the whole cache file, blake3 of the source) —
//! to the outcome of the proof (equal, different with a reason, or a SyntaxError). A
//! record can only be found again with byte-identical cache and source files compiled by
//! the same interpreter build, so it can never vouch for anything it did not prove.
//!
//! File: [`FILE_NAME`] in pycguard's cache directory. A [`super::format`] header (magic
//! `PYCGPROF`, format [`FORMAT`]'s version, no parameters), then append-only records
//! `u32 LE length, payload, 8-byte checksum of the payload`. Writers take an exclusive
//! lock ([`super::lock`], waiting at most [`LOCK_WAIT`]) on [`LOCK_NAME`], re-read the
//! file, and either append their new records in one write, or — when the file is absent,
//! damaged, of an older format, or would outgrow [`MAX_BYTES`] — rewrite it (temporary
//! file + rename) with the valid records, newest kept, and remove the files of earlier
//! formats. Readers need no lock: a torn or damaged record ends the valid part of the
//! file (the rest is ignored, and rebuilt by the next writer). Every failure to read or
//! write is silent: the store only saves work.
//!
//! So that an unchanged tree does not even read its caches again, the store also keeps
//! what was learned about each cache file — its blake3 and magic number — keyed by the
//! file's [`FileIdentity`], when the racily-clean rule of [`super::identity`] allows it
//! ([`RunStart::may_remember`]: not changed within two seconds of the run's start), so a
//! write in the same timestamp tick as our read cannot hide behind a record. Sources are
//! always hashed.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::format::{self, Format, CHECKSUM_LEN};
use super::{lock, Access, CacheDir, FileIdentity, RunStart, StoreError};
use crate::stat::FileStat;

/// File name of the store inside pycguard's cache directory.
pub const FILE_NAME: &str = "deep-proofs-v2.bin";
/// The lock writers take (the store itself is replaced by rename, so it cannot be it).
pub const LOCK_NAME: &str = "deep-proofs-v2.lock";
/// Files of earlier formats, removed when the store is rebuilt.
const OLD_FILE_NAMES: &[&str] = &["deep-proofs-v1.bin", "deep-proofs-v1.lock"];
/// The store's file format (its version is the one in [`FILE_NAME`]).
pub const FORMAT: Format = Format {
    magic: *b"PYCGPROF",
    version: 2,
};
const HEADER_LEN: usize = Format::header_len(0);
/// Names the files in errors.
const WHAT: &str = "the proof store";
const WHAT_LOCK: &str = "the proof store's lock";
/// How long a save waits for another run holding the lock before giving up (the store
/// only saves work).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
/// The store is kept below this size (about 500,000 records of typical size).
pub const MAX_BYTES: u64 = 32 << 20;
/// Longest reason kept in a record.
const MAX_TEXT: usize = 1024;
/// Bump when the worker's comparison changes what it proves: old records then never match.
pub const PROVER_VERSION: u32 = 1;

/// A record key.
pub type Key = [u8; 32];

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

/// The key of a file's identity, or `None` when the racily-clean rule does not let a run
/// started at `run` remember it.
pub fn identity_key(identity: &FileIdentity, run: &RunStart) -> Option<Key> {
    if !run.may_remember(identity) {
        return None;
    }
    let mut h = blake3::Hasher::new();
    h.update(b"pycguard file identity 2");
    for v in [identity.dev, identity.ino, identity.size] {
        h.update(&v.to_le_bytes());
    }
    h.update(&identity.mtime_ns.to_le_bytes());
    h.update(&identity.ctime_ns.to_le_bytes());
    Some(*h.finalize().as_bytes())
}

/// A remembered outcome (only outcomes that depend on nothing but the key's inputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    Equal,
    Different(Option<String>),
    SyntaxError { line: Option<u32>, message: String },
}

/// What identifies the compiler a proof was made with (for an interpreter: its resolved
/// executable and its whole confirmed answer), so that a proof is found again only for
/// the same build.
pub trait Prover {
    fn identity(&self) -> Vec<u8>;
}

/// The key of one proof.
pub fn key(
    interpreter: &impl Prover,
    levels: &[u8],
    cache: &blake3::Hash,
    source: &blake3::Hash,
) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(&FORMAT.magic);
    h.update(&FORMAT.version.to_le_bytes());
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
    let mut out = Vec::with_capacity(4 + payload.len() + CHECKSUM_LEN);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&format::checksum(&payload));
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
    let Ok(header_len) = FORMAT.check(bytes, &[]) else {
        return (records, false);
    };
    let mut rest = &bytes[header_len..];
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
    let sum = bytes.get(4 + len..4 + len + CHECKSUM_LEN)?;
    if format::checksum(payload) != sum {
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
        return Some((key, Record::File(facts), 4 + len + CHECKSUM_LEN));
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
    Some((key, Record::Proof(proof), 4 + len + CHECKSUM_LEN))
}

fn header() -> Vec<u8> {
    FORMAT.header(&[])
}

/// The store of one run: what was loaded, and what this run adds.
#[derive(Debug, Default)]
pub struct Store {
    dir: Option<CacheDir>,
    run: RunStart,
    known: HashMap<Key, Record>,
    added: Vec<(Key, Record)>,
    /// Set on Ctrl-C: a save then stops waiting for another run's lock.
    interrupt: Option<Arc<AtomicBool>>,
}

impl Store {
    /// A store that remembers nothing (`--no-cache`).
    pub fn disabled() -> Store {
        Store::default()
    }

    /// Load the store in `dir`; a missing, damaged or older file gives an empty or partial
    /// store (what is valid is used).
    pub fn load(dir: &Path) -> Store {
        // Before any file this run may learn is read.
        let run = RunStart::now();
        let dir = CacheDir::new(dir);
        let (records, _) = read_store(&dir)
            .map(|b| decode_file(&b))
            .unwrap_or_default();
        Store {
            dir: Some(dir),
            run,
            known: records.into_iter().collect(),
            added: Vec::new(),
            interrupt: None,
        }
    }

    /// Stop waiting for another run's lock once `flag` is set (Ctrl-C).
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    /// The key under which what is known about the file with this stat is remembered;
    /// `None` when nothing may be (no store, or the racily-clean rule says no).
    pub fn identity_key(&self, st: &FileStat) -> Option<Key> {
        self.dir.as_ref()?;
        identity_key(&FileIdentity::of(st), &self.run)
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

    fn save_in(&self, dir: &CacheDir) -> Result<(), StoreError> {
        dir.create()?;
        let (lock_file, _) = dir.open_write(LOCK_NAME, WHAT_LOCK, Access::Create)?;
        let stop = || {
            self.interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
        };
        let _held = lock::exclusive(&lock_file, LOCK_WAIT, &stop)?;
        let existing = read_store(dir).unwrap_or_default();
        let (records, intact) = decode_file(&existing);
        let new: Vec<u8> = self
            .added
            .iter()
            .flat_map(|(k, p)| encode_record(k, p))
            .collect();
        if intact && (existing.len() + new.len()) as u64 <= MAX_BYTES {
            let (mut file, _) = dir.open_write(FILE_NAME, WHAT, Access::Append)?;
            return Ok(file.write_all(&new)?);
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
        dir.replace(FILE_NAME, |tmp| {
            tmp.write_all(&header())?;
            kept.iter()
                .rev()
                .try_for_each(|record| tmp.write_all(record))
        })?;
        dir.remove_old(OLD_FILE_NAMES);
        Ok(())
    }
}

/// The store file, read without following a link or blocking, at most twice the bound
/// (a larger one is not ours: ignored, and rebuilt by the next save).
fn read_store(dir: &CacheDir) -> Result<Vec<u8>, StoreError> {
    dir.read(FILE_NAME, WHAT, 2 * MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
        let meta = FileIdentity::of_metadata(&fs::metadata(&path).unwrap());
        let now = RunStart::now();
        let at = |ns: i64| RunStart::at_ns(ns);
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        assert_eq!(identity_key(&meta, &now), None, "just written: racy");
        let later = identity_key(&meta, &at(now_ns + 3_000_000_000)).unwrap();
        assert_eq!(
            Some(later),
            identity_key(&meta, &at(now_ns + 9_000_000_000))
        );
        fs::write(&path, b"y").unwrap();
        let meta2 = FileIdentity::of_metadata(&fs::metadata(&path).unwrap());
        assert_ne!(
            identity_key(&meta2, &at(now_ns + 9_000_000_000)),
            Some(later)
        );
    }

    #[test]
    fn an_older_format_is_never_believed_and_its_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // What pycguard's format 1 wrote: a 16-byte header, then the same records.
        let mut v1 = b"PYCGPROF".to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&[0; 4]);
        v1.extend(encode_record(&k(1), &Record::Proof(Proof::Equal)));
        fs::write(dir.path().join("deep-proofs-v1.bin"), &v1).unwrap();
        fs::write(dir.path().join("deep-proofs-v1.lock"), b"").unwrap();
        // And the same records under the current name, with a format-1 header.
        let mut older = Format {
            version: 1,
            ..FORMAT
        }
        .header(&[]);
        older.extend(encode_record(&k(1), &Record::Proof(Proof::Equal)));
        fs::write(dir.path().join(FILE_NAME), &older).unwrap();
        assert_eq!(decode_file(&older), (vec![], false));
        let mut s = Store::load(dir.path());
        assert_eq!(s.get(&k(1)), None, "an older format is not believed");
        s.insert(k(2), Proof::Equal);
        s.save();
        assert!(!dir.path().join("deep-proofs-v1.bin").exists());
        assert!(!dir.path().join("deep-proofs-v1.lock").exists());
        let (records, intact) = decode_file(&fs::read(dir.path().join(FILE_NAME)).unwrap());
        assert!(intact);
        assert_eq!(records, vec![(k(2), Record::Proof(Proof::Equal))]);
    }

    #[test]
    fn a_save_does_not_wait_for_a_held_lock_once_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheDir::new(dir.path());
        let (other, _) = cache
            .open_write(LOCK_NAME, WHAT_LOCK, Access::Create)
            .unwrap();
        let held = lock::exclusive(&other, Duration::ZERO, &|| false).unwrap();
        let mut s = Store::load(dir.path());
        let flag = Arc::new(AtomicBool::new(true));
        s.set_interrupt(Arc::clone(&flag));
        s.insert(k(1), Proof::Equal);
        let started = std::time::Instant::now();
        assert!(matches!(
            s.save_in(&cache),
            Err(StoreError::Lock(lock::LockError::Interrupted))
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            !dir.path().join(FILE_NAME).exists(),
            "nothing written unlocked"
        );
        drop(held);
        s.save();
        assert_eq!(Store::load(dir.path()).get(&k(1)), Some(&Proof::Equal));
    }

    #[test]
    fn disabled_store_remembers_nothing() {
        let mut s = Store::disabled();
        s.insert(k(1), Proof::Equal);
        assert_eq!(s.get(&k(1)), None);
        s.save();
    }
}
