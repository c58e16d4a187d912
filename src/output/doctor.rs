//! `pycguard doctor`'s printer: the only place findings are worded — a title, the
//! evidence, and a remedy (a command to run, with the PATHS given).
//!
//! Human: one block per finding, most severe first:
//!
//! ```text
//! warning: pgt-svc cannot create ./app/__pycache__: each start compiles 3 modules again (12.4 ms with Python 3.11.2)
//!   denied at ./app: permission denied
//!   ./app/main.py
//!   remedy: deploy-time `sudo pycguard compile ./app` …
//! ```
//!
//! then one summary line (`N errors, N warnings, N notes`).
//!
//! JSON (`--output-format json`), one document:
//!
//! ```text
//! {"schema": 1,
//!  "interpreter": P | null,           the one sources were judged for (as `compile` picks)
//!  "findings": [{"kind": "interpreter" | "interpreters-without-caches" | "no-interpreter" | "environment"
//!                        | "unwritable-cache-dir" | "root-owned-caches" | "caches"
//!                        | "sources-without-caches" | "header-only" | "future-mtimes"
//!                        | "replaced-sources" | "process" | "process-environment",
//!                "severity": "error" | "warning" | "info",
//!                "title": S, "evidence": [S, …], "remedy": S | null,
//!                "paths": [P, …],       the files or directories it is about
//!                "count": N,            how many (caches, sources, …)
//!                "tag": S | null,       interpreter, no-interpreter
//!                "state": S | null,     caches
//!                "variable": S | null,  environment
//!                "user": S | null,      unwritable-cache-dir, root-owned-caches
//!                "cache_dir": P | null, unwritable-cache-dir, root-owned-caches
//!                "compile_ns": N | null, unwritable-cache-dir: measured compile time
//!                "process": {…} | null}, process: as `ps` lists it
//!               …],
//!  "summary": {"errors": N, "warnings": N, "info": N},
//!  "errors": [{"path": P, "message": M}, …]}
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::doctor::{Finding, ProcessSetting, Setting, Severity, User};
use crate::escape;
use crate::interpreters::Interpreter;
use crate::output::ps::{write_process, JsonProcess};
use crate::output::Format;
use crate::output::{write_json, JsonError, JsonPath, SCHEMA};
use crate::report::ScanError;
use crate::timefmt;
use crate::walk::Root;

/// How many paths of one finding the human output lists.
const LISTED: usize = 12;

/// What `doctor` found.
pub struct DoctorOutput<'a> {
    pub findings: &'a [Finding],
    pub errors: &'a [ScanError],
    pub roots: &'a [Root],
    pub user: Option<&'a User>,
    pub tree_interpreter: Option<&'a Interpreter>,
    pub tolerance_ns: i128,
    pub format: Format,
}

/// Print the findings.
pub fn print<W: Write>(out: &mut W, d: &DoctorOutput<'_>) -> io::Result<()> {
    match d.format {
        Format::Human => write_human(out, d)?,
        Format::Json => write_json(out, &json(d))?,
        Format::JsonLines => {
            let doc = json(d);
            for finding in &doc.findings {
                crate::output::json_lines::write(out, "finding", finding)?;
            }
            for error in &doc.errors {
                crate::output::json_lines::write(out, "error", error)?;
            }
        }
        Format::Github => write_annotations(out, d)?,
    }
    out.flush()
}

/// `--output-format github`: one annotation per finding (on its first path, when it has
/// one), one per entry that could not be read.
fn write_annotations<W: Write>(out: &mut W, d: &DoctorOutput<'_>) -> io::Result<()> {
    use crate::output::github::{self, Annotation, Level};
    for f in d.findings {
        let w = word(f, d);
        let level = match f.severity() {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
            Severity::Info => Level::Notice,
        };
        let mut message = w.title.clone();
        for line in &w.evidence {
            message.push('\n');
            message.push_str(line);
        }
        if let Some(remedy) = &w.remedy {
            message.push_str("\nremedy: ");
            message.push_str(remedy);
        }
        let title = format!("pycguard doctor: {}", f.kind());
        github::write(
            out,
            &Annotation {
                level,
                file: w.paths.first().map(|p| p.as_path()),
                line: None,
                title: Some(&title),
                message: &message,
            },
        )?;
    }
    for error in d.errors {
        github::write(
            out,
            &Annotation::on(
                Level::Error,
                &error.path,
                "pycguard: unreadable",
                &error.message,
            ),
        )?;
    }
    Ok(())
}

