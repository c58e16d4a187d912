//! The config file: finding it, reading it, and checking every key and value.
//!
//! Settings live in `.pycguard.toml` or `pycguard.toml` (keys at the top level), or in
//! `pyproject.toml` under `[tool.pycguard]`. As with ruff, one file is used and files are
//! never merged: in each directory from the first PATH's (its parent's, for a file) up to
//! `/`, `.pycguard.toml` wins over `pycguard.toml`, which wins over a `pyproject.toml`
//! that has a `[tool.pycguard]` table (one without it is passed over); the first
//! directory holding one of them decides. `--config FILE` names the file instead (read as
//! `pyproject.toml` when it is named so), `--isolated` reads none.
//!
//! Keys are the long flags in kebab-case. The top level takes the settings several
//! commands share; a table per command (`[tool.pycguard.fix]`, or `[fix]` in
//! `pycguard.toml`) takes that command's flags, and what it sets replaces the top level's
//! value for that command. Relative paths (`cache-dir`, `pycache-prefix`, `python`)
//! are resolved against the file's directory; `exclude` globs match as the flag's do
//! (a name, or a path relative to PATH).
//!
//! | key | top level | check | fix | clean | compile | inspect | interpreters |
//! |---|---|---|---|---|---|---|---|
//! | `exclude`, `include-venvs`, `jobs`, `cache-dir`, `no-cache` | ✔ | ✔ | ✔ | ✔ | ✔ | | ✔ |
//! | `pycache-prefix`, `output-format` | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ | ✔ |
//! | `python` | ✔ | ✔ | ✔ | | ✔ | | ✔ |
//! | `timeout` | ✔ | ✔ | ✔ | | ✔ | | |
//! | `invalidation-mode` | ✔ | | ✔ | | ✔ | | |
//! | `deep` | | ✔ | ✔ | | | | |
//! | `strict`, `exit-zero` | | ✔ | | | | | |
//! | `shallow`, `delete`, `include` | | | ✔ | | | | |
//! | `state`, `tag`, `debris` | | | | ✔ | | | |
//!
//! Not in a file, because they describe one run rather than the project: the PATHs,
//! `--dry-run`, `--quiet`, `--verbose`, `--force`, `-O`, `--color`.
//!
//! An unknown key, a value of the wrong type or out of range, or two keys that contradict
//! each other is an error (exit 2) naming the file, the line and column, and for an
//! unknown key the keys accepted there. The types below use neither `#[serde(flatten)]`
//! nor untagged enums, which would lose the position.

use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use toml::Spanned;

use crate::cli::{self, Format, InvalidationMode};
use crate::escape;
use crate::layout::lexically_absolute;
use crate::read::{self, Follow, ReadError};
use crate::verdict::State;

/// The names a config file may have, in the order they win within one directory.
pub const FILE_NAMES: [&str; 3] = [".pycguard.toml", "pycguard.toml", "pyproject.toml"];

/// The largest config file read (far above any real one).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A config file that cannot be used (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the config file {}: {err}", escape::path(.path))]
    Read { path: PathBuf, err: ReadError },
    /// `FILE:LINE:COLUMN: what is wrong`.
    #[error("{}:{line}:{column}: {message}", escape::path(.path))]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The config file in effect.
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// The file (absolute); `None` when there is none.
    pub path: Option<PathBuf>,
    /// Its top-level settings and tables.
    pub options: Options,
}

/// Where to look for the config file.
#[derive(Clone, Copy, Debug)]
pub enum Lookup<'a> {
    /// `--isolated`.
    None,
    /// `--config FILE` (absolute).
    File(&'a Path),
    /// The closest at or above this directory (absolute).
    Above(&'a Path),
}

/// Find and read the config file.
pub fn load(lookup: Lookup<'_>) -> Result<ConfigFile, FileError> {
    match lookup {
        Lookup::None => Ok(ConfigFile::default()),
        Lookup::File(path) => {
            let text = read_text(path)?;
            let is_pyproject = path.file_name().is_some_and(|n| n == "pyproject.toml");
            let options = parse(path, &text, is_pyproject)?.unwrap_or_default();
            Ok(ConfigFile {
                path: Some(path.to_path_buf()),
                options,
            })
        }
        Lookup::Above(start) => {
            for dir in start.ancestors() {
                for name in FILE_NAMES {
                    let path = dir.join(name);
                    // Only a regular file (through a link) is a config file: a directory
                    // or a FIFO of that name is not one, and is never opened.
                    if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                        continue;
                    }
                    let text = read_text(&path)?;
                    if let Some(options) = parse(&path, &text, name == "pyproject.toml")? {
                        return Ok(ConfigFile {
                            path: Some(path),
                            options,
                        });
                    }
                }
            }
            Ok(ConfigFile::default())
        }
    }
}

