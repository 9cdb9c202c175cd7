#!/usr/bin/env bash
# Benchmark azmlinfsrv against the reference Python server on this machine.
#
#   bench/run.sh            full size, by hand (a few minutes, both cores busy)
#   bench/run.sh --quick    small size for CI (about 1-2 minutes once tools are installed)
#
# Environment:
#   BENCH_SIZE=small|full   same as --quick / --full
#   BENCH_DURATION=N        seconds per load point (overrides the size's default)
#   BENCH_NO_BUILD=1        do not run `cargo build --release`; use whatever binary exists
#   BENCH_OURS=PATH         measure this binary instead of target/release/azmlinfsrv (no build)
#   BENCH_PYTHON=PATH       interpreter for the throw-away venv (default: python3)
#   BENCH_STRICT=1          also exit 1 if any run had errors
#
# It exits 1 when our server could not be built, started or measured (a benchmark
# that shows nothing about it must not pass CI), and when the reference cannot be
# installed from PyPI or a ceiling cannot be measured.
#
# It installs what it needs (wrk from Debian's packages, the reference into a
# throw-away venv under target/bench/refvenv, reused when present), builds our
# release binary and the static ceiling server, then hands over to bench/bench.py,
# which prints the table and writes target/bench/results.md. Loopback only.
set -euo pipefail

script_path=$(realpath "${BASH_SOURCE[0]}")
repo_root=$(dirname "$(dirname "$script_path")")
cd "$repo_root"

size=${BENCH_SIZE:-full}
for arg in "$@"; do
  case "$arg" in
    --quick) size=small ;;
    --full) size=full ;;
    -h|--help) sed -n '2,18p' "$script_path" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

out_dir=target/bench
venv=$out_dir/refvenv
pid_file=$out_dir/running.pids
reference_version=1.5.1
mkdir -p "$out_dir/logs"

log() { echo "[bench $(date +%H:%M:%S)] $*"; }

# Whatever happens (error, Ctrl+C, bench.py killed), stop every server process group
# that bench.py recorded as running, so nothing is left listening.
stop_leftovers() {
  [[ -s "$pid_file" ]] || return 0
  while read -r pgid; do
    [[ -n "$pgid" ]] && kill -TERM -- "-$pgid" 2>/dev/null || true
  done < "$pid_file"
  sleep 1
  while read -r pgid; do
    [[ -n "$pgid" ]] && kill -KILL -- "-$pgid" 2>/dev/null || true
  done < "$pid_file"
  : > "$pid_file"
}

# bench.py runs in the background and is waited for, so that a signal to this script
# is handled at once (bash defers traps while a foreground child runs).
bench_pid=""
cleanup() {
  if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true  # it stops its own servers on SIGTERM
    wait "$bench_pid" 2>/dev/null || true
  fi
  stop_leftovers
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_wrk() {
  command -v wrk >/dev/null && return 0
  log "installing wrk from Debian's packages"
  local apt=(apt-get)
  [[ $(id -u) -eq 0 ]] || apt=(sudo apt-get)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y wrk >"$out_dir/logs/apt.log" 2>&1 \
    || { "${apt[@]}" update >>"$out_dir/logs/apt.log" 2>&1 \
         && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y wrk >>"$out_dir/logs/apt.log" 2>&1; } \
    || { echo "could not install wrk, see $out_dir/logs/apt.log" >&2; exit 1; }
}

# The reference in its own venv; kept between runs, rebuilt if it is not the right version.
ensure_reference_venv() {
  if "$venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('azureml-inference-server-http') != '$reference_version')" 2>/dev/null; then
    return 0
  fi
  log "creating $venv with azureml-inference-server-http==$reference_version"
  rm -rf "$venv"
  "${BENCH_PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "azureml-inference-server-http==$reference_version" >"$out_dir/logs/pip.log" 2>&1 \
    || { echo "pip install failed, see $out_dir/logs/pip.log" >&2; exit 1; }
}

build_static_server() {
  log "building the static ceiling server"
  cargo build --quiet --release --manifest-path bench/static_server/Cargo.toml \
    --target-dir "$out_dir/cargo"
}

# Sets ours (the binary to measure, or empty) and ours_note (why it is missing).
build_ours() {
  ours=""
  ours_note=""
  local binary=target/release/azmlinfsrv
  if [[ -n "${BENCH_OURS:-}" ]]; then
    [[ -x "$BENCH_OURS" ]] && ours=$(realpath "$BENCH_OURS") || ours_note="BENCH_OURS=$BENCH_OURS is not executable"
    return 0
  fi
  if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    if [[ ! -f src/main.rs ]]; then
      ours_note="src/main.rs does not exist yet, nothing to build"
      return 0
    fi
    log "building our release binary (cargo build --release; log in $out_dir/logs/build.log)"
    if ! cargo build --release >"$out_dir/logs/build.log" 2>&1; then
      ours_note="cargo build --release failed, see $out_dir/logs/build.log"
      return 0
    fi
  fi
  if [[ -x "$binary" ]]; then
    ours=$repo_root/$binary
  else
    ours_note="$binary does not exist (BENCH_NO_BUILD=${BENCH_NO_BUILD:-0})"
  fi
}

ensure_wrk
# Ours first: without it there is nothing to measure, so stop before installing more.
build_ours
if [[ -z "$ours" ]]; then
  echo "bench: FAILED: our server cannot be measured: $ours_note" >&2
  exit 1
fi
ensure_reference_venv
build_static_server

strict=()
[[ "${BENCH_STRICT:-0}" == 1 ]] && strict=(--strict)

log "measuring ($size size)"
python3 bench/bench.py \
  --size "$size" \
  --duration "${BENCH_DURATION:-0}" \
  --python "$repo_root/$venv/bin/python" \
  --reference "$repo_root/$venv/bin/azmlinfsrv" \
  --ours "$ours" \
  --ours-note "$ours_note" \
  --static-server "$repo_root/$out_dir/cargo/release/bench-static-server" \
  --wrk "$(command -v wrk)" \
  --out-dir "$out_dir" \
  --pid-file "$pid_file" \
  "${strict[@]}" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=""
exit "$status"
