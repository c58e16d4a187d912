//! `pycguard inspect`: everything known about one cache file — magic and series, flags and
//! invalidation mode, header mtime/size/hash, where its source is, the verdict, and from the
//! body the `co_filename` recorded at compile time and the names the module binds. Answers
//! "which code is this, really?" without importing anything. What is learned is printed by
//! [`crate::output::inspect`].

use std::path::{Path, PathBuf};

use crate::facts::DirSources;
use crate::pyc::header::{self, Header};
use crate::pyc::marshal::{self, CodeSummary};
use crate::read;
use crate::report::Entry;
use crate::scan;
use crate::store::scan_memo::Memo;
use crate::walk;

/// What `inspect` learned about one file.
pub struct Inspection {
    pub path: PathBuf,
    pub size: Option<u64>,
    pub header: Result<Header, header::HeaderError>,
    /// The judged entry, when the file is named like a cache and could be read.
    pub entry: Option<Entry>,
    pub not_a_cache_name: bool,
    pub read_error: Option<String>,
    pub source_exists: bool,
    pub code: Option<Result<CodeSummary, marshal::MarshalError>>,
}

/// Inspect one file. I/O errors are kept in the result, never raised.
pub fn inspect(path: &Path, absolute: &Path, prefix: Option<&Path>) -> Inspection {
    let candidate = walk::candidate_for_file(path, absolute, prefix);
    // A FIFO or device is never opened (opening a device can do things); anything else
    // is read without blocking, through a link, and at most MAX_FILE_BYTES of it.
    let bytes = match candidate.as_ref().map(|c| c.found_as) {
        Some(walk::FoundAs::Special(kind)) => Err(read::ReadError::NotRegular {
            kind,
            what: "the file",
        }),
        _ => read::read(path, read::Follow::Yes, "the file", read::MAX_FILE_BYTES),
    };
    let (bytes, read_error, not_a_file) = match bytes {
        Ok(b) => (b, None, false),
        Err(e) => {
            let not_a_file = e.not_regular().is_some() || e.is_dangling();
            (Vec::new(), Some(e.to_string()), not_a_file)
        }
    };
    let header = header::parse(&bytes);
    let not_a_cache_name = candidate.is_none();
    let mut entry = None;
    let mut source_exists = false;
    // What is not a file still gets its verdict: what the importer does with it.
    if let (Some(candidate), true) = (candidate, read_error.is_none() || not_a_file) {
        source_exists = candidate.source.as_deref().is_some_and(Path::is_file);
        match scan::judge_candidate(
            candidate,
            walk::DirContext::NONE,
            &DirSources::default(),
            &Memo::disabled(),
        ) {
            Ok(e) => entry = Some(e),
            Err(e) => return failed(path, e.message, header),
        }
    }
    let code = header.as_ref().ok().and_then(|h| {
        let dialect = marshal::Dialect::cpython(h.magic.value)?;
        Some(marshal::summarize(&bytes[h.byte_len()..], dialect))
    });
    Inspection {
        path: path.to_path_buf(),
        size: read_error.is_none().then_some(bytes.len() as u64),
        header,
        entry,
        not_a_cache_name,
        read_error,
        source_exists,
        code,
    }
}

fn failed(path: &Path, message: String, header: Result<Header, header::HeaderError>) -> Inspection {
    Inspection {
        path: path.to_path_buf(),
        size: None,
        header,
        entry: None,
        not_a_cache_name: false,
        read_error: Some(message),
        source_exists: false,
        code: None,
    }
}
