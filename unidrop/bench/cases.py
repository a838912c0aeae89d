"""What is timed for each backend: a copy, the framework's own dropout and unidrop, on one array.

:func:`calls_for` returns, for one array of a backend's framework, the modes it has (``forward``,
and ``fwd+bwd`` where the framework has autograd) and in each the calls to time, keyed ``copy``
(:data:`FORWARD_COPY` in ``fwd+bwd``), the framework's own dropout (see :data:`OWN`) and
``unidrop``. Each framework is imported here, inside the function for its backend: only when that
backend is benchmarked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..api import dropout
from .timing import Timed, cupy_timed, torch_timed

#: The key of each framework's own dropout in the results, by backend name.
OWN = {"numpy": "naive", "cupy": "naive", "torch": "F.dropout", "jax": "jax.random.bernoulli"}
#: The key of the copy in a ``fwd+bwd`` mode: it is the forward copy (no autograd), a memory-bound
#: floor shown for scale, so that mode's tables give no unidrop / copy ratio.
FORWARD_COPY = "copy (forward only)"
#: The seed unidrop is given (any fixed seed: the cost does not depend on it).
SEED = 1

Modes = dict[str, dict[str, Timed]]


def calls_for(name: str, x: Any, p: float, device: str) -> Modes:
    """The calls to time on ``x`` (an array of backend ``name``'s framework on ``device``), by mode.

    Raises KeyError for a backend this benchmark does not know (only those of :data:`OWN`).
    """
    return _BUILDERS[name](x, p, device)


def _numpy(x: Any, p: float, device: str) -> Modes:
    import numpy

    rng = numpy.random.default_rng(0)
    scale = x.dtype.type(1 - p)

    def naive() -> Any:
        return x * (rng.random(x.shape, numpy.float32) >= p).astype(x.dtype) / scale

    def quiet_naive() -> Any:  # where 1 - p underflows in x's dtype: 0 / 0 and x / 0 timed quietly
        with numpy.errstate(divide="ignore", invalid="ignore"):
            return naive()

    return {
        "forward": {
            "copy": Timed(x.copy),
            "naive": Timed(naive if scale != 0 else quiet_naive),
            "unidrop": Timed(lambda: dropout(x, p, seed=SEED, backend="numpy")),
        }
    }


def _torch(x: Any, p: float, device: str) -> Modes:
    import torch

    functional = torch.nn.functional

    def timed(call: Callable[[], Any]) -> Timed:
        return torch_timed(call, device)

    leaf = x.detach().clone().requires_grad_(True)

    def both(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            y = fn(leaf)
            y.sum().backward()
            leaf.grad = None
            return y

        return run

    def own(a: Any) -> Any:
        return functional.dropout(a, p, training=True)

    def ours(a: Any) -> Any:
        return dropout(a, p, seed=SEED, backend="torch")

    return {
        "forward": {
            "copy": timed(x.clone),
            "F.dropout": timed(lambda: own(x)),
            "unidrop": timed(lambda: ours(x)),
        },
        "fwd+bwd": {
            FORWARD_COPY: timed(x.clone),
            "F.dropout": timed(both(own)),
            "unidrop": timed(both(ours)),
        },
    }


def _jax(x: Any, p: float, device: str) -> Modes:
    import jax

    jnp = jax.numpy

    key = jax.random.key(0)

    def own(a: Any) -> Any:
        keep = jax.random.bernoulli(key, 1 - p, a.shape)
        return jnp.where(keep, a / jnp.asarray(1 - p, a.dtype), jnp.zeros((), a.dtype))

    def ours(a: Any) -> Any:
        return dropout(a, p, seed=SEED, backend="jax")

    def wait(result: Any) -> None:
        jax.block_until_ready(result)

    def grad(fn: Callable[[Any], Any]) -> Any:  # the forward's output too, as torch's fwd+bwd computes it
        return jax.jit(jax.value_and_grad(lambda a: fn(a).astype(jnp.float32).sum()))

    copy = jax.jit(lambda a: a + jnp.zeros((), a.dtype))
    forward, backward = {"own": jax.jit(own), "ours": jax.jit(ours)}, {"own": grad(own), "ours": grad(ours)}
    return {
        "forward": {
            "copy": Timed(lambda: copy(x), wait),
            "jax.random.bernoulli": Timed(lambda: forward["own"](x), wait),
            "unidrop": Timed(lambda: forward["ours"](x), wait),
        },
        "fwd+bwd": {
            FORWARD_COPY: Timed(lambda: copy(x), wait),
            "jax.random.bernoulli": Timed(lambda: backward["own"](x), wait),
            "unidrop": Timed(lambda: backward["ours"](x), wait),
        },
    }


def _cupy(x: Any, p: float, device: str) -> Modes:
    import cupy

    timed = cupy_timed

    scale = x.dtype.type(1 - p)
    return {
        "forward": {
            "copy": timed(x.copy),
            "naive": timed(
                lambda: x * (cupy.random.random(x.shape, cupy.float32) >= p).astype(x.dtype) / scale
            ),
            "unidrop": timed(lambda: dropout(x, p, seed=SEED, backend="cupy")),
        }
    }


_BUILDERS: dict[str, Callable[[Any, float, str], Modes]] = {
    "numpy": _numpy,
    "torch": _torch,
    "jax": _jax,
    "cupy": _cupy,
}
