#!/usr/bin/env bash
# The GPU checks in one command, for a machine with an NVIDIA GPU and PyTorch, Triton, JAX and
# CuPy already installed: installs the backends (no dependencies pulled), runs the conformance
# suite on the GPU for each backend, then the GPU benchmarks. Results go to $OUT (default
# benchmarks/results/gpu), one log per step, so a partial run still leaves what it measured.
#
#   bash benchmarks/run_gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
status=0
step() {  # step NAME COMMAND...: run, tee to $OUT/NAME.log, remember failures
  local name=$1; shift
  echo "== $name: $*" | tee "$OUT/$name.log"
  "$@" 2>&1 | tee -a "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name exit $rc" | tee -a "$OUT/$name.log"
  [ "$rc" -eq 0 ] || status=1
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; python -V; } > "$OUT/machine.txt" 2>&1
# A GPU machine may have no network: with a .wheelhouse folder (made beforehand with
#   python -m pip download -d .wheelhouse setuptools wheel pytest hypothesis
# and carried along), everything is installed from it and nothing is fetched.
PIP=(python -m pip install -q)
[ -d .wheelhouse ] && PIP+=(--no-index --find-links .wheelhouse)
"${PIP[@]}" "pytest>=7" "hypothesis>=6.80" "setuptools>=77" wheel 2>&1 | tail -2
"${PIP[@]}" --no-deps --no-build-isolation -e . -e backends/numpy 2>&1 | tail -2
for b in torch jax cupy; do
  [ -d "backends/$b" ] && "${PIP[@]}" --no-deps --no-build-isolation -e "backends/$b" 2>&1 | tail -2
done
python -m unidrop backends | tee "$OUT/backends.txt"
SUITE=(python -m pytest --pyargs unidrop.conformance --hypothesis-profile=unidrop-ci -p no:cacheprovider -q)
[ -d backends/torch ] && step conformance-torch-cuda "${SUITE[@]}" --unidrop-backend=torch --unidrop-device=cuda:0
[ -d backends/cupy ] && step conformance-cupy "${SUITE[@]}" --unidrop-backend=cupy
[ -d backends/jax ] && step conformance-jax-gpu "${SUITE[@]}" --unidrop-backend=jax --unidrop-device=gpu:0
[ -d backends/torch ] && step tests-torch python -m pytest backends/torch/tests -q -p no:cacheprovider
[ -d backends/cupy ] && step tests-cupy python -m pytest backends/cupy/tests -q -p no:cacheprovider
[ -d backends/jax ] && step tests-jax python -m pytest backends/jax/tests -q -p no:cacheprovider
for bench in gpu_torch gpu_cupy gpu_jax; do
  [ -f "benchmarks/$bench.py" ] && step "$bench" python "benchmarks/$bench.py" --out "$OUT/$bench.json"
done
# every size 2^4 .. 2^28 on the first GPU, every installed backend beside its framework's own dropout
step bench-gpu python -m unidrop bench --devices gpu --max-log2 28 --reps 5 --out "$OUT/bench"
exit $status
