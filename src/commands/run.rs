//! `pycguard run -- CMD ARGS…`: the pre-start step of a service, in front of the command
//! itself — where the service manager has no pre-start hook (supervisor, Procfiles, a
//! container's entrypoint) or where it is simpler to write one line.
//!
//! 1. [`crate::launch`] finds CMD's interpreter, its options and its trees (nothing is run);
//!    for `-m MODULE`, the package (or module) that import finds is one of them, located
//!    as `pycguard why` locates it ([`crate::why::locate`]: an isolated probe of the
//!    interpreter, `site` and `.pth` files modelled, never executed);
//! 2. the `fix` pipeline runs on those trees for that interpreter alone — [`scan::run`],
//!    the caches that interpreter reads at its optimisation level (and legacy ones beside
//!    their sources), [`prove::run`], [`crate::actions::fix::run`]; with `--check` no
//!    repair — on a thread of its own, waited for at most `--timeout`;
//! 3. one line per problem on stderr ([`crate::output::run`]);
//! 4. CMD is `exec`ed: the same process, so its pid, exit status and signals are its own.
//!
//! Only `--strict` stops the start (exit 1): when a problem remains (a repair failed, or
//! `--check` found an error-severity cache), or when the check ran out of time.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use crate::actions::fix::{self, FixOutcome};
use crate::commands::{stop_if_interrupted, CommandError, CommandResult, Finished};
use crate::exit::{ExitStatus, Tally};
use crate::interpreters::{Discovery, Interpreter, Interpreters, Origin};
use crate::launch::{self, Launch, Python};
use crate::layout::{self, lexically_absolute, CacheName};
use crate::output::run::RunPrinter;
use crate::prove;
use crate::report::{Entry, ScanError};
use crate::scan::{self, Keep};
use crate::settings::{RunConfig, ScanConfig};
use crate::signals::Interrupted;
use crate::verdict::{Severity, State};
use crate::walk::Root;

/// Run `run`: check or fix, then become CMD.
pub fn run(config: &RunConfig) -> CommandResult {
    let printer = RunPrinter;
    let mut err = anstream::stderr().lock();
    match launch::resolve(&config.command, &config.launch) {
        // exec says what is wrong with it.
        Launch::NotFound => {}
        Launch::Other { program, why } => {
            let why = format!("{} is not a Python program ({why})", program.display());
            printer.unchecked(&mut err, &why)?;
        }
        Launch::Python(python) => {
            let (tx, rx) = mpsc::channel();
            let (job_config, job_python) = (config.clone(), python.clone());
            std::thread::spawn(move || {
                let _ = tx.send(guard(&job_config, &job_python));
            });
            match rx.recv_timeout(config.budget) {
                Ok(result) => {
                    let guarded = result?;
                    let remaining = report(&printer, &mut err, &guarded)?;
                    if config.strict && remaining > 0 {
                        printer.blocked(&mut err, remaining)?;
                        return Ok(Finished::with(Tally {
                            problems: remaining,
                            ..Tally::default()
                        }));
                    }
                }
                Err(_) => {
                    if crate::signals::received_signal().is_some() {
                        return Err(CommandError::Interrupted(Interrupted));
                    }
                    let secs = config.budget.as_secs_f64();
                    printer.out_of_time(&mut err, secs, config.strict)?;
                    // Stop the check: its pools kill and reap their workers (a worker
                    // left behind would outlive the exec).
                    let flag = crate::signals::interrupt_flag();
                    flag.store(true, Ordering::SeqCst);
                    let _ = rx.recv_timeout(crate::signals::SIGNAL_GRACE);
                    // Not a signal: the run goes on (to its exit status, or to CMD).
                    flag.store(false, Ordering::SeqCst);
                    if config.strict {
                        return Ok(Finished::with(Tally {
                            problems: 1,
                            ..Tally::default()
                        }));
                    }
                    let _ = err.flush();
                    drop(err);
                    return Err(exec(&config.command));
                }
            }
        }
    }
    stop_if_interrupted()?;
    let _ = std::io::stdout().flush();
    let _ = err.flush();
    drop(err);
    Err(exec(&config.command))
}

/// Become CMD; only returns when that fails.
fn exec(argv: &[std::ffi::OsString]) -> CommandError {
    let (program, args) = argv.split_first().expect("clap requires CMD");
    let err = std::process::Command::new(program).args(args).exec();
    CommandError::Exec {
        program: program.into(),
        status: if err.kind() == std::io::ErrorKind::NotFound {
            ExitStatus::NotFound
        } else {
            ExitStatus::CannotExecute
        },
        err,
    }
}

/// What the check found and did.
struct Guarded {
    interpreters: Interpreters,
    /// Without `--check`: the repairs.
    fixed: Option<FixOutcome>,
    /// With `--check`: the caches the interpreter would run wrongly or fail on.
    problems: Vec<Entry>,
    errors: Vec<ScanError>,
    /// CMD's interpreter was not usable: why (then nothing was checked).
    unchecked: Option<String>,
}

/// Print what was found; how many problems remain.
fn report<W: Write>(printer: &RunPrinter, out: &mut W, g: &Guarded) -> std::io::Result<usize> {
    if let Some(why) = &g.unchecked {
        printer.unchecked(out, why)?;
        return Ok(0);
    }
    let mut remaining = 0;
    if let Some(outcome) = &g.fixed {
        for done in &outcome.done {
            printer.repair(out, done, &g.interpreters)?;
        }
        remaining += outcome.failed();
    }
    for entry in &g.problems {
        printer.problem(out, entry)?;
    }
    remaining += g.problems.len();
    for error in &g.errors {
        printer.unreadable(out, error)?;
    }
    Ok(remaining)
}

