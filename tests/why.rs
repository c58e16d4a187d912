//! `pycguard why MODULE`: which file `import MODULE` loads, compared with what the real
//! interpreter resolves (`importlib.util.find_spec`, run by the test on fixtures the test
//! made; Python 2.7: `imp.find_module`), and which cache it then executes.
//!
//! Fixtures: a package/module clash across `PYTHONPATH`, a ghost `.pyc`, a namespace
//! package over two directories, a `.pth` file with a path line and an `import` line
//! (whose code must not run: its marker file stays absent until the real interpreter
//! starts), a legacy egg-link with `easy-install.pth`, src-layout and flat-layout
//! editable installs made by real pip + setuptools (the flat one through setuptools'
//! finder, which a bare directory in the current directory shadows), and story 1's
//! replay: `why ingest.rss` names the stale cache behind the `AttributeError`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{tools, Interp, Tree};
use serde_json::Value;

/// What the real interpreter says `import module` finds: the origin (the file loaded),
/// the namespace/package search locations, and the cache it would use.
#[derive(Debug, PartialEq, Eq)]
struct Spec {
    origin: Option<String>,
    locations: Vec<String>,
    cached: Option<String>,
}

const FIND_SPEC: &str = r#"
import sys, json
name = sys.argv[1]
if sys.version_info[0] >= 3:
    import importlib.util
    s = importlib.util.find_spec(name)
    if s is None:
        sys.stdout.write(json.dumps({"origin": None, "locations": [], "cached": None}))
        sys.exit(0)
    origin = s.origin if s.origin not in (None, "namespace") else None
    if s.loader is None:
        origin = None
    out = {"origin": origin, "locations": list(s.submodule_search_locations or []), "cached": s.cached}
else:
    import imp, os
    path = None
    try:
        for part in name.split("."):
            f, pathname, desc = imp.find_module(part, path)
            if f:
                f.close()
            if desc[2] == imp.PKG_DIRECTORY:
                path = [pathname]
                f, pathname, desc = imp.find_module("__init__", path)
                if f:
                    f.close()
        out = {"origin": os.path.abspath(pathname), "locations": [os.path.abspath(p) for p in path or []], "cached": None}
    except ImportError:
        out = {"origin": None, "locations": [], "cached": None}
sys.stdout.write(json.dumps(out))
"#;

/// Environment both the oracle and pycguard get: nothing that changes caches, a HOME
/// with no user site, and `pythonpath` when given.
fn environment(cmd: &mut Command, home: &Path, pythonpath: Option<&str>) {
    environment_with(cmd, home, pythonpath, &[]);
}

