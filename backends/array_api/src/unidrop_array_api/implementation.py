"""The Array API backend's work: mask stream v1 with standard operations on any library's arrays."""

from __future__ import annotations

import math
import struct
from typing import Any

from array_api_compat import array_namespace, device, is_numpy_array

from unidrop import DropoutPlan, Implementation, arguments
from unidrop.memory import refuse_unwritable

from . import family
from .philox_words import block_indices, contiguous_words, indexed_words
from .signs import sign_bit

#: The dtypes unidrop defines that the standard has (float16 is an optional extension, where a
#: library provides ``xp.float16``); bfloat16 is not in the standard and is not supported.
SUPPORTED = frozenset({"float16", "float32", "float64"})
#: Dtype names read off a namespace to name an array's dtype (the standard's, and two common extras).
_NAMES = (
    "float32", "float64", "float16", "bfloat16", "complex64", "complex128", "bool",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
)  # fmt: skip


class ArrayApiImplementation(Implementation):
    """Dropout of any Array API array, on its own device, in its own library."""

    supports_blocks = True
    #: The standard defines ``x[...] = y`` (``__setitem__``); a library that refuses it for its
    #: arrays gets a TypeError from :meth:`copy_into`.
    mutable_arrays = True

    def dtypes(self) -> frozenset[str]:
        """float16, float32 and float64 (float16 only where the array's library has it)."""
        return SUPPORTED

    def describe(self) -> str:
        return "standard Array API operations through array-api-compat (uint64 Philox, where, astype)"

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """The shape (every size known: a lazy array of unknown size is refused) and the dtype's name.

        NumPy arrays (taken with ``backend="array_api"``) must be plain ``numpy.ndarray`` in native
        byte order: a masked array or a matrix has rules of its own that the standard's operations
        would lose, and a byte-swapped dtype is no dtype of the standard.
        """
        if is_numpy_array(x):
            _check_plain_numpy(x)
        xp = array_namespace(x)
        shape = tuple(x.shape)
        if any(size is None for size in shape):
            raise TypeError(
                f"unidrop's Array API backend needs every size of the shape known, got {shape} "
                f"for {arguments.type_name(x)}"
            )
        return tuple(int(size) for size in shape), dtype_name(xp, x.dtype)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        xp = array_namespace(x)
        where = device(x)
        keep = keep_mask(xp, plan, where)
        if plan.drops_all:  # before the scale, which is inf here (and 0 * inf is NaN)
            return xp.zeros_like(x), (self.like_input(x, keep) if plan.return_mask else None)
        compute = getattr(xp, plan.compute_dtype)
        scale = xp.asarray(rounded_scale(plan.scale, plan.compute_dtype), dtype=compute, device=where)
        scaled = xp.astype(x, compute) * scale if plan.compute_dtype != plan.dtype else x * scale
        y = select(xp, keep, scaled, where)
        if plan.compute_dtype != plan.dtype:
            y = xp.astype(y, x.dtype)  # round to nearest even, once
        return self.like_input(x, y), (self.like_input(x, keep) if plan.return_mask else None)

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        xp = array_namespace(x)
        return xp.ones(shape, dtype=xp.bool, device=device(x))

    # the dropout family (unidrop.family): the rules use the array's own namespace

    def keep_mask(self, x: Any, plan: DropoutPlan) -> Any:
        """Dropout's mask alone (no output computed)."""
        return keep_mask(array_namespace(x), plan, device(x))

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        """uint64 words of ``plan.mask_shape`` from this backend's standard-operations Philox."""
        return family.stream_words(x, plan)

    def namespace(self, x: Any) -> Any:
        """The array's namespace (array-api-compat's), its ``where`` keeping the sign of zeros."""
        return family.SignedZeroNamespace(array_namespace(x))

    def astype(self, x: Any, dtype: Any) -> Any:
        return family.astype(x, dtype)

    def like_input(self, x: Any, y: Any) -> Any:
        """A 0-d NumPy array for a 0-d NumPy array ``x`` (NumPy's arithmetic gives a scalar there)."""
        if is_numpy_array(x):
            import numpy as np  # loaded: x is a NumPy array

            if isinstance(y, np.generic) and not isinstance(x, np.generic):
                return np.asarray(y)
        return y

    def check_writable(self, x: Any) -> None:
        """Refuse a read-only array, or one whose elements share memory (an ``as_strided`` view),
        where the library says so (NumPy's and CuPy's ``flags`` and byte ``strides``)."""
        refuse_unwritable(x)

    def copy_into(self, x: Any, y: Any) -> None:
        family.copy_into(x, y)


