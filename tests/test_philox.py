"""The pure-Python Philox reference against the Random123 and mask-stream known answers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unidrop import arguments
from unidrop.conformance.data import known_philox_vectors, known_stream_cases
from unidrop.philox import block_words, element_word, philox4x32, stream_words


@pytest.mark.parametrize("vector", known_philox_vectors(), ids=lambda v: "-".join(v["counter"]))
def test_random123_known_answers(vector):
    out = philox4x32([int(w, 16) for w in vector["counter"]], [int(w, 16) for w in vector["key"]])
    assert [f"{w:08x}" for w in out] == vector["out"]


@pytest.mark.parametrize("case", known_stream_cases(), ids=lambda c: f"seed{c['seed']}")
def test_stream_v1_known_words_threshold_and_keep(case):
    n = math.prod(case["mask_shape"])
    words = list(stream_words(int(case["seed"]), int(case["stream"]), 0, n))
    assert words == case["words"]
    t = arguments.threshold(case["p"])
    assert t == int(case["threshold"])
    assert "".join("1" if u >= t else "0" for u in words) == case["keep"]


UINT64 = st.integers(0, (1 << 64) - 1)


@given(seed=UINT64, stream=UINT64, start=st.integers(0, 1 << 40), count=st.integers(0, 11))
def test_stream_words_are_the_words_of_each_element(seed, stream, start, count):
    expected = [element_word(seed, stream, i) for i in range(start, start + count)]
    assert list(stream_words(seed, stream, start, count)) == expected


def test_block_counter_carries_the_high_word_of_the_block_index():
    """Block 2**32 has counter (0, 1, ...): it must differ from block 0 (counter (0, 0, ...))."""
    assert block_words(5, 0, 1 << 32) != block_words(5, 0, 0)
    assert block_words(5, 0, 1 << 32) == philox4x32((0, 1, 0, 0), (5, 0))


def test_seed_and_stream_split_into_low_and_high_words():
    seed, stream = (7 << 32) | 3, (9 << 32) | 4
    assert block_words(seed, stream, 2) == philox4x32((2, 0, 4, 9), (3, 7))
