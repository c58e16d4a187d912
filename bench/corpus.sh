#!/usr/bin/env bash
# bench/corpus.sh — build the pycguard benchmark corpus.
#
# What: a CPython 3.12 virtualenv holding the pinned packages listed in
#   bench/corpus-requirements.txt (~24,800 .py sources; at least 15,000 are
#   required or the script fails), byte-compiled by the interpreter itself
#   (`python -m compileall -q -j0`) so every source has a fresh
#   __pycache__/*.cpython-312.pyc. Then `corpus4x/{1,2,3,4}`: four `cp -a`
#   copies of it (caches included, mtimes preserved, so still fresh).
#
#   Layout under ${PYCGUARD_BENCH_DIR:-/tmp/pycguard-bench}:
#     corpus/        the virtualenv (1x)
#     corpus4x/      4 copies of it
#     corpus.env     stamp: package-set key + counts (sourced by bench/run.sh)
#
# Interpreter: $PYCGUARD_BENCH_PYTHON if set, else
#   ~/.pyenv/versions/3.12.1/bin/python, else the first python3.N (N >= 8)
#   on PATH. The pins are for 3.12; with another interpreter the script says
#   so and installs the newest versions of the same top-level packages that
#   support it (figures are then not comparable with 3.12 ones).
#
# Idempotent: when corpus.env records the same key (interpreter + package
#   set + layout version) and both trees still hold the recorded counts with
#   every cache fresh, nothing is rebuilt. `--force` rebuilds anyway.
#
# Time: ~2 min on 2 cores with pip's download cache warm (pip install ~30 s,
#   compileall -j0 ~45 s, the 4 copies ~25 s); add the download of ~200 MB of
#   wheels on a cold cache. A no-op run (stamp matches) takes ~5-20 s: it
#   re-reads every cache header of both trees to be sure they are still fresh.
# Disk: ~1.1 GB for corpus/ (incl. caches) + ~4.1 GB for corpus4x/, plus
#   pip's download cache (~/.cache/pip).
#
# Usage: bench/corpus.sh [--force]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REQS="$SCRIPT_DIR/corpus-requirements.txt"
BENCH_DIR=${PYCGUARD_BENCH_DIR:-/tmp/pycguard-bench}
CORPUS="$BENCH_DIR/corpus"
CORPUS4X="$BENCH_DIR/corpus4x"
STAMP="$BENCH_DIR/corpus.env"
MIN_SOURCES=15000
LAYOUT_VERSION=1   # bump when the way the corpus is built changes
PRIMARY_PYTHON="$HOME/.pyenv/versions/3.12.1/bin/python"

log() { printf '[corpus] %s\n' "$*" >&2; }
die() { printf '[corpus] ERROR: %s\n' "$*" >&2; exit 1; }

FORCE=0
case "${1:-}" in
  "") ;;
  --force) FORCE=1 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

# The interpreter must write real caches, next to the sources, in the default
# (timestamp) invalidation mode: this machine exports PYTHONDONTWRITEBYTECODE=1,
# and SOURCE_DATE_EPOCH would switch compileall to checked-hash pycs.
unset PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX SOURCE_DATE_EPOCH

# One build at a time: a second run waits for the first, then finds its stamp valid
# (two concurrent runs used to nest their `cp -a` copies and fail).
mkdir -p "$BENCH_DIR"
exec 9>"$BENCH_DIR/.corpus.lock"
if ! flock -n 9; then
  log "another bench/corpus.sh is building $BENCH_DIR; waiting for it"
  flock -w 3600 9 || die "timed out waiting for the other bench/corpus.sh"
fi

# ---------------------------------------------------------------- interpreter
py_ok() { [[ -x "$1" ]] && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; }

