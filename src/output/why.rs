//! `pycguard why`'s printer.
//!
//! Human: what `import MODULE` loads and through which finder, the cache the interpreter
//! would load for it and that cache's verdict, every candidate that lost, the `.pth`
//! lines `site` would execute (pycguard did not), what was not followed, then the
//! computed `sys.path` with where each entry comes from.
//!
//! JSON (`--output-format json`), one document:
//!
//! ```text
//! {"schema": 1,
//!  "module": "ingest.rss",
//!  "interpreter": {"path": P, "resolved": P, "version": "3.12.1", "tag": "cpython-312" | null,
//!                  "chosen": "why this interpreter"},
//!  "found": true,                         false: ModuleNotFoundError (or not a package)
//!  "error": "No module named 'x'" | null,
//!  "kind": "module" | "package" | "namespace" | "builtin" | "frozen" | null,
//!  "file": P | null,                      the file loaded (a package's __init__)
//!  "file_kind": "source" | "extension" | "sourceless" | null,
//!  "steps": [{"name": "ingest", "kind": "package", "file": P | null,
//!             "portions": [P, …],         a namespace's directories
//!             "by": "builtin" | "frozen" | "path" | "namespace" | "editable",
//!             "entry": P | null,           the sys.path / __path__ entry it was found in
//!             "sys_path_index": N | null,
//!             "editable_finder": P | null}, …],   the finder module that mapped it
//!  "cache": {"path": P, "tag": "cpython-312" | null, "optimization": 0,
//!            "pycache_prefix": P | null, "is_the_module": false,
//!            "exists": true,
//!            "verdict": {…} | null,       the cache as `check`'s JSON lists it (schema 1)
//!            "error": "why it could not be judged" | null} | null,
//!  "shadowed": [{"name": "ingest", "path": P, "what": "package",
//!                "why": "same-directory" | "earlier-entry" | "namespace-portion"
//!                       | "editable-not-reached"}, …],
//!  "would_execute": [{"pth": P, "line": N, "code": "import …"}, …],
//!  "not_followed": ["…", …],
//!  "sys_path": [{"path": P, "origin": "script-or-cwd" | "pythonpath" | "interpreter"
//!                | "venv-site-packages" | "user-site-packages" | "site-packages" | "pth"
//!                | "editable-placeholder", "pth": P | null, "line": N | null}, …],
//!  "venv": {"path": P, "config": P, "include_system_site_packages": true} | null,
//!  "editable_finders": [{"pth": P, "module": "__editable___x_finder", "file": P | null,
//!                        "mapping": {"name": P, …}, "namespaces": {"name": [P, …], …},
//!                        "error": "…" | null}, …],
//!  "egg_links": [{"file": P, "target": P}, …]}
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use anstyle::Style;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::escape;
use crate::interpreters::Interpreter;
use crate::messages;
use crate::output::human::severity_style;
use crate::output::Format;
use crate::output::{write_json, JsonPath, SCHEMA};
use crate::report::Entry;
use crate::why::importer::{By, End, Note, Step};
use crate::why::syspath::{Origin, PthEffect};
use crate::why::{CacheLocation, Found, Located};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// The cache `why` judged.
pub struct CacheOutcome {
    pub location: CacheLocation,
    pub exists: bool,
    /// Its verdict, proven where it can be.
    pub entry: Option<Entry>,
    /// Why it could not be judged.
    pub error: Option<String>,
}

/// Everything `why` prints.
pub struct WhyOutput<'a> {
    pub module: &'a str,
    pub interpreter: &'a Interpreter,
    /// The executable as run (a virtualenv's `bin/python`).
    pub executable: &'a Path,
    pub chosen: &'a str,
    pub located: &'a Located,
    pub cache: Option<&'a CacheOutcome>,
    pub format: Format,
}

/// Print the answer.
pub fn print<W: Write>(out: &mut W, w: &WhyOutput<'_>) -> io::Result<()> {
    match w.format {
        Format::Human => write_human(out, w)?,
        Format::Json => write_json(out, &json(w)?)?,
        // Refused by the settings (one answer, one document).
        Format::JsonLines | Format::Github => unreachable!("why writes human or json"),
    }
    out.flush()
}

