#!/usr/bin/env bash
# bench/run.sh — the pycguard benchmark, in one command.
#
# Usage: bench/run.sh [SECTION...]      (no SECTION = all)
#   check   `pycguard check -q` vs `python -m compileall -q` (its no-op pass
#           on an up-to-date tree, the closest check users have today) vs the
#           walk-and-read floor (`find | xargs head -c 16`), warm cache, with
#           hyperfine; then peak RSS of `pycguard check -q` on the 1x and the
#           4x corpus (GNU time). Writes bench/results/check.md.
#   deep    `pycguard check --deep`: the cold run (store deleted before every
#           run) vs `python -m compileall -f -q -j0` on copies of the corpus,
#           side by side in one hyperfine invocation (PYCGUARD_BENCH_COLD_RUNS
#           runs each, peak RSS by GNU time inside the timed command), the
#           second run on the unchanged tree (hyperfine), and a run after one
#           same-size edit with the mtime restored (only that file is compiled
#           again; GNU time). Works on two copies under $BENCH_DIR/deep.
#           Writes bench/results/deep.md.
#   warm    warm `check --deep -q` (every proof and file identity remembered)
#           vs the shallow `check -q` and compileall's no-op pass on an
#           unchanged copy, one hyperfine invocation; peak RSS of both checks;
#           the deep counts of one `--format json` run (0 compiled).
#           Writes bench/results/warm.md.
#   edit    the same kind of proven copy; before every run (hyperfine
#           `--prepare`) the previous edit is put back and one new file gets a
#           same-size edit with its times restored: warm `check --deep -q` vs
#           `check -q`, one hyperfine invocation; then one more prepared
#           `--format json` run must have compiled exactly 1 cache, found
#           hidden-stale. Writes bench/results/edit.md.
#   shared  four virtualenvs with the same packages, twice: hard-linked copies
#           (`cp -al`) and corpus4x's `cp -a` copies (read in place). Venv 1
#           proven, the store saved; then `check --deep -q` of venv 1 (warm
#           reference) and venvs 2-4, one hyperfine invocation per kind, the
#           store put back before every run; `--format json` counts (venvs 2-4
#           must compile nothing). Writes bench/results/shared.md.
#   scale   1x, 4x and 16x the corpus (hard-linked copies, one root of
#           virtualenvs per size, `--include-venvs`, one store each): `check
#           -q`, warm `check --deep -q` and the `compile -q` no-op pass, all
#           nine in one hyperfine invocation; per-cache cost and its spread,
#           peak RSS vs 1x, the caches counted by the JSON summary, no cache
#           written by `compile`, the stores' sizes. Writes bench/results/scale.md.
#           warm, edit, shared and scale work under $BENCH_DIR/NAME, each with its
#           own pycguard cache directory (--cache-dir), all removed afterwards.
#   compile `pycguard compile -q --python CORPUS/bin/python` vs
#           `python -m compileall -q -j0` on a copy without caches (a fresh copy
#           per run), then `check --deep` on pycguard's result; and the no-op
#           second run (`pycguard compile -q`, memo warm and cold, vs
#           `compileall -q`). Writes bench/results/compile.md.
#   clean   `pycguard clean -q` vs `pyclean -q` (a fresh copy per run), then the
#           files each removed, compared. Writes bench/results/clean.md.
#   fix     `pycguard fix` (proving, the default) on a copy with 1% of the caches
#           made stale (a fresh copy per run): with an empty proof store, a warm
#           one, again on the fixed tree, and `--shallow`; vs `compileall -q` and
#           `compileall -q -j0` on the same kind of tree. Then: only the stale
#           caches changed, no source did, `check --deep` finds all fresh.
#           Writes bench/results/fix.md.
#           compile, clean and fix work on copies under $BENCH_DIR/NAME, with
#           PYCGUARD_CACHE_DIR=$BENCH_DIR/NAME/memo, all removed afterwards.
#   all     every section above, in order.
#   (Further sections are section_NAME functions listed in SECTIONS.)
#
# Every run first: installs hyperfine and GNU time with apt-get if missing
# (Debian, as root), installs pyclean into $BENCH_DIR/tools (for the clean
# section), builds the corpus with bench/corpus.sh if needed, and builds
# pycguard with `cargo build --release` in the repository root (one level up
# from this script). PYCGUARD_BIN=/path/to/pycguard skips the build.
#
# Environment knobs:
#   PYCGUARD_BENCH_DIR     corpus, tools and raw results (default /tmp/pycguard-bench)
#   PYCGUARD_BENCH_RUNS    timed runs per command (default 15)
#   PYCGUARD_BENCH_WARMUP  warm-up runs per command (default 3)
#   PYCGUARD_BENCH_RSS_RUNS  runs per peak-RSS figure, the max is kept (default 3)
#   PYCGUARD_BENCH_COPY_RUNS  runs per command that needs a fresh corpus copy per
#                          run (compile, clean, fix; default 5, no warm-up)
#   PYCGUARD_BENCH_FIX_COLD_RUNS  runs of `fix` with an empty proof store (default 3:
#                          each proves all 24,776 caches)
#   PYCGUARD_BENCH_COLD_RUNS  runs of the cold `check --deep` and of `compileall -f`
#                          in `deep` (default 5: each compiles all 24,776 sources)
#
# Time: `check` ~40-60 s once everything is in place (2 cores), `deep` ~6-9 min
#   (two corpus copies; 5 cold runs each of `check --deep` and `compileall -f`,
#   every one compiling 24,776 sources); the first run
#   also builds the corpus (~2 min with a warm pip cache, see corpus.sh) and
#   pycguard (~1 min), and may apt-get install. With 5 runs per copy-based
#   command (2 cores, copies ~15-20 s each): `compile` ~9 min, `clean` ~9 min,
#   `fix` ~12 min (its cold rows prove all 24,776 caches, 3 runs). With the
#   default 3 + 15 runs: `warm` and `edit` ~1-2 min each (a copy, proven once
#   cold, ~20-35 s), `shared` ~3-4 min (two cold proofs of one venv), `scale`
#   ~6-8 min (three cold proofs, ~20 s each when a run compiles each distinct
#   source once; builds that compile every copy took ~0.5, ~2 and ~10 min for
#   the 1x, 4x and 16x roots; the 16x commands take ~2-5 s a run).
# Disk: ~5.2 GB under $BENCH_DIR (corpus 1.1 GB + corpus4x 4.1 GB; `deep`
#   adds two 1.1 GB copies under $BENCH_DIR/deep, replaced on every run; while
#   they run, `compile` needs ~3.3 GB more, `clean`/`fix` ~2.2 GB, `warm`/`edit`
#   ~1.1 GB, `shared` ~0.3 GB and `scale` ~1 GB (hard links: directories and
#   stores only), removed at their end), ~20 MB of tools; results/*.md are a
#   few KB.
#
# Exit status: 0 when every section ran (targets missed are reported, not
# failures), 1 when something could not be measured (e.g. pycguard did not
# build or crashed), 2 on bad usage.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
RESULTS_DIR="$SCRIPT_DIR/results"
BENCH_DIR=${PYCGUARD_BENCH_DIR:-/tmp/pycguard-bench}
RUNS=${PYCGUARD_BENCH_RUNS:-15}
WARMUP=${PYCGUARD_BENCH_WARMUP:-3}
RSS_RUNS=${PYCGUARD_BENCH_RSS_RUNS:-3}
COPY_RUNS=${PYCGUARD_BENCH_COPY_RUNS:-5}
FIX_COLD_RUNS=${PYCGUARD_BENCH_FIX_COLD_RUNS:-3}
COLD_RUNS=${PYCGUARD_BENCH_COLD_RUNS:-5}
PYCLEAN_VERSION=3.7.0
GNU_TIME=/usr/bin/time

# Sections in the order `all` runs them; each is a function section_NAME.
SECTIONS=(check deep warm edit shared scale compile clean fix)

# Caches must be judged and written the default way (this machine exports
# PYTHONDONTWRITEBYTECODE=1; a pycache prefix would move caches elsewhere).
unset PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX SOURCE_DATE_EPOCH

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
usage() {
  echo "usage: $0 [SECTION...]   sections: ${SECTIONS[*]} all   (default: all)" >&2
  exit 2
}

FAILED=0   # set to 1 when something could not be measured

# ====================================================================== setup

