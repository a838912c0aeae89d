"""An opt-in Pallas (Triton) kernel for GPUs: dropout of an array whose mask shape is its shape.

One program handles ``rows`` Philox blocks: it computes each block's four words once, reads
the input as ``(rows, 4)`` (four consecutive elements per block, one contiguous 16-byte or
8-byte access), picks each element's word by its lane, and writes the selected and scaled
output. One pass over memory, each Philox call used for four elements.

It is used instead of the jnp path only when ``UNIDROP_JAX_KERNEL=pallas`` (or
``unidrop_jax.pallas_gpu.ENABLED = True``), JAX's default backend is a GPU, the mask shape is
the input's shape (no ``broadcast_dims``) and the size is a non-zero multiple of 4. A
``pallas_call`` is opaque to XLA's partitioner, so it is not meant for sharded arrays: keep
the default jnp path there. ``INTERPRET = True`` runs the same kernel in Pallas's
interpreter on CPU, for tests.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl

from .keys import Words64
from .philox_lax import philox4x32
from .scaling import scaled

#: Opt-in switch (read at trace time).
ENABLED = os.environ.get("UNIDROP_JAX_KERNEL", "jnp") == "pallas"
#: Philox blocks (groups of four elements) per program.
BLOCK_ROWS = 1024
#: Run the kernel with Pallas's interpreter (on any backend, CPU included): for tests.
INTERPRET = False


def applicable(shape: tuple[int, ...], mask_shape: tuple[int, ...]) -> bool:
    """True when the Pallas kernel is switched on and can handle this request here."""
    size = math.prod(shape)
    return (
        ENABLED
        and shape == mask_shape
        and size > 0
        and size % 4 == 0
        and size // 4 < (1 << 32)
        and (INTERPRET or jax.default_backend() == "gpu")
    )


def dropout_pallas(
    x: Any,
    seed: Words64,
    stream: Words64,
    threshold: int,
    scale: Any,
    *,
    block_rows: int = BLOCK_ROWS,
    interpret: bool | None = None,
) -> Any:
    """``select(keep, x * scale, +0)`` by mask stream v1 for ``x.size % 4 == 0`` and no broadcast axes.

    ``scale`` is a NumPy scalar of the compute dtype; ``threshold`` a Python int < 2**32.
    """
    rows = x.size // 4
    block_rows = min(block_rows, 1 << max(0, (rows - 1).bit_length()))  # a power of two, <= needed
    # every program reads and writes a whole tile, with no bounds mask (the Triton lowering adds
    # none): rows past the array's end would be read and written in neighbouring memory, so a
    # last partial tile is padded (and cut off the result) instead
    padded = -(-rows // block_rows) * block_rows
    tiles = x.reshape(rows, 4)
    if padded != rows:
        tiles = jnp.pad(tiles, ((0, padded - rows), (0, 0)))
    words = jnp.stack([jnp.asarray(w, jnp.uint32) for w in (seed.lo, seed.hi, stream.lo, stream.hi)])
    t = np.uint32(threshold)

    def kernel(words_ref: Any, x_ref: Any, y_ref: Any) -> None:
        first = pl.program_id(0).astype(jnp.uint32) * np.uint32(block_rows)
        block = first + lax.broadcasted_iota(jnp.uint32, (block_rows,), 0)
        zero = jnp.zeros_like(block)
        w0, w1, w2, w3 = philox4x32((block, zero, words_ref[2], words_ref[3]), (words_ref[0], words_ref[1]))
        lane = lax.broadcasted_iota(jnp.int32, (block_rows, 4), 1)
        u = jnp.where(
            lane < 2,
            jnp.where(lane == 0, w0[:, None], w1[:, None]),
            jnp.where(lane == 2, w2[:, None], w3[:, None]),
        )
        values = x_ref[...]
        kept = scaled(values, scale)
        y_ref[...] = jnp.where(u >= t, kept, jnp.zeros_like(kept))

    y = pl.pallas_call(
        kernel,
        out_shape=jax.ShapeDtypeStruct((padded, 4), x.dtype),
        grid=(padded // block_rows,),
        in_specs=[pl.BlockSpec((4,), lambda i: (0,)), pl.BlockSpec((block_rows, 4), lambda i: (i, 0))],
        out_specs=pl.BlockSpec((block_rows, 4), lambda i: (i, 0)),
        interpret=INTERPRET if interpret is None else interpret,
        **_triton_options(),
    )(words, tiles)
    return (y if padded == rows else y[:rows]).reshape(x.shape)


def _triton_options() -> dict[str, Any]:
    """``compiler_params`` asking for the Triton lowering, which this kernel is written for (JAX
    0.10 lowers to Mosaic GPU by default, which refuses its 16-byte rows); none where this JAX's
    Pallas has no Triton parameters."""
    try:
        from jax.experimental.pallas import triton as pallas_triton
    except ImportError:  # pragma: no cover - depends on the JAX version
        return {}
    params = getattr(pallas_triton, "CompilerParams", None) or getattr(
        pallas_triton, "TritonCompilerParams", None
    )
    return {} if params is None else {"compiler_params": params()}
