"""pytest plugin: prove (``check``) or repair (``fix``) bytecode caches before pytest
imports any ``conftest.py``.

Why so early: a ``conftest.py`` usually imports the package under test, and a cache whose
header still matches an edited source (a same-size edit in the same second, a restored
mtime, a formatter racing the test run) makes Python run the *old* code for the whole
session.  Repairing in ``pytest_configure`` or in a ``conftest.py`` is too late: the
module is already imported.  ``pytest_load_initial_conftests`` runs before the initial
conftests are collected, and ``tryfirst`` puts this plugin ahead of the others there.

Off by default; registered through the ``pytest11`` entry point of the ``pycguard``
wheel.  Turned on by ``--pycguard`` (``check``), ``--pycguard=fix``, or the ini option
``pycguard = off|check|fix`` (``pytest.ini``, ``tox.ini``, ``setup.cfg`` or
``[tool.pytest.ini_options]`` in ``pyproject.toml``); the command line wins over the ini
file, and ``--pycguard=off`` turns an ini setting off for one run.  When off, nothing is
run and nothing is looked up: the cost is importing this module.

- ``check`` runs ``pycguard check --deep --format json`` on the rootdir and on the test
  paths outside it.  When a cache of error severity is found (Python would run code that
  is not its source's, or the import would fail), pytest stops with exit status 4 (usage
  error) and lists each cache with its state and reason.  Warnings (stale caches the
  interpreter recompiles itself, orphans) only go into the report header.
- ``fix`` runs ``pycguard fix --deep`` there first (proving each cache against its source
  and repairing what is wrong) and reports what it did in the report header.  When some
  repair fails, the tree is checked again: a cache of error severity left behind stops
  pytest as in ``check``; other failures are reported and the run goes on.

pytest's own assertion-rewrite caches (``*-pytest-*.pyc``) are never read or written:
pytest validates and rewrites them itself.  Under pytest-xdist the controller does the
work once; workers (``PYTEST_XDIST_WORKER``) do nothing.
"""

import json
import os
import re
import sys

import pytest

MODES = ("off", "check", "fix")
# pytest's assertion-rewrite caches (`NAME.cpython-312-pytest-9.2.0.pyc`): pytest owns them.
PYTEST_CACHES = "*-pytest-*.pyc"
# The last line of `pycguard fix`: "repaired 1, deleted 0, left 0, failed 0[; ...]".
FIX_SUMMARY = re.compile(
    r"^(?:would have )?repaired \d+, deleted \d+, left \d+, failed \d+"
)
# The states of `pycguard check`, in its order (README, "States and exit codes").
STATES = (
    "fresh",
    "stale",
    "suspect",
    "hidden-stale",
    "ghost",
    "sourceless",
    "orphan",
    "corrupt",
    "unknown",
)
# How many caches the report header and error messages list before "... and N more".
LISTED = 20

if hasattr(pytest, "StashKey"):
    _REPORT = pytest.StashKey()
else:  # pytest < 7
    _REPORT = None


def pytest_addoption(parser):
    group = parser.getgroup("pycguard", "bytecode caches (pycguard)")
    group.addoption(
        "--pycguard",
        dest="pycguard",
        nargs="?",
        const="check",
        default=None,
        choices=MODES,
        metavar="MODE",
        help=(
            "before any conftest.py is imported, prove the bytecode caches under the "
            "rootdir and the test paths (check: stop on a cache Python would run although "
            "it is not its source's; the default when MODE is omitted) or repair them "
            "(fix); off: do nothing. Overrides the pycguard ini option."
        ),
    )
    parser.addini(
        "pycguard",
        "what pycguard does to the bytecode caches before conftest.py files are "
        "imported: off (default), check or fix",
        default="off",
    )


def _mode(config):
    """The mode asked for: the command line (read from ``known_args_namespace``, since
    ``getoption`` still returns defaults this early), else the ini option."""
    cli = getattr(config.known_args_namespace, "pycguard", None)
    if cli is not None:
        return cli
    value = config.getini("pycguard")
    if isinstance(value, (list, tuple)):  # a list-typed ini reading of a bare word
        value = " ".join(value)
    mode = str(value).strip().lower() or "off"
    if mode not in MODES:
        raise pytest.UsageError(
            f"pycguard: the ini option pycguard = {value!r} is not one of "
            + ", ".join(MODES)
        )
    return mode


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    mode = _mode(early_config)
    if mode == "off" or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    namespace = early_config.known_args_namespace
    if getattr(namespace, "help", False) or getattr(namespace, "version", False):
        return  # `pytest --help` / `--version` import no test code
    run = _Run(early_config, mode)
    lines = run.fix() if mode == "fix" else run.check()
    _store(early_config, lines)


