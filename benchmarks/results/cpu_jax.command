python benchmarks/cpu_jax.py --repeats 21 --out benchmarks/results/cpu_jax.json
