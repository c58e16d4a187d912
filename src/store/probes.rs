//! The remembered probe answers ([`MEMO_FILE`] in pycguard's cache directory), so that
//! later runs only `stat` the interpreters instead of starting them.
//!
//! An entry is keyed by the resolved executable and its [`FileIdentity`] (device, inode,
//! size, mtime and ctime: a replaced or rebuilt file is asked again); an executable
//! changed within two seconds of the run's start is not remembered (the racily-clean rule
//! of [`super::identity`]). Only plausible answers are stored, and an entry is checked
//! again when it is read back: one that fails (a swapped, edited or older memo) is dropped
//! and the interpreter probed again (the check is the answer type's, [`ProbeAnswer`], so
//! that this module needs nothing of [`crate::interpreters`]). The file is only ever a
//! hint: it is opened as every store file is ([`super::CacheDir`]: no link followed, no
//! FIFO or device waited on, a regular file of at most [`MAX_BYTES`]), and anything
//! unreadable, damaged or of another format is ignored and rewritten. Writes are atomic
//! (temp file + rename) and their failures silent: the memo can only save work, never
//! change a verdict.
//!
//! Unlike the binary stores it is JSON, `{"format": 2, "entries": [...]}`: its version is
//! the `format` field (and the one in the file name), and its integrity check is the
//! per-entry plausibility check above rather than a checksum — an answer must stand up to
//! a deliberately edited memo, which a checksum cannot detect, and the worker's hello
//! confirms it again before any proof or compilation.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{CacheDir, FileIdentity, RunStart};

/// File name inside pycguard's cache directory.
pub const MEMO_FILE: &str = "interpreters-v2.json";
/// The format written (older formats are ignored and rewritten).
const FORMAT: u32 = 2;
/// Names the file in errors.
const WHAT: &str = "the probe memo";
/// A larger file is not read (256 entries take well under 200 KiB).
pub const MAX_BYTES: u64 = 1 << 20;
/// At most this many entries are kept (the most recently asked ones).
const MAX_ENTRIES: usize = 256;

/// An interpreter's answer to the probe, as far as remembering it goes.
pub trait ProbeAnswer: Clone + PartialEq + Serialize + DeserializeOwned {
    /// Could this be what the executable `resolved` (symlinks resolved) answers? Checked
    /// before an answer is stored and again when it is read back.
    fn plausible_for(&self, resolved: &Path) -> bool;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "A: ProbeAnswer")]
struct Entry<A> {
    executable: PathBuf,
    stamp: FileIdentity,
    answer: A,
}

/// The memo as loaded; [`ProbeMemo::save`] writes it back when it changed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "A: ProbeAnswer")]
pub struct ProbeMemo<A> {
    format: u32,
    entries: Vec<Entry<A>>,
    #[serde(skip)]
    changed: bool,
    /// When this run started (made with the memo).
    #[serde(skip)]
    run: RunStart,
}

impl<A> Default for ProbeMemo<A> {
    fn default() -> Self {
        ProbeMemo {
            format: 0,
            entries: Vec::new(),
            changed: false,
            run: RunStart::default(),
        }
    }
}

impl<A: ProbeAnswer> ProbeMemo<A> {
    /// Read the memo in `dir`; an absent, unreadable, oversized, non-regular or damaged
    /// file gives an empty memo (which is written anew when something is remembered).
    pub fn load(dir: &Path) -> ProbeMemo<A> {
        // Before any executable this run may learn is looked at.
        let run = RunStart::now();
        let Ok(bytes) = CacheDir::new(dir).read(MEMO_FILE, WHAT, MAX_BYTES) else {
            return ProbeMemo {
                run,
                ..ProbeMemo::default()
            };
        };
        match serde_json::from_slice::<ProbeMemo<A>>(&bytes) {
            Ok(memo) if memo.format == FORMAT => ProbeMemo { run, ..memo },
            // Another format or damaged: rewritten at the next save.
            _ => ProbeMemo {
                changed: true,
                run,
                ..ProbeMemo::default()
            },
        }
    }

