"""GPU benchmark of unidrop's JAX backend against Flax-style bernoulli dropout, under jit.

    python benchmarks/gpu_jax.py --out benchmarks/results/gpu/gpu_jax.json

Needs JAX with CUDA (``pip install "jax[cuda12]==0.10.2"``) and ``pip install -e . -e
backends/numpy -e backends/jax``. For float32 and bfloat16 at 2**28 elements it prints the
machine, versions, the median time of: a copy (the memory bound), jax.random.bernoulli +
select (flax.nnx.Dropout's formulation), unidrop with each mulhi formulation and each way of
materializing the packed keep bits (see unidrop_jax.mask; "idiv", the uint8 division, is
the default; "pallas" is the opt-in Pallas kernel of unidrop_jax.pallas_gpu), and
forward+backward for both, with the ratios to bernoulli dropout, all from one run. A variant
that fails to compile is listed under "failed_variants" instead of stopping the run. It also
checks unidrop's GPU output bit for bit against the NumPy backend (float32) and the
pure-Python reference (bfloat16) on the first elements, and the Pallas kernel's output
against the default path's. Exits 2 without a GPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import jax
from jax_variants import run

VARIANTS = (
    "wide+idiv,wide+pallas,split+pallas,split+idiv,native+idiv,wide+bf16div,wide+fdiv,wide+barrier,wide+none"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=28)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--variants", default=VARIANTS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if jax.default_backend() != "gpu":
        print(f"no GPU: JAX's default backend is {jax.default_backend()!r}; skipping", file=sys.stderr)
        sys.exit(2)
    text = run(
        "unidrop JAX backend vs bernoulli dropout, GPU, jit (median ms)",
        args.size_log2,
        args.dtypes.split(","),
        args.repeats,
        args.out,
        args.variants.split(","),
    )
    print(text)
    if args.out is not None:
        args.out.with_suffix(".command").write_text(
            "python benchmarks/gpu_jax.py " + " ".join(sys.argv[1:]) + "\n"
        )


if __name__ == "__main__":
    main()