fn environment_with(
    cmd: &mut Command,
    home: &Path,
    pythonpath: Option<&str>,
    vars: &[(&str, &str)],
) {
    for var in [
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPYCACHEPREFIX",
        "SOURCE_DATE_EPOCH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONOPTIMIZE",
        "PYTHONUSERBASE",
        "PYTHONNOUSERSITE",
        "PYTHONSAFEPATH",
        "VIRTUAL_ENV",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home);
    if let Some(p) = pythonpath {
        cmd.env("PYTHONPATH", p);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
}

/// `importlib.util.find_spec(module)` by `python` in `cwd` (`python -c`: the current
/// directory first on `sys.path`), bytecode writing off.
fn oracle_with(
    python: &Path,
    cwd: &Path,
    home: &Path,
    module: &str,
    pythonpath: Option<&str>,
    vars: &[(&str, &str)],
) -> Spec {
    let mut cmd = Command::new(python);
    environment_with(&mut cmd, home, pythonpath, vars);
    cmd.current_dir(cwd)
        .arg("-B")
        .arg("-c")
        .arg(FIND_SPEC)
        .arg(module);
    let out = tools::output_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{} find_spec({module}): {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Spec {
        origin: v["origin"].as_str().map(str::to_owned),
        locations: v["locations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect(),
        cached: v["cached"].as_str().map(str::to_owned),
    }
}

/// `pycguard why module --python python --output-format json` in `cwd`.
fn why(
    python: &Path,
    cwd: &Path,
    home: &Path,
    module: &str,
    pythonpath: Option<&str>,
    extra: &[&str],
) -> (Value, Output) {
    why_with(python, cwd, home, module, pythonpath, extra, &[])
}

fn why_with(
    python: &Path,
    cwd: &Path,
    home: &Path,
    module: &str,
    pythonpath: Option<&str>,
    extra: &[&str],
    vars: &[(&str, &str)],
) -> (Value, Output) {
    let mut cmd = common::pycguard();
    environment_with(&mut cmd, home, pythonpath, vars);
    cmd.current_dir(cwd)
        .args(["why", module, "--output-format", "json", "--python"])
        .arg(python)
        .args(extra);
    let out = tools::output_with_timeout(&mut cmd, Duration::from_secs(120));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "why {module}: bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (doc, out)
}

/// What pycguard says, in the oracle's terms.
fn spec_of(doc: &Value) -> Spec {
    let last = doc["steps"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or(Value::Null);
    let locations: Vec<String> = match last["kind"].as_str() {
        Some("namespace") => last["portions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect(),
        Some("package") => {
            let init = PathBuf::from(doc["file"].as_str().unwrap());
            vec![init.parent().unwrap().display().to_string()]
        }
        _ => Vec::new(),
    };
    Spec {
        origin: doc["file"].as_str().map(str::to_owned),
        locations,
        cached: doc["cache"]["path"].as_str().map(str::to_owned),
    }
}

/// Assert that pycguard and the interpreter agree on `module`; return pycguard's answer.
fn agree(
    python: &Interp,
    cwd: &Path,
    home: &Path,
    module: &str,
    pythonpath: Option<&str>,
) -> Value {
    agree_with(python, cwd, home, module, pythonpath, &[])
}

fn agree_with(
    python: &Interp,
    cwd: &Path,
    home: &Path,
    module: &str,
    pythonpath: Option<&str>,
    vars: &[(&str, &str)],
) -> Value {
    let (doc, out) = why_with(&python.path, cwd, home, module, pythonpath, &[], vars);
    let expected = oracle_with(&python.path, cwd, home, module, pythonpath, vars);
    let mut got = spec_of(&doc);
    if python.major == 2 {
        // imp.find_module names no cache; Python 2's is the .pyc beside the source.
        got.cached = None;
    }
    assert_eq!(
        got,
        expected,
        "{} {module}: pycguard disagrees with the interpreter\n{}\nstderr: {}",
        python.version,
        serde_json::to_string_pretty(&doc).unwrap(),
        String::from_utf8_lossy(&out.stderr)
    );
    doc
}

/// Run `f` for every interpreter in parallel.
fn each(interps: &[Interp], f: impl Fn(&Interp) + Sync) {
    assert!(!interps.is_empty(), "no interpreter found");
    std::thread::scope(|s| {
        for interp in interps {
            common::exercised(interp.major, interp.minor);
            let f = &f;
            s.spawn(move || f(interp));
        }
    });
}

fn shadowed(doc: &Value) -> Vec<(String, String)> {
    doc["shadowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_owned(),
                s["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn package_beats_module_and_earlier_entries_win() {
    each(&common::interpreters(), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        tree.write("cwd/clash/__init__.py", b"WHERE = 'package'\n");
        tree.write("cwd/clash.py", b"WHERE = 'module beside'\n");
        tree.write("extra/clash.py", b"WHERE = 'module on PYTHONPATH'\n");
        tree.write("extra/solo.py", b"WHERE = 'solo'\n");
        fs::create_dir_all(root.join("home")).unwrap();
        let cwd = root.join("cwd");
        let home = root.join("home");
        let pythonpath = root.join("extra").display().to_string();
        let doc = agree(py, &cwd, &home, "clash", Some(&pythonpath));
        assert_eq!(doc["kind"], "package");
        let shadows = shadowed(&doc);
        let beside = cwd.join("clash.py").display().to_string();
        let later = root.join("extra/clash.py").display().to_string();
        assert!(
            shadows.contains(&(beside, "same-directory".into())),
            "{shadows:?}"
        );
        assert!(
            shadows.contains(&(later, "earlier-entry".into())),
            "{shadows:?}"
        );
        if py.at_least(3, 11) {
            // PYTHONSAFEPATH: no current directory first, so PYTHONPATH's module wins.
            let safe = agree_with(
                py,
                &cwd,
                &home,
                "clash",
                Some(&pythonpath),
                &[("PYTHONSAFEPATH", "1")],
            );
            assert_eq!(safe["kind"], "module", "{safe}");
        }
        let solo = agree(py, &cwd, &home, "solo", Some(&pythonpath));
        assert_eq!(solo["sys_path"][1]["origin"], "pythonpath", "{solo}");
        // A module is not a package.
        let (doc, out) = why(&py.path, &cwd, &home, "solo.sub", Some(&pythonpath), &[]);
        assert_eq!(doc["found"], false);
        assert_eq!(out.status.code(), Some(1));
    });
}

#[test]
fn ghost_pyc_wins_when_the_source_is_gone() {
    each(&common::interpreters(), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        let cwd = root.join("app");
        tree.write("app/gone.py", b"VALUE = 'old'\n");
        tree.write("app/kept.py", b"VALUE = 'kept'\n");
        fs::create_dir_all(root.join("home")).unwrap();
        py.compile(&cwd, &["gone.py"], "legacy", 0);
        fs::remove_file(cwd.join("gone.py")).unwrap();
        assert_eq!(
            py.import_value(&cwd, "gone").as_deref(),
            Ok("old"),
            "the ghost is imported"
        );
        let doc = agree(py, &cwd, &root.join("home"), "gone", None);
        assert_eq!(doc["file_kind"], "sourceless");
        assert_eq!(doc["cache"]["is_the_module"], true);
        assert_eq!(doc["cache"]["verdict"]["state"], "ghost", "{doc}");
        let (_, out) = why(&py.path, &cwd, &root.join("home"), "gone", None, &[]);
        assert_eq!(out.status.code(), Some(1), "a ghost is an error");
        if py.at_least(3, 11) {
            // os is frozen on 3.11+: its submodules are not followed, which is no failure.
            let (doc, out) = why(&py.path, &cwd, &root.join("home"), "os.path", None, &[]);
            assert_eq!(doc["steps"][0]["kind"], "frozen", "{doc}");
            assert_eq!(out.status.code(), Some(0), "{doc}");
        }
        // A source beside its module: the source is loaded (and no cache exists yet).
        let kept = agree(py, &cwd, &root.join("home"), "kept", None);
        assert_eq!(kept["file_kind"], "source");
        assert_eq!(kept["cache"]["exists"], false);
    });
}

#[test]
fn namespace_package_over_two_directories() {
    each(&common::interpreters_from(3, 6), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        tree.write("a/ns/x.py", b"X = 1\n");
        tree.write("b/ns/y.py", b"Y = 1\n");
        fs::create_dir_all(root.join("cwd")).unwrap();
        fs::create_dir_all(root.join("home")).unwrap();
        let pythonpath = format!("{}:{}", root.join("a").display(), root.join("b").display());
        let home = root.join("home");
        let doc = agree(py, &root.join("cwd"), &home, "ns", Some(&pythonpath));
        assert_eq!(doc["kind"], "namespace");
        assert_eq!(doc["steps"][0]["portions"].as_array().unwrap().len(), 2);
        agree(py, &root.join("cwd"), &home, "ns.y", Some(&pythonpath));
        agree(py, &root.join("cwd"), &home, "ns.x", Some(&pythonpath));
    });
}

/// A fresh virtualenv without pip (fast), or `None` after a SKIP line.
fn bare_venv(py: &Interp, dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let out = Command::new(&py.path)
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "SKIP: {}: python -m venv failed: {}",
            py.version,
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let site = dir.join(format!("lib/python{}.{}/site-packages", py.major, py.minor));
    assert!(site.is_dir(), "{}", site.display());
    Some((dir.join("bin/python"), site))
}

/// Interpreters with `venv`, a few series to keep the time down (the model's venv rules
/// are the same for all; Debian's python3 has its own site-packages scheme).
fn venv_interpreters() -> Vec<Interp> {
    common::interpreters()
        .into_iter()
        .filter(|i| i.at_least(3, 6))
        .filter(|i| {
            [(3, 6), (3, 9), (3, 12), (3, 13)].contains(&(i.major, i.minor))
                || i.path.starts_with("/usr")
        })
        .collect()
}

#[test]
fn pth_import_lines_are_listed_never_run() {
    each(&venv_interpreters(), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        let Some((python, site)) = bare_venv(py, &root.join("venv")) else {
            return;
        };
        let marker = root.join("marker");
        tree.write("added/pthmod.py", b"VALUE = 1\n");
        let pth = format!(
            "# a comment\n{}\nimport os; open({:?}, 'w').close()\n{}/missing\n",
            root.join("added").display(),
            marker.display().to_string(),
            root.display()
        );
        fs::write(site.join("zz-test.pth"), pth).unwrap();
        let custom = root.join("customized");
        fs::write(
            site.join("sitecustomize.py"),
            format!("open({:?}, 'w').close()\n", custom.display().to_string()),
        )
        .unwrap();
        fs::create_dir_all(root.join("cwd")).unwrap();
        fs::create_dir_all(root.join("home")).unwrap();
        let interp = Interp {
            path: python.clone(),
            ..py.clone()
        };
        let (doc, out) = why(
            &python,
            &root.join("cwd"),
            &root.join("home"),
            "pthmod",
            None,
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !marker.exists(),
            "{}: pycguard ran a .pth import line",
            py.version
        );
        let lines: Vec<&Value> = doc["would_execute"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["pth"].as_str().unwrap().ends_with("zz-test.pth"))
            .collect();
        assert_eq!(lines.len(), 1, "{doc}");
        assert_eq!(lines[0]["line"], 3);
        assert!(lines[0]["code"]
            .as_str()
            .unwrap()
            .starts_with("import os; open("));
        assert_eq!(doc["venv"]["include_system_site_packages"], false);
        let entry = doc["sys_path"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["origin"] == "pth")
            .unwrap();
        assert_eq!(entry["line"], 2);
        // The interpreter itself agrees, and does run the line (the marker appears).
        agree(
            &interp,
            &root.join("cwd"),
            &root.join("home"),
            "pthmod",
            None,
        );
        assert!(
            marker.exists(),
            "{}: the oracle's site should have run the line",
            py.version
        );
    });
}

#[test]
fn legacy_egg_link_through_easy_install_pth() {
    each(&venv_interpreters(), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        let Some((python, site)) = bare_venv(py, &root.join("venv")) else {
            return;
        };
        let project = root.join("proj");
        tree.write("proj/eggpkg/__init__.py", b"").parent().unwrap();
        tree.write("proj/eggpkg/mod.py", b"VALUE = 1\n");
        // What `setup.py develop` (old `pip install -e`) leaves behind.
        fs::write(
            site.join("eggpkg.egg-link"),
            format!("{}\n.", project.display()),
        )
        .unwrap();
        fs::write(
            site.join("easy-install.pth"),
            format!("{}\n", project.display()),
        )
        .unwrap();
        fs::create_dir_all(root.join("cwd")).unwrap();
        fs::create_dir_all(root.join("home")).unwrap();
        let interp = Interp {
            path: python,
            ..py.clone()
        };
        let doc = agree(
            &interp,
            &root.join("cwd"),
            &root.join("home"),
            "eggpkg.mod",
            None,
        );
        assert_eq!(doc["egg_links"][0]["target"], project.display().to_string());
        let index = doc["steps"][0]["sys_path_index"].as_u64().unwrap() as usize;
        let entry = &doc["sys_path"][index];
        assert_eq!(entry["origin"], "pth", "{doc}");
        assert!(entry["pth"].as_str().unwrap().ends_with("easy-install.pth"));
    });
}

#[test]
fn cache_name_follows_optimize_and_the_pycache_prefix() {
    each(&common::interpreters_from(3, 8), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        tree.write("app/mod.py", b"VALUE = 1\n");
        fs::create_dir_all(root.join("home")).unwrap();
        let (cwd, home) = (root.join("app"), root.join("home"));
        let prefix = root.join("pfx").display().to_string();
        let vars = [
            ("PYTHONOPTIMIZE", "2"),
            ("PYTHONPYCACHEPREFIX", prefix.as_str()),
        ];
        let doc = agree_with(py, &cwd, &home, "mod", None, &vars);
        assert_eq!(doc["cache"]["optimization"], 2);
        assert_eq!(doc["cache"]["pycache_prefix"], prefix.as_str());
        // -O on pycguard's command line is python -O.
        let (flagged, _) = why(&py.path, &cwd, &home, "mod", None, &["-O"]);
        let expected = oracle_with(
            &py.path,
            &cwd,
            &home,
            "mod",
            None,
            &[("PYTHONOPTIMIZE", "1")],
        );
        assert_eq!(
            flagged["cache"]["path"].as_str(),
            expected.cached.as_deref()
        );
    });
}

#[test]
fn user_site_as_site_decides() {
    each(&common::interpreters(), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        let user_site = format!(
            "home/.local/lib/python{}.{}/site-packages",
            py.major, py.minor
        );
        tree.write(format!("{user_site}/usermod.py"), b"VALUE = 1\n");
        fs::create_dir_all(root.join("cwd")).unwrap();
        let (cwd, home) = (root.join("cwd"), root.join("home"));
        let doc = agree(py, &cwd, &home, "usermod", None);
        assert_eq!(doc["found"], true, "{}: {doc}", py.version);
        let on = agree_with(
            py,
            &cwd,
            &home,
            "usermod",
            None,
            &[("PYTHONNOUSERSITE", "1")],
        );
        assert_eq!(on["found"], false, "{}: PYTHONNOUSERSITE", py.version);
    });
}

