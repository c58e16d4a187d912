"""``python -m pycguard ARGS``: run the pycguard binary with the same arguments.

On POSIX the interpreter process is replaced by the binary (``os.execv``): same process
id, so the exit status, a signal sent to the process (Ctrl-C gives 130, SIGTERM 143) and
the terminal are the binary's own, exactly as if ``pycguard ARGS`` had been run.
Elsewhere the binary runs as a child and its exit status is passed on.

When the binary cannot be found, the places searched are printed and the exit status is
127, the shell's "command not found" (no pycguard verdict uses it).
"""

import os
import sys

from pycguard import find_pycguard_bin


def main():
    try:
        binary = os.fsdecode(find_pycguard_bin())
    except FileNotFoundError as err:
        sys.stderr.write(f"pycguard: {err}\n")
        return 127
    argv = [binary] + sys.argv[1:]
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(binary, argv)
    import subprocess

    return subprocess.call(argv)


if __name__ == "__main__":
    sys.exit(main())
