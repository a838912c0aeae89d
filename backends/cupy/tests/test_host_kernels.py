"""Exactness of the CUDA kernels' code, compiled for the host: no GPU needed.

The shared library runs the per-thread functions of ``unidrop_dropout.cuh`` for every thread
index, with the launch layout chosen by :mod:`unidrop_cupy.layout`; every expected value
comes from :mod:`unidrop.reference`, :mod:`unidrop.philox` or the known-answer file.
"""

from __future__ import annotations

import ctypes
import json
import math
import random
import struct
from importlib import resources

import numpy as np
import pytest
from _host import (
    DTYPES,
    assert_bits_equal,
    build,
    expected,
    from_storage,
    host_apply,
    host_dropout,
    to_storage,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from unidrop import arguments, reference
from unidrop.philox import block_words

SEEDS = [0, 1, 42, (1 << 32) - 1, 1 << 32, 0x0123456789ABCDEF, (1 << 64) - 1]
STREAMS = [0, 3, (1 << 32) - 1, 1 << 32, 0xFEDCBA9876543210, (1 << 64) - 1]


def known_answers() -> dict:
    text = (resources.files("unidrop.conformance") / "known_answers.json").read_text()
    return json.loads(text)


def values_for(dtype: str, count: int, seed: int, specials: bool = True) -> list[float]:
    """Inputs representable in ``dtype``: wide-ranging magnitudes, signs, and special values."""
    rng = random.Random(seed)
    top = {"float16": 15, "bfloat16": 120, "float32": 120, "float64": 1000}[dtype]
    out = []
    for _ in range(count):
        r = rng.random()
        if specials and r < 0.03:
            v = rng.choice([math.nan, math.inf, -math.inf, 0.0, -0.0])
        elif r < 0.15:
            v = rng.choice([-1.0, 1.0]) * 2.0 ** rng.randint(-top - 12, top)  # powers, subnormals
        else:
            v = rng.gauss(0.0, 1.0) * 2.0 ** rng.randint(-top // 2, top // 2)
        out.append(reference.round_to(v, dtype))
    return out


def storage_array(values: list[float], shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return to_storage(values, dtype).reshape(shape)


def check(
    lib: ctypes.CDLL,
    x: np.ndarray,
    dtype: str,
    p: float,
    seed: int,
    stream: int = 0,
    broadcast_dims: tuple[int, ...] = (),
    **kw: object,
) -> str:
    """Run the host kernels on ``x`` (storage bits, any layout) and compare with the reference."""
    values = from_storage(np.ascontiguousarray(x).reshape(-1), dtype).tolist()
    shape = tuple(x.shape)
    want, want_keep = expected(
        values, shape, dtype, p, seed, stream, broadcast_dims, kw.get("mask_offset", 0)
    )
    y, keep, kind = host_dropout(lib, x, dtype, p, seed, stream, broadcast_dims, **kw)
    where = f"{kind} {dtype} shape={shape} strides={x.strides} p={p} seed={seed} stream={stream}"
    where += f" broadcast_dims={broadcast_dims}"
    assert_bits_equal(y, want, dtype, where)
    got_keep = np.ascontiguousarray(keep).reshape(-1).tolist()
    assert got_keep == [int(k) for k in want_keep], f"{where}: keep mask differs"
    return kind


# -- Philox and the 16-bit conversions -------------------------------------------------------


def test_layout_struct_size_matches_python(host_lib: ctypes.CDLL) -> None:
    assert host_lib.host_layout_size() == 8 + 5 * 8 * 8


def test_philox_known_answers(host_lib: ctypes.CDLL) -> None:
    out = (ctypes.c_uint32 * 4)()
    for case in known_answers()["philox4x32_10"]:
        c = [int(w, 16) for w in case["counter"]]
        k = [int(w, 16) for w in case["key"]]
        host_lib.host_philox_block(c[0] | (c[1] << 32), k[0], k[1], c[2], c[3], out)
        assert [f"{w:08x}" for w in out] == case["out"]


def test_stream_v1_known_answers(host_lib: ctypes.CDLL) -> None:
    for case in known_answers()["stream_v1"]:
        seed, stream, p = int(case["seed"]), int(case["stream"]), case["p"]
        shape = tuple(case["mask_shape"])
        x = storage_array([1.0] * math.prod(shape), shape, "float32")
        _, keep, _ = host_dropout(host_lib, x, "float32", p, seed, stream)
        assert "".join(str(int(k)) for k in keep.reshape(-1)) == case["keep"]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stream", STREAMS)
def test_philox_blocks_match_reference_across_the_counter_split(
    host_lib: ctypes.CDLL, seed: int, stream: int
) -> None:
    out = (ctypes.c_uint32 * 4)()
    for block in [
        0,
        1,
        (1 << 32) - 2,
        (1 << 32) - 1,
        1 << 32,
        (1 << 32) + 1,
        (1 << 62) + 12345,
        (1 << 64) - 1,
    ]:
        host_lib.host_philox_block(
            block, seed & 0xFFFFFFFF, seed >> 32, stream & 0xFFFFFFFF, stream >> 32, out
        )
        assert tuple(out) == block_words(seed, stream, block), (seed, stream, block)


def _float32_patterns() -> np.ndarray:
    """Float32 bit patterns around every place rounding to 16 bits can go wrong."""
    rng = np.random.default_rng(7)
    highs = np.arange(1 << 16, dtype=np.uint32) << 16  # every sign/exponent/top-mantissa combination
    lows = np.array([0, 1, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001, 0xFFFF],
                    np.uint32)  # fmt: skip
    grid = (highs[:, None] | lows[None, :]).reshape(-1)
    return np.concatenate([grid, rng.integers(0, 1 << 32, 200_000, dtype=np.uint32)])


def test_float16_rounding_matches_reference(host_lib: ctypes.CDLL) -> None:
    bits = _float32_patterns()
    out = np.empty(bits.size, np.uint16)
    host_lib.host_f32_to_f16(bits.ctypes.data, out.ctypes.data, bits.size)
    with np.errstate(invalid="ignore", over="ignore"):
        values = bits.view(np.float32).astype(np.float64)
        # All of them against NumPy's correctly rounded cast, a sample against the reference.
        want_np = values.astype(np.float16)
    finite = ~np.isnan(values)
    assert np.array_equal(out[finite], want_np.view(np.uint16)[finite])
    assert np.all(np.isnan(out[~finite].view(np.float16)))
    sample = np.random.default_rng(1).choice(bits.size, 20_000, replace=False)
    for i in sample[finite[sample]]:
        want = struct.unpack("<H", struct.pack("<e", reference.round_to(float(values[i]), "float16")))[0]
        assert int(out[i]) == want, hex(int(bits[i]))


def test_bfloat16_rounding_matches_reference(host_lib: ctypes.CDLL) -> None:
    bits = _float32_patterns()
    out = np.empty(bits.size, np.uint16)
    host_lib.host_f32_to_bf16(bits.ctypes.data, out.ctypes.data, bits.size)
    with np.errstate(invalid="ignore"):
        values = bits.view(np.float32).astype(np.float64)
    nan = np.isnan(values)
    assert np.all((out[nan] & 0x7F80) == 0x7F80) and np.all(out[nan] & 0x7F)  # NaN stays NaN
    sample = np.random.default_rng(2).choice(np.flatnonzero(~nan), 60_000, replace=False)
    for i in sample:
        r = reference.round_to(float(values[i]), "bfloat16")
        want = struct.unpack("<I", struct.pack("<f", r))[0] >> 16
        assert int(out[i]) == want, hex(int(bits[i]))


def test_float16_widening_is_exact_for_every_pattern(host_lib: ctypes.CDLL) -> None:
    bits = np.arange(1 << 16, dtype=np.uint16)
    out = np.empty(bits.size, np.uint32)
    host_lib.host_f16_to_f32(bits.ctypes.data, out.ctypes.data, bits.size)
    got = out.view(np.float32)
    for b in range(1 << 16):
        want = struct.unpack("<e", struct.pack("<H", b))[0]
        if math.isnan(want):
            assert math.isnan(got[b])
        else:
            assert float(got[b]) == want and math.copysign(1, float(got[b])) == math.copysign(1, want), hex(b)


# -- the fast kernel ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 257, 1000])
def test_contiguous_kernel_matches_reference(host_lib: ctypes.CDLL, dtype: str, n: int) -> None:
    x = storage_array(values_for(dtype, n, seed=n), (n,), dtype)
    for p, seed, stream in [(0.5, 0, 0), (0.1, 42, 7), (0.9, (1 << 64) - 1, 1 << 40), (1e-9, 5, 0)]:
        assert check(host_lib, x, dtype, p, seed, stream) == "contig-vec"


@pytest.fixture(scope="module", params=[{"float16": 1, "float32": 2, "float64": 2}, {"float16": 4}])
def tuned_lib(request: pytest.FixtureRequest, host_lib: ctypes.CDLL, tmp_path_factory) -> ctypes.CDLL:
    """The host build with other blocks-per-thread settings (a benchmark knob)."""
    return build(tmp_path_factory.mktemp("unidrop_tuned"), request.param)


@pytest.mark.parametrize("dtype", DTYPES)
def test_other_blocks_per_thread_give_the_same_result(tuned_lib: ctypes.CDLL, dtype: str) -> None:
    for n in (1, 7, 8, 9, 33, 1000):
        x = storage_array(values_for(dtype, n, seed=n), (n,), dtype)
        assert check(tuned_lib, x, dtype, 0.3, 17, 1 << 36) == "contig-vec"
        check(tuned_lib, x[1:], dtype, 0.3, 17, 1 << 36)
        check(tuned_lib, x, dtype, 0.3, 17, 1 << 36, mask_offset=4 * ((1 << 32) - 3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_contiguous_kernel_unaligned_input_takes_scalar_loads(host_lib: ctypes.CDLL, dtype: str) -> None:
    base = storage_array(values_for(dtype, 203, seed=3), (203,), dtype)
    assert check(host_lib, base[1:], dtype, 0.3, 99, 1) == "contig"  # one item off: never aligned
    for k in (2, 3, 5):
        check(host_lib, base[k:], dtype, 0.3, 99, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (4, 1, 9), (1, 1), (), (6, 7, 1, 2)])
def test_contiguous_multidimensional_arrays_use_the_fast_kernel(
    host_lib: ctypes.CDLL, dtype: str, shape: tuple[int, ...]
) -> None:
    x = storage_array(values_for(dtype, math.prod(shape), seed=11), shape, dtype)
    assert check(host_lib, x, dtype, 0.4, 2024, 0).startswith("contig")


# -- the general kernel: strides, broadcast dims ---------------------------------------------


def _views(dtype: str):
    """(name, view) pairs: non-contiguous layouts of the same kind of data."""
    a = storage_array(values_for(dtype, 6 * 7 * 5, seed=21), (6, 7, 5), dtype)
    yield "fortran", np.asfortranarray(a)
    yield "transpose", a.transpose(2, 0, 1)
    yield "reversed", a[::-1, :, ::-1]
    yield "stepped", a[::2, 1::3, :]
    yield "column", a[:, 3, :]
    b = storage_array(values_for(dtype, 40 * 9, seed=22), (40, 9), dtype)
    yield "negative-2d", b[::-3, ::-2]
    yield "fortran-2d", np.asfortranarray(b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_inputs_match_reference(host_lib: ctypes.CDLL, dtype: str) -> None:
    for name, view in _views(dtype):
        assert check(host_lib, view, dtype, 0.35, 1234567, 9) == "strided", name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("broadcast_dims", [(0,), (1,), (2,), (0, 1), (1, 2), (0, 2), (0, 1, 2), (-1,)])
def test_broadcast_dims_match_reference(
    host_lib: ctypes.CDLL, dtype: str, broadcast_dims: tuple[int, ...]
) -> None:
    a = storage_array(values_for(dtype, 5 * 6 * 7, seed=5), (5, 6, 7), dtype)
    for x in (a, np.asfortranarray(a), a[:, ::-1, :]):
        assert check(host_lib, x, dtype, 0.5, 77, 1 << 33, broadcast_dims) == "strided"


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_over_empty_or_unit_axes(host_lib: ctypes.CDLL, dtype: str) -> None:
    a = storage_array(values_for(dtype, 4 * 1 * 6, seed=8), (4, 1, 6), dtype)
    check(host_lib, a, dtype, 0.5, 3, 0, (1,))  # broadcast over a size-1 axis: no broadcast at all
    check(host_lib, a, dtype, 0.5, 3, 0, (0, 2))  # only the size-1 axis draws: one mask element


@pytest.mark.parametrize("dtype", DTYPES)
def test_sixty_four_bit_index_path_matches_reference(host_lib: ctypes.CDLL, dtype: str) -> None:
    a = storage_array(values_for(dtype, 6 * 10, seed=9), (6, 10), dtype)
    check(host_lib, np.asfortranarray(a), dtype, 0.5, 10, 20, (), wide_index=True)
    check(host_lib, a, dtype, 0.5, 10, 20, (0,), wide_index=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_general_kernel_on_contiguous_input_agrees_with_fast_kernel(
    host_lib: ctypes.CDLL, dtype: str
) -> None:
    x = storage_array(values_for(dtype, 123, seed=12), (123,), dtype)
    fast = host_dropout(host_lib, x, dtype, 0.25, 8, 8)
    general = host_dropout(host_lib, x, dtype, 0.25, 8, 8, force_strided=True)
    assert fast[2].startswith("contig") and general[2] == "strided"
    assert np.array_equal(fast[0], general[0]) and np.array_equal(fast[1], general[1])


# -- 64-bit counters: start indices whose Philox blocks cross 2^32 ---------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_counter_split_fast_kernel(host_lib: ctypes.CDLL, dtype: str) -> None:
    x = storage_array(values_for(dtype, 61, seed=13), (61,), dtype)
    for first_block in [(1 << 32) - 5, (1 << 33) - 2, (1 << 60) + 3]:
        kind = check(host_lib, x, dtype, 0.5, (1 << 64) - 7, (1 << 32) + 1, mask_offset=4 * first_block)
        assert kind == "contig-vec"


@pytest.mark.parametrize("dtype", DTYPES)
def test_counter_split_general_kernel(host_lib: ctypes.CDLL, dtype: str) -> None:
    a = storage_array(values_for(dtype, 7 * 9, seed=14), (7, 9), dtype)
    for offset in [(1 << 34) - 13, 4 * ((1 << 32) - 3) + 1]:
        check(host_lib, np.asfortranarray(a), dtype, 0.6, 1 << 40, 5, (), mask_offset=offset)
        check(host_lib, a, dtype, 0.6, 1 << 40, 5, (1,), mask_offset=offset)
        check(host_lib, a, dtype, 0.6, 1 << 40, 5, (), mask_offset=offset, wide_index=True)


# -- p at the edges, special values --------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_p_edges(host_lib: ctypes.CDLL, dtype: str) -> None:
    x = storage_array(values_for(dtype, 50, seed=15), (50,), dtype)
    for p in [2.0**-32, 0.5 - 2.0**-33, 0.5, 1.0 - 2.0**-32, 0.999]:
        check(host_lib, x, dtype, p, 31337, 2)


def test_float16_overflow_after_scaling_gives_inf(host_lib: ctypes.CDLL) -> None:
    x = storage_array([65504.0, -65504.0, 40000.0, 2.0**-24, -(2.0**-24)] * 8, (40,), "float16")
    check(host_lib, x, "float16", 0.5, 0, 0)


# -- the saved-mask kernel ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("broadcast_dims", [(), (0,), (2,), (0, 2)])
def test_apply_saved_mask_matches_reference(
    host_lib: ctypes.CDLL, dtype: str, broadcast_dims: tuple[int, ...]
) -> None:
    shape = (3, 4, 5)
    values = values_for(dtype, 60, seed=16)
    g = storage_array(values, shape, dtype)
    p, seed = 0.3, 555
    want, keep = reference.dropout(values, shape, dtype, p, seed, 0, broadcast_dims)
    mshape = arguments.mask_shape(shape, broadcast_dims)
    keep_arr = np.array(keep, np.uint8).reshape(mshape)
    for view_g, want_order in [(g, want), (np.asfortranarray(g), want)]:
        y = host_apply(host_lib, view_g, keep_arr, dtype, p)
        assert_bits_equal(y, want_order, dtype, f"apply {dtype} {broadcast_dims}")


# -- any layout, any broadcast: a property ---------------------------------------------------


@st.composite
def layouts(draw: st.DrawFn) -> tuple[str, np.ndarray, tuple[int, ...], int, int, float]:
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    base = storage_array(values_for(dtype, math.prod(shape), seed=draw(st.integers(0, 99))), shape, dtype)
    view = base
    if ndim:
        order = draw(st.permutations(range(ndim)))
        view = np.ascontiguousarray(base.transpose(order)).transpose(np.argsort(order))  # same values
        steps = tuple(draw(st.sampled_from([1, -1])) for _ in range(ndim))
        view = view[tuple(slice(None, None, s) for s in steps)]
    bd = tuple(sorted(draw(st.sets(st.integers(0, max(ndim - 1, 0)), max_size=ndim)))) if ndim else ()
    seed = draw(st.sampled_from(SEEDS))
    stream = draw(st.sampled_from(STREAMS))
    p = draw(st.sampled_from([0.1, 0.5, 0.75]))
    return dtype, view, bd, seed, stream, p


@settings(max_examples=60, deadline=None, derandomize=True)
@given(layouts())
def test_any_layout_and_broadcast_matches_reference(host_lib: ctypes.CDLL, case) -> None:
    dtype, x, bd, seed, stream, p = case
    check(host_lib, x, dtype, p, seed, stream, bd)