#[test]
fn venv_with_system_site_packages() {
    each(&venv_interpreters(), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        let dir = root.join("venv");
        let out = Command::new(&py.path)
            .args(["-m", "venv", "--without-pip", "--system-site-packages"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let interp = Interp {
            path: dir.join("bin/python"),
            ..py.clone()
        };
        fs::create_dir_all(root.join("home")).unwrap();
        // The base installation's pip (the venv has none of its own).
        let doc = agree(&interp, &root, &root.join("home"), "pip", None);
        assert_eq!(doc["venv"]["include_system_site_packages"], true);
    });
}

const SETUPTOOLS: &str = "setuptools==80.9.0";

/// A fresh venv with pip (ensurepip's) and setuptools from PyPI; `None` after a SKIP.
fn setuptools_venv(py: &Interp, dir: &Path) -> Option<tools::ToolVenv> {
    let venv = tools::ToolVenv::create(py, dir);
    let out = pip(&venv, dir, &["install", SETUPTOOLS]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if tools::unreachable(&err) {
            eprintln!(
                "SKIP: cannot install {SETUPTOOLS} from PyPI: {}",
                err.lines().last().unwrap_or("")
            );
            return None;
        }
        panic!("pip install {SETUPTOOLS}: {err}");
    }
    Some(venv)
}

fn pip(venv: &tools::ToolVenv, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = venv.command(venv.python(), dir);
    cmd.args([
        "-m",
        "pip",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
    ])
    .args(args);
    tools::output_with_timeout(&mut cmd, Duration::from_secs(600))
}

#[test]
fn editable_installs_by_real_pip_and_setuptools() {
    let Some(py) = tools::default_python() else {
        eprintln!("SKIP: no Python 3.12 for the editable installs");
        return;
    };
    let tree = Tree::new();
    let root = fs::canonicalize(tree.path()).unwrap();
    let Some(venv) = setuptools_venv(&py, &root.join("venv")) else {
        return;
    };
    // src layout: setuptools writes a static .pth naming src/.
    tree.write(
        "srcproj/pyproject.toml",
        b"[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[project]\nname = \"srcpkg\"\nversion = \"0.1\"\n",
    );
    tree.write("srcproj/src/srcpkg/__init__.py", b"");
    tree.write("srcproj/src/srcpkg/core.py", b"VALUE = 1\n");
    // Flat layout: setuptools installs its editable finder (MAPPING literal).
    tree.write(
        "flatproj/pyproject.toml",
        b"[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[project]\nname = \"flatpkg\"\nversion = \"0.1\"\n[tool.setuptools]\npackages = [\"flatpkg\"]\n",
    );
    tree.write("flatproj/flatpkg/__init__.py", b"");
    tree.write("flatproj/flatpkg/core.py", b"VALUE = 1\n");
    // A package inside an implicit namespace: setuptools' NAMESPACES and its path
    // placeholder.
    tree.write(
        "nsproj/pyproject.toml",
        b"[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[project]\nname = \"nsdist\"\nversion = \"0.1\"\n[tool.setuptools]\npackages = [\"nsroot.pkg\"]\n",
    );
    tree.write("nsproj/nsroot/pkg/__init__.py", b"");
    tree.write("nsproj/nsroot/pkg/core.py", b"VALUE = 1\n");
    for project in ["srcproj", "flatproj", "nsproj"] {
        let out = pip(
            &venv,
            &root,
            &[
                "install",
                "--no-build-isolation",
                "--no-deps",
                "-e",
                &root.join(project).display().to_string(),
            ],
        );
        assert!(
            out.status.success(),
            "pip install -e {project}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::create_dir_all(root.join("cwd")).unwrap();
    fs::create_dir_all(root.join("home")).unwrap();
    let interp = venv.interp();
    let (cwd, home) = (root.join("cwd"), root.join("home"));
    let src = agree(&interp, &cwd, &home, "srcpkg.core", None);
    let index = src["steps"][0]["sys_path_index"].as_u64().unwrap() as usize;
    let entry = &src["sys_path"][index];
    assert_eq!(
        entry["path"],
        root.join("srcproj/src").display().to_string(),
        "{src}"
    );
    assert!(
        entry["pth"]
            .as_str()
            .unwrap()
            .contains("__editable__.srcpkg-0.1"),
        "{entry}"
    );
    let flat = agree(&interp, &cwd, &home, "flatpkg.core", None);
    assert_eq!(flat["steps"][0]["by"], "editable", "{flat}");
    assert_eq!(
        flat["editable_finders"][0]["mapping"]["flatpkg"],
        root.join("flatproj/flatpkg").display().to_string()
    );
    assert!(flat["would_execute"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["code"].as_str().unwrap().contains("install()")));
    let ns = agree(&interp, &cwd, &home, "nsroot", None);
    assert_eq!(ns["kind"], "namespace", "{ns}");
    let nspkg = agree(&interp, &cwd, &home, "nsroot.pkg.core", None);
    assert_eq!(nspkg["steps"][1]["by"], "editable", "{nspkg}");
    // A bare `flatpkg` directory in the current directory is a namespace package the
    // path finder returns before the editable finder is asked: the interpreter agrees.
    fs::create_dir_all(cwd.join("flatpkg")).unwrap();
    let shadowed_doc = agree(&interp, &cwd, &home, "flatpkg", None);
    assert_eq!(shadowed_doc["kind"], "namespace");
    assert!(shadowed(&shadowed_doc).iter().any(
        |(p, why)| why == "editable-not-reached" && p.ends_with("flatproj/flatpkg/__init__.py")
    ));
}

/// The JSON document's shape: each value replaced by its type, arrays by their first
/// element's shape.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::from("null"),
    }
}

/// Story 1: after a deploy that kept mtimes, `from ingest import rss` raises
/// AttributeError for an attribute that is plainly in the source; the package is an
/// egg-link editable install. `pycguard why ingest.rss` names the stale cache.
#[test]
fn story_why_ingest_rss_names_the_stale_cache() {
    let Some(py) = tools::default_python() else {
        eprintln!("SKIP: no Python 3.12 for story 1");
        return;
    };
    let tree = Tree::new();
    let root = fs::canonicalize(tree.path()).unwrap();
    let Some((python, site)) = bare_venv(&py, &root.join("venv")) else {
        return;
    };
    let project = root.join("opt/predictor_ingest");
    let pkg = project.join("src/ingest");
    tree.write("opt/predictor_ingest/src/ingest/__init__.py", b"");
    // The old revision: no DEFAULT_DELAY at module level.
    let old = b"def fetch(url, delay=1.0):\n    return (url, delay)  # rate-limit\n";
    let new =
        b"DEFAULT_DELAY = 10.0\n\ndef fetch(url, delay=DEFAULT_DELAY):\n    return (url, delay)\n";
    let mut old = old.to_vec();
    old.resize(new.len(), b' ');
    old.push(b'\n');
    let mut new = new.to_vec();
    new.push(b'\n');
    assert_eq!(old.len(), new.len());
    let rss = tree.write("opt/predictor_ingest/src/ingest/rss.py", &old);
    common::set_mtime(&rss, 1_771_000_000, 0);
    let interp = Interp {
        path: python.clone(),
        ..py.clone()
    };
    interp.compile(&pkg, &["rss.py"], "timestamp", 0);
    // git pull: new content, same size, the old mtime kept.
    fs::write(&rss, &new).unwrap();
    common::set_mtime(&rss, 1_771_000_000, 0);
    fs::write(
        site.join("ingest.egg-link"),
        format!("{}/src\n../", project.display()),
    )
    .unwrap();
    fs::write(
        site.join("easy-install.pth"),
        format!("{}/src\n", project.display()),
    )
    .unwrap();
    fs::create_dir_all(root.join("home")).unwrap();
    let home = root.join("home");
    // The user's diagnosis: the attribute is in the source, yet…
    let mut cmd = Command::new(&python);
    environment(&mut cmd, &home, None);
    cmd.current_dir(&root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["-c", "from ingest import rss; print(rss.DEFAULT_DELAY)"]);
    let user = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&user.stderr);
    assert!(
        err.contains("AttributeError") && err.contains("DEFAULT_DELAY"),
        "the story's symptom: {err}"
    );
    let before = common::snapshot(&root.join("opt"));
    let doc = agree(&interp, &root, &home, "ingest.rss", None);
    let cache = pkg.join("__pycache__/rss.cpython-312.pyc");
    assert_eq!(doc["cache"]["path"], cache.display().to_string());
    assert_eq!(doc["cache"]["verdict"]["state"], "hidden-stale", "{doc}");
    assert_eq!(doc["cache"]["verdict"]["checked"], "deep");
    let (_, out) = why(&python, &root, &home, "ingest.rss", None, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a hidden-stale cache is an error"
    );
    // Human output, as the user reads it.
    let mut cmd = common::pycguard();
    environment(&mut cmd, &home, None);
    cmd.current_dir(&root)
        .args(["why", "ingest.rss", "--python"])
        .arg(&python);
    let human = tools::output_with_timeout(&mut cmd, Duration::from_secs(120));
    let text = String::from_utf8_lossy(&human.stdout);
    eprintln!(
        "$ pycguard why ingest.rss --python {}\n{text}",
        python.display()
    );
    assert!(
        text.contains(&format!("loads     {}", rss.display())),
        "{text}"
    );
    assert!(
        text.contains(&cache.display().to_string()) && text.contains("hidden-stale"),
        "{text}"
    );
    assert!(text.contains("easy-install.pth:1"), "{text}");
    assert_eq!(
        common::snapshot(&root.join("opt")),
        before,
        "why changed the tree"
    );
    // The JSON schema, pinned.
    let mut pinned = shape(&doc);
    for key in [
        "would_execute",
        "shadowed",
        "editable_finders",
        "not_followed",
    ] {
        pinned[key] = Value::Array(Vec::new());
    }
    insta::assert_snapshot!(serde_json::to_string_pretty(&pinned).unwrap());
}

