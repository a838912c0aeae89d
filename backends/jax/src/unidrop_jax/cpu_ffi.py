"""The CPU fast path: dropout by unidrop-numpy's compiled kernel, called from XLA through its FFI.

``unidrop_jax._cpu_ffi`` (built from ``_cpu_ffi.cc`` where XLA's FFI headers and a C++ compiler
were found at install) holds an XLA FFI handler that calls the kernel's C entry point, so the
Philox rounds, rounding rules and loops are those of ``unidrop/mask_stream_v1.h`` as unidrop-numpy
compiles them; large arrays are split over XLA's intra-op thread pool.

:data:`dropout_p` is a primitive with two lowerings: on the CPU the handler's custom call, on every
other platform (and in programs partitioned over several devices, where a custom call would be
replicated) the JAX backend's XLA formulation, :func:`.dropout.xla_dropout`. It is linear in ``x``
once ``flush`` is set (tangents), transposes to itself (the backward regenerates the mask) and
batches by the XLA formulation under ``vmap``. :func:`applicable` says when the backend binds it:
a whole array (no block), ``0 < p < 1``, whose element count lies in :data:`FORWARD` (the forward)
or :data:`TANGENT` (tangents and cotangents; :data:`TANGENT_BY_DTYPE` for the dtypes it names).

``UNIDROP_JAX_FFI`` (read at import; :func:`configure` changes it) chooses: ``auto`` (the default:
the handler where it was built and measured faster, :data:`AUTO_FORWARD`, :data:`AUTO_TANGENT`
and :data:`AUTO_TANGENT_BY_DTYPE`), ``always`` (at
every size, both ways; ImportError if the handler is not built: CI's setting) or ``off`` (the XLA
path only).
Compiled programs keep the choice they were traced with (``jax.clear_caches()`` after a change).
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import jax
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

try:
    from . import _cpu_ffi
except ImportError as error:  # not built, or unidrop-numpy's compiled kernel missing: XLA only
    _cpu_ffi = None
    if importlib.util.find_spec(f"{__package__}._cpu_ffi") is None:  # the usual case: say how to build it
        MISSING = (
            "the FFI handler was not built at install: reinstall unidrop-jax with "
            "UNIDROP_JAX_FFI_INCLUDE set to jax.ffi.include_dir(), see docs/jax.md"
        )
    else:
        MISSING = f"{type(error).__name__}: {error}"
else:
    MISSING = ""

ENV = "UNIDROP_JAX_FFI"
CHOICES = ("auto", "always", "off")
TARGET = "unidrop_dropout_v1"
#: Sizes are half-open element-count ranges ``[low, high)``; this bounds "every size".
EVERY = (1, 1 << 62)
#: ``auto``'s sizes, where the handler was measured faster (benchmarks/results/cpu_jax_ffi.txt:
#: forward, and value_and_grad with a constant and with an in-memory cotangent): at 2^9..2^10
#: XLA's whole forward+backward is a small program the handler does not beat; from 2^16 XLA's
#: backward of float32 and float16 wins with a constant cotangent (it fuses the cotangent's
#: producer and consumer into the regenerated mask, which a custom call cannot), while with a
#: cotangent in memory neither path wins at every size.
AUTO_FORWARD = ((1, 1 << 9), (1 << 11, EVERY[1]))
AUTO_TANGENT = ((1, 1 << 9), (1 << 11, 1 << 16))
#: ``auto``'s tangent sizes for the dtypes named here, in place of AUTO_TANGENT: XLA's bfloat16
#: backward goes through float32, and from 2^16 to 2^24 the handler both ways takes 0.21-0.70x
#: XLA's forward+backward time, against 0.39-0.95x with XLA's backward, with either cotangent.
AUTO_TANGENT_BY_DTYPE = {"bfloat16": ((1, 1 << 9), (1 << 11, EVERY[1]))}
#: The kernel's element kinds.
DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})

#: Whether the handler is built and registered with XLA (the tests check it in CI).
BUILT = False
#: The sizes whose forward the backend computes with the handler (none: never).
FORWARD: tuple[tuple[int, int], ...] = ()
#: The same for tangents and cotangents (the backward).
TANGENT: tuple[tuple[int, int], ...] = ()
#: TANGENT's sizes for the dtypes named here instead.
TANGENT_BY_DTYPE: dict[str, tuple[tuple[int, int], ...]] = {}

if _cpu_ffi is not None:
    jax.ffi.register_ffi_target(TARGET, _cpu_ffi.handler(), platform="cpu")
    BUILT = True


def configure(setting: str) -> None:
    """Set :data:`FORWARD`, :data:`TANGENT` and :data:`TANGENT_BY_DTYPE` from a ``UNIDROP_JAX_FFI``
    value (``auto``, ``always`` or ``off``).

    ``always`` without a built handler raises ImportError saying why it is missing; any other
    value raises ValueError naming it.
    """
    global FORWARD, TANGENT, TANGENT_BY_DTYPE
    choice = setting.strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"{ENV} must be one of {', '.join(CHOICES)}, got {setting!r}")
    if choice == "always" and not BUILT:
        raise ImportError(
            f"{ENV}=always but unidrop_jax._cpu_ffi is not available ({MISSING}); reinstall unidrop-jax "
            "with jax installed and UNIDROP_JAX_FFI_INCLUDE set to jax.ffi.include_dir()"
        )
    TANGENT_BY_DTYPE = {}
    if not BUILT or choice == "off":
        FORWARD, TANGENT = (), ()
    elif choice == "always":
        FORWARD, TANGENT = (EVERY,), (EVERY,)
    else:
        FORWARD, TANGENT = AUTO_FORWARD, AUTO_TANGENT
        TANGENT_BY_DTYPE = dict(AUTO_TANGENT_BY_DTYPE)


configure(os.environ.get(ENV, "auto"))


def describe() -> str:
    """One line: at which sizes the CPU handler runs, or why it does not."""
    if not FORWARD and not TANGENT and not any(TANGENT_BY_DTYPE.values()):
        return f"CPU: XLA only ({MISSING or ENV + '=off'})"

    def sizes(ranges: tuple[tuple[int, int], ...]) -> str:
        named = [f"{low}..{high - 1}" if high < EVERY[1] else f">= {low}" for low, high in ranges]
        return " and ".join(named) or "none"

    forward, backward = sizes(FORWARD), sizes(TANGENT)
    line = f"CPU: compiled kernel through XLA FFI, forward at {forward}, backward at {backward} elements"
    return line + "".join(
        f"; {dtype}'s backward at {sizes(each)}" for dtype, each in TANGENT_BY_DTYPE.items()
    )


def applicable(shape: tuple[int, ...], dtype: Any, whole_array: bool, tangent: bool = False) -> bool:
    """Whether dropout of an array of ``shape`` and ``dtype`` takes :data:`dropout_p` (on the CPU):
    a forward (``tangent=False``) or a tangent map."""
    if not all(isinstance(size, int) for size in shape):  # symbolic (shape-polymorphic export)
        return False
    n = math.prod(shape)
    name = np.dtype(dtype).name
    sizes = TANGENT_BY_DTYPE.get(name, TANGENT) if tangent else FORWARD
    return whole_array and name in DTYPES and len(shape) < 64 and any(low <= n < high for low, high in sizes)


def broadcast_bits(shape: tuple[int, ...], mask_shape: tuple[int, ...]) -> int:
    """The handler's ``broadcast`` attribute: bit ``d`` set where the mask has 1 element along axis ``d``."""
    return sum(1 << d for d, (n, m) in enumerate(zip(shape, mask_shape, strict=True)) if m == 1 and n != 1)


