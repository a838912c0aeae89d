"""CPU benchmark of unidrop's JAX backend against Flax-style bernoulli dropout, under jit.

    python benchmarks/cpu_jax.py --out benchmarks/results/cpu_jax.json

Prints the machine, versions, size, the median time of each variant and its ratio to
bernoulli dropout, all from one run; writes the JSON and a .txt copy of the table.
Variants: a copy (the memory bound), jax.random.bernoulli + select (flax.nnx.Dropout's
formulation, threefry keys), unidrop with each mulhi formulation (wide, split, native) and
each way of materializing the packed keep bits (auto, bf16div, fdiv, idiv, barrier, none;
see unidrop_jax.mask),
and forward+backward for both dropouts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).parent))

from _jax_bench import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-log2", type=int, default=24)
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--variants",
        default="wide+auto,split+auto,native+auto,wide+bf16div,wide+idiv,wide+barrier,wide+none",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    text = run(
        "unidrop JAX backend vs bernoulli dropout, CPU, jit (median ms)",
        args.size_log2,
        args.dtypes.split(","),
        args.repeats,
        args.out,
        args.variants.split(","),
    )
    print(text)
    if args.out is not None:
        command = "python benchmarks/cpu_jax.py " + " ".join(sys.argv[1:])
        args.out.with_suffix(".command").write_text(command + "\n")


if __name__ == "__main__":
    main()
