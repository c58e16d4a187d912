//! The exit status, decided in one place for every command.
//!
//! Each command counts what went wrong on its way in a [`Tally`] (problems found or left,
//! failed actions, entries that could not be read, warnings) and [`Policy::status`] turns
//! the tally into the status, as ripgrep does: no command picks a number itself.
//!
//! | status | when |
//! |---|---|
//! | 0 | nothing counted (or `--exit-zero`) |
//! | 1 | an error-severity cache (check, inspect), a failed repair, removal or compile, or an entry that could not be read; with `--strict` a warning too |
//! | 2 | bad usage: a flag, a PATH, a config file or a `--python` that cannot be used |
//! | 126, 127 | `run`: the command cannot be executed, or is not found (as a shell says) |
//! | 130, 143 | stopped by SIGINT / SIGTERM (128 + the signal, as a shell reports it) |
//!
//! Fatal errors (2, 130, 143) never reach a tally: they end the command as a
//! [`crate::commands::CommandError`].

/// The process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    Problems = 1,
    Usage = 2,
    /// `run`: the command cannot be executed (as a shell reports it).
    CannotExecute = 126,
    /// `run`: the command is not found.
    NotFound = 127,
    /// Ctrl-C (128 + SIGINT).
    Interrupted = 130,
    /// SIGTERM (128 + 15).
    Terminated = 143,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status as u8)
    }
}

/// What a command counted that decides its exit status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Error-severity findings, and actions that failed.
    pub problems: usize,
    /// Warning-severity findings (they fail the run only with `--strict`).
    pub warnings: usize,
    /// Entries that could not be read or judged; the run went on without them.
    pub unreadable: usize,
}

/// How a tally becomes a status (`check --strict`, `--exit-zero`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Warnings fail the run too.
    pub strict: bool,
    /// Exit 0 whatever was found (a wrong command line still exits 2).
    pub exit_zero: bool,
}

impl Policy {
    /// The exit status of a command that ran to its end.
    pub fn status(self, tally: &Tally) -> ExitStatus {
        let failing =
            tally.problems > 0 || tally.unreadable > 0 || (self.strict && tally.warnings > 0);
        if failing && !self.exit_zero {
            ExitStatus::Problems
        } else {
            ExitStatus::Success
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_policy_for_every_command() {
        let clean = Tally::default();
        let warned = Tally {
            warnings: 3,
            ..Tally::default()
        };
        let failed = Tally {
            problems: 1,
            ..Tally::default()
        };
        let unreadable = Tally {
            unreadable: 1,
            ..Tally::default()
        };
        let plain = Policy::default();
        let strict = Policy {
            strict: true,
            ..Policy::default()
        };
        let zero = Policy {
            exit_zero: true,
            ..Policy::default()
        };
        assert_eq!(plain.status(&clean), ExitStatus::Success);
        assert_eq!(plain.status(&warned), ExitStatus::Success);
        assert_eq!(strict.status(&warned), ExitStatus::Problems);
        assert_eq!(plain.status(&failed), ExitStatus::Problems);
        assert_eq!(plain.status(&unreadable), ExitStatus::Problems);
        assert_eq!(zero.status(&failed), ExitStatus::Success);
    }
}
