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
pub fn encode_record(key: &Key, proof: &Proof) -> Vec<u8> {
    let mut payload = Vec::with_capacity(48);
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
pub fn decode_file(bytes: &[u8]) -> (Vec<(Key, Proof)>, bool) {
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

fn decode_record(bytes: &[u8]) -> Option<(Key, Proof, usize)> {
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
    Some((key, proof, 4 + len + 8))
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
    known: HashMap<Key, Proof>,
    added: Vec<(Key, Proof)>,
}

impl Store {
    /// A store that remembers nothing (`--no-cache`).
    pub fn disabled() -> Store {
        Store::default()
    }

    /// Load the store in `dir`; a missing, damaged or older file gives an empty or partial
    /// store (what is valid is used).
    pub fn load(dir: &Path) -> Store {
        let (records, _) = fs::read(dir.join(FILE_NAME))
            .map(|b| decode_file(&b))
            .unwrap_or_default();
        Store {
            dir: Some(dir.to_path_buf()),
            known: records.into_iter().collect(),
            added: Vec::new(),
        }
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

    fn save_in(&self, dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_NAME))?;
        let _guard = Flock::exclusive(&lock)?;
        let path = dir.join(FILE_NAME);
        let existing = fs::read(&path).unwrap_or_default();
        let (records, intact) = decode_file(&existing);
        let new: Vec<u8> = self
            .added
            .iter()
            .flat_map(|(k, p)| encode_record(k, p))
            .collect();
        if intact && (existing.len() + new.len()) as u64 <= MAX_BYTES {
            let mut file = OpenOptions::new().append(true).open(&path)?;
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

/// An exclusive `flock` held until dropped.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn exclusive(file: &'a File) -> std::io::Result<Flock<'a>> {
        loop {
            // SAFETY: flock on a valid, open descriptor owned by `file`.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(Flock(file));
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for Flock<'_> {
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
            file.extend(encode_record(&k(i as u8), p));
        }
        let (records, intact) = decode_file(&file);
        assert!(intact);
        assert_eq!(records.len(), proofs.len());
        for ((key, proof), (i, expected)) in records.iter().zip(proofs.iter().enumerate()) {
            assert_eq!(*key, k(i as u8));
            assert_eq!(proof, expected);
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
    fn disabled_store_remembers_nothing() {
        let mut s = Store::disabled();
        s.insert(k(1), Proof::Equal);
        assert_eq!(s.get(&k(1)), None);
        s.save();
    }
}
