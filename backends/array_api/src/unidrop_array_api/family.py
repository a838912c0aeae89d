"""The Array API backend's primitives for the dropout family, in standard operations only.

The family's rules (unidrop.family) compute with the array's own namespace; here are the words
they need (this backend's uint64 Philox, blocks included), ``astype`` as the standard spells it
(a function of the namespace, not a method), and ``inplace=True`` through the standard's
``__setitem__``.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace, device

from unidrop import DropoutPlan, arguments

from .philox_words import block_indices, contiguous_words, indexed_words
from .signs import sign_bit


def stream_words(x: Any, plan: DropoutPlan) -> Any:
    """The words u_i of ``plan`` (uint64, ``plan.mask_shape``) on ``x``'s device, blocks included."""
    xp = array_namespace(x)
    where = device(x)
    shape = plan.mask_shape
    count = math.prod(shape)
    if count == 0:
        return xp.zeros(shape, dtype=xp.uint64, device=where)
    if plan.block is None:
        return xp.reshape(contiguous_words(xp, plan.seed, plan.stream, count, where), shape)
    offsets = tuple(int(start) for start in plan.block.mask_offset)
    indices = block_indices(xp, shape, offsets, plan.block.global_strides(), where)
    return indexed_words(xp, plan.seed, plan.stream, indices)


class SignedZeroNamespace:
    """An array namespace whose ``where`` keeps the sign of every zero it selects.

    Some libraries' ``where`` returns +0 for a selected -0 (onnxruntime's Where, under ndonnx,
    unless it broadcasts the condition); the family's rules select with ``where`` (kept
    elements of the backwards, of unscaled drop path), so each zero of the result is given the
    sign of the operand it came from, as this backend's dropout does. Everything else is the
    library's namespace itself.
    """

    def __init__(self, xp: Any) -> None:
        self._xp = xp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        """``xp.where(condition, a, b)`` with every zero signed as the operand it was taken from; a
        Python number operand is made a 0-d array of the other's dtype (scalars in ``where`` are
        standard only from version 2024.12)."""
        xp = self._xp
        a, b = _array_like(xp, a, b), _array_like(xp, b, a)
        chosen = xp.where(condition, a, b)
        if not xp.isdtype(chosen.dtype, "real floating"):
            return chosen
        one = xp.ones((), dtype=chosen.dtype, device=device(chosen))
        negative = xp.logical_or(
            xp.logical_and(condition, self._sign_bit(a, one)),
            xp.logical_and(xp.logical_not(condition), self._sign_bit(b, one)),
        )
        wrong = xp.logical_and(chosen == 0, xp.logical_xor(self._sign_bit(chosen, one), negative))
        return chosen * xp.where(wrong, -one, one)  # exact: only zeros of the wrong sign change

    def _sign_bit(self, value: Any, one: Any) -> Any:
        """The sign bit of an array (:func:`signs.sign_bit`) or of a Python number."""
        if isinstance(value, (int, float)):
            return xp_bool(self._xp, math.copysign(1.0, value) < 0, one)
        return sign_bit(self._xp, value, one)


def _array_like(xp: Any, value: Any, other: Any) -> Any:
    """``value`` itself, or a Python number as a 0-d array of ``other``'s dtype and device."""
    if isinstance(value, (int, float)) and not isinstance(other, (int, float)):
        return xp.asarray(value, dtype=other.dtype, device=device(other))
    return value


def xp_bool(xp: Any, value: bool, like: Any) -> Any:
    """A 0-d boolean array of ``value`` on ``like``'s device."""
    return xp.asarray(value, dtype=xp.bool, device=device(like))


def astype(x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype``: the standard's ``xp.astype`` (its arrays need not have a method)."""
    return array_namespace(x).astype(x, dtype)


def copy_into(x: Any, y: Any) -> None:
    """Write ``y`` into ``x`` with the standard's ``x[...] = y``.

    A library whose arrays cannot be written (the standard lets a library's arrays be
    immutable) is refused with a TypeError naming the array type.
    """
    try:
        x[...] = y
    except (TypeError, NotImplementedError, AttributeError) as error:
        raise TypeError(
            f"inplace=True needs an array that supports x[...] = y; {arguments.type_name(x)} refused it "
            f"({error}): call without inplace=True and use the result"
        ) from None
    except ValueError as error:
        raise ValueError(f"inplace=True could not write into this {type(x).__qualname__}: {error}") from None