def select(xp: Any, keep: Any, scaled: Any, where: Any) -> Any:
    """``scaled`` where ``keep`` (broadcast), exactly +0 elsewhere (NaN and Inf too), signs kept.

    Some libraries' ``where`` does not keep the sign of a zero it selects (onnxruntime's Where,
    under ndonnx, returns +0 for a -0 unless it broadcasts the condition), so every zero of the
    result is given its sign afresh: a kept zero the sign of ``scaled``, a dropped one +0. The
    correction multiplies by -1 only the zeros whose sign is wrong, which is exact.
    """
    zero = xp.zeros((), dtype=scaled.dtype, device=where)
    one = xp.ones((), dtype=scaled.dtype, device=where)
    chosen = xp.where(keep, scaled, zero)
    wanted_negative = xp.logical_and(keep, sign_bit(xp, scaled, one))
    wrong = xp.logical_and(chosen == zero, xp.logical_xor(sign_bit(xp, chosen, one), wanted_negative))
    return chosen * xp.where(wrong, -one, one)


def dtype_name(xp: Any, dtype: Any) -> str:
    """The canonical name of ``dtype`` in namespace ``xp`` (``"float32"``, ...), else ``str(dtype)``."""
    for name in _NAMES:
        candidate = getattr(xp, name, None)
        try:
            if candidate is not None and dtype == candidate:
                return name
        except Exception:  # a library whose dtypes do not compare with another kind of object
            continue
    return str(dtype)


def rounded_scale(scale: float, compute_dtype: str) -> float:
    """``s`` (float64) rounded once to ``compute_dtype`` (to nearest even), as a Python float."""
    if compute_dtype == "float32":
        return float(struct.unpack("<f", struct.pack("<f", scale))[0])
    return scale


def keep_mask(xp: Any, plan: DropoutPlan, where: Any) -> Any:
    """The boolean keep mask of ``plan.mask_shape`` (True = kept): ``u_i >= t`` for each mask index i."""
    shape = plan.mask_shape
    count = math.prod(shape)
    if plan.drops_all or count == 0:
        return xp.full(shape, not plan.drops_all, dtype=xp.bool, device=where)
    if plan.block is None:
        words = xp.reshape(contiguous_words(xp, plan.seed, plan.stream, count, where), shape)
    else:
        offsets = tuple(int(start) for start in plan.block.mask_offset)
        indices = block_indices(xp, shape, offsets, plan.block.global_strides(), where)
        words = indexed_words(xp, plan.seed, plan.stream, indices)
    return words >= plan.threshold


def _check_plain_numpy(x: Any) -> None:
    """Refuse a NumPy array that the standard's operations would misread, naming what it is."""
    import numpy as np  # x is a NumPy array: NumPy is imported

    if type(x) is not np.ndarray:
        raise TypeError(
            "unidrop's Array API backend takes plain numpy.ndarray, got the subclass "
            f"{arguments.type_name(x)}, whose own rules its operations would lose: pass "
            "numpy.asarray(x) if its plain data is what should be dropped, or leave out "
            "backend='array_api' (unidrop-numpy says what it takes)"
        )
    if not x.dtype.isnative:
        raise TypeError(
            f"unidrop's Array API backend needs native byte order, got dtype {x.dtype.str!r} "
            f"({x.dtype.name} stored in the other byte order): pass x.astype(x.dtype.newbyteorder('=')), "
            "or leave out backend='array_api' (unidrop-numpy takes either byte order)"
        )