/// Why the import fails, in Python's words.
fn error_text(end: &End) -> Option<String> {
    match end {
        End::Found => None,
        End::NotFound { name } => Some(format!("No module named '{name}'")),
        End::NotAPackage { name, parent } => Some(format!(
            "No module named '{name}'; '{parent}' is not a package"
        )),
        End::NotFollowed { name, parent } => Some(format!(
            "{name}: {parent} is builtin or frozen; pycguard does not follow its submodules"
        )),
    }
}

fn notes(located: &Located) -> Vec<String> {
    let mut out: Vec<String> = located
        .resolution
        .notes
        .iter()
        .map(|n| match n {
            Note::DynamicPath { package, init, line, text } => format!(
                "{package}'s __init__ changes __path__ at run time ({}:{line}: {}); only its directory was searched",
                escape::path(init),
                escape::text(text)
            ),
            Note::ZipArchive { entry } => {
                format!("zip archive on sys.path, not searched: {}", escape::path(entry))
            }
            Note::UnreadableFinder { finder } => {
                let f = &located.sys_path.finders[*finder];
                format!(
                    "editable finder {} could not be read: {}",
                    f.module,
                    f.error.as_deref().unwrap_or("")
                )
            }
        })
        .collect();
    for f in located.sys_path.pth_files.iter().filter(|f| f.undecodable) {
        out.push(format!(
            "{} is not valid UTF-8: site raises UnicodeDecodeError and the interpreter does not start (under a UTF-8 locale)",
            escape::path(&f.path)
        ));
    }
    let unmodelled = located
        .sys_path
        .pth_files
        .iter()
        .flat_map(|f| &f.lines)
        .filter(|(_, e)| matches!(e, PthEffect::WouldExecute { finder: None, .. }))
        .count();
    if unmodelled > 0 {
        out.push(format!(
            "{unmodelled} .pth import line(s) (listed under would-execute) run code at start-up; what they do to sys.path or sys.meta_path is not modelled"
        ));
    }
    out
}

fn step_where(step: &Step, located: &Located) -> String {
    match &step.by {
        By::Builtin => "builtin module".into(),
        By::Frozen => "frozen module".into(),
        By::PathEntry {
            entry,
            sys_path_index: Some(i),
        } => {
            let origin = &located.sys_path.entries[*i].origin;
            let from = match origin {
                Origin::Pth { file, line } => format!(", added by {}:{line}", escape::path(file)),
                o => format!(", {}", o.name()),
            };
            format!("in sys.path[{i}] {}{from}", escape::path(entry))
        }
        By::PathEntry {
            entry,
            sys_path_index: None,
        } => {
            format!("in {}", escape::path(entry))
        }
        By::PathNamespace => "namespace package (no __init__ in any portion)".into(),
        By::Editable { finder } => {
            let f = &located.sys_path.finders[*finder];
            format!(
                "by setuptools editable finder {} (installed by {})",
                f.module,
                escape::path(&f.pth)
            )
        }
    }
}

