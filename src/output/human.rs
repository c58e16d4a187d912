//! Human output: problems grouped by state (worst first) with path and reason, then one
//! summary line; coloured on a terminal, plain otherwise (anstream honours `NO_COLOR`).

use std::io::{self, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};

use crate::messages;
use crate::output::escape;
use crate::prove::DeepSummary;
use crate::report::Report;
use crate::verdict::{Severity, State};

/// The order problem groups are printed in: what runs wrong code first.
const GROUP_ORDER: [State; 8] = [
    State::HiddenStale,
    State::Ghost,
    State::Corrupt,
    State::Suspect,
    State::Stale,
    State::Orphan,
    State::Unknown,
    State::Sourceless,
];

pub fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Error => AnsiColor::Red.on_default().bold(),
        Severity::Warning => AnsiColor::Yellow.on_default().bold(),
        Severity::Info => AnsiColor::Cyan.on_default(),
        Severity::Ok => AnsiColor::Green.on_default(),
    }
}

const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

/// Print every problem entry of the report, grouped by state.
pub fn write_problems<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    for state in GROUP_ORDER {
        let entries: Vec<_> = report
            .entries
            .iter()
            .filter(|e| e.verdict.state == state)
            .collect();
        if entries.is_empty() {
            continue;
        }
        let worst = entries
            .iter()
            .map(|e| e.verdict.severity)
            .max()
            .unwrap_or(Severity::Info);
        let style = severity_style(worst);
        writeln!(
            out,
            "{style}{}{style:#} ({}): {DIM}{}{DIM:#}",
            state.name(),
            entries.len(),
            state.meaning()
        )?;
        for entry in entries {
            writeln!(out, "  {}", escape::path(&entry.path))?;
            if let Some(reason) = messages::reason(&entry.verdict) {
                writeln!(out, "      {}", escape::text(&reason))?;
            }
        }
        writeln!(out)?;
    }
    if !report.errors.is_empty() {
        let style = severity_style(Severity::Error);
        writeln!(
            out,
            "{style}unreadable{style:#} ({}): {DIM}could not be judged{DIM:#}",
            report.errors.len()
        )?;
        for error in &report.errors {
            writeln!(out, "  {}", escape::path(&error.path))?;
            writeln!(out, "      {}", escape::text(&error.message))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// With `-v`: the fresh caches, as one more group before the problems.
pub fn write_fresh<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    let fresh: Vec<_> = report
        .entries
        .iter()
        .filter(|e| e.verdict.state == State::Fresh)
        .collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let style = severity_style(Severity::Ok);
    writeln!(
        out,
        "{style}fresh{style:#} ({}): {DIM}{}{DIM:#}",
        fresh.len(),
        State::Fresh.meaning()
    )?;
    for entry in fresh {
        writeln!(out, "  {}", escape::path(&entry.path))?;
    }
    writeln!(out)
}

/// What the walk did not enter: one line (how to include it), or with `-v` one line per
/// directory. Nothing below [`Verbosity::Normal`].
pub fn write_skipped<W: Write>(
    out: &mut W,
    walk: &crate::walk::WalkSummary,
    verbosity: crate::output::verbosity::Verbosity,
) -> io::Result<()> {
    if !verbosity.normal() {
        return Ok(());
    }
    if verbosity.verbose() {
        for skipped in &walk.skipped {
            writeln!(
                out,
                "skipped {}/ ({}; --include-venvs walks it)",
                escape::path(&skipped.path),
                if skipped.venv {
                    "a virtual environment"
                } else {
                    "a tool's environments"
                }
            )?;
        }
    } else if let Some(line) = walk.skipped_line() {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The summary line, then the header-only note when it applies.
pub fn write_summary<W: Write>(out: &mut W, report: &Report, elapsed: Duration) -> io::Result<()> {
    let s = &report.summary;
    let total = s.total();
    write!(
        out,
        "{BOLD}{total} {}{BOLD:#} checked in {:.2}s",
        if total == 1 { "cache" } else { "caches" },
        elapsed.as_secs_f64()
    )?;
    let mut parts = Vec::new();
    for state in State::ALL {
        let n = s.count(state);
        if n > 0 {
            let style = if state == State::Fresh {
                severity_style(Severity::Ok)
            } else {
                severity_style(crate::verdict::default_severity(state))
            };
            parts.push(format!("{style}{n} {}{style:#}", state.name()));
        }
    }
    if !report.errors.is_empty() {
        let style = severity_style(Severity::Error);
        parts.push(format!(
            "{style}{} unreadable{style:#}",
            report.errors.len()
        ));
    }
    if !parts.is_empty() {
        write!(out, ": {}", parts.join(", "))?;
    }
    writeln!(out)?;
    if s.header_only > 0 {
        // Python 2 and 3.0–3.2 headers hold no size: those caches were judged by mtime alone.
        let fields = if s.header_only_unsized == 0 {
            "mtime and size".to_owned()
        } else if s.header_only_unsized == s.header_only {
            "mtime only, as Python 2 headers hold no size".to_owned()
        } else {
            format!(
                "mtime and size; mtime only for the {} Python 2 caches, whose headers hold no size",
                s.header_only_unsized
            )
        };
        writeln!(
            out,
            "{DIM}{} judged by header only ({fields}, as the interpreter does); the code inside was not compared with the source.{DIM:#}",
            if s.header_only == 1 {
                "1 cache was".to_owned()
            } else {
                format!("{} caches were", s.header_only)
            }
        )?;
    }
    if s.future_source_mtimes > 0 {
        writeln!(
            out,
            "{DIM}clock skew: {} an mtime later than now (set by a tool or a skewed clock), which says nothing about when {} changed; `--format json` lists them (future_source_mtime).{DIM:#}",
            if s.future_source_mtimes == 1 {
                "1 cache's source has".to_owned()
            } else {
                format!("{} caches' sources have", s.future_source_mtimes)
            },
            if s.future_source_mtimes == 1 { "it" } else { "they" }
        )?;
    }
    Ok(())
}

/// After a shallow check that judged caches by header only: how to prove them.
pub fn write_deep_hint<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    if report.summary.header_only > 0 {
        writeln!(
            out,
            "{DIM}Run `pycguard check --deep` to prove them: it compiles each source with the interpreter that wrote the cache and compares the code.{DIM:#}"
        )?;
    }
    Ok(())
}

/// After `check --deep`: how many caches were proven, and which could not be, and why.
pub fn write_deep_summary<W: Write>(out: &mut W, deep: &DeepSummary) -> io::Result<()> {
    let proven = deep.compiled + deep.remembered;
    writeln!(
        out,
        "{BOLD}deep:{BOLD:#} {proven} {} proven against {} source ({} compiled now, {} remembered from earlier runs)",
        if proven == 1 { "cache" } else { "caches" },
        if proven == 1 { "its" } else { "their" },
        deep.compiled,
        deep.remembered
    )?;
    let unproven = deep.unproven();
    if unproven == 0 {
        return Ok(());
    }
    let mut why = Vec::new();
    for (interpreter, n) in &deep.missing_interpreter {
        why.push(format!(
            "{n} need {}, which was not found (add --python PATH)",
            escape::text(interpreter)
        ));
    }
    if deep.pytest > 0 {
        why.push(format!("{} rewritten by pytest", deep.pytest));
    }
    if !deep.failed.is_empty() {
        why.push(format!("{} failed", deep.failed.len()));
    }
    if !deep.other.is_empty() {
        why.push(format!("{} cannot be reproduced", deep.other.len()));
    }
    let style = severity_style(Severity::Warning);
    writeln!(
        out,
        "{style}{unproven} {} could not be proven{style:#} and {} judged by header only: {}",
        if unproven == 1 { "cache" } else { "caches" },
        if unproven == 1 { "is" } else { "are" },
        why.join(", ")
    )?;
    const SHOWN: usize = 20;
    for (path, reason) in deep.failed.iter().chain(&deep.other).take(SHOWN) {
        writeln!(out, "  {}", escape::path(path))?;
        writeln!(out, "      {}", escape::text(reason))?;
    }
    let listed = deep.failed.len() + deep.other.len();
    if listed > SHOWN {
        writeln!(
            out,
            "  {DIM}… and {} more (see --format json){DIM:#}",
            listed - SHOWN
        )?;
    }
    Ok(())
}
