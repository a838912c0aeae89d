"""Per-call cost of ``unidrop.dropout`` on a small array, with a breakdown of where it goes.

On 16 float32 elements (issue 11's target: at most 6x the naive NumPy expression and 3x torch's
``F.dropout``) it times, as medians of interleaved repetitions:

* the whole call, ``unidrop.dropout(x, 0.1, seed=1)``, on NumPy (and on torch where installed),
  beside the naive NumPy expression and ``F.dropout``;
* each step of the call alone: ``check_p``, ``registry.dispatch``, building the ``DropoutPlan``,
  ``resolve_randomness`` and the implementation's ``dropout`` (the kernel and its wrapper).

    python benchmarks/per_call.py [--elements 16] [--reps 9]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

import unidrop
from unidrop import arguments, registry
from unidrop.bench.timing import Timed, median_seconds

P = 0.1


def steps(x: object, label: str) -> dict[str, Callable[[], object]]:
    """The whole call on ``x`` and each of its steps alone."""
    implementation, shape, dtype, _ = registry.dispatch(x)
    seed, stream = implementation.resolve_randomness(1, 0, x)
    plan = arguments.DropoutPlan.build(shape, dtype, P, seed, stream)
    return {
        f"{label}: unidrop.dropout": lambda: unidrop.dropout(x, P, seed=1),
        f"{label}:   check_p": lambda: arguments.check_p(P),
        f"{label}:   registry.dispatch": lambda: registry.dispatch(x),
        f"{label}:   DropoutPlan.build": lambda: arguments.DropoutPlan.build(shape, dtype, P, seed, stream),
        f"{label}:   resolve_randomness": lambda: implementation.resolve_randomness(1, 0, x),
        f"{label}:   implementation.dropout": lambda: implementation.dropout(x, plan),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=16)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--number", type=int, default=2000, help="calls per repetition")
    args = parser.parse_args(argv)
    x = np.random.default_rng(0).standard_normal(args.elements).astype(np.float32)
    rng = np.random.default_rng(0)
    calls: dict[str, Callable[[], object]] = {
        "numpy: naive x * (rng.random(n) >= p) / (1 - p)": lambda: (
            x * (rng.random(x.shape, np.float32) >= P).astype(x.dtype) / x.dtype.type(1 - P)
        ),
        **steps(x, "numpy"),
    }
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        t = torch.from_numpy(x.copy())
        calls["torch: F.dropout"] = lambda: torch.nn.functional.dropout(t, P, training=True)
        try:
            calls.update(steps(t, "torch"))
        except Exception as error:  # no torch backend installed
            print(f"(unidrop on torch unavailable: {type(error).__name__}: {error})")
    medians = median_seconds({name: Timed(call) for name, call in calls.items()}, args.reps, args.number)
    width = max(map(len, medians))
    print(f"{args.elements} float32 elements, p = {P}, median per call:")
    for name, seconds in medians.items():
        print(f"  {name:<{width}}  {seconds * 1e6:8.2f} µs")
    naive = medians["numpy: naive x * (rng.random(n) >= p) / (1 - p)"]
    print(f"unidrop numpy / naive NumPy: {medians['numpy: unidrop.dropout'] / naive:.2f}x (target <= 6)")
    if "torch: unidrop.dropout" in medians:
        ratio = medians["torch: unidrop.dropout"] / medians["torch: F.dropout"]
        print(f"unidrop torch / F.dropout:   {ratio:.2f}x (target <= 3)")
        print(f"unidrop torch / naive NumPy: {medians['torch: unidrop.dropout'] / naive:.2f}x (target <= 6)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