fn found_text(found: &Found) -> String {
    match found {
        Found::Builtin | Found::Frozen => found.kind_name().into(),
        Found::Module { file, kind } => format!("{} {}", kind.name(), escape::path(file)),
        Found::Package { init, .. } => format!("package {}", escape::path(init)),
        Found::Namespace { portions } => format!(
            "namespace package over {}",
            portions
                .iter()
                .map(|p| escape::path(p).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn write_human<W: Write>(out: &mut W, w: &WhyOutput<'_>) -> io::Result<()> {
    let located = w.located;
    let r = &located.resolution;
    writeln!(
        out,
        "{BOLD}import {}{BOLD:#} with {} ({}; {})",
        w.module,
        w.interpreter.display_name(),
        escape::path(w.executable),
        escape::text(w.chosen)
    )?;
    match (r.found(), error_text(&r.end)) {
        (Some(step), _) => {
            let loads = match step.found.file() {
                Some((file, kind)) => format!("{} ({})", escape::path(file), kind.name()),
                None => found_text(&step.found),
            };
            writeln!(out, "  {BOLD}loads{BOLD:#}     {loads}")?;
        }
        (None, Some(error)) if matches!(r.end, End::NotFollowed { .. }) => {
            writeln!(out, "  {BOLD}stops{BOLD:#}     {}", escape::text(&error))?;
        }
        (None, Some(error)) => {
            let style = severity_style(crate::verdict::Severity::Error);
            writeln!(
                out,
                "  {style}fails{style:#}     ModuleNotFoundError: {}",
                escape::text(&error)
            )?;
        }
        (None, None) => {}
    }
    for (i, step) in r.steps.iter().enumerate() {
        let label = if i == 0 { "found" } else { "" };
        writeln!(
            out,
            "  {BOLD}{label:<10}{BOLD:#}{}: {}, {}",
            step.name,
            found_text(&step.found),
            step_where(step, located)
        )?;
    }
    for link in &located.sys_path.egg_links {
        writeln!(
            out,
            "  {BOLD}egg-link{BOLD:#}  {} → {}",
            escape::path(&link.file),
            escape::path(&link.target)
        )?;
    }
    for f in &located.sys_path.finders {
        let mapped: Vec<String> = f
            .mapping
            .iter()
            .map(|(k, p)| format!("{k} → {}", escape::path(p)))
            .collect();
        writeln!(
            out,
            "  {BOLD}editable{BOLD:#}  {} ({}): {}",
            f.module,
            escape::path(&f.pth),
            if mapped.is_empty() {
                "maps nothing".to_owned()
            } else {
                mapped.join(", ")
            }
        )?;
    }
    if let Some(cache) = w.cache {
        let l = &cache.location;
        let what = match (&l.tag, &l.prefix) {
            _ if l.is_the_module => "the module itself is bytecode".to_owned(),
            (Some(tag), Some(prefix)) => format!(
                "{tag}, optimisation {}, under the pycache prefix {}",
                l.optimization,
                escape::path(prefix)
            ),
            (Some(tag), None) => format!("{tag}, optimisation {}", l.optimization),
            (None, _) => format!("beside the source, optimisation {}", l.optimization),
        };
        writeln!(
            out,
            "  {BOLD}cache{BOLD:#}     {} ({what})",
            escape::path(&l.path)
        )?;
        match (&cache.entry, &cache.error) {
            (Some(entry), _) => {
                let v = &entry.verdict;
                let style = severity_style(v.severity);
                let checked = match v.checked {
                    crate::verdict::Checked::Deep => "proven against its source",
                    crate::verdict::Checked::Hash => "checked by its source hash",
                    crate::verdict::Checked::Header => "judged by header",
                };
                let reason = messages::reason(v)
                    .map(|r| format!(": {}", escape::text(&r)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "            {style}{}{style:#} ({}, {checked}){reason}",
                    v.state.name(),
                    v.severity.name(),
                )?;
            }
            (None, Some(error)) => writeln!(out, "            not judged: {}", escape::text(error))?,
            (None, None) if !cache.exists => writeln!(
                out,
                "            {DIM}none: the interpreter compiles the source at import (and writes this cache when it may){DIM:#}"
            )?,
            (None, None) => {}
        }
    }
    if !r.shadowed.is_empty() {
        writeln!(out, "  {BOLD}shadowed{BOLD:#}")?;
        for s in &r.shadowed {
            let why = match s.why {
                crate::why::importer::ShadowReason::SameDirectory => "loses in the same directory",
                crate::why::importer::ShadowReason::EarlierEntry => "an earlier path entry wins",
                crate::why::importer::ShadowReason::NamespacePortion => {
                    "a namespace portion; a package or module wins"
                }
                crate::why::importer::ShadowReason::EditableNotReached => {
                    "mapped by an editable finder, which the path finder comes before"
                }
            };
            writeln!(
                out,
                "            {} {}: {} ({why})",
                s.name,
                s.what,
                escape::path(&s.path)
            )?;
        }
    }
    let would: Vec<_> = located.sys_path.would_execute().collect();
    if !would.is_empty() {
        writeln!(out, "  {BOLD}would execute{BOLD:#} (site runs these .pth lines at start-up; pycguard did not)")?;
        for (file, line, code) in would {
            writeln!(
                out,
                "            {}:{line}: {}",
                escape::path(file),
                escape::text(code)
            )?;
        }
    }
    let notes = notes(located);
    if !notes.is_empty() {
        writeln!(out, "  {BOLD}not followed{BOLD:#}")?;
        for n in notes {
            writeln!(out, "            {n}")?;
        }
    }
    writeln!(out, "  {BOLD}sys.path{BOLD:#}")?;
    for (i, e) in located.sys_path.entries.iter().enumerate() {
        let origin = match &e.origin {
            Origin::Pth { file, line } => format!("{}:{line}", escape::path(file)),
            o => o.name().to_owned(),
        };
        writeln!(
            out,
            "  {i:>8}  {}  {DIM}{origin}{DIM:#}",
            escape::path(&e.path)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonWhy<'a> {
    schema: u32,
    module: &'a str,
    interpreter: JsonInterpreter<'a>,
    found: bool,
    error: Option<String>,
    kind: Option<&'static str>,
    file: Option<JsonPath<'a>>,
    file_kind: Option<&'static str>,
    steps: Vec<JsonStep<'a>>,
    cache: Option<JsonCache<'a>>,
    shadowed: Vec<JsonShadowed<'a>>,
    would_execute: Vec<JsonExec<'a>>,
    not_followed: Vec<String>,
    sys_path: Vec<JsonEntry<'a>>,
    venv: Option<JsonVenv<'a>>,
    editable_finders: Vec<JsonFinder<'a>>,
    egg_links: Vec<JsonEggLink<'a>>,
}

#[derive(Serialize)]
struct JsonInterpreter<'a> {
    path: JsonPath<'a>,
    resolved: JsonPath<'a>,
    version: &'a str,
    tag: Option<&'a str>,
    chosen: &'a str,
}

#[derive(Serialize)]
struct JsonStep<'a> {
    name: &'a str,
    kind: &'static str,
    file: Option<JsonPath<'a>>,
    portions: Vec<JsonPath<'a>>,
    by: &'static str,
    entry: Option<JsonPath<'a>>,
    sys_path_index: Option<usize>,
    editable_finder: Option<JsonPath<'a>>,
}

#[derive(Serialize)]
struct JsonCache<'a> {
    path: JsonPath<'a>,
    tag: Option<&'a str>,
    optimization: u8,
    pycache_prefix: Option<JsonPath<'a>>,
    is_the_module: bool,
    exists: bool,
    verdict: Option<Box<RawValue>>,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonShadowed<'a> {
    name: &'a str,
    path: JsonPath<'a>,
    what: &'static str,
    why: &'static str,
}

#[derive(Serialize)]
struct JsonExec<'a> {
    pth: JsonPath<'a>,
    line: usize,
    code: &'a str,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    path: JsonPath<'a>,
    origin: &'static str,
    pth: Option<JsonPath<'a>>,
    line: Option<usize>,
}

#[derive(Serialize)]
struct JsonVenv<'a> {
    path: JsonPath<'a>,
    config: JsonPath<'a>,
    include_system_site_packages: bool,
}

#[derive(Serialize)]
struct JsonFinder<'a> {
    pth: JsonPath<'a>,
    module: &'a str,
    file: Option<JsonPath<'a>>,
    mapping: BTreeMap<&'a str, JsonPath<'a>>,
    namespaces: BTreeMap<&'a str, Vec<JsonPath<'a>>>,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonEggLink<'a> {
    file: JsonPath<'a>,
    target: JsonPath<'a>,
}

fn json<'a>(w: &'a WhyOutput<'a>) -> io::Result<JsonWhy<'a>> {
    let located = w.located;
    let r = &located.resolution;
    let found = r.found();
    let cache = match w.cache {
        Some(c) => {
            let verdict = match &c.entry {
                Some(e) => {
                    let mut text = Vec::new();
                    crate::output::json::write_entry(&mut text, e)?;
                    let text = String::from_utf8(text).map_err(io::Error::other)?;
                    Some(RawValue::from_string(text).map_err(io::Error::from)?)
                }
                None => None,
            };
            Some(JsonCache {
                path: JsonPath(&c.location.path),
                tag: c.location.tag.as_deref(),
                optimization: c.location.optimization,
                pycache_prefix: c.location.prefix.as_deref().map(JsonPath),
                is_the_module: c.location.is_the_module,
                exists: c.exists,
                verdict,
                error: c.error.as_deref(),
            })
        }
        None => None,
    };
    Ok(JsonWhy {
        schema: SCHEMA,
        module: w.module,
        interpreter: JsonInterpreter {
            path: JsonPath(w.executable),
            resolved: JsonPath(&w.interpreter.resolved),
            version: &w.interpreter.version,
            tag: w.interpreter.cache_tag.as_deref(),
            chosen: w.chosen,
        },
        found: found.is_some(),
        error: error_text(&r.end),
        kind: found.map(|s| s.found.kind_name()),
        file: found.and_then(|s| s.found.file()).map(|(p, _)| JsonPath(p)),
        file_kind: found.and_then(|s| s.found.file()).map(|(_, k)| k.name()),
        steps: r
            .steps
            .iter()
            .map(|s| {
                let (by, entry, index, finder) = match &s.by {
                    By::Builtin => ("builtin", None, None, None),
                    By::Frozen => ("frozen", None, None, None),
                    By::PathEntry {
                        entry,
                        sys_path_index,
                    } => ("path", Some(JsonPath(entry)), *sys_path_index, None),
                    By::PathNamespace => ("namespace", None, None, None),
                    By::Editable { finder } => (
                        "editable",
                        None,
                        None,
                        located.sys_path.finders[*finder]
                            .file
                            .as_deref()
                            .map(JsonPath),
                    ),
                };
                JsonStep {
                    name: &s.name,
                    kind: s.found.kind_name(),
                    file: s.found.file().map(|(p, _)| JsonPath(p)),
                    portions: match &s.found {
                        Found::Namespace { portions } => {
                            portions.iter().map(|p| JsonPath(p)).collect()
                        }
                        _ => Vec::new(),
                    },
                    by,
                    entry,
                    sys_path_index: index,
                    editable_finder: finder,
                }
            })
            .collect(),
        cache,
        shadowed: r
            .shadowed
            .iter()
            .map(|s| JsonShadowed {
                name: &s.name,
                path: JsonPath(&s.path),
                what: s.what,
                why: s.why.name(),
            })
            .collect(),
        would_execute: located
            .sys_path
            .would_execute()
            .map(|(pth, line, code)| JsonExec {
                pth: JsonPath(pth),
                line,
                code,
            })
            .collect(),
        not_followed: notes(located),
        sys_path: located
            .sys_path
            .entries
            .iter()
            .map(|e| {
                let (pth, line) = match &e.origin {
                    Origin::Pth { file, line } => (Some(JsonPath(file.as_path())), Some(*line)),
                    _ => (None, None),
                };
                JsonEntry {
                    path: JsonPath(&e.path),
                    origin: e.origin.name(),
                    pth,
                    line,
                }
            })
            .collect(),
        venv: located.sys_path.venv.as_ref().map(|v| JsonVenv {
            path: JsonPath(&v.dir),
            config: JsonPath(&v.config),
            include_system_site_packages: v.include_system_site_packages,
        }),
        editable_finders: located
            .sys_path
            .finders
            .iter()
            .map(|f| JsonFinder {
                pth: JsonPath(&f.pth),
                module: &f.module,
                file: f.file.as_deref().map(JsonPath),
                mapping: f
                    .mapping
                    .iter()
                    .map(|(k, p)| (k.as_str(), JsonPath(p)))
                    .collect(),
                namespaces: f
                    .namespaces
                    .iter()
                    .map(|(k, ps)| (k.as_str(), ps.iter().map(|p| JsonPath(p)).collect()))
                    .collect(),
                error: f.error.as_deref(),
            })
            .collect(),
        egg_links: located
            .sys_path
            .egg_links
            .iter()
            .map(|l| JsonEggLink {
                file: JsonPath(&l.file),
                target: JsonPath(&l.target),
            })
            .collect(),
    })
}
