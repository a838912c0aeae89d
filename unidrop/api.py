"""The public operation: :func:`dropout`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import arguments, registry
from .backend import Backend
from .blocks import check_block


def dropout(
    x: Any,
    p: float = 0.5,
    *,
    training: bool = True,
    seed: Any = None,
    stream: Any = 0,
    broadcast_dims: int | Sequence[int] = (),
    return_mask: bool = False,
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
    inplace: bool = False,
    backend: str | Backend | None = None,
) -> Any:
    """Dropout by mask stream v1: the same mask for the same seed on every backend and device.

    Each element of the mask shape (``x``'s shape with the ``broadcast_dims`` axes set to 1)
    is dropped with probability ``p``; dropped elements become +0 and kept ones are scaled
    by ``1 / (1 - p)``. The result has the type, device, shape and dtype of ``x``, and ``x``
    is not modified unless ``inplace=True``. With ``training=False`` or ``p == 0``, ``x`` itself
    is returned and no randomness is consumed.

    Args:
        x: The input array (NumPy, PyTorch, JAX or CuPy, or of any installed backend).
        p: The probability of dropping an element, a float in [0, 1].
        training: Apply dropout if True; if False, return ``x`` itself.
        seed: An integer in [0, 2**64) (a backend may accept its framework's own keys too);
            ``None`` follows the backend's convention (see its documentation).
        stream: An integer in [0, 2**64): independent masks for one seed.
        broadcast_dims: The axes along which the mask is shared (set to 1 in the mask shape).
        return_mask: Return ``(y, keep)`` instead of ``y``, ``keep`` a boolean array of the
            mask shape.
        global_shape: With ``offset``, says that ``x`` is a block of a larger logical array of
            this shape: ``x`` then gets exactly its slice of that array's mask (a Dask chunk, a
            DTensor shard, a tile cut by hand). ``broadcast_dims`` and the mask refer to it.
        offset: The index in ``global_shape`` of ``x``'s first element, one int per axis.
        inplace: Write the result into ``x`` and return ``x`` itself (the same values as
            without it). Only for mutable arrays (NumPy, CuPy, PyTorch); elsewhere a TypeError.
        backend: A backend name (or Backend instance) to use instead of choosing by ``x``'s type.

    Returns:
        ``y``, or ``(y, keep)`` with ``return_mask=True`` (for a block, ``keep`` is the block's
        slice of the global mask).

    Example:
        The same seed gives the same mask on every backend; kept elements are scaled by 2:

        >>> import numpy as np
        >>> import unidrop
        >>> x = np.arange(1, 9, dtype=np.float32)
        >>> unidrop.dropout(x, 0.5, seed=42)
        array([ 2.,  0.,  0.,  0., 10.,  0., 14.,  0.], dtype=float32)
    """
    # The common case of each argument is judged inline: a call costs microseconds, and small
    # arrays are dropped out often (the checks called otherwise raise naming the bad value).
    if type(p) is not float or not 0.0 <= p <= 1.0:
        p = arguments.check_p(p)
    if training is not True:
        training = arguments.check_training(training)
    if return_mask is not True and return_mask is not False:
        raise TypeError(f"return_mask must be True or False, got {return_mask!r}")
    if inplace is not False and inplace is not True:
        raise TypeError(f"inplace must be True or False, got {arguments.show(inplace)}")
    implementation, shape, dtype, supported = registry.dispatch(x, backend)
    if inplace and not implementation.mutable_arrays:
        raise TypeError(
            f"inplace=True needs a mutable array; the unidrop backend for {arguments.type_name(x)} "
            "does not write into its arrays: call without inplace=True and use the result"
        )
    if dtype not in supported or dtype not in arguments.FLOAT_DTYPES:
        arguments.check_dtype(dtype, supported)
    dims: tuple[int, ...]
    if type(broadcast_dims) is tuple and not broadcast_dims and global_shape is None and offset is None:
        dims, mask_shape, block = (), shape, None  # the default: the whole array, its own mask shape
    else:
        # broadcast_dims is judged before the randomness (remembered per shape: a repeated call is cheap)
        dims, mask_shape = arguments.broadcast_and_mask_shape(shape, broadcast_dims)
        block = check_block(shape, global_shape, offset, dims)
    if block is not None and not implementation.supports_blocks:
        raise TypeError(
            f"the unidrop backend for {arguments.type_name(x)} does not implement blocks of a global mask "
            "(global_shape=, offset=); upgrade it, or call dropout on the whole array"
        )
    if not training or p == 0.0:  # the input itself; no randomness is drawn
        implementation.check_randomness(seed, stream, x)  # but a bad seed or stream is still refused
        return (x, implementation.full_mask(x, mask_shape)) if return_mask else x
    if inplace:  # an x that cannot be written is refused before a missing seed is drawn
        implementation.check_writable(x)
    seed, stream = implementation.resolve_randomness(seed, stream, x)
    plan = arguments.DropoutPlan(p, seed, stream, shape, dtype, mask_shape, dims, return_mask, block)
    y, keep = implementation.dropout(x, plan)
    if inplace:
        implementation.copy_into(x, y)
        y = x
    return (y, keep) if return_mask else y


def _refuse_torchscript() -> None:
    """``torch.jit.script`` calls this before parsing :func:`dropout`: an error naming what to use."""
    raise RuntimeError(
        "unidrop.dropout cannot be compiled by torch.jit.script (TorchScript is deprecated since "
        "torch 2.13). Use torch.export.export(model, args) to export the model, or "
        "torch.compile(model) to compile it. See docs/torch.md."
    )


dropout.__prepare_scriptable__ = _refuse_torchscript  # type: ignore[attr-defined]
