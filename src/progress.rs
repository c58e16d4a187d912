//! The progress bar of every long command (`compile`, `fix`, `clean`, `--deep`): one look,
//! drawn on stderr only when it is a terminal and the verbosity is normal or more (never
//! with `-q`/`-qq`, never into a pipe or a log), and cleared — not left behind — when the
//! work ends, fails or is stopped by Ctrl-C (the [`Progress`] is dropped as the command
//! unwinds, before `pycguard: interrupted` is printed).
//!
//! - [`Progress::bar`]: work of known size: `⠙ compiling [=====>    ] 120/400 (about 8s left)`
//!   (`estimating time left` until the first step is done); the length may grow as work
//!   is found ([`add_work`]: a bar of no work yet is not drawn).
//! - [`Progress::counter`]: work of unknown size (a walk that acts as it goes):
//!   `⠙ removing caches: 120 (3s)`.
//!
//! The pipelines (`prove`, `actions`) are handed the [`ProgressBar`] itself
//! ([`Progress::handle`], a cheap clone; [`ProgressBar::hidden`] when there is none) and
//! only `inc` it; this module is the only one that decides whether and how it is drawn.
//! A new command creates one here, with its own label.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How often the spinner moves (and the estimate is redrawn).
const TICK: Duration = Duration::from_millis(120);

/// A progress bar on stderr, cleared when dropped.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `len` steps (more may be added) labelled `label` ("compiling").
    pub fn bar(enabled: bool, label: &str, len: u64) -> Progress {
        Progress::styled(
            enabled,
            Some(len),
            &format!("{{spinner}} {label} [{{bar:30}}] {{pos}}/{{len}} {{msg}}({{time_left}})"),
        )
    }

    /// A counter of work of unknown size, labelled `label` ("removing caches").
    pub fn counter(enabled: bool, label: &str) -> Progress {
        Progress::styled(
            enabled,
            None,
            &format!("{{spinner}} {label}: {{pos}} {{msg}}({{elapsed}})"),
        )
    }

    /// A bar that is never drawn.
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    fn styled(enabled: bool, len: Option<u64>, template: &str) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("time_left", time_left)
                .progress_chars("=> "),
        );
        if len != Some(0) {
            bar.enable_steady_tick(TICK);
        }
        Progress { bar }
    }

    /// The bar itself, for a pipeline to `inc` (a clone of the same bar).
    pub fn handle(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// What is being done now, shown before the estimate ("hashing", "compiling").
    pub fn set_message(&self, message: &'static str) {
        self.bar.set_message(format!("{message} "));
    }

    /// Clear the bar now (also done when dropped).
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// The time estimate's label: `about 8s left`, or `estimating time left` before the first
/// step is done (an estimate from nothing would say `0s`).
fn time_left(state: &ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = match state.eta() {
        _ if state.pos() == 0 => write!(out, "estimating time left"),
        eta if eta < Duration::from_secs(1) => write!(out, "under a second left"),
        eta => write!(out, "about {:#} left", HumanDuration(eta)),
    };
}

/// `n` more steps for `bar` (a pipeline that finds its work as it goes); a bar that had
/// none starts moving now.
pub fn add_work(bar: &ProgressBar, n: u64) {
    if n == 0 || bar.is_hidden() {
        return;
    }
    let had_none = bar.length() == Some(0);
    bar.inc_length(n);
    if had_none {
        bar.enable_steady_tick(TICK);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Cleared on every way out: done, an error, or Ctrl-C unwinding the command.
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_bars_are_hidden() {
        assert!(Progress::bar(false, "compiling", 10).handle().is_hidden());
        assert!(Progress::counter(false, "removing caches")
            .handle()
            .is_hidden());
    }
}
