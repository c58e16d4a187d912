#!/usr/bin/env bash
# bench/run.sh — the pycguard benchmark, in one command.
#
# Usage: bench/run.sh [SECTION...]      (no SECTION = all)
#   check   `pycguard check -q` vs `python -m compileall -q` (its no-op pass
#           on an up-to-date tree, the closest check users have today) vs the
#           walk-and-read floor (`find | xargs head -c 16`), warm cache, with
#           hyperfine; then peak RSS of `pycguard check -q` on the 1x and the
#           4x corpus (GNU time). Writes bench/results/check.md.
#   deep    `pycguard check --deep`: the first run (empty store) vs
#           `python -m compileall -f -q -j0` on a copy of the corpus, the
#           second run on the unchanged tree (hyperfine), and a run after one
#           same-size edit with the mtime restored (only that file is compiled
#           again); wall, CPU (with workers) and peak RSS (GNU time). Works on
#           two copies under $BENCH_DIR/deep. Writes bench/results/deep.md.
#   all     every section above, in order.
#   (Later sections — check --deep, compile, clean vs pyclean, fix — are added
#   as further section_NAME functions and listed in SECTIONS.)
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
#
# Time: `check` ~40-60 s once everything is in place (2 cores), `deep` ~3-4 min
#   (two corpus copies, two full compiles of 24,776 sources); the first run
#   also builds the corpus (~2 min with a warm pip cache, see corpus.sh) and
#   pycguard (~1 min), and may apt-get install.
# Disk: ~5.2 GB under $BENCH_DIR (corpus 1.1 GB + corpus4x 4.1 GB; `deep`
#   adds two 1.1 GB copies under $BENCH_DIR/deep, replaced on every run), ~20 MB
#   of tools; results/*.md are a few KB.
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
PYCLEAN_VERSION=3.7.0
GNU_TIME=/usr/bin/time

# Sections in the order `all` runs them; each is a function section_NAME.
SECTIONS=(check deep)

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
    read -r rss4 w4 < <(peak_rss "$PYCGUARD" check -q "$CORPUS4X") || FAILED=1
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
    echo "$GNU_TIME -f '%M %e' ${PYCGUARD:-pycguard} check -q $CORPUS4X"
    echo '```'
  } > "$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $json)"
}

