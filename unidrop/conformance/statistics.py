"""Statistics: keep rate and mean within 5 sigma, and seeds and streams that change the mask.

Every check uses fixed seeds, so none is flaky. The two checks on 2**20 elements are the
suite's heaviest; a backend's tests may skip them by setting
:attr:`StatisticsChecks.run_heavy_statistics` to False (the skip says so).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest

from unidrop import arguments, reference
from unidrop.arguments import TWO_POW_32

from .helpers import SuitePart

#: Elements of the keep-rate and mean checks: 5 sigma of the keep rate is then under 0.25%.
STAT_SIZE = 1 << 20


class StatisticsChecks(SuitePart):
    """The mask behaves as independent draws: the right rate, the right mean, a new mask per key."""

    #: False skips the two checks on 2**20 elements (keep rate and mean), e.g. on a slow
    #: device or an emulator; the exactness checks still pin the threshold and the scale.
    run_heavy_statistics: ClassVar[bool] = True

    def skip_unless_heavy_statistics(self) -> None:
        """Skip the calling test, saying why, when :attr:`run_heavy_statistics` is False."""
        if not self.run_heavy_statistics:
            pytest.skip(
                f"{type(self).__name__}.run_heavy_statistics is False: "
                f"the {STAT_SIZE}-element statistics are not run"
            )

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
    def test_keep_rate_within_5_sigma(self, p: float) -> None:
        """The kept fraction of 2**20 elements is within 5 sigma of 1 - t / 2**32."""
        self.skip_unless_heavy_statistics()
        x = self.make(np.ones(STAT_SIZE), "float32")
        _, keep = self.dropout(x, p, seed=2024, stream=1, return_mask=True)
        kept = int(self.read(keep).sum())
        q = 1.0 - arguments.threshold(p) / TWO_POW_32
        sigma = math.sqrt(STAT_SIZE * q * (1.0 - q))
        assert abs(kept - STAT_SIZE * q) <= 5 * sigma, (
            f"kept {kept} of {STAT_SIZE}, expected {STAT_SIZE * q:.0f}"
        )

    @pytest.mark.parametrize("p", [0.2, 0.7])
    def test_mean_within_5_sigma(self, p: float) -> None:
        """The mean output for an input of ones is 1 within 5 sigma: the scale is 1 / (1 - p)."""
        self.skip_unless_heavy_statistics()
        x = self.make(np.ones(STAT_SIZE), "float32")
        y = self.read(self.dropout(x, p, seed=99, stream=0)).astype(np.float64)
        q = 1.0 - arguments.threshold(p) / TWO_POW_32
        s = 1.0 / (1.0 - p)
        sigma = s * math.sqrt(q * (1.0 - q) / STAT_SIZE)
        assert abs(y.mean() - s * q) <= 5 * sigma, f"mean {y.mean()} expected {s * q}"
        assert set(np.unique(y).tolist()) <= {0.0, reference.round_to(s, "float32")}

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ((0, 0), (1, 0)),
            ((0, 0), (1 << 32, 0)),
            ((0, 0), (0, 1)),
            ((0, 0), (0, 1 << 32)),
            ((1, 2), (2, 1)),
        ],
        ids=["seed", "seed-high-word", "stream", "stream-high-word", "swapped"],
    )
    def test_different_seeds_and_streams_give_different_masks(
        self, a: tuple[int, int], b: tuple[int, int]
    ) -> None:
        """Masks for two different (seed, stream) pairs agree on about half their elements."""
        x = self.make(np.ones(4096), "float32")
        _, keep_a = self.dropout(x, 0.5, seed=a[0], stream=a[1], return_mask=True)
        _, keep_b = self.dropout(x, 0.5, seed=b[0], stream=b[1], return_mask=True)
        agree = float((self.read(keep_a) == self.read(keep_b)).mean())
        assert 0.4 < agree < 0.6, f"masks for (seed, stream) {a} and {b} agree on {agree:.0%}"
