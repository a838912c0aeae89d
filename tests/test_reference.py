"""The pure-Python reference dropout: rounding, scaling and the worked example of docs/spec.md."""

from __future__ import annotations

import math

import pytest

from unidrop import reference


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        (1 / 3, "float32", 0.3333333432674408),  # 0x3EAAAAAB
        (1 / 3, "float16", 0.333251953125),  # 0x3555
        (1 / 3, "bfloat16", 0.333984375),  # 0x3EAB
        (1.00390625, "bfloat16", 1.0),  # exactly halfway between 1 and 1+2^-7: ties to even
        (1.01171875, "bfloat16", 1.015625),  # halfway, rounds up to the even neighbour
        (65519.0, "float16", 65504.0),
        (65520.0, "float16", math.inf),
        (3.5e38, "float32", math.inf),
        (-3.5e38, "bfloat16", -math.inf),
        (2.0**-25, "float16", 0.0),  # half the smallest subnormal: ties to even (zero)
        (3 * 2.0**-25, "float16", 2.0**-23),  # 1.5 subnormal quanta: ties to even (2 quanta)
        (-(2.0**-26), "float16", -0.0),
        (1 + 2.0**-24, "float32", 1.0),
        (1 + 3 * 2.0**-24, "float32", 1 + 2.0**-22),
        (2.0**-150, "float32", 0.0),
        (1.5 * 2.0**-149, "float32", 2.0**-148),
    ],
)
def test_round_to_nearest_even(value, dtype, expected):
    got = reference.round_to(value, dtype)
    assert got == expected
    assert math.copysign(1.0, got) == math.copysign(1.0, expected)


def test_scale_rounds_s_to_the_compute_dtype_and_product_back():
    # p = 0.1: s = 1/0.9 = 1.1111111111111112 in float64, 1.1111111640930176 in float32.
    assert reference.scaled(1.0, "float64", 0.1) == 1.1111111111111112
    assert reference.scaled(1.0, "float32", 0.1) == 1.1111111640930176
    # float16: 1.1111111640930176 rounded to half is 1.111328125
    assert reference.scaled(1.0, "float16", 0.1) == 1.111328125


def test_worked_example_of_the_spec():
    """docs/spec.md, 'A worked example': seed 42, p 0.1, shape (3, 5), input 1..15."""
    values = [float(v) for v in range(1, 16)]
    out, keep = reference.dropout(values, (3, 5), "float32", 0.1, seed=42)
    assert keep == [c == "1" for c in "110111111111111"]
    assert out[2] == 0.0
    assert out[0] == 1.1111111640930176
    assert out[14] == 16.666667938232422  # 15 * 1.1111111640930176 rounded to float32


def test_broadcast_dims_share_one_mask_value():
    out, keep = reference.dropout([1.0] * 12, (3, 4), "float64", 0.5, seed=1, broadcast_dims=(0,))
    assert len(keep) == 4
    rows = [out[i * 4 : (i + 1) * 4] for i in range(3)]
    assert rows[0] == rows[1] == rows[2]


def test_flat_mask_index():
    assert reference.flat_mask_index(5, (2, 3), (1, 3)) == 2
    assert reference.flat_mask_index(5, (2, 3), (2, 1)) == 1
    assert reference.flat_mask_index(23, (2, 3, 4), (2, 1, 4)) == 7


def test_alpha_dropout_of_a_value_overflowing_float64_allows_infinity():
    """``x * a + c`` past float64's range once rounded: both allowed results are a signed inf
    (the exact rational sum once raised OverflowError)."""
    p = 0.999  # a = 1 / sqrt((ALPHA**2 p + 1)(1 - p)) is about 18: 1.7e308 * a overflows
    allowed, keep = reference.alpha_dropout([1.7e308, -1.7e308] * 32, (64,), "float64", p, 1)
    kept = [pair for pair, k in zip(allowed, keep, strict=True) if k]
    assert kept, "seed 1 keeps one of the 64 elements"
    for (twice, once), sign in zip(allowed, [1.0, -1.0] * 32, strict=True):
        if (twice, once) in kept:
            assert twice == once == math.copysign(math.inf, sign)


def test_gaussian_bound_holds_for_results_among_the_subnormals():
    """A float32 result near 1e-45 is rounded to a multiple of 2**-149 whatever the noise: the
    bound must take that absolute rounding (a purely relative one failed a correct backend)."""
    np = pytest.importorskip("numpy")
    import unidrop

    x = np.full(64, 1e-45, np.float32)
    want, bounds = reference.gaussian_dropout(x.astype(float).tolist(), (64,), "float32", 0.3, 7)
    got = unidrop.gaussian_dropout(x, 0.3, seed=7).astype(float)
    assert all(abs(g - w) <= b for g, w, b in zip(got, want, bounds, strict=True))
    assert all(b <= 2.0**-149 + 32 * 2.0**-23 * 1e-45 * 10 for b in bounds), "and no looser than that"


def test_alpha_dropout_at_p_zero_is_the_input_itself_minus_zero_included():
    """unidrop.alpha_dropout returns x itself at p == 0; the reference's allowed values are x's
    (it computed -0 * 1 + 0 = +0)."""
    allowed, keep = reference.alpha_dropout([-0.0, 1.5, -2.25], (3,), "float32", 0.0, 1)
    assert keep == [True, True, True]
    assert [math.copysign(1.0, pair[0]) for pair in allowed] == [-1.0, 1.0, -1.0]
    assert allowed == [(-0.0, -0.0), (1.5, 1.5), (-2.25, -2.25)]