/// Steps 2 of the module docs, on the check's thread.
fn guard(config: &RunConfig, python: &Python) -> Result<Guarded, CommandError> {
    let discovery = Discovery {
        pythons: vec![python.interpreter.clone()],
        roots: Vec::new(),
        cache_dir: config.scan.cache_dir.clone(),
        search: config.search.clone(),
    };
    let interpreters = Interpreters::discover(&discovery);
    let unchecked = |why: String| Guarded {
        interpreters: Interpreters::default(),
        fixed: None,
        problems: Vec::new(),
        errors: Vec::new(),
        unchecked: Some(why),
    };
    if let Some(bad) = interpreters.rejected_flag() {
        return Ok(unchecked(format!(
            "{} is not a usable interpreter ({})",
            python.interpreter.display(),
            bad.message
        )));
    }
    let Some(interpreter) = interpreters.all().iter().find(|i| i.origin == Origin::Flag) else {
        return Ok(unchecked(format!(
            "{} is not a usable interpreter",
            python.interpreter.display()
        )));
    };
    let cwd = config.cwd();
    let mut trees = python.trees(cwd, interpreter.venv.as_deref());
    if let Some(located) = module_tree(python, interpreter, cwd) {
        if !trees.iter().any(|t| located.starts_with(t)) {
            trees.push(located);
        }
    }
    let mut scan_config: ScanConfig = config.scan.clone();
    scan_config.roots = trees.iter().map(|t| root(t, cwd)).collect();
    if layout::reads_pycache_prefix(interpreter.version_info) {
        scan_config.walk.pycache_prefix = python.pycache_prefix.clone();
    }
    let mut report = scan::run(&scan_config, Keep::All);
    stop_if_interrupted()?;
    report
        .entries
        .retain(|e| read_by(e, interpreter, python.optimize));
    let recall = prove::Recall::open(config.prove.cache_dir.as_deref(), &interpreters);
    prove::run(&mut report, &config.prove, &interpreters, &recall)?;
    let errors = std::mem::take(&mut report.errors);
    if config.check_only {
        let problems = report
            .entries
            .into_iter()
            .filter(|e| e.verdict.severity == Severity::Error)
            .collect();
        return Ok(Guarded {
            interpreters,
            fixed: None,
            problems,
            errors,
            unchecked: None,
        });
    }
    let entries: Vec<Entry> = report
        .entries
        .into_iter()
        .filter(|e| e.verdict.state != State::Fresh)
        .collect();
    let outcome = fix::run(entries, &interpreters, &config.options, &config.write);
    stop_if_interrupted()?;
    Ok(Guarded {
        interpreters,
        fixed: Some(outcome),
        problems: Vec::new(),
        errors,
        unchecked: None,
    })
}

/// Is this a cache CMD's interpreter reads (or trips over)? Its tag's caches at its
/// optimisation level, and legacy caches beside sources (a ghost is imported by any
/// interpreter that finds it first on `sys.path`).
fn read_by(entry: &Entry, interpreter: &Interpreter, optimize: u8) -> bool {
    match &entry.name {
        CacheName::Tagged {
            tag, optimization, ..
        } => interpreter.cache_tag.as_deref() == Some(tag.as_str()) && *optimization == optimize,
        CacheName::Legacy { .. } => true,
        _ => false,
    }
}

/// A tree as a PATH of the scan.
fn root(path: &Path, cwd: &Path) -> Root {
    let lexical = lexically_absolute(cwd, path);
    let mut absolute_forms = vec![lexical.clone()];
    if let Ok(real) = std::fs::canonicalize(path) {
        if real != lexical {
            absolute_forms.push(real);
        }
    }
    Root {
        path: path.to_path_buf(),
        absolute_forms,
    }
}

/// For `python -m MODULE`: where import finds MODULE's top-level package (its directory)
/// or module (its file), as `pycguard why` finds it — so that a package installed
/// outside the current directory and the virtualenv (an editable install, a `.pth`
/// entry, the system site-packages) is checked too. `None` for anything else, or when
/// it is not found (the command's own import will then say so). `PYTHONPATH` and
/// the user site are not taken into account here.
fn module_tree(python: &Python, interpreter: &Interpreter, cwd: &Path) -> Option<PathBuf> {
    let launch::Main::Module(module) = &python.main else {
        return None;
    };
    let top = module.split('.').next()?;
    let search = crate::why::Search {
        executable: Some(python.interpreter.clone()),
        // `-m`: sys.path[0] is the current directory.
        path0: vec![cwd.to_path_buf()],
        cwd: cwd.to_path_buf(),
        optimize: python.optimize,
        pycache_prefix: python.pycache_prefix.clone(),
        no_user_site: true,
        ..crate::why::Search::default()
    };
    let located = crate::why::locate(top, interpreter, &search).ok()?;
    match &located.resolution.steps.first()?.found {
        crate::why::Found::Package { init, .. } => init.parent().map(Path::to_path_buf),
        crate::why::Found::Module { file, .. } => Some(file.clone()),
        _ => None,
    }
}
