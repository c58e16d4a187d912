//! The portable engine, for every Unix: directories listed with POSIX `readdir` (rustix
//! `Dir`, which is `fdopendir`/`readdir` through libc on macOS and the BSDs) on the
//! descriptor the walker opened. Slower than `getdents.rs` (a second descriptor per
//! directory and one allocation per entry) but it needs nothing Linux has alone.
//!
//! It lists the walker's descriptor rather than calling `std::fs::read_dir` on the path:
//! `read_dir` opens the path again, following a symlink, so a directory swapped for a link
//! between the walker's `O_NOFOLLOW` open and the listing would lead the walk out of the
//! tree. `Dir::read_from` reopens `.` of the open directory instead.

use std::ffi::CStr;
use std::ops::ControlFlow;
use std::os::fd::OwnedFd;

use rustix::fs::{Dir, FileType};
use rustix::io::Errno;

/// The portable lister (it keeps nothing between directories).
pub(super) struct Portable;

impl super::Lister for Portable {
    fn list<F>(&mut self, dir: &OwnedFd, mut each: F) -> Result<(), Errno>
    where
        F: FnMut(&CStr, FileType) -> ControlFlow<()>,
    {
        let mut entries = Dir::read_from(dir)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            if each(entry.file_name(), entry.file_type()).is_break() {
                break;
            }
        }
        Ok(())
    }
}
