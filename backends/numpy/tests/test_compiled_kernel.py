"""The compiled kernel, unidrop_numpy._kernel: bit-exact against unidrop.reference for every dtype,
layout, broadcast, seed and stream, at tile and thread boundaries and at mask indices past 2^32.

Skipped, saying so, where the extension was not built (the pure-NumPy kernel then runs; the
conformance session with UNIDROP_NUMPY_KERNEL=compiled fails instead of skipping).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest
from unidrop_numpy import compiled
from unidrop_numpy.implementation import NumpyImplementation

from unidrop import DropoutPlan, arguments, reference
from unidrop.philox import stream_words

if not compiled.available():
    pytest.skip(f"unidrop_numpy._kernel is not built: {compiled.describe(False)}", allow_module_level=True)

from unidrop_numpy import _kernel

ml_dtypes = pytest.importorskip("ml_dtypes")
DTYPES = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
TILE = _kernel.TILE_ELEMENTS


def plan_for(x: np.ndarray, dtype: str, p: float, seed: int, stream: int, dims=(), mask=True) -> DropoutPlan:
    return DropoutPlan.build(x.shape, dtype, p, seed, stream, dims, mask)


def expected(x: np.ndarray, dtype: str, p: float, seed: int, stream: int, dims=()):
    """Reference outputs (as float64, C order of x's shape) and keep bits, from unidrop.reference."""
    with np.errstate(invalid="ignore"):  # bfloat16 NaNs widen with a warning: they stay NaN
        values = np.ascontiguousarray(x).astype(np.float64).ravel().tolist()
    out, keep = reference.dropout(values, x.shape, dtype, p, seed, stream, dims)
    return np.array(out, np.float64).reshape(x.shape), keep


def assert_exact(y: np.ndarray, want: np.ndarray, what: str) -> None:
    got = y.astype(np.float64)
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"{what}: {int((~same).sum())} of {y.size} differ, first at {np.argwhere(~same)[0]}"


def check(x: np.ndarray, dtype: str, p: float, seed: int, stream: int, dims=(), threads: int = 1) -> None:
    before = x.copy()
    plan = plan_for(x, dtype, p, seed, stream, dims)
    y, keep = compiled.dropout(x, plan, threads)
    want, want_keep = expected(x, dtype, p, seed, stream, dims)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert_exact(y, want, f"{dtype} {x.shape} strides {x.strides} dims {dims}")
    assert keep is not None and keep.ravel().tolist() == want_keep
    assert x.tobytes() == before.tobytes()  # input untouched


def values(shape, dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 100
    flat = x.reshape(-1)
    specials = [np.nan, np.inf, -np.inf, -0.0, 1e-40, 65519.0, 3e38]  # NaN, Inf, subnormal, overflow
    flat[: len(specials)] = specials[: flat.size]
    with np.errstate(over="ignore"):  # 3e38 overflows to inf in 16-bit dtypes: intended
        return x.astype(DTYPES[dtype])


LAYOUTS = {
    "c": lambda a: a,
    "fortran-3d": np.asfortranarray,
    "negative": lambda a: a[::-1, :, ::-2],
    "zero-stride": lambda a: np.broadcast_to(a[:, :1], a.shape),
    "non-contiguous": lambda a: a[1:, ::3],
    "transposed": lambda a: a.transpose(2, 0, 1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dims", [(), (0,), (2,), (1,), (0, 2)])
def test_layouts_and_broadcasts_match_the_reference(dtype: str, layout: str, dims) -> None:
    x = LAYOUTS[layout](values((5, 6, 7), dtype))
    check(x, dtype, 0.3, 2**40 + 5, 2**33 + 1, dims)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("seed", "stream"), [(0, 0), (2**32, 1), (2**64 - 1, 2**64 - 1), (0x1234_5678_9ABC_DEF0, 2**32 + 7)]
)
def test_seeds_and_streams_past_32_bits(dtype: str, seed: int, stream: int) -> None:
    check(values((37,), dtype), dtype, 0.5, seed, stream)


@pytest.mark.parametrize("p", [1e-12, 2.0**-32, 0.1, 0.5, 0.9, 1 - 2.0**-30, np.nextafter(1.0, 0.0)])
def test_p_edge_cases(p: float) -> None:
    check(values((3, 41), "float32"), "float32", float(p), 7, 3)


def test_zero_d_input() -> None:
    check(np.array(2.5, np.float32), "float32", 0.5, 1, 0)


@pytest.mark.parametrize("n", [TILE - 1, TILE, TILE + 1, 2 * TILE + 3])
@pytest.mark.parametrize("cut", [0, 1, 3])
def test_tile_boundaries(n: int, cut: int) -> None:
    """Runs that start mid-block (a sliced axis) and cross tiles of TILE_ELEMENTS elements."""
    x = values((2, n + cut), "float32")[:, cut:]
    check(x, "float32", 0.25, 11, 2)


def test_results_do_not_depend_on_the_thread_count() -> None:
    n = 5 * compiled.MIN_ELEMENTS_PER_THREAD + 12345
    x = values((n,), "float32", seed=3)
    plan = plan_for(x, "float32", 0.5, 99, 4)
    results = [compiled.dropout(x, plan, threads) for threads in (1, 2, 3, 5, 8)]
    for y, keep in results[1:]:
        np.testing.assert_array_equal(y.view(np.uint32), results[0][0].view(np.uint32))
        np.testing.assert_array_equal(keep, results[0][1])
    # and the one-thread result is the reference's, checked at every slice boundary and a sample
    t = arguments.threshold(0.5)
    y, keep = results[0]
    for start in [0, compiled.ALIGN - 2, n // 2 - 3, n // 3 - 1, n - 8]:
        words = list(stream_words(99, 4, start, 8))
        assert keep[start : start + 8].tolist() == [u >= t for u in words]
        want = [
            np.float32(v) * np.float32(2.0) if u >= t else 0.0
            for v, u in zip(x[start : start + 8], words, strict=True)
        ]
        np.testing.assert_array_equal(y[start : start + 8], np.array(want, np.float32))


@pytest.mark.parametrize("dims", [(), (0,), (1,)])
def test_threaded_transposed_walks_match_one_thread_and_the_reference(dims) -> None:
    """A Fortran-ordered input is walked in its memory order, split over threads."""
    x = np.asfortranarray(values((520, 530), "float32", seed=4))
    plan = plan_for(x, "float32", 0.5, 5, 6, dims)
    (y1, k1), (y3, k3) = compiled.dropout(x, plan, 1), compiled.dropout(x, plan, 3)
    assert y1.flags.f_contiguous
    np.testing.assert_array_equal(y1.view(np.uint32), y3.view(np.uint32))
    np.testing.assert_array_equal(k1, k3)
    mshape = plan.mask_shape  # spot checks against the stream's words, across the thread slices
    for i, j in [(0, 0), (1, 7), (519, 529), (300, 2), (4, 265), (517, 3)]:
        m = (0 if mshape[0] == 1 else i) * mshape[1] + (0 if mshape[1] == 1 else j)
        u = next(iter(stream_words(5, 6, m, 1)))
        kept = u >= arguments.threshold(0.5)
        assert k1.reshape(-1)[m] == kept
        assert y1[i, j] == (np.float32(x[i, j]) * np.float32(2.0) if kept else 0.0)


@pytest.mark.parametrize("offset", [2**32 - 7, 2**34 - 37, 2**34 - 2, 2**34, 2**40 + 1, 2**63 - 64])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_indices_past_2_to_the_32(offset: int, dtype: str) -> None:
    """The kernel's mask_offset places a small array at large mask indices, without allocating them."""
    x = values((64,), dtype, seed=5)
    xk = x.view(np.uint16) if dtype == "bfloat16" else x
    y = np.empty_like(x)
    keep = np.empty(64, np.bool_)
    yk = y.view(np.uint16) if dtype == "bfloat16" else y
    t = arguments.threshold(0.5)
    args = (compiled.KINDS[dtype], 0, 2**64 - 3, 2**32 + 9, t, arguments.scale(0.5), 0, 64, offset)
    _kernel.dropout(xk, yk, keep, *args)
    words = list(stream_words(2**64 - 3, 2**32 + 9, offset, 64))
    assert keep.tolist() == [u >= t for u in words]
    want = [
        reference.scaled(float(v), dtype, 0.5) if u >= t else 0.0
        for v, u in zip(x.astype(float), words, strict=True)
    ]
    assert_exact(y, np.array(want), f"offset {offset}")
    mask_only = np.empty(64, np.uint8)
    _kernel.keep_mask(mask_only, 2**64 - 3, 2**32 + 9, t, 0, 64, offset)
    assert mask_only.tolist() == [int(u >= t) for u in words]


def test_read_only_and_zero_stride_inputs_are_read_not_written() -> None:
    x = values((4, 9), "float64")
    x.flags.writeable = False
    check(x, "float64", 0.5, 1, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x, y: _kernel.dropout(x, y, None, 7, 0, 1, 0, 5, 2.0, 0, 4), "kind must be 0..3"),
        (lambda x, y: _kernel.dropout(x, y, None, 2, 0, 1, 0, 2**32, 2.0, 0, 4), "threshold must be below"),
        (lambda x, y: _kernel.dropout(x, y, None, 3, 0, 1, 0, 5, 2.0, 0, 4), "itemsize"),
        (lambda x, y: _kernel.dropout(x, y, None, 2, 0, 1, 0, 5, 2.0, 3, 2), "start <= stop"),
        (lambda x, y: _kernel.dropout(x, y, None, 2, 0, 1, 0, 5, 2.0, 0, 5), "start <= stop"),
        (lambda x, y: _kernel.dropout(x, y[:2], None, 2, 0, 1, 0, 5, 2.0, 0, 2), "as many elements"),
        (lambda x, y: _kernel.dropout(x, y, None, 2, 0, 1, 0, 5, 2.0, 0, 4, 0, (1,)), "permutation"),
    ],
)
def test_bad_kernel_arguments_are_refused(call, message: str) -> None:
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=message):
        call(x, np.empty_like(x))


def test_the_environment_variable_chooses_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiled.ENV, "numpy")
    assert not NumpyImplementation()._compiled
    assert "pure NumPy" in NumpyImplementation().describe()
    monkeypatch.setenv(compiled.ENV, "compiled")
    assert NumpyImplementation()._compiled and "compiled" in NumpyImplementation().describe()
    assert f"SIMD: {_kernel.SIMD}" in NumpyImplementation().describe()
    monkeypatch.setenv(compiled.ENV, "fast")
    with pytest.raises(
        ValueError, match=r"UNIDROP_NUMPY_KERNEL must be one of auto, compiled, numpy, got 'fast'"
    ):
        NumpyImplementation()
    monkeypatch.setenv(compiled.ENV, "compiled")
    monkeypatch.setattr(compiled, "_kernel", None)
    with pytest.raises(ImportError, match="not built"):
        NumpyImplementation()
    monkeypatch.setenv(compiled.ENV, "auto")
    assert not NumpyImplementation()._compiled  # no kernel: the pure-NumPy one runs


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_16_bit_pattern(dtype: str) -> None:
    """All 65536 inputs of a 16-bit dtype (NaN, Inf, subnormals, rounding ties after scaling)."""
    x = np.arange(1 << 16, dtype=np.uint16).view(DTYPES[dtype])
    check(x, dtype, 0.3, 12345, 6)


