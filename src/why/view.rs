//! The file system as the import model sees it: what kind of thing a path is (after
//! symlinks, as `os.path.isdir`/`isfile` see it), a directory's names, a small file's
//! bytes. The model ([`super::syspath`], [`super::importer`]) is written against
//! [`FileView`] and so stays free of I/O (its tests give it an in-memory tree);
//! [`RealFiles`] is the edge.

use std::ffi::OsString;
use std::path::Path;

/// What `stat` says a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A FIFO, socket or device: never opened.
    Other,
}

/// Read-only access to files.
pub trait FileView {
    /// The kind of `path`, symlinks followed; `None` when it does not exist (or cannot be
    /// reached).
    fn kind(&self, path: &Path) -> Option<Kind>;
    /// The names in a directory (unsorted); empty when it cannot be read.
    fn list(&self, dir: &Path) -> Vec<OsString>;
    /// The bytes of a small regular file (`.pth`, `pyvenv.cfg`, a finder module, a
    /// package's `__init__.py`); `None` when it is not one or cannot be read.
    fn read(&self, path: &Path) -> Option<Vec<u8>>;

    fn is_dir(&self, path: &Path) -> bool {
        self.kind(path) == Some(Kind::Dir)
    }

    fn is_file(&self, path: &Path) -> bool {
        self.kind(path) == Some(Kind::File)
    }

    fn exists(&self, path: &Path) -> bool {
        self.kind(path).is_some()
    }
}

/// The most of one file the model reads.
const READ_LIMIT: u64 = 4 << 20;

/// The real file system. Reads never block (FIFOs and devices are not opened) and are
/// bounded; nothing is written.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFiles;

impl FileView for RealFiles {
    fn kind(&self, path: &Path) -> Option<Kind> {
        let meta = std::fs::metadata(path).ok()?;
        Some(if meta.is_dir() {
            Kind::Dir
        } else if meta.is_file() {
            Kind::File
        } else {
            Kind::Other
        })
    }

    fn list(&self, dir: &Path) -> Vec<OsString> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        if !self.is_file(path) {
            return None;
        }
        crate::read::read(path, crate::read::Follow::Yes, "the file", READ_LIMIT).ok()
    }
}

/// An in-memory tree for the model's tests.
#[cfg(test)]
#[derive(Clone, Debug, Default)]
pub struct MemFiles {
    files: std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
    dirs: std::collections::BTreeSet<std::path::PathBuf>,
}

#[cfg(test)]
impl MemFiles {
    pub fn new() -> MemFiles {
        MemFiles::default()
    }

    /// Add a file (and its directories).
    pub fn file(mut self, path: &str, content: &str) -> MemFiles {
        let path = std::path::PathBuf::from(path);
        self.add_dirs(path.parent());
        self.files.insert(path, content.as_bytes().to_vec());
        self
    }

    /// Add a directory (and its parents).
    pub fn dir(mut self, path: &str) -> MemFiles {
        self.add_dirs(Some(Path::new(path)));
        self
    }

    fn add_dirs(&mut self, mut dir: Option<&Path>) {
        while let Some(d) = dir {
            self.dirs.insert(d.to_path_buf());
            dir = d.parent();
        }
    }
}

#[cfg(test)]
impl FileView for MemFiles {
    fn kind(&self, path: &Path) -> Option<Kind> {
        if self.files.contains_key(path) {
            Some(Kind::File)
        } else if self.dirs.contains(path) {
            Some(Kind::Dir)
        } else {
            None
        }
    }

    fn list(&self, dir: &Path) -> Vec<OsString> {
        let files = self.files.keys();
        let dirs = self.dirs.iter();
        files
            .chain(dirs)
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect()
    }

    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        self.files.get(path).cloned()
    }
}
