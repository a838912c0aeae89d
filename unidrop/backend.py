"""The backend contract: what a plugin implements to give unidrop an array library.

A backend is a small object registered under the entry-point group
``unidrop.backends``. Loading it must not import its framework: the framework is
imported only in the methods, which run once an array of that framework arrives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from . import contract, seeding
from .contract import DropoutPlan


class Backend(ABC):
    """Base class of every unidrop backend.

    Class attributes a backend sets:

    ``name``          the name users pick it by (``backend="numpy"``)
    ``framework``     the top-level module whose arrays it takes (``"numpy"``); dispatch
                      asks :meth:`accepts` only once that module is in ``sys.modules``
    ``distribution``  the distribution that installs it, for error messages
    ``dtypes``        the floating dtypes it supports, by canonical name
    ``features``      optional abilities the conformance suite then checks:
                      ``"autograd"`` (implement :meth:`vjp`), ``"jit"`` (:meth:`jit`),
                      ``"explicit-seed"`` (``seed=None`` is refused, as JAX does)
    """

    name: ClassVar[str]
    framework: ClassVar[str]
    distribution: ClassVar[str]
    dtypes: ClassVar[frozenset[str]] = frozenset({"float16", "float32", "float64"})
    features: ClassVar[frozenset[str]] = frozenset()

    # -- dispatch and description ------------------------------------------------
    @abstractmethod
    def accepts(self, x: Any) -> bool:
        """True if ``x`` is an array this backend handles (its framework is already imported)."""

    @abstractmethod
    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """The shape of ``x`` and its dtype's canonical name (``"float32"``, ``"int64"``, ...)."""

    def check_randomness(self, seed: Any, stream: Any, x: Any) -> None:
        """Validate ``seed`` and ``stream`` without drawing anything or touching any random state.

        Called on the identity path (``training=False`` or ``p == 0``), where no mask is drawn,
        so that a bad seed or stream is refused there too; raises TypeError or ValueError naming
        the bad value. The default accepts what :meth:`resolve_randomness` does: ``seed`` None
        or an integer in [0, 2**64), ``stream`` an integer in [0, 2**64).
        """
        contract.check_uint64(stream, "stream")
        if seed is not None:
            contract.check_uint64(seed, "seed")

    def resolve_randomness(self, seed: Any, stream: Any, x: Any) -> tuple[Any, Any]:
        """Validate ``seed`` and ``stream``; with ``seed=None``, draw a seed by the backend's convention.

        The default accepts integers in [0, 2**64) and draws a missing seed from
        :func:`unidrop.seeding.draw_seed` (governed by :func:`unidrop.manual_seed`).
        """
        stream = contract.check_uint64(stream, "stream")
        if seed is None:
            return seeding.draw_seed(), stream
        return contract.check_uint64(seed, "seed"), stream

    # -- the operation -------------------------------------------------------------
    @abstractmethod
    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        """Apply mask stream v1 to ``x``: return ``(y, keep)``, ``keep`` only if ``plan.return_mask``.

        ``y`` has the type, device, shape and dtype of ``x``; ``x`` is not modified.
        ``keep`` is a boolean array of shape ``plan.mask_shape`` (True = kept).
        """

    @abstractmethod
    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        """An all-True boolean array of ``shape`` beside ``x`` (the mask when nothing is dropped)."""

    # -- description for users -----------------------------------------------------
    def version(self) -> str:
        """The version of the framework this backend drives."""
        import importlib

        return str(getattr(importlib.import_module(self.framework), "__version__", "unknown"))

    def devices(self) -> list[str]:
        """The devices this backend can run on here, as strings (``"cpu"``, ``"cuda:0"``)."""
        return ["cpu"]

    # -- adapters for the conformance suite ---------------------------------------
    @abstractmethod
    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        """A framework array holding ``array`` (a NumPy array) as ``dtype`` on ``device``.

        ``dtype`` is one of the backend's float dtypes, or ``"int32"`` or ``"bool"`` (the
        suite checks that those are refused). The values of ``array`` are exact in ``dtype``.
        """

    @abstractmethod
    def to_numpy(self, x: Any) -> Any:
        """A NumPy copy of ``x``; 16-bit floats may come back as float32 holding the same values."""

    def device_of(self, x: Any) -> str:
        """The device ``x`` lives on, in the form :meth:`devices` uses."""
        return "cpu"

    def global_rng_state(self) -> Any:
        """A snapshot of the framework's global random state (None if it has none).

        The suite checks that a call with an explicit seed leaves it unchanged.
        """
        return None

    def manual_seed(self, seed: int) -> None:
        """Make ``seed=None`` calls reproducible, by the backend's documented convention."""
        seeding.manual_seed(seed)

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        """``(fn(x), cotangent @ d fn/dx)`` for backends declaring the ``"autograd"`` feature."""
        raise NotImplementedError(f"backend {self.name!r} does not declare autograd")

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A compiled form of ``fn`` for backends declaring the ``"jit"`` feature."""
        raise NotImplementedError(f"backend {self.name!r} does not declare jit")

    def __repr__(self) -> str:
        return f"<unidrop backend {self.name!r} for {self.framework}>"