def dropout(x: Any, words: tuple[Any, ...], mask_shape: tuple[int, ...], flush: bool) -> Any:
    """Mask stream v1 dropout of the whole array ``x`` by :data:`dropout_p`.

    ``words``: the uint32 scalars seed low, seed high, stream low, stream high and threshold, then
    the scale (the compute dtype's scalar). ``flush``: the tangent map (flushing subnormals as
    XLA:CPU's multiply does, and linear in ``x``) rather than the exact forward.
    """
    return dropout_p.bind(x, *words, mask_shape=tuple(mask_shape), flush=bool(flush))


dropout_p = Primitive("unidrop_dropout")


@dropout_p.def_abstract_eval
def _abstract(x: Any, *words: Any, mask_shape: tuple[int, ...], flush: bool) -> Any:
    return x  # x's shape, dtype, sharding (explicit axes) and varying manual axes (shard_map)


def _xla(x: Any, *words: Any, mask_shape: tuple[int, ...], flush: bool) -> Any:
    from .dropout import xla_dropout  # dropout imports this module

    return xla_dropout(x, words, mask_shape, flush)


dropout_p.def_impl(jax.jit(_xla, static_argnames=("mask_shape", "flush")))

_xla_lowering = mlir.lower_fun(_xla, multiple_results=False)
_ffi_lowering = jax.ffi.ffi_lowering(TARGET)