/// Nothing of the user's runs: modules shadowing what the probe and start-up import,
/// `sitecustomize`, `usercustomize`, a `.pth` import line in the user site and in
/// `PYTHONPATH`, a package whose `__init__` would record its execution — each writes a
/// marker when run. `why` from that directory, with that environment, for every
/// interpreter: no marker, and the answer names the hostile files it found.
#[test]
fn nothing_found_is_executed() {
    const SHADOWS: &[&str] = &[
        "site",
        "sitecustomize",
        "usercustomize",
        "os",
        "binascii",
        "codecs",
        "io",
        "abc",
        "stat",
        "posixpath",
        "importlib/__init__",
        "importlib/util",
        "importlib/machinery",
        "encodings/__init__",
        "encodings/utf_8",
        "app/__init__",
        "app/sub/__init__",
    ];
    each(&common::interpreters(), |py| {
        let tree = Tree::new();
        let root = fs::canonicalize(tree.path()).unwrap();
        let markers = root.join("markers");
        fs::create_dir_all(&markers).unwrap();
        let record = |name: &str| {
            format!(
                "import sys, posix\nposix.close(posix.open({:?} + '/' + {:?}, posix.O_CREAT | posix.O_WRONLY, 420))\n",
                markers.display().to_string(),
                name.replace('/', ".")
            )
        };
        for name in SHADOWS {
            tree.write(format!("cwd/{name}.py"), record(name).as_bytes());
        }
        tree.write("cwd/app/sub/mod.py", b"VALUE = 1\n");
        let pth = format!(
            "import posix; posix.close(posix.open({:?}, posix.O_CREAT | posix.O_WRONLY, 420))\n",
            markers.join("pth").display().to_string()
        );
        tree.write("cwd/evil.pth", pth.as_bytes());
        let user_site = format!("userbase/lib/python{}.{}/site-packages", py.major, py.minor);
        tree.write(format!("{user_site}/evil.pth"), pth.as_bytes());
        tree.write(
            format!("{user_site}/usercustomize.py"),
            record("user-usercustomize").as_bytes(),
        );
        fs::create_dir_all(root.join("home")).unwrap();
        let cwd = root.join("cwd");
        let userbase = root.join("userbase").display().to_string();
        let startup = cwd.join("site.py").display().to_string();
        let vars = [
            ("PYTHONUSERBASE", userbase.as_str()),
            ("PYTHONSTARTUP", startup.as_str()),
            ("PYTHONINSPECT", "1"),
        ];
        let pythonpath = cwd.display().to_string();
        for module in ["app.sub.mod", "os", "encodings.utf_8", "json"] {
            let (doc, out) = why_with(
                &py.path,
                &cwd,
                &root.join("home"),
                module,
                Some(&pythonpath),
                &[],
                &vars,
            );
            assert!(
                out.status.code() == Some(0) || out.status.code() == Some(1),
                "{} why {module}: {}",
                py.version,
                String::from_utf8_lossy(&out.stderr)
            );
            if module == "app.sub.mod" {
                assert_eq!(
                    doc["file"],
                    cwd.join("app/sub/mod.py").display().to_string()
                );
                let listed = doc["would_execute"].as_array().unwrap();
                assert!(
                    listed.iter().any(|w| w["pth"]
                        .as_str()
                        .unwrap()
                        .ends_with("site-packages/evil.pth")),
                    "{}: the user site's .pth line is listed: {doc}",
                    py.version
                );
            }
        }
        let ran: Vec<_> = fs::read_dir(&markers)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(ran.is_empty(), "{}: pycguard why ran {ran:?}", py.version);
        // The markers work: the interpreter itself, started there, runs the package.
        let mut cmd = Command::new(&py.path);
        environment_with(&mut cmd, &root.join("home"), None, &[]);
        cmd.current_dir(&cwd)
            .args(["-B", "-c", "import app.sub.mod"]);
        let real = cmd.output().unwrap();
        assert!(
            markers.join("app.__init__").exists(),
            "{}: the marker was not written by the real import: {}",
            py.version,
            String::from_utf8_lossy(&real.stderr)
        );
    });
}

