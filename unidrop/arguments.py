"""The rules of a dropout call's arguments, and the DropoutPlan a backend receives.

Every backend receives a :class:`DropoutPlan` built here, so validation and the
threshold/scale arithmetic exist once, in this file.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .blocks import MaskBlock

STREAM_VERSION = 1
#: SELU's ``scale * alpha`` (PyTorch's constant in alpha_dropout): SELU saturates to ``-SELU_ALPHA``.
SELU_ALPHA = 1.7580993408473766
TWO_POW_32 = 1 << 32
TWO_POW_64 = 1 << 64

#: Floating dtypes the mask stream defines, by their canonical names.
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
#: Dtypes whose kept elements are computed in float32 and rounded back.
HALF_DTYPES = frozenset({"float16", "bfloat16"})


STATIC_HINT = "under jax.jit or torch.compile, pass it as a static Python value"

#: How long a shown value may be before an error message abbreviates it.
SHOWN_LENGTH = 60
#: dtype-name prefixes of floating-point (and complex) dtypes, supported or not.
FLOATING_PREFIXES = ("float", "bfloat", "complex", "longdouble", "clongdouble", "half")


def type_name(x: Any) -> str:
    """The module-qualified name of ``x``'s type (``dask.array.core.Array``), for messages."""
    kind = type(x)
    return f"{kind.__module__}.{kind.__qualname__}"