def test_a_kept_float16_nan_is_quieted_keeping_its_payload() -> None:
    """The reference says only "NaN" (Python's float16 has one); the kernel gives the bits that x86's
    F16C and ARM's conversions give, at every SIMD level (test_the_narrower_paths_match_the_reference
    runs this under each): the input's bits with the quiet bit (0x0200) set."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    nan = ((bits & 0x7C00) == 0x7C00) & ((bits & 0x03FF) != 0)
    x = bits[nan].view(np.float16)
    y, keep = compiled.dropout(x, plan_for(x, "float16", 0.3, 12345, 6, ()), 1)
    kept = keep.ravel()
    assert 0 < kept.sum() < kept.size
    assert np.array_equal(y.view(np.uint16)[kept], bits[nan][kept] | 0x0200)
    assert not y.view(np.uint16)[~kept].any()  # dropped: +0


SIMD = "UNIDROP_NUMPY_SIMD"
#: The kernel's SIMD levels, narrowest first (``_kernel.SIMD`` is the one in use).
LEVELS = ("none", "avx2", "avx512", "avx512bf16")


def test_the_simd_setting_caps_the_kernel() -> None:
    """Under UNIDROP_NUMPY_SIMD (the runs below set it) the kernel uses that level, and no F16C
    under ``none``."""
    wanted = os.environ.get(SIMD)
    if wanted is None:
        pytest.skip(f"runs in the subprocesses of test_the_narrower_paths_match_the_reference ({SIMD} set)")
    assert wanted == _kernel.SIMD
    if wanted == "none":
        assert getattr(_kernel, "F16C", 0) == 0


@pytest.mark.parametrize("level", LEVELS[:-1])
def test_the_narrower_paths_match_the_reference(level: str) -> None:
    """The loops that run on CPUs without AVX512-BF16 (or AVX-512, AVX2, F16C) give the reference's
    bits too: this module's layout, tile-boundary, 16-bit and 2^32-index tests again, in a
    subprocess with the kernel capped at ``level``."""
    if LEVELS.index(level) >= LEVELS.index(_kernel.SIMD):
        pytest.skip(f"this CPU's widest path is {_kernel.SIMD}: the tests above already ran it")
    selection = "simd_setting_caps or layouts or tile_boundaries or 16_bit or nan or past_2_to_the_32"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", __file__, "-k", selection],
        env={**os.environ, SIMD: level},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "test_the_simd_setting_caps_the_kernel PASSED" in result.stdout, result.stdout[-2000:]


def kernel_simd(setting: str | None) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter's ``_kernel.SIMD`` (its stdout) with UNIDROP_NUMPY_SIMD set to
    ``setting`` (None: unset)."""
    env = {name: value for name, value in os.environ.items() if name != SIMD}
    if setting is not None:
        env[SIMD] = setting
    script = "from unidrop_numpy import _kernel; print(_kernel.SIMD)"
    command = [sys.executable, "-c", script]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def test_the_simd_setting_is_read_in_any_case_and_checked() -> None:
    """UNIDROP_NUMPY_SIMD is read in any case, and empty means unset (the widest the CPU has); any
    other value stops the import with a ValueError that names it and what is allowed."""
    widest = kernel_simd(None).stdout.strip()
    assert widest in LEVELS
    assert kernel_simd("").stdout.strip() == widest
    assert kernel_simd("AVX2").stdout.strip() == ("none" if widest == "none" else "avx2")
    assert kernel_simd("None").stdout.strip() == "none"
    bad = kernel_simd("sse9")
    assert bad.returncode != 0
    allowed = "avx512bf16, avx512, avx2, none (or unset)"
    message = f"ValueError: UNIDROP_NUMPY_SIMD must be one of {allowed}, got 'sse9'"
    assert message in bad.stderr


