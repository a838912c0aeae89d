"""The CUDA kernels compile for real GPUs (sm_80, sm_90) without one, with vectorised memory access.

Triton ships ptxas, so ``triton.compile`` builds the kernel for a named target on the CPU. The
checks read the PTX: 16-byte loads and stores in the unmasked bulk (what reaching copy bandwidth
needs), no local memory, no flush-to-zero (subnormal results must survive), and 16-bit results
rounded to nearest even by the hardware conversion (the interpreter test covers the by-hand
bfloat16 rounding used there instead). Pointers are declared 16-byte aligned, as Triton specialises them at
run time for torch's allocations.
"""

from __future__ import annotations

import importlib.util
import re

import pytest


def _triton_version() -> tuple[int, int] | None:
    """(major, minor) of the installed triton, without importing it; None if it is not installed."""
    if importlib.util.find_spec("triton") is None:
        return None
    from importlib.metadata import version

    major, minor = version("triton").split(".")[:2]
    return int(major), int(minor)


pytestmark = [
    pytest.mark.skipif(
        _triton_version() is None,
        reason="triton is not installed (pip install triton==3.7.1, the version torch 2.13.0 pairs with)",
    ),
    pytest.mark.skipif(
        (_triton_version() or (99, 0)) < (3, 3),
        reason="compiling for a GPU target here uses ASTSource(constexprs=...), new in triton 3.3; "
        "the interpreter test covers triton 3.2, the declared floor",
    ),
]

TYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}
SIZES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
VECTOR_16_BYTES = {"fp16": "v4.b32", "bf16": "v4.b32", "fp32": "v4.b32", "fp64": "v2.b64"}


def compile_dropout(dtype: str, key_on_device: bool, masked: bool, arch: int) -> str:
    """The PTX of the dropout kernel."""
    return _compile_dropout(dtype, key_on_device, masked, arch)["ptx"]


def _compile_dropout(dtype: str, key_on_device: bool, masked: bool, arch: int) -> dict[str, str]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from unidrop_torch import cuda, triton_kernels

    block, warps, calls = cuda.CONFIG[SIZES[dtype]]
    ty = TYPES[dtype]
    signature = {
        "x_ptr": f"*{ty}",
        "y_ptr": f"*{ty}",
        "key_ptr": "*i32" if key_on_device else f"*{ty}",
        **{name: "i32" for name in ("n_lo", "n_hi", "b_lo", "b_hi", "k0", "k1", "s0", "s1", "threshold")},
        "scale_bits": "i64" if ty == "fp64" else "i32",
        **{
            name: "constexpr"
            for name in ("KEY_ON_DEVICE", "COMPUTE_F64", "BF16_BY_HAND", "BLOCK", "CALLS", "MASKED")
        },
    }
    constants = {
        "KEY_ON_DEVICE": key_on_device,
        "COMPUTE_F64": ty == "fp64",
        "BF16_BY_HAND": False,
        "BLOCK": block,
        "CALLS": calls,
        "MASKED": masked,
    }
    aligned = {(i,): [["tt.divisibility", 16]] for i in range(3)}
    source = ASTSource(
        fn=triton_kernels.dropout_kernel, signature=signature, constexprs=constants, attrs=aligned
    )
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options={"num_warps": warps})
    return compiled.asm


def compile_keep(masked: bool) -> dict[str, str]:
    """Every stage of the keep-mask kernel, compiled for sm_90."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from unidrop_torch import triton_kernels

    signature = {
        "keep_ptr": "*u8",
        "key_ptr": "*i32",
        **{name: "i32" for name in ("n_lo", "n_hi", "b_lo", "b_hi", "k0", "k1", "s0", "s1", "threshold")},
        **{name: "constexpr" for name in ("KEY_ON_DEVICE", "BLOCK", "MASKED")},
    }
    constants = {"KEY_ON_DEVICE": True, "BLOCK": 2048, "MASKED": masked}
    aligned = {(i,): [["tt.divisibility", 16]] for i in range(2)}
    source = ASTSource(
        fn=triton_kernels.keep_kernel, signature=signature, constexprs=constants, attrs=aligned
    )
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
    return compiled.asm


@pytest.mark.parametrize("dtype", list(TYPES))
@pytest.mark.parametrize("key_on_device", [False, True], ids=["key-scalars", "key-on-device"])
def test_bulk_kernel_compiles_with_16_byte_access(dtype: str, key_on_device: bool) -> None:
    ptx = compile_dropout(dtype, key_on_device, masked=False, arch=90)
    vector = VECTOR_16_BYTES[TYPES[dtype]]
    data_loads = set(re.findall(r"ld\.global\.[\w.]+", ptx))
    if key_on_device:
        data_loads.discard("ld.global.b32")  # the four key words, loaded once per program
    assert data_loads == {f"ld.global.{vector}"}, f"{dtype}: loads {sorted(data_loads)}"
    assert set(re.findall(r"st\.global\.[\w.]+", ptx)) == {f"st.global.{vector}"}
    assert "ld.local" not in ptx and "st.local" not in ptx, "the kernel spills to local memory"
    assert ".ftz" not in ptx, "flush-to-zero would lose subnormal results"
    if dtype in ("float16", "bfloat16"):  # the float32 product rounded to nearest even
        assert f"cvt.rn.{TYPES[dtype].replace('fp', 'f')}.f32" in ptx


@pytest.mark.parametrize("dtype", ["bfloat16", "float64"])
def test_tail_kernel_compiles_for_sm80(dtype: str) -> None:
    ptx = compile_dropout(dtype, key_on_device=True, masked=True, arch=80)
    assert ".ftz" not in ptx and "ld.local" not in ptx
    if dtype == "bfloat16":
        assert "cvt.rn.bf16.f32" in ptx


def _data_offset_types(ttir: str) -> list[str]:
    """The element types of the offsets added to tensors of pointers (the data, not the key)."""
    return re.findall(r"tt\.addptr [^\n]*: tensor<[^\n]*!tt\.ptr<[^>]*>>, tensor<[\dx]*x(i\d+)>", ttir)


@pytest.mark.parametrize("masked", [False, True], ids=["bulk", "tail"])
@pytest.mark.parametrize("kernel", ["dropout float16", "dropout float64", "keep"])
def test_element_offsets_are_64_bit(kernel: str, masked: bool) -> None:
    """Tensors of 2**31 elements and more: the program id is widened before it is scaled by the
    block size, and every data access adds 64-bit offsets (an int32 would wrap at 2**31)."""
    if kernel == "keep":
        ttir = compile_keep(masked)["ttir"]
    else:
        ttir = _compile_dropout(kernel.split()[1], key_on_device=True, masked=masked, arch=90)["ttir"]
    pid = re.search(r"(%\S+) = tt\.get_program_id x : i32", ttir)
    assert pid, "no program id"
    assert re.search(rf"arith\.extsi {re.escape(pid.group(1))} : i32 to i64", ttir), "pid is not widened"
    offsets = _data_offset_types(ttir)
    assert offsets and set(offsets) == {"i64"}, offsets
