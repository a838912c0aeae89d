"""The GPUs a bench run times: model, CUDA version and driver, read through the framework of the case.

Only frameworks already imported (by the backend that is benchmarked on that device) are asked; none
is imported here. A question a framework cannot answer leaves that entry out; nothing here raises.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: Where the NVIDIA kernel module says its version on Linux (read as a file: nothing is imported).
NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")


def _index(device: str) -> int:
    """The N of a device named ``platform:N`` (0 where there is none)."""
    _, _, number = device.partition(":")
    return int(number) if number.isdigit() else 0


def _torch(device: str) -> dict[str, Any]:
    torch = sys.modules["torch"]
    found: dict[str, Any] = {"model": str(torch.cuda.get_device_name(_index(device)))}
    if getattr(torch.version, "cuda", None):
        found["cuda"] = str(torch.version.cuda)
    elif getattr(torch.version, "hip", None):
        found["hip"] = str(torch.version.hip)
    return found


def _cupy(device: str) -> dict[str, Any]:
    runtime = sys.modules["cupy"].cuda.runtime
    name = runtime.getDeviceProperties(_index(device))["name"]
    return {
        "model": name.decode() if isinstance(name, bytes) else str(name),
        "cuda": _cuda_version(runtime.runtimeGetVersion()),
        "driver supports cuda": _cuda_version(runtime.driverGetVersion()),
    }


def _jax(device: str) -> dict[str, Any]:
    jax = sys.modules["jax"]
    platform, index = device.partition(":")[0], _index(device)
    chosen = next(d for d in jax.devices() if d.platform == platform and d.id == index)
    return {"model": str(chosen.device_kind)}


def _cuda_version(number: int) -> str:
    """CUDA's integer version (12040) as text (12.4)."""
    return f"{number // 1000}.{number % 1000 // 10}"


#: How to ask each framework, by the backend's name, and the module that must already be imported.
ASK: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "torch": ("torch", _torch),
    "cupy": ("cupy", _cupy),
    "jax": ("jax", _jax),
}


def nvidia_driver() -> str | None:
    """The NVIDIA driver's version from the kernel module's file, None where there is none."""
    try:
        text = NVIDIA_DRIVER_FILE.read_text()
    except OSError:
        return None
    found = re.search(r"Kernel Module(?: for \S+)?\s+([0-9][0-9.]+)", text)
    return found.group(1) if found else None


def describe(targets: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """One entry per (backend, device) of ``targets`` that is not a CPU: the backend, the device and
    what its framework says (``model``, ``cuda``...), with the NVIDIA ``driver`` where known, or an
    ``error`` where the framework failed to say. Empty where no GPU is timed."""
    found = []
    driver: str | None = None
    for name, device in dict.fromkeys((name, device) for name, device, _ in targets):
        if device.startswith("cpu"):
            continue
        entry: dict[str, Any] = {"backend": name, "device": device}
        if name in ASK and ASK[name][0] in sys.modules:
            try:
                entry.update(ASK[name][1](device))
            except Exception as error:  # a framework that cannot say costs only its own entry
                entry["error"] = f"{type(error).__name__}: {error}"
        driver = driver or nvidia_driver()
        if driver:
            entry["driver"] = driver
        found.append(entry)
    return found


def model_of(gpus: Iterable[dict[str, Any]], backend: str, device: str) -> str | None:
    """The model of ``backend``'s ``device`` among ``gpus`` (from :func:`describe`), None if unknown."""
    for entry in gpus:
        if (entry.get("backend"), entry.get("device")) == (backend, device) and entry.get("model"):
            return str(entry["model"])
    return None