@pytest.mark.parametrize(("kernel", "works"), [("numpy", True), ("auto", False), ("compiled", False)])
def test_a_bad_simd_setting_stops_only_the_compiled_kernel(kernel: str, works: bool) -> None:
    """Where the pure-NumPy kernel is asked for (UNIDROP_NUMPY_KERNEL=numpy), the SIMD cap does not
    matter and the backend loads; elsewhere the bad value is the backend's loading error."""
    script = "import numpy as np, unidrop; print(unidrop.dropout(np.ones(4, np.float32), 0.5, seed=42))"
    env = {**os.environ, SIMD: "sse9", "UNIDROP_NUMPY_KERNEL": kernel}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    if works:
        assert result.returncode == 0 and result.stdout.strip() == "[2. 0. 0. 0.]", result.stderr[-2000:]
        # and `unidrop backends` says the setting was refused, not that the kernel was not built
        shown = subprocess.run(
            [sys.executable, "-m", "unidrop", "backends"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (
            "numpy: pure NumPy (compiled kernel refused a setting: ValueError: UNIDROP_NUMPY_SIMD"
            in shown.stdout
        )
    else:
        assert result.returncode != 0
        assert "loading it raised ValueError: UNIDROP_NUMPY_SIMD must be one of" in result.stderr


def test_buffers_without_strides_are_read_in_c_order() -> None:
    """An exporter may leave a buffer's strides out (ctypes arrays do): C order is meant, and the
    kernel reads it so (it used to read a null pointer and crash)."""
    x = values((3, 5), "float32", seed=4)
    source = ((ctypes.c_float * 5) * 3)()
    ctypes.memmove(source, x.tobytes(), x.nbytes)
    out = ((ctypes.c_float * 5) * 3)()
    plan = plan_for(x, "float32", 0.4, 21, 3, mask=False)
    _kernel.dropout(source, out, None, 2, 0, 21, 3, plan.threshold, plan.scale, 0, x.size, 0, None, None)
    want, _ = expected(x, "float32", 0.4, 21, 3)
    assert_exact(np.frombuffer(out, np.float32).reshape(x.shape), want, "ctypes buffers")


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("step", [1, 0, -1, 3])
def test_dropout_at_reads_memory_by_address_and_step(dtype: str, step: int) -> None:
    """``dropout_at`` (raw addresses, one strided run; unidrop-torch's small tensors) gives the
    reference's bits for contiguous, repeated (step 0), reversed and strided elements."""
    n = 3 * TILE // 2 + 5  # more than one tile of words
    base = values((3 * n + 2,), dtype, seed=12)
    x = {1: base[:n], 0: base[4:5], -1: base[n - 1 :: -1][:n], 3: base[::3][:n]}[step]
    logical = np.broadcast_to(x, (n,)) if step == 0 else x
    y = np.empty(n, dtype=DTYPES[dtype])
    plan = plan_for(logical, dtype, 0.35, 77, 5, mask=False)
    byte_step = x.strides[0] if step else 0
    compiled.dropout_at(x.ctypes.data, byte_step, y.ctypes.data, n, plan)
    assert_exact(y, expected(np.ascontiguousarray(logical), dtype, 0.35, 77, 5)[0], f"step {step}")


def test_dropout_at_refuses_a_bad_kind_threshold_or_null_address() -> None:
    x = np.ones(4, np.float32)
    y = np.empty_like(x)
    with pytest.raises(ValueError, match=r"kind must be 0\.\.3, got 7"):
        _kernel.dropout_at(7, x.ctypes.data, 4, y.ctypes.data, 4, 1, 0, 10, 1.0)
    with pytest.raises(ValueError, match="threshold must be below 2"):
        _kernel.dropout_at(2, x.ctypes.data, 4, y.ctypes.data, 4, 1, 0, 1 << 32, 1.0)
    with pytest.raises(ValueError, match="non-null addresses"):
        _kernel.dropout_at(2, 0, 4, y.ctypes.data, 4, 1, 0, 10, 1.0)
    _kernel.dropout_at(2, 0, 4, 0, 0, 1, 0, 10, 1.0)  # nothing to do: no memory is touched
