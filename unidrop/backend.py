"""The backend contract: what a plugin provides to give unidrop an array library.

A plugin registers a :class:`Backend` under the entry-point group ``unidrop.backends``: a small
descriptor (who it is, which arrays it takes) whose module imports no framework. The work is
an :class:`Implementation`, built by :meth:`Backend.load` the first time an array of the
framework arrives; its module imports the framework at the top. What only the conformance
suite needs (making and reading arrays, random state, gradients, compilation) is a third
object, the backend's :class:`unidrop.conformance.adapter.SuiteAdapter`.
"""

from __future__ import annotations

import dataclasses
import importlib
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from . import arguments, seeding
from .arguments import TWO_POW_64, DropoutPlan

if TYPE_CHECKING:  # the suite imports pytest and Hypothesis: only the suite loads it
    from .conformance.adapter import SuiteAdapter


@dataclass(frozen=True)
class Abilities:
    """Optional abilities a backend declares; the conformance suite checks each one declared.

    An unknown ability is a TypeError when the declaration is made, not a string nobody reads.
    """

    autograd: bool = False  #: gradients through the framework's autograd (the adapter's ``vjp``)
    jit: bool = False  #: ``unidrop.dropout`` works under the framework's compiler (``jit``)
    explicit_seed: bool = False  #: ``seed=None`` is refused: randomness is explicit, as in JAX

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, bool):
                raise TypeError(f"Abilities({name}=...) must be True or False, got {value!r}")


class Implementation(ABC):
    """The work of a backend: built once, on the first array of its framework.

    ``supports_blocks``: True once :meth:`dropout` honours ``plan.block`` (a block of a larger
    array gets its slice of the global mask); until then unidrop refuses such calls for it.
    ``mutable_arrays``: True where :meth:`copy_into` implements ``inplace=True``.
    """

    supports_blocks: ClassVar[bool] = False
    #: True where :meth:`copy_into` writes into the input (``dropout(..., inplace=True)``).
    mutable_arrays: ClassVar[bool] = False

    @abstractmethod
    def dtypes(self) -> frozenset[str]:
        """The float dtypes supported here and now, by canonical name (``"bfloat16"``, ...)."""

    @abstractmethod
    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """The shape of ``x`` and its dtype's canonical name; TypeError for an array it cannot take.

        A size not known yet may be symbolic (under a compiler) or NaN (a dask array's unknown
        chunks); :meth:`dropout` and :meth:`full_mask` then refuse what they cannot do without it.
        """

    @abstractmethod
    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        """Mask stream v1 on ``x``: ``(y, keep)``, ``keep`` only if ``plan.return_mask``.

        ``y`` has the type, device, shape and dtype of ``x``; ``x`` is not modified.
        ``keep`` is a boolean array of shape ``plan.mask_shape`` (True = kept).
        With ``plan.block`` set, the element at mask index j uses the word of global flat mask
        index ``sum((plan.block.mask_offset[d] + j[d]) * plan.block.global_strides()[d])``.
        """

    @abstractmethod
    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        """An all-True boolean array of ``shape`` beside ``x`` (the mask when nothing is dropped)."""

    def resolve_randomness(self, seed: Any, stream: Any, x: Any) -> tuple[Any, Any]:
        """Validate ``seed`` and ``stream``; with ``seed=None``, draw a seed by the backend's convention.

        The default takes integers in [0, 2**64) and draws a missing seed from unidrop's global
        source (:func:`unidrop.manual_seed` governs it).
        """
        if type(seed) is int and type(stream) is int and 0 <= seed < TWO_POW_64 and 0 <= stream < TWO_POW_64:
            return seed, stream  # the common case, judged inline (a call costs microseconds)
        stream = arguments.check_uint64(stream, "stream")
        if seed is None:
            return seeding.draw_seed(), stream
        return arguments.check_uint64(seed, "seed"), stream

    def check_randomness(self, seed: Any, stream: Any, x: Any) -> None:
        """Validate ``seed`` and ``stream`` as :meth:`resolve_randomness` does, drawing nothing.

        Called where no mask is drawn (``training=False``, ``p == 0``), so that a bad seed or
        stream is refused there too.
        """
        arguments.check_uint64(stream, "stream")
        if seed is not None:
            arguments.check_uint64(seed, "seed")

    def devices(self) -> list[str]:
        """The devices this backend can run on here (``"cpu"``, ``"cuda:0"``)."""
        return ["cpu"]

    # The dropout family (unidrop.family) builds on the three methods below; their defaults
    # make a backend that implements only dropout work for alpha_dropout and drop_path, and
    # give a clear error for what needs more (gaussian_dropout, inplace=True).

    def keep_mask(self, x: Any, plan: DropoutPlan) -> Any:
        """The keep mask of ``plan`` (bool, ``plan.mask_shape``, on ``x``'s device): dropout's mask.

        The default runs :meth:`dropout` with ``return_mask=True`` and keeps the mask; a backend
        may override it to skip computing the output.
        """
        _, keep = self.dropout(x, dataclasses.replace(plan, return_mask=True))
        return keep

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        """The stream words u_i of ``plan``: integers in [0, 2**32) of shape ``plan.mask_shape``.

        Any integer dtype that holds them (int64, uint32), on ``x``'s device; element j is the
        word of the mask index that :meth:`dropout` would threshold (blocks included).
        ``gaussian_dropout`` needs it; the default raises TypeError naming the backend.
        """
        raise TypeError(
            f"the unidrop backend for {arguments.type_name(x)} does not provide the stream words "
            "(Implementation.stream_words) that gaussian_dropout needs; upgrade it"
        )

    def quiet_arithmetic(self) -> AbstractContextManager[Any] | None:
        """A context in which the family's rules compute on this backend's arrays without floating-point
        warnings or errors (overflow to inf, NaN in, NaN out: IEEE's results, which dropout's kernels give
        silently), or None where the library reports none (the default). NumPy's is ``np.errstate``."""
        return None

    def namespace(self, x: Any) -> Any:
        """The array namespace of ``x`` for the family's rules: its ``__array_namespace__()``.

        Used for ``where``, ``log``, ``cos``, ``sqrt`` and the dtypes ``float32``/``float64``;
        a backend whose arrays have no ``__array_namespace__`` returns an object that has those.
        """
        get = getattr(x, "__array_namespace__", None)
        if get is None:
            raise TypeError(
                f"{type(x).__name__} has no __array_namespace__ and its unidrop backend does not "
                "override Implementation.namespace: the dropout family cannot compute on it"
            )
        return get()

    def astype(self, x: Any, dtype: Any) -> Any:
        """``x`` converted to ``dtype`` (a dtype object of :meth:`namespace`): ``x.astype(dtype)``."""
        return x.astype(dtype)

    def like_input(self, x: Any, y: Any) -> Any:
        """``y``, a result the family computed from ``x`` with :meth:`namespace`, in the form this
        backend's ``dropout`` gives results for ``x`` (NumPy: a scalar for a scalar, a 0-d array for
        a 0-d array, where its arithmetic may give either). The default returns ``y``."""
        return y

    def check_writable(self, x: Any) -> None:
        """Refuse an ``x`` that ``inplace=True`` could not write, before any randomness is drawn.

        Called only where :attr:`mutable_arrays` is True and a result will be written (in
        training, ``p > 0``), before a missing seed is drawn: a refused call then leaves the
        random state as it was. Raise the error :meth:`copy_into` would raise for that ``x``.
        The default accepts every ``x`` (:meth:`copy_into` may still refuse it).
        """
        return None

    def copy_into(self, x: Any, y: Any) -> None:
        """Write ``y`` (of ``x``'s shape and dtype) into ``x``: ``dropout(..., inplace=True)``.

        Called only where :attr:`mutable_arrays` is True; raise ValueError naming an ``x`` that
        cannot be written (a read-only view). The default refuses every ``x`` (TypeError).
        """
        raise TypeError(
            f"the unidrop backend for {arguments.type_name(x)} does not modify arrays in place: "
            "call without inplace=True and use the result"
        )

    def describe(self) -> str:
        """One line on how it computes here (which kernel, and why), or ``""``; ``unidrop backends``
        prints it."""
        return ""