fn read_text(path: &Path) -> Result<String, FileError> {
    let bytes =
        read::read(path, Follow::Yes, "the config file", MAX_CONFIG_BYTES).map_err(|err| {
            FileError::Read {
                path: path.to_path_buf(),
                err,
            }
        })?;
    String::from_utf8(bytes).map_err(|e| FileError::Invalid {
        path: path.to_path_buf(),
        line: 1,
        column: 1,
        message: format!(
            "not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Parse a config file's text; `None` for a `pyproject.toml` without `[tool.pycguard]`.
pub fn parse(path: &Path, text: &str, is_pyproject: bool) -> Result<Option<Options>, FileError> {
    let invalid = |e: toml::de::Error| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_and_column(text, span.start));
        FileError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message: reword(e.message().trim_end()),
        }
    };
    let options = if is_pyproject {
        let project: PyProject = toml::from_str(text).map_err(invalid)?;
        match project.tool.and_then(|t| t.pycguard) {
            Some(options) => options,
            None => return Ok(None),
        }
    } else {
        toml::from_str::<Options>(text).map_err(invalid)?
    };
    options.check_conflicts().map_err(|(span, message)| {
        let (line, column) = line_and_column(text, span.start);
        FileError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })?;
    Ok(Some(options))
}

/// serde's "unknown field `x`, expected one of `a`, `b`" in the words of a config file.
fn reword(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field ") else {
        return message.to_owned();
    };
    match rest.split_once(", expected ") {
        Some((key, expected)) => {
            let expected = expected.strip_prefix("one of ").unwrap_or(expected);
            format!("unknown key {key}; the keys accepted here are {expected}")
        }
        None => format!("unknown key {}", rest.replace(", there are no fields", "")),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `pyproject.toml`: everything but `[tool.pycguard]` is someone else's.
#[derive(Deserialize)]
struct PyProject {
    tool: Option<PyProjectTool>,
}

#[derive(Deserialize)]
struct PyProjectTool {
    pycguard: Option<Options>,
}

macro_rules! checked_value {
    ($name:ident, $inner:ty, |$v:ident| $body:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let $v = <$inner>::deserialize(d)?;
                $body.map($name).map_err(D::Error::custom)
            }
        }
    };
}

/// A number in a range, read from a TOML integer (or, with `float`, a float too).
struct Number {
    expected: &'static str,
    float: bool,
}

impl serde::de::Visitor<'_> for Number {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
        if self.float {
            Ok(v)
        } else {
            Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
        }
    }
}

/// `jobs`: as `--jobs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jobs(pub usize);

impl<'de> Deserialize<'de> for Jobs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(Number {
            expected: cli::JOBS_RANGE,
            float: false,
        })?;
        if n >= 1.0 && n <= cli::MAX_JOBS as f64 {
            Ok(Jobs(n as usize))
        } else {
            Err(D::Error::custom(format!(
                "jobs must be {}, not {n}",
                cli::JOBS_RANGE
            )))
        }
    }
}

/// `timeout`: as `--timeout` (an integer or a float).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timeout(pub f64);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = d.deserialize_any(Number {
            expected: cli::TIMEOUT_RANGE,
            float: true,
        })?;
        if cli::valid_timeout(secs) {
            Ok(Timeout(secs))
        } else {
            Err(D::Error::custom(format!(
                "timeout must be {}, not {secs}",
                cli::TIMEOUT_RANGE
            )))
        }
    }
}

