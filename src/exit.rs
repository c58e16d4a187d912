//! Exit codes. 0: no error-severity cache; 1: at least one (or, with `--strict`, a warning;
//! or an entry that could not be judged); 2: bad usage or an unreadable root path; 130 and
//! 143: stopped by SIGINT or SIGTERM (128 + the signal, as a shell reports it).

/// The process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Problems = 1,
    Usage = 2,
    /// Ctrl-C (128 + SIGINT).
    Interrupted = 130,
    /// SIGTERM (128 + 15).
    Terminated = 143,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}
