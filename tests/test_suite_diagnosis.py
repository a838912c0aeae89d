"""The conformance suite's hints: a wrong keep mask is matched to the slip that made it.

Each slipped mask is made here from the pure-Python stream (unidrop.philox), by the slip's own
definition; the hint must name that slip, and a right or unrelated mask gets no hint.
"""

from __future__ import annotations

import random

import pytest

from unidrop import arguments
from unidrop.conformance.diagnosis import mask_hint
from unidrop.philox import MASK32, stream_words

SEED, STREAM, P = (7 << 32) | 11, 3, 0.5
SHAPE = (6, 7)
COUNT = 42


def keep(words: list[int]) -> list[bool]:
    t = arguments.threshold(P)
    return [u >= t for u in words]


def words(seed: int = SEED, stream: int = STREAM, start: int = 0, count: int = COUNT) -> list[int]:
    return list(stream_words(seed, stream, start, count))


def reversed_lanes() -> list[int]:
    w = words(count=COUNT + 4)
    return [u for b in range(0, COUNT, 4) for u in reversed(w[b : b + 4])][:COUNT]


SLIPS = {
    "inverted": ([not k for k in keep(words())], "inverted"),
    "one-ahead": (keep(words(start=1)), "one element ahead"),
    "block-ahead": (keep(words(start=4)), "not (i >> 2) + 1"),
    "one-behind": ([True, *keep(words(count=COUNT - 1))], "one element behind"),
    "block-behind": ([False] * 4 + keep(words(count=COUNT - 4)), "not (i >> 2) - 1"),
    "lanes-reversed": (keep(reversed_lanes()), "reverse order"),
    "stream-ignored": (keep(words(stream=0)), "of stream 0"),
    "seed-low-word": (keep(words(seed=SEED & MASK32)), "low 32 bits alone"),
    "key-swapped": (keep(words(seed=((SEED & MASK32) << 32) | (SEED >> 32))), "key's words swapped"),
}


@pytest.mark.parametrize("slip", sorted(SLIPS))
def test_a_slipped_mask_is_named(slip: str) -> None:
    got, named = SLIPS[slip]
    assert got != keep(words()), "the slip must change the mask"
    hint = mask_hint(got, SEED, STREAM, P, SHAPE)
    assert named in hint, hint


def test_the_right_mask_a_random_one_and_a_small_one_get_no_hint() -> None:
    right = keep(words())
    assert mask_hint(right, SEED, STREAM, P, SHAPE) == ""
    unrelated = [random.Random(5).random() < 0.5 for _ in range(COUNT)]
    assert mask_hint(unrelated, SEED, STREAM, P, SHAPE) == ""
    small = [not k for k in keep(words(count=8))]
    assert mask_hint(small, SEED, STREAM, P, (8,)) == ""


def test_a_mask_of_one_value_gets_no_hint() -> None:
    """At p near 0 every slip gives all-kept: nothing tells them apart."""
    assert mask_hint([False] * COUNT, SEED, STREAM, 1e-12, SHAPE) == ""
