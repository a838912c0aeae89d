python benchmarks/cpu_jax.py --repeats 21 --out benchmarks/results/cpu_jax.json  # the script is now benchmarks/jax_variants.py (same options); results renamed jax_variants-cpu.*
