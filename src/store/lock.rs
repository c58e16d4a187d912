//! Advisory whole-file locks (`flock(2)`, through rustix: no `unsafe`) with a bounded
//! wait, for the stores that several runs may write at once.
//!
//! A store only saves work, so a run never waits long for another: [`exclusive`] polls a
//! non-blocking `flock` until it is granted, the wait runs out, or the caller says stop
//! (Ctrl-C). The lock belongs to the open file description, is released when the guard is
//! dropped, and at the latest when the process ends (the kernel drops it with the last
//! descriptor), so a killed run never leaves a store locked.

use std::fs::File;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

/// How often a waiting run tries again.
const POLL: Duration = Duration::from_millis(10);

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another run held the lock for more than {0:?}")]
    Busy(Duration),
    #[error("interrupted while waiting for the lock")]
    Interrupted,
    #[error("cannot lock: {0}")]
    Io(#[from] std::io::Error),
}

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
pub struct Exclusive<'a> {
    file: &'a File,
}

/// Lock `file` exclusively, waiting at most `wait` for another holder, and not at all
/// once `stop` returns true.
pub fn exclusive<'a>(
    file: &'a File,
    wait: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<Exclusive<'a>, LockError> {
    let deadline = Instant::now() + wait;
    loop {
        match flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Exclusive { file }),
            Err(Errno::INTR) => {}
            Err(Errno::WOULDBLOCK) => {
                if stop() {
                    return Err(LockError::Interrupted);
                }
                if Instant::now() >= deadline {
                    return Err(LockError::Busy(wait));
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(LockError::Io(e.into())),
        }
    }
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        // Closing the descriptor would release it too; unlocking now lets a waiting run
        // go on while this one still holds the file open.
        let _ = flock(self.file, FlockOperation::Unlock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn two_handles() -> (tempfile::TempDir, File, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let a = File::create(&path).unwrap();
        // A second open: a second open file description, as another run would have.
        let b = File::options().write(true).open(&path).unwrap();
        (dir, a, b)
    }

    #[test]
    fn a_held_lock_makes_others_wait_a_bounded_time() {
        let (_dir, a, b) = two_handles();
        let held = exclusive(&a, Duration::ZERO, &|| false).unwrap();
        let started = Instant::now();
        let err = exclusive(&b, Duration::from_millis(150), &|| false).unwrap_err();
        assert!(matches!(err, LockError::Busy(_)), "{err}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        drop(held);
        exclusive(&b, Duration::ZERO, &|| false).expect("released on drop");
    }

    #[test]
    fn stop_ends_the_wait_at_once() {
        let (_dir, a, b) = two_handles();
        let _held = exclusive(&a, Duration::ZERO, &|| false).unwrap();
        let asked = Cell::new(0);
        let started = Instant::now();
        let err = exclusive(&b, Duration::from_secs(30), &|| {
            asked.set(asked.get() + 1);
            asked.get() > 2
        })
        .unwrap_err();
        assert!(matches!(err, LockError::Interrupted), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_lock_is_released_when_the_holder_goes_away() {
        let (_dir, a, b) = two_handles();
        let held = exclusive(&a, Duration::ZERO, &|| false).unwrap();
        std::mem::forget(held);
        // Not unlocked by a guard: closing the last descriptor releases it.
        drop(a);
        exclusive(&b, Duration::ZERO, &|| false).expect("released with the descriptor");
    }
}
