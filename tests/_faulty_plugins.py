"""Backends that break the plugin contract one way each, loaded through faked entry points.

``tests/test_*.py`` point entry points at ``_faulty_plugins:<name>``; each object here has
exactly one fault (or, for the impostors, one ambition) that must cost it alone. A fake is a
descriptor (a :class:`unidrop.Backend`) whose ``load()`` builds its ``made_by`` Implementation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from unidrop_numpy import NumpyBackend
from unidrop_numpy.implementation import NumpyImplementation

from unidrop import Backend, DropoutPlan, Implementation


class _Minimal(Backend):
    """Every abstract method present, none of them meant to run."""

    def accepts(self, x: Any) -> bool:
        return False

    def load(self) -> Implementation:
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


class NamedClumsy(_Minimal):
    """Claims the name ``clumsy`` and takes no array: kept, it pushes the real ``clumsy`` out."""

    name = "clumsy"
    framework = "builtins"


class LoadRaisesBare(_Minimal):
    """A sound descriptor whose load() raises an exception with no message (NotImplementedError)."""

    name = "bare-load"
    framework = "numpy"


class ConstructorRaises(_Minimal):
    name = "constructor-raises"
    framework = "numpy"

    def __init__(self) -> None:
        raise OSError("cannot start")


class StringAbilities(_Minimal):
    """Declares its abilities as the v1 contract's feature strings, not as ``unidrop.Abilities``."""

    name = "string-abilities"
    framework = "numpy"
    abilities = frozenset({"autograd"})  # type: ignore[assignment]


class DictAbilities(_Minimal):
    """Declares its abilities as a mapping, not as ``unidrop.Abilities``."""

    name = "dict-abilities"
    framework = "numpy"
    abilities: ClassVar = {"autograd": True}  # type: ignore[misc]


class AbilitiesRaises(_Minimal):
    name = "abilities-raises"
    framework = "numpy"

    @property  # type: ignore[misc]
    def abilities(self) -> Any:  # type: ignore[override]
        raise LookupError("no abilities today")


not_a_backend = object()


class Builds(NumpyBackend):
    """A NumPy-like descriptor whose ``load()`` builds ``made_by``: the base of the fakes below."""

    distribution = "third-party"
    made_by: ClassVar[type[Implementation]] = NumpyImplementation

    def load(self) -> Implementation:
        return self.made_by()


class ZerosImplementation(NumpyImplementation):
    """Answers all zeros: visibly not the reference."""

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        return np.zeros_like(x), None


class _Zeros(Builds):
    """Accepts what NumPy's backend accepts and answers all zeros."""

    made_by = ZerosImplementation


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
        return np.asarray(self.values, dtype=dtype)


class ClumsyImplementation(NumpyImplementation):
    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        raise ZeroDivisionError("shape exploded")


class Clumsy(Builds):
    """The framework of ClumsyArray (this module), whose shape_and_dtype is broken."""

    name = "clumsy"
    framework = __name__
    distribution = "clumsy-dist"
    made_by = ClumsyImplementation

    def accepts(self, x: Any) -> bool:
        return isinstance(x, ClumsyArray)


class _AnswersNone(NumpyImplementation):
    def shape_and_dtype(self, x: Any) -> Any:
        return None


class ClumsyAnswer(Clumsy):
    """Like Clumsy, but shape_and_dtype answers instead of raising: not a (shape, dtype) pair."""

    name = "clumsy-answer"
    made_by = _AnswersNone


class _AnswersAFloatShape(NumpyImplementation):
    def shape_and_dtype(self, x: Any) -> Any:
        return 2.5, "float32"


class ClumsyShape(Clumsy):
    """Answers a shape that is not a sequence of integers."""

    name = "clumsy-shape"
    made_by = _AnswersAFloatShape


class _AnswersThree(NumpyImplementation):
    def shape_and_dtype(self, x: Any) -> Any:
        return (2,), "float32", "extra"


class ClumsyTriple(Clumsy):
    """Answers three values where two are due."""

    name = "clumsy-triple"
    made_by = _AnswersThree


class _DtypesNone(NumpyImplementation):
    def dtypes(self) -> Any:
        return None

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return (2,), "float32"


class ClumsyDtypes(Clumsy):
    """Answers well, but its dtypes() are not a collection of names."""

    name = "clumsy-dtypes"
    made_by = _DtypesNone


class _DtypesAreObjects(NumpyImplementation):
    def dtypes(self) -> Any:
        import numpy as np

        return frozenset({np.dtype("float32"), np.dtype("float64")})  # equal to names, not names

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return (2,), "float32"


class ClumsyDtypeObjects(Clumsy):
    """Answers its dtypes() as NumPy dtype objects, not names: a float32 array would be refused
    as if the user were at fault."""

    name = "clumsy-dtype-objects"
    made_by = _DtypesAreObjects


class LoadRaises(Clumsy):
    """Takes ClumsyArray, but building its implementation fails (its framework's import, say)."""

    name = "load-raises"

    def load(self) -> Implementation:
        raise OSError("libframework.so: cannot open shared object file")


class LoadExits(Clumsy):
    """Takes ClumsyArray, but its framework's import calls ``sys.exit`` (no GPU, say)."""

    name = "load-exits"

    def load(self) -> Implementation:
        raise SystemExit("this framework needs CUDA")


class _NotAnImplementation:
    """Has the methods of an Implementation without being one (the v1 contract's Backend, say)."""

    dtypes = NumpyImplementation.dtypes
    shape_and_dtype = NumpyImplementation.shape_and_dtype
    dropout = NumpyImplementation.dropout


class LoadReturnsNone(Clumsy):
    name = "load-returns-none"

    def load(self) -> Any:
        return None


class LoadReturnsAClass(Clumsy):
    name = "load-returns-a-class"

    def load(self) -> Any:
        return NumpyImplementation  # the class, not an instance


class LoadReturnsALookalike(Clumsy):
    name = "load-returns-a-lookalike"

    def load(self) -> Any:
        return _NotAnImplementation()


class LoadReturnsItsBackend(Clumsy):
    name = "load-returns-its-backend"

    def load(self) -> Any:
        return self


class RescuerImplementation(NumpyImplementation):
    """Reads ClumsyArray through numpy.asarray."""

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        return super().shape_and_dtype(np.asarray(x))

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        return super().dropout(np.asarray(x), plan)


class Rescuer(Builds):
    """A generic backend that also takes ClumsyArray, through numpy.asarray."""

    name = "rescuer"
    framework = "builtins"
    distribution = "rescuer-dist"
    made_by = RescuerImplementation

    def accepts(self, x: Any) -> bool:
        return isinstance(x, ClumsyArray)


class Generic(Rescuer):
    """Like Rescuer under another name: two generic backends taking one owner-less type."""

    name = "generic"
    distribution = "generic-dist"


class CountsLoads(Builds):
    """The NumPy backend under another name, counting the calls of its ``load()`` in ``loads``."""

    name = "counts-loads"
    framework = "numpy"
    distribution = "counting-dist"
    loads: ClassVar[list[str]] = []

    def load(self) -> Implementation:
        CountsLoads.loads.append(self.name)
        return super().load()