    /// The remembered answer for `resolved` with this stamp, if it is still plausible. An
    /// entry that is not is dropped (and the memo rewritten at the next save).
    pub fn get(&mut self, resolved: &Path, stamp: &FileIdentity) -> Option<A> {
        let i = self
            .entries
            .iter()
            .position(|e| e.executable == resolved && e.stamp == *stamp)?;
        if self.entries[i].answer.plausible_for(resolved) {
            return Some(self.entries[i].answer.clone());
        }
        self.entries.remove(i);
        self.changed = true;
        None
    }

    /// Remember a fresh answer, if it is plausible and the executable did not change too
    /// recently to be remembered by its identity; otherwise forget any older one.
    pub fn put(&mut self, resolved: &Path, stamp: &FileIdentity, answer: &A) {
        if !answer.plausible_for(resolved) || !self.run.may_remember(stamp) {
            self.forget(resolved);
            return;
        }
        let entry = Entry {
            executable: resolved.to_path_buf(),
            stamp: *stamp,
            answer: answer.clone(),
        };
        if self.entries.last() == Some(&entry) {
            return;
        }
        self.entries.retain(|e| e.executable != resolved);
        self.entries.push(entry);
        let excess = self.entries.len().saturating_sub(MAX_ENTRIES);
        self.entries.drain(..excess);
        self.changed = true;
    }

    /// Drop whatever is remembered about `resolved`.
    pub fn forget(&mut self, resolved: &Path) {
        let before = self.entries.len();
        self.entries.retain(|e| e.executable != resolved);
        self.changed |= self.entries.len() != before;
    }

    /// Write atomically (temp file + rename) when something changed; failures are silent.
    pub fn save(&mut self, dir: &Path) {
        if !self.changed {
            return;
        }
        self.format = FORMAT;
        let Ok(json) = serde_json::to_vec(self) else {
            return;
        };
        let written = CacheDir::new(dir).replace(MEMO_FILE, |tmp| {
            use std::io::Write;
            tmp.write_all(&json)
        });
        if written.is_ok() {
            self.changed = false;
        }
    }
}