def _unpartitioned(ctx: Any) -> bool:
    """Whether the program being lowered runs on one device, or on each shard inside ``shard_map``
    (JAX's private axis contexts; a JAX without them gets the XLA path)."""
    try:
        from jax._src import sharding_impls
    except ImportError:  # pragma: no cover - depends on the JAX version
        return False
    axes = getattr(ctx.module_context, "axis_context", None)
    if isinstance(axes, sharding_impls.ShardingContext):
        return axes.num_devices == 1
    if isinstance(axes, sharding_impls.SPMDAxisContext):
        return set(axes.manual_axes) == set(axes.mesh.axis_names)
    return False


def _for_export(ctx: Any) -> bool:
    """Whether the program is lowered for ``jax.export`` (JAX's private lowering parameters), which
    refuses custom calls outside JAX's list of stable targets."""
    parameters = getattr(ctx.module_context, "lowering_parameters", None)
    return bool(getattr(parameters, "for_export", False))


def _cpu_lowering(ctx: Any, x: Any, *words: Any, mask_shape: tuple[int, ...], flush: bool) -> Any:
    if not _unpartitioned(ctx) or _for_export(ctx):
        # the partitioner would replicate a custom call, and an exported program may only hold
        # JAX's stable ones: XLA's loops instead (the same bits)
        return _xla_lowering(ctx, x, *words, mask_shape=mask_shape, flush=flush)
    broadcast = broadcast_bits(ctx.avals_in[0].shape, mask_shape)
    return _ffi_lowering(ctx, x, *words, broadcast=np.int64(broadcast), flush=np.int64(flush))


mlir.register_lowering(dropout_p, _xla_lowering)
mlir.register_lowering(dropout_p, _cpu_lowering, platform="cpu")


def _jvp(
    primals: tuple[Any, ...], tangents: tuple[Any, ...], *, mask_shape: tuple[int, ...], flush: bool
) -> Any:
    """Linear in ``x`` (the words are integers or constants): the tangent is dropped with the same mask."""
    x, *words = primals
    out = dropout_p.bind(x, *words, mask_shape=mask_shape, flush=flush)
    t = tangents[0]
    if type(t) is ad.Zero:
        return out, ad.Zero.from_primal_value(out)
    return out, dropout_p.bind(t, *words, mask_shape=mask_shape, flush=True)


def _transpose(ct: Any, x: Any, *words: Any, mask_shape: tuple[int, ...], flush: bool) -> list[Any]:
    """The map is diagonal, ``t -> select(keep, t * s, +0)``: its transpose is itself."""
    assert ad.is_undefined_primal(x) and not any(ad.is_undefined_primal(w) for w in words)
    if type(ct) is ad.Zero:
        return [ad.Zero(x.aval), *([None] * len(words))]
    return [dropout_p.bind(ct, *words, mask_shape=mask_shape, flush=True), *([None] * len(words))]


def _batch(args: tuple[Any, ...], dims: tuple[Any, ...], *, mask_shape: tuple[int, ...], flush: bool) -> Any:
    """Under ``vmap``, the XLA formulation, vmapped: each batch element is its own dropout call."""
    axes = [d if isinstance(d, int) else None for d in dims]  # unmapped: None or NotMapped
    out = jax.vmap(lambda x, *w: _xla(x, *w, mask_shape=mask_shape, flush=flush), in_axes=axes)(*args)
    return out, 0


ad.primitive_jvps[dropout_p] = _jvp
ad.primitive_transposes[dropout_p] = _transpose
batching.primitive_batchers[dropout_p] = _batch
