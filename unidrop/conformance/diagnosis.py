"""What a wrong keep mask most likely got wrong: a hint for the suite's failure messages.

When a backend's mask differs from the reference's, :func:`mask_hint` compares it with the masks
that the usual slips of a new backend would give (the mask inverted, the counter off by one
element or by one Philox block, the stream ignored, the seed's high word lost, the key's words
swapped, the lanes of a block reversed) and names the slip whose mask it is, exactly. The hint
only adds to a failure: the assertion itself compares with the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from unidrop import arguments
from unidrop.philox import MASK32, stream_words

#: Below this many mask elements two slips can give the same mask by chance: no hint.
MIN_ELEMENTS = 16


def mask_hint(got: Sequence[bool], seed: int, stream: int, p: float, mask_shape: Sequence[int]) -> str:
    """A sentence naming the slip whose mask ``got`` is (the keep bits of a whole array of
    ``mask_shape``, C order), or ``""`` if none fits or the mask is too small to tell."""
    got = [bool(k) for k in got]
    count = math.prod(mask_shape)
    t = arguments.threshold(p)
    if count < MIN_ELEMENTS or len(got) != count:
        return ""
    words = list(stream_words(seed, stream, 0, count + 4))
    want = [u >= t for u in words[:count]]
    if got == want or all(want) or not any(want):  # a mask of one value fits every slip
        return ""
    for hint, fits in _slips(seed, stream, t, count, words):
        if fits(got):
            return f" Hint: this is the mask {hint}."
    return ""


def _slips(
    seed: int, stream: int, t: int, count: int, words: list[int]
) -> list[tuple[str, Callable[[list[bool]], bool]]]:
    """The usual slips: what each one is, and whether a mask is the one it gives."""

    def keep_of(seed_: int, stream_: int) -> list[bool]:
        return [u >= t for u in stream_words(seed_, stream_, 0, count)]

    def equals(mask: list[bool]) -> Callable[[list[bool]], bool]:
        return lambda got: got == mask

    def behind(steps: int) -> Callable[[list[bool]], bool]:  # element i took word u_(i - steps)
        return lambda got: got[steps:] == [u >= t for u in words[: count - steps]]

    slips: list[tuple[str, Callable[[list[bool]], bool]]] = [
        (
            "inverted: keep is True where an element is kept (u >= t) and False where dropped (u < t)",
            equals([u < t for u in words[:count]]),
        ),
        (
            "with element i taking word u_(i+1): the counter is one element ahead",
            equals([u >= t for u in words[1 : count + 1]]),
        ),
        (
            "with element i taking word u_(i+4): the Philox block of element i is i >> 2, not (i >> 2) + 1",
            equals([u >= t for u in words[4 : count + 4]]),
        ),
        ("with element i taking word u_(i-1): the counter is one element behind", behind(1)),
        (
            "with element i taking word u_(i-4): the Philox block of element i is i >> 2, not (i >> 2) - 1",
            behind(4),
        ),
        (
            "with each block's four words in reverse order: element 4b + j takes word j of block b "
            "(c0, c1, c2, c3 after the rounds)",
            equals([u >= t for b in range(0, count, 4) for u in reversed(words[b : b + 4])][:count]),
        ),
    ]
    if stream:
        slips.append(("of stream 0: the stream must be the counter's words c2, c3", equals(keep_of(seed, 0))))
    if seed >> 32:
        slips.append(
            (
                "of the seed's low 32 bits alone: the key is (seed & 0xFFFFFFFF, seed >> 32)",
                equals(keep_of(seed & MASK32, stream)),
            )
        )
    swapped = ((seed & MASK32) << 32) | (seed >> 32)
    if swapped != seed:
        slips.append(
            (
                "of the key's words swapped: k0 is the seed's low 32 bits, k1 its high 32 bits",
                equals(keep_of(swapped, stream)),
            )
        )
    return slips
