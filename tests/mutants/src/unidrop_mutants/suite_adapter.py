"""The mutants' suite adapter: the NumPy backend's, with ``jit`` and ``vjp`` built from NumPy.

``jit(fn)`` is ``fn`` itself, run as the implementation's ``"jit"`` path; ``vjp(fn, x, g)`` is
``(fn(x), fn(g))`` with ``fn(g)`` run as the ``"grad"`` path. That is the exact vector-Jacobian
product of any function that is an elementwise sum of dropouts of its input (dropout is
linear and diagonal in ``x``), which is what the suite's gradient checks differentiate. A
mutant of a path changes only what happens on it (:meth:`unidrop_mutants.stream.StreamV1.plan_on_path`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unidrop_numpy.suite_adapter import NumpySuiteAdapter

from .stream import StreamV1


class MutantSuiteAdapter(NumpySuiteAdapter):
    """NumPy arrays on the CPU, with the compiled and gradient paths of a :class:`StreamV1`."""

    def _stream(self) -> StreamV1:
        implementation = self.backend.implementation()
        assert isinstance(implementation, StreamV1), implementation
        return implementation

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        y = fn(x)
        with self._stream().on_path("grad"):
            return y, fn(cotangent)

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        stream = self._stream()

        def compiled(*args: Any, **kwargs: Any) -> Any:
            with stream.on_path("jit"):
                return fn(*args, **kwargs)

        return compiled