# deep: the first `check --deep` (empty store) vs `compileall -f -q -j0`, the second run
# (store warm, hyperfine), and one same-size edit with its mtime restored (only that file
# is compiled again). Works on copies under $BENCH_DIR/deep; never touches the corpus.
section_deep() {
  local out="$RESULTS_DIR/deep.md" json="$BENCH_DIR/deep-hyperfine.json"
  local work="$BENCH_DIR/deep" tree cmp store edited first_out edit_out
  local fw fu fs fm cw cu cs cm ew eu es em rss2 w2 rc
  tree="$work/tree" cmp="$work/compileall-tree" store="$work/store"
  if [[ -z $PYCGUARD ]]; then
    log "WARNING: no pycguard binary (${BUILD_ERROR:-not built}); section deep skipped"
    FAILED=1
    return 0
  fi
  log "copying the corpus twice under $work (the corpus itself is never changed)"
  rm -rf "$work" && mkdir -p "$work" "$store"
  cp -a "$CORPUS" "$tree"
  cp -a "$CORPUS" "$cmp"
  # Files changed within 2 s of a run are never remembered by identity (racy window).
  sleep 2
  # Same warm page cache for both contenders: read every source and cache once.
  find "$tree" "$cmp" \( -name '*.py' -o -name '*.pyc' \) -print0 | xargs -0 cat >/dev/null

  log "first check --deep (empty store): compiles all $CORPUS_CACHES sources"
  rc=0
  first_out=$("$GNU_TIME" -f '%e %U %S %M' -o "$work/first.time" "$PYCGUARD" check --deep -q --cache-dir "$store" "$tree" 2>&1) || rc=$?
  ((rc <= 1)) || { log "WARNING: first check --deep exited $rc: $first_out"; FAILED=1; return 0; }
  read -r fw fu fs fm < <(tail -n1 "$work/first.time")

  log "python -m compileall -f -q -j0 on the other copy"
  "$GNU_TIME" -f '%e %U %S %M' -o "$work/compileall.time" "$CORPUS_PYTHON" -m compileall -f -q -j0 "$cmp" >/dev/null ||
    { log "WARNING: compileall failed"; FAILED=1; }
  read -r cw cu cs cm < <(tail -n1 "$work/compileall.time")

  log "second check --deep (store warm): hyperfine --warmup 1 --runs $RUNS"
  local cmd2
  cmd2="$(q "$PYCGUARD") check --deep -q --cache-dir $(q "$store") $(q "$tree") >/dev/null; test \$? -le 1"
  hyperfine --shell=bash --style=basic --warmup 1 --runs "$RUNS" --export-json "$json" -n "pycguard check --deep -q (second run)" "$cmd2" >&2
  local m2 a2 s2 c2 n2
  read -r m2 a2 s2 c2 n2 < <(hf_stats "$json" 0)
  read -r rss2 w2 < <(peak_rss "$PYCGUARD" check --deep -q --cache-dir "$store" "$tree") || FAILED=1
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

  local fcpu ccpu ecpu r_cmp r_2
  fcpu=$(py 'import sys; print("%.2f" % (float(sys.argv[1]) + float(sys.argv[2])))' "$fu" "$fs")
  ccpu=$(py 'import sys; print("%.2f" % (float(sys.argv[1]) + float(sys.argv[2])))' "$cu" "$cs")
  ecpu=$(py 'import sys; print("%.2f" % (float(sys.argv[1]) + float(sys.argv[2])))' "$eu" "$es")
  r_cmp=$(ratio "$fw" "$cw")
  r_2=$(ratio "$fw" "$m2")
  mkdir -p "$RESULTS_DIR"
  {
    echo "## deep: \`pycguard check --deep\` — first run vs \`compileall -f\`, second run, one edit"
    echo
    environment_md
    echo "- copies of the corpus under \`$work\`; store: \`--cache-dir $store\` (empty before the first run); page cache warmed by reading every source and cache of both copies first"
    echo
    echo "| run (on a copy of the corpus, $CORPUS_CACHES caches) | wall | CPU user+sys (incl. workers) | peak RSS |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| first \`check --deep -q\`, empty store (compiles every source; 1 run) | $(fmt_s "$fw") | $(fmt_s "$fcpu") | $((fm / 1024)) MiB |"
    echo "| \`python -m compileall -f -q -j0\` ($CORPUS_PYTHON_VERSION; compiles and writes every cache; 1 run) | $(fmt_s "$cw") | $(fmt_s "$ccpu") | $((cm / 1024)) MiB (largest process) |"
    echo "| second \`check --deep -q\`, unchanged tree (hyperfine median of $n2, --warmup 1) | $(fmt_s "$m2") | $(fmt_s "$c2") (mean) | $((rss2 / 1024)) MiB |"
    echo "| \`check --deep\` after one same-size edit with the mtime restored (1 run) | $(fmt_s "$ew") | $(fmt_s "$ecpu") | $((em / 1024)) MiB |"
    echo
    echo "| ratio | value | target | met |"
    echo "| --- | ---: | ---: | :---: |"
    echo "| first --deep / compileall -f (wall) | ${r_cmp}× | ≤ 1× | $(meets "$r_cmp" '<=' 1) |"
    echo "| first --deep / second --deep (wall) | ${r_2}× | ≥ 20× | $(meets "$r_2" '>=' 20) |"
    echo
    echo "First run (exit status 0 or 1 accepted):"
    echo
    echo '```'
    printf '%s\n' "$first_out"
    echo '```'
    echo
    echo "Second run:"
    echo
    echo '```'
    printf '%s\n' "$second_out"
    echo '```'
    echo
    echo "After editing \`${edited#"$tree"/}\` (one digit of \`__version__\`, same size, mtime restored) — only that file is compiled again:"
    echo
    echo '```'
    printf '%s\n' "$edit_out"
    echo '```'
    echo
    echo "Commands:"
    echo
    echo '```'
    echo "$GNU_TIME -f '%e %U %S %M' $PYCGUARD check --deep -q --cache-dir $store $tree"
    echo "$GNU_TIME -f '%e %U %S %M' $CORPUS_PYTHON -m compileall -f -q -j0 $cmp"
    echo "$cmd2"
    echo "$GNU_TIME -f '%e %U %S %M' $PYCGUARD check --deep --cache-dir $store $tree"
    echo '```'
  } > "$out"
  cat "$out"
  log "written to $out (raw hyperfine data: $json)"
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