fn style(severity: Severity) -> Style {
    match severity {
        Severity::Error => AnsiColor::Red.on_default().bold(),
        Severity::Warning => AnsiColor::Yellow.on_default().bold(),
        Severity::Info => AnsiColor::Cyan.on_default(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The PATH arguments, as a command line's tail.
fn paths_arg(roots: &[Root]) -> String {
    roots
        .iter()
        .map(|r| shell_word(&escape::path_string(&r.path)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn ms(ns: u128) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

fn show(p: &Path) -> String {
    escape::path_string(p)
}

/// A finding in words.
struct Worded {
    title: String,
    evidence: Vec<String>,
    remedy: Option<String>,
    paths: Vec<PathBuf>,
    count: usize,
}

fn word(f: &Finding, d: &DoctorOutput<'_>) -> Worded {
    let paths_tail = paths_arg(d.roots);
    let mut w = Worded {
        title: String::new(),
        evidence: Vec::new(),
        remedy: None,
        paths: Vec::new(),
        count: 0,
    };
    match f {
        Finding::Interpreter {
            name,
            path,
            tag,
            caches,
        } => {
            w.title = format!(
                "{name} ({}, tag {tag}): {} under these paths",
                show(path),
                plural(*caches, "cache", "caches")
            );
            w.paths = vec![path.clone()];
            w.count = *caches;
        }
        Finding::Unused { names } => {
            w.title = format!(
                "{} found with no cache under these paths: {}",
                plural(names.len(), "other interpreter", "other interpreters"),
                names.join(", ")
            );
            w.count = names.len();
        }
        Finding::NoInterpreter { tag, caches } => {
            w.title = format!(
                "{} for {tag}, which no interpreter on this machine writes (a Python that was removed, or another machine's)",
                plural(caches.len(), "cache", "caches")
            );
            w.evidence = caches.iter().map(|p| show(p)).collect();
            w.remedy = Some(format!("pycguard clean --tag {tag} {paths_tail}"));
            w.paths.clone_from(caches);
            w.count = caches.len();
        }
        Finding::Environment(setting) => word_setting(setting, &mut w, d, &paths_tail),
        Finding::Unwritable(u) => {
            let verb = if u.denied.exists { "write" } else { "create" };
            w.paths = vec![u.cache_dir.clone()];
            w.evidence.push(format!(
                "denied at {} for {} (uid {}): {}",
                show(&u.denied.at),
                escape::text(&u.user.name),
                u.user.uid,
                u.denied.reason
            ));
            if u.recompiled.is_empty() {
                w.title = format!(
                    "{} cannot {verb} {}, but its {} fresh: read at every start, never refreshed — after an edit each start compiles again",
                    escape::text(&u.user.name),
                    show(&u.cache_dir),
                    plural(u.fresh, "cache is", "caches are")
                );
                w.count = u.fresh;
                w.remedy = Some(format!(
                    "compile at every deploy: `sudo pycguard compile {paths_tail}`"
                ));
            } else {
                let cost = match &u.cost {
                    Some(c) => format!(
                        " (compiling them takes {} with {}, measured)",
                        ms(c.total.as_nanos()),
                        c.interpreter
                    ),
                    None => String::new(),
                };
                w.title = format!(
                    "{} cannot {verb} {}: each start compiles {} again{cost}",
                    escape::text(&u.user.name),
                    show(&u.cache_dir),
                    plural(u.recompiled.len(), "module", "modules"),
                );
                w.count = u.recompiled.len();
                w.evidence.extend(u.recompiled.iter().map(|p| show(p)));
                w.remedy = Some(format!(
                    "write the caches at deploy time: `sudo pycguard compile {paths_tail}` (fresh caches are read without writing); or give the service a writable prefix (`Environment=PYTHONPYCACHEPREFIX=/var/cache/APP`, then `pycguard compile --pycache-prefix /var/cache/APP {paths_tail}`); or `chown {} {}`",
                    shell_word(&u.user.name),
                    shell_word(&show(if u.denied.exists { &u.cache_dir } else { &u.denied.at }))
                ));
            }
        }
        Finding::RootOwned {
            user,
            cache_dir,
            caches,
        } => {
            w.title = format!(
                "{} in {} {} to root, in a directory {} owns: it cannot replace them",
                plural(caches.len(), "cache", "caches"),
                show(cache_dir),
                if caches.len() == 1 {
                    "belongs"
                } else {
                    "belong"
                },
                escape::text(&user.name)
            );
            w.evidence = caches.iter().map(|p| show(p)).collect();
            w.remedy = Some(format!(
                "`chown -R {} {}`; later runs of `sudo pycguard fix`/`compile` write caches for the directory's owner",
                shell_word(&user.name),
                shell_word(&show(cache_dir))
            ));
            w.paths.clone_from(caches);
            w.count = caches.len();
        }
        Finding::Caches { state, caches, .. } => {
            w.title = format!("{} {}: {}", caches.len(), state.name(), state.meaning());
            w.evidence = caches
                .iter()
                .map(|(p, reason)| match reason {
                    Some(r) => format!("{}: {}", show(p), escape::text(r)),
                    None => show(p),
                })
                .collect();
            w.remedy = match state {
                crate::verdict::State::Sourceless | crate::verdict::State::Unknown => None,
                _ => Some(format!("pycguard fix {paths_tail}")),
            };
            w.paths = caches.iter().map(|(p, _)| p.clone()).collect();
            w.count = caches.len();
        }
        Finding::SourcesWithoutCaches {
            interpreter,
            sources,
        } => {
            w.title = format!(
                "{} no cache for {interpreter}: the first import compiles {} (and writes a cache where it can)",
                plural(sources.len(), "source has", "sources have"),
                if sources.len() == 1 { "it" } else { "them" }
            );
            w.evidence = sources.iter().map(|p| show(p)).collect();
            w.remedy = Some(format!("pycguard compile {paths_tail}"));
            w.paths.clone_from(sources);
            w.count = sources.len();
        }
        Finding::HeaderOnly { caches, missing } => {
            w.title = format!(
                "{} judged by header only (mtime and size, as the interpreter does): not proven against their sources",
                plural(*caches, "cache", "caches")
            );
            w.evidence = missing
                .iter()
                .map(|(who, n)| {
                    format!(
                        "{who} was not found to prove {}",
                        plural(*n, "cache", "caches")
                    )
                })
                .collect();
            w.remedy = Some(format!(
                "prove them with their interpreter: `pycguard check --deep --python PATH {paths_tail}`"
            ));
            w.count = *caches;
        }
        Finding::FutureMtimes { caches } => {
            w.title = format!(
                "{} a source whose mtime is in the future (clock skew, or set by a tool): the mtime says nothing about when it changed",
                plural(caches.len(), "cache has", "caches have")
            );
            w.evidence = caches
                .iter()
                .map(|(p, ns)| format!("{}: source mtime {}", show(p), timefmt::nanos(*ns)))
                .collect();
            w.remedy = Some(format!(
                "fix the clock (or `touch` the sources), then `pycguard fix {paths_tail}`"
            ));
            w.paths = caches.iter().map(|(p, _)| p.clone()).collect();
            w.count = caches.len();
        }
        Finding::Replaced { caches } => {
            w.title = format!(
                "{} whose source was replaced after it was written, keeping its mtime (the ctime shows it): the interpreter trusts the cache",
                plural(caches.len(), "cache", "caches")
            );
            w.evidence = caches.iter().map(|p| show(p)).collect();
            w.remedy = Some(format!("pycguard fix {paths_tail}"));
            w.paths.clone_from(caches);
            w.count = caches.len();
        }
        Finding::ProcessSettings {
            pid,
            unit,
            settings,
        } => {
            let names: Vec<String> = settings
                .iter()
                .map(|s| match s {
                    ProcessSetting::NoWrites { flag: true } => "-B".to_owned(),
                    ProcessSetting::NoWrites { flag: false } => {
                        "PYTHONDONTWRITEBYTECODE".to_owned()
                    }
                    ProcessSetting::Prefix { dir, flag: true } => {
                        format!("-X pycache_prefix={}", show(dir))
                    }
                    ProcessSetting::Prefix { dir, flag: false } => {
                        format!("PYTHONPYCACHEPREFIX={}", show(dir))
                    }
                    ProcessSetting::Optimize { level, flag: true } => {
                        format!("-{}", "O".repeat(level.parse().unwrap_or(1)))
                    }
                    ProcessSetting::Optimize { level, flag: false } => {
                        format!("PYTHONOPTIMIZE={}", escape::text(level))
                    }
                    ProcessSetting::PythonPath { value } => {
                        format!("PYTHONPATH={}", escape::text(value))
                    }
                })
                .collect();
            w.title = format!(
                "PID {pid}{} runs with {}",
                unit.as_deref()
                    .map(|u| format!(" ({})", escape::text(u)))
                    .unwrap_or_default(),
                names.join(", ")
            );
            for s in settings {
                w.evidence.push(match s {
                    ProcessSetting::NoWrites { .. } => "it writes no caches but reads every one that exists: a stale cache is still imported, a missing one compiled at every start".into(),
                    ProcessSetting::Prefix { dir, .. } => {
                        w.paths.push(dir.clone());
                        format!(
                            "it reads and writes its caches only under {} (3.8+); check them with `pycguard check --pycache-prefix {} {paths_tail}`",
                            show(dir),
                            shell_word(&show(dir))
                        )
                    }
                    ProcessSetting::Optimize { .. } => {
                        "it reads .opt-N caches: check and compile at that level (`pycguard compile -O`)".into()
                    }
                    ProcessSetting::PythonPath { .. } => {
                        "its PYTHONPATH directories come before site-packages: modules there shadow installed ones".into()
                    }
                });
            }
            w.count = settings.len();
        }
        Finding::Process(r) => {
            let p = &r.process;
            w.title = format!(
                "PID {}{} may run code older than the tree",
                p.pid,
                p.unit
                    .as_deref()
                    .map(|u| format!(" ({})", escape::text(u)))
                    .unwrap_or_default()
            );
            w.evidence = r
                .changed
                .iter()
                .map(|c| {
                    format!(
                        "{} {} changed after it started",
                        c.role.name(),
                        show(&c.path)
                    )
                })
                .collect();
            if let Some(old) = &r.old_release {
                w.evidence.push(format!(
                    "runs in {}, but {} points to {}",
                    show(&old.release),
                    show(&old.link),
                    show(&old.points_to)
                ));
            }
            w.remedy = Some(match &p.unit {
                Some(unit) => format!(
                    "`pycguard fix {paths_tail}`, then `systemctl restart {}`",
                    shell_word(unit)
                ),
                None => format!("`pycguard fix {paths_tail}`, then restart PID {}", p.pid),
            });
            w.paths = r.changed.iter().map(|c| c.path.clone()).collect();
            w.count = r.changed.len();
        }
    }
    w
}

fn word_setting(setting: &Setting, w: &mut Worded, d: &DoctorOutput<'_>, paths_tail: &str) {
    match setting {
        Setting::DontWriteBytecode => {
            w.title = "PYTHONDONTWRITEBYTECODE is set: Python run from this environment writes no caches — but it still reads the ones that exist".into();
            w.evidence = vec![
                "a stale or hidden-stale cache already here is still imported".into(),
                "a missing cache is compiled again at every start".into(),
            ];
            w.remedy = Some(format!(
                "keep the caches right instead of avoiding them: `pycguard fix {paths_tail}` after each deploy"
            ));
        }
        Setting::PycachePrefix { prefix, ignored } => {
            w.title = format!(
                "PYTHONPYCACHEPREFIX={}: Python 3.8+ reads and writes caches only under it",
                show(prefix)
            );
            w.evidence = vec![format!(
                "{} beside the sources {} never read by 3.8+ while it is set",
                plural(*ignored, "__pycache__ cache", "__pycache__ caches"),
                if *ignored == 1 { "is" } else { "are" }
            )];
            w.remedy = Some(format!(
                "check what it reads: `pycguard check --pycache-prefix {} {paths_tail}`",
                shell_word(&show(prefix))
            ));
            w.paths = vec![prefix.clone()];
            w.count = *ignored;
        }
        Setting::SourceDateEpoch => {
            w.title = "SOURCE_DATE_EPOCH is set: py_compile, compileall and pycguard compile write checked-hash caches".into();
            w.evidence = vec!["the interpreter hashes the source at every import of such a cache: an edit is always noticed".into()];
        }
        Setting::Optimize {
            value,
            level0_caches,
        } => {
            w.title = format!(
                "PYTHONOPTIMIZE={}: Python run from this environment reads and writes .opt-N caches",
                escape::text(value)
            );
            w.evidence = vec![format!(
                "{} under these paths {} not used by it",
                plural(*level0_caches, "level-0 cache", "level-0 caches"),
                if *level0_caches == 1 { "is" } else { "are" }
            )];
            w.remedy = Some(format!(
                "pycguard compile -O {paths_tail} (-OO for level 2)"
            ));
            w.count = *level0_caches;
        }
        Setting::PythonPath { dirs } => {
            w.title = format!(
                "PYTHONPATH puts {} before the standard library and site-packages: modules there shadow installed ones, and their caches are used",
                plural(dirs.len(), "directory", "directories")
            );
            w.evidence = dirs
                .iter()
                .map(|dir| {
                    let under = d
                        .roots
                        .iter()
                        .any(|r| r.absolute_forms.iter().any(|f| dir.starts_with(f)));
                    let exists = dir.is_dir();
                    format!(
                        "{}{}",
                        show(dir),
                        match (under, exists) {
                            (_, false) => " (does not exist)",
                            (true, true) => " (under these paths)",
                            (false, true) => "",
                        }
                    )
                })
                .collect();
            w.paths.clone_from(dirs);
            w.count = dirs.len();
        }
    }
}

fn write_human<W: Write>(out: &mut W, d: &DoctorOutput<'_>) -> io::Result<()> {
    for f in d.findings {
        let s = style(f.severity());
        let w = word(f, d);
        writeln!(out, "{s}{}{s:#}: {}", f.severity().name(), w.title)?;
        if let Finding::Process(r) = f {
            let mut block = Vec::new();
            write_process(&mut block, r, d.tolerance_ns)?;
            for line in String::from_utf8_lossy(&block).lines() {
                writeln!(out, "  {line}")?;
            }
        } else {
            for line in w.evidence.iter().take(LISTED) {
                writeln!(out, "  {line}")?;
            }
            if w.evidence.len() > LISTED {
                writeln!(out, "  … and {} more", w.evidence.len() - LISTED)?;
            }
        }
        if let Some(remedy) = &w.remedy {
            writeln!(out, "  remedy: {remedy}")?;
        }
    }
    for e in d.errors {
        writeln!(
            out,
            "cannot read {}: {}",
            escape::path(&e.path),
            escape::text(&e.message)
        )?;
    }
    let count = |s: Severity| d.findings.iter().filter(|f| f.severity() == s).count();
    let judged = d
        .tree_interpreter
        .map(|i| {
            format!(
                " (sources judged for {}, {})",
                i.display_name(),
                show(&i.path)
            )
        })
        .unwrap_or_default();
    writeln!(
        out,
        "{}, {}, {}{judged}",
        plural(count(Severity::Error), "error", "errors"),
        plural(count(Severity::Warning), "warning", "warnings"),
        plural(count(Severity::Info), "note", "notes")
    )?;
    if let Some(user) = d.user {
        if !d
            .findings
            .iter()
            .any(|f| matches!(f, Finding::Unwritable(_)))
        {
            writeln!(
                out,
                "{} can write every cache directory under these paths",
                escape::text(&user.name)
            )?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonDoctor<'a> {
    schema: u32,
    /// The interpreter sources were judged for (missing caches, unwritable directories).
    interpreter: Option<JsonPath<'a>>,
    findings: Vec<JsonFinding<'a>>,
    summary: JsonSummary,
    errors: Vec<JsonError<'a>>,
}

#[derive(Serialize)]
struct JsonSummary {
    errors: usize,
    warnings: usize,
    info: usize,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    kind: &'static str,
    severity: &'static str,
    title: String,
    evidence: Vec<String>,
    remedy: Option<String>,
    paths: Vec<Box<serde_json::value::RawValue>>,
    count: usize,
    tag: Option<&'a str>,
    state: Option<&'static str>,
    variable: Option<&'static str>,
    user: Option<&'a str>,
    cache_dir: Option<JsonPath<'a>>,
    compile_ns: Option<u128>,
    process: Option<JsonProcess<'a>>,
}

fn json<'a>(d: &'a DoctorOutput<'a>) -> JsonDoctor<'a> {
    let findings = d
        .findings
        .iter()
        .map(|f| {
            let w = word(f, d);
            let mut j = JsonFinding {
                kind: f.kind(),
                severity: f.severity().name(),
                title: w.title,
                evidence: w.evidence,
                remedy: w.remedy,
                paths: w
                    .paths
                    .iter()
                    .filter_map(|p| {
                        let mut text = Vec::new();
                        crate::output::json::write_path(&mut text, p).ok()?;
                        serde_json::value::RawValue::from_string(String::from_utf8(text).ok()?).ok()
                    })
                    .collect(),
                count: w.count,
                tag: None,
                state: None,
                variable: None,
                user: None,
                cache_dir: None,
                compile_ns: None,
                process: None,
            };
            match f {
                Finding::Interpreter { tag, .. } | Finding::NoInterpreter { tag, .. } => {
                    j.tag = Some(tag)
                }
                Finding::Caches { state, .. } => j.state = Some(state.name()),
                Finding::Environment(s) => {
                    j.variable = Some(match s {
                        Setting::DontWriteBytecode => "PYTHONDONTWRITEBYTECODE",
                        Setting::PycachePrefix { .. } => "PYTHONPYCACHEPREFIX",
                        Setting::SourceDateEpoch => "SOURCE_DATE_EPOCH",
                        Setting::Optimize { .. } => "PYTHONOPTIMIZE",
                        Setting::PythonPath { .. } => "PYTHONPATH",
                    })
                }
                Finding::Unwritable(u) => {
                    j.user = Some(&u.user.name);
                    j.cache_dir = Some(JsonPath(&u.cache_dir));
                    j.compile_ns = u.cost.as_ref().map(|c| c.total.as_nanos());
                }
                Finding::RootOwned {
                    user, cache_dir, ..
                } => {
                    j.user = Some(&user.name);
                    j.cache_dir = Some(JsonPath(cache_dir));
                }
                Finding::Process(r) => j.process = Some(JsonProcess::of(r)),
                _ => {}
            }
            j
        })
        .collect();
    let count = |s: Severity| d.findings.iter().filter(|f| f.severity() == s).count();
    JsonDoctor {
        schema: SCHEMA,
        interpreter: d.tree_interpreter.map(|i| JsonPath(&i.path)),
        findings,
        summary: JsonSummary {
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            info: count(Severity::Info),
        },
        errors: JsonError::scan(d.errors),
    }
}