class Backend(ABC):
    """What discovery loads: who a backend is and which arrays it takes. Imports no framework.

    ``name``          the name users pick it by (``backend="numpy"``)
    ``framework``     the top-level module whose arrays it takes; :meth:`accepts` is asked only
                      once that module is in ``sys.modules``
    ``distribution``  the distribution that installs it, for messages
    ``abilities``     the optional :class:`Abilities` the conformance suite then checks
    ``generic``       True for a backend of many frameworks' arrays (the Array API one): the
                      registry asks it only after every specific backend declined an array,
                      and asks it whether or not its ``framework`` (the library it drives) is
                      imported, so its :meth:`accepts` must judge by the type alone, importing
                      nothing
    """

    name: ClassVar[str]
    framework: ClassVar[str]
    distribution: ClassVar[str]
    abilities: ClassVar[Abilities] = Abilities()
    generic: ClassVar[bool] = False

    _implementation: Implementation | None = None

    @abstractmethod
    def accepts(self, x: Any) -> bool:
        """True if ``x`` is an array of this backend (its framework is imported, unless ``generic``);
        the type decides."""

    @abstractmethod
    def load(self) -> Implementation:
        """Build the implementation (importing the framework); called once, on first use."""

    def suite_adapter(self) -> SuiteAdapter:
        """The conformance suite's adapter for this backend (``unidrop check`` uses it)."""
        raise NotImplementedError(
            f"unidrop backend {self.name!r} supplies no conformance adapter: implement suite_adapter()"
        )

    def implementation(self) -> Implementation:
        """The implementation, built by :meth:`load` on the first call and kept.

        Every caller gets the one kept implementation, threads racing on the first array too;
        it is read and published without a lock, so a compiler can trace the first call.
        """
        built = self._implementation
        if built is None:
            built = self.load()
            if not isinstance(built, Implementation):
                raise TypeError(f"load() must return a unidrop Implementation, got {built!r}")
            built = vars(self).setdefault("_implementation", built)  # the first one published wins
        return built

    def version(self) -> str:
        """The version of the framework this backend drives (imports it)."""
        return str(getattr(importlib.import_module(self.framework), "__version__", "unknown"))

    def __repr__(self) -> str:
        return f"<unidrop backend {self.name!r} for {self.framework}>"