/// Hostile site-packages: a FIFO and a directory named `.pth`, a `.pth` symlink loop,
/// undecodable bytes with a BOM, an editable finder whose `MAPPING` is code, one whose
/// module is missing, a package whose `__init__.py` is a FIFO. `why` neither hangs nor
/// fails: it reports what it could not read and answers as the importer would.
#[test]
fn hostile_site_packages() {
    let Some(py) = tools::default_python() else {
        eprintln!("SKIP: no Python 3.12 for the hostile site-packages");
        return;
    };
    let tree = Tree::new();
    let root = fs::canonicalize(tree.path()).unwrap();
    let Some((python, site)) = bare_venv(&py, &root.join("venv")) else {
        return;
    };
    let fifo = |path: &Path| {
        let made = Command::new("mkfifo").arg(path).status().unwrap();
        assert!(made.success());
    };
    fifo(&site.join("a-fifo.pth"));
    fs::write(
        site.join("b-bad.pth"),
        b"\xef\xbb\xbf\xff\xfe/nonexistent\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(site.join("c-loop.pth"), site.join("c-loop.pth")).unwrap();
    fs::create_dir_all(site.join("d-dir.pth")).unwrap();
    let marker = root.join("marker");
    fs::write(
        site.join("__editable__.evil-1.pth"),
        "import __editable___evil_1_finder; __editable___evil_1_finder.install()\n",
    )
    .unwrap();
    fs::write(
        site.join("__editable___evil_1_finder.py"),
        format!(
            "MAPPING = __import__('os').system('touch {}')\n",
            marker.display()
        ),
    )
    .unwrap();
    fs::write(
        site.join("__editable__.gone-1.pth"),
        "import __editable___gone_1_finder; __editable___gone_1_finder.install()\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("cwd/weird")).unwrap();
    fifo(&root.join("cwd/weird/__init__.py"));
    fs::create_dir_all(root.join("home")).unwrap();
    let (doc, out) = why(
        &python,
        &root.join("cwd"),
        &root.join("home"),
        "weird",
        None,
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!marker.exists(), "a finder's MAPPING ran");
    // A FIFO is not a file: `weird` is a namespace package, as the importer sees it.
    assert_eq!(doc["kind"], "namespace", "{doc}");
    let finders = doc["editable_finders"].as_array().unwrap();
    assert_eq!(finders.len(), 2, "{doc}");
    assert!(finders.iter().all(|f| f["error"].is_string()), "{doc}");
    let notes = doc["not_followed"].to_string();
    assert!(
        notes.contains("__editable___evil_1_finder could not be read"),
        "{notes}"
    );
    let (missing, out) = why(
        &python,
        &root.join("cwd"),
        &root.join("home"),
        "evil",
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(missing["error"], "No module named 'evil'");
    // The interpreter agrees about `weird` (its site would block on the FIFO .pth, so
    // it is removed first)…
    fs::remove_file(site.join("a-fifo.pth")).unwrap();
    // …and does not start at all with the undecodable one.
    let started = Command::new(&python)
        .args(["-c", "pass"])
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(
        !started.status.success(),
        "the undecodable .pth stops the interpreter"
    );
    fs::remove_file(site.join("b-bad.pth")).unwrap();
    let interp = Interp {
        path: python,
        ..py.clone()
    };
    let spec = oracle_with(
        &interp.path,
        &root.join("cwd"),
        &root.join("home"),
        "weird",
        None,
        &[],
    );
    assert_eq!(spec.origin, None);
    assert_eq!(
        spec.locations,
        vec![root.join("cwd/weird").display().to_string()]
    );
}
