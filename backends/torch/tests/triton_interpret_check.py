"""Exactness of the Triton kernels, run on the CPU by Triton's interpreter.

Run by test_triton_interpreter.py in a fresh process with TRITON_INTERPRET=1 (the variable
must be set before the kernels are decorated). Exits non-zero, with the failing case in the
message, if any result differs from the pure-Python reference. Tensors are kept small.
"""

from __future__ import annotations

import os
import sys

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"

import torch  # noqa: E402
from torch_helpers import DTYPES, assert_same, expected_output, sample  # noqa: E402
from unidrop_torch import cuda, keys  # noqa: E402

from unidrop import philox  # noqa: E402
from unidrop.blocks import MaskBlock, block_flat_indices  # noqa: E402

#: Tile configurations to check, besides the defaults: small blocks make several programs.
CONFIGS = [None, (16, 1, 1), (32, 1, 2), (64, 2, 4)]


def with_config(config: tuple[int, int, int] | None, check) -> None:  # type: ignore[no-untyped-def]
    saved = dict(cuda.CONFIG)
    if config is not None:
        cuda.CONFIG.update({size: config for size in cuda.CONFIG})
    try:
        check()
    finally:
        cuda.CONFIG.update(saved)


def check_dropout_kernel() -> None:
    for config in CONFIGS:
        with_config(config, _check_dropout_kernel)


def _check_dropout_kernel() -> None:
    for dtype in DTYPES:
        x = sample((61,), dtype, seed=1)  # not a multiple of 4 or of the block: masked tail
        for seed, stream, p in [
            (0, 0, 0.5),
            ((1 << 64) - 1, (1 << 64) - 1, 0.2),
            (1 << 40, 9, 0.9),
            (3, 1, 1.0),
        ]:
            for key_in_kernel in (False, True):
                y = torch.empty_like(x)
                cuda.launch_dropout(x, y, keys.key_from_ints(seed, stream), p, key_in_kernel=key_in_kernel)
                context = (
                    f"{dtype} seed={seed} stream={stream} p={p} key_in_kernel={key_in_kernel} {cuda.CONFIG}"
                )
                assert_same(y, expected_output(x, p, seed, stream), context)


def check_64_bit_counters() -> None:
    for config in CONFIGS:
        with_config(config, _check_64_bit_counters)


def _check_64_bit_counters() -> None:
    """Mask indices around 2**32 and 2**34 (block counter high word) and near 2**64."""
    x = torch.ones(40, dtype=torch.float16)
    seed, stream, p = 12345, 1 << 35, 0.5
    t = 1 << 31
    for start in [(1 << 32) - 16, (1 << 34) - 16, (1 << 63) - 20, (1 << 64) - 40]:
        expected = torch.tensor(
            [2.0 if u >= t else 0.0 for u in philox.stream_words(seed, stream, start, 40)]
        )
        y = torch.empty_like(x)
        cuda.launch_dropout(x, y, keys.key_from_ints(seed, stream), p, start=start)
        assert_same(y, expected, f"dropout kernel at start={start}")
        keep = torch.empty(40, dtype=torch.uint8)
        cuda.launch_keep(keep, keys.key_from_ints(seed, stream), p, start=start, key_in_kernel=False)
        assert torch.equal(keep.bool(), expected != 0), f"keep kernel at start={start}"


def check_host_paths() -> None:
    """cuda.dropout's broadcast and layout handling (run on CPU tensors by the interpreter)."""
    key = keys.key_from_ints(7, 3)
    image = sample((2, 3, 4, 5), torch.bfloat16, seed=2)
    for name, x in [("channels_last", image.to(memory_format=torch.channels_last)), ("transposed", image.mT)]:
        y = cuda.dropout(x, key, 0.4, [])
        assert y.stride() == torch.empty_like(x).stride(), f"{name}: layout"
        assert_same(y, expected_output(x, 0.4, 7, 3), name)
        for dims in ([1], [0, 3], [2, 3]):
            assert cuda.dropout(x, key, 0.4, dims).stride() == torch.empty_like(x).stride(), f"{name} {dims}"
            assert_same(
                cuda.dropout(x, key, 0.4, dims), expected_output(x, 0.4, 7, 3, tuple(dims)), f"{name} {dims}"
            )
    assert_same(cuda.dropout(image, key, 1.0, []), torch.zeros(image.shape), "p = 1")
    mask = cuda.keep_mask(key, (3, 1, 5), 0.5, torch.device("cpu"))
    expected = torch.tensor([u >= 1 << 31 for u in philox.stream_words(7, 3, 0, 15)]).reshape(3, 1, 5)
    assert torch.equal(mask, expected), "keep_mask"


#: (block mask shape, global mask shape, mask offset): rows off multiples of 4, merged axes,
#: size-1 axes, five axes that merge to four, indices just below 2**64.
BLOCKS = [
    ((3, 5), (7, 9), (2, 3)),
    ((2, 3, 5), (4, 6, 11), (1, 2, 5)),
    ((4, 6), (9, 6), (5, 0)),
    ((2, 1, 3, 2, 3), (3, 1, 4, 2, 5), (1, 0, 1, 0, 2)),
    ((1, 5), (1 << 61, 8), ((1 << 61) - 1, 3)),
    ((37,), (1000,), (511,)),
]


def check_block_keep_kernel() -> None:
    for mshape, gshape, offset in BLOCKS:
        for seed, stream, p in [(5, 0, 0.5), ((1 << 64) - 1, 1 << 33, 0.25)]:
            for key_in_kernel in (False, True):
                keep = torch.empty(mshape, dtype=torch.uint8)
                key = keys.key_from_ints(seed, stream)
                assert cuda.launch_block_keep(keep, key, p, gshape, offset, key_in_kernel=key_in_kernel)
                t = int(p * 2**32)
                indices = block_flat_indices(MaskBlock(gshape, offset), mshape)
                want = [philox.element_word(seed, stream, i) >= t for i in indices]
                got = keep.view(torch.bool).reshape(-1).tolist()
                assert got == want, f"block {mshape} at {offset} of {gshape}, seed={seed} p={p}"
    # six axes that do not merge: the kernel declines, and the caller computes it in torch
    keep = torch.empty((2,) * 6, dtype=torch.uint8)
    assert not cuda.launch_block_keep(keep, keys.key_from_ints(1, 0), 0.5, (3,) * 6, (1,) * 6)


def check_a_strided_device_key() -> None:
    """A key tensor that is a strided view (stride 2) gives the words it holds: the kernel reads four
    consecutive words, so the launch makes the key contiguous first."""
    key = keys.key_from_ints(123456789, 5)
    strided = torch.stack([key, torch.zeros_like(key)], 1)[:, 0]
    assert strided.stride() == (2,) and torch.equal(strided, key)
    x = sample((64,), torch.float32, seed=2)
    y = torch.empty_like(x)
    cuda.launch_dropout(x, y, strided, 0.5, key_in_kernel=True)
    assert_same(y, expected_output(x, 0.5, 123456789, 5), "a strided key read in the kernel")


if __name__ == "__main__":
    check_a_strided_device_key()
    check_block_keep_kernel()
    check_dropout_kernel()
    check_64_bit_counters()
    check_host_paths()
    print("triton interpreter checks passed")
    sys.exit(0)
