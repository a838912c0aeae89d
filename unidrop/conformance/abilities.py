"""Optional abilities: each checked only when the backend declares it in its ``abilities``.

``autograd``: the gradient is the cotangent times keep times scale, through the adapter's
``vjp``. ``jit``: a compiled call gives the reference's result and mask, through its ``jit``.
Both with seeds and streams whose high words are set, and with ``broadcast_dims``.
(``explicit_seed`` changes a rule, and :mod:`.rules` checks it.)
"""

from __future__ import annotations

import numpy as np
import pytest

from unidrop import reference

from .helpers import SuitePart, assert_same_floats, keep_string, sample_values


class AbilitiesChecks(SuitePart):
    """The optional abilities a backend declares; each check skips, saying so, when undeclared."""

    @pytest.mark.parametrize(
        ("shape", "seed", "stream", "dims"),
        [
            ((6, 50), 5, 9, ()),
            ((6, 50), (1 << 63) + (1 << 32) + 5, (1 << 40) + 9, (0,)),
            ((3, 4, 25), (1 << 64) - 3, (1 << 33) + 1, (-1,)),
        ],
        ids=["small-seed", "64-bit-broadcast-first", "64-bit-broadcast-last"],
    )
    def test_autograd_gradient_is_cotangent_times_keep_times_scale(
        self, shape: tuple[int, ...], seed: int, stream: int, dims: tuple[int, ...]
    ) -> None:
        """Forward and gradient under the framework's autograd equal the reference's dropout."""
        if not self.adapter.abilities.autograd:
            pytest.skip(f"backend {self.adapter.name!r} does not declare autograd")
        values = finite(sample_values(shape, "float32", 6), 1.0)
        cotangent = finite(sample_values(shape, "float32", 7), 2.0)
        x, g = self.make(values, "float32"), self.make(cotangent, "float32")
        y, grad = self.adapter.vjp(
            lambda a: self.dropout(a, 0.3, seed=seed, stream=stream, broadcast_dims=dims), x, g
        )
        want_y, _ = reference.dropout(values.reshape(-1).tolist(), shape, "float32", 0.3, seed, stream, dims)
        want_grad, _ = reference.dropout(
            cotangent.reshape(-1).tolist(), shape, "float32", 0.3, seed, stream, dims
        )
        context = f"seed={seed} stream={stream} broadcast_dims={dims}"
        assert_same_floats(self.read(y), np.array(want_y), f"forward under autograd, {context}")
        assert_same_floats(self.read(grad), np.array(want_grad), f"gradient, {context}")

    def test_autograd_of_two_dropout_calls_uses_each_calls_mask(self) -> None:
        """The gradient of ``dropout(a, seed=s1) + dropout(a, seed=s2)`` is the sum of the two calls'
        gradients, each with its own mask (not the mask of the last forward call)."""
        if not self.adapter.abilities.autograd:
            pytest.skip(f"backend {self.adapter.name!r} does not declare autograd")
        shape, seeds, stream = (6, 50), ((1 << 40) + 3, (1 << 40) + 4), (1 << 32) + 1
        values = finite(sample_values(shape, "float32", 6), 1.0)
        cotangent = finite(sample_values(shape, "float32", 7), 2.0)
        x, g = self.make(values, "float32"), self.make(cotangent, "float32")
        y, grad = self.adapter.vjp(
            lambda a: (
                self.dropout(a, 0.3, seed=seeds[0], stream=stream)
                + self.dropout(a, 0.3, seed=seeds[1], stream=stream)
            ),
            x,
            g,
        )
        for got, of, what in [(y, values, "forward"), (grad, cotangent, "gradient")]:
            want = [
                np.array(reference.dropout(of.reshape(-1).tolist(), shape, "float32", 0.3, s, stream)[0])
                for s in seeds
            ]
            total = want[0].astype(np.float32) + want[1].astype(np.float32)  # one float32 rounding
            assert_same_floats(self.read(got), total, f"{what} of two dropout calls (seeds {seeds})")

    @pytest.mark.parametrize(
        ("seed", "stream", "dims"),
        [(1 << 33, 2, ()), ((1 << 64) - 1, (1 << 63) + 5, (1,)), ((1 << 32) + 3, 1 << 32, (0,))],
        ids=["seed-high-word", "64-bit-broadcast-last", "64-bit-broadcast-first"],
    )
    def test_jit_gives_the_reference_result_and_mask(
        self, seed: int, stream: int, dims: tuple[int, ...]
    ) -> None:
        """A compiled dropout returns the reference's output and mask."""
        if not self.adapter.abilities.jit:
            pytest.skip(f"backend {self.adapter.name!r} does not declare jit")
        values = sample_values((7, 9), "float32", 8)
        compiled = self.adapter.jit(
            lambda a: self.dropout(a, 0.4, seed=seed, stream=stream, broadcast_dims=dims, return_mask=True)
        )
        y, keep = compiled(self.make(values, "float32"))
        want, want_keep = reference.dropout(
            values.reshape(-1).tolist(), (7, 9), "float32", 0.4, seed, stream, dims
        )
        context = f"under jit, seed={seed} stream={stream} broadcast_dims={dims}"
        assert_same_floats(self.read(y), np.array(want), context)
        mask = self.read(keep)
        assert mask.shape == tuple(1 if d in {a % 2 for a in dims} else n for d, n in enumerate((7, 9))), (
            context
        )
        assert keep_string(mask) == keep_string(np.array(want_keep)), f"mask {context}"


def finite(values: np.ndarray, replacement: float) -> np.ndarray:
    """``values`` with NaN and Inf replaced (autograd of a NaN or Inf input is not in the contract)."""
    values[np.isnan(values) | np.isinf(values)] = replacement
    return values
