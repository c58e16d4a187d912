//! pycguard: find every Python bytecode cache, judge it exactly as the interpreter that
//! wrote it would — and catch what the interpreter misses.
//!
//! The layers, top to bottom (a module imports only from its own layer or below):
//!
//! - [`run`] → `cli` (clap only) → `settings` (defaults < config file < environment <
//!   command line, one immutable configuration per command; the only place that reads the
//!   environment) → `commands` (one file per subcommand: configuration → pipeline →
//!   outcome → printer → exit status, decided by `exit`) → `output` (one printer per
//!   command, human and JSON);
//! - the pipelines: `scan` (walk → facts → verdict → report: the one walk sink), `watch`
//!   (file-system events → settled paths → the PATHs of a small scan, for `pycguard
//!   watch`), `prove`
//!   (the deep stage), `actions` (fix, clean, compile, recompile, safe_fs, as_owner),
//!   [`worker`] (the pool of interpreter processes), [`interpreters`] (discovery, probe,
//!   trust, isolated children), [`why`] (the `sys.path` model and the importer's order,
//!   behind one isolated probe: which file `import MODULE` loads);
//! - below them: `facts`, `read`, `walk`, `report`, the on-disk caches of [`store`] (scan memo, proofs, probe answers), `signals`, `escape`;
//! - pure at the bottom: [`pyc`], [`layout`], [`verdict`], `stat`, `timefmt`.
//!
//! Only what the integration tests and the fuzz target use is public.

// No unsafe code but where a system call has no safe wrapper; each such block is
// allowed where it is and says why it is sound.
#![deny(unsafe_code)]

pub(crate) mod actions;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod doctor;
pub(crate) mod escape;
pub(crate) mod exit;
pub(crate) mod facts;
pub(crate) mod inspect;
pub mod interpreters;
pub(crate) mod launch;
pub mod layout;
pub(crate) mod messages;
pub(crate) mod output;
pub(crate) mod procs;
pub(crate) mod progress;
pub(crate) mod prove;
pub mod pyc;
pub(crate) mod read;
pub(crate) mod report;
pub(crate) mod scan;
pub(crate) mod settings;
pub(crate) mod signals;
pub(crate) mod stat;
pub mod store;
pub(crate) mod timefmt;
pub mod verdict;
pub(crate) mod walk;
pub(crate) mod watch;
pub mod why;
pub mod worker;

/// The whole program: parse the command line, run it, and give the exit status.
pub fn run() -> std::process::ExitCode {
    use clap::Parser;
    commands::run(cli::Cli::parse()).into()
}