find_python() {
  if [[ -n "${PYCGUARD_BENCH_PYTHON:-}" ]]; then
    py_ok "$PYCGUARD_BENCH_PYTHON" || die "PYCGUARD_BENCH_PYTHON=$PYCGUARD_BENCH_PYTHON is not a python >= 3.8"
    echo "$PYCGUARD_BENCH_PYTHON"; return
  fi
  if py_ok "$PRIMARY_PYTHON"; then echo "$PRIMARY_PYTHON"; return; fi
  local name path
  for name in python3.12 python3.13 python3.11 python3.10 python3.9 python3.8 python3; do
    path=$(command -v "$name" 2>/dev/null) || continue
    if py_ok "$path"; then echo "$path"; return; fi
  done
  die "no python >= 3.8 found (looked for $PRIMARY_PYTHON and python3.N on PATH)"
}

PY=$(find_python)
PY_VERSION=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
PY_MINOR=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PY_IMPL=$("$PY" -c 'import sys; print(sys.implementation.name)')
if [[ "$PY" == "$PRIMARY_PYTHON" ]]; then
  log "interpreter: $PY ($PY_IMPL $PY_VERSION)"
else
  log "interpreter: $PY ($PY_IMPL $PY_VERSION) — FALLBACK, not $PRIMARY_PYTHON"
fi
PINNED=1
if [[ "$PY_IMPL" != cpython || "$PY_MINOR" != 3.12 ]]; then
  PINNED=0
  log "WARNING: the pins in $(basename "$REQS") are for CPython 3.12; installing the"
  log "         newest versions of the same top-level packages that support $PY_IMPL $PY_MINOR."
fi

KEY=$( { echo "layout=$LAYOUT_VERSION"; echo "python=$PY $PY_IMPL $PY_VERSION pinned=$PINNED"; cat "$REQS"; } \
       | sha256sum | cut -c1-16)

# ---------------------------------------------------------------- counting
count_files() { find "$1" -type f -name "$2" | wc -l; }

