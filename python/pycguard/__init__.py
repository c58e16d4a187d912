"""pycguard: find, prove and repair Python bytecode caches that do not match their sources.

The work is done by the ``pycguard`` binary that this package's wheel installs beside the
interpreter's scripts (``bin/pycguard``).  This package only finds and runs it:

- ``python -m pycguard ARGS`` runs the binary with the same arguments (on POSIX the
  Python process *becomes* the binary, so exit status and signals are the binary's own);
- :func:`find_pycguard_bin` returns the binary's path, for tools that run it themselves;
- :mod:`pycguard.pytest_plugin` proves and repairs caches before pytest imports
  ``conftest.py`` (off unless ``--pycguard`` or the ``pycguard`` ini option asks for it).

Importing this package is cheap (no subprocess, nothing imported beyond ``os``/``sys``):
the pytest plugin imports it in every pytest run of an environment where it is installed.
"""

import os
import sys

__all__ = ["find_pycguard_bin"]


def _candidate_dirs():
    """The directories that may hold the binary, in the order they are tried.

    1. the scripts directory of the running interpreter's install scheme (a virtualenv's
       ``bin``, or the prefix's ``bin`` for a plain ``pip install``);
    2. the user scheme's scripts directory (``pip install --user``: ``~/.local/bin``);
    3. ``bin`` beside this package's parent directory (``pip install --target DIR`` puts
       the package in ``DIR/pycguard`` and the binary in ``DIR/bin``);
    4. ``<prefix>/bin`` for a package under ``<prefix>/lib/pythonX.Y/site-packages``
       (``pip install --prefix``).
    """
    import sysconfig

    dirs = [sysconfig.get_path("scripts")]
    try:
        dirs.append(sysconfig.get_path("scripts", scheme=_user_scheme()))
    except KeyError:  # an interpreter built without a user scheme
        pass
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs.append(os.path.join(package_parent, "bin"))
    lib_dir = os.path.dirname(package_parent)  # <prefix>/lib/pythonX.Y
    if os.path.basename(package_parent) == "site-packages" and os.path.basename(
        lib_dir
    ).startswith("python"):
        dirs.append(os.path.join(os.path.dirname(os.path.dirname(lib_dir)), "bin"))
    seen = []
    for d in dirs:
        if d and d not in seen:
            seen.append(d)
    return seen


def _user_scheme():
    import sysconfig

    if sys.version_info >= (3, 10):
        return sysconfig.get_preferred_scheme("user")
    if os.name == "nt":
        return "nt_user"
    if sys.platform == "darwin" and getattr(sys, "_framework", None):
        return "osx_framework_user"
    return "posix_user"


def find_pycguard_bin():
    """Return the path of the installed ``pycguard`` binary.

    Raises :class:`FileNotFoundError` naming every directory that was searched when none of
    them holds an executable ``pycguard``.
    """
    import sysconfig

    name = "pycguard" + (sysconfig.get_config_var("EXE") or "")
    dirs = _candidate_dirs()
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        "the pycguard binary was not found; it is installed with this package's wheel "
        "(pip install pycguard) and was looked for in:\n"
        + "\n".join("  " + os.path.join(d, name) for d in dirs)
    )
