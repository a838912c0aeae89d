"""The dropout family on mask stream v1: alpha dropout, drop path, Gaussian dropout, and backwards.

Every function here takes the same randomness as :func:`unidrop.dropout` and dispatches the
same way. The masks are dropout's own (element i dropped iff u_i < t), so ``alpha_dropout`` and
``drop_path`` drop exactly the elements ``dropout`` drops for the same (seed, stream, mask
shape). A backend supplies primitives (:meth:`~unidrop.Implementation.keep_mask`,
:meth:`~unidrop.Implementation.stream_words`, :meth:`~unidrop.Implementation.namespace`) and the
rules are computed here, once, with the array's own namespace; the exact rules and their
exactness classes are in docs/spec.md, "The dropout family".
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

from . import arguments, registry
from .api import dropout
from .backend import Backend, Implementation
from .blocks import MaskBlock, check_block

#: SELU's ``scale * alpha``: the value a SELU unit saturates to is ``-ALPHA`` (PyTorch's constant).
ALPHA = arguments.SELU_ALPHA
#: The uniform variates of Gaussian dropout carry the top 24 bits of a word: k * 2**-24.
UNIFORM_BITS = 24
TWO_PI = 2.0 * math.pi


def alpha_constants(p: float) -> tuple[float, float, float]:
    """``(a, c, d)`` in float64: kept elements become ``x * a + c``, dropped ones ``d``.

    ``a = 1 / sqrt((ALPHA**2 p + 1)(1 - p))``, ``c = ALPHA a p``, ``d = -ALPHA a (1 - p)``
    (PyTorch's affine correction); ``(0, 0, 0)`` for p == 1, where every element is +0.
    """
    if p == 1.0:
        return 0.0, 0.0, 0.0
    a = 1.0 / math.sqrt((ALPHA * ALPHA * p + 1.0) * (1.0 - p))
    return a, ALPHA * a * p, -ALPHA * a * (1.0 - p)


def gaussian_stddev(p: float) -> float:
    """The noise's standard deviation ``sqrt(p / (1 - p))`` in float64 (Keras' GaussianDropout)."""
    return math.sqrt(p / (1.0 - p))


def _prepare(
    x: Any,
    p: Any,
    training: Any,
    seed: Any,
    stream: Any,
    broadcast_dims: Any,
    global_shape: Any,
    offset: Any,
    backend: str | Backend | None,
    return_mask: bool = False,
) -> tuple[Implementation, arguments.DropoutPlan | None, tuple[int, ...]]:
    """Validate as :func:`unidrop.dropout` does: ``(implementation, plan or None, mask shape)``.

    The plan is None where the function is the identity (``training=False`` or ``p == 0``).
    """
    p = arguments.check_p(p)
    training = arguments.check_training(training)
    if return_mask is not True and return_mask is not False:
        raise TypeError(f"return_mask must be True or False, got {return_mask!r}")
    implementation, shape, dtype, supported = registry.dispatch(x, backend)
    arguments.check_dtype(dtype, supported)
    dims, mask_shape = arguments.broadcast_and_mask_shape(shape, broadcast_dims)
    block = check_block(shape, global_shape, offset, dims)
    if block is not None and not implementation.supports_blocks:
        raise TypeError(
            f"the unidrop backend for {arguments.type_name(x)} does not implement blocks of a global mask "
            "(global_shape=, offset=); upgrade it, or call on the whole array"
        )
    if not training or p == 0.0:
        implementation.check_randomness(seed, stream, x)
        return implementation, None, mask_shape
    seed, stream = implementation.resolve_randomness(seed, stream, x)
    plan = arguments.DropoutPlan(p, seed, stream, shape, dtype, mask_shape, dims, return_mask, block)
    return implementation, plan, mask_shape


def _compute_type(implementation: Implementation, x: Any, dtype: str) -> tuple[Any, Any]:
    """``(namespace, compute dtype object)`` for ``x`` of canonical dtype ``dtype``."""
    xp = implementation.namespace(x)
    return xp, getattr(xp, arguments.compute_dtype(dtype))


def alpha_dropout(
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
    backend: str | Backend | None = None,
) -> Any:
    """Alpha dropout for SELU networks: zero mean and unit variance kept, on dropout's mask.

    The mask is :func:`unidrop.dropout`'s for the same ``seed``, ``stream`` and mask shape.
    Dropped elements become ``d = -ALPHA a (1 - p)`` and kept ones ``x a + c``, with
    ``a = 1 / sqrt((ALPHA**2 p + 1)(1 - p))`` and ``c = ALPHA a p`` (PyTorch's
    ``alpha_dropout``); ``p == 1`` gives +0 everywhere, as PyTorch does. ``broadcast_dims``
    gives the feature-wise form (PyTorch's ``FeatureAlphaDropout``: ``broadcast_dims=(2, 3)``
    for ``(N, C, H, W)``). ``training=False`` or ``p == 0`` return ``x`` itself. The other
    arguments are :func:`unidrop.dropout`'s. Exact up to one rounding: a backend may fuse the
    multiply-add (docs/spec.md).

    Example:
        >>> import numpy as np
        >>> import unidrop
        >>> x = np.zeros(8, dtype=np.float32)
        >>> unidrop.alpha_dropout(x, 0.5, seed=42)
        array([ 0.77919394, -0.77919394, -0.77919394, -0.77919394,  0.77919394,
               -0.77919394,  0.77919394, -0.77919394], dtype=float32)
    """
    implementation, plan, mask_shape = _prepare(
        x, p, training, seed, stream, broadcast_dims, global_shape, offset, backend, return_mask
    )
    if plan is None:
        return (x, implementation.full_mask(x, mask_shape)) if return_mask else x
    keep = implementation.keep_mask(x, plan)
    y = implementation.like_input(x, alpha_of_mask(implementation, x, keep, plan))
    return (y, keep) if return_mask else y


def alpha_of_mask(implementation: Implementation, x: Any, keep: Any, plan: arguments.DropoutPlan) -> Any:
    """Alpha dropout's values for ``x`` and its keep mask ``keep`` (``plan``'s, broadcast over
    ``x``): ``x a + c`` where kept, ``d`` where dropped, in the compute dtype, rounded to ``x``'s.

    For a backend whose module computes the mask its own way (from a key it keeps for backward).
    """
    return _quietly(implementation, _alpha_values, implementation, x, keep, plan)


def _alpha_values(implementation: Implementation, x: Any, keep: Any, plan: arguments.DropoutPlan) -> Any:
    xp, compute = _compute_type(implementation, x, plan.dtype)
    a, c, d = (_rounded(value, plan.compute_dtype, implementation, xp) for value in alpha_constants(plan.p))
    x_compute = implementation.astype(x, compute)
    kept = (
        implementation.astype(x_compute * a + c, compute) if plan.p < 1.0 else x_compute
    )  # p == 1: none kept
    y = implementation.astype(xp.where(keep, kept, d), compute)
    return implementation.astype(y, x.dtype)


def _quietly(implementation: Implementation, rule: Callable[..., Any], *args: Any) -> Any:
    """``rule(*args)``, inside the backend's :meth:`~unidrop.Implementation.quiet_arithmetic` where
    it has one: the family's floating-point overflow warns and raises no more than dropout's does."""
    context = implementation.quiet_arithmetic()
    if context is None:
        return rule(*args)
    with context:
        return rule(*args)


def drop_path(
    x: Any,
    p: float = 0.5,
    *,
    training: bool = True,
    seed: Any = None,
    stream: Any = 0,
    scale_by_keep: bool = True,
    return_mask: bool = False,
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
    backend: str | Backend | None = None,
) -> Any:
    """Stochastic depth (timm's ``drop_path``): each sample (index of the leading axis) kept or dropped whole.

    The mask has shape ``(N, 1, ..., 1)``: it is :func:`unidrop.dropout`'s with every axis but
    the first broadcast, and with ``scale_by_keep=True`` (the default) the result *is* that
    dropout's, bit for bit. With ``scale_by_keep=False`` kept samples are ``x`` unchanged.
    Dropped samples are +0. ``training=False`` or ``p == 0`` return ``x`` itself.

    Example:
        >>> import numpy as np
        >>> import unidrop
        >>> x = np.ones((4, 2), dtype=np.float32)
        >>> unidrop.drop_path(x, 0.5, seed=42)
        array([[2., 2.],
               [0., 0.],
               [0., 0.],
               [0., 0.]], dtype=float32)
    """
    if scale_by_keep is not True and scale_by_keep is not False:
        raise TypeError(f"scale_by_keep must be True or False, got {arguments.show(scale_by_keep)}")
    ndim = len(getattr(x, "shape", (0,)))  # an object without a shape is refused by the dispatch
    if ndim == 0:
        raise ValueError("drop_path needs an array with a leading (sample) axis, got a 0-d array")
    dims = tuple(range(1, ndim))
    if scale_by_keep:
        return dropout(
            x,
            p,
            training=training,
            seed=seed,
            stream=stream,
            broadcast_dims=dims,
            return_mask=return_mask,
            global_shape=global_shape,
            offset=offset,
            backend=backend,
        )
    implementation, plan, mask_shape = _prepare(
        x, p, training, seed, stream, dims, global_shape, offset, backend, return_mask
    )
    if plan is None:
        return (x, implementation.full_mask(x, mask_shape)) if return_mask else x
    keep = implementation.keep_mask(x, plan)
    xp = implementation.namespace(x)
    y = implementation.like_input(x, implementation.astype(xp.where(keep, x, 0.0), x.dtype))
    return (y, keep) if return_mask else y


def gaussian_dropout(
    x: Any,
    p: float = 0.5,
    *,
    training: bool = True,
    seed: Any = None,
    stream: Any = 0,
    broadcast_dims: int | Sequence[int] = (),
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
    backend: str | Backend | None = None,
) -> Any:
    """Multiplicative Gaussian noise N(1, p / (1 - p)) (Keras' ``GaussianDropout``), from the stream.

    Mask element i takes the stream words ``w1 = u_{2i}``, ``w2 = u_{2i+1}`` of (``seed``,
    ``stream``); with ``u1 = ((w1 >> 8) + 1) 2**-24`` in (0, 1] and ``u2 = (w2 >> 8) 2**-24``
    in [0, 1), ``z = sqrt(-2 ln u1) cos(2 pi u2)`` (Box-Muller) and ``y = x (1 + sigma z)``,
    ``sigma = sqrt(p / (1 - p))``, all in the compute dtype. ``log`` and ``cos`` are each
    library's own, so results agree across backends to a documented bound, not bit for bit
    (docs/spec.md). ``p`` must be below 1; ``training=False`` or ``p == 0`` return ``x``.

    Example:
        >>> import numpy as np
        >>> import unidrop
        >>> x = np.ones(4, dtype=np.float32)
        >>> y = unidrop.gaussian_dropout(x, 0.5, seed=42)
        >>> np.round(y, 3)
        array([ 0.03 , -0.236,  0.927, -0.107], dtype=float32)
    """
    if arguments.check_p(p) == 1.0 and arguments.check_training(training):  # refused before any draw
        raise ValueError(
            "gaussian_dropout needs p < 1 (the noise's variance p / (1 - p) is infinite at 1), got 1.0"
        )
    implementation, plan, _ = _prepare(
        x, p, training, seed, stream, broadcast_dims, global_shape, offset, backend
    )
    if plan is None:
        return x
    words = implementation.stream_words(x, _pair_plan(plan))
    y = _quietly(implementation, _gaussian_values, implementation, x, words, plan)
    return implementation.like_input(x, y)


def _gaussian_values(implementation: Implementation, x: Any, words: Any, plan: arguments.DropoutPlan) -> Any:
    xp, compute = _compute_type(implementation, x, plan.dtype)
    w1, w2 = words[..., 0], words[..., 1]
    unit = 2.0**-UNIFORM_BITS
    # w >> 8 as a floor division of the non-negative words: torch's DTensor (2.13) returns its
    # input unchanged for ``>>`` and ``<<`` with a Python int, and every namespace divides alike.
    drop_low_bits = 1 << (32 - UNIFORM_BITS)
    u1 = implementation.astype(w1 // drop_low_bits + 1, compute) * unit
    u2 = implementation.astype(w2 // drop_low_bits, compute) * unit
    radius = xp.sqrt(xp.log(u1) * -2.0)
    z = radius * xp.cos(u2 * _rounded(TWO_PI, plan.compute_dtype, implementation, xp))
    noise = implementation.astype(
        z * _rounded(gaussian_stddev(plan.p), plan.compute_dtype, implementation, xp) + 1.0, compute
    )
    y = implementation.astype(implementation.astype(x, compute) * noise, compute)
    return implementation.astype(y, x.dtype)


def _pair_plan(plan: arguments.DropoutPlan) -> arguments.DropoutPlan:
    """The plan of the words ``(u_{2i}, u_{2i+1})``: a trailing axis of 2 on the mask (and block)."""
    block = plan.block
    if block is not None:
        block = MaskBlock((*block.global_mask_shape, 2), (*block.mask_offset, 0))
    mask = (*plan.mask_shape, 2)
    return dataclasses.replace(plan, shape=mask, mask_shape=mask, broadcast_dims=(), block=block)


def dropout_backward(
    grad: Any,
    p: float,
    *,
    seed: Any,
    stream: Any = 0,
    broadcast_dims: int | Sequence[int] = (),
    training: bool = True,
    global_shape: Sequence[int] | None = None,
    offset: Sequence[int] | None = None,
    backend: str | Backend | None = None,
) -> Any:
    """The gradient of :func:`unidrop.dropout` with respect to its input, regenerating the mask.

    Given the upstream gradient ``grad`` (the output's shape) and the forward call's ``p``,
    ``seed``, ``stream``, ``broadcast_dims`` (and block), it returns ``grad * keep / (1 - p)``
    computed exactly as dropout computes its output: it is ``dropout(grad, ...)`` with the same
    randomness, so nothing needs saving between forward and backward. ``seed`` is required: the
    forward's drawn seed cannot be recovered. ``drop_path``'s backward is this one with
    ``broadcast_dims`` every axis but the first.

    Example:
        >>> import numpy as np
        >>> import unidrop
        >>> grad = np.ones(8, dtype=np.float32)
        >>> unidrop.dropout_backward(grad, 0.5, seed=42)
        array([2., 0., 0., 0., 2., 0., 2., 0.], dtype=float32)
    """
    if seed is None:
        raise TypeError("dropout_backward needs the forward call's seed (seed=None cannot be regenerated)")
    return dropout(
        grad,
        p,
        training=training,
        seed=seed,
        stream=stream,
        broadcast_dims=broadcast_dims,
        global_shape=global_shape,
        offset=offset,
        backend=backend,
    )


def dropout_backward_from_mask(
    grad: Any, keep: Any, p: float, *, backend: str | Backend | None = None
) -> Any:
    """The gradient of :func:`unidrop.dropout` from a saved mask: ``grad * keep / (1 - p)``.

    ``keep`` is the boolean mask ``dropout(..., return_mask=True)`` returned (it broadcasts
    against ``grad``). Computed as dropout computes its output (scale rounded to the compute
    dtype, one product, dropped elements +0), so it equals :func:`dropout_backward`'s result.

    Example:
        >>> import numpy as np
        >>> import unidrop
        >>> x = np.ones(4, dtype=np.float32)
        >>> y, keep = unidrop.dropout(x, 0.5, seed=42, return_mask=True)
        >>> unidrop.dropout_backward_from_mask(np.full(4, 3.0, np.float32), keep, 0.5)
        array([6., 0., 0., 0.], dtype=float32)
    """
    p = arguments.check_p(p)
    implementation, shape, dtype, supported = registry.dispatch(grad, backend)
    arguments.check_dtype(dtype, supported)
    keep_shape = _check_keep(keep, implementation, grad, backend)
    for name, sizes in (("grad", shape), ("keep", keep_shape)):
        if any(isinstance(size, float) and math.isnan(size) for size in sizes):  # a lazy array's
            raise ValueError(
                f"{name} of shape {sizes} has sizes not yet known: dropout_backward_from_mask needs them "
                "(compute them first, as dask's x.compute_chunk_sizes() does)"
            )
    if len(keep_shape) != len(shape) or any(k not in (1, s) for k, s in zip(keep_shape, shape, strict=True)):
        raise ValueError(f"keep of shape {keep_shape} does not match grad of shape {shape} (a mask shape)")
    y = _quietly(implementation, _masked_gradient, implementation, grad, dtype, keep, p)
    return implementation.like_input(grad, y)


def _masked_gradient(implementation: Implementation, grad: Any, dtype: str, keep: Any, p: float) -> Any:
    xp, compute = _compute_type(implementation, grad, dtype)
    s = 0.0 if p == 1.0 else _rounded(arguments.scale(p), arguments.compute_dtype(dtype), implementation, xp)
    scaled = implementation.astype(implementation.astype(grad, compute) * s, compute)
    return implementation.astype(implementation.astype(xp.where(keep, scaled, 0.0), compute), grad.dtype)


def _check_keep(
    keep: Any, implementation: Implementation, grad: Any, backend: str | Backend | None
) -> tuple[int, ...]:
    """The shape of ``keep`` if it is a boolean array of ``grad``'s backend (``backend`` if given),
    as dropout's ``return_mask=True`` gives it; a TypeError naming what it is otherwise."""
    what = "keep must be the boolean mask dropout(..., return_mask=True) returned for grad"
    if not hasattr(keep, "shape"):
        raise TypeError(f"{what}, got {type(keep).__name__}")
    try:
        keep_implementation, keep_shape, keep_dtype, _ = registry.dispatch(keep, backend)
    except TypeError:
        keep_implementation = None
    if keep_implementation is not implementation:
        raise TypeError(f"{what} (a {type(grad).__name__}), got a {type(keep).__name__}")
    if keep_dtype != "bool":
        raise TypeError(f"{what}, got an array of dtype {keep_dtype}")
    return keep_shape


def _rounded(value: float, compute: str, implementation: Implementation, xp: Any) -> Any:
    """``value`` rounded to the compute dtype (float32 or float64), to nearest even: a Python float,
    or, while torch.compile traces, a 0-d array of namespace ``xp`` (torch's) holding it: there a
    float may be symbolic (``dynamic=True`` makes every float so), and only the compiled code can
    round it."""
    if compute == "float64":
        return value
    if arguments.torch_compiling():
        return implementation.astype(xp.asarray(value, dtype=xp.float64), xp.float32)
    return struct.unpack("<f", struct.pack("<f", value))[0]