# Checks every source under $1 against the cache the interpreter would use
# for it (importlib.util.cache_from_source): prints "fresh stale missing",
# and the first few missing/stale paths on stderr.
FRESHNESS_PY='
import importlib.util, os, sys
root = sys.argv[1]
magic = importlib.util.MAGIC_NUMBER
fresh = stale = missing = 0
bad = []
for dirpath, dirnames, filenames in os.walk(root):          # does not follow symlinks
    for fn in filenames:
        if not fn.endswith(".py"):
            continue
        src = os.path.join(dirpath, fn)
        if os.path.islink(src):
            continue
        try:
            with open(importlib.util.cache_from_source(src), "rb") as f:
                hdr = f.read(16)
        except FileNotFoundError:
            missing += 1
            bad.append("missing " + src)
            continue
        st = os.stat(src)
        flags = int.from_bytes(hdr[4:8], "little")
        ok = (len(hdr) == 16 and hdr[:4] == magic and flags == 0
              and int.from_bytes(hdr[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
              and int.from_bytes(hdr[12:16], "little") == st.st_size & 0xFFFFFFFF)
        if ok:
            fresh += 1
        else:
            stale += 1
            bad.append("stale   " + src)
for line in bad[:10]:
    print("  " + line, file=sys.stderr)
if len(bad) > 10:
    print("  ... and %d more" % (len(bad) - 10), file=sys.stderr)
print(fresh, stale, missing)
'
freshness() { "$PY" -c "$FRESHNESS_PY" "$1"; }

# ---------------------------------------------------------------- stamp check
stamp_matches() {
  [[ -f "$STAMP" && -d "$CORPUS" && -d "$CORPUS4X" ]] || return 1
  local CORPUS_KEY="" CORPUS_SOURCES="" CORPUS_CACHES=""
  # shellcheck disable=SC1090
  source "$STAMP"
  [[ "$CORPUS_KEY" == "$KEY" ]] || { log "stamp key differs (package set or interpreter changed)"; return 1; }
  local s c s4 c4
  s=$(count_files "$CORPUS" '*.py');   c=$(count_files "$CORPUS" '*.pyc')
  s4=$(count_files "$CORPUS4X" '*.py'); c4=$(count_files "$CORPUS4X" '*.pyc')
  if [[ "$s" != "$CORPUS_SOURCES" || "$c" != "$CORPUS_CACHES" \
        || "$s4" != $((4 * CORPUS_SOURCES)) || "$c4" != $((4 * CORPUS_CACHES)) ]]; then
    log "corpus changed since it was built (sources $s/$s4, caches $c/$c4; stamp says $CORPUS_SOURCES, $CORPUS_CACHES per copy)"
    return 1
  fi
  local f st m
  read -r f st m < <(freshness "$CORPUS" 2>/dev/null)
  [[ "$f" == "$CORPUS_FRESH" ]] || { log "corpus: only $f of $CORPUS_FRESH caches still fresh ($st stale, $m missing)"; return 1; }
  read -r f st m < <(freshness "$CORPUS4X" 2>/dev/null)
  [[ "$f" == $((4 * CORPUS_FRESH)) ]] || { log "corpus4x: only $f of $((4 * CORPUS_FRESH)) caches still fresh ($st stale, $m missing)"; return 1; }
}

if [[ $FORCE == 0 ]] && stamp_matches; then
  # shellcheck disable=SC1090
  source "$STAMP"
  log "up to date (key $KEY); nothing rebuilt — use --force to rebuild"
  echo "corpus:   $CORPUS"
  echo "corpus4x: $CORPUS4X"
  echo "python:   $CORPUS_PYTHON ($CORPUS_PYTHON_VERSION)"
  echo "sources:  $CORPUS_SOURCES .py   caches: $CORPUS_CACHES .pyc   (per copy; corpus4x holds 4x)"
  echo "disk:     $CORPUS_DISK (corpus) + $CORPUS4X_DISK (corpus4x)"
  exit 0
fi

# ---------------------------------------------------------------- build
T0=$SECONDS
mkdir -p "$BENCH_DIR"
rm -f "$STAMP"
log "removing old trees"
rm -rf "$CORPUS" "$CORPUS4X"

log "creating virtualenv $CORPUS"
"$PY" -m venv "$CORPUS"
VPY="$CORPUS/bin/python"

PIP=("$VPY" -m pip install --quiet --no-compile --disable-pip-version-check --only-binary=:all:)
T=$SECONDS
if [[ $PINNED == 1 ]]; then
  log "pip install --no-deps -r $(basename "$REQS") ($(grep -c '==' "$REQS") exact pins)"
  "${PIP[@]}" --no-deps -r "$REQS" || die "pip install of the pinned set failed"
  "$VPY" -m pip check >&2 || die "pinned set is not self-consistent (pip check) — fix $(basename "$REQS")"
else
  mapfile -t TOP < <(sed -n 's/^\([A-Za-z0-9_.-]*\)==.*# top.*/\1/p' "$REQS")
  log "pip install (resolving) ${TOP[*]}"
  "${PIP[@]}" "${TOP[@]}" || die "pip install of the top-level packages failed for $PY_IMPL $PY_VERSION"
  "$VPY" -m pip freeze > "$BENCH_DIR/corpus-freeze.txt"
  log "resolved set written to $BENCH_DIR/corpus-freeze.txt"
fi
T_PIP=$((SECONDS - T))

SOURCES=$(count_files "$CORPUS" '*.py')
log "$SOURCES .py sources installed (${T_PIP}s)"
if (( SOURCES < MIN_SOURCES )); then
  die "only $SOURCES .py sources in $CORPUS; the benchmark needs at least $MIN_SOURCES — add packages to $(basename "$REQS")"
fi

log "python -m compileall -q -j0 (the interpreter writes every cache)"
T=$SECONDS
COMPILE_LOG="$BENCH_DIR/compileall.log"
set +e
"$VPY" -m compileall -q -j0 "$CORPUS" > "$COMPILE_LOG" 2>&1
RC=$?
set -e
T_COMPILE=$((SECONDS - T))
if [[ $RC != 0 ]]; then
  # Some packages ship deliberately broken .py test data; those have no cache.
  log "compileall exited $RC; its messages are in $COMPILE_LOG:"
  head -n 20 "$COMPILE_LOG" | sed 's/^/  /' >&2
fi
CACHES=$(count_files "$CORPUS" '*.pyc')

log "checking that every source has a fresh cache"
read -r FRESH STALE MISSING < <(freshness "$CORPUS")
log "fresh $FRESH, stale $STALE, missing $MISSING (compileall ${T_COMPILE}s)"
(( STALE == 0 )) || die "$STALE caches are stale right after compileall"
(( MISSING * 1000 <= SOURCES )) || die "$MISSING sources (> 0.1%) got no cache from compileall"

log "building corpus4x (4 x cp -a, mtimes preserved)"
T=$SECONDS
mkdir -p "$CORPUS4X"
for i in 1 2 3 4; do
  cp -a "$CORPUS" "$CORPUS4X/$i"
done
T_COPY=$((SECONDS - T))
SOURCES4=$(count_files "$CORPUS4X" '*.py')
CACHES4=$(count_files "$CORPUS4X" '*.pyc')
read -r FRESH4 STALE4 MISSING4 < <(freshness "$CORPUS4X" 2>/dev/null)
(( SOURCES4 == 4 * SOURCES && CACHES4 == 4 * CACHES )) \
  || die "corpus4x holds $SOURCES4 sources / $CACHES4 caches, expected 4x $SOURCES / $CACHES"
(( FRESH4 == 4 * FRESH && STALE4 == 0 )) \
  || die "corpus4x: fresh $FRESH4 stale $STALE4 missing $MISSING4 — the copies lost their freshness"

DISK=$(du -sh "$CORPUS" | cut -f1)
DISK4=$(du -sh "$CORPUS4X" | cut -f1)
T_TOTAL=$((SECONDS - T0))

{
  echo "# written by bench/corpus.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); sourced by bench/run.sh"
  printf 'CORPUS_KEY=%q\n' "$KEY"
  printf 'CORPUS_DIR=%q\n' "$CORPUS"
  printf 'CORPUS4X_DIR=%q\n' "$CORPUS4X"
  printf 'CORPUS_PYTHON=%q\n' "$VPY"
  printf 'CORPUS_BASE_PYTHON=%q\n' "$PY"
  printf 'CORPUS_PYTHON_VERSION=%q\n' "$PY_IMPL $PY_VERSION"
  printf 'CORPUS_PINNED=%q\n' "$PINNED"
  printf 'CORPUS_SOURCES=%q\n' "$SOURCES"
  printf 'CORPUS_CACHES=%q\n' "$CACHES"
  printf 'CORPUS_FRESH=%q\n' "$FRESH"
  printf 'CORPUS_MISSING=%q\n' "$MISSING"
  printf 'CORPUS_DISK=%q\n' "$DISK"
  printf 'CORPUS4X_DISK=%q\n' "$DISK4"
  printf 'CORPUS_BUILD_SECONDS=%q\n' "$T_TOTAL"
} > "$STAMP"

log "done in ${T_TOTAL}s (pip ${T_PIP}s, compileall ${T_COMPILE}s, copies ${T_COPY}s)"
echo "corpus:   $CORPUS"
echo "corpus4x: $CORPUS4X"
echo "python:   $VPY ($PY_IMPL $PY_VERSION, from $PY)"
echo "sources:  $SOURCES .py   caches: $CACHES .pyc   fresh: $FRESH   no cache: $MISSING   (per copy; corpus4x holds 4x)"
echo "disk:     $DISK (corpus) + $DISK4 (corpus4x)"
echo "time:     ${T_TOTAL}s"
