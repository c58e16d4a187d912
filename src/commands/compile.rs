//! `pycguard compile`: choose the interpreters, compile what is missing or not fresh,
//! print, and turn the outcome into an exit code.

use std::io::{self, Write};

use crate::actions::compile::{self, CompileOptions};
use crate::actions::recompile::Mode;
use crate::cli::CompileArgs;
use crate::commands::{interpreters_for, interrupted, mode_of};
use crate::exit::ExitCode;
use crate::interpreters::{Interpreters, Origin};
use crate::output::escape;
use crate::output::human::severity_style;
use crate::settings::ScanConfig;
use crate::verdict::Severity;

pub fn run_compile(args: &CompileArgs) -> io::Result<ExitCode> {
    let scan = match ScanConfig::resolve(&args.walk) {
        Ok(s) => s,
        Err(e) => return Ok(crate::commands::usage_error(&e)),
    };
    if args.optimize > 2 {
        eprintln!("pycguard: error: -O may be given at most twice (-OO)");
        return Ok(ExitCode::Usage);
    }
    let discover = || interpreters_for(&scan, &args.python.pythons, args.timeout, !args.quiet);
    let (found_tree, discovered) = if args.python.pythons.is_empty() {
        // Finding the interpreters (a few stats, probes remembered) overlaps the walk.
        std::thread::scope(|s| {
            let discovering = s.spawn(discover);
            let found_tree = compile::find_sources(&scan);
            let discovered = discovering
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (found_tree, discovered)
        })
    } else {
        // A bad --python is reported before any walk.
        match discover() {
            Ok(discovered) => (compile::find_sources(&scan), Ok(discovered)),
            Err(code) => return Ok(code),
        }
    };
    let (deep_config, found) = match discovered {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let tags = found_tree.tags.clone();
    let scan_errors = found_tree.errors.clone();
    let walked = found_tree.walk.clone();
    // --python given: exactly those; else the interpreters whose caches the tree holds;
    // else the one the tree is for (its virtualenv, else python3 on PATH).
    let chosen: Vec<(crate::interpreters::Interpreter, String)> = if !args.python.pythons.is_empty()
    {
        found
            .all()
            .iter()
            .filter(|i| i.origin == Origin::Flag)
            .map(|i| (i.clone(), "--python".to_owned()))
            .collect()
    } else {
        let mut by_tag: Vec<(crate::interpreters::Interpreter, String)> = Vec::new();
        for i in found.all() {
            let Some(tag) = i.cache_tag.as_ref().filter(|t| tags.contains(*t)) else {
                continue;
            };
            if !by_tag.iter().any(|(a, _)| a.cache_tag == i.cache_tag) {
                by_tag.push((i.clone(), format!("the tree holds {tag} caches")));
            }
        }
        if by_tag.is_empty() {
            let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
            choose_for_tree(&found, &scan.roots, &cwd)
                .into_iter()
                .collect()
        } else {
            by_tag
        }
    };
    if chosen.is_empty() {
        eprintln!("pycguard: error: no Python interpreter found (give one with --python PATH)");
        return Ok(ExitCode::Usage);
    }
    if !args.quiet {
        let mut out = anstream::stdout().lock();
        for (interpreter, why) in &chosen {
            writeln!(out, "compiling for {} ({why})", interpreter.display_name())?;
        }
        out.flush()?;
    }
    let chosen: Vec<crate::interpreters::Interpreter> =
        chosen.into_iter().map(|(i, _)| i).collect();
    let options = CompileOptions {
        levels: vec![args.optimize],
        mode: args
            .invalidation_mode
            .map_or_else(Mode::py_compile_default, mode_of),
        force: args.force,
        dry_run: args.dry_run,
        prefix: scan.walk.pycache_prefix.clone(),
    };
    let outcome = compile::run(
        found_tree,
        &chosen,
        &options,
        deep_config.workers,
        deep_config.timeout,
    );
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let mut out = anstream::stdout().lock();
    if args.dry_run && !args.quiet {
        for p in &outcome.planned {
            writeln!(
                out,
                "would compile {} -> {} with {} ({})",
                escape::path(&p.task.source),
                escape::path(&p.task.cache),
                escape::text(&chosen[p.interpreter].display_name()),
                p.why
            )?;
        }
    }
    let err = severity_style(Severity::Error);
    for (path, message) in &outcome.failed {
        writeln!(
            out,
            "{err}failed{err:#} {}: {}",
            escape::path(path),
            escape::text(message)
        )?;
    }
    let unreadable: Vec<_> = outcome.scan_errors.iter().chain(&scan_errors).collect();
    for (path, message) in &unreadable {
        writeln!(
            out,
            "{err}unreadable{err:#} {}: {}",
            escape::path(path),
            escape::text(message)
        )?;
    }
    let names: Vec<String> = chosen
        .iter()
        .map(|i| escape::text(&i.display_name()).into_owned())
        .collect();
    writeln!(
        out,
        "{} {}, {} up to date, {} failed{} ({})",
        if args.dry_run {
            "would compile"
        } else {
            "compiled"
        },
        outcome.planned.len()
            - if args.dry_run {
                0
            } else {
                outcome.failed.len()
            },
        outcome.up_to_date,
        outcome.failed.len(),
        if unreadable.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable", unreadable.len())
        },
        names.join(", ")
    )?;
    if !args.quiet {
        if scan.walk.pycache_prefix.is_none() {
            for prefix in &walked.found_prefixes {
                writeln!(
                    out,
                    "note: {} holds the caches a pycache prefix gives these sources (a service's PYTHONPYCACHEPREFIX?); with --pycache-prefix {} compile writes them there",
                    prefix.display(),
                    prefix.display()
                )?;
            }
        }
        if let Some(line) = walked.skipped_line() {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(if outcome.failed.is_empty() && unreadable.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Problems
    })
}

/// The interpreter a tree without caches is for, and why, as a user would expect: the
/// virtualenv inside the tree, else the `python3` that `PATH` runs (through pyenv's shims
/// too), else the first interpreter found.
fn choose_for_tree(
    found: &Interpreters,
    roots: &[crate::walk::Root],
    cwd: &std::path::Path,
) -> Option<(crate::interpreters::Interpreter, String)> {
    use crate::interpreters::Interpreter;
    let shown = |path: &std::path::Path| -> String {
        for root in roots {
            let Some(abs) = root.absolute_forms.first() else {
                continue;
            };
            if let Ok(rest) = path.strip_prefix(abs) {
                let inside = root.path.join(rest);
                let text = inside.to_string_lossy().into_owned();
                return text.strip_prefix("./").unwrap_or(&text).to_owned();
            }
        }
        path.display().to_string()
    };
    if let Some(venv) = found.all().iter().find(|i| i.origin == Origin::Venv) {
        let holder = venv
            .path
            .parent()
            .and_then(std::path::Path::parent)
            .unwrap_or(&venv.path);
        let is_root = roots
            .iter()
            .any(|r| r.absolute_forms.first().is_some_and(|a| a == holder));
        let why = if is_root {
            "this tree is a virtualenv"
        } else {
            "the virtualenv in this tree"
        };
        return Some((venv.clone(), format!("{}: {why}", shown(&venv.path))));
    }
    let by_executable = |exe: &std::path::Path| -> Option<&Interpreter> {
        let resolved = std::fs::canonicalize(exe).ok()?;
        found.all().iter().find(|i| i.resolved == resolved)
    };
    if let Some((exe, how)) = path_python3(cwd) {
        if let Some(interpreter) = by_executable(&exe) {
            return Some((interpreter.clone(), how));
        }
    }
    found.all().first().map(|i| {
        (
            i.clone(),
            "the first Python found: no virtualenv in the tree, no python3 on PATH".to_owned(),
        )
    })
}

/// The `python3` a shell in `cwd` would run: the first on `PATH`; pyenv's shims stand for
/// the version pyenv selects (`$PYENV_VERSION`, a `.python-version` in `cwd` or above,
/// then `$PYENV_ROOT/version`; `system` means the next `python3` on `PATH`). Read from
/// files only: nothing is run. Returns the executable and how it was found.
fn path_python3(cwd: &std::path::Path) -> Option<(std::path::PathBuf, String)> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        if dir.ends_with("shims") && dir.to_string_lossy().contains("pyenv") {
            let shim = dir.join("python3");
            if !shim.is_file() {
                continue;
            }
            let Some(root) = pyenv_root(&dir) else {
                continue;
            };
            let Some((version, from)) = pyenv_version(cwd, &root) else {
                continue;
            };
            if version == "system" {
                continue;
            }
            let exe = root.join("versions").join(&version).join("bin/python3");
            if exe.is_file() {
                return Some((
                    exe,
                    format!(
                        "{}: python3 on PATH, pyenv {version} from {from}",
                        shim.display()
                    ),
                ));
            }
            continue;
        }
        let exe = dir.join("python3");
        let Ok(meta) = std::fs::metadata(&exe) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Some((
                exe.clone(),
                format!("{}: the first python3 on PATH", exe.display()),
            ));
        }
    }
    None
}

/// pyenv's root for a shims directory: `$PYENV_ROOT`, else the shims directory's parent.
fn pyenv_root(shims: &std::path::Path) -> Option<std::path::PathBuf> {
    std::env::var_os("PYENV_ROOT")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| shims.parent().map(std::path::Path::to_path_buf))
}

/// The version pyenv (at `root`) selects in `cwd`, and where that choice is written.
fn pyenv_version(cwd: &std::path::Path, root: &std::path::Path) -> Option<(String, String)> {
    let first_word = |text: &str| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == ':'))
            .find(|w| !w.is_empty())
            .map(str::to_owned)
    };
    if let Some(v) = std::env::var("PYENV_VERSION")
        .ok()
        .as_deref()
        .and_then(first_word)
    {
        return Some((v, "$PYENV_VERSION".into()));
    }
    for dir in cwd.ancestors() {
        let file = dir.join(".python-version");
        if let Some(v) = std::fs::read_to_string(&file)
            .ok()
            .as_deref()
            .and_then(first_word)
        {
            return Some((v, file.display().to_string()));
        }
    }
    let file = root.join("version");
    std::fs::read_to_string(&file)
        .ok()
        .as_deref()
        .and_then(first_word)
        .map(|v| (v, file.display().to_string()))
}
