# unidrop bench on this project's 2-core AMD EPYC machine, nothing else running (numpy/torch rerun
# 2026-12-02 after the AVX2 kernel, load 0.9 at start; the JAX run is the earlier one, load 0.4),
# from the repository root, in the nox environments of the torch and JAX conformance sessions
# (matplotlib added to each):
.nox/conformance-backend-torch/bin/python -m unidrop bench --out benchmarks/results/bench-cpu-numpy-torch
.nox/conformance-backend-jax/bin/python -m unidrop bench --backend jax --out benchmarks/results/bench-cpu-jax