/// One `exclude` glob, compiled to check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobText(pub String);
checked_value!(GlobText, String, |glob| match globset::Glob::new(&glob) {
    Ok(_) => Ok(glob),
    Err(e) => Err(format!("invalid glob {glob:?}: {}", e.kind())),
});

/// A state name (`include`, `state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateName(pub State);
checked_value!(StateName, String, |name| State::from_name(&name)
    .ok_or_else(|| format!(
        "unknown state {name:?} (states: {})",
        State::ALL.map(State::name).join(", ")
    )));

/// A cache tag (`tag`), as `--tag` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagName(pub String);
checked_value!(TagName, String, |tag| crate::scan::check_tag(&tag)
    .map(|()| tag.clone())
    .map_err(|e| e.to_string()));

/// A value of one of the flag's choices (`output-format`, `invalidation-mode`): the names
/// are the command line's, so the two cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice<T>(pub T);

impl<'de, T: ValueEnum> Deserialize<'de> for Choice<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        T::from_str(&name, false).map(Choice).map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .map(|p| format!("`{}`", p.get_name()))
                .collect();
            D::Error::custom(format!(
                "unknown value `{name}`, expected {}",
                names.join(" or ")
            ))
        })
    }
}

/// Define a table of keys: each an `Option` (absent: not set here).
macro_rules! table {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct $name {
            $($(#[$fmeta])* pub $field: Option<$ty>,)*
        }

        impl $name {
            /// Its keys as one layer (keys this table cannot hold are unset).
            pub fn layer(&self) -> Layer {
                Layer {
                    $($field: self.$field.clone(),)*
                    ..Layer::default()
                }
            }
        }
    };
}

/// The top level (`[tool.pycguard]`, or all of `pycguard.toml`): settings shared by
/// several commands, and the per-command tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    pub exclude: Option<Vec<GlobText>>,
    pub include_venvs: Option<bool>,
    pub jobs: Option<Jobs>,
    pub pycache_prefix: Option<PathBuf>,
    pub cache_dir: Option<Spanned<PathBuf>>,
    pub no_cache: Option<Spanned<bool>>,
    pub python: Option<Vec<PathBuf>>,
    pub timeout: Option<Timeout>,
    pub output_format: Option<Choice<Format>>,
    pub invalidation_mode: Option<Choice<InvalidationMode>>,
    pub check: Option<CheckTable>,
    pub fix: Option<FixTable>,
    pub clean: Option<CleanTable>,
    pub compile: Option<CompileTable>,
    pub inspect: Option<InspectTable>,
    pub interpreters: Option<InterpretersTable>,
    pub why: Option<WhyTable>,
}

impl Options {
    /// The top level's values that `command` has a flag for (a top-level `timeout`
    /// means nothing to `clean`).
    fn shared_layer(&self, command: CommandName) -> Layer {
        let has = |key: Key| command.has(key);
        Layer {
            exclude: self.exclude.clone().filter(|_| has(Key::Exclude)),
            include_venvs: self.include_venvs.filter(|_| has(Key::Walk)),
            jobs: self.jobs.filter(|_| has(Key::Walk)),
            pycache_prefix: self.pycache_prefix.clone(),
            cache_dir: self.cache_dir.clone().filter(|_| has(Key::Walk)),
            no_cache: self.no_cache.clone().filter(|_| has(Key::Walk)),
            python: self.python.clone().filter(|_| has(Key::Python)),
            timeout: self.timeout.filter(|_| has(Key::Timeout)),
            output_format: self.output_format,
            invalidation_mode: self
                .invalidation_mode
                .filter(|_| has(Key::InvalidationMode)),
            ..Layer::default()
        }
    }

    /// What the file sets for `command`: its table's values over the top level's.
    fn layer(&self, command: CommandName) -> Layer {
        let table = match command {
            CommandName::Check => self.check.as_ref().map(CheckTable::layer),
            CommandName::Fix => self.fix.as_ref().map(FixTable::layer),
            CommandName::Clean => self.clean.as_ref().map(CleanTable::layer),
            CommandName::Compile => self.compile.as_ref().map(CompileTable::layer),
            CommandName::Inspect => self.inspect.as_ref().map(InspectTable::layer),
            CommandName::Interpreters => self.interpreters.as_ref().map(InterpretersTable::layer),
            CommandName::Why => self.why.as_ref().map(WhyTable::layer),
        };
        let shared = self.shared_layer(command);
        match table {
            Some(table) => table.over(shared),
            None => shared,
        }
    }

