"""Optional abilities: each checked only when the backend declares it in its ``abilities``.

``autograd``: the gradient is the cotangent times keep times scale, through the adapter's
``vjp``. ``jit``: a compiled call gives the eager (reference) result, through its ``jit``.
(``explicit_seed`` changes a rule, and :mod:`.rules` checks it.)
"""

from __future__ import annotations

import numpy as np
import pytest

from unidrop import reference

from .helpers import SuitePart, assert_same_floats, sample_values


class AbilitiesChecks(SuitePart):
    """The optional abilities a backend declares; each check skips, saying so, when undeclared."""

    def test_autograd_gradient_is_cotangent_times_keep_times_scale(self) -> None:
        """Forward and gradient under the framework's autograd equal the reference's dropout."""
        if not self.adapter.abilities.autograd:
            pytest.skip(f"backend {self.adapter.name!r} does not declare autograd")
        values = sample_values((6, 50), "float32", 6)
        values[np.isnan(values) | np.isinf(values)] = 1.0
        cotangent = sample_values((6, 50), "float32", 7)
        cotangent[np.isnan(cotangent) | np.isinf(cotangent)] = 2.0
        x, g = self.make(values, "float32"), self.make(cotangent, "float32")
        y, grad = self.adapter.vjp(lambda a: self.dropout(a, 0.3, seed=5, stream=9), x, g)
        expected_y, _ = reference.dropout(values.reshape(-1).tolist(), (6, 50), "float32", 0.3, 5, 9)
        expected_grad, _ = reference.dropout(cotangent.reshape(-1).tolist(), (6, 50), "float32", 0.3, 5, 9)
        assert_same_floats(self.read(y), np.array(expected_y), "forward under autograd")
        assert_same_floats(self.read(grad), np.array(expected_grad), "gradient")

    def test_jit_gives_the_eager_result(self) -> None:
        """A compiled dropout gives the reference's result."""
        if not self.adapter.abilities.jit:
            pytest.skip(f"backend {self.adapter.name!r} does not declare jit")
        values = sample_values((7, 9), "float32", 8)
        compiled = self.adapter.jit(lambda a: self.dropout(a, 0.4, seed=1 << 33, stream=2))
        expected, _ = reference.dropout(values.reshape(-1).tolist(), (7, 9), "float32", 0.4, 1 << 33, 2)
        assert_same_floats(self.read(compiled(self.make(values, "float32"))), np.array(expected), "jit")
