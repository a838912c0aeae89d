"""Triton kernels of mask stream v1 (the CUDA path; also run on the CPU by Triton's interpreter).

Each program takes ``BLOCK`` consecutive elements as a ``[BLOCK // (4*CALLS), 4*CALLS]`` tile:
row ``r`` holds ``CALLS`` consecutive Philox blocks and its lanes are their words in order, so
every word of every Philox call is used, and a thread's row is one contiguous vector (16 bytes
for 16-bit dtypes with CALLS = 2). x is read once and y written once. Element offsets and Philox
block numbers are 64-bit, so tensors past 2**32 elements get the counter's high word right.

Scalars (key words, threshold, scale) travel as integer bit patterns so that one compiled
kernel serves every seed and p, and so that a CPU key needs no copy to the device.
"""

from __future__ import annotations

import triton
import triton.language as tl

from unidrop import philox

PHILOX_M0: tl.constexpr = tl.constexpr(philox.PHILOX_M0)
PHILOX_M1: tl.constexpr = tl.constexpr(philox.PHILOX_M1)
PHILOX_W0: tl.constexpr = tl.constexpr(philox.PHILOX_W0)
PHILOX_W1: tl.constexpr = tl.constexpr(philox.PHILOX_W1)


@triton.jit
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (Random123) on uint32 counter words, uint32 key words.

    Each round's two 32x32 -> 64-bit products are taken as one widening multiply each
    (the high and low words come out of the same instruction)."""
    for _ in tl.static_range(10):
        p0 = c0.to(tl.uint64) * PHILOX_M0
        p1 = c2.to(tl.uint64) * PHILOX_M1
        c0 = (p1 >> 32).to(tl.uint32) ^ c1 ^ k0
        c2 = (p0 >> 32).to(tl.uint32) ^ c3 ^ k1
        c1 = p1.to(tl.uint32)
        c3 = p0.to(tl.uint32)
        k0 = k0 + PHILOX_W0
        k1 = k1 + PHILOX_W1
    return c0, c1, c2, c3


@triton.jit
def _key(key_ptr, k0, k1, s0, s1, KEY_ON_DEVICE: tl.constexpr):
    if KEY_ON_DEVICE:
        k0 = tl.load(key_ptr)
        k1 = tl.load(key_ptr + 1)
        s0 = tl.load(key_ptr + 2)
        s1 = tl.load(key_ptr + 3)
    return (
        k0.to(tl.uint32, bitcast=True),
        k1.to(tl.uint32, bitcast=True),
        s0.to(tl.uint32, bitcast=True),
        s1.to(tl.uint32, bitcast=True),
    )


@triton.jit
def _join64(low, high):
    """The int64 whose 32-bit words are the int32 bit patterns ``low`` and ``high``.

    64-bit host integers travel as two int32 words so that Triton types every launch the
    same way (it types a Python int by its value: i32, u32 or i64)."""
    return (high.to(tl.uint32, bitcast=True).to(tl.int64) << 32) | low.to(tl.uint32, bitcast=True).to(
        tl.int64
    )


@triton.jit
def _tile_words(
    first_block, key_ptr, k0, k1, s0, s1, KEY_ON_DEVICE: tl.constexpr, ROWS: tl.constexpr, CALLS: tl.constexpr
):
    """The words of Philox blocks first_block .. first_block + ROWS*CALLS - 1 as a [ROWS, 4*CALLS] tile.

    Row r holds blocks first_block + r*CALLS + j (j < CALLS), lane by lane: the tile is the
    stream in C order, and each thread owns whole rows, so picking a word is a register choice.
    CALLS = 2 gives 16-bit dtypes rows of 16 bytes."""
    key0, key1, st0, st1 = _key(key_ptr, k0, k1, s0, s1, KEY_ON_DEVICE)
    lane = tl.arange(0, 4 * CALLS)[None, :]
    words = tl.zeros((ROWS, 4 * CALLS), dtype=tl.uint32)
    for j in tl.static_range(CALLS):
        block = first_block + tl.arange(0, ROWS).to(tl.int64) * CALLS + j
        c0 = (block & 0xFFFFFFFF).to(tl.uint32)
        c1 = (block >> 32).to(tl.uint32)
        zero = tl.zeros_like(c0)
        w0, w1, w2, w3 = philox4x32_10(c0, c1, zero + st0, zero + st1, key0, key1)
        words = tl.where(lane == 4 * j, w0[:, None], words)
        words = tl.where(lane == 4 * j + 1, w1[:, None], words)
        words = tl.where(lane == 4 * j + 2, w2[:, None], words)
        words = tl.where(lane == 4 * j + 3, w3[:, None], words)
    return words


@triton.jit
def _round_to_bfloat16(value):
    """float32 -> bfloat16, round to nearest even, in integer arithmetic.

    For Triton's interpreter, whose conversion truncates (or rounds ties away): it gives the
    GPU's bits. On a GPU the hardware conversion (cvt.rn.bf16x2.f32, two elements per
    instruction) does the same in far fewer instructions. NaN stays a (quiet) NaN.
    """
    bits = value.to(tl.uint32, bitcast=True)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    is_nan = (bits & 0x7FFFFFFF) > 0x7F800000
    bits = tl.where(is_nan, bits | 0x00400000, rounded)
    return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit(
    do_not_specialize=["n_lo", "n_hi", "b_lo", "b_hi", "k0", "k1", "s0", "s1", "threshold", "scale_bits"]
)
def dropout_kernel(
    x_ptr,
    y_ptr,
    key_ptr,
    n_lo,
    n_hi,
    b_lo,
    b_hi,
    k0,
    k1,
    s0,
    s1,
    threshold,
    scale_bits,
    KEY_ON_DEVICE: tl.constexpr,
    COMPUTE_F64: tl.constexpr,
    BF16_BY_HAND: tl.constexpr,
    BLOCK: tl.constexpr,
    CALLS: tl.constexpr,
    MASKED: tl.constexpr,
):
    """y[j] = x[j] * s if u_{4b+j} >= threshold else +0, for 0 <= j < n; n and b as int32 word pairs.

    With MASKED false, n must be a multiple of BLOCK: the loads and stores then carry no mask
    and are vectorised (a mask against a runtime n would split them into single elements)."""
    WIDTH: tl.constexpr = 4 * CALLS
    ROWS: tl.constexpr = BLOCK // WIDTH
    pid = tl.program_id(0).to(tl.int64)
    n = _join64(n_lo, n_hi)
    first_block = _join64(b_lo, b_hi) + pid * (BLOCK // 4)
    words = _tile_words(first_block, key_ptr, k0, k1, s0, s1, KEY_ON_DEVICE, ROWS, CALLS)
    keep = words >= threshold.to(tl.uint32, bitcast=True)
    offsets = pid * BLOCK + tl.arange(0, ROWS).to(tl.int64)[:, None] * WIDTH + tl.arange(0, WIDTH)[None, :]
    if MASKED:
        inside = offsets < n
        x = tl.load(x_ptr + offsets, mask=inside)
    else:
        x = tl.load(x_ptr + offsets)
    if COMPUTE_F64:
        product = x.to(tl.float64) * scale_bits.to(tl.float64, bitcast=True)
    else:
        product = x.to(tl.float32) * scale_bits.to(tl.float32, bitcast=True)
    if BF16_BY_HAND:  # noqa: SIM108 (a constexpr branch, clearer for Triton than a ternary)
        y = _round_to_bfloat16(product)
    else:
        y = product.to(y_ptr.dtype.element_ty)  # 16-bit: cvt.rn (round to nearest even)
    y = tl.where(keep, y, tl.zeros_like(y))
    if MASKED:
        tl.store(y_ptr + offsets, y, mask=inside)
    else:
        tl.store(y_ptr + offsets, y)


@triton.jit(do_not_specialize=["n_lo", "n_hi", "b_lo", "b_hi", "k0", "k1", "s0", "s1", "threshold"])
def keep_kernel(
    keep_ptr,
    key_ptr,
    n_lo,
    n_hi,
    b_lo,
    b_hi,
    k0,
    k1,
    s0,
    s1,
    threshold,
    KEY_ON_DEVICE: tl.constexpr,
    BLOCK: tl.constexpr,
    MASKED: tl.constexpr,
):
    """keep[j] = (u_{4b+j} >= threshold) as uint8, for 0 <= j < n; n and b as int32 word pairs.

    With MASKED false, n must be a multiple of BLOCK (unmasked, vectorised stores)."""
    ROWS: tl.constexpr = BLOCK // 16
    pid = tl.program_id(0).to(tl.int64)
    n = _join64(n_lo, n_hi)
    first_block = _join64(b_lo, b_hi) + pid * (BLOCK // 4)
    words = _tile_words(first_block, key_ptr, k0, k1, s0, s1, KEY_ON_DEVICE, ROWS, 4)
    keep = words >= threshold.to(tl.uint32, bitcast=True)
    offsets = pid * BLOCK + tl.arange(0, ROWS).to(tl.int64)[:, None] * 16 + tl.arange(0, 16)[None, :]
    if MASKED:
        tl.store(keep_ptr + offsets, keep.to(tl.uint8), mask=offsets < n)
    else:
        tl.store(keep_ptr + offsets, keep.to(tl.uint8))


@triton.jit(
    do_not_specialize=[
        "n_lo", "n_hi", "start_lo", "start_hi", "m1", "m2", "m3",
        "g0_lo", "g0_hi", "g1_lo", "g1_hi", "g2_lo", "g2_hi", "g3_lo", "g3_hi",
        "k0", "k1", "s0", "s1", "threshold",
    ]
)  # fmt: skip
def block_keep_kernel(
    keep_ptr,
    key_ptr,
    n_lo,
    n_hi,
    start_lo,
    start_hi,
    m1,
    m2,
    m3,
    g0_lo,
    g0_hi,
    g1_lo,
    g1_hi,
    g2_lo,
    g2_hi,
    g3_lo,
    g3_hi,
    k0,
    k1,
    s0,
    s1,
    threshold,
    KEY_ON_DEVICE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """keep[f] = (u_g >= threshold) as uint8 for the C-order index f < n of a block's mask of
    shape (n / (m1*m2*m3), m1, m2, m3), where g = start + j0*g0 + j1*g1 + j2*g2 + j3*g3 is the
    element's global mask index (int64 bit patterns, wrapping mod 2**64; all as int32 word pairs).

    One Philox call per element (its word ``g & 3`` is used): a block's rows need not start on a
    multiple of 4."""
    pid = tl.program_id(0).to(tl.int64)
    n = _join64(n_lo, n_hi)
    f = pid * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    inside = f < n
    rest = f
    j3 = rest % m3
    rest = rest // m3
    j2 = rest % m2
    rest = rest // m2
    j1 = rest % m1
    j0 = rest // m1
    g = _join64(start_lo, start_hi) + j0 * _join64(g0_lo, g0_hi) + j1 * _join64(g1_lo, g1_hi)
    g = g + j2 * _join64(g2_lo, g2_hi) + j3 * _join64(g3_lo, g3_hi)
    block = (g >> 2) & 0x3FFFFFFFFFFFFFFF  # a logical shift of the unsigned 64-bit index
    key0, key1, st0, st1 = _key(key_ptr, k0, k1, s0, s1, KEY_ON_DEVICE)
    c0 = (block & 0xFFFFFFFF).to(tl.uint32)
    c1 = (block >> 32).to(tl.uint32)
    zero = tl.zeros_like(c0)
    w0, w1, w2, w3 = philox4x32_10(c0, c1, zero + st0, zero + st1, key0, key1)
    lane = g & 3
    word = tl.where(lane == 0, w0, tl.where(lane == 1, w1, tl.where(lane == 2, w2, w3)))
    keep = word >= threshold.to(tl.uint32, bitcast=True)
    tl.store(keep_ptr + f, keep.to(tl.uint8), mask=inside)
