//! What identifies a file's content without reading it, and the one rule that decides
//! whether a file may be remembered by that identity at all.
//!
//! A [`FileIdentity`] is the device, inode, size, mtime and ctime (to the nanosecond) of a
//! file. The ctime cannot be set from user space and changes on every write, so a file
//! whose identity is unchanged has unchanged bytes — with one exception, which the
//! racily-clean rule closes: timestamps have a granularity (a kernel tick, a second on
//! some file systems), so a write that lands in the same tick as our read leaves the
//! identity as it was. Like git's index, a file whose mtime or ctime is not more than
//! [`RACY_WINDOW_NS`] before the run's start ([`RunStart`]) is therefore never
//! remembered; any later write then gets a ctime after the one remembered. A timestamp
//! too large or too small to be counted in nanoseconds (which would make two different
//! times equal) is not remembered either.
//!
//! The scan memo, the proof store and the probe answers all remember by this identity
//! and decide with this rule; nothing else in pycguard does.

use std::fs::Metadata;

use serde::{Deserialize, Serialize};

use crate::stat::FileStat;

/// Files changed within this many nanoseconds before the run's start are not remembered.
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// What identifies a file's content without reading it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Nanoseconds since the epoch (saturated at the bounds of `i64`).
    pub mtime_ns: i64,
    /// Nanoseconds since the epoch (saturated at the bounds of `i64`).
    pub ctime_ns: i64,
}

/// Seconds and nanoseconds as nanoseconds, saturated at the bounds of `i64` (about the
/// years 1677 and 2262).
fn nanos(secs: i64, nsec: u32) -> i64 {
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(i64::from(nsec)))
        .unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
}

impl FileIdentity {
    pub fn of(st: &FileStat) -> FileIdentity {
        FileIdentity {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime_ns: nanos(st.mtime_secs, st.mtime_nsec),
            ctime_ns: nanos(st.ctime_secs, st.ctime_nsec),
        }
    }

    pub fn of_metadata(meta: &Metadata) -> FileIdentity {
        FileIdentity::of(&FileStat::from(meta))
    }

    /// Does a timestamp sit at a bound of `i64`, where different times become equal?
    fn saturated(&self) -> bool {
        [self.mtime_ns, self.ctime_ns]
            .iter()
            .any(|&t| t == i64::MAX || t == i64::MIN)
    }
}

/// The instant a run started: what "changed too recently to be remembered" is measured
/// against (taken once, when a store is opened, before any file it may learn is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunStart {
    ns: i64,
}

impl RunStart {
    /// Now.
    pub fn now() -> RunStart {
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        RunStart { ns }
    }

    /// A given instant, in nanoseconds since the epoch.
    pub fn at_ns(ns: i64) -> RunStart {
        RunStart { ns }
    }

    /// Minutes since the epoch (what table slots are stamped with, for eviction by age).
    pub fn minutes(&self) -> u32 {
        u32::try_from(self.ns.max(0) / 60_000_000_000).unwrap_or(u32::MAX)
    }

    /// The racily-clean rule: may a file with this identity be remembered? Only when
    /// both its mtime and its ctime lie more than [`RACY_WINDOW_NS`] before the run's
    /// start (a file changed later, or with a time in the future, is not), and neither
    /// is saturated.
    pub fn may_remember(&self, identity: &FileIdentity) -> bool {
        let newest = identity.mtime_ns.max(identity.ctime_ns);
        !identity.saturated() && newest < self.ns.saturating_sub(RACY_WINDOW_NS)
    }
}

impl Default for RunStart {
    /// Now (a store made without loading one starts its run when it is made).
    fn default() -> RunStart {
        RunStart::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed_at(mtime_ns: i64, ctime_ns: i64) -> FileIdentity {
        FileIdentity {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns,
            ctime_ns,
        }
    }

    #[test]
    fn only_files_changed_more_than_the_window_before_the_run_are_remembered() {
        let start = 100 * RACY_WINDOW_NS;
        let run = RunStart::at_ns(start);
        let edge = start - RACY_WINDOW_NS;
        assert!(run.may_remember(&changed_at(edge - 1, edge - 1)));
        // Exactly the window before the start: still racy (the stricter of the two rules
        // pycguard had: `<`, not `<=`).
        assert!(!run.may_remember(&changed_at(edge, edge - 1)));
        assert!(!run.may_remember(&changed_at(edge - 1, edge)));
        // Either time decides: an old mtime with a recent ctime (a `touch -d` after a
        // write) is racy, and so is the reverse.
        assert!(!run.may_remember(&changed_at(0, start - 1)));
        assert!(!run.may_remember(&changed_at(start - 1, 0)));
        // A time in the future.
        assert!(!run.may_remember(&changed_at(0, start + RACY_WINDOW_NS)));
    }

    #[test]
    fn saturated_times_are_never_remembered() {
        let run = RunStart::at_ns(100 * RACY_WINDOW_NS);
        assert!(!run.may_remember(&changed_at(i64::MIN, 0)));
        assert!(!run.may_remember(&changed_at(0, i64::MIN)));
        let far_past = FileStat {
            dev: 1,
            ino: 2,
            size: 3,
            is_file: true,
            mtime_secs: -(1 << 40),
            mtime_nsec: 5,
            ctime_secs: 1,
            ctime_nsec: 0,
        };
        let id = FileIdentity::of(&far_past);
        assert_eq!(id.mtime_ns, i64::MIN);
        assert!(!run.may_remember(&id));
        let far_future = FileStat {
            mtime_secs: 1 << 40,
            ..far_past
        };
        assert_eq!(FileIdentity::of(&far_future).mtime_ns, i64::MAX);
    }

    #[test]
    fn identity_of_a_file_is_exact_and_changes_with_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let id = FileIdentity::of_metadata(&meta);
        use std::os::unix::fs::MetadataExt;
        assert_eq!((id.dev, id.ino, id.size), (meta.dev(), meta.ino(), 1));
        assert_eq!(
            i128::from(id.ctime_ns),
            i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec())
        );
        assert_eq!(id, FileIdentity::of(&FileStat::from(&meta)));
        // Just written: racy now, rememberable once the window has passed.
        assert!(!RunStart::now().may_remember(&id));
        assert!(
            RunStart::at_ns(id.ctime_ns.max(id.mtime_ns) + RACY_WINDOW_NS + 1).may_remember(&id)
        );
    }
}