def pytest_report_header(config):
    return _stored(config)


def _store(config, lines):
    if _REPORT is not None:
        config.stash[_REPORT] = lines
    else:
        config._pycguard_report = lines


def _stored(config):
    if _REPORT is not None:
        return config.stash.get(_REPORT, None)
    return getattr(config, "_pycguard_report", None)


class _Run:
    """One run of the pycguard binary for a pytest session."""

    def __init__(self, config, mode):
        self.config = config
        self.mode = mode
        self.rootdir = str(getattr(config, "rootpath", None) or config.rootdir)
        self.invocation_dir = str(config.invocation_params.dir)
        try:
            from pycguard import find_pycguard_bin

            self.binary = find_pycguard_bin()
        except (FileNotFoundError, ImportError) as err:
            raise pytest.UsageError(
                f"pycguard: --pycguard={mode} needs the pycguard binary: {err}"
            ) from None

    def paths(self):
        """The rootdir (as ``.``: pycguard runs in it) and every test path that exists
        outside it."""
        outside = []
        given = getattr(self.config.known_args_namespace, "file_or_dir", None) or []
        for arg in given:
            path = os.path.join(self.invocation_dir, str(arg).split("::", 1)[0])
            if not os.path.exists(path):
                continue  # an option value or a -k expression, not a path
            path = os.path.abspath(path)
            if not _within(path, self.rootdir) and not any(
                _within(path, o) for o in outside
            ):
                outside = [o for o in outside if not _within(o, path)] + [path]
        return ["."] + outside

    def common_args(self):
        args = ["--exclude", PYTEST_CACHES]
        if sys.implementation.name == "cpython" and sys.executable:
            # The interpreter running the tests proves the caches it will import.
            args += ["--python", sys.executable]
        prefix = getattr(sys, "pycache_prefix", None)
        if prefix:
            args += ["--pycache-prefix", prefix]
        return args

    def run(self, *args):
        import subprocess

        argv = [self.binary] + list(args) + self.common_args() + self.paths()
        env = dict(os.environ, NO_COLOR="1")
        env.pop("CLICOLOR_FORCE", None)
        try:
            done = subprocess.run(
                argv,
                cwd=self.rootdir,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
        except OSError as err:
            raise pytest.UsageError(
                f"pycguard: cannot run {self.binary}: {err}"
            ) from None
        stdout = done.stdout.decode("utf-8", "backslashreplace")
        stderr = done.stderr.decode("utf-8", "backslashreplace")
        if done.returncode not in (0, 1):
            said = (stderr or stdout).rstrip()
            raise pytest.UsageError(
                f"pycguard: `pycguard {args[0]}` exited with status {done.returncode}:\n"
                + said
            )
        return done.returncode, stdout, stderr

    def report(self):
        """``pycguard check --deep --format json``, parsed."""
        _, stdout, stderr = self.run("check", "--deep", "--format", "json")
        try:
            report = json.loads(stdout)
        except ValueError:
            raise pytest.UsageError(
                "pycguard: `pycguard check --format json` did not print JSON:\n"
                + (stderr or stdout).rstrip()
            ) from None
        if not isinstance(report, dict):
            raise pytest.UsageError("pycguard: unexpected JSON from `pycguard check`")
        return report

    def check(self):
        report = self.report()
        errors = _entries(report, lambda e: e.get("severity") == "error")
        if errors:
            raise pytest.UsageError(self.errors_message(errors))
        lines = ["pycguard: check: " + _summary(report)]
        warnings = _entries(report, lambda e: e.get("severity") == "warning")
        lines += self.listed(warnings)
        lines += self.unreadable(report)
        return lines

    def fix(self):
        status, stdout, stderr = self.run("fix", "--deep")
        out = [line for line in stdout.splitlines() if line.strip()]
        summary = [line for line in out if FIX_SUMMARY.match(line)]
        if not summary:
            raise pytest.UsageError(
                "pycguard: unexpected output from `pycguard fix`:\n"
                + (stdout + stderr).rstrip()
            )
        # What was done (and what failed); caches left alone are only counted.
        details = [
            line
            for line in out
            if not FIX_SUMMARY.match(line) and not line.startswith("left ")
        ]
        lines = ["pycguard: fix: " + summary[-1]]
        lines += ["  " + _printable(d) for d in details[:LISTED]]
        if len(details) > LISTED:
            lines.append(f"  ... and {len(details) - LISTED} more")
        if status != 0:
            # Something could not be repaired: what is left that Python would run wrongly?
            report = self.report()
            errors = _entries(report, lambda e: e.get("severity") == "error")
            if errors:
                advice = "Correct the source (or delete the cache) and run again."
                raise pytest.UsageError(
                    "\n".join(
                        ["pycguard: fix could not repair everything:"]
                        + lines[1:]
                        + [self.errors_message(errors, advice)]
                    )
                )
            message = "\n".join(
                ["pycguard: fix could not repair every cache (none left is an error):"]
                + lines[1:]
            )
            if hasattr(self.config, "issue_config_time_warning"):
                self.config.issue_config_time_warning(
                    pytest.PytestConfigWarning(message), stacklevel=2
                )
        return lines

    def shown(self, path):
        """A path from pycguard's output (relative to the rootdir) as seen from where
        pytest was started."""
        full = os.path.normpath(os.path.join(self.rootdir, path))
        rel = os.path.relpath(full, self.invocation_dir)
        return _printable(full if rel.startswith("..") else rel)

    def describe(self, entry):
        path = self.shown(str(entry.get("path", "?")))
        state = _printable(str(entry.get("state", "?")))
        reason = _printable(str(entry.get("reason", "")))
        return f"  {path}: {state}: {reason}"

    def listed(self, entries):
        lines = [self.describe(e) for e in entries[:LISTED]]
        if len(entries) > LISTED:
            lines.append(f"  ... and {len(entries) - LISTED} more")
        return lines

    def unreadable(self, report):
        errors = report.get("errors") or []
        lines = []
        for e in errors[:LISTED]:
            if isinstance(e, dict):
                path = self.shown(str(e.get("path", "?")))
                message = _printable(str(e.get("message", "")))
                lines.append(f"  {path}: not judged: {message}")
        return lines

    def errors_message(self, errors, advice=None):
        if len(errors) == 1:
            head = (
                "pycguard: 1 bytecode cache Python would run although it does not match "
                "its source, or fails to import:"
            )
        else:
            head = (
                f"pycguard: {len(errors)} bytecode caches Python would run although they "
                "do not match their source, or fail to import:"
            )
        rootdir = _printable(self.rootdir)
        tail = advice or (
            f"Repair with `pytest --pycguard=fix` or `pycguard fix --deep {rootdir}`."
        )
        return "\n".join([head] + self.listed(errors) + [tail])


def _entries(report, wanted):
    caches = report.get("caches") or []
    return [e for e in caches if isinstance(e, dict) and wanted(e)]


def _summary(report):
    """``12 caches fresh`` or ``14 caches: 12 fresh, 2 stale``."""
    summary = report.get("summary") or {}
    total = summary.get("caches")
    if not isinstance(total, int):
        total = len(report.get("caches") or [])
    # Only states count: the summary may gain other numbers (skipped, seconds, ...).
    states = set(STATES)
    states.update(str(e.get("state")) for e in _entries(report, lambda e: True))
    counts = [
        (state, n)
        for state, n in summary.items()
        if state in states and isinstance(n, int) and n
    ]
    noun = "cache" if total == 1 else "caches"
    if not counts:
        return f"{total} {noun}"
    if len(counts) == 1 and counts[0] == ("fresh", total):
        return f"{total} {noun} fresh"
    return f"{total} {noun}: " + ", ".join(f"{n} {state}" for state, n in counts)


def _within(path, directory):
    rel = os.path.relpath(path, directory)
    return rel == "." or not (rel == ".." or rel.startswith(".." + os.sep))


def _printable(text):
    """``text`` with lone surrogates (file names that are not UTF-8, as pycguard's JSON
    writes them) and control characters escaped, safe for any terminal encoding."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode(
            "utf-8", "backslashreplace"
        )
    except UnicodeEncodeError:  # a surrogate no file name decodes to
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(
        c
        if c.isprintable() or c == "\t"
        else c.encode("unicode_escape").decode("ascii")
        for c in text
    )
