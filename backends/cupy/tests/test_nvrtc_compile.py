"""The kernels compile with NVRTC, the compiler CuPy uses, and the fast path is what it claims.

NVRTC needs no GPU and no driver: this runs wherever CuPy and an NVRTC library are installed
(for cupy-cuda12x: ``pip install nvidia-cuda-nvrtc-cu12``) and skips with the reason elsewhere.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from unidrop_cupy import layout, source

DTYPES = ("float16", "bfloat16", "float32", "float64")
#: Options CuPy adds to every NVRTC compile (cupy/cuda/compiler.py), so the check sees what runs.
CUPY_ADDS = ("-ftz=true", "--device-as-default-execution-space")


def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc
    except Exception as error:
        pytest.skip(f"CuPy's NVRTC binding is not importable ({type(error).__name__}: {error})")
    try:
        nvrtc.getVersion()
    except Exception as error:
        pytest.skip(f"no NVRTC library found by CuPy ({type(error).__name__}: {error}); "
                    "pip install nvidia-cuda-nvrtc-cu12 (or -cu13) to run this check")  # fmt: skip
    return nvrtc


def compile_ptx(arch: str) -> str:
    nvrtc = _nvrtc()
    program = nvrtc.createProgram(source.kernel_source(), "unidrop_kernels.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(
                program, [f"--gpu-architecture={arch}", *source.compile_options(), *CUPY_ADDS]
            )
        except Exception as error:
            raise AssertionError(f"NVRTC failed for {arch}:\n{nvrtc.getProgramLog(program)}") from error
        ptx = nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)
    return ptx.decode() if isinstance(ptx, bytes) else ptx


def entry(ptx: str, name: str) -> str:
    """The PTX body of one kernel."""
    match = re.search(rf"\.entry {name}\((.*?)\n}}", ptx, re.S)
    assert match, f"kernel {name} missing from the PTX"
    return match.group(1)


@pytest.fixture(scope="module")
def ptx90() -> str:
    return compile_ptx("compute_90")


@pytest.mark.parametrize("arch", ["compute_52", "compute_70", "compute_75", "compute_80"])
def test_compiles_for_older_architectures(arch: str) -> None:
    major = _nvrtc().getVersion()[0]
    if major >= 13 and int(arch.removeprefix("compute_")) < 75:  # CUDA 13 dropped Maxwell to Volta
        pytest.skip(f"NVRTC {major} compiles for compute_75 and newer only, not {arch}")
    ptx = compile_ptx(arch)
    for dtype in DTYPES:
        for kind in ("contig", "strided", "apply"):
            entry(ptx, f"unidrop_{kind}_{dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_kernel_moves_sixteen_bytes_per_access(ptx90: str, dtype: str) -> None:
    body = entry(ptx90, f"unidrop_contig_{dtype}")
    assert re.search(r"ld\.global\.nc\.v4\.u32", body), "no 16-byte vector load"
    assert re.search(r"st\.global\.v[24]\.(u32|f32|f64)", body), "no 16-byte vector store"


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_kernel_has_no_division(ptx90: str, dtype: str) -> None:
    body = entry(ptx90, f"unidrop_contig_{dtype}")
    assert not re.search(r"\b(div|rem)\.", body)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_philox_call_per_four_elements(ptx90: str, dtype: str) -> None:
    """Ten rounds of two mul.hi per Philox block: at most 20 per block the thread owns.

    (The first round's product of the stream word is shared by a thread's blocks.)
    """
    body = entry(ptx90, f"unidrop_contig_{dtype}")
    blocks = source.BLOCKS_PER_THREAD[dtype]
    assert 19 * blocks <= len(re.findall(r"mul\.hi\.u32", body)) <= 20 * blocks


@pytest.mark.parametrize("kind", ["contig", "strided", "apply"])
def test_no_flush_to_zero_despite_cupys_ftz_option(ptx90: str, kind: str) -> None:
    """Subnormal float32/bfloat16 values are kept exactly: no .ftz instruction anywhere."""
    for dtype in DTYPES:
        body = entry(ptx90, f"unidrop_{kind}_{dtype}")
        assert not re.search(r"\.ftz\b", body), f"{kind} {dtype}: " + ", ".join(
            sorted(set(re.findall(r"[a-z]+(?:\.\w+)*\.ftz(?:\.\w+)*", body)))
        )


def test_float16_uses_hardware_rounding(ptx90: str) -> None:
    assert "cvt.rn.f16.f32" in entry(ptx90, "unidrop_contig_float16")


@pytest.mark.parametrize("kind", ["contig", "strided", "apply"])
def test_no_kernel_spills_to_local_memory(ptx90: str, kind: str) -> None:
    for dtype in DTYPES:
        assert "local_depot" not in entry(ptx90, f"unidrop_{kind}_{dtype}"), f"{kind} {dtype}"


# -- the Python launches pass what the kernels declare -----------------------------------------

PTX_PARAM = re.compile(r"\.param (?:\.align \d+ )?\.(\w+) \w+?_param_\d+(?:\[(\d+)\])?")


class DeviceArray:
    """Stands in for a cupy.ndarray argument: a device pointer (8 bytes)."""

    def __init__(self, size: int, ptr: int = 1 << 20) -> None:
        self.size = size
        self.data = type("Data", (), {"ptr": ptr})()


def declared(ptx: str, name: str) -> list[tuple[str, int]]:
    """(PTX type, bytes) of each parameter of kernel ``name``."""
    header = re.search(rf"\.entry {name}\((.*?)\)", ptx, re.S)
    assert header, name
    out = []
    for kind, count in PTX_PARAM.findall(header.group(1)):
        out.append((kind, int(count) if count else int(kind[1:]) // 8))
    return out


def passed(args: tuple) -> list[tuple[str, int]]:
    """(kind, bytes) of each argument as CuPy would pack it."""
    out = []
    for a in args:
        if isinstance(a, DeviceArray):
            out.append(("u64", 8))
        elif isinstance(a, np.ndarray):
            out.append(("b8", a.nbytes))
        else:
            kind = {"f": "f", "u": "u", "i": "s"}[np.dtype(type(a)).kind]
            out.append((f"{kind}{8 * a.itemsize}", a.itemsize))
    return out


def compatible(want: tuple[str, int], got: tuple[str, int]) -> bool:
    (wk, wn), (gk, gn) = want, got
    if wn != gn:
        return False
    if wk == "b8" or gk == "b8":
        return wk == gk
    return wk[0] == gk[0] or {wk[0], gk[0]} <= {"u", "s"}  # ints: signedness is not in the ABI


@pytest.mark.parametrize("dtype", DTYPES)
def test_launch_arguments_match_the_kernel_signatures(
    ptx90: str, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernels = pytest.importorskip("unidrop_cupy.kernels", reason="unidrop_cupy.kernels imports CuPy")

    calls: list[tuple[str, tuple]] = []

    class Module:
        def get_function(self, name: str):
            return lambda grid, block, args: calls.append((name, args))

    monkeypatch.setattr(kernels, "module", lambda options=None: Module())
    rng = layout.rng_words(1 << 40, 3, 1 << 31)
    x, y, mask = DeviceArray(100), DeviceArray(100), DeviceArray(100)
    dims = layout.collapse((10, 10), (1, 10), (10, 1), (10, 1))
    kernels.launch_contiguous(x, y, mask, dtype, rng, 2.0)
    kernels.launch_contiguous(x, y, None, dtype, rng, 2.0, first_block=7)
    kernels.launch_strided(x, y, mask, dims, dtype, rng, 2.0)
    kernels.launch_apply(x, y, mask, dims, dtype, 2.0)
    assert [name for name, _ in calls] == [
        f"unidrop_{k}_{dtype}" for k in ("contig", "contig", "strided", "apply")
    ]
    for name, args in calls:
        want, got = declared(ptx90, name), passed(args)
        assert len(want) == len(got), (name, want, got)
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            assert compatible(w, g), f"{name} parameter {i}: kernel declares {w}, launch passes {g}"
