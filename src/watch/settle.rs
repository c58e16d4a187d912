//! The settle window of `pycguard watch`: a changed path is looked at once its writes
//! have settled, not at the first event.
//!
//! Saving a file is rarely one write: editors write a temporary file and rename it over
//! the old one, formatters rewrite a file and sometimes roll it back, `git checkout`
//! replaces hundreds of files in a burst. Judging a source between those writes would
//! judge a file that is about to change again (and a half-written one may not even
//! compile). So every event only marks its path as touched ([`Pending::touch`]); a path
//! becomes due once [`SETTLE`] has passed without another event for it, or once it has
//! been waiting [`MAX_WAIT`] in all (a file rewritten without pause is still looked at
//! every `MAX_WAIT`, so a loop that never stops cannot starve it). Each path is settled on
//! its own: a busy log file in the tree does not hold back an edited module.
//!
//! Pure: the caller passes the clock in, so the rules are tested without sleeping.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a path must go without events before it is looked at.
pub const SETTLE: Duration = Duration::from_millis(50);

/// The longest a path that keeps changing waits before it is looked at anyway.
pub const MAX_WAIT: Duration = Duration::from_millis(3000);

/// What the events for one path said, merged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touch {
    /// The path was created or moved into place (a new directory is scanned whole: files
    /// written into it before its watch was installed sent no event of their own).
    pub appeared: bool,
}

#[derive(Clone, Copy, Debug)]
struct Waiting {
    first: Instant,
    last: Instant,
    touch: Touch,
}

/// The paths touched and not yet looked at.
#[derive(Debug, Default)]
pub struct Pending {
    paths: HashMap<PathBuf, Waiting>,
}

impl Pending {
    /// Note an event for `path` at `now`.
    pub fn touch(&mut self, path: PathBuf, touch: Touch, now: Instant) {
        let waiting = self.paths.entry(path).or_insert(Waiting {
            first: now,
            last: now,
            touch: Touch::default(),
        });
        waiting.last = now;
        waiting.touch.appeared |= touch.appeared;
    }

    /// Is anything waiting?
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Take the paths that are due at `now` (settled, or waiting too long), sorted.
    pub fn take_due(&mut self, now: Instant) -> Vec<(PathBuf, Touch)> {
        let due: Vec<PathBuf> = self
            .paths
            .iter()
            .filter(|(_, w)| is_due(w, now))
            .map(|(p, _)| p.clone())
            .collect();
        let mut taken: Vec<(PathBuf, Touch)> = due
            .into_iter()
            .filter_map(|p| self.paths.remove(&p).map(|w| (p, w.touch)))
            .collect();
        taken.sort_by(|a, b| a.0.cmp(&b.0));
        taken
    }

    /// How long until the next path is due (`None`: nothing is waiting).
    pub fn next_due(&self, now: Instant) -> Option<Duration> {
        self.paths
            .values()
            .map(|w| due_at(w).saturating_duration_since(now))
            .min()
    }
}

fn due_at(w: &Waiting) -> Instant {
    (w.last + SETTLE).min(w.first + MAX_WAIT)
}

fn is_due(w: &Waiting, now: Instant) -> bool {
    due_at(w) <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_due_once_its_events_stop() {
        let t0 = Instant::now();
        let half = SETTLE / 2;
        let mut pending = Pending::default();
        pending.touch("a.py".into(), Touch::default(), t0);
        pending.touch("a.py".into(), Touch::default(), t0 + half);
        assert!(
            pending.take_due(t0 + SETTLE).is_empty(),
            "written again half the window later"
        );
        assert_eq!(pending.next_due(t0 + SETTLE), Some(half));
        let due = pending.take_due(t0 + half + SETTLE);
        assert_eq!(due, vec![("a.py".into(), Touch::default())]);
        assert!(pending.is_empty());
        assert_eq!(pending.next_due(t0), None);
    }

    #[test]
    fn a_path_written_without_pause_is_looked_at_every_max_wait() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        let mut now = t0;
        while now < t0 + MAX_WAIT {
            pending.touch("busy.py".into(), Touch::default(), now);
            assert!(pending.take_due(now).is_empty());
            now += SETTLE / 2;
        }
        assert_eq!(pending.take_due(t0 + MAX_WAIT).len(), 1);
    }

    #[test]
    fn paths_settle_on_their_own_and_keep_appeared() {
        let t0 = Instant::now();
        let tick = SETTLE / 10;
        let mut pending = Pending::default();
        pending.touch("new".into(), Touch { appeared: true }, t0);
        pending.touch("new".into(), Touch::default(), t0 + tick);
        pending.touch("log.txt".into(), Touch::default(), t0 + tick);
        pending.touch("log.txt".into(), Touch::default(), t0 + 9 * tick);
        let due = pending.take_due(t0 + 11 * tick);
        assert_eq!(due, vec![("new".into(), Touch { appeared: true })]);
        assert_eq!(pending.take_due(t0 + 19 * tick).len(), 1);
    }
}