/// Drop the remembered answer for `resolved` in the memo of `dir` (a worker contradicted
/// it); the next discovery asks the interpreter again.
pub fn forget_in<A: ProbeAnswer>(dir: &Path, resolved: &Path) {
    let mut memo = ProbeMemo::<A>::load(dir);
    memo.forget(resolved);
    memo.save(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpreters::answer::Answer;
    use std::time::{Duration, Instant};

    /// The memo of real probe answers (their plausibility check is the real one).
    type ProbeMemo = super::ProbeMemo<Answer>;

    fn answer(exe: &str) -> Answer {
        Answer {
            implementation: "cpython".into(),
            version_info: (3, 12),
            version: "3.12.1".into(),
            magic: [0xcb, 0x0d, 0x0d, 0x0a],
            cache_tag: Some("cpython-312".into()),
            executable: exe.into(),
            prefixes: vec![Path::new(exe).parent().unwrap().parent().unwrap().into()],
        }
    }

    fn stamp(n: u64) -> FileIdentity {
        FileIdentity {
            dev: 1,
            ino: n,
            size: 10,
            mtime_ns: 5,
            ctime_ns: 6,
        }
    }

    #[test]
    fn round_trip_and_stamp_change() {
        let dir = tempfile::tempdir().unwrap();
        let exe = Path::new("/p/bin/python3.12");
        let mut memo = ProbeMemo::load(dir.path());
        memo.put(exe, &stamp(1), &answer("/p/bin/python3.12"));
        memo.save(dir.path());
        let mut again = ProbeMemo::load(dir.path());
        assert_eq!(again.get(exe, &stamp(1)), Some(answer("/p/bin/python3.12")));
        assert_eq!(
            again.get(exe, &stamp(2)),
            None,
            "a changed file is asked again"
        );
    }

    #[test]
    fn implausible_answers_are_neither_stored_nor_believed() {
        let dir = tempfile::tempdir().unwrap();
        let a = Path::new("/a/bin/python3.12");
        let b = Path::new("/b/bin/python3.12");
        let mut memo = ProbeMemo::load(dir.path());
        // An answer about another executable (a swap) is not remembered.
        memo.put(a, &stamp(1), &answer("/b/bin/python3.12"));
        assert!(memo.entries.is_empty());
        memo.put(a, &stamp(1), &answer("/a/bin/python3.12"));
        memo.put(b, &stamp(2), &answer("/b/bin/python3.12"));
        memo.save(dir.path());
        // Swap the two answers on disk, as a damaged or edited memo would.
        let path = dir.path().join(MEMO_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let entries = json["entries"].as_array_mut().unwrap();
        let first = entries[0]["answer"].clone();
        entries[0]["answer"] = entries[1]["answer"].clone();
        entries[1]["answer"] = first;
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        let mut swapped = ProbeMemo::load(dir.path());
        assert_eq!(swapped.get(a, &stamp(1)), None);
        assert_eq!(swapped.get(b, &stamp(2)), None);
        assert!(swapped.entries.is_empty() && swapped.changed);
        // An old-format file is ignored and rewritten.
        std::fs::write(&path, br#"{"format":1,"entries":[]}"#).unwrap();
        let mut old = ProbeMemo::load(dir.path());
        assert!(old.changed);
        old.save(dir.path());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"format\":2"));
    }

    #[test]
    fn an_executable_changed_just_before_the_run_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let exe = Path::new("/p/bin/python3.12");
        let mut memo = ProbeMemo::load(dir.path());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let racy = FileIdentity {
            ctime_ns: now - 1_000_000_000,
            ..stamp(1)
        };
        memo.put(exe, &stamp(1), &answer("/p/bin/python3.12"));
        assert!(memo.get(exe, &stamp(1)).is_some());
        // Rebuilt in place a moment ago: asked, but not remembered (and the answer for
        // its earlier identity is forgotten).
        memo.put(exe, &racy, &answer("/p/bin/python3.12"));
        assert!(memo.entries.is_empty());
        memo.save(dir.path());
        assert_eq!(ProbeMemo::load(dir.path()).get(exe, &racy), None);
    }

    #[test]
    fn keeps_the_most_recent_entries() {
        let mut memo = ProbeMemo::default();
        for n in 0..(MAX_ENTRIES as u64 + 10) {
            let exe = format!("/v{n}/bin/python3.12");
            memo.put(Path::new(&exe), &stamp(n), &answer(&exe));
        }
        assert_eq!(memo.entries.len(), MAX_ENTRIES);
        let newest = format!("/v{}/bin/python3.12", MAX_ENTRIES + 9);
        assert!(memo
            .get(Path::new(&newest), &stamp(MAX_ENTRIES as u64 + 9))
            .is_some());
        assert!(memo
            .get(Path::new("/v0/bin/python3.12"), &stamp(0))
            .is_none());
    }

    #[test]
    fn fifo_device_symlink_or_huge_file_is_ignored_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MEMO_FILE);
        let started = Instant::now();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(ProbeMemo::load(dir.path()).entries.is_empty());
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert!(ProbeMemo::load(dir.path()).entries.is_empty());
        std::fs::remove_file(&path).unwrap();
        let huge = std::fs::File::create(&path).unwrap();
        huge.set_len(3 << 30).unwrap(); // sparse: 3 GiB
        assert!(ProbeMemo::load(dir.path()).entries.is_empty());
        assert!(started.elapsed() < Duration::from_secs(5));
        // Saving replaces whatever is there with a regular file.
        let mut memo = ProbeMemo::default();
        let exe = Path::new("/p/bin/python3.12");
        memo.put(exe, &stamp(1), &answer("/p/bin/python3.12"));
        memo.save(dir.path());
        assert!(ProbeMemo::load(dir.path()).get(exe, &stamp(1)).is_some());
    }
}
