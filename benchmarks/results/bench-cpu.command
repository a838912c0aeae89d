# unidrop bench on this project's 2-core Intel Xeon VM (AVX-512), nothing else running, both runs
# 2026-12-03 (load 0.9 at the start of the NumPy and torch run; 1.4 at the start of the JAX run,
# which followed a first JAX run without matplotlib). unidrop-numpy's kernel at SIMD level
# avx512bf16; JAX's UNIDROP_JAX_FFI=auto with bfloat16's backward by the handler. From the
# repository root, in the nox environments of the torch and JAX conformance sessions (matplotlib
# added to each):
.nox/conformance-backend-torch/bin/python -m unidrop bench --out benchmarks/results/bench-cpu-numpy-torch
.nox/conformance-backend-jax/bin/python -m unidrop bench --backend jax --out benchmarks/results/bench-cpu-jax
