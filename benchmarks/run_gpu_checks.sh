#!/usr/bin/env bash
# The GPU checks in one command, for a machine with an NVIDIA GPU and PyTorch, Triton, JAX and
# CuPy already installed: installs the backends (no dependencies pulled), runs the conformance
# suite on the GPU for each backend, the backends' tests, then the GPU benchmarks. Results go to
# $OUT (default benchmarks/results/gpu), one log per step and a summary line per step in
# $OUT/summary.txt, so a partial run still leaves what it measured.
#
#   bash benchmarks/run_gpu_checks.sh                      # every step
#   STEPS="conformance-torch-cuda gpu_torch" bash benchmarks/run_gpu_checks.sh   # some of them
#
# Settings: PYTHON (default python3), STEPS (names below; default all), STEP_TIMEOUT (seconds per
# step, default 300). A device session has about 15 minutes, 10 per command: run the steps in
# calls of at most 10 minutes, the most important first, for instance
#   STEPS="conformance-torch-cuda conformance-cupy gpu_torch"     then
#   STEPS="tests-torch tests-cupy conformance-jax-gpu gpu_jax"    and, with time left, the rest.
# A step that runs out of time is interrupted (SIGINT), so pytest prints its summary and the
# benchmarks write what they measured. Installing the checkout needs setuptools >= 77 (the
# pyprojects use PEP 639 licenses), and the checks pytest and Hypothesis; a machine with no network
# gets what it lacks from a .wheelhouse folder carried along (it is git-ignored: name it in the
# device tool's carry), made beforehand with
#   python -m pip download -d .wheelhouse --only-binary=:all: --python-version 3.12 \
#       "setuptools>=77" wheel "pytest>=7" "hypothesis>=6.80"
# The step names, in the order they run: conformance-torch-cuda conformance-cupy gpu_torch
# tests-torch tests-cupy conformance-jax-gpu gpu_jax gpu_cupy tests-jax bench-gpu.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-benchmarks/results/gpu}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
mkdir -p "$OUT"
status=0
wanted() { [ -z "${STEPS:-}" ] || [[ " $STEPS " == *" $1 "* ]]; }
step() {  # step NAME COMMAND...: run (if wanted) under the timeout, log to $OUT/NAME.log, summarise
  local name=$1; shift
  wanted "$name" || return 0
  local started=$SECONDS
  echo "== $name: $*" | tee "$OUT/$name.log"
  timeout -s INT -k 20 "$STEP_TIMEOUT" "$@" 2>&1 | tee -a "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name exit $rc" | tee -a "$OUT/$name.log"
  local note=""
  [ "$rc" -eq 124 ] || [ "$rc" -eq 130 ] || [ "$rc" -eq 137 ] && note=" (timed out)"
  echo "$name exit $rc in $((SECONDS - started)) s$note" >> "$OUT/summary.txt"
  [ "$rc" -eq 0 ] || status=1
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; "$PY" -V; } > "$OUT/machine.txt" 2>&1
PIP=("$PY" -m pip install -q --disable-pip-version-check)
[ -d .wheelhouse ] && PIP+=(--no-index --find-links .wheelhouse)
install() {  # install WHAT...: stop the run with the installer's own message if it fails
  if ! "${PIP[@]}" "$@" > "$OUT/install.log" 2>&1; then
    echo "installing $* failed (see $OUT/install.log):"; tail -5 "$OUT/install.log"; exit 2
  fi
}
"$PY" -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null \
  || install "setuptools>=77" wheel
"$PY" -c "import pytest, hypothesis" 2>/dev/null || install "pytest>=7" "hypothesis>=6.80"
install --no-deps --no-build-isolation -e . -e backends/numpy
for b in torch jax cupy; do
  [ -d "backends/$b" ] && install --no-deps --no-build-isolation -e "backends/$b"
done
"$PY" -m unidrop backends | tee "$OUT/backends.txt"
SUITE=("$PY" -m pytest --pyargs unidrop.conformance --hypothesis-profile=unidrop-ci -p no:cacheprovider -q)
bench() { [ -f "benchmarks/$1.py" ] && step "$1" "$PY" "benchmarks/$1.py" --out "$OUT/$1.json"; }
# the most important first: a run cut short by the session's time has done these
[ -d backends/torch ] && step conformance-torch-cuda "${SUITE[@]}" --unidrop-backend=torch --unidrop-device=cuda:0
[ -d backends/cupy ] && step conformance-cupy "${SUITE[@]}" --unidrop-backend=cupy
bench gpu_torch
[ -d backends/torch ] && step tests-torch "$PY" -m pytest backends/torch/tests -q -p no:cacheprovider
[ -d backends/cupy ] && step tests-cupy "$PY" -m pytest backends/cupy/tests -q -p no:cacheprovider
[ -d backends/jax ] && step conformance-jax-gpu "${SUITE[@]}" --unidrop-backend=jax --unidrop-device=gpu:0
bench gpu_jax
bench gpu_cupy
[ -d backends/jax ] && step tests-jax "$PY" -m pytest backends/jax/tests -q -p no:cacheprovider
# every size 2^4 .. 2^28 on the first GPU, every installed backend beside its framework's own dropout
step bench-gpu "$PY" -m unidrop bench --devices gpu --max-log2 28 --reps 5 --out "$OUT/bench"
exit $status
