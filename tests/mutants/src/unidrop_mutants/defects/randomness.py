"""Mutants of the random words: key, counter, lanes, rounds, threshold, chunking of large masks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from unidrop import DropoutPlan
from unidrop.arguments import TWO_POW_32
from unidrop.philox import PHILOX_W0, PHILOX_W1, split64

from ..stream import StreamV1

_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)

# ---- key and counter words ------------------------------------------------------------------


class KeyWordsSwapped(StreamV1):
    """The key is (seed >> 32, seed mod 2**32): its two words swapped."""

    caught_by = ("test_known_answers", "test_matches_reference_on_every_device")

    def key(self, plan: DropoutPlan) -> tuple[int, int]:
        k0, k1 = split64(plan.seed)
        return k1, k0


class SeedHighWordIgnored(StreamV1):
    """The key's high word is 0: seed >> 32 is ignored."""

    caught_by = ("test_different_seeds_and_streams_give_different_masks[seed-high-word]",)

    def key(self, plan: DropoutPlan) -> tuple[int, int]:
        return split64(plan.seed)[0], 0


class BlockAndStreamSwapped(StreamV1):
    """The counter is (stream low, stream high, block low, block high)."""

    caught_by = ("test_known_answers",)

    def counter(self, plan: DropoutPlan, blocks: np.ndarray) -> tuple[Any, Any, Any, Any]:
        b0, b1, s0, s1 = super().counter(plan, blocks)
        return s0, s1, b0, b1


class BlockWordsSwapped(StreamV1):
    """The counter's block words are (block high, block low)."""

    caught_by = ("test_known_answers",)

    def counter(self, plan: DropoutPlan, blocks: np.ndarray) -> tuple[Any, Any, Any, Any]:
        b0, b1, s0, s1 = super().counter(plan, blocks)
        return b1, b0, s0, s1


class BlockHighWordFromStream(StreamV1):
    """The counter's block high word is the stream's low word (so it is nonzero for stream >= 1)."""

    caught_by = ("test_matches_reference_on_every_device",)

    def counter(self, plan: DropoutPlan, blocks: np.ndarray) -> tuple[Any, Any, Any, Any]:
        b0, _, s0, s1 = super().counter(plan, blocks)
        return b0, s0, s0, s1


class BlockHighWordZero(StreamV1):
    """The counter's block high word is 0: global indices from 2**34 on wrap to the start."""

    caught_by = ("test_blocks_far_out_in_huge_global_arrays[2^36]",)

    def counter(self, plan: DropoutPlan, blocks: np.ndarray) -> tuple[Any, Any, Any, Any]:
        b0, _, s0, s1 = super().counter(plan, blocks)
        return b0, 0, s0, s1


class StreamHighWordIgnored(StreamV1):
    """The counter's stream high word is 0: stream >> 32 is ignored."""

    caught_by = ("test_different_seeds_and_streams_give_different_masks[stream-high-word]",)

    def counter(self, plan: DropoutPlan, blocks: np.ndarray) -> tuple[Any, Any, Any, Any]:
        b0, b1, s0, _ = super().counter(plan, blocks)
        return b0, b1, s0, 0


class StreamWordsSwapped(StreamV1):
    """The counter's stream words are (stream high, stream low)."""

    caught_by = ("test_matches_reference_on_every_device",)

    def counter(self, plan: DropoutPlan, blocks: np.ndarray) -> tuple[Any, Any, Any, Any]:
        b0, b1, s0, s1 = super().counter(plan, blocks)
        return b0, b1, s1, s0


# ---- lanes and the generator itself ---------------------------------------------------------


class LanesReversed(StreamV1):
    """Element i takes word 3 - i % 4 of its block."""

    caught_by = ("test_known_answers",)
    lanes = (3, 2, 1, 0)


class LanesInterleaved(StreamV1):
    """Element i takes words in the order (0, 2, 1, 3), as Philox's round keeps them."""

    caught_by = ("test_known_answers",)
    lanes = (0, 2, 1, 3)


class SevenRounds(StreamV1):
    """Philox4x32-7 instead of Philox4x32-10."""

    caught_by = ("test_known_answers",)
    rounds = 7


class KeyBumpsSwapped(StreamV1):
    """The Weyl key bumps are swapped (k0 += 0xBB67AE85, k1 += 0x9E3779B9)."""

    caught_by = ("test_known_answers",)
    bumps = (PHILOX_W1, PHILOX_W0)


# ---- threshold ------------------------------------------------------------------------------


class ThresholdRounded(StreamV1):
    """t = round(p * 2**32) instead of the floor: one word value more is dropped half the time."""

    caught_by = ("test_threshold_of_a_fractional_product_is_its_floor",)

    def threshold(self, plan: DropoutPlan) -> int:
        return round(plan.p * TWO_POW_32)


class ThresholdCeiling(StreamV1):
    """t = ceil(p * 2**32) instead of the floor, for products with a fraction."""

    caught_by = ("test_threshold_of_a_fractional_product_is_its_floor",)

    def threshold(self, plan: DropoutPlan) -> int:
        return math.ceil(plan.p * TWO_POW_32)


class ThresholdInFloat32(StreamV1):
    """t = floor(float32(p) * 2**32): p rounded to float32 first."""

    caught_by = ("test_threshold_boundary",)

    def threshold(self, plan: DropoutPlan) -> int:
        return math.floor(float(np.float32(plan.p)) * TWO_POW_32)


class ThresholdSaturatesAtUint32(StreamV1):
    """t is held in a uint32, so p = 1 gives t = 2**32 - 1 and keeps a word u = 2**32 - 1."""

    caught_by = ("test_p_one_drops_the_largest_word",)

    def threshold(self, plan: DropoutPlan) -> int:
        return min(plan.threshold, TWO_POW_32 - 1)


# ---- chunks of large masks ------------------------------------------------------------------

#: The chunk of the chunking mutants: 2**20 elements, as a real backend's tiles are a power of two.
CHUNK = 1 << 20


class ChunkStartsOneBlockEarly(StreamV1):
    """Past the first 2**20 elements, each chunk starts one Philox block too early."""

    caught_by = ("test_large_array_at_chunk_edges",)

    def mask_words(self, plan: DropoutPlan) -> np.ndarray:
        n = int(np.prod(plan.mask_shape))
        parts = [self.words(plan, 0, min(n, CHUNK))]
        for start in range(CHUNK, n, CHUNK):
            count = min(CHUNK, n - start)
            parts.append(self.words(plan, start - 4, count))
        return np.concatenate(parts)


class ChunkRestartsLanes(StreamV1):
    """Chunks of 999_999 elements (not a multiple of 4), each restarting at lane 0 of its block."""

    caught_by = ("test_large_array_at_chunk_edges",)
    chunk = 999_999

    def mask_words(self, plan: DropoutPlan) -> np.ndarray:
        n = int(np.prod(plan.mask_shape))
        parts = [
            self.words(plan, start & ~3, min(self.chunk, n - start)) for start in range(0, n, self.chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


class TailFromNextBlock(StreamV1):
    """The last partial block's elements (n % 4 of them) take their words from the next block."""

    caught_by = ("test_matches_reference",)

    def mask_words(self, plan: DropoutPlan) -> np.ndarray:
        n = int(np.prod(plan.mask_shape))
        whole = n & ~3
        return np.concatenate([self.words(plan, 0, whole), self.words(plan, whole + 4, n - whole)])
