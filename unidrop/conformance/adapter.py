"""What the conformance suite needs of a backend besides ``unidrop.dropout``: a SuiteAdapter.

The suite checks a backend through :func:`unidrop.dropout` (``backend=adapter.name``) and
reaches the framework itself only through a :class:`SuiteAdapter`: making arrays from NumPy,
reading them back, devices, the framework's global random state and seeding, and the declared
abilities (gradients, compilation). A backend supplies one from
:meth:`unidrop.Backend.suite_adapter`; a suite class takes it as its overridable ``adapter``
property, as fsspec's abstract tests take their ``fs`` fixture.

This module imports neither pytest nor Hypothesis nor any framework: ``unidrop demo`` and
``unidrop backends`` use adapters too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from unidrop import seeding
from unidrop.backend import Abilities, Backend


class SuiteAdapter(ABC):
    """How the suite makes, reads and inspects one backend's arrays.

    Subclass it beside the backend (its module may import the framework at the top) and
    implement :meth:`from_numpy` and :meth:`to_numpy`; override the rest where the defaults
    (one CPU device, no global random state, unidrop's own seed source) do not hold. A backend
    that declares ``autograd`` or ``jit`` in its :class:`~unidrop.Abilities` implements
    :meth:`vjp` or :meth:`jit`; the suite fails a declaration with no implementation.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def name(self) -> str:
        """The backend's registered name, passed to ``unidrop.dropout(backend=...)``."""
        return self.backend.name

    @property
    def abilities(self) -> Abilities:
        """The optional abilities the backend declares."""
        return self.backend.abilities

    def dtypes(self) -> frozenset[str]:
        """The float dtypes the backend supports here, by canonical name."""
        return frozenset(self.backend.implementation().dtypes())

    def devices(self) -> list[str]:
        """The devices the backend can run on here (``"cpu"``, ``"cuda:0"``)."""
        return self.backend.implementation().devices()

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """The shape of ``x`` and its dtype's canonical name, as the backend reads them."""
        return self.backend.implementation().shape_and_dtype(x)

    @abstractmethod
    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        """A framework array holding ``array`` (NumPy, exact in ``dtype``) as ``dtype`` on ``device``.

        ``dtype`` is a float dtype of :meth:`dtypes`, or ``"int32"`` or ``"bool"`` (the suite
        checks that those are refused).
        """

    @abstractmethod
    def to_numpy(self, x: Any) -> Any:
        """A NumPy copy of ``x`` (16-bit floats may come back as float32 holding the same values)."""

    def device_of(self, x: Any) -> str:
        """The device ``x`` lives on, in the form :meth:`devices` uses."""
        return "cpu"

    def overwrite(self, x: Any, values: Any) -> bool:
        """Write the NumPy ``values`` (``x``'s shape) into ``x`` and return True; return False,
        writing nothing, where the backend's arrays are immutable.

        The default writes through the implementation's ``copy_into``, as ``inplace=True`` does,
        where it has one (``mutable_arrays``); otherwise by item assignment (``x[...] = values``,
        the Array API's way), and arrays that refuse it (JAX's) count as immutable.
        """
        made = self.backend.implementation()
        source = self.from_numpy(values, self.shape_and_dtype(x)[1], self.device_of(x))
        if made.mutable_arrays:
            made.copy_into(x, source)
            return True
        try:
            x[...] = source
        except Exception:  # no item assignment: the arrays are immutable
            return False
        return True

    def global_rng_state(self) -> Any:
        """A snapshot of the framework's global random state, or None if it has none.

        The suite checks that a call with an explicit seed leaves it unchanged.
        """
        return None

    def manual_seed(self, seed: int) -> None:
        """Make ``seed=None`` calls reproducible, by the backend's documented convention."""
        seeding.manual_seed(seed)

    def flushes_subnormals(self, dtype: str, device: str) -> bool:
        """True where the backend declares a known deviation: it flushes ``dtype`` subnormals on ``device``.

        The spec scales subnormal inputs and results exactly; a backend that cannot yet (on a
        device whose arithmetic flushes them, as XLA on the CPU does by default) declares it here
        and documents it. No backend of this project declares it. The
        suite then runs its subnormal checks for that dtype as expected failures, and fails if
        they pass (so a fixed backend drops the declaration). The default declares nothing.
        """
        return False

    # The three views below are None, and the checks needing them skip saying so, where the default
    # way gives an array of another type than ``x`` (a subclass comes back as its base class, which
    # the backend under test may not take): override them to keep the type.

    def permuted(self, x: Any, axes: tuple[int, ...]) -> Any | None:
        """``x`` with its axes permuted (NumPy's ``x.transpose(axes)``), a view where arrays have views.

        The default uses the Array API's ``permute_dims``, else a ``permute`` method (PyTorch's);
        None where the array has neither, and the suite's layout checks needing it skip, saying so.
        """
        namespace = getattr(x, "__array_namespace__", None)
        if namespace is not None:
            return same_type(x, namespace().permute_dims(x, axes))
        permute = getattr(x, "permute", None)
        return None if permute is None else same_type(x, permute(*axes))

    def strided(self, x: Any, index: tuple[slice, ...]) -> Any | None:
        """``x[index]`` for slices with any step (negative ones too), or None where it is refused.

        The default indexes ``x`` with ``(*index, ...)`` (the Array API wants every axis indexed,
        an Ellipsis standing for the rest); a framework that refuses negative steps (PyTorch raises
        ValueError) gets None, and the suite's checks of that layout skip, saying so.
        """
        every_axis = (*index, ...)
        try:
            return same_type(x, x[every_axis])
        except ValueError:
            return None

    def broadcast_view(self, x: Any, shape: tuple[int, ...]) -> Any | None:
        """``x`` broadcast to ``shape``: a zero-stride view where the framework has one, else None.

        The default uses the Array API's ``broadcast_to`` (NumPy and CuPy return views, JAX an
        array), else an ``expand`` method (PyTorch's view); None where the array has neither.
        """
        namespace = getattr(x, "__array_namespace__", None)
        if namespace is not None:
            return same_type(x, namespace().broadcast_to(x, shape))
        expand = getattr(x, "expand", None)
        return None if expand is None else same_type(x, expand(*shape))

    def byte_swapped(self, x: Any) -> Any | None:
        """``x``'s values stored in the other byte order (NumPy's ``'>f4'`` on a little-endian
        machine), or None where the array type has no byte order (the default), and the suite's
        byte-order check skips, saying so."""
        return None

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        """``(fn(x), cotangent @ d fn/dx)`` through the framework's autograd (``autograd`` ability)."""
        raise NotImplementedError(f"the suite adapter of {self.name!r} does not implement vjp")

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` compiled by the framework's compiler (``jit`` ability)."""
        raise NotImplementedError(f"the suite adapter of {self.name!r} does not implement jit")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend!r})"


def same_type(x: Any, view: Any) -> Any | None:
    """``view`` if it has ``x``'s type, else None (a view of another type is not the backend's to judge)."""
    return view if type(view) is type(x) else None