def show(value: Any) -> str:
    """``repr(value)`` for an error message, abbreviated when long: never hundreds of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        digits = math.floor(value.bit_length() * math.log10(2)) + 1  # exact or one too many
        sign = "-" if value < 0 else ""
        return f"{sign}<an integer of about {digits} digits>"
    try:
        text = repr(value)
    except Exception:  # e.g. a Fraction or Decimal too long to convert to a string
        return f"<a {type(value).__name__} too large to show>"
    if len(text) <= SHOWN_LENGTH:
        return text
    return f"{text[:32]}...{text[-12:]} ({len(text)} characters)"


#: The kind of an ml_dtypes type, by the start of its name (``"bfloat16"`` -> ``"bfloat"``).
_ML_DTYPE_KINDS = {"bfloat": "f", "float": "f", "int": "i", "uint": "u"}


def dtype_kind(value: Any) -> str | None:
    """The NumPy kind letter of ``value``'s dtype (``"b"``, ``"c"``, ``"f"``, ...), or None.

    Duck-typed, importing no framework: NumPy, CuPy and JAX dtypes have ``kind`` (ml_dtypes' types,
    JAX's bfloat16 among them, are read by their names: NumPy calls them all ``"V"``); a torch
    dtype is read by its ``is_complex``/``is_floating_point`` flags and its name.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is None or isinstance(value, type):
        return None
    kind = getattr(dtype, "kind", None)
    if kind == "V":  # NumPy's kind of every ml_dtypes type (JAX's bfloat16, float8_*, int4, ...)
        name = str(getattr(dtype, "name", ""))
        return _ML_DTYPE_KINDS.get(name.split("_")[0].rstrip("0123456789"), "V")
    if isinstance(kind, str):
        return kind
    if getattr(dtype, "is_complex", False) is True:
        return "c"
    if getattr(dtype, "is_floating_point", False) is True:
        return "f"
    if str(dtype).rsplit(".", 1)[-1] in ("bool", "bool_"):
        return "b"
    return None


def is_traced(value: Any) -> bool:
    """True if ``value`` is a compiler's abstract value (a JAX tracer, a torch.fx proxy or fake tensor).

    Duck-typed by class name and module, so no framework is imported to ask.
    """
    if isinstance(value, int):  # never traced; and torch.compile cannot trace the walk over its type
        return False
    for cls in type(value).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in ("jax", "jaxlib", "torch") and (
            cls.__name__.endswith("Tracer") or cls.__name__ in ("Proxy", "FakeTensor", "FunctionalTensor")
        ):
            return True
    return False


def torch_compiling() -> bool:
    """True while torch.compile traces the caller (torch is not imported to ask)."""
    torch = sys.modules.get("torch")
    return torch is not None and bool(torch.compiler.is_compiling())


def _static_hint(value: Any) -> str:
    return f" ({STATIC_HINT})" if is_traced(value) else ""


def check_p(p: Any) -> float:
    """Return ``p`` as a float if it is a real number in [0, 1]; raise naming it otherwise.

    Python and NumPy reals, and 0-d arrays holding one, are accepted; bools (Python's,
    NumPy's, or a 0-d bool array or tensor, or a 0-d object array holding one), strings and
    complex numbers raise TypeError;
    a number outside [0, 1], NaN, or one too large for a float raises ValueError.
    """
    if type(p) in (float, int):  # the common case, and how torch.compile traces a p that changes
        return _in_unit_interval(_as_float(p), p)
    if torch_compiling():  # a tensor's value is known only when the compiled code runs
        raise TypeError(
            f"p must be a Python float under torch.compile, got {type(p).__name__} ({STATIC_HINT})"
        )
    _refuse_lazy(p, "p")
    # a real scalar (NumPy's, a Fraction) is real whatever its dtype says; but NumPy's timedelta64
    # registers as an integer and is a duration (kind "m")
    real = isinstance(p, numbers.Real) and not isinstance(p, bool)
    kind = None if real and getattr(getattr(p, "dtype", None), "kind", None) != "m" else dtype_kind(p)
    if kind == "O" and getattr(p, "ndim", None) == 0:  # a 0-d object array: judge what it holds
        return check_p(p.item())
    not_real = isinstance(p, numbers.Complex) and not isinstance(p, numbers.Real)
    # a dtype that is no real number: bool, complex, a string ("U", "S"), bytes, a date
    not_a_number = kind is not None and kind not in ("f", "i", "u")
    if isinstance(p, (bool, str, bytes)) or not_real or not_a_number or getattr(p, "ndim", 0) != 0:
        raise TypeError(f"p must be a real number in [0, 1], got {show(p)} of type {type(p).__name__}")
    try:
        value = float(p)
    except (OverflowError, ValueError):  # 10**400, a huge Fraction, Decimal('sNaN'): no p in [0, 1]
        raise ValueError(f"p must be a real number in [0, 1], got {show(p)}") from None
    except Exception:  # e.g. a traced value, which has no number yet
        raise TypeError(
            f"p must be a real number in [0, 1], got {show(p)} of type {type(p).__name__}{_static_hint(p)}"
        ) from None
    return _in_unit_interval(value, p)


def _refuse_lazy(value: Any, what: str) -> None:
    """TypeError for a lazy array (a dask array), whose number reading it would compute now."""
    if hasattr(type(value), "__dask_graph__"):
        raise TypeError(
            f"{what} must be a number known now, got a lazy {type_name(value)}: reading it would "
            f"compute it while the graph is built; compute it first ({what}.compute())"
        )


def _as_float(p: int | float) -> float:
    """``float(p)`` of a Python number; an int too large for a float (10**400) is a ValueError."""
    try:
        return float(p)
    except OverflowError:
        raise ValueError(f"p must be a real number in [0, 1], got {show(p)}") from None


def _in_unit_interval(value: float, p: Any) -> float:
    """``value`` (``p`` as a float) if it lies in [0, 1]; ValueError naming ``p`` otherwise (NaN too)."""
    if not 0.0 <= value <= 1.0:  # false for NaN as well
        raise ValueError(f"p must be a real number in [0, 1], got {show(p)}")
    return value


def check_training(training: Any) -> bool:
    """Return ``training`` as a bool: True, False, a 0-d NumPy bool, or the integers 0 and 1."""
    if isinstance(training, bool):
        return training
    if isinstance(training, numbers.Integral) and int(training) in (0, 1):
        return bool(training)
    if dtype_kind(training) == "b" and getattr(training, "ndim", None) == 0:
        try:
            return bool(training)
        except Exception:  # a traced value: it has no truth value yet
            pass
    raise TypeError(f"training must be True or False, got {show(training)}{_static_hint(training)}")


def check_uint64(value: Any, what: str) -> int:
    """Return ``value`` as an int if it is an integer in [0, 2**64); raise naming it otherwise.

    A plain int is checked by its range alone: under ``torch.compile`` it may be a symbolic
    integer, which has no attributes to inspect.
    """
    if type(value) is int:
        if not 0 <= value < TWO_POW_64:
            raise ValueError(f"{what} must be an integer in [0, 2**64), got {show(value)}")
        return value
    if isinstance(value, bool) or dtype_kind(value) == "b":
        raise TypeError(f"{what} must be an integer in [0, 2**64), got {show(value)}")
    _refuse_lazy(value, what)
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{what} must be an integer in [0, 2**64), got {show(value)} of type {type(value).__name__}"
        ) from None
    if not 0 <= number < TWO_POW_64:
        raise ValueError(f"{what} must be an integer in [0, 2**64), got {show(number)}")
    return number


