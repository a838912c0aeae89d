# unidrop bench on this project's 2-core machine, nothing else of ours running. From the repository
# root, in the nox environments of the torch and JAX conformance sessions (matplotlib added to each).
#
# NumPy and torch: 2026-12-04, AMD EPYC VM (AVX-512, AVX512-BF16), load 0.8 at the start,
# unidrop-numpy's kernel at SIMD level avx512bf16, torch's C++ autograd node built
# (pip install --no-build-isolation, as nox installs it):
.nox/conformance-backend-torch/bin/python -m unidrop bench --out benchmarks/results/bench-cpu-numpy-torch
# JAX: 2026-12-03, Intel Xeon VM (AVX-512), load 1.4 at the start (it followed a first JAX run
# without matplotlib), JAX's UNIDROP_JAX_FFI=auto with bfloat16's backward by the handler:
.nox/conformance-backend-jax/bin/python -m unidrop bench --backend jax --out benchmarks/results/bench-cpu-jax
