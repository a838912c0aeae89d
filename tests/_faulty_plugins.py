"""Backends that break the plugin contract one way each, loaded through faked entry points.

``tests/test_registry*.py`` point entry points at ``_faulty_plugins:<name>``; each object here
has exactly one fault (or, for the impostors, one ambition) that must cost it alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from unidrop_numpy import NumpyBackend

from unidrop import Backend, DropoutPlan


class _Minimal(Backend):
    """Every abstract method present, none of them meant to run."""

    def accepts(self, x: Any) -> bool:
        return False

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        raise NotImplementedError

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        raise NotImplementedError

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        raise NotImplementedError

    def from_numpy(self, array: Any, dtype: str, device: str | None = None) -> Any:
        raise NotImplementedError

    def to_numpy(self, x: Any) -> Any:
        raise NotImplementedError


class NoName(_Minimal):
    framework = "numpy"


class UnhashableName(_Minimal):
    name: ClassVar = ["unhashable"]  # type: ignore[misc]
    framework = "numpy"


class IntegerName(_Minimal):
    name = 123  # type: ignore[assignment]
    framework = "numpy"


class NameRaises(_Minimal):
    framework = "numpy"

    @property  # type: ignore[misc]
    def name(self) -> str:  # type: ignore[override]
        raise RuntimeError("no name today")


class FrameworkRaises(_Minimal):
    name = "framework-raises"

    @property  # type: ignore[misc]
    def framework(self) -> str:  # type: ignore[override]
        raise KeyError("framework")


class NoFramework(_Minimal):
    name = "no-framework"


class ConstructorRaises(_Minimal):
    name = "constructor-raises"
    framework = "numpy"

    def __init__(self) -> None:
        raise OSError("cannot start")


not_a_backend = object()


class _Zeros(NumpyBackend):
    """Accepts what NumPy's backend accepts and answers all zeros: visibly not the reference."""

    distribution = "third-party"

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        import numpy as np

        return np.zeros_like(x), None


class Impostor(_Zeros):
    """A third party claiming the name ``numpy``."""


class OtherImpostor(_Zeros):
    """Another third party claiming the name ``numpy``."""


class Hoarder(_Zeros):
    """Another name, another framework, but takes NumPy arrays."""

    name = "hoarder"
    framework = "builtins"


class AlsoNumpy(_Zeros):
    """Another name, the same framework, and takes NumPy arrays."""

    name = "also-numpy"


class AcceptsRaises(NumpyBackend):
    name = "angry"
    framework = "builtins"
    distribution = "angry-dist"

    def accepts(self, x: Any) -> bool:
        raise ValueError("accepts exploded")


class Declines(NumpyBackend):
    """Accepts nothing: registering it changes no dispatch."""

    name = "declines"

    def accepts(self, x: Any) -> bool:
        return False


class ClumsyArray:
    """An array type of this module's own: plugins ``clumsy`` and ``rescuer`` take it."""

    def __init__(self, values: Any) -> None:
        self.values = values

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        return np.asarray(self.values, dtype=dtype)


class Clumsy(NumpyBackend):
    """The framework of ClumsyArray (this module), whose shape_and_dtype is broken."""

    name = "clumsy"
    framework = __name__
    distribution = "clumsy-dist"

    def accepts(self, x: Any) -> bool:
        return isinstance(x, ClumsyArray)

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        raise ZeroDivisionError("shape exploded")


class ClumsyAnswer(Clumsy):
    """Like Clumsy, but shape_and_dtype answers instead of raising: not a (shape, dtype) pair."""

    name = "clumsy-answer"

    def shape_and_dtype(self, x: Any) -> Any:
        return None


class ClumsyShape(Clumsy):
    """Answers a shape that is not a sequence of integers."""

    name = "clumsy-shape"

    def shape_and_dtype(self, x: Any) -> Any:
        return 2.5, "float32"


class ClumsyTriple(Clumsy):
    """Answers three values where two are due."""

    name = "clumsy-triple"

    def shape_and_dtype(self, x: Any) -> Any:
        return (2,), "float32", "extra"


class ClumsyDtypes(Clumsy):
    """Answers well, but its dtypes are not a collection of names."""

    name = "clumsy-dtypes"
    dtypes = None  # type: ignore[assignment]

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return (2,), "float32"


class Rescuer(NumpyBackend):
    """A generic backend that also takes ClumsyArray, through numpy.asarray."""

    name = "rescuer"
    framework = "builtins"
    distribution = "rescuer-dist"

    def accepts(self, x: Any) -> bool:
        return isinstance(x, ClumsyArray)

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        import numpy as np

        return super().shape_and_dtype(np.asarray(x))

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        import numpy as np

        return super().dropout(np.asarray(x), plan)


class Generic(Rescuer):
    """Like Rescuer under another name: two generic backends taking one owner-less type."""

    name = "generic"
    distribution = "generic-dist"
