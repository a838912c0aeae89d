"""``unidrop demo``: the same seed gives the same mask on every installed backend and device."""

from __future__ import annotations

from . import arguments, reference, registry
from .api import dropout

SHAPE = (4, 16)


def _as_bits(values: object) -> str:
    return "".join("1" if bool(v) else "." for v in values)  # type: ignore[attr-defined]


def run_demo(seed: int = 42, p: float = 0.5) -> int:
    """Print each backend's mask and say whether all agree with the pure-Python reference.

    Returns 0 when every backend and device matches the reference bit for bit, else 1.
    """
    import numpy as np

    values = np.arange(1, SHAPE[0] * SHAPE[1] + 1, dtype=np.float32).reshape(SHAPE)
    expected, keep = reference.dropout(values.reshape(-1).tolist(), SHAPE, "float32", p, seed)
    s = reference.round_to(arguments.scale(p), "float32")
    print(f"dropout(x, p={p}, seed={seed}) on x = 1..{values.size} of shape {SHAPE}, float32; kept x{s:g}")
    print(f"  {'reference (pure Python)':<28} {_as_bits(keep)}")
    all_agree = True
    for info in registry.list_backends():
        backend = registry.get_backend(info.name)
        try:
            adapter = backend.suite_adapter()  # makes and reads the backend's arrays
            devices = adapter.devices()
        except Exception as error:
            print(f"  {info.name:<28} unavailable: {error}")
            continue
        for device in devices:
            label = f"{info.name} ({device})"
            try:
                x = adapter.from_numpy(values, "float32", device)
                y = np.asarray(adapter.to_numpy(dropout(x, p, seed=seed, backend=backend)), np.float64)
            except Exception as error:
                print(f"  {label:<28} failed: {type(error).__name__}: {error}")
                all_agree = False
                continue
            same = np.array_equal(y.reshape(-1), np.array(expected))
            all_agree &= same
            print(f"  {label:<28} {_as_bits(y.reshape(-1) != 0)}  {'identical' if same else 'DIFFERENT'}")
    print("every backend gives the reference output bit for bit" if all_agree else "MISMATCH found")
    return 0 if all_agree else 1
