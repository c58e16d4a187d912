//! The verification store: remembered proofs by content, so that a repeated `check
//! --deep` proves nothing twice, and every tree holding the same files (another
//! virtualenv with the same packages, a copy, a CI checkout) finds the proofs made in
//! any of them.
//!
//! A record maps a key — blake3 of (format, prover version, the interpreter build's
//! identity, the optimisation levels tried, blake3 of the whole cache file, blake3 of
//! the source) — to the outcome of the proof (equal, different with a reason, or a
//! SyntaxError). A record can only be found again with byte-identical cache and source
//! files compiled by the same interpreter build, so it can never vouch for anything it
//! did not prove. (Pairs proven equal are also remembered by the files' identities, in
//! the [`super::proven`] memo: a warm run of an unchanged tree does not read them at all,
//! and loads this store only for what that memo does not know.)
//!
//! File: [`FILE_NAME`] in pycguard's cache directory. A [`super::format`] header (magic
//! `PYCGPROF`, format [`FORMAT`]'s version, no parameters), then append-only records
//! `u32 LE length, payload, 8-byte checksum of the payload`. Writers take an exclusive
//! lock ([`super::lock`], waiting at most [`LOCK_WAIT`]) on [`LOCK_NAME`], re-read the
//! file, and either append their new records in one write, or — when the file is absent,
//! damaged, of an older format, or would outgrow [`MAX_BYTES`] — rewrite it (temporary
//! file + rename) with the valid records, the newest kept (eviction by age), and remove
//! the files of earlier formats. Readers need no lock: a torn or damaged record ends the
//! valid part of the file (the rest is ignored, and rebuilt by the next writer). Every
//! failure to read or write is silent: the store only saves work.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::format::{self, Format, CHECKSUM_LEN};
use super::{lock, Access, CacheDir, StoreError};

