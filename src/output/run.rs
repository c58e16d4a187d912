//! `pycguard run`'s printer: one line per problem on stderr, each starting `pycguard: `
//! (stdout belongs to the command it starts; journald and supervisor logs take stderr a
//! line at a time), and nothing at all when nothing is wrong.
//!
//! ```text
//! pycguard: recompiled PATH (hidden-stale; with Python 3.12.1)
//! pycguard: deleted PATH (ghost; its source is gone; the interpreter would import it)
//! pycguard: failed to repair PATH (hidden-stale): the source has a SyntaxError at line 3: …
//! pycguard: hidden-stale PATH: the cached code is not the source's: …     (--check)
//! pycguard: unreadable PATH: permission denied
//! pycguard: run: not checked: CMD is …; starting it unchecked
//! pycguard: run: the check did not finish within 30 s; starting CMD anyway
//! pycguard: run: 1 problem remains (--strict): not starting CMD
//! ```
//!
//! There is no JSON form: these lines are the log of a service's start.

use std::io::{self, Write};

use crate::actions::fix::{Action, Done};
use crate::escape;
use crate::interpreters::Interpreters;
use crate::messages;
use crate::report::{Entry, ScanError};

/// Everything `run` prints.
pub struct RunPrinter;

impl RunPrinter {
    /// A repair, or a repair that failed; caches left alone on purpose print nothing.
    pub fn repair<W: Write>(
        &self,
        out: &mut W,
        done: &Done,
        interpreters: &Interpreters,
    ) -> io::Result<()> {
        let path = escape::path(&done.path);
        match (&done.error, &done.action) {
            (Some(e), _) => writeln!(
                out,
                "pycguard: failed to repair {path} ({}): {}",
                done.state,
                escape::text(&e.to_string())
            ),
            (None, Action::Leave { why, failure: true }) => writeln!(
                out,
                "pycguard: failed to repair {path} ({}): {}",
                done.state,
                escape::text(why)
            ),
            (None, Action::Leave { .. }) => Ok(()),
            (None, Action::Recompile { interpreter, .. }) => writeln!(
                out,
                "pycguard: recompiled {path} ({}; with {})",
                done.state,
                escape::text(&interpreters.all()[*interpreter].display_name())
            ),
            (None, Action::Delete { why }) => writeln!(
                out,
                "pycguard: deleted {path} ({}; {})",
                done.state,
                escape::text(why)
            ),
        }
    }

    /// A cache `--check` found that the interpreter would run wrongly (or fail on).
    pub fn problem<W: Write>(&self, out: &mut W, entry: &Entry) -> io::Result<()> {
        let reason = messages::reason(&entry.verdict).unwrap_or_default();
        writeln!(
            out,
            "pycguard: {} {}: {}",
            entry.verdict.state,
            escape::path(&entry.path),
            escape::text(&reason)
        )
    }

    pub fn unreadable<W: Write>(&self, out: &mut W, error: &ScanError) -> io::Result<()> {
        writeln!(
            out,
            "pycguard: unreadable {}: {}",
            escape::path(&error.path),
            escape::text(&error.message)
        )
    }

    /// CMD is started without a check, and why.
    pub fn unchecked<W: Write>(&self, out: &mut W, why: &str) -> io::Result<()> {
        writeln!(
            out,
            "pycguard: run: not checked: {}; starting it unchecked",
            escape::text(why)
        )
    }

    /// The time budget ran out.
    pub fn out_of_time<W: Write>(&self, out: &mut W, secs: f64, strict: bool) -> io::Result<()> {
        if strict {
            writeln!(
                out,
                "pycguard: run: the check did not finish within {secs} s (--strict): not starting the command"
            )
        } else {
            writeln!(
                out,
                "pycguard: run: the check did not finish within {secs} s; starting the command anyway"
            )
        }
    }

    /// `--strict` and problems remain.
    pub fn blocked<W: Write>(&self, out: &mut W, problems: usize) -> io::Result<()> {
        writeln!(
            out,
            "pycguard: run: {problems} {} (--strict): not starting the command",
            if problems == 1 {
                "problem remains"
            } else {
                "problems remain"
            }
        )
    }
}
