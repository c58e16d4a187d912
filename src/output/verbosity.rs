//! How much a command prints — one meaning in every command, as in ruff and uv:
//!
//! | flags           | [`Verbosity`] | prints                                                   |
//! |-----------------|---------------|----------------------------------------------------------|
//! | `-qq`, `-s`/`--silent` | `Silent` | nothing (the exit status says it; a fatal usage error is still named on stderr) |
//! | `-q`            | `Quiet`       | the problems and nothing else: no summary, notes, hints or progress bar |
//! | (none)          | `Normal`      | the problems, what was done, the summary and its notes, a progress bar on a terminal |
//! | `-v`            | `Verbose`     | also the fresh caches and, one per line, what was skipped |
//!
//! "The problems" are what the exit status counts: the non-fresh caches of `check` and
//! `inspect`, the repairs/removals/compiles that failed, the entries that could not be
//! read, the interpreters refused or missing. A machine format (`--output-format json`,
//! …) writes its whole document unless `Silent`; `-q` only drops the notes that go to
//! stderr beside it.
//!
//! The flags are global ([`crate::cli::VerbosityArgs`]); `settings` resolves them into a
//! [`Verbosity`] in every command's configuration. A new command asks the predicates below
//! ([`Verbosity::problems`], [`Verbosity::normal`], [`Verbosity::verbose`]) and writes
//! through [`Verbosity::stdout`] so that `Silent` needs no special case.

use std::io::{self, Write};

/// How much to print (ordered: `Silent < Quiet < Normal < Verbose`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Silent,
    Quiet,
    #[default]
    Normal,
    Verbose,
}

impl Verbosity {
    /// From the flags: `-q` counted, `--silent`, `-v` counted (clap makes `-q` and `-v`
    /// exclusive).
    pub fn from_flags(quiet: u8, silent: bool, verbose: u8) -> Verbosity {
        match (quiet, silent, verbose) {
            (_, true, _) | (2.., _, _) => Verbosity::Silent,
            (1, _, _) => Verbosity::Quiet,
            (_, _, 1..) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }

    /// Print the problems (everything but `Silent`).
    pub fn problems(self) -> bool {
        self >= Verbosity::Quiet
    }

    /// Print summaries, notes, what was done, and a progress bar (not with `-q`).
    pub fn normal(self) -> bool {
        self >= Verbosity::Normal
    }

    /// Also list fresh caches and what was skipped (`-v`).
    pub fn verbose(self) -> bool {
        self == Verbosity::Verbose
    }

    /// Where a command's result goes: stdout, or nowhere when `Silent`.
    pub fn stdout(self) -> Box<dyn Write> {
        if self == Verbosity::Silent {
            Box::new(io::sink())
        } else {
            Box::new(anstream::stdout().lock())
        }
    }

    /// Where a command's notes go: stderr, or nowhere when `Silent`.
    pub fn stderr(self) -> Box<dyn Write> {
        if self == Verbosity::Silent {
            Box::new(io::sink())
        } else {
            Box::new(anstream::stderr().lock())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_one_level() {
        assert_eq!(Verbosity::from_flags(0, false, 0), Verbosity::Normal);
        assert_eq!(Verbosity::from_flags(1, false, 0), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(2, false, 0), Verbosity::Silent);
        assert_eq!(Verbosity::from_flags(3, false, 0), Verbosity::Silent);
        assert_eq!(Verbosity::from_flags(0, true, 0), Verbosity::Silent);
        assert_eq!(Verbosity::from_flags(1, true, 0), Verbosity::Silent);
        assert_eq!(Verbosity::from_flags(0, false, 2), Verbosity::Verbose);
        assert!(!Verbosity::Silent.problems());
        assert!(Verbosity::Quiet.problems() && !Verbosity::Quiet.normal());
        assert!(Verbosity::Verbose.normal() && Verbosity::Verbose.verbose());
    }
}
