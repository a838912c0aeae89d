"""The one object through which the conformance suite makes, reads and inspects a backend's arrays.

The suite checks a backend through :func:`unidrop.dropout` (``backend=adapter.name``) and
reaches the framework itself only through a :class:`SuiteAdapter`: making arrays from NumPy,
reading them back, devices, the framework's global random state and seeding, and the
declared abilities (gradients, compilation). A suite class takes it as its overridable
``adapter`` property, as fsspec's abstract tests take their ``fs`` fixture.

:class:`BackendAdapter`, the default, delegates every member to the backend's own methods of
the same name, so a backend that implements them needs no adapter of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol, runtime_checkable

from unidrop.backend import Backend


@runtime_checkable
class SuiteAdapter(Protocol):
    """What the conformance suite needs of a backend besides ``unidrop.dropout``."""

    @property
    def name(self) -> str:
        """The backend's registered name, passed to ``unidrop.dropout(backend=...)``."""
        ...

    @property
    def dtypes(self) -> Collection[str]:
        """The float dtypes the backend supports, by canonical name."""
        ...

    @property
    def features(self) -> Collection[str]:
        """The declared abilities: ``"autograd"``, ``"jit"``, ``"explicit-seed"``."""
        ...

    def devices(self) -> list[str]:
        """The devices the backend can run on here (``"cpu"``, ``"cuda:0"``)."""
        ...

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        """A framework array holding ``array`` (NumPy, exact in ``dtype``) as ``dtype`` on ``device``.

        ``dtype`` is a float dtype of :attr:`dtypes`, or ``"int32"`` or ``"bool"``.
        """
        ...

    def to_numpy(self, x: Any) -> Any:
        """A NumPy copy of ``x`` (16-bit floats may come back as float32 holding the same values)."""
        ...

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """The shape of ``x`` and its dtype's canonical name."""
        ...

    def device_of(self, x: Any) -> str:
        """The device ``x`` lives on, in the form :meth:`devices` uses."""
        ...

    def global_rng_state(self) -> Any:
        """A snapshot of the framework's global random state, or None if it has none."""
        ...

    def manual_seed(self, seed: int) -> None:
        """Make ``seed=None`` calls reproducible, by the backend's documented convention."""
        ...

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        """``(fn(x), cotangent @ d fn/dx)``; asked only when :attr:`features` has ``"autograd"``."""
        ...

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A compiled form of ``fn``; asked only when :attr:`features` has ``"jit"``."""
        ...


class BackendAdapter:
    """The default :class:`SuiteAdapter`: every member delegates to ``backend``'s own method."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def dtypes(self) -> Collection[str]:
        return self.backend.dtypes

    @property
    def features(self) -> Collection[str]:
        return self.backend.features

    def devices(self) -> list[str]:
        return self.backend.devices()

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        return self.backend.from_numpy(array, dtype, device)

    def to_numpy(self, x: Any) -> Any:
        return self.backend.to_numpy(x)

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return self.backend.shape_and_dtype(x)

    def device_of(self, x: Any) -> str:
        return self.backend.device_of(x)

    def global_rng_state(self) -> Any:
        return self.backend.global_rng_state()

    def manual_seed(self, seed: int) -> None:
        self.backend.manual_seed(seed)

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        return self.backend.vjp(fn, x, cotangent)

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self.backend.jit(fn)

    def __repr__(self) -> str:
        return f"BackendAdapter({self.backend!r})"
