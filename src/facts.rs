//! Gathering facts about one found cache: its bytes and mtime, its source's stat, and —
//! only for hash-based caches — the source's SipHash. This is the only place `check`
//! touches the file system after the walk, and it only reads: files are opened read-only
//! through [`crate::read`] (never blocking, only regular files, at most 64 MiB), nothing
//! is written, no atime-relevant flag is changed. A symlinked cache is read through, as the
//! importer reads it, and never remembered by identity; a FIFO, device, socket or
//! directory found where a cache goes is never opened: it is judged by its kind.
//!
//! Each cache costs one open + fstat + read of the cache and one stat of its source; the
//! legacy "does this directory still hold sources?" question is answered once per directory.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::layout::CacheName;
use crate::pyc::header::{self, Invalidation, SourceStat};
use crate::pyc::source_hash;
use crate::read::{self, FileKind, Follow, ReadError, MAX_FILE_BYTES};
use crate::stat::FileStat;
use crate::store::scan_memo::Memo;
use crate::store::FileIdentity;
use crate::verdict::{BodyFacts, NotAFile, SourceFacts};
use crate::walk::{Candidate, DirContext, FoundAs};

/// Why a cache could not be judged (vanished, unreadable…): reported on its entry.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot read cache: {0}")]
    ReadCache(#[source] ReadError),
    #[error("cache vanished during the scan")]
    CacheVanished,
    #[error("cannot stat source {}: {}", crate::escape::path(.path), read::io_message(.err))]
    StatSource {
        path: PathBuf,
        #[source]
        err: io::Error,
    },
    #[error("cannot read source {} to check its hash: {err}", crate::escape::path(.path))]
    ReadSource {
        path: PathBuf,
        #[source]
        err: ReadError,
    },
}

/// The owned facts of one cache (its bytes, or just its header when the memo vouches for
/// the rest, live in the caller's reusable buffer).
#[derive(Clone, Debug)]
pub struct Gathered {
    /// The cache's identity, when it is a regular file not reached through a link.
    pub cache_identity: Option<FileIdentity>,
    /// The source's identity, when it is a regular file.
    pub source_identity: Option<FileIdentity>,
    pub cache_mtime_ns: i128,
    pub cache_ctime_ns: i128,
    pub source: SourceFacts,
    pub body: BodyFacts,
    /// Set when the cache path holds no regular file (then `buf` is empty).
    pub not_a_file: Option<NotAFile>,
}

/// Remembers, per directory, whether it holds any `.py` source (ghost vs sourceless).
#[derive(Debug, Default)]
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

pub fn source_stat(st: &FileStat) -> SourceStat {
    SourceStat {
        mtime_secs: st.mtime_secs,
        mtime_nsec: st.mtime_nsec,
        size: st.size,
    }
}

/// Read the cache into `buf` and learn about its source. A cache the memo knows (same
/// identity as when its body was last found well-formed) costs one `stat`. Stats go
/// through `dir`, the directory the walk found the cache in (one name to look up instead
/// of the whole path), or take the whole path with [`DirContext::NONE`].
pub fn gather(
    candidate: &Candidate,
    dir: DirContext<'_>,
    buf: &mut Vec<u8>,
    dirs: &DirSources,
    memo: &Memo,
) -> Result<Gathered, FactsError> {
    buf.clear();
    let link = candidate.found_as == FoundAs::Symlink;
    let (cache_identity, cache_mtime_ns, cache_ctime_ns, body, not_a_file) =
        match candidate.found_as {
            // Never opened: opening a device can have effects of its own.
            FoundAs::Special(kind) => (
                None,
                0,
                0,
                BodyFacts::Unchecked,
                Some(NotAFile {
                    kind,
                    via_symlink: false,
                }),
            ),
            _ => {
                // A link is never looked up or remembered by identity: its own identity does
                // not change when its target does.
                let remembered = if memo.is_enabled() && !link {
                    let st = dir.stat(&candidate.path, false).map_err(cache_error)?;
                    // Anything but a regular file now is found out by the read below.
                    st.is_file
                        .then(|| memo.lookup(&FileIdentity::of(&st)))
                        .flatten()
                        .map(|record| {
                            buf.extend_from_slice(record.header());
                            let identity = Some(FileIdentity::of(&st));
                            (
                                identity,
                                st.mtime_ns(),
                                st.ctime_ns(),
                                BodyFacts::Valid,
                                None,
                            )
                        })
                } else {
                    None
                };
                match remembered {
                    Some(known) => known,
                    None => read_cache(&candidate.path, buf, memo, link)?,
                }
            }
        };
    let Some(source_path) = &candidate.source else {
        return Ok(Gathered {
            cache_identity,
            source_identity: None,
            cache_mtime_ns,
            cache_ctime_ns,
            source: SourceFacts::NotApplicable,
            body,
            not_a_file,
        });
    };
    let mut source_identity = None;
    let source = match dir.stat(source_path, true) {
        Ok(st) if st.is_file => {
            source_identity = Some(FileIdentity::of(&st));
            let hash = match header::parse(buf) {
                Ok(h) if matches!(h.invalidation, Invalidation::Hash { .. }) => {
                    let bytes = read::read(source_path, Follow::Yes, "the source", MAX_FILE_BYTES)
                        .map_err(|err| FactsError::ReadSource {
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
        cache_identity,
        source_identity,
        cache_mtime_ns,
        cache_ctime_ns,
        source,
        body,
        not_a_file,
    })
}

/// What reading a cache gave: its identity (not through a link), mtime and ctime in
/// nanoseconds, body, and what it is when not a regular file.
type CacheRead = (
    Option<FileIdentity>,
    i128,
    i128,
    BodyFacts,
    Option<NotAFile>,
);

fn cache_error(e: io::Error) -> FactsError {
    match e.kind() {
        io::ErrorKind::NotFound => FactsError::CacheVanished,
        _ => FactsError::ReadCache(ReadError::Io(e)),
    }
}

/// Read a whole cache file (through a symlink, as the importer does: without blocking,
/// and only a regular file of at most [`MAX_FILE_BYTES`]) and walk its body; a
/// well-formed one is remembered unless it was reached through a link.
fn read_cache(
    path: &Path,
    buf: &mut Vec<u8>,
    memo: &Memo,
    link: bool,
) -> Result<CacheRead, FactsError> {
    let st = match read::read_into(path, Follow::Yes, "the cache", MAX_FILE_BYTES, buf) {
        Ok(st) => st,
        Err(e) => {
            let not_a_file = match e.not_regular() {
                Some(kind) => Some(kind),
                None if link && e.is_dangling() => Some(FileKind::Symlink),
                None => None,
            };
            return match not_a_file {
                Some(kind) => Ok((
                    None,
                    0,
                    0,
                    BodyFacts::Unchecked,
                    Some(NotAFile {
                        kind,
                        via_symlink: link,
                    }),
                )),
                None if e.is_not_found() => Err(FactsError::CacheVanished),
                None => Err(FactsError::ReadCache(e)),
            };
        }
    };
    let body = BodyFacts::of(buf);
    let identity = (!link).then(|| FileIdentity::of(&st));
    if let (BodyFacts::Valid, Some(identity)) = (&body, identity) {
        memo.remember(identity, buf);
    }
    Ok((identity, st.mtime_ns(), st.ctime_ns(), body, None))
}

/// The facts of a source that is not there: for a legacy cache, whether its directory still
/// holds sources (ghost) or none (a sourceless distribution).
pub fn missing(candidate: &Candidate, source_path: &Path, dirs: &DirSources) -> SourceFacts {
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