def check_dtype(dtype: str, supported: Iterable[str]) -> str:
    """Return ``dtype`` if the backend supports it; raise TypeError naming it and the allowed ones.

    A floating (or complex) dtype the backend lacks, such as float128, is said to be
    unsupported; an integer, bool or other dtype is said to need a floating-point array.
    """
    supported = supported if isinstance(supported, (set, frozenset)) else set(supported)
    if dtype in FLOAT_DTYPES and dtype in supported:
        return dtype
    allowed = ", ".join(d for d in FLOAT_DTYPES if d in supported)
    if str(dtype).startswith(FLOATING_PREFIXES):
        raise TypeError(f"dropout does not support dtype {dtype}; the supported floating dtypes: {allowed}")
    raise TypeError(f"dropout needs a floating-point array; got dtype {dtype}, allowed: {allowed}")


def _repeated_axis(axes: tuple[Any, ...]) -> ValueError:
    """The error for ``broadcast_dims`` naming an axis twice."""
    return ValueError(f"broadcast_dims repeats an axis: {show(axes)}; name each axis at most once")


def check_broadcast_dims(broadcast_dims: Any) -> tuple[int, ...]:
    """The axes as given, a tuple of ints (one int is one axis), for a layer made before it sees an
    array: TypeError naming what is not an int, ValueError for an axis given twice. Whether an axis
    is in range is judged at the call (:func:`normalize_broadcast_dims`)."""
    axes = tuple(int(axis) for axis in _axes_of(broadcast_dims))
    if len(set(axes)) != len(axes):
        raise _repeated_axis(axes)
    return axes


def _axes_of(broadcast_dims: Any) -> list[Any]:
    """The axes of ``broadcast_dims`` (one int, or a sequence of ints); TypeError naming a bad one."""
    if isinstance(broadcast_dims, (int, numbers.Integral)) and not isinstance(broadcast_dims, bool):
        return [broadcast_dims]
    if isinstance(broadcast_dims, (str, bytes)):
        raise TypeError(f"broadcast_dims must be a sequence of ints, got {show(broadcast_dims)}")
    try:
        axes = list(broadcast_dims)
    except TypeError:
        raise TypeError(f"broadcast_dims must be a sequence of ints, got {show(broadcast_dims)}") from None
    for axis in axes:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"broadcast_dims must hold ints, got {show(axis)}")
    return axes


def normalize_broadcast_dims(broadcast_dims: Any, ndim: int) -> tuple[int, ...]:
    """Return the broadcast axes as sorted non-negative ints; raise naming a bad or repeated axis."""
    axes = _axes_of(broadcast_dims)
    normalized = []
    for axis in axes:
        axis = int(axis)
        if not -ndim <= axis < ndim:
            allowed = f"allowed: {-ndim} .. {ndim - 1}" if ndim else "a 0-d array has no axes: pass ()"
            raise ValueError(
                f"broadcast_dims axis {show(axis)} is out of range for an array of {ndim} dimensions "
                f"({allowed})"
            )
        normalized.append(axis % ndim)
    # the axes in order by membership, not sorted(): under torch.compile an axis may be a
    # symbolic integer, which compares (a guard) but cannot be a sort key
    ordered = tuple(axis for axis in range(ndim) if any(axis == given for given in normalized))
    if len(ordered) != len(normalized):
        raise _repeated_axis(tuple(axes))
    return ordered


#: (shape, broadcast_dims as given) -> (normalized broadcast_dims, mask shape), for plain-int keys.
_DERIVED: dict[tuple[tuple[int, ...], Any], tuple[tuple[int, ...], tuple[int, ...]]] = {}
#: How many entries :data:`_DERIVED` holds at most (it is emptied when full).
DERIVED_CACHE_SIZE = 256