    /// Keys that contradict each other as one command sees them (in its table, or its
    /// table and the top level): the position of the later one, and why.
    fn check_conflicts(&self) -> Result<(), (Range<usize>, String)> {
        let later = |a: Range<usize>, b: Range<usize>| if a.start > b.start { a } else { b };
        for command in CommandName::ALL {
            let layer = self.layer(command);
            if let (Some(dir), Some(no)) = (&layer.cache_dir, &layer.no_cache) {
                if *no.get_ref() {
                    return Err((
                        later(dir.span(), no.span()),
                        "cache-dir and no-cache = true contradict each other".into(),
                    ));
                }
            }
            if let (Some(strict), Some(zero)) = (&layer.strict, &layer.exit_zero) {
                if *strict.get_ref() && *zero.get_ref() {
                    return Err((
                        later(strict.span(), zero.span()),
                        "strict = true and exit-zero = true contradict each other".into(),
                    ));
                }
            }
            if let (Some(deep), Some(shallow)) = (&layer.deep, &layer.shallow) {
                if deep.get_ref() == shallow.get_ref() {
                    return Err((
                        later(deep.span(), shallow.span()),
                        format!(
                            "deep = {} and shallow = {} contradict each other",
                            deep.get_ref(),
                            shallow.get_ref()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

table! {
    /// `[tool.pycguard.check]`.
    CheckTable {
        exclude: Vec<GlobText>,
        include_venvs: bool,
        jobs: Jobs,
        pycache_prefix: PathBuf,
        cache_dir: Spanned<PathBuf>,
        no_cache: Spanned<bool>,
        python: Vec<PathBuf>,
        timeout: Timeout,
        output_format: Choice<Format>,
        deep: Spanned<bool>,
        strict: Spanned<bool>,
        exit_zero: Spanned<bool>,
    }
}

table! {
    /// `[tool.pycguard.fix]`.
    FixTable {
        exclude: Vec<GlobText>,
        include_venvs: bool,
        jobs: Jobs,
        pycache_prefix: PathBuf,
        cache_dir: Spanned<PathBuf>,
        no_cache: Spanned<bool>,
        python: Vec<PathBuf>,
        timeout: Timeout,
        output_format: Choice<Format>,
        invalidation_mode: Choice<InvalidationMode>,
        deep: Spanned<bool>,
        shallow: Spanned<bool>,
        delete: bool,
        include: Vec<StateName>,
    }
}

table! {
    /// `[tool.pycguard.clean]`.
    CleanTable {
        exclude: Vec<GlobText>,
        include_venvs: bool,
        jobs: Jobs,
        pycache_prefix: PathBuf,
        cache_dir: Spanned<PathBuf>,
        no_cache: Spanned<bool>,
        output_format: Choice<Format>,
        state: Vec<StateName>,
        tag: Vec<TagName>,
        debris: bool,
    }
}

table! {
    /// `[tool.pycguard.compile]`.
    CompileTable {
        exclude: Vec<GlobText>,
        include_venvs: bool,
        jobs: Jobs,
        pycache_prefix: PathBuf,
        cache_dir: Spanned<PathBuf>,
        no_cache: Spanned<bool>,
        python: Vec<PathBuf>,
        timeout: Timeout,
        output_format: Choice<Format>,
        invalidation_mode: Choice<InvalidationMode>,
    }
}

table! {
    /// `[tool.pycguard.inspect]`.
    InspectTable {
        pycache_prefix: PathBuf,
        output_format: Choice<Format>,
    }
}

table! {
    /// `[tool.pycguard.interpreters]`.
    InterpretersTable {
        exclude: Vec<GlobText>,
        include_venvs: bool,
        jobs: Jobs,
        pycache_prefix: PathBuf,
        cache_dir: Spanned<PathBuf>,
        no_cache: Spanned<bool>,
        python: Vec<PathBuf>,
        output_format: Choice<Format>,
    }
}

table! {
    /// `[tool.pycguard.why]`.
    WhyTable {
        pycache_prefix: PathBuf,
        cache_dir: Spanned<PathBuf>,
        no_cache: Spanned<bool>,
        python: Vec<PathBuf>,
        timeout: Timeout,
        output_format: Choice<Format>,
    }
}

/// Every key any table may hold, as one command sees them: its table's values over the
/// top level's. The settings layer reads this; `None` means "not in the file".
#[derive(Clone, Debug, Default)]
pub struct Layer {
    pub exclude: Option<Vec<GlobText>>,
    pub include_venvs: Option<bool>,
    pub jobs: Option<Jobs>,
    pub pycache_prefix: Option<PathBuf>,
    pub cache_dir: Option<Spanned<PathBuf>>,
    pub no_cache: Option<Spanned<bool>>,
    pub python: Option<Vec<PathBuf>>,
    pub timeout: Option<Timeout>,
    pub output_format: Option<Choice<Format>>,
    pub invalidation_mode: Option<Choice<InvalidationMode>>,
    pub deep: Option<Spanned<bool>>,
    pub shallow: Option<Spanned<bool>>,
    pub strict: Option<Spanned<bool>>,
    pub exit_zero: Option<Spanned<bool>>,
    pub delete: Option<bool>,
    pub include: Option<Vec<StateName>>,
    pub state: Option<Vec<StateName>>,
    pub tag: Option<Vec<TagName>>,
    pub debris: Option<bool>,
}

/// The commands, for choosing their table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandName {
    Check,
    Fix,
    Clean,
    Compile,
    Inspect,
    Interpreters,
    Why,
}

/// Groups of shared keys, by which commands have them.
#[derive(Clone, Copy)]
enum Key {
    /// `exclude`.
    Exclude,
    /// `include-venvs`, `jobs`, `cache-dir`, `no-cache`.
    Walk,
    Python,
    Timeout,
    InvalidationMode,
}

impl CommandName {
    const ALL: [CommandName; 7] = [
        CommandName::Check,
        CommandName::Fix,
        CommandName::Clean,
        CommandName::Compile,
        CommandName::Inspect,
        CommandName::Interpreters,
        CommandName::Why,
    ];

    /// Does the command have the flags of this key group?
    fn has(self, key: Key) -> bool {
        use CommandName::*;
        match key {
            Key::Exclude | Key::Walk => self != Inspect,
            Key::Python => matches!(self, Check | Fix | Compile | Interpreters | Why),
            Key::Timeout => matches!(self, Check | Fix | Compile | Why),
            Key::InvalidationMode => matches!(self, Fix | Compile),
        }
    }
}

impl Layer {
    /// `self`'s values where set, else `below`'s.
    fn over(self, below: Layer) -> Layer {
        macro_rules! pick {
            ($($field:ident),*) => { Layer { $($field: self.$field.or(below.$field),)* } };
        }
        pick!(
            exclude,
            include_venvs,
            jobs,
            pycache_prefix,
            cache_dir,
            no_cache,
            python,
            timeout,
            output_format,
            invalidation_mode,
            deep,
            shallow,
            strict,
            exit_zero,
            delete,
            include,
            state,
            tag,
            debris
        )
    }

    /// Relative paths made absolute against the config file's directory.
    fn anchored(mut self, dir: &Path) -> Layer {
        let anchor = |p: &Path| lexically_absolute(dir, p);
        self.pycache_prefix = self.pycache_prefix.as_deref().map(anchor);
        self.cache_dir = self
            .cache_dir
            .map(|s| Spanned::new(s.span(), anchor(s.get_ref())));
        self.python = self
            .python
            .map(|list| list.iter().map(|p| anchor(p)).collect());
        self
    }
}

impl ConfigFile {
    /// What the file sets for `command`: its table over the top level, relative paths
    /// resolved against the file's directory.
    pub fn layer(&self, command: CommandName) -> Layer {
        let layer = self.options.layer(command);
        match self.path.as_deref().and_then(Path::parent) {
            Some(dir) => layer.anchored(dir),
            None => layer,
        }
    }
}
