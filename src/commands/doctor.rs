//! `pycguard doctor`: scan and prove the caches under PATHS, find the interpreters, the
//! sources and the processes, and turn what they show into findings
//! ([`crate::doctor`]), printed with evidence and remedy ([`crate::output::doctor`]).
//!
//! Exit status by severity: 1 when a finding is an error (with `--strict`: a warning
//! too, and an entry that could not be read), else 0; 2 on bad usage.

use crate::actions::compile::find_sources;
use crate::commands::{discover, stop_if_interrupted, CommandError, CommandResult, Finished};
use crate::doctor::{self, Finding, Severity, User};
use crate::exit::Tally;
use crate::output::doctor::{print, DoctorOutput};
use crate::procs::{self, running};
use crate::prove;
use crate::scan::{self, Keep};
use crate::settings::DoctorConfig;

/// Why `doctor` could not finish.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    Access(#[from] doctor::access::AccessError),
}

/// Run `doctor`.
pub fn run(
    config: &DoctorConfig,
    format: crate::output::Format,
    verbosity: crate::output::verbosity::Verbosity,
) -> CommandResult {
    let mut report = scan::run(&config.scan, Keep::All);
    stop_if_interrupted()?;
    let interpreters = discover(&config.discovery)?;
    let recall = prove::Recall::open(config.prove.cache_dir.as_deref(), &interpreters);
    let deep = prove::run(&mut report, &config.prove, &interpreters, &recall)?;
    let found = find_sources(&config.scan);
    stop_if_interrupted()?;

    let mut findings: Vec<Finding> = Vec::new();
    findings.extend(doctor::interpreter_findings(&report, &interpreters));
    findings.extend(doctor::environment_findings(config, &report));
    findings.extend(doctor::cache_findings(&report, &deep));
    let tree_interpreter = doctor::tree_interpreter(config, &found, &interpreters);
    let user = config.user.as_ref().map(|(name, uid)| User {
        name: name.clone(),
        uid: *uid,
    });
    if let Some(interpreter) = &tree_interpreter {
        let more = doctor::source_findings(config, &found, interpreter, user.as_ref())
            .map_err(|e| CommandError::Doctor(e.into()))?;
        findings.extend(more);
    }
    stop_if_interrupted()?;
    let known: Vec<_> = interpreters
        .all()
        .iter()
        .map(|i| i.resolved.clone())
        .collect();
    let listing = procs::python_processes(&known);
    let tolerance_ns = procs::start_tolerance_ns();
    let outcome = running::find(&config.scan, &listing.processes, tolerance_ns);
    findings.extend(doctor::process_findings(outcome.running));
    doctor::sort(&mut findings);

    let mut errors = report.errors.clone();
    errors.extend(outcome.errors);
    // `-q`: the warnings and errors only (a machine format keeps its whole document).
    let shown: Vec<Finding> = if format == crate::output::Format::Human && !verbosity.normal() {
        findings
            .iter()
            .filter(|f| f.severity() != Severity::Info)
            .cloned()
            .collect()
    } else {
        findings.clone()
    };
    print(
        &mut verbosity.stdout(),
        &DoctorOutput {
            findings: &shown,
            errors: &errors,
            roots: &config.scan.roots,
            user: user.as_ref(),
            tree_interpreter: tree_interpreter.as_ref(),
            tolerance_ns,
            format,
        },
    )?;
    let count = |s: Severity| findings.iter().filter(|f| f.severity() == s).count();
    Ok(Finished {
        tally: Tally {
            problems: count(Severity::Error),
            warnings: count(Severity::Warning),
            unreadable: if config.policy.strict {
                errors.len()
            } else {
                0
            },
        },
        policy: config.policy,
    })
}