ensure_apt_tools() {
  local missing=()
  command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
  [[ -x $GNU_TIME ]] || missing+=(time)
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; run as root or install them (apt-get install ${missing[*]})"
  log "apt-get install ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# pyclean, for the `clean` section: a venv of its own, never inside the corpus.
ensure_pyclean() {
  local tools="$BENCH_DIR/tools"
  # (no `pip show | grep -q`: grep's early exit would break pip's pipe under pipefail)
  if [[ -x "$tools/bin/pyclean" && $("$tools/bin/python" -m pip show pyclean 2>/dev/null) == *$'\nVersion: '"$PYCLEAN_VERSION"$'\n'* ]]; then
    return 0
  fi
  log "installing pyclean==$PYCLEAN_VERSION into $tools"
  rm -rf "$tools"
  "$CORPUS_BASE_PYTHON" -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "pyclean==$PYCLEAN_VERSION" >&2
}

ensure_corpus() {
  # corpus.sh's own output is progress, not results: keep stdout for tables.
  "$SCRIPT_DIR/corpus.sh" >&2
  # shellcheck source=/dev/null
  source "$BENCH_DIR/corpus.env"
  CORPUS=$CORPUS_DIR
  CORPUS4X=$CORPUS4X_DIR
}

# Sets PYCGUARD (path of the binary) or leaves it empty and sets BUILD_ERROR.
build_pycguard() {
  PYCGUARD="" BUILD_ERROR=""
  if [[ -n "${PYCGUARD_BIN:-}" ]]; then
    [[ -x "$PYCGUARD_BIN" ]] || die "PYCGUARD_BIN=$PYCGUARD_BIN is not executable"
    PYCGUARD=$PYCGUARD_BIN
    log "using PYCGUARD_BIN=$PYCGUARD (not built)"
    return 0
  fi
  local target=${CARGO_TARGET_DIR:-target} buildlog="$BENCH_DIR/cargo-build.log"
  [[ $target == /* ]] || target="$REPO_ROOT/$target"
  log "cargo build --release (in $REPO_ROOT; log: $buildlog)"
  if ! command -v cargo >/dev/null 2>&1; then
    BUILD_ERROR="cargo not found on PATH"
  elif (cd "$REPO_ROOT" && cargo build --release) >"$buildlog" 2>&1; then
    PYCGUARD="$target/release/pycguard"
    [[ -x $PYCGUARD ]] || { BUILD_ERROR="build succeeded but $PYCGUARD is missing"; PYCGUARD=""; }
  else
    BUILD_ERROR="cargo build --release failed"
    if grep -q '^error' "$buildlog"; then
      grep -E -A6 '^error' "$buildlog" | head -n 40 | sed 's/^/  /' >&2 || true
    else
      tail -n 20 "$buildlog" | sed 's/^/  /' >&2
    fi
  fi
  if [[ -n $BUILD_ERROR ]]; then
    log "WARNING: $BUILD_ERROR — pycguard rows will be empty (full log: $buildlog)"
    FAILED=1
  fi
}

# Describes what was measured: printed at the top of every results file.
environment_md() {
  local rev dirty cpu
  rev=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
  dirty=$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null | grep -c . || true)
  cpu=$(sed -n 's/^model name[[:space:]]*: //p; T; q' /proc/cpuinfo)
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); ${PYCGUARD:+$("$PYCGUARD" --version 2>/dev/null || echo pycguard), }git $rev ($dirty changed/untracked paths)"
  echo "- machine: $(nproc) CPUs ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -sr)"
  echo "- corpus: \`$CORPUS\` — a $CORPUS_PYTHON_VERSION venv (bench/corpus-requirements.txt), $CORPUS_SOURCES .py, $CORPUS_CACHES fresh .pyc; corpus4x = 4 copies"
  echo "- $(hyperfine --version), warm cache, --warmup $WARMUP, --runs $RUNS"
}

# ====================================================================== helpers

# py EXPR-SCRIPT ARGS...: run a small Python helper with the corpus's interpreter.
py() { "$CORPUS_BASE_PYTHON" -c "$@"; }

# hf_stats JSON INDEX → "median mean stddev user+sys runs" (seconds) for one command.
hf_stats() {
  py 'import json, sys
r = json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]
print("%.4f %.4f %.4f %.4f %d" % (r["median"], r["mean"], r["stddev"] or 0.0, r["user"] + r["system"], len(r["times"])))' "$1" "$2"
}

# fmt_s SECONDS → "0.123 s" / "45.6 ms"
fmt_s() { py 'import sys; v = float(sys.argv[1]); print("%.2f s" % v if v >= 1 else "%.1f ms" % (v * 1000))' "$1"; }

# ratio A B → A/B with 2 decimals
ratio() { py 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }

# meets VALUE OP TARGET → "yes"/"**no**"
meets() { py 'import sys, operator as o; v, op, t = float(sys.argv[1]), sys.argv[2], float(sys.argv[3])
print("yes" if {">=": o.ge, "<=": o.le}[op](v, t) else "**no**")' "$1" "$2" "$3"; }

# peak_rss CMD... → "maxKB wall_s_of_that_run" over RSS_RUNS runs, after one
# untimed warm-up run. Exit status 0 and 1 of CMD are both accepted
# (pycguard's normal results).
peak_rss() {
  local out="$BENCH_DIR/time.out" best=0 wall=0 kb e i rc
  for ((i = -1; i < RSS_RUNS; i++)); do
    rc=0
    "$GNU_TIME" -f '%M %e' -o "$out" "$@" >/dev/null 2>&1 || rc=$?
    ((rc <= 1)) || { log "'$*' exited $rc"; return 1; }
    ((i < 0)) && continue
    read -r kb e < <(tail -n1 "$out")
    if ((kb > best)); then best=$kb wall=$e; fi
  done
  echo "$best $wall"
}

# q ARG → ARG quoted for the bash that hyperfine runs commands in.
q() { printf '%q' "$1"; }

# hf_range JSON INDEX → "min max" (seconds) of one command's timed runs.
hf_range() {
  py 'import json, sys
r = json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]
print("%.4f %.4f" % (r["min"], r["max"]))' "$1" "$2"
}

# hf_series JSON INDEX → "median mean stddev user+sys runs min max" (hf_stats, then hf_range).
hf_series() { echo "$(hf_stats "$1" "$2") $(hf_range "$1" "$2")"; }

# fmt_range MEDIAN MIN MAX → "713.8 ms (701.2–730.0 ms)": median (min–max), in the median's unit.
fmt_range() {
  py 'import sys
m, lo, hi = map(float, sys.argv[1:4])
f, u, d = (1, "s", "%.2f") if m >= 1 else (1000, "ms", "%.1f")
print((d + " %s (" + d + "–" + d + " %s)") % (m * f, u, lo * f, hi * f, u))' "$1" "$2" "$3"
}

# range_cell SERIES → "median (min–max)" of an hf_series line.
range_cell() {
  local m lo hi
  read -r m _ _ _ _ lo hi <<<"$1"
  fmt_range "$m" "$lo" "$hi"
}

# hf_multi JSON WARMUP RUNS PREPARE NAME CMD [NAME CMD]...: one hyperfine invocation timing
# every CMD side by side (PREPARE, if not empty, runs untimed before every run of each, its
# stderr appended to JSON.prepare.log); read the figures with hf_series JSON INDEX (INDEX =
# the command's position, from 0). A failed invocation is retried once; if it fails again,
# logs each CMD's output from one more run and returns 1.
hf_multi() {
  local json=$1 warmup=$2 runs=$3 prepare=$4 attempt c plog="$1.prepare.log"
  shift 4
  local -a hf=(hyperfine --shell=bash --style=basic --warmup "$warmup" --runs "$runs" --export-json "$json")
  local -a cmds=()
  [[ -n $prepare ]] && hf+=(--prepare "{ $prepare; } 2>>$(q "$plog")")
  while (($# >= 2)); do
    hf+=(-n "$1" "$2"); cmds+=("$2")
    shift 2
  done
  for attempt in 1 2; do
    log "hyperfine: ${#cmds[@]} commands side by side ($warmup warm-up + $runs runs each${prepare:+, --prepare before each})$( ((attempt == 1)) || echo ': second attempt')"
    "${hf[@]}" >&2 && return 0
    log "WARNING: hyperfine failed (attempt $attempt)"
    if [[ -s $plog ]]; then
      log "stderr of its prepare step:"
      tail -n 10 "$plog" | sed 's/^/  /' >&2
    fi
  done
  log "WARNING: hyperfine failed twice; each command's output on one more run:"
  for c in "${cmds[@]}"; do
    [[ -z $prepare ]] || bash -c "$prepare" >&2 || log "the prepare step failed too (exit $?)"
    log "\$ $c"
    { bash -c "$c" 2>&1 || true; } | head -n 20 >&2
  done
  return 1
}

# runs_note RUNS: a results line when the series have fewer runs than the targets ask for (5).
runs_note() {
  if (($1 < 5)); then
    echo "- **only $1 timed runs per command** (the targets ask for the median of at least 5): the figures are indicative only"
  fi
}

# disk_ok NAME GIB: true when the filesystem of $BENCH_DIR has GIB GiB free (logs `df -h`);
# else a warning, FAILED=1, false.
disk_ok() {
  local free
  free=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 {print int($4 / 1048576)}')
  log "$1: needs ~$2 GiB under $BENCH_DIR; df -h: $(df -h "$BENCH_DIR" | awk 'NR == 2 {print $4 " free of " $2 " on " $6}')"
  if ((free < $2)); then
    log "WARNING: only $free GiB free; section $1 skipped"
    FAILED=1
    return 1
  fi
}

# peak_kb FILE → the largest figure in a file GNU time appended `-f %M` lines to (0 if none).
peak_kb() {
  if [[ -s $1 ]]; then awk '/^[0-9]+$/ && $1 > m {m = $1} END {print m + 0}' "$1"; else echo 0; fi
}

# deep_counts OUT ERR → "caches fresh hidden_stale compiled remembered unproven FROM HS" of one
# `check --deep --format json` run (OUT its stdout, the JSON report; ERR its stderr). The deep
# counts come from a "deep" object in the report when it has one (as `fix`'s has), else from
# the `deep: … (N compiled now, M remembered …)` line on stderr, where this build prints
# them; FROM says which (json/stderr/none), "?" for a count neither has. HS: the source of
# the first hidden-stale cache (sorted paths), "-" if none.
deep_counts() {
  py 'import json, re, sys
r = json.load(open(sys.argv[1]))
s = r.get("summary") or {}
d, src = r.get("deep"), "json"
if not isinstance(d, dict):
    err = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[2], errors="replace").read())
    m = re.search(r"\((\d+) compiled now, (\d+) remembered", err)
    u = re.search(r"(\d+) caches? could not be proven", err)
    d, src = ({"compiled": int(m.group(1)), "remembered": int(m.group(2)),
               "unproven": int(u.group(1)) if u else 0}, "stderr") if m else ({}, "none")
hs = sorted(c.get("source") or c.get("path") for c in r.get("caches") or [] if c.get("state") == "hidden-stale")
print(*[s.get(k, "?") for k in ("caches", "fresh", "hidden-stale")],
      *[d.get(k, "?") for k in ("compiled", "remembered", "unproven")], src, hs[0] if hs else "-")' "$1" "$2"
}

# counts_md COUNTS → deep_counts' line in words, for the results.
counts_md() {
  local caches fresh hs compiled remembered unproven from
  read -r caches fresh hs compiled remembered unproven from _ <<<"$1"
  echo "caches $caches (fresh $fresh, hidden-stale $hs); deep: compiled now **$compiled**, remembered $remembered, not proven $unproven (deep counts from: $from)"
}

# ====================================================================== sections

section_check() {
  local out="$RESULTS_DIR/check.md" json="$BENCH_DIR/check-hyperfine.json"
  local pyc_cmd cmp_cmd floor_cmd summary="" rc=0
  cmp_cmd="$(q "$CORPUS_PYTHON") -m compileall -q $(q "$CORPUS")"
  floor_cmd="find $(q "$CORPUS") -name '*.pyc' -print0 | xargs -0 head -c 16 >/dev/null"
  # Exit 0 and 1 are both normal results of check; anything else fails the run.
  [[ -n $PYCGUARD ]] && pyc_cmd="$(q "$PYCGUARD") check -q $(q "$CORPUS") >/dev/null; test \$? -le 1"

  # One untimed run of each first: a crash or usage error must not be timed.
  if [[ -n $PYCGUARD ]]; then
    summary=$("$PYCGUARD" check -q "$CORPUS" 2>&1) || rc=$?
    if ((rc > 1)); then
      log "WARNING: pycguard check -q exited $rc:"; printf '%s\n' "$summary" | head -n 20 >&2 || true
      PYCGUARD_CHECK_ERROR="exited $rc"; FAILED=1
    elif ((rc == 1)); then
      log "note: pycguard check -q exits 1 on the freshly compiled corpus (every cache is fresh: expected 0)"
    fi
  fi
  "$CORPUS_PYTHON" -m compileall -q "$CORPUS" >/dev/null || die "compileall no-op pass failed on $CORPUS"
  bash -c "$floor_cmd" || die "floor command failed"

  local -a hf=(hyperfine --shell=bash --style=basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$json")
  local -a names=()
  local has_pyc=0
  if [[ -n $PYCGUARD && -z ${PYCGUARD_CHECK_ERROR:-} ]]; then
    hf+=(-n "pycguard check -q" "$pyc_cmd"); names+=(pycguard); has_pyc=1
  fi
  hf+=(-n "python -m compileall -q (no-op)" "$cmp_cmd"); names+=(compileall)
  hf+=(-n "floor: find | xargs head -c 16" "$floor_cmd"); names+=(floor)
  log "hyperfine: ${#names[@]} commands x ($WARMUP warm-up + $RUNS runs) on $CORPUS"
  "${hf[@]}" >&2

  local -A med=() mean=() sd=() cpu=() n=()
  local i=0 name m a s c k
  for name in "${names[@]}"; do
    read -r m a s c k < <(hf_stats "$json" "$i")
    med[$name]=$m mean[$name]=$a sd[$name]=$s cpu[$name]=$c n[$name]=$k
    i=$((i + 1))
  done

  local rss1="" rss4="" w1="" w4=""
  if ((has_pyc)); then
    log "peak RSS: pycguard check -q on corpus (1x) and corpus4x, max of $RSS_RUNS runs each"
    read -r rss1 w1 < <(peak_rss "$PYCGUARD" check -q "$CORPUS") || FAILED=1
    read -r rss4 w4 < <(peak_rss "$PYCGUARD" check -q --include-venvs "$CORPUS4X") || FAILED=1
  fi

  row() {  # row LABEL NAME
    if [[ -n ${med[$2]:-} ]]; then
      echo "| $1 | $(fmt_s "${med[$2]}") | $(fmt_s "${mean[$2]}") ± $(fmt_s "${sd[$2]}") | $(fmt_s "${cpu[$2]}") | ${n[$2]} |"
    else
      echo "| $1 | n/a (${BUILD_ERROR:-${PYCGUARD_CHECK_ERROR:-not run}}) | | | |"
    fi
  }
  local r_cmp="" r_floor="" r_rss=""
  if ((has_pyc)); then
    r_cmp=$(ratio "${med[compileall]}" "${med[pycguard]}")
    r_floor=$(ratio "${med[pycguard]}" "${med[floor]}")
  fi
  [[ -n $rss1 && -n $rss4 ]] && r_rss=$(ratio "$rss4" "$rss1")

  mkdir -p "$RESULTS_DIR"
  {
    echo "## check: \`pycguard check -q\` vs \`compileall\` no-op vs walk-and-read floor"
    echo
    environment_md
    echo
    echo "| command (on corpus, $CORPUS_CACHES caches) | median wall | mean ± σ | user+sys (mean) | runs |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    row "\`pycguard check -q\`" pycguard
    row "\`python -m compileall -q\` (no-op pass, $CORPUS_PYTHON_VERSION)" compileall
    row "floor: \`find -name '*.pyc' -print0 \| xargs -0 head -c 16\`" floor
    echo
    echo "| ratio (medians) | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    if ((has_pyc)); then
      echo "| compileall / pycguard | ${r_cmp}× | ≥ 5× | $(meets "$r_cmp" '>=' 5) |"
      echo "| pycguard / floor | ${r_floor}× | ≤ 1.5× | $(meets "$r_floor" '<=' 1.5) |"
    else
      echo "| compileall / pycguard | n/a | ≥ 5× | |"
      echo "| pycguard / floor | n/a | ≤ 1.5× | |"
    fi
    echo
    echo "| peak RSS of \`pycguard check -q\` (GNU time %M, max of $RSS_RUNS) | corpus (1×) | corpus4x (4×) | 4× / 1× | target |"
    echo "| --- | ---: | ---: | ---: | :---: |"
    if [[ -n $r_rss ]]; then
      echo "| peak RSS | $((rss1 / 1024)) MiB ($rss1 KiB) | $((rss4 / 1024)) MiB ($rss4 KiB) | ${r_rss}× | flat (≤ 1.25×): $(meets "$r_rss" '<=' 1.25) |"
      echo "| wall time of that run (informational) | ${w1} s | ${w4} s | | |"
    else
      echo "| peak RSS | n/a | n/a | | flat |"
    fi
    echo
    if [[ -n $summary ]]; then
      echo "pycguard's summary on the corpus (exit $rc):"
      echo
      echo '```'
      printf '%s\n' "$summary"
      echo '```'
      echo
    fi
    echo "Commands (run by hyperfine through bash; \`test \$? -le 1\` accepts check's exit 0 and 1):"
    echo
    echo '```'
    [[ -n ${pyc_cmd:-} ]] && echo "$pyc_cmd"
    echo "$cmp_cmd"
    echo "$floor_cmd"
    echo "$GNU_TIME -f '%M %e' ${PYCGUARD:-pycguard} check -q $CORPUS"
    echo "$GNU_TIME -f '%M %e' ${PYCGUARD:-pycguard} check -q --include-venvs $CORPUS4X"
    echo '```'
  } > "$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $json)"
}

# deep: the cold `check --deep` (store emptied before every run) vs `compileall -f -q -j0`,
# side by side in one hyperfine invocation (COLD_RUNS runs each); the second run (store warm,
# hyperfine), and one same-size edit with its mtime restored (only that file is compiled
# again). Works on copies under $BENCH_DIR/deep; never touches the corpus.
section_deep() {
  local out="$RESULTS_DIR/deep.md" json="$BENCH_DIR/deep-hyperfine.json" cold_json="$BENCH_DIR/deep-cold-hyperfine.json"
  local work="$BENCH_DIR/deep" tree cmp store edited first_out edit_out
  local ew eu es em rss2 rc
  tree="$work/tree" cmp="$work/compileall-tree" store="$work/store"
  if [[ -z $PYCGUARD ]]; then
    log "WARNING: no pycguard binary (${BUILD_ERROR:-not built}); section deep skipped"
    FAILED=1
    return 0
  fi
  rm -rf "$work"
  disk_ok deep 3 || return 0
  log "copying the corpus twice under $work (the corpus itself is never changed)"
  mkdir -p "$work" "$store"
  cp -a "$CORPUS" "$tree"
  cp -a "$CORPUS" "$cmp"
  sync
  # Files changed within 2 s of a run are never remembered by identity (racy window).
  sleep 2
  # Same warm page cache for both contenders: read every source and cache once.
  find "$tree" "$cmp" \( -name '*.py' -o -name '*.pyc' \) -print0 | xargs -0 cat >/dev/null

  # Cold: the store deleted before every run (nothing kept: no proofs, no memo, no probes);
  # compileall -f rewrites every cache of its copy each run. GNU time inside the timed
  # command appends each run's peak RSS (its overhead is a fork and an exec). compileall
  # runs first, so the last run leaves the store as pycguard's cold run wrote it.
  local prep_cold cmd_cold cmd_cmp s_cold s_cmp
  prep_cold="rm -rf $(q "$store") && sync"
  cmd_cmp="$GNU_TIME -a -o $(q "$work/compileall.rss") -f %M $(q "$CORPUS_PYTHON") -m compileall -f -q -j0 $(q "$cmp") >/dev/null"
  cmd_cold="$GNU_TIME -a -o $(q "$work/cold.rss") -f %M $(q "$PYCGUARD") check --deep -q --cache-dir $(q "$store") $(q "$tree") >$(q "$work/first.out") 2>&1; test \$? -le 1"
  log "cold check --deep (empty store, compiles all $CORPUS_CACHES sources) vs compileall -f -q -j0: $COLD_RUNS runs each"
  hf_multi "$cold_json" 0 "$COLD_RUNS" "$prep_cold" \
    "python -m compileall -f -q -j0" "$cmd_cmp" \
    "pycguard check --deep -q (empty store)" "$cmd_cold" || { FAILED=1; return 0; }
  s_cmp=$(hf_series "$cold_json" 0)
  s_cold=$(hf_series "$cold_json" 1)
  first_out=$(cat "$work/first.out")
  local fm cm
  fm=$(peak_kb "$work/cold.rss")
  cm=$(peak_kb "$work/compileall.rss")

  log "second check --deep (store warm): hyperfine --warmup 1 --runs $RUNS"
  local cmd2
  cmd2="$(q "$PYCGUARD") check --deep -q --cache-dir $(q "$store") $(q "$tree") >/dev/null; test \$? -le 1"
  hyperfine --shell=bash --style=basic --warmup 1 --runs "$RUNS" --export-json "$json" -n "pycguard check --deep -q (second run)" "$cmd2" >&2
  local s2
  s2=$(hf_series "$json" 0)
  read -r rss2 _ < <(peak_rss "$PYCGUARD" check --deep -q --cache-dir "$store" "$tree") || FAILED=1
  local second_out
  second_out=$("$PYCGUARD" check --deep -q --cache-dir "$store" "$tree" 2>&1) || true

  # One same-size edit with the mtime restored: bump the last digit of the first
  # `__version__ = "…"` found (sorted paths). The header still matches; only --deep sees it.
  edited=$(py 'import os, re, sys
root = sys.argv[1]
pat = re.compile(rb"^(__version__\s*=\s*[\x27\x22][^\x27\x22\n]*?)(\d)([\x27\x22])", re.M)
for d, dirs, files in sorted(os.walk(root)):
    dirs.sort()
    for f in sorted(files):
        if not f.endswith(".py"):
            continue
        p = os.path.join(d, f)
        data = open(p, "rb").read()
        m = pat.search(data)
        if not m:
            continue
        digit = str((int(m.group(2)) + 1) % 10).encode()
        st = os.stat(p)
        open(p, "wb").write(data[:m.start(2)] + digit + data[m.end(2):])
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        print(p)
        sys.exit(0)
sys.exit("no __version__ line found")' "$tree") || { log "WARNING: could not edit a file"; FAILED=1; return 0; }
  log "edited $edited (same size, mtime restored); check --deep again"
  rc=0
  edit_out=$("$GNU_TIME" -f '%e %U %S %M' -o "$work/edit.time" "$PYCGUARD" check --deep --cache-dir "$store" "$tree" 2>&1) || rc=$?
  ((rc <= 1)) || { log "WARNING: check --deep after the edit exited $rc"; FAILED=1; }
  read -r ew eu es em < <(tail -n1 "$work/edit.time")

  local ecpu n_cold
  ecpu=$(py 'import sys; print("%.2f" % (float(sys.argv[1]) + float(sys.argv[2])))' "$eu" "$es")
  read -r _ _ _ _ n_cold _ <<<"$s_cold"
  mkdir -p "$RESULTS_DIR"
  {
    echo "## deep: \`pycguard check --deep\` — cold run vs \`compileall -f\`, second run, one edit"
    echo
    environment_md
    echo "- copies of the corpus under \`$work\`; store: \`--cache-dir $store\`, deleted before every cold run (\`--prepare '$prep_cold'\`: no proofs, no memo, no interpreter probes kept); page cache warmed by reading every source and cache of both copies first"
    echo "- the cold runs: \`compileall -f\` and \`check --deep\` side by side in one hyperfine invocation (\`--warmup 0 --runs $COLD_RUNS\`, PYCGUARD_BENCH_COLD_RUNS), each wrapped in GNU time for its peak RSS"
    runs_note "$n_cold"
    echo
    echo "| run (on a copy of the corpus, $CORPUS_CACHES caches) | wall: median (min–max) | CPU user+sys (mean, incl. workers) | runs | peak RSS |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    echo "| cold \`check --deep -q\`, empty store (compiles every source) | $(range_cell "$s_cold") | $(fmt_s "$(cut -d' ' -f4 <<<"$s_cold")") | $n_cold | $((fm / 1024)) MiB (max of the runs) |"
    echo "| \`python -m compileall -f -q -j0\` ($CORPUS_PYTHON_VERSION; compiles and writes every cache) | $(range_cell "$s_cmp") | $(fmt_s "$(cut -d' ' -f4 <<<"$s_cmp")")¹ | $(cut -d' ' -f5 <<<"$s_cmp") | $((cm / 1024)) MiB (largest process) |"
    echo "| second \`check --deep -q\`, unchanged tree (--warmup 1) | $(range_cell "$s2") | $(fmt_s "$(cut -d' ' -f4 <<<"$s2")") | $(cut -d' ' -f5 <<<"$s2") | $((rss2 / 1024)) MiB |"
    echo "| \`check --deep\` after one same-size edit with the mtime restored (1 run, GNU time) | $(fmt_s "$ew") | $(fmt_s "$ecpu") | 1 | $((em / 1024)) MiB |"
    echo
    echo "¹ hyperfine's user+sys misses compileall's \`-j0\` workers (Python 3.12 runs them under a forkserver that is never waited for)."
    echo
    echo "| ratio (medians) | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    ratio_row "cold --deep / compileall -f (wall)" "$s_cold" "$s_cmp" '<=' 0.65
    ratio_row "cold --deep / second --deep (wall)" "$s_cold" "$s2" '>=' 20
    echo
    echo "Last cold run (exit status 0 or 1 accepted):"
    echo
    echo '```'
    printf '%s\n' "${first_out:-(no output: -q prints problems only)}"
    echo '```'
    echo
    echo "Second run:"
    echo
    echo '```'
    printf '%s\n' "${second_out:-(no output: -q prints problems only)}"
    echo '```'
    echo
    echo "After editing \`${edited#"$tree"/}\` (one digit of \`__version__\`, same size, mtime restored) — only that file is compiled again:"
    echo
    echo '```'
    printf '%s\n' "$edit_out"
    echo '```'
    echo
    echo "Commands (hyperfine runs them through bash):"
    echo
    echo '```'
    echo "# prepare (before every cold run of both): $prep_cold"
    echo "$cmd_cmp"
    echo "$cmd_cold"
    echo "$cmd2"
    echo "$GNU_TIME -f '%e %U %S %M' $PYCGUARD check --deep --cache-dir $store $tree"
    echo '```'
  } > "$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $cold_json, $json)"
}

# ====================================================================== sections on copies
# compile, clean and fix change the tree they run on, so they work only on fresh
# `cp -a` copies of the corpus (mtimes preserved: the caches stay fresh) under
# $BENCH_DIR/NAME, which is emptied when the section starts and removed when it
# ends. Every pycguard command there runs with PYCGUARD_CACHE_DIR=$BENCH_DIR/NAME/memo,
# so the user's scan memo and interpreter probes are neither used nor changed.

# work_setup NAME: WORK_DIR=$BENCH_DIR/NAME (emptied), WORK_MEMO (pycguard's cache
# directory for the section, not created), WORK_HELPER (tree.py, see write_tree_helper),
# WORK_PYC: a copy of $PYCGUARD, so that a rebuild of target/ while the section runs
# cannot mix two builds in one table (empty when pycguard did not build).
work_setup() {
  WORK_DIR="$BENCH_DIR/$1" WORK_MEMO="$BENCH_DIR/$1/memo" WORK_HELPER="$BENCH_DIR/$1/tree.py" WORK_PYC=""
  rm -rf "$WORK_DIR"
  mkdir -p "$WORK_DIR/empty"
  # An interrupted run must not leave GBs of copies behind.
  trap 'rm -rf -- "$WORK_DIR"; exit 130' INT TERM
  write_tree_helper "$WORK_HELPER"
  if [[ -n $PYCGUARD ]]; then
    WORK_PYC="$WORK_DIR/pycguard"
    cp "$PYCGUARD" "$WORK_PYC"
  fi
}

work_done() {
  log "removing $WORK_DIR"
  rm -rf "$WORK_DIR"
  trap - INT TERM
}

# prime_memo: let pycguard probe the interpreters once into WORK_MEMO (nothing of any
# tree is remembered by that), so the timed runs do not include the probes.
prime_memo() {
  [[ -n $WORK_PYC ]] || return 0
  PYCGUARD_CACHE_DIR=$WORK_MEMO "$WORK_PYC" interpreters --python "$CORPUS_PYTHON" "$WORK_DIR/empty" >/dev/null ||
    log "WARNING: pycguard interpreters --python $CORPUS_PYTHON failed"
}

# fresh_copy_cmd SRC DST → shell command making DST a fresh `cp -a` copy of SRC, its
# writes flushed (`sync`) so that write-back does not overlap the timed run.
fresh_copy_cmd() { echo "rm -rf $(q "$2") && cp -a $(q "$1") $(q "$2") && sync"; }

# hf_one JSON NAME WARMUP RUNS PREPARE CMD → "median mean stddev user+sys runs" of CMD
# (hyperfine; PREPARE, if not empty, runs untimed before every run, its stderr appended
# to JSON.prepare.log). A failed series is retried once (a copy can fail for reasons of
# its own); if it fails again, logs the prepare errors and CMD's output from one more
# run, and returns 1.
hf_one() {
  local json=$1 name=$2 warmup=$3 runs=$4 prepare=$5 cmd=$6 output attempt plog="$1.prepare.log"
  local -a hf=(hyperfine --shell=bash --style=basic --warmup "$warmup" --runs "$runs" --export-json "$json")
  [[ -n $prepare ]] && hf+=(--prepare "{ $prepare; } 2>>$(q "$plog")")
  for attempt in 1 2; do
    log "hyperfine: $name ($warmup warm-up + $runs runs${prepare:+, --prepare before each})$( ((attempt == 1)) || echo ': second attempt')"
    if "${hf[@]}" -n "$name" "$cmd" >&2; then
      hf_stats "$json" 0
      return 0
    fi
    log "WARNING: hyperfine failed on '$name' (attempt $attempt)"
    if [[ -s $plog ]]; then
      log "stderr of its prepare step:"
      tail -n 10 "$plog" | sed 's/^/  /' >&2
    fi
  done
  log "WARNING: '$cmd' failed twice; its output on one more run:"
  [[ -z $prepare ]] || bash -c "$prepare" >&2 || log "the prepare step failed too (exit $?)"
  output=$(bash -c "$cmd" 2>&1) || true
  printf '%s\n' "$output" | head -n 20 >&2 || true
  return 1
}

# stats_row LABEL TREE MEMO STATS [WHY] → a table row; STATS as hf_one prints, or empty (n/a: WHY).
stats_row() {
  local m a s c k
  if [[ -n $4 ]]; then
    read -r m a s c k <<<"$4"
    echo "| $1 | $2 | $3 | $(fmt_s "$m") | $(fmt_s "$a") ± $(fmt_s "$s") | $(fmt_s "$c") | $k |"
  else
    echo "| $1 | $2 | $3 | n/a (${5:-not run}) | | | |"
  fi
}

# ratio_row LABEL NUM_STATS DEN_STATS OP TARGET → "| LABEL | x× | OP x× | met |" (medians;
# OP "" = informational, no target).
ratio_row() {
  local r op=${4/>=/≥}
  op=${op/<=/≤}
  if [[ -z $2 || -z $3 ]]; then
    echo "| $1 | n/a | ${4:+$op $5×} | |"
    return 0
  fi
  r=$(ratio "${2%% *}" "${3%% *}")
  if [[ -n $4 ]]; then
    echo "| $1 | ${r}× | $op $5× | $(meets "$r" "$4" "$5") |"
  else
    echo "| $1 | ${r}× | (informational) | |"
  fi
}

# section_env_md: environment_md without its hyperfine line (these sections give runs per row).
section_env_md() {
  environment_md | sed '/^- hyperfine/d'
  echo "- $(hyperfine --version); OS page cache warm (each copy is made just before its run, then \`sync\`); copy time excluded (hyperfine \`--prepare\`)"
  if [[ -n $WORK_PYC ]]; then
    echo "- pycguard: \`$WORK_PYC\`, a copy of \`$PYCGUARD\` made when the section started; its memo: \`PYCGUARD_CACHE_DIR=$WORK_MEMO\` (not the user's)"
  else
    echo "- pycguard: not measured (${BUILD_ERROR:-no binary})"
  fi
}

# write_tree_helper FILE: the Python helper these sections run with the corpus's interpreter.
#   stale ROOT EVERY OUT       append a comment line to every EVERY-th .py (sorted paths)
#                              that has a cache; list them in OUT
#   snap ROOT OUT              caches: inode + mtime; .py: sha256; other entries: type, size, mtime
#   fixdiff BEFORE AFTER STALE EVERY  Markdown bullets; exit 1 unless exactly the stale
#                              sources' caches changed and nothing else did
#   unchanged BEFORE AFTER     Markdown bullet; exit 1 if any cache changed, appeared or vanished
#   list ROOT OUT              every entry with its type (symlinks not followed)
#   cleandiff BEFORE_A AFTER_A BEFORE_B AFTER_B  Markdown bullets comparing what two
#                              cleaners removed; exit 1 unless the same set
#   edits ROOT STATE           list in STATE the sources (sorted paths) with a cache and a
#                              `__version__ = "…"` ending in a digit; print how many
#   edit STATE                 put back the file edited last (bytes, atime, mtime), then bump
#                              that digit in the next one (same size, times restored: the
#                              header stays fresh, only a proof sees it); print its path.
#                              Every edit makes bytes never seen before (after a pass over the
#                              list the bump grows; it fails after 9 passes)
#   restore STATE              put back the file edited last; print how many edits were made
write_tree_helper() {
  cat >"$1" <<'EOF'
import base64, hashlib, importlib.util, json, os, re, sys


def walk(root):
    """(relative path, kind) of every entry under root; kind f/d/l/o; symlinks not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                kind = "l"
            elif name in dirnames:
                kind = "d"
            else:
                kind = "f" if os.path.isfile(p) else "o"
            yield os.path.relpath(p, root), kind


def is_cache(rel):
    return rel.endswith((".pyc", ".pyo"))


def some(items, n=10):
    items = sorted(items)
    more = " … and %d more" % (len(items) - n) if len(items) > n else ""
    return ", ".join("`%s`" % i for i in items[:n]) + more


def cmd_stale(root, every, out):
    srcs = sorted((r for r, k in walk(root) if k == "f" and r.endswith(".py")), key=os.fsencode)
    cached = [s for s in srcs if os.path.isfile(os.path.join(root, importlib.util.cache_from_source(s)))]
    picked = cached[:: int(every)]
    for s in picked:
        with open(os.path.join(root, s), "ab") as f:
            f.write(b"\n# pycguard bench: made stale\n")
    with open(out, "w") as f:
        f.write("".join(s + "\n" for s in picked))


def cmd_snap(root, out):
    snap = {"caches": {}, "sources": {}, "others": {}}
    for rel, kind in walk(root):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        if kind == "f" and is_cache(rel):
            snap["caches"][rel] = [st.st_ino, st.st_mtime_ns]
        elif kind == "f" and rel.endswith(".py"):
            with open(p, "rb") as f:
                snap["sources"][rel] = hashlib.sha256(f.read()).hexdigest()
        elif kind == "d":
            snap["others"][rel] = [kind]   # a directory's mtime changes with its entries
        else:
            snap["others"][rel] = [kind, st.st_size, st.st_mtime_ns]
    with open(out, "w") as f:
        json.dump(snap, f)


def changes(b, a):
    common = b.keys() & a.keys()
    return {k for k in common if b[k] != a[k]}, a.keys() - b.keys(), b.keys() - a.keys()


def cmd_fixdiff(before, after, stale_list, every):
    b, a = (json.load(open(p)) for p in (before, after))
    with open(stale_list) as f:
        stale = [line.rstrip("\n") for line in f]
    expected = {importlib.util.cache_from_source(s) for s in stale}
    changed, added, removed = changes(b["caches"], a["caches"])
    new_inode = {c for c in changed if b["caches"][c][0] != a["caches"][c][0]}
    unexpected, untouched = changed - expected, expected - changed
    s_changed, s_added, s_removed = changes(b["sources"], a["sources"])
    o_changed, o_added, o_removed = changes(b["others"], a["others"])
    s_all, o_all = s_changed | s_added | s_removed, o_changed | o_added | o_removed
    ok = not (unexpected or untouched or added or removed or s_all or o_all)
    print("- sources made stale: %d (every %sth of the sorted `.py` paths that have a cache; one comment line appended, so size and mtime changed)" % (len(stale), every))
    print("- caches before / after: %d / %d (appeared %d, vanished %d)%s%s" % (
        len(b["caches"]), len(a["caches"]), len(added), len(removed),
        ": appeared " + some(added) if added else "", "; vanished " + some(removed) if removed else ""))
    print("- caches changed (inode or mtime): %d — %d of the %d stale ones (%d with a new inode, %d rewritten in place)" % (
        len(changed), len(changed & expected), len(expected), len(new_inode), len(changed - new_inode)))
    print("- stale caches left unchanged: %d%s" % (len(untouched), ": " + some(untouched) if untouched else ""))
    print("- fresh caches changed: %d of %d%s" % (len(unexpected), len(b["caches"]) - len(expected), ": " + some(unexpected) if unexpected else ""))
    print("- sources (`.py`, sha256): %d compared, %d changed, %d appeared or vanished%s" % (
        len(b["sources"]), len(s_changed), len(s_added | s_removed), ": " + some(s_all) if s_all else ""))
    print("- other entries (files: size + mtime, symlinks, directories): %d compared, %d changed, %d appeared or vanished%s" % (
        len(b["others"]), len(o_changed), len(o_added | o_removed), ": " + some(o_all) if o_all else ""))
    print("- touched exactly the stale caches and nothing else: %s" % ("yes" if ok else "**no**"))
    sys.exit(0 if ok else 1)


def cmd_unchanged(before, after):
    b, a = (json.load(open(p)) for p in (before, after))
    changed, added, removed = changes(b["caches"], a["caches"])
    bad = changed | added | removed
    print("- caches rewritten, added or removed by the no-op runs: %d of %d%s" % (len(bad), len(b["caches"]), ": " + some(bad) if bad else ""))
    sys.exit(1 if bad else 0)


def cmd_list(root, out):
    with open(out, "w") as f:
        json.dump(dict(walk(root)), f)


def cmd_cleandiff(before_a, after_a, before_b, after_b):
    ba, aa, bb, ab = (json.load(open(p)) for p in (before_a, after_a, before_b, after_b))
    rem_a, rem_b = ba.keys() - aa.keys(), bb.keys() - ab.keys()
    new_a, new_b = aa.keys() - ba.keys(), ab.keys() - bb.keys()

    def kinds(paths, tree):
        files = [p for p in paths if tree[p] == "f"]
        dirs = [p for p in paths if tree[p] == "d"]
        other = len(paths) - len(files) - len(dirs)
        return "%d files (%d of them `.pyc`/`.pyo`) + %d directories (%d of them `__pycache__`)%s" % (
            len(files), sum(map(is_cache, files)), len(dirs),
            sum(os.path.basename(d) == "__pycache__" for d in dirs), " + %d other" % other if other else "")

    def left(tree):
        return sum(1 for p in tree if is_cache(p) or os.path.basename(p) == "__pycache__")

    print("- before: %d entries in each copy (identical listings: %s)" % (len(ba), "yes" if ba == bb else "**no**"))
    print("- removed by `pycguard clean`: %s" % kinds(rem_a, ba))
    print("- removed by `pyclean`: %s" % kinds(rem_b, bb))
    print("- removed by both: %d; only by pycguard: %d%s; only by pyclean: %d%s" % (
        len(rem_a & rem_b), len(rem_a - rem_b), " (" + some(rem_a - rem_b) + ")" if rem_a - rem_b else "",
        len(rem_b - rem_a), " (" + some(rem_b - rem_a) + ")" if rem_b - rem_a else ""))
    print("- entries that appeared: pycguard %d%s, pyclean %d%s" % (
        len(new_a), " (" + some(new_a) + ")" if new_a else "", len(new_b), " (" + some(new_b) + ")" if new_b else ""))
    print("- caches or `__pycache__` directories left: pycguard %d, pyclean %d" % (left(aa), left(ab)))
    same = rem_a == rem_b and not new_a and not new_b and ba == bb
    print("- same set removed: %s" % ("yes" if same else "**no**"))
    sys.exit(0 if same else 1)


# One same-size edit that only a proof sees: the last digit of a `__version__ = "…"` string.
VERSION = re.compile(rb"^(__version__\s*=\s*[\x27\x22][^\x27\x22\n]*?)(\d)([\x27\x22])", re.M)


def save(state, st):
    tmp = state + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f)
    os.replace(tmp, state)


def cmd_edits(root, state):
    srcs = sorted((r for r, k in walk(root) if k == "f" and r.endswith(".py")), key=os.fsencode)
    picked = []
    for s in srcs:
        if not os.path.isfile(os.path.join(root, importlib.util.cache_from_source(s))):
            continue
        with open(os.path.join(root, s), "rb") as f:
            if VERSION.search(f.read()):
                picked.append(s)
    if not picked:
        sys.exit("no source with a cache and a `__version__` ending in a digit under %s" % root)
    save(state, {"root": root, "candidates": picked, "next": 0, "last": None, "edited": []})
    print(len(picked))


def restore(state, st):
    last = st["last"]
    if last:
        p = os.path.join(st["root"], last["path"])
        with open(p, "wb") as f:
            f.write(base64.b64decode(last["data"]))
        os.utime(p, ns=(last["atime_ns"], last["mtime_ns"]))
        st["last"] = None
        save(state, st)


def cmd_edit(state):
    """Put back the file edited last (bytes and times), then edit the next candidate."""
    with open(state) as f:
        st = json.load(f)
    restore(state, st)
    cands, n = st["candidates"], st["next"]
    rnd, i = divmod(n, len(cands))
    if rnd >= 9:   # the 10th bump of a digit would bring back bytes already proven
        sys.exit("out of edits: %d made, %d candidates x 9 digits" % (n, len(cands)))
    rel = cands[i]
    p = os.path.join(st["root"], rel)
    with open(p, "rb") as f:
        data = f.read()
    t = os.stat(p)
    m = VERSION.search(data)
    digit = str((int(m.group(2)) + 1 + rnd) % 10).encode()
    new = data[:m.start(2)] + digit + data[m.end(2):]
    assert len(new) == len(data)
    # Saved before the edit: a crash in between still leaves what restore needs.
    st["last"] = {"path": rel, "data": base64.b64encode(data).decode(), "atime_ns": t.st_atime_ns, "mtime_ns": t.st_mtime_ns}
    st["next"] = n + 1
    st["edited"].append(rel)
    save(state, st)
    with open(p, "wb") as f:
        f.write(new)
    os.utime(p, ns=(t.st_atime_ns, t.st_mtime_ns))
    print(rel)


def cmd_restore(state):
    with open(state) as f:
        st = json.load(f)
    restore(state, st)
    print("%d edits made, %d different files, last: %s" % (
        st["next"], len(set(st["edited"])), st["edited"][-1] if st["edited"] else "none"))


commands = {"stale": cmd_stale, "snap": cmd_snap, "fixdiff": cmd_fixdiff,
            "unchanged": cmd_unchanged, "list": cmd_list, "cleandiff": cmd_cleandiff,
            "edits": cmd_edits, "edit": cmd_edit, "restore": cmd_restore}
commands[sys.argv[1]](*sys.argv[2:])
EOF
}

# count_pyc DIR → number of .pyc files under DIR (0 when DIR does not exist).
count_pyc() {
  if [[ -d $1 ]]; then find "$1" -name '*.pyc' | wc -l; else echo 0; fi
}

# deep_verdict RC → how `check -q --deep` ended, for the results.
deep_verdict() {
  if (($1 == 0)); then echo "exit 0: every cache fresh"; else echo "exit $1: **not all fresh**"; fi
}

# tree_py CMD ARGS...: run the helper written by work_setup.
tree_py() { "$CORPUS_BASE_PYTHON" "$WORK_HELPER" "$@"; }

# compile: (a) a tree without caches, `pycguard compile --python` vs `compileall -j0`
# (fresh stripped copy per run), then `check --deep` proves pycguard's output; (b) the
# no-op second run on that compiled tree, memo warm and cold, vs compileall's no-op.
section_compile() {
  local out="$RESULTS_DIR/compile.md" raw="$BENCH_DIR/compile-hyperfine"
  work_setup compile
  rm -rf "$raw" && mkdir -p "$raw"
  local stripped="$WORK_DIR/stripped" t_pyc="$WORK_DIR/tree-pycguard" t_cmp="$WORK_DIR/tree-compileall"
  local mem cmd_a_pyc="" cmd_a_cmp prep_a_pyc prep_a_cmp
  local s_a_pyc="" s_a_cmp="" why_a="${BUILD_ERROR:-not run}"
  mem="PYCGUARD_CACHE_DIR=$(q "$WORK_MEMO")"

  log "compile: a copy of the corpus without __pycache__ directories ($stripped)"
  cp -a "$CORPUS" "$stripped"
  find "$stripped" -name __pycache__ -type d -prune -exec rm -rf {} +
  local left
  left=$(find "$stripped" \( -name '*.pyc' -o -name '*.pyo' \) | wc -l)
  ((left == 0)) || die "$left caches left in $stripped after removing every __pycache__"
  prime_memo

  prep_a_pyc=$(fresh_copy_cmd "$stripped" "$t_pyc")
  prep_a_cmp=$(fresh_copy_cmd "$stripped" "$t_cmp")
  cmd_a_cmp="$(q "$CORPUS_PYTHON") -m compileall -q -j0 $(q "$t_cmp")"
  [[ -n $WORK_PYC ]] && cmd_a_pyc="$mem $(q "$WORK_PYC") compile -q --python $(q "$CORPUS_PYTHON") $(q "$t_pyc")"
  if [[ -n $cmd_a_pyc ]]; then
    s_a_pyc=$(hf_one "$raw/a-pycguard.json" "pycguard compile (no caches)" 0 "$COPY_RUNS" "$prep_a_pyc" "$cmd_a_pyc") ||
      { s_a_pyc="" why_a="failed, see the log"; FAILED=1; }
  fi
  s_a_cmp=$(hf_one "$raw/a-compileall.json" "compileall -j0 (no caches)" 0 "$COPY_RUNS" "$prep_a_cmp" "$cmd_a_cmp") ||
    { s_a_cmp=""; FAILED=1; }
  local n_pyc n_cmp
  n_pyc=$(count_pyc "$t_pyc")
  n_cmp=$(count_pyc "$t_cmp")
  rm -rf "$t_cmp" "$stripped"

  # Is what pycguard wrote right? --deep compiles every source again and compares the code.
  local deep_out="" deep_rc="" deep_cmd=""
  if [[ -n $s_a_pyc ]]; then
    deep_cmd="$mem $(q "$WORK_PYC") check -q --deep --python $(q "$CORPUS_PYTHON") $(q "$t_pyc")"
    log "verifying the tree pycguard compiled (last timed run): $deep_cmd"
    deep_rc=0
    deep_out=$(bash -c "$deep_cmd" 2>&1) || deep_rc=$?
    ((deep_rc == 0)) || { log "WARNING: check --deep exited $deep_rc on the tree pycguard compiled"; FAILED=1; }
  fi

  # (b) the no-op second run, on the tree pycguard compiled (else a copy of the corpus).
  local noop="$t_pyc" noop_what="the tree \`pycguard compile\` wrote in its last timed run"
  if [[ -z $s_a_pyc ]]; then
    noop="$WORK_DIR/tree-noop" noop_what="a \`cp -a\` copy of the corpus (pycguard's compile did not run)"
    cp -a "$CORPUS" "$noop"
  fi
  tree_py snap "$noop" "$WORK_DIR/noop-before.json"
  local cold="$WORK_DIR/memo-cold" cmd_b_warm="" cmd_b_cold="" cmd_b_cmp prep_b_cold
  local s_b_warm="" s_b_cold="" s_b_cmp="" why_b="${BUILD_ERROR:-not run}"
  cmd_b_cmp="$(q "$CORPUS_PYTHON") -m compileall -q $(q "$noop")"
  prep_b_cold="rm -rf $(q "$cold")"
  if [[ -n $WORK_PYC ]]; then
    cmd_b_warm="$mem $(q "$WORK_PYC") compile -q $(q "$noop")"
    cmd_b_cold="PYCGUARD_CACHE_DIR=$(q "$cold") $(q "$WORK_PYC") compile -q $(q "$noop")"
    s_b_warm=$(hf_one "$raw/b-pycguard-warm.json" "pycguard compile no-op (memo warm)" "$WARMUP" "$RUNS" "" "$cmd_b_warm") ||
      { s_b_warm="" why_b="failed, see the log"; FAILED=1; }
    s_b_cold=$(hf_one "$raw/b-pycguard-cold.json" "pycguard compile no-op (memo cold)" "$WARMUP" "$RUNS" "$prep_b_cold" "$cmd_b_cold") ||
      { s_b_cold="" why_b="failed, see the log"; FAILED=1; }
  fi
  s_b_cmp=$(hf_one "$raw/b-compileall.json" "compileall no-op" "$WARMUP" "$RUNS" "" "$cmd_b_cmp") || { s_b_cmp=""; FAILED=1; }
  tree_py snap "$noop" "$WORK_DIR/noop-after.json"
  local noop_check noop_rc=0
  noop_check=$(tree_py unchanged "$WORK_DIR/noop-before.json" "$WORK_DIR/noop-after.json") || noop_rc=$?
  ((noop_rc == 0)) || { log "WARNING: the no-op compile runs changed caches"; FAILED=1; }

  mkdir -p "$RESULTS_DIR"
  {
    echo "## compile: \`pycguard compile\` vs \`python -m compileall\`"
    echo
    section_env_md
    echo
    echo "(a) a copy of the corpus with every \`__pycache__\` removed ($CORPUS_SOURCES sources), a fresh copy before every run:"
    echo
    echo "| command | tree | pycguard memo | median wall | mean ± σ | user+sys (mean) | runs |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    stats_row "\`pycguard compile -q --python CORPUS/bin/python\`" "no caches" "new tree: none of its files remembered; interpreter probes remembered" "$s_a_pyc" "$why_a"
    stats_row "\`python -m compileall -q -j0\` ($CORPUS_PYTHON_VERSION)" "no caches" "—" "$s_a_cmp" "failed, see the log"
    echo
    echo "(b) the no-op second run on $noop_what ($CORPUS_SOURCES fresh caches), all runs on the same tree:"
    echo
    echo "| command | tree | pycguard memo | median wall | mean ± σ | user+sys (mean) | runs |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    stats_row "\`pycguard compile -q\`" "up to date" "warm (after $WARMUP warm-up run(s) on this tree)" "$s_b_warm" "$why_b"
    stats_row "\`pycguard compile -q\`" "up to date" "cold (directory deleted before every run: no scan memo, no interpreter probes)" "$s_b_cold" "$why_b"
    stats_row "\`python -m compileall -q\` (no-op pass)" "up to date" "—" "$s_b_cmp" "failed, see the log"
    echo
    echo "| ratio (medians) | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    ratio_row "(a) compileall -j0 / pycguard compile, no caches" "$s_a_cmp" "$s_a_pyc" '>=' 1
    ratio_row "(b) compileall / pycguard compile, no-op, memo warm" "$s_b_cmp" "$s_b_warm" '>=' 5
    ratio_row "(b) compileall / pycguard compile, no-op, memo cold" "$s_b_cmp" "$s_b_cold" "" ""
    echo
    echo "user+sys of \`compileall -j0\` misses its workers: Python 3.12's compileall runs them under a forkserver that is never waited for, so their CPU is not counted (with \`-j1\` it is)."
    echo
    echo "Checks:"
    echo
    echo "- caches written in the last timed run of (a): pycguard $n_pyc, compileall $n_cmp (of $CORPUS_SOURCES sources)"
    if [[ -n $deep_rc ]]; then
      echo "- \`check -q --deep\` on the tree pycguard compiled: $(deep_verdict "$deep_rc")"
    else
      echo "- \`check -q --deep\` on the tree pycguard compiled: not run (pycguard's compile did not run)"
    fi
    printf '%s\n' "$noop_check"
    if [[ -n $deep_out ]]; then
      echo
      echo '```'
      printf '%s\n' "$deep_out"
      echo '```'
    fi
    echo
    echo "Commands (hyperfine runs them through bash; \`--prepare\` runs untimed before each run, its stderr appended to a log):"
    echo
    echo '```'
    echo "# (a) prepare: $prep_a_pyc"
    [[ -n $cmd_a_pyc ]] && echo "$cmd_a_pyc"
    echo "# (a) prepare: $prep_a_cmp"
    echo "$cmd_a_cmp"
    [[ -n $deep_cmd ]] && echo "$deep_cmd"
    [[ -n $cmd_b_warm ]] && echo "$cmd_b_warm"
    if [[ -n $cmd_b_cold ]]; then
      echo "# (b) prepare: $prep_b_cold"
      echo "$cmd_b_cold"
    fi
    echo "$cmd_b_cmp"
    echo '```'
  } >"$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $raw/)"
  work_done
}

# clean: `pycguard clean -q` vs `pyclean -q` (and pyclean kept out of the venv's lib64 ->
# lib symlink, which it otherwise follows), a fresh copy before every run; then what each
# removed from a copy of its own, compared file by file.
section_clean() {
  local out="$RESULTS_DIR/clean.md" raw="$BENCH_DIR/clean-hyperfine" pyclean="$BENCH_DIR/tools/bin/pyclean"
  work_setup clean
  rm -rf "$raw" && mkdir -p "$raw"
  local tree="$WORK_DIR/tree" prep mem cmd_pyc="" cmd_pc cmd_pc2
  local s_pyc="" s_pc="" s_pc2="" why="${BUILD_ERROR:-not run}"
  mem="PYCGUARD_CACHE_DIR=$(q "$WORK_MEMO")"
  prep=$(fresh_copy_cmd "$CORPUS" "$tree")
  cmd_pc="$(q "$pyclean") -q $(q "$tree")"
  cmd_pc2="$(q "$pyclean") -q $(q "$tree") --ignore lib64"
  [[ -n $WORK_PYC ]] && cmd_pyc="$mem $(q "$WORK_PYC") clean -q $(q "$tree")"

  if [[ -n $cmd_pyc ]]; then
    s_pyc=$(hf_one "$raw/pycguard.json" "pycguard clean" 0 "$COPY_RUNS" "$prep" "$cmd_pyc") ||
      { s_pyc="" why="failed, see the log"; FAILED=1; }
  fi
  s_pc=$(hf_one "$raw/pyclean.json" "pyclean" 0 "$COPY_RUNS" "$prep" "$cmd_pc") || { s_pc=""; FAILED=1; }
  s_pc2=$(hf_one "$raw/pyclean-ignore-lib64.json" "pyclean --ignore lib64" 0 "$COPY_RUNS" "$prep" "$cmd_pc2") || { s_pc2=""; FAILED=1; }
  local memo_state="not used (clean created no memo directory)"
  [[ -e $WORK_MEMO ]] && memo_state="new tree: none of its files remembered"
  rm -rf "$tree"

  # Same files removed? One fresh copy per tool, listed before and after.
  local diff_out="" diff_rc=""
  if [[ -n $WORK_PYC ]]; then
    log "clean: comparing what each tool removes (two fresh copies)"
    local a="$WORK_DIR/tree-pycguard" b="$WORK_DIR/tree-pyclean"
    cp -a "$CORPUS" "$a"
    cp -a "$CORPUS" "$b"
    tree_py list "$a" "$WORK_DIR/a-before.json"
    tree_py list "$b" "$WORK_DIR/b-before.json"
    PYCGUARD_CACHE_DIR=$WORK_MEMO "$WORK_PYC" clean -q "$a" >/dev/null || log "WARNING: pycguard clean exited $?"
    "$pyclean" -q "$b" >/dev/null || log "WARNING: pyclean exited $?"
    tree_py list "$a" "$WORK_DIR/a-after.json"
    tree_py list "$b" "$WORK_DIR/b-after.json"
    diff_rc=0
    diff_out=$(tree_py cleandiff "$WORK_DIR/a-before.json" "$WORK_DIR/a-after.json" \
      "$WORK_DIR/b-before.json" "$WORK_DIR/b-after.json") || diff_rc=$?
    ((diff_rc == 0)) || log "WARNING: pycguard clean and pyclean removed different sets"
  fi

  mkdir -p "$RESULTS_DIR"
  {
    echo "## clean: \`pycguard clean\` vs \`pyclean\` $PYCLEAN_VERSION"
    echo
    section_env_md
    echo
    echo "Each run on a fresh \`cp -a\` copy of the corpus ($CORPUS_CACHES caches in $(find "$CORPUS" -name __pycache__ -type d | wc -l) \`__pycache__\` directories):"
    echo
    echo "| command | tree | pycguard memo | median wall | mean ± σ | user+sys (mean) | runs |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    stats_row "\`pycguard clean -q\`" "copy of the corpus" "$memo_state" "$s_pyc" "$why"
    stats_row "\`pyclean -q\` (removes \`.pyc\`/\`.pyo\` files and emptied \`__pycache__\` by default)" "copy of the corpus" "—" "$s_pc" "failed, see the log"
    stats_row "\`pyclean -q COPY --ignore lib64\` (informational: without its second walk through the venv's \`lib64 -> lib\` symlink)" "copy of the corpus" "—" "$s_pc2" "failed, see the log"
    echo
    echo "| ratio (medians) | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    ratio_row "pyclean / pycguard clean" "$s_pc" "$s_pyc" '>=' 1.5
    ratio_row "pyclean --ignore lib64 / pycguard clean" "$s_pc2" "$s_pyc" "" ""
    echo
    echo "What each removed (one more fresh copy each; every entry listed before and after, symlinks not followed):"
    echo
    if [[ -n $diff_rc ]]; then
      printf '%s\n' "$diff_out"
    else
      echo "- not compared (no pycguard binary)"
    fi
    echo
    echo "Commands (hyperfine runs them through bash; \`--prepare\` runs untimed before each run, its stderr appended to a log):"
    echo
    echo '```'
    echo "# prepare: $prep"
    [[ -n $cmd_pyc ]] && echo "$cmd_pyc"
    echo "$cmd_pc"
    echo "$cmd_pc2"
    echo '```'
  } >"$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $raw/)"
  work_done
}

# fix: 1% of the caches made stale on a fresh copy per run (every STALE_EVERY-th source
# gets a comment line); `pycguard fix` timed (and `compileall -j0` on the same kind of
# tree, for scale); then, on the last timed tree: exactly those caches changed (inode or
# mtime), no other cache and no source did, and `check --deep` finds everything fresh.
STALE_EVERY=100
section_fix() {
  local out="$RESULTS_DIR/fix.md" raw="$BENCH_DIR/fix-hyperfine"
  work_setup fix
  rm -rf "$raw" && mkdir -p "$raw"
  local tree="$WORK_DIR/tree" t_warm="$WORK_DIR/tree-warm" t_shallow="$WORK_DIR/tree-shallow"
  local t_cmp="$WORK_DIR/tree-compileall" mem prep prep_warm prep_shallow prep_cmp
  local cmd="" cmd_warm="" cmd_again="" cmd_shallow="" cmd_cmp cmd_cmp1
  local s_fix="" s_warm="" s_again="" s_shallow="" s_cmp="" s_cmp1="" why="${BUILD_ERROR:-not run}" py_helper
  local store="$WORK_MEMO/deep-proofs-v2.bin"
  mem="PYCGUARD_CACHE_DIR=$(q "$WORK_MEMO")"
  py_helper="$(q "$CORPUS_BASE_PYTHON") $(q "$WORK_HELPER")"
  # stale_prep TREE LIST: a fresh copy with every STALE_EVERY-th cached source edited.
  stale_prep() {
    echo "rm -rf $(q "$1") && cp -a $(q "$CORPUS") $(q "$1") && $py_helper stale $(q "$1") $STALE_EVERY $(q "$2")"
  }
  # The default `fix` proves every cache the interpreter would run: cold = empty proof
  # store (deleted before each run; the interpreters' probe answers are kept).
  prep="$(stale_prep "$tree" "$WORK_DIR/stale.txt") && rm -f $(q "$store")"
  prep+=" && $py_helper snap $(q "$tree") $(q "$WORK_DIR/before.json") && sync"
  prep_warm="$(stale_prep "$t_warm" "$WORK_DIR/stale-warm.txt") && sync"
  prep_shallow="$(stale_prep "$t_shallow" "$WORK_DIR/stale-shallow.txt") && sync"
  prep_cmp="$(stale_prep "$t_cmp" "$WORK_DIR/stale-compileall.txt") && sync"
  cmd_cmp="$(q "$CORPUS_PYTHON") -m compileall -q -j0 $(q "$t_cmp")"
  cmd_cmp1="$(q "$CORPUS_PYTHON") -m compileall -q $(q "$t_cmp")"
  if [[ -n $WORK_PYC ]]; then
    cmd="$mem $(q "$WORK_PYC") fix $(q "$tree") >$(q "$WORK_DIR/fix.out") 2>&1"
    cmd_warm="$mem $(q "$WORK_PYC") fix $(q "$t_warm") >$(q "$WORK_DIR/fix-warm.out") 2>&1"
    cmd_again="$mem $(q "$WORK_PYC") fix $(q "$t_warm") >$(q "$WORK_DIR/fix-again.out") 2>&1"
    cmd_shallow="$mem $(q "$WORK_PYC") fix --shallow $(q "$t_shallow") >$(q "$WORK_DIR/fix-shallow.out") 2>&1"
  fi
  prime_memo

  s_cmp=$(hf_one "$raw/compileall.json" "compileall -j0 (1% stale)" 0 "$COPY_RUNS" "$prep_cmp" "$cmd_cmp") || { s_cmp=""; FAILED=1; }
  s_cmp1=$(hf_one "$raw/compileall-serial.json" "compileall (1% stale)" 0 "$COPY_RUNS" "$prep_cmp" "$cmd_cmp1") || { s_cmp1=""; FAILED=1; }
  rm -rf "$t_cmp"
  if [[ -n $cmd ]]; then
    s_fix=$(hf_one "$raw/pycguard.json" "pycguard fix, proof store empty (1% stale)" 0 "$FIX_COLD_RUNS" "$prep" "$cmd") ||
      { s_fix="" why="failed, see the log"; FAILED=1; }
  fi

  local diff_out="" diff_rc="" deep_out="" deep_rc="" deep_cmd="" fix_out="" warm_out="" again_out="" shallow_out=""
  if [[ -n $s_fix ]]; then
    log "fix: comparing the last timed tree with its snapshot before the fix"
    fix_out=$(cat "$WORK_DIR/fix.out")
    tree_py snap "$tree" "$WORK_DIR/after.json"
    diff_rc=0
    diff_out=$(tree_py fixdiff "$WORK_DIR/before.json" "$WORK_DIR/after.json" "$WORK_DIR/stale.txt" "$STALE_EVERY") || diff_rc=$?
    ((diff_rc == 0)) || { log "WARNING: pycguard fix touched more or less than the stale caches"; FAILED=1; }
    deep_cmd="$mem $(q "$WORK_PYC") check -q --deep --python $(q "$CORPUS_PYTHON") $(q "$tree")"
    log "fix: $deep_cmd"
    deep_rc=0
    deep_out=$(bash -c "$deep_cmd" 2>&1) || deep_rc=$?
    ((deep_rc == 0)) || { log "WARNING: check --deep exited $deep_rc after pycguard fix"; FAILED=1; }
  fi
  rm -rf "$tree"
  if [[ -n $cmd_warm ]]; then
    # Warm: the store holds the proofs of the corpus's caches (made by the cold runs and
    # the check above; proofs are keyed by content, so every copy finds them).
    s_warm=$(hf_one "$raw/pycguard-warm.json" "pycguard fix, proof store warm (1% stale)" 0 "$COPY_RUNS" "$prep_warm" "$cmd_warm") ||
      { s_warm=""; FAILED=1; }
    [[ -n $s_warm ]] && warm_out=$(cat "$WORK_DIR/fix-warm.out")
    # Again on the tree the last warm run fixed: the everyday pre-step (nothing to do).
    s_again=$(hf_one "$raw/pycguard-again.json" "pycguard fix again (nothing to do)" 1 "$RUNS" "" "$cmd_again") ||
      { s_again=""; FAILED=1; }
    [[ -n $s_again ]] && again_out=$(cat "$WORK_DIR/fix-again.out")
    rm -rf "$t_warm"
    s_shallow=$(hf_one "$raw/pycguard-shallow.json" "pycguard fix --shallow (1% stale)" 0 "$COPY_RUNS" "$prep_shallow" "$cmd_shallow") ||
      { s_shallow=""; FAILED=1; }
    [[ -n $s_shallow ]] && shallow_out=$(cat "$WORK_DIR/fix-shallow.out")
    rm -rf "$t_shallow"
  fi

  local n_stale="?" f
  for f in "$WORK_DIR/stale.txt" "$WORK_DIR/stale-compileall.txt"; do
    if [[ -f $f ]]; then n_stale=$(wc -l <"$f"); break; fi
  done
  mkdir -p "$RESULTS_DIR"
  {
    echo "## fix: \`pycguard fix\` on a tree with 1% of its caches stale"
    echo
    section_env_md
    echo
    echo "Each run on a fresh \`cp -a\` copy of the corpus in which every ${STALE_EVERY}th source (sorted paths) got a comment line appended, so $n_stale of its $CORPUS_CACHES caches are stale. \`pycguard fix\` proves every other cache against its source (the default; \`--shallow\` judges by header only):"
    echo
    echo "| command | tree | pycguard memo | median wall | mean ± σ | user+sys (mean) | runs |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    stats_row "\`pycguard fix\`, cold" "1% stale" "proof store empty (deleted before each run); interpreter probes remembered" "$s_fix" "$why"
    stats_row "\`pycguard fix\`, warm" "1% stale" "proof store holds the corpus's proofs; a new tree: every file hashed" "$s_warm" "$why"
    stats_row "\`pycguard fix\` again (nothing to do: the everyday pre-step)" "the tree the last warm run fixed" "warm; files known by identity" "$s_again" "$why"
    stats_row "\`pycguard fix --shallow\` (header only, as before)" "1% stale" "new tree: none of its files remembered" "$s_shallow" "$why"
    stats_row "\`python -m compileall -q\` (the repair users run today)" "1% stale" "—" "$s_cmp1" "failed, see the log"
    stats_row "\`python -m compileall -q -j0\`" "1% stale" "—" "$s_cmp" "failed, see the log"
    echo
    echo "| ratio (medians) | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    ratio_row "compileall / pycguard fix, cold" "$s_cmp1" "$s_fix" "" ""
    ratio_row "compileall / pycguard fix, warm" "$s_cmp1" "$s_warm" "" ""
    ratio_row "compileall / pycguard fix again" "$s_cmp1" "$s_again" "" ""
    ratio_row "compileall -j0 / pycguard fix --shallow" "$s_cmp" "$s_shallow" "" ""
    echo
    echo "user+sys of \`compileall -j0\` misses its workers (Python 3.12 runs them under a forkserver that is never waited for). compileall only recompiles what its header check (magic, flags, mtime; not size) finds stale: it proves nothing."
    echo
    echo "What the last timed cold \`pycguard fix\` changed (snapshot taken by the prepare step, compared after the run):"
    echo
    if [[ -n $diff_rc ]]; then
      printf '%s\n' "$diff_out"
      echo "- \`check -q --deep\` afterwards: $(deep_verdict "$deep_rc")"
      echo
      echo "Last lines of each \`pycguard fix\`:"
      echo
      echo '```'
      echo "# cold"
      printf '%s\n' "$fix_out" | tail -n 3
      [[ -n $warm_out ]] && { echo "# warm"; printf '%s\n' "$warm_out" | tail -n 3; }
      [[ -n $again_out ]] && { echo "# again"; printf '%s\n' "$again_out" | tail -n 3; }
      [[ -n $shallow_out ]] && { echo "# --shallow"; printf '%s\n' "$shallow_out" | tail -n 3; }
      echo '```'
      echo
      echo "\`check -q --deep\`:"
      echo
      echo '```'
      printf '%s\n' "$deep_out"
      echo '```'
    else
      echo "- not checked (\`pycguard fix\` did not run)"
    fi
    echo
    echo "Commands (hyperfine runs them through bash; \`--prepare\` runs untimed before each run, its stderr appended to a log):"
    echo
    echo '```'
    echo "# prepare: $prep"
    [[ -n $cmd ]] && echo "$cmd"
    echo "# prepare: $prep_warm"
    [[ -n $cmd_warm ]] && echo "$cmd_warm"
    [[ -n $cmd_again ]] && echo "$cmd_again"
    echo "# prepare: $prep_shallow"
    [[ -n $cmd_shallow ]] && echo "$cmd_shallow"
    echo "# prepare: $prep_cmp"
    echo "$cmd_cmp1"
    echo "$cmd_cmp"
    [[ -n $deep_cmd ]] && echo "$deep_cmd"
    echo '```'
  } >"$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $raw/)"
  work_done
}

# ====================================================================== proofs at the speed of a check
# warm, edit, shared and scale: the targets of `check --deep` once its proofs are
# remembered. They work under $BENCH_DIR/NAME (work_setup/work_done: emptied when the
# section starts, removed when it ends), each with its own pycguard cache directory
# (`--cache-dir`: proof store, scan memo, interpreter probes), never the user's; pycguard
# runs from the section's copy of the binary. Proving reads a tree and never writes it.

# once NAME CMD...: run CMD once, untimed by hyperfine (exit 0 and 1 accepted), its output
# to $WORK_DIR/NAME.out; print its wall time in seconds (GNU time). Returns 1 (with a
# warning and the first lines of its output) when it exits > 1.
once() {
  local name=$1 rc=0
  shift
  "$GNU_TIME" -f %e -o "$WORK_DIR/$name.time" "$@" >"$WORK_DIR/$name.out" 2>&1 || rc=$?
  if ((rc > 1)); then
    log "WARNING: '$*' exited $rc:"
    head -n 20 "$WORK_DIR/$name.out" | sed 's/^/  /' >&2
    return 1
  fi
  tail -n1 "$WORK_DIR/$name.time"
}

# compiled_of FILE → N of the `deep: … (N compiled now, …)` line in a check's output, or "?".
compiled_of() {
  py 'import re, sys
m = re.search(r"\((\d+) compiled now", open(sys.argv[1], errors="replace").read())
print(m.group(1) if m else "?")' "$1"
}

# prove_twice NAME STORE ARGS...: `check --deep --cache-dir STORE ARGS` twice, untimed (the
# first run compiles what STORE has no proof of; the second, 2 s later, lets every file's
# identity be remembered; not -q, so their outputs hold the deep counts). Sets
# PROVE_COLD_S and PROVE_AGAIN_S (wall seconds) and PROVE_MD (both in words).
prove_twice() {
  local name=$1 store=$2
  shift 2
  log "$name: proving (untimed): check --deep --cache-dir $store $*"
  PROVE_COLD_S=$(once "$name-prove-1" "$WORK_PYC" check --deep --color never --cache-dir "$store" "$@") || return 1
  sleep 2   # files changed within 2 s of a run are never remembered by identity
  PROVE_AGAIN_S=$(once "$name-prove-2" "$WORK_PYC" check --deep --color never --cache-dir "$store" "$@") || return 1
  PROVE_MD="$PROVE_COLD_S s ($(compiled_of "$WORK_DIR/$name-prove-1.out") compiled now), again $PROVE_AGAIN_S s ($(compiled_of "$WORK_DIR/$name-prove-2.out") compiled now)"
  log "$name: proven in $PROVE_MD"
}

# proven_copy: WORK_TREE, a `cp -a` copy of the corpus under WORK_DIR, and WORK_STORE, its own
# pycguard cache directory (empty at first), proven twice (prove_twice). Returns 1 when
# pycguard could not prove it.
proven_copy() {
  WORK_TREE="$WORK_DIR/tree" WORK_STORE="$WORK_DIR/store"
  log "cp -a $CORPUS $WORK_TREE"
  cp -a "$CORPUS" "$WORK_TREE"
  sync   # the copy's write-back must not overlap the runs
  sleep 2
  prove_twice "$(basename "$WORK_DIR")" "$WORK_STORE" "$WORK_TREE"
}

# json_run NAME ARGS...: `check --format json --color never ARGS` once (stdout to
# $WORK_DIR/NAME.json, stderr to NAME.err); print deep_counts of it. Returns 1 (with a
# warning) when pycguard exits > 1.
json_run() {
  local name=$1 rc=0
  shift
  "$WORK_PYC" check --format json --color never "$@" >"$WORK_DIR/$name.json" 2>"$WORK_DIR/$name.err" || rc=$?
  if ((rc > 1)); then
    log "WARNING: 'pycguard check --format json $*' exited $rc:"
    head -n 20 "$WORK_DIR/$name.err" | sed 's/^/  /' >&2
    return 1
  fi
  deep_counts "$WORK_DIR/$name.json" "$WORK_DIR/$name.err"
}

# store_env_md STORE...: environment_md without its hyperfine line, and what these sections share.
store_env_md() {
  environment_md | sed '/^- hyperfine/d'
  echo "- $(hyperfine --version), OS page cache warm; compared commands side by side in one hyperfine invocation (\`--warmup $WARMUP --runs $RUNS\`); \`test \$? -le 1\` accepts pycguard's exit 0 and 1"
  echo "- pycguard: \`$WORK_PYC\`, a copy of \`$PYCGUARD\` made when the section started; its cache directory (proof store, scan memo, interpreter probes): $(printf '\x60%s\x60 ' "$@")(not the user's)"
}

# section_skip NAME WHY: log, FAILED=1, remove the section's directory.
section_skip() {
  log "WARNING: section $1 skipped: $2"
  FAILED=1
  work_done
}

# warm: `check --deep` with every proof and identity remembered vs the shallow check (and
# compileall's no-op pass) on an unchanged copy, one hyperfine invocation; peak RSS of both.
section_warm() {
  local out="$RESULTS_DIR/warm.md" raw="$BENCH_DIR/warm-hyperfine"
  work_setup warm
  rm -rf "$raw" && mkdir -p "$raw"
  [[ -n $WORK_PYC ]] || { section_skip warm "no pycguard binary (${BUILD_ERROR:-not built})"; return 0; }
  disk_ok warm 2 || { work_done; return 0; }
  proven_copy || { section_skip warm "pycguard could not prove the copy"; return 0; }
  local tree=$WORK_TREE store=$WORK_STORE json="$raw/hyperfine.json"
  local cmd_sh cmd_dp cmd_cmp s_sh s_dp s_cmp
  cmd_sh="$(q "$WORK_PYC") check -q --cache-dir $(q "$store") $(q "$tree") >/dev/null; test \$? -le 1"
  cmd_dp="$(q "$WORK_PYC") check --deep -q --cache-dir $(q "$store") $(q "$tree") >/dev/null; test \$? -le 1"
  cmd_cmp="$(q "$CORPUS_PYTHON") -m compileall -q $(q "$tree") >/dev/null"
  hf_multi "$json" "$WARMUP" "$RUNS" "" \
    "pycguard check -q (shallow)" "$cmd_sh" \
    "pycguard check --deep -q (warm)" "$cmd_dp" \
    "python -m compileall -q (no-op)" "$cmd_cmp" || { section_skip warm "hyperfine failed"; return 0; }
  s_sh=$(hf_series "$json" 0)
  s_dp=$(hf_series "$json" 1)
  s_cmp=$(hf_series "$json" 2)

  log "warm: peak RSS of both, max of $RSS_RUNS runs each"
  local rss_sh="" rss_dp=""
  read -r rss_sh _ < <(peak_rss "$WORK_PYC" check -q --cache-dir "$store" "$tree") || FAILED=1
  read -r rss_dp _ < <(peak_rss "$WORK_PYC" check --deep -q --cache-dir "$store" "$tree") || FAILED=1
  log "warm: one more warm run with --format json"
  local counts="" compiled="" ok="**no**"
  counts=$(json_run warm-json --deep --cache-dir "$store" "$tree") || FAILED=1
  read -r _ _ _ compiled _ <<<"$counts"
  [[ $compiled == 0 ]] && ok=yes

  mkdir -p "$RESULTS_DIR"
  {
    echo "## warm: warm \`check --deep\` vs the shallow \`check\` on an unchanged tree"
    echo
    store_env_md "$store"
    echo "- tree: \`$tree\`, a \`cp -a\` copy of the corpus ($CORPUS_CACHES caches); before timing, proven untimed with an empty store and, 2 s later, once more (every file's identity remembered): $PROVE_MD"
    runs_note "$RUNS"
    echo
    echo "| command (on the copy) | median (min–max) | user+sys (mean) | runs | peak RSS (max of $RSS_RUNS) |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    echo "| \`pycguard check -q\` (shallow: header only) | $(range_cell "$s_sh") | $(fmt_s "$(cut -d' ' -f4 <<<"$s_sh")") | $(cut -d' ' -f5 <<<"$s_sh") | ${rss_sh:+$((rss_sh / 1024)) MiB} |"
    echo "| \`pycguard check --deep -q\`, warm (every cache proven) | $(range_cell "$s_dp") | $(fmt_s "$(cut -d' ' -f4 <<<"$s_dp")") | $(cut -d' ' -f5 <<<"$s_dp") | ${rss_dp:+$((rss_dp / 1024)) MiB} |"
    echo "| \`python -m compileall -q\` (no-op pass: the check users have; reference) | $(range_cell "$s_cmp") | $(fmt_s "$(cut -d' ' -f4 <<<"$s_cmp")") | $(cut -d' ' -f5 <<<"$s_cmp") | — |"
    echo
    echo "| ratio | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    ratio_row "warm --deep / shallow check (wall, medians)" "$s_dp" "$s_sh" '<=' 1.3
    ratio_row "warm --deep / shallow check (peak RSS)" "$rss_dp" "$rss_sh" '<=' 1.5
    ratio_row "compileall no-op / warm --deep (wall, medians)" "$s_cmp" "$s_dp" "" ""
    echo
    echo "One more warm run, \`check --deep --format json\`: $(counts_md "$counts") — nothing compiled: $ok"
    echo
    echo "Commands (hyperfine runs them through bash):"
    echo
    echo '```'
    echo "$cmd_sh"
    echo "$cmd_dp"
    echo "$cmd_cmp"
    echo "$GNU_TIME -f '%M %e' $WORK_PYC check -q --cache-dir $store $tree"
    echo "$GNU_TIME -f '%M %e' $WORK_PYC check --deep -q --cache-dir $store $tree"
    echo "$WORK_PYC check --deep --format json --color never --cache-dir $store $tree"
    echo '```'
  } >"$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $raw/)"
  work_done
}

# edit: before every timed run, the file edited last is put back and one more file gets a
# same-size edit with its times restored (tree.py edit): the warm `check --deep` must compile
# exactly that one file; timed side by side with the shallow check (same prepare).
section_edit() {
  local out="$RESULTS_DIR/edit.md" raw="$BENCH_DIR/edit-hyperfine"
  work_setup edit
  rm -rf "$raw" && mkdir -p "$raw"
  [[ -n $WORK_PYC ]] || { section_skip edit "no pycguard binary (${BUILD_ERROR:-not built})"; return 0; }
  disk_ok edit 2 || { work_done; return 0; }
  proven_copy || { section_skip edit "pycguard could not prove the copy"; return 0; }
  local tree=$WORK_TREE store=$WORK_STORE json="$raw/hyperfine.json" state="$WORK_DIR/edits.json"
  local n_cand prep cmd_dp cmd_sh s_dp s_sh
  n_cand=$(tree_py edits "$tree" "$state") || { section_skip edit "no file to edit"; return 0; }
  log "edit: $n_cand candidate files (a cache, and a \`__version__\` ending in a digit)"
  prep="$(q "$CORPUS_BASE_PYTHON") $(q "$WORK_HELPER") edit $(q "$state") >/dev/null"
  cmd_dp="$(q "$WORK_PYC") check --deep -q --cache-dir $(q "$store") $(q "$tree") >/dev/null; test \$? -le 1"
  cmd_sh="$(q "$WORK_PYC") check -q --cache-dir $(q "$store") $(q "$tree") >/dev/null; test \$? -le 1"
  hf_multi "$json" "$WARMUP" "$RUNS" "$prep" \
    "pycguard check --deep -q (one new edit)" "$cmd_dp" \
    "pycguard check -q (one new edit)" "$cmd_sh" || { tree_py restore "$state" >&2; section_skip edit "hyperfine failed"; return 0; }
  s_dp=$(hf_series "$json" 0)
  s_sh=$(hf_series "$json" 1)

  log "edit: one more prepared run with --format json"
  local edited counts="" caches compiled hs first ok_c="**no**" ok_h="**no**" summary
  bash -c "$prep"
  edited=$(py 'import json, sys; print(json.load(open(sys.argv[1]))["last"]["path"])' "$state")
  counts=$(json_run edit-json --deep --cache-dir "$store" "$tree") || FAILED=1
  read -r caches _ hs compiled _ _ _ first <<<"$counts"
  [[ $compiled == 1 ]] && ok_c=yes
  [[ $hs == 1 && $first == "$tree/$edited" ]] && ok_h=yes
  [[ $ok_c == yes && $ok_h == yes ]] || log "WARNING: after one edit: $(counts_md "$counts"); hidden-stale: $first"
  summary=$(tree_py restore "$state")
  log "edit: $summary (the last one put back)"

  mkdir -p "$RESULTS_DIR"
  {
    echo "## edit: one edit, then a warm \`check --deep\`"
    echo
    store_env_md "$store"
    echo "- tree: \`$tree\`, a \`cp -a\` copy of the corpus ($CORPUS_CACHES caches); proven untimed before timing with an empty store and once more: $PROVE_MD"
    echo "- before every run (warm-up and timed, both commands; hyperfine \`--prepare\`, untimed): the file edited last is put back (bytes, atime, mtime) and the next of $n_cand candidates (sources with a cache and a \`__version__ = \"…\"\` ending in a digit, sorted paths) gets that digit bumped — same size, times restored: the header still says fresh, only a proof can tell; no two edits leave the same bytes (a pass over the list bumps by 1, the next by 2, …)"
    runs_note "$RUNS"
    echo
    echo "| command (on the copy, a new edit before each run) | median (min–max) | user+sys (mean) | runs |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| \`pycguard check --deep -q\`, warm (proves the edited file) | $(range_cell "$s_dp") | $(fmt_s "$(cut -d' ' -f4 <<<"$s_dp")") | $(cut -d' ' -f5 <<<"$s_dp") |"
    echo "| \`pycguard check -q\` (shallow: cannot see the edit) | $(range_cell "$s_sh") | $(fmt_s "$(cut -d' ' -f4 <<<"$s_sh")") | $(cut -d' ' -f5 <<<"$s_sh") |"
    echo
    echo "| ratio / check | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    ratio_row "warm --deep after one edit / shallow check (wall, medians)" "$s_dp" "$s_sh" '<=' 1.5
    echo "| caches compiled by the \`--format json\` run after one more edit | ${compiled:-n/a} of ${caches:-?} | exactly 1 | $ok_c |"
    echo "| the edited file's cache found hidden-stale, and no other | ${hs:-n/a} hidden-stale | 1: \`${edited}\` | $ok_h |"
    echo
    echo "That run: $(counts_md "$counts"); hidden-stale: \`${first#"$tree"/}\`. Edits: $summary."
    echo
    echo "Commands (hyperfine runs them through bash; \`--prepare\` runs untimed before each run, its stderr appended to a log):"
    echo
    echo '```'
    echo "# prepare: $prep"
    echo "$cmd_dp"
    echo "$cmd_sh"
    echo "# after the timed runs, prepared the same way:"
    echo "$WORK_PYC check --deep --format json --color never --cache-dir $store $tree"
    echo '```'
  } >"$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $raw/)"
  work_done
}

# shared: four virtualenvs with the same packages, twice (hard-linked copies; the cp -a
# copies of corpus4x, read in place): after proving the first, proving each other one
# should cost about a warm run. The store is put back to its state after the first venv
# before every run (hyperfine --prepare), so each run finds only the first venv's proofs.
section_shared() {
  local out="$RESULTS_DIR/shared.md" raw="$BENCH_DIR/shared-hyperfine"
  work_setup shared
  rm -rf "$raw" && mkdir -p "$raw"
  [[ -n $WORK_PYC ]] || { section_skip shared "no pycguard binary (${BUILD_ERROR:-not built})"; return 0; }
  disk_ok shared 1 || { work_done; return 0; }
  local k kind i
  log "shared: cp -al $CORPUS $WORK_DIR/hl/{1,2,3,4}"
  mkdir -p "$WORK_DIR/hl"
  for k in 1 2 3 4; do cp -al "$CORPUS" "$WORK_DIR/hl/$k"; done
  for k in 1 2 3 4; do [[ -d $CORPUS4X/$k ]] || { section_skip shared "$CORPUS4X/$k is missing"; return 0; }; done
  # Linking changes every linked file's ctime: nothing is timed within 2 s of that.
  sync
  sleep 2

  local -A root=([hl]="$WORK_DIR/hl" [copy]="$CORPUS4X") kind_what=() proved=() prep=() series=() counts=() ok=()
  kind_what[hl]="hard-linked copies (\`cp -al CORPUS\`: the same inodes, so the same file identities)"
  kind_what[copy]="\`cp -a\` copies (corpus4x: other inodes, the same bytes)"
  local -a cmds=()
  for kind in hl copy; do
    local store="$WORK_DIR/store-$kind" snap="$WORK_DIR/store-$kind.after1" r=${root[$kind]}
    prove_twice "shared-$kind" "$store" "$r/1" || { section_skip shared "pycguard could not prove $r/1"; return 0; }
    proved[$kind]=$PROVE_MD
    cp -a "$store" "$snap"
    prep[$kind]="rm -rf $(q "$store") && cp -a $(q "$snap") $(q "$store") && sync"
    # The same warm page cache for every venv: read each one's sources and caches once.
    find "$r"/[1234] \( -name '*.py' -o -name '*.pyc' \) -print0 | xargs -0 cat >/dev/null
    cmds+=("# $kind: prepare before every run: ${prep[$kind]}")
    local -a hf=()
    for k in 1 2 3 4; do
      local c ref=""
      c="$(q "$WORK_PYC") check --deep -q --cache-dir $(q "$store") $(q "$r/$k") >/dev/null; test \$? -le 1"
      if ((k == 1)); then ref=" (warm reference)"; fi
      hf+=("$kind: check --deep venv $k$ref" "$c")
      cmds+=("$c")
    done
    hf_multi "$raw/$kind.json" "$WARMUP" "$RUNS" "${prep[$kind]}" "${hf[@]}" || { section_skip shared "hyperfine failed ($kind)"; return 0; }
    for k in 1 2 3 4; do
      series[$kind$k]=$(hf_series "$raw/$kind.json" $((k - 1)))
      # Each JSON run from the same store state as the timed runs.
      bash -c "${prep[$kind]}"
      counts[$kind$k]=$(json_run "shared-$kind-$k" --deep --cache-dir "$store" "$r/$k") || FAILED=1
      read -r _ _ _ i _ <<<"${counts[$kind$k]}"
      ok[$kind$k]="**no**"
      [[ $i == 0 ]] && ok[$kind$k]=yes
    done
  done

  mkdir -p "$RESULTS_DIR"
  {
    echo "## shared: four virtualenvs with the same packages — proving the others after the first"
    echo
    store_env_md "$WORK_DIR/store-hl" "$WORK_DIR/store-copy"
    echo "- for each kind of copy: an empty store; venv 1 proven untimed (compiles every source), then, 2 s later, once more (its files' identities remembered); the store then saved (\`cp -a STORE STORE.after1\`) and put back before every run (\`--prepare\`, then \`sync\`), so each run finds exactly venv 1's proofs and memo; every venv's sources and caches read once before timing (same warm page cache)"
    runs_note "$RUNS"
    echo
    for kind in hl copy; do
      echo "**${kind_what[$kind]}**: \`${root[$kind]}/{1,2,3,4}\`; venv 1 proven in ${proved[$kind]}"
      echo
      echo "| \`check --deep -q\` on | median (min–max) | user+sys (mean) | runs | JSON run: caches, compiled now, remembered | nothing compiled |"
      echo "| --- | ---: | ---: | ---: | --- | :---: |"
      for k in 1 2 3 4; do
        local caches compiled remembered s=${series[$kind$k]}
        read -r caches _ _ compiled remembered _ <<<"${counts[$kind$k]}"
        echo "| venv $k$( ((k == 1)) && echo ' (proven before: the warm reference)') | $(range_cell "$s") | $(fmt_s "$(cut -d' ' -f4 <<<"$s")") | $(cut -d' ' -f5 <<<"$s") | $caches, $compiled, $remembered | ${ok[$kind$k]} |"
      done
      echo
      echo "| ratio (medians) | value | target | met |"
      echo "| --- | ---: | ---: | :---: |"
      for k in 2 3 4; do
        ratio_row "venv $k / warm venv 1" "${series[$kind$k]}" "${series[${kind}1]}" '<=' 1.5
      done
      echo
    done
    echo "The JSON runs (\`check --deep --format json --color never --cache-dir STORE VENV\`, one per venv after the same prepare) give the counts: \"compiled now\" must be 0 for venvs 2-4 (their proofs are venv 1's); deep counts from: $(read -r _ _ _ _ _ _ i _ <<<"${counts[hl2]}"; echo "$i")."
    echo
    echo "Commands (hyperfine runs them through bash; one invocation per kind, the prepare before every run):"
    echo
    echo '```'
    printf '%s\n' "${cmds[@]}"
    echo '```'
  } >"$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $raw/)"
  work_done
}

# scale: 1x, 4x and 16x the corpus (hard-linked copies, each size one root of virtualenvs,
# each its own store): check, warm check --deep and the compile no-op pass, all nine side by
# side in one hyperfine invocation; per-cache cost, peak RSS and the store's size by size.
SCALE_SIZES=(1 4 16)
section_scale() {
  local out="$RESULTS_DIR/scale.md" raw="$BENCH_DIR/scale-hyperfine" json
  work_setup scale
  rm -rf "$raw" && mkdir -p "$raw"
  json="$raw/hyperfine.json"
  [[ -n $WORK_PYC ]] || { section_skip scale "no pycguard binary (${BUILD_ERROR:-not built})"; return 0; }
  disk_ok scale 2 || { work_done; return 0; }
  local n k c cmd i=0
  for n in "${SCALE_SIZES[@]}"; do
    log "scale: cp -al $CORPUS $WORK_DIR/x$n/{1..$n}"
    mkdir -p "$WORK_DIR/x$n"
    for ((k = 1; k <= n; k++)); do cp -al "$CORPUS" "$WORK_DIR/x$n/$k"; done
  done
  # Linking changes every linked file's ctime: nothing is proven within 2 s of that.
  sync
  sleep 2

  local -A proved=() counts=() series=() rss=() snapok=()
  local -a hf=() cmds=()
  local -a what=(check deep compile)
  for n in "${SCALE_SIZES[@]}"; do
    local r="$WORK_DIR/x$n" store="$WORK_DIR/store-x$n"
    prove_twice "scale-x$n" "$store" --include-venvs "$r" || { section_skip scale "pycguard could not prove $r"; return 0; }
    proved[$n]=$PROVE_MD
    log "scale: x$n, one warm run with --format json (the number of caches)"
    counts[$n]=$(json_run "scale-x$n" --deep --include-venvs --cache-dir "$store" "$r") || FAILED=1
    rm -f "$WORK_DIR/scale-x$n.json"
    # The no-op compile must write nothing: one copy of each size, before and after.
    tree_py snap "$r/$n" "$WORK_DIR/snap-x$n-before.json"
    for c in "${what[@]}"; do
      case $c in
        check) cmd="check -q" ;;
        deep) cmd="check --deep -q" ;;
        compile) cmd="compile -q" ;;
      esac
      cmd="$(q "$WORK_PYC") $cmd --include-venvs --cache-dir $(q "$store") $(q "$r") >/dev/null; test \$? -le 1"
      hf+=("x$n: ${c/deep/check --deep (warm)}" "$cmd")
      cmds+=("$cmd")
    done
  done
  hf_multi "$json" "$WARMUP" "$RUNS" "" "${hf[@]}" || { section_skip scale "hyperfine failed"; return 0; }
  for n in "${SCALE_SIZES[@]}"; do
    for c in "${what[@]}"; do
      series[$c$n]=$(hf_series "$json" "$i")
      i=$((i + 1))
    done
  done
  for n in "${SCALE_SIZES[@]}"; do
    local r="$WORK_DIR/x$n" store="$WORK_DIR/store-x$n"
    log "scale: x$n, peak RSS of each command, max of $RSS_RUNS runs"
    local kb_check="" kb_deep="" kb_compile=""
    read -r kb_check _ < <(peak_rss "$WORK_PYC" check -q --include-venvs --cache-dir "$store" "$r") || FAILED=1
    read -r kb_deep _ < <(peak_rss "$WORK_PYC" check --deep -q --include-venvs --cache-dir "$store" "$r") || FAILED=1
    read -r kb_compile _ < <(peak_rss "$WORK_PYC" compile -q --include-venvs --cache-dir "$store" "$r") || FAILED=1
    rss[check$n]=$kb_check rss[deep$n]=$kb_deep rss[compile$n]=$kb_compile
    tree_py snap "$r/$n" "$WORK_DIR/snap-x$n-after.json"
    snapok[$n]=$(tree_py unchanged "$WORK_DIR/snap-x$n-before.json" "$WORK_DIR/snap-x$n-after.json") ||
      { log "WARNING: the no-op compile changed caches in $r/$n"; FAILED=1; }
  done

  # per_cache STATS N → median / (N x caches) in µs; spread: max/min over the sizes.
  per_cache() { py 'import sys; print("%.2f" % (float(sys.argv[1]) * 1e6 / (int(sys.argv[2]) * int(sys.argv[3]))))' "${1%% *}" "$2" "$CORPUS_CACHES"; }
  local -A pc=()
  for c in "${what[@]}"; do
    for n in "${SCALE_SIZES[@]}"; do pc[$c$n]=$(per_cache "${series[$c$n]}" "$n"); done
  done
  local -A label=([check]="\`check -q\`" [deep]="\`check --deep -q\`, warm" [compile]="\`compile -q\`, no-op")
  mkdir -p "$RESULTS_DIR"
  {
    echo "## scale: 1×, 4× and 16× the corpus — linear time, flat memory, bounded store"
    echo
    store_env_md "$WORK_DIR/store-x1" "$WORK_DIR/store-x4" "$WORK_DIR/store-x16"
    echo "- trees: \`$WORK_DIR/xN/{1..N}\`, hard-linked copies of the corpus (\`cp -al\`), each size checked as one root with \`--include-venvs\` (every copy is a virtualenv); one store per size, each root proven untimed with its empty store and once more before timing; all nine commands in one hyperfine invocation"
    echo "- hard links share inodes, so at every size the tables keyed by file identity (scan memo, proven pairs) see the corpus's $CORPUS_CACHES distinct caches: the walk, the stats and the lookups grow with N, the number of distinct identities does not (the \`shared\` section times \`cp -a\` copies)"
    runs_note "$RUNS"
    echo
    echo "| size | caches (JSON summary) | = N × $CORPUS_CACHES | proven (untimed): cold, again | warm JSON run: compiled now |"
    echo "| --- | ---: | :---: | ---: | ---: |"
    for n in "${SCALE_SIZES[@]}"; do
      local caches compiled
      read -r caches _ _ compiled _ <<<"${counts[$n]}"
      echo "| ${n}× | $caches | $( [[ $caches == $((n * CORPUS_CACHES)) ]] && echo yes || echo '**no**') | ${proved[$n]} | $compiled |"
    done
    echo
    echo "| command | size | median (min–max) | per cache | user+sys (mean) | runs | peak RSS (max of $RSS_RUNS) | RSS / 1× |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for c in "${what[@]}"; do
      for n in "${SCALE_SIZES[@]}"; do
        local s=${series[$c$n]} kb=${rss[$c$n]:-}
        echo "| ${label[$c]} | ${n}× | $(range_cell "$s") | ${pc[$c$n]} µs | $(fmt_s "$(cut -d' ' -f4 <<<"$s")") | $(cut -d' ' -f5 <<<"$s") | ${kb:+$((kb / 1024)) MiB} | $( [[ -n $kb && -n ${rss[${c}1]:-} ]] && ratio "$kb" "${rss[${c}1]}")× |"
      done
    done
    echo
    echo "| target | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    for c in "${what[@]}"; do
      local lo hi sp
      lo=$(printf '%s\n' "${pc[${c}1]}" "${pc[${c}4]}" "${pc[${c}16]}" | sort -g | head -n1)
      hi=$(printf '%s\n' "${pc[${c}1]}" "${pc[${c}4]}" "${pc[${c}16]}" | sort -g | tail -n1)
      sp=$(ratio "$hi" "$lo")
      echo "| ${label[$c]}: per-cache cost, max / min over the sizes | ${sp}× | ≤ 1.10× | $(meets "$sp" '<=' 1.10) |"
      for n in 4 16; do
        ratio_row "${label[$c]}: peak RSS ${n}× / 1×" "${rss[$c$n]:-}" "${rss[${c}1]:-}" '<=' 1.5
      done
    done
    # The proof store is kept under 32 MiB (README); the identity tables have a fixed size.
    local big proofs proofs_kb d1 d16
    big=$(find "$WORK_DIR/store-x16" -type f -printf '%s %f\n' | sort -n | tail -n1)
    proofs=$(find "$WORK_DIR/store-x16" -type f -name 'deep-proofs*.bin' -printf '%s %f\n' | sort -n | tail -n1)
    # The tables are sparse files: their apparent size (du -sb) is fixed, the blocks
    # allocated (du -s -B1) grow with what they hold.
    d1=$(du -s -B1 "$WORK_DIR/store-x1" | cut -f1)
    d16=$(du -s -B1 "$WORK_DIR/store-x16" | cut -f1)
    if [[ -n $proofs ]]; then
      proofs_kb=$(( ${proofs%% *} / 1024 ))
      echo "| store after the 16× runs: the proof store (\`${proofs#* }\`) | $((proofs_kb / 1024)) MiB ($proofs_kb KiB) | ≤ 32 MiB | $(meets "$proofs_kb" '<=' 32768) |"
    else
      echo "| store after the 16× runs: the proof store | n/a (no deep-proofs*.bin in \`$WORK_DIR/store-x16\`) | ≤ 32 MiB | |"
    fi
    echo "| store after the 16× runs: largest file (\`${big#* }\`) | $(( ${big%% *} / 1048576 )) MiB | (informational) | |"
    echo "| store directory, blocks allocated (\`du -s -B1\`), 16× / 1× | $(ratio "$d16" "$d1")× ($((d16 / 1048576)) MiB / $((d1 / 1048576)) MiB) | (informational) | |"
    echo
    echo "Each store after the runs: apparent size (\`du -sb\`) and blocks allocated (\`du -s -B1\`; the tables are sparse files); its files, apparent / allocated bytes:"
    echo
    for n in "${SCALE_SIZES[@]}"; do
      echo "- ${n}×: $(du -sb "$WORK_DIR/store-x$n" | cut -f1) bytes apparent, $(du -s -B1 "$WORK_DIR/store-x$n" | cut -f1) allocated — $(find "$WORK_DIR/store-x$n" -type f -printf '%f: %s / %b\n' | sort | awk -F' / ' '{printf "%s%s / %d", (NR > 1 ? ", " : ""), $1, $2 * 512}')"
    done
    echo
    echo "The no-op \`compile -q\` runs (hyperfine and peak RSS) on one copy of each size (every cache's inode and mtime before and after):"
    echo
    for n in "${SCALE_SIZES[@]}"; do echo "- ${n}× (\`x$n/$n\`): ${snapok[$n]#- }"; done
    echo
    echo "Commands (hyperfine runs them through bash; the same ones under GNU time \`-f '%M %e'\` for peak RSS):"
    echo
    echo '```'
    printf '%s\n' "${cmds[@]}"
    echo '```'
  } >"$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $raw/)"
  work_done
}

# ====================================================================== main

main() {
  local -a want=()
  local s k known
  (($# == 0)) && set -- all
  for s in "$@"; do
    case $s in
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      all) want+=("${SECTIONS[@]}") ;;
      *)
        known=0
        for k in "${SECTIONS[@]}"; do [[ $s == "$k" ]] && known=1; done
        ((known)) || { echo "unknown section: $s" >&2; usage; }
        want+=("$s") ;;
    esac
  done

  mkdir -p "$BENCH_DIR"
  ensure_apt_tools
  ensure_corpus
  ensure_pyclean
  build_pycguard

  for s in "${want[@]}"; do
    log "=== section $s"
    "section_$s"
    echo
  done
  if ((FAILED)); then
    log "some figures could not be measured (see warnings above)"
    exit 1
  fi
}

main "$@"
