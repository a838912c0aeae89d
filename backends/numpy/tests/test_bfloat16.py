"""bfloat16 NumPy arrays (ml_dtypes' dtype): bit-exact against unidrop.reference.

The nox session pins ml_dtypes, so these run in CI; without ml_dtypes only the last tests run.
Expected bits come from the reference's float64 values: a bfloat16 value is exact in float32,
and its bits are the top half of the float32's, so no bfloat16 conversion of ml_dtypes is trusted.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
from unidrop_numpy import bfloat16
from unidrop_numpy.backend import NumpyBackend
from unidrop_numpy.chunked import dropout_array

import unidrop
from unidrop import arguments, reference

#: Every bfloat16 bit pattern, in order.
ALL_BITS = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
#: (p, seed) of the all-patterns cases; together they keep (scale) every pattern at least once.
CASES = [(1e-3, 5), (0.1, 14), (0.3, 2**40 + 1), (0.75, 17)]


def bf16_bits(values: list[float]) -> np.ndarray:
    """The bfloat16 bits of float64 values that are exact in bfloat16 (NaN as 0x7FC0)."""
    as32 = np.array(values, np.float64).astype(np.float32).view(np.uint32)
    finite = ~np.isnan(np.array(values, np.float64))
    assert not (as32[finite] & 0xFFFF).any(), "the reference gave a value that is not a bfloat16"
    return np.where(finite, as32 >> 16, 0x7FC0).astype(np.uint16)


def reference_bits(bits: np.ndarray, shape: tuple[int, ...], p: float, seed: int, stream: int = 0):
    """The reference's output bits and keep mask for bfloat16 inputs given as bits."""
    with np.errstate(invalid="ignore"):  # signalling NaN patterns
        values = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64).tolist()
    out, keep = reference.dropout(values, shape, "bfloat16", p, seed, stream)
    return bf16_bits(out), np.array(keep)


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Equal bits, except that any NaN matches any NaN (the spec keeps NaN a NaN, payload aside)."""
    nan_got = (got & 0x7FFF) > 0x7F80
    nan_want = (want & 0x7FFF) > 0x7F80
    bad = (nan_got != nan_want) | (~nan_want & (got != want))
    where = np.flatnonzero(bad)[:5]
    assert not bad.any(), (
        f"{bad.sum()} differ, first at {where.tolist()}: got {got[where]}, want {want[where]}"
    )


@pytest.fixture(scope="module")
def ml_dtypes():
    return pytest.importorskip("ml_dtypes")


@pytest.mark.parametrize(("p", "seed"), CASES)
def test_every_bit_pattern_matches_the_reference(ml_dtypes, p: float, seed: int) -> None:
    x = ALL_BITS.view(ml_dtypes.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warning on a defined result
        y, keep = unidrop.dropout(x, p, seed=seed, stream=3, return_mask=True)
    assert y.dtype == x.dtype and y.shape == x.shape and keep.dtype == bool
    want, want_keep = reference_bits(ALL_BITS, x.shape, p, seed, 3)
    assert keep.tolist() == want_keep.tolist()
    assert_same_bits(y.view(np.uint16), want)


def test_every_bit_pattern_is_kept_in_some_case_above(ml_dtypes) -> None:
    """The cases above scale every pattern at least once (not only drop it)."""
    kept = np.zeros(1 << 16, bool)
    for p, seed in CASES:
        kept |= (
            NumpyBackend()
            .implementation()
            .dropout(
                ALL_BITS.view(ml_dtypes.bfloat16),
                arguments.DropoutPlan.build((1 << 16,), "bfloat16", p, seed, 3, (), return_mask=True),
            )[1]
        )
    assert kept.all()


def test_specials(ml_dtypes) -> None:
    """NaN stays NaN, inf stays inf, the largest finite overflows to inf, subnormals scale exactly."""
    specials = [
        0x7FC0,
        0xFFC0,
        0x7F81,
        0x7F80,
        0xFF80,
        0x7F7F,
        0xFF7F,
        0x0001,
        0x007F,
        0x8001,
        0x8000,
        0x0000,
    ]
    bits = np.array(specials * 8, np.uint16)  # 96 elements: each special both kept and dropped
    x = bits.view(ml_dtypes.bfloat16).reshape(8, 12)
    y, keep = unidrop.dropout(x, 0.5, seed=123, return_mask=True)
    want, want_keep = reference_bits(bits, x.shape, 0.5, 123)
    assert keep.reshape(-1).tolist() == want_keep.tolist()
    assert {True, False} <= set(keep[:, 0].tolist())
    got = y.view(np.uint16).reshape(-1)
    assert_same_bits(got, want)
    kept = keep.reshape(-1)
    assert (got[~kept] == 0).all()  # dropped: exactly +0, NaN and inf included
    column = {b: i for i, b in enumerate(specials)}
    assert set(got.reshape(8, 12)[keep[:, column[0x7F7F]], column[0x7F7F]].tolist()) == {0x7F80}
    assert set(got.reshape(8, 12)[keep[:, column[0x0001]], column[0x0001]].tolist()) == {0x0002}


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("threads", [1, 3])
def test_chunked_threaded_and_strided(ml_dtypes, threads: int) -> None:
    """Many chunks, several threads, a Fortran-ordered and a reversed view, with broadcast_dims."""
    rng = np.random.default_rng(6)
    base = rng.integers(0, 1 << 16, (9, 13), dtype=np.uint32).astype(np.uint16).view(ml_dtypes.bfloat16)
    for x in (np.asfortranarray(base), base[::-1, ::2]):
        c = np.ascontiguousarray(x)
        plan = arguments.DropoutPlan.build(x.shape, "bfloat16", 0.4, 9, 1, (0,), return_mask=True)
        y, keep = dropout_array(x, plan, threads=threads)
        with np.errstate(invalid="ignore"):  # signalling NaN patterns
            values = ((c.view(np.uint16).astype(np.uint32) << 16).view(np.float32)).astype(np.float64)
        out, want_keep = reference.dropout(values.reshape(-1).tolist(), x.shape, "bfloat16", 0.4, 9, 1, (0,))
        assert keep.reshape(-1).tolist() == want_keep
        assert_same_bits(np.ascontiguousarray(y).view(np.uint16).reshape(-1), bf16_bits(out))


def test_scalar_gives_a_scalar(ml_dtypes) -> None:
    x = ml_dtypes.bfloat16(3.0)
    y = unidrop.dropout(x, 0.5, seed=1)
    assert type(y) is ml_dtypes.bfloat16
    want, _ = reference_bits(np.array([0x4040], np.uint16), (), 0.5, 1)
    assert np.array(y).view(np.uint16).reshape(1).tolist() == want.tolist()


def test_declared_and_round_trips_for_the_suite(ml_dtypes) -> None:
    adapter = NumpyBackend().suite_adapter()
    assert adapter.dtypes() == {"float16", "bfloat16", "float32", "float64"}
    x = adapter.from_numpy(np.array([1.5, -2.0, np.inf], np.float32), "bfloat16")
    assert x.dtype == np.dtype(ml_dtypes.bfloat16) and adapter.shape_and_dtype(x) == ((3,), "bfloat16")
    back = adapter.to_numpy(x)
    assert back.dtype == np.float32 and back.tolist() == [1.5, -2.0, np.inf]


def test_float8_is_refused_naming_its_dtype(ml_dtypes) -> None:
    x = np.ones(4, ml_dtypes.float8_e4m3fn)
    message = r"not support dtype float8_e4m3fn; the supported floating dtypes: float16, bfloat16, float32"
    with pytest.raises(TypeError, match=message):
        unidrop.dropout(x, 0.5, seed=1)


# -- without ml_dtypes --------------------------------------------------------------------------


@pytest.fixture
def without_ml_dtypes(monkeypatch: pytest.MonkeyPatch):
    """ml_dtypes neither imported nor importable (a None entry in sys.modules blocks the import)."""
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)
    bfloat16._findable.cache_clear()
    yield
    bfloat16._findable.cache_clear()


@pytest.mark.usefixtures("without_ml_dtypes")
def test_without_ml_dtypes_bfloat16_is_not_declared() -> None:
    adapter = NumpyBackend().suite_adapter()
    assert adapter.dtypes() == {"float16", "float32", "float64"}
    with pytest.raises(TypeError, match=r"bfloat16 NumPy arrays need the ml_dtypes package"):
        adapter.from_numpy(np.ones(3, np.float32), "bfloat16")
    y = unidrop.dropout(np.ones(8, np.float32), 0.5, seed=1)  # everything else works
    assert y.dtype == np.float32


def test_another_librarys_bfloat16_is_not_taken_for_ml_dtypes() -> None:
    class bfloat16_like:  # named like the scalar type of such a library
        __module__ = "otherlib"

    fake = types.SimpleNamespace(name="bfloat16", type=bfloat16_like)
    assert bfloat16.dtype_name(fake) == "otherlib.bfloat16"
    assert bfloat16.dtype_name(np.dtype(np.float16)) == "float16"


def test_a_byte_swapped_bfloat16_array_gets_its_native_copys_result(ml_dtypes) -> None:
    """'>bfloat16' through the pure-NumPy kernel: its output was written as native-order bits into
    the big-endian array (values such as 3.8e-29 for 9.0). The result is the native copy's, in the
    input's byte order."""
    native = (np.arange(1, 41) * 1.5).astype(ml_dtypes.bfloat16)
    swapped = native.astype(native.dtype.newbyteorder(">"))
    plan = arguments.DropoutPlan.build(native.shape, "bfloat16", 0.5, 1, 0)
    y, _ = dropout_array(swapped, plan)
    want, _ = dropout_array(native, plan)
    assert y.dtype == swapped.dtype
    assert_same_bits(y.astype(native.dtype).view(np.uint16), want.view(np.uint16))