def broadcast_and_mask_shape(
    shape: tuple[int, ...], broadcast_dims: Any
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(normalize_broadcast_dims(broadcast_dims, len(shape)), mask_shape(shape, those dims))``.

    Raises exactly as :func:`normalize_broadcast_dims` does. Answers are remembered for shapes
    and ``broadcast_dims`` made of plain ints only, outside torch.compile's tracing (a bool, a
    NumPy integer or a symbolic size is never a key, so it is judged afresh every time).
    """
    if type(broadcast_dims) is tuple and not broadcast_dims:  # the default: the mask is the input's shape
        return (), tuple(shape)
    key = None
    plain_dims = type(broadcast_dims) is int or (
        type(broadcast_dims) is tuple and all(type(axis) is int for axis in broadcast_dims)
    )
    # Under torch.compile a size may be symbolic though it passes for an int: never a key there
    if (
        plain_dims
        and type(shape) is tuple
        and all(type(size) is int for size in shape)
        and not torch_compiling()
    ):
        key = (shape, broadcast_dims)
        found = _DERIVED.get(key)
        if found is not None:
            return found
    dims = normalize_broadcast_dims(broadcast_dims, len(shape))
    derived = (dims, mask_shape(tuple(shape), dims))
    if key is not None:
        if len(_DERIVED) >= DERIVED_CACHE_SIZE:
            _DERIVED.clear()
        _DERIVED[key] = derived
    return derived


def mask_shape(shape: tuple[int, ...], broadcast_dims: tuple[int, ...]) -> tuple[int, ...]:
    """The mask shape M: the input's shape with every broadcast axis set to 1."""
    return tuple(1 if axis in broadcast_dims else size for axis, size in enumerate(shape))


def threshold(p: float) -> int:
    """t = floor(p * 2**32): an element is dropped iff its word u < t."""
    return math.floor(p * TWO_POW_32)


def scale(p: float) -> float:
    """s = 1 / (1 - p) in float64 (inf for p == 1, where nothing is kept)."""
    return math.inf if p == 1.0 else 1.0 / (1.0 - p)


def compute_dtype(dtype: str) -> str:
    """The dtype kept elements are multiplied in: float32 for 16-bit inputs, else the input's."""
    return "float32" if dtype in HALF_DTYPES else dtype


@dataclass(frozen=True, init=False)
class DropoutPlan:
    """A validated dropout request, as a backend receives it.

    ``seed`` and ``stream`` are ints in [0, 2**64) unless the backend's own
    ``resolve_randomness`` returned framework values (a traced JAX key, a device tensor).
    ``block`` is None for a whole array; for a block of a larger logical array it says where
    the block's mask (of shape ``mask_shape``) lies in the global mask (see :mod:`unidrop.blocks`).
    ``threshold``, ``scale`` and ``drops_all`` follow from ``p`` (worked out once, when the plan
    is made: a backend reads them on every call).
    """

    p: float
    seed: Any
    stream: Any
    shape: tuple[int, ...]
    dtype: str
    mask_shape: tuple[int, ...]
    broadcast_dims: tuple[int, ...]
    return_mask: bool = False
    block: MaskBlock | None = None
    #: t = floor(p * 2**32), in [0, 2**32]: an element is dropped iff its word u < t.
    threshold: int = field(init=False, repr=False, compare=False)
    #: s = 1 / (1 - p) in float64 (inf for p == 1).
    scale: float = field(init=False, repr=False, compare=False)
    #: True when t == 2**32 (p == 1): every element is dropped.
    drops_all: bool = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        p: float,
        seed: Any,
        stream: Any,
        shape: tuple[int, ...],
        dtype: str,
        mask_shape: tuple[int, ...],
        broadcast_dims: tuple[int, ...],
        return_mask: bool = False,
        block: MaskBlock | None = None,
    ) -> None:
        t = threshold(p)
        # one update of the instance's dict: the frozen dataclass's generated __init__ would set
        # each field through object.__setattr__, a cost paid on every dropout call
        vars(self).update(
            p=p,
            seed=seed,
            stream=stream,
            shape=shape,
            dtype=dtype,
            mask_shape=mask_shape,
            broadcast_dims=broadcast_dims,
            return_mask=return_mask,
            block=block,
            threshold=t,
            scale=scale(p),
            drops_all=t >= TWO_POW_32,
        )

    @classmethod
    def build(
        cls,
        shape: tuple[int, ...],
        dtype: str,
        p: float,
        seed: Any,
        stream: Any,
        broadcast_dims: Any = (),
        return_mask: bool = False,
        global_shape: Any = None,
        offset: Any = None,
    ) -> DropoutPlan:
        """The plan for an input of ``shape`` and ``dtype``, normalizing ``broadcast_dims``
        and deriving the mask shape and block (``p``, ``seed`` and ``stream`` are taken as given)."""
        from .blocks import check_block  # blocks imports this module

        shape = tuple(shape)
        dims, mask = broadcast_and_mask_shape(shape, broadcast_dims)
        block = check_block(shape, global_shape, offset, dims)
        return cls(p, seed, stream, shape, dtype, mask, dims, return_mask, block)

    @property
    def compute_dtype(self) -> str:
        """The dtype kept elements are scaled in."""
        return compute_dtype(self.dtype)
