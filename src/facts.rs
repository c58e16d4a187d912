//! Gathering facts about one found cache: its bytes and mtime, its source's stat, and —
//! only for hash-based caches — the source's SipHash. This is the only place `check`
//! touches the file system after the walk, and it only reads: files are opened read-only,
//! nothing is written, no atime-relevant flag is changed.
//!
//! Each cache costs one open + fstat + read of the cache and one stat of its source; the
//! legacy "does this directory still hold sources?" question is answered once per directory.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::layout::CacheName;
use crate::memo::{Identity, Memo};
use crate::pyc::header::{self, Invalidation, SourceStat};
use crate::pyc::source_hash;
use crate::stat::FileStat;
use crate::verdict::{BodyFacts, SourceFacts};
use crate::walk::{self, Candidate};

/// Why a cache could not be judged (vanished, unreadable…): reported on its entry.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot read cache: {}", io_message(.0))]
    ReadCache(#[source] io::Error),
    #[error("cache vanished during the scan")]
    CacheVanished,
    #[error("cannot stat source {}: {}", .path.display(), io_message(.err))]
    StatSource {
        path: PathBuf,
        #[source]
        err: io::Error,
    },
    #[error("cannot read source {} to check its hash: {}", .path.display(), io_message(.err))]
    ReadSource {
        path: PathBuf,
        #[source]
        err: io::Error,
    },
}

/// An I/O error as one short phrase ("permission denied", "no such file or directory").
pub fn io_message(err: &io::Error) -> String {
    let text = err.to_string();
    // Drop Rust's " (os error N)" suffix and lowercase the first letter.
    let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// The owned facts of one cache (its bytes, or just its header when the memo vouches for
/// the rest, live in the caller's reusable buffer).
#[derive(Clone, Debug)]
pub struct Gathered {
    pub cache_mtime_ns: i128,
    pub cache_ctime_ns: i128,
    pub source: SourceFacts,
    pub body: BodyFacts,
}

/// Remembers, per directory, whether it holds any `.py` source (ghost vs sourceless).
#[derive(Default)]
pub struct DirSources {
    seen: Mutex<HashMap<PathBuf, bool>>,
}

impl DirSources {
    pub fn has_sources(&self, dir: &Path) -> bool {
        if let Some(&known) = self.seen.lock().expect("poisoned").get(dir) {
            return known;
        }
        let found = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().as_encoded_bytes().ends_with(b".py"))
            })
            .unwrap_or(false);
        self.seen
            .lock()
            .expect("poisoned")
            .insert(dir.to_path_buf(), found);
        found
    }
}

/// Read a file of `expected` bytes with one `read` in the common case: asking for one byte
/// more than fstat said lets a short read prove EOF without a second syscall. A file that
/// grew meanwhile is read to its end.
fn read_whole(file: &mut File, expected: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    let want = usize::try_from(expected)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    buf.resize(want, 0);
    let mut filled = 0;
    loop {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                let asked = buf.len() - filled;
                filled += n;
                if filled == buf.len() {
                    buf.truncate(filled);
                    file.read_to_end(buf)?;
                    return Ok(());
                }
                if n < asked && filled as u64 >= expected {
                    // A short read of a regular file at its fstat size is its end.
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(())
}

pub fn source_stat(st: &FileStat) -> SourceStat {
    SourceStat {
        mtime_secs: st.mtime_secs,
        mtime_nsec: st.mtime_nsec,
        size: st.size,
    }
}

/// `stat` (or `lstat`) of `path`: relative to the directory the walker is reading when
/// `path` lies in or beside it (one name to look up instead of the whole path).
fn stat(path: &Path, follow: bool) -> io::Result<FileStat> {
    match walk::stat_near(path, follow) {
        Some(result) => result,
        None if follow => fs::metadata(path).map(|m| FileStat::from(&m)),
        None => fs::symlink_metadata(path).map(|m| FileStat::from(&m)),
    }
}

/// Read the cache into `buf` and learn about its source. A cache the memo knows (same
/// identity as when its body was last found well-formed) costs one `stat`.
pub fn gather(
    candidate: &Candidate,
    buf: &mut Vec<u8>,
    dirs: &DirSources,
    memo: &Memo,
) -> Result<Gathered, FactsError> {
    buf.clear();
    let remembered = if memo.is_enabled() {
        let st = stat(&candidate.path, false).map_err(cache_error)?;
        if !st.is_file {
            return Err(FactsError::CacheVanished);
        }
        memo.lookup(&Identity::of(&st)).map(|record| {
            buf.extend_from_slice(record.header());
            (st.mtime_ns(), st.ctime_ns(), BodyFacts::Valid)
        })
    } else {
        None
    };
    let (cache_mtime_ns, cache_ctime_ns, body) = match remembered {
        Some(known) => known,
        None => read_cache(&candidate.path, buf, memo)?,
    };
    let Some(source_path) = &candidate.source else {
        return Ok(Gathered {
            cache_mtime_ns,
            cache_ctime_ns,
            source: SourceFacts::NotApplicable,
            body,
        });
    };
    let source = match stat(source_path, true) {
        Ok(st) if st.is_file => {
            let hash = match header::parse(buf) {
                Ok(h) if matches!(h.invalidation, Invalidation::Hash { .. }) => {
                    let bytes = fs::read(source_path).map_err(|err| FactsError::ReadSource {
                        path: source_path.clone(),
                        err,
                    })?;
                    source_hash::source_hash(&h.magic, &bytes)
                }
                _ => None,
            };
            SourceFacts::Present {
                stat: source_stat(&st),
                mtime_ns: st.mtime_ns(),
                ctime_ns: st.ctime_ns(),
                hash,
            }
        }
        Ok(_) => missing(candidate, source_path, dirs),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            missing(candidate, source_path, dirs)
        }
        Err(err) => {
            return Err(FactsError::StatSource {
                path: source_path.clone(),
                err,
            })
        }
    };
    Ok(Gathered {
        cache_mtime_ns,
        cache_ctime_ns,
        source,
        body,
    })
}

fn cache_error(e: io::Error) -> FactsError {
    match e.kind() {
        io::ErrorKind::NotFound => FactsError::CacheVanished,
        _ => FactsError::ReadCache(e),
    }
}

/// Read a whole cache file and walk its body; a well-formed one is remembered.
fn read_cache(
    path: &Path,
    buf: &mut Vec<u8>,
    memo: &Memo,
) -> Result<(i128, i128, BodyFacts), FactsError> {
    let mut file = File::open(path).map_err(cache_error)?;
    let st = FileStat::from(&file.metadata().map_err(FactsError::ReadCache)?);
    read_whole(&mut file, st.size, buf).map_err(FactsError::ReadCache)?;
    let body = BodyFacts::of(buf);
    if body == BodyFacts::Valid {
        memo.remember(Identity::of(&st), buf);
    }
    Ok((st.mtime_ns(), st.ctime_ns(), body))
}

fn missing(candidate: &Candidate, source_path: &Path, dirs: &DirSources) -> SourceFacts {
    let dir_has_sources = matches!(candidate.name, CacheName::Legacy { .. })
        && source_path.parent().is_some_and(|d| {
            dirs.has_sources(if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            })
        });
    SourceFacts::Missing { dir_has_sources }
}