/// File name of the store inside pycguard's cache directory.
pub const FILE_NAME: &str = "deep-proofs-v3.bin";
/// The lock writers take (the store itself is replaced by rename, so it cannot be it).
pub const LOCK_NAME: &str = "deep-proofs-v3.lock";
/// Files of earlier formats, removed when the store is rebuilt.
const OLD_FILE_NAMES: &[&str] = &[
    "deep-proofs-v1.bin",
    "deep-proofs-v1.lock",
    "deep-proofs-v2.bin",
    "deep-proofs-v2.lock",
];
/// The store's file format (its version is the one in [`FILE_NAME`]).
pub const FORMAT: Format = Format {
    magic: *b"PYCGPROF",
    version: 3,
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
pub const PROVER_VERSION: u32 = 2;

/// A record key.
pub type Key = [u8; 32];

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
pub fn encode_record(key: &Key, proof: &Proof) -> Vec<u8> {
    let mut payload = Vec::with_capacity(80);
    payload.extend_from_slice(key);
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
pub fn decode_file(bytes: &[u8]) -> (Vec<(Key, Proof)>, bool) {
    let mut records = Vec::new();
    let intact = each_record(bytes, |key, proof| records.push((key, proof)));
    (records, intact)
}

/// Hand every valid record of a store file to `f`, in file order; whether the file is
/// intact.
fn each_record(bytes: &[u8], mut f: impl FnMut(Key, Proof)) -> bool {
    let Ok(header_len) = FORMAT.check(bytes, &[]) else {
        return false;
    };
    let mut rest = &bytes[header_len..];
    while !rest.is_empty() {
        let Some((key, proof, used)) = decode_record(rest) else {
            return false;
        };
        f(key, proof);
        rest = &rest[used..];
    }
    true
}

fn decode_record(bytes: &[u8]) -> Option<(Key, Proof, usize)> {
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
    Some((key, proof, 4 + len + CHECKSUM_LEN))
}

fn header() -> Vec<u8> {
    FORMAT.header(&[])
}

/// The store of one run: what was loaded, and what this run adds.
#[derive(Debug, Default)]
pub struct Store {
    dir: Option<CacheDir>,
    known: HashMap<Key, Proof>,
    added: Vec<(Key, Proof)>,
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
        Store::load_where(dir, |_| true)
    }

    /// Load only the records of `keys` (what a run looks up: memory then grows with what
    /// is left to prove, not with the store).
    pub fn load_matching(dir: &Path, keys: &HashSet<Key>) -> Store {
        Store::load_where(dir, |k| keys.contains(k))
    }

    fn load_where(dir: &Path, wanted: impl Fn(&Key) -> bool) -> Store {
        let dir = CacheDir::new(dir);
        let mut known = HashMap::new();
        if let Ok(bytes) = read_store(&dir) {
            each_record(&bytes, |key, proof| {
                if wanted(&key) {
                    known.insert(key, proof);
                }
            });
        }
        Store {
            dir: Some(dir),
            known,
            added: Vec::new(),
            interrupt: None,
        }
    }

    /// Stop waiting for another run's lock once `flag` is set (Ctrl-C).
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    pub fn get(&self, key: &Key) -> Option<&Proof> {
        self.known.get(key)
    }

    pub fn insert(&mut self, key: Key, proof: Proof) {
        if self.dir.is_none() || self.known.get(&key) == Some(&proof) {
            return;
        }
        self.known.insert(key, proof.clone());
        self.added.push((key, proof));
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
        let new: Vec<u8> = self
            .added
            .iter()
            .flat_map(|(k, p)| encode_record(k, p))
            .collect();
        if (existing.len() + new.len()) as u64 <= MAX_BYTES && each_record(&existing, |_, _| {}) {
            let (mut file, _) = dir.open_write(FILE_NAME, WHAT, Access::Append)?;
            return Ok(file.write_all(&new)?);
        }
        let (records, _) = decode_file(&existing);
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
            file.extend(encode_record(&k(i as u8), &p.clone()));
        }
        let (records, intact) = decode_file(&file);
        assert!(intact);
        assert_eq!(records.len(), proofs.len());
        for ((key, proof), (i, expected)) in records.iter().zip(proofs.iter().enumerate()) {
            assert_eq!(*key, k(i as u8));
            assert_eq!(*proof, expected.clone());
        }
    }

    #[test]
    fn damage_ends_the_valid_part_and_never_yields_a_wrong_record() {
        let mut file = header().to_vec();
        file.extend(encode_record(&k(1), &Proof::Equal));
        let second = file.len();
        file.extend(encode_record(&k(2), &Proof::Different(Some("x".into()))));
        file.extend(encode_record(&k(3), &Proof::Equal));
        // Flip one bit in the second record's payload: it and everything after are dropped.
        let mut damaged = file.clone();
        damaged[second + 10] ^= 1;
        let (records, intact) = decode_file(&damaged);
        assert!(!intact);
        assert_eq!(records, vec![(k(1), Proof::Equal)]);
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
        let rec = encode_record(&k(1), &Proof::Different(Some(long)));
        let mut file = header().to_vec();
        file.extend(rec);
        let (records, intact) = decode_file(&file);
        assert!(intact);
        match &records[0].1 {
            Proof::Different(Some(t)) => assert!(t.len() <= MAX_TEXT),
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
    fn an_older_format_is_never_believed_and_its_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // What pycguard's format 1 wrote: a 16-byte header, then the same records.
        let mut v1 = b"PYCGPROF".to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&[0; 4]);
        v1.extend(encode_record(&k(1), &Proof::Equal));
        fs::write(dir.path().join("deep-proofs-v1.bin"), &v1).unwrap();
        fs::write(dir.path().join("deep-proofs-v1.lock"), b"").unwrap();
        fs::write(dir.path().join("deep-proofs-v2.bin"), b"PYCGPROF").unwrap();
        fs::write(dir.path().join("deep-proofs-v2.lock"), b"").unwrap();
        // And the same records under the current name, with a format-1 header.
        let mut older = Format {
            version: 1,
            ..FORMAT
        }
        .header(&[]);
        older.extend(encode_record(&k(1), &Proof::Equal));
        fs::write(dir.path().join(FILE_NAME), &older).unwrap();
        assert_eq!(decode_file(&older), (vec![], false));
        let mut s = Store::load(dir.path());
        assert_eq!(s.get(&k(1)), None, "an older format is not believed");
        s.insert(k(2), Proof::Equal);
        s.save();
        assert!(!dir.path().join("deep-proofs-v1.bin").exists());
        assert!(!dir.path().join("deep-proofs-v1.lock").exists());
        assert!(!dir.path().join("deep-proofs-v2.bin").exists());
        assert!(!dir.path().join("deep-proofs-v2.lock").exists());
        let (records, intact) = decode_file(&fs::read(dir.path().join(FILE_NAME)).unwrap());
        assert!(intact);
        assert_eq!(records, vec![(k(2), Proof::Equal)]);
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
