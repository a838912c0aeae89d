"""Each check the suite gained for issues 10 and 12 (blocks) can fail: a backend wrong in one
subtle place fails it.

Every mutant here is the NumPy backend's Implementation with exactly one defect (registered
under its own name with :func:`unidrop.registry.register`); the check named beside it must fail
on the mutant and pass on the NumPy backend itself. The suite's check methods are called
directly on a suite class whose ``backend_name`` is the mutant's, as a backend's own tests would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import pytest
from unidrop_numpy.backend import NumpyBackend
from unidrop_numpy.implementation import NumpyImplementation
from unidrop_numpy.suite_adapter import NumpySuiteAdapter

from unidrop import Abilities, DropoutPlan, registry
from unidrop.arguments import TWO_POW_32
from unidrop.conformance.expected import is_subnormal, largest_finite
from unidrop.conformance.suite import ConformanceSuite
from unidrop.philox import MASK32, element_word

#: What the able adapter below is doing now: set around a backward pass or a compiled call.
MODE = {"backward": False, "jit": False}


@contextlib.contextmanager
def mode(name: str) -> Iterator[None]:
    MODE[name] = True
    try:
        yield
    finally:
        MODE[name] = False


def spec_scaled(x: np.ndarray, plan: DropoutPlan) -> np.ndarray:
    """Every element of ``x`` times s, as the spec computes a kept element (NumPy arithmetic)."""
    compute = np.float32 if x.dtype.itemsize == 2 else x.dtype.type
    with np.errstate(over="ignore", invalid="ignore"):
        return (x.astype(compute) * compute(plan.scale)).astype(x.dtype)


def select(x: np.ndarray, keep: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``keep`` (broadcast to x) is True, +0 elsewhere."""
    return np.where(np.broadcast_to(keep, x.shape), values, x.dtype.type(0))


class Correct(NumpyImplementation):
    """The NumPy backend, seen through :meth:`mutate`: a mutant overrides that one method."""

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        y, keep = self.mutate(np.asarray(x), plan)
        return y, (keep if plan.return_mask else None)

    def run(self, x: np.ndarray, plan: DropoutPlan) -> tuple[np.ndarray, np.ndarray]:
        """The NumPy backend's own output and mask."""
        return super().dropout(x, dataclasses.replace(plan, return_mask=True))

    def mutate(self, x: np.ndarray, plan: DropoutPlan) -> tuple[np.ndarray, np.ndarray]:
        return self.run(x, plan)


class WrapsBlockAt2To20(Correct):
    """Elements from 2**22 on take the mask of element i - 2**22 (a 20-bit block counter)."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        n = 1 << 22
        if keep.size <= n:
            return y, keep
        flat = keep.reshape(-1).copy()
        flat[n:] = flat[: keep.size - n]
        keep = flat.reshape(keep.shape)
        return select(x, keep, spec_scaled(x, plan)), keep


class ChunkStartTakesPreviousBit(Correct):
    """The first element of every 2**18-element chunk takes the previous element's mask bit."""

    def mutate(self, x, plan):
        _, keep = self.run(x, plan)
        flat = keep.reshape(-1).copy()
        starts = np.arange(1 << 18, flat.size, 1 << 18)
        flat[starts] = flat[starts - 1]
        keep = flat.reshape(keep.shape)
        return select(x, keep, spec_scaled(x, plan)), keep


class DoubleRoundingIn64Bits(Correct):
    """16-bit products computed in float64 and rounded once, instead of in float32."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        if x.dtype.itemsize != 2:
            return y, keep
        with np.errstate(over="ignore", invalid="ignore"):
            product = (x.astype(np.float64) * float(np.float32(plan.scale))).astype(x.dtype)
        return select(x, keep, product), keep


class Saturates(Correct):
    """Products that overflow give the largest finite value instead of Inf."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        largest = largest_finite(self.shape_and_dtype(x)[1])
        overflowed = np.isinf(y.astype(np.float64)) & np.isfinite(x.astype(np.float64))
        saturated = np.copysign(largest, x.astype(np.float64)).astype(x.dtype)
        return np.where(overflowed, saturated, y), keep


class FlushesSubnormals(Correct):
    """float32 and bfloat16 subnormal inputs and results become zero (XLA's CPU default)."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        dtype = self.shape_and_dtype(x)[1]
        if dtype not in ("float32", "bfloat16"):
            return y, keep
        wide_x, wide_y = x.astype(np.float64), y.astype(np.float64)
        flushed = is_subnormal(wide_x, dtype) | is_subnormal(wide_y, dtype)
        return np.where(flushed, np.copysign(0.0, wide_y).astype(x.dtype), y), keep


class KeptNegativeZeroBecomesPositive(Correct):
    """A kept -0 comes out as +0 (an addition of +0 after the select)."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        return y + x.dtype.type(0), keep


class IdentityBelow2ToMinus32(Correct):
    """p < 2**-32 (t = 0) returns a copy of x, unscaled, as if p were 0."""

    def mutate(self, x, plan):
        if 0 < plan.p < 2.0**-32:
            return x.copy(), np.ones(plan.mask_shape, dtype=bool)
        return self.run(x, plan)


class RoundsTheThreshold(Correct):
    """t = floor(p * 2**32 + 0.5), the nearest integer, instead of the floor."""

    def mutate(self, x, plan):
        rounded = min(math.floor(plan.p * TWO_POW_32 + 0.5), TWO_POW_32) / TWO_POW_32
        _, keep = self.run(x, dataclasses.replace(plan, p=rounded))
        return select(x, keep, spec_scaled(x, plan)), keep


class Float32ScaleForFloat64(Correct):
    """float64 inputs are scaled by s rounded to float32."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        if x.dtype != np.float64:
            return y, keep
        return select(x, keep, x * float(np.float32(plan.scale))), keep


class MemoryOrderFor3D(Correct):
    """A 3-D array that is not C-contiguous is processed in its memory order."""

    def mutate(self, x, plan):
        if x.ndim != 3 or x.flags.c_contiguous or plan.broadcast_dims:
            return self.run(x, plan)
        order = tuple(int(a) for a in np.argsort([-abs(s) for s in x.strides], kind="stable"))
        inner = np.ascontiguousarray(x.transpose(order))
        y, keep = self.run(inner, DropoutPlan.build(inner.shape, plan.dtype, plan.p, plan.seed, plan.stream))
        back = tuple(int(a) for a in np.argsort(order))
        return y.transpose(back), keep.transpose(back)


class FlipsNegativeStrides(Correct):
    """Axes of negative stride are flipped before and after: their mask comes out reversed."""

    def mutate(self, x, plan):
        axes = tuple(a for a, s in enumerate(x.strides) if s < 0)
        if not axes or plan.broadcast_dims:
            return self.run(x, plan)
        y, keep = self.run(np.flip(x, axes), plan)
        return np.flip(y, axes), np.flip(keep, axes)


class SharesMaskAlongZeroStrides(Correct):
    """Along an axis of stride 0 every element gets the mask of the first one."""

    def mutate(self, x, plan):
        axes = tuple(a for a, (s, n) in enumerate(zip(x.strides, x.shape, strict=True)) if s == 0 and n > 1)
        if not axes or plan.broadcast_dims:
            return self.run(x, plan)
        first = x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))]
        y, keep = self.run(first, DropoutPlan.build(first.shape, plan.dtype, plan.p, plan.seed, plan.stream))
        return np.broadcast_to(y, x.shape).copy(), np.broadcast_to(keep, x.shape).copy()


class WritesIntoReversedInput(Correct):
    """Right results, but an input of negative strides is overwritten with them."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        if any(s < 0 for s in x.strides) and x.flags.writeable:
            x[...] = y
        return y, keep


class ReusesOutputBuffer(Correct):
    """The output of a shape and dtype is written into one buffer kept between calls."""

    buffers: ClassVar[dict[Any, np.ndarray]] = {}

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        buffer = self.buffers.setdefault((y.shape, y.dtype.str), np.empty_like(y))
        buffer[...] = y
        return buffer, keep


class ReusesMaskBuffer(Correct):
    """The mask of a shape is written into one buffer kept between calls."""

    buffers: ClassVar[dict[Any, np.ndarray]] = {}

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        buffer = self.buffers.setdefault(keep.shape, np.empty_like(keep))
        buffer[...] = keep
        return y, buffer


class IdentityMaskOfTheInputShape(Correct):
    """The identity paths' mask has the input's shape, not the mask shape."""

    def full_mask(self, x, shape):
        return np.ones(np.shape(x), dtype=bool)


class IdentityMaskOfBytes(Correct):
    """The identity paths' mask is uint8 ones, not bool."""

    def full_mask(self, x, shape):
        return np.ones(shape, dtype=np.uint8)


class DrawsFromNumpysLegacyState(Correct):
    """Right results, but every call draws one number from NumPy's legacy global generator."""

    def mutate(self, x, plan):
        np.random.random()
        return self.run(x, plan)


class DrawsFromNumpyWhenLarge(Correct):
    """Right results, but a call on 2**16 elements or more draws from NumPy's legacy global generator."""

    def mutate(self, x, plan):
        if x.size >= 1 << 16:
            np.random.random()
        return self.run(x, plan)


class ThresholdSaturatesAtUint32(Correct):
    """t is held in a uint32: at p = 1 it is 2**32 - 1, so a word u = 2**32 - 1 is kept."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        if plan.threshold == TWO_POW_32:
            flat = keep.reshape(-1).copy()
            flat |= np.array([element_word(plan.seed, plan.stream, i) == MASK32 for i in range(flat.size)])
            keep = flat.reshape(keep.shape)
            y = select(x, keep, spec_scaled(x, plan))
        return y, keep


class IdentityMaskDrawsFromPython(Correct):
    """The identity paths' mask draws one number from Python's ``random``."""

    def full_mask(self, x, shape):
        random.random()
        return super().full_mask(x, shape)


class SeedNoneStirsNumpy(Correct):
    """``seed=None`` draws from unidrop's source, and also one number from NumPy's legacy state."""

    def resolve_randomness(self, seed, stream, x):
        if seed is None:
            np.random.random()
        return super().resolve_randomness(seed, stream, x)


class SeedNoneOf16Bits(Correct):
    """``seed=None`` draws a seed of 16 bits."""

    def resolve_randomness(self, seed, stream, x):
        drawn, stream = super().resolve_randomness(seed, stream, x)
        return (drawn & 0xFFFF if seed is None else drawn), stream


class BackwardDropsStreamHighWord(Correct):
    """The backward pass regenerates the mask with the stream's low word only."""

    def mutate(self, x, plan):
        if MODE["backward"]:
            plan = dataclasses.replace(plan, stream=plan.stream & MASK32)
        return self.run(x, plan)


class JitReturnsAllTrueMask(Correct):
    """Under jit the output is right but the returned mask is all True."""

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        return y, (np.ones_like(keep) if MODE["jit"] else keep)


class BackwardReusesLastMask(Correct):
    """The backward pass reuses the mask of the last forward call of the same shape."""

    last: ClassVar[dict[tuple[int, ...], np.ndarray]] = {}

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        if MODE["backward"] and keep.shape in self.last:
            keep = self.last[keep.shape]
            return select(x, keep, spec_scaled(x, plan)), keep
        self.last[keep.shape] = keep
        return y, keep


def block_indices(plan: DropoutPlan, strides: tuple[int, ...], offset: tuple[int, ...]) -> np.ndarray:
    """Global flat mask indices of a block's mask for given strides and offset (a mutant's choice)."""
    index = np.zeros(plan.mask_shape, dtype=np.uint64)
    for axis, size in enumerate(plan.mask_shape):
        along = np.arange(offset[axis], offset[axis] + size, dtype=np.uint64) * np.uint64(strides[axis])
        index += along.reshape([size if a == axis else 1 for a in range(len(plan.mask_shape))])
    return index.reshape(-1)


class BlockMutant(Correct):
    """A block's mask from the global indices :meth:`indices` gives (the NumPy backend's otherwise)."""

    def indices(self, plan: DropoutPlan) -> np.ndarray:
        raise NotImplementedError

    def mutate(self, x, plan):
        y, keep = self.run(x, plan)
        if plan.block is None or plan.drops_all or not plan.mask_shape:
            return y, keep
        t = plan.threshold
        words = [element_word(plan.seed, plan.stream, int(i)) for i in self.indices(plan)]
        keep = (np.array(words, dtype=np.uint64) >= t).reshape(plan.mask_shape)
        return select(x, keep, spec_scaled(x, plan)), keep


class BlockIgnoresOffset(BlockMutant):
    """A block takes the global mask's strides, but its offset is ignored."""

    def indices(self, plan):
        return block_indices(plan, plan.block.global_strides(), (0,) * len(plan.mask_shape))


class BlockOfLocalIndices(BlockMutant):
    """A block gets the mask of a whole array of its own shape (block-local indices)."""

    def indices(self, plan):
        return np.arange(math.prod(plan.mask_shape), dtype=np.uint64)


class BlockAsOneRun(BlockMutant):
    """A block's mask is one run of consecutive global indices from its first element."""

    def indices(self, plan):
        return int(plan.block.start()) + np.arange(math.prod(plan.mask_shape), dtype=np.uint64)


class BlockStridesCountBroadcastAxes(BlockMutant):
    """The global strides count the block's size along broadcast axes instead of 1."""

    def indices(self, plan):
        sizes = [
            plan.shape[a] if a in plan.broadcast_dims else n
            for a, n in enumerate(plan.block.global_mask_shape)
        ]
        strides = [math.prod(sizes[a + 1 :]) for a in range(len(sizes))]
        return block_indices(plan, tuple(strides), tuple(int(o) for o in plan.block.mask_offset))


class NoBlocks(Correct):
    """The NumPy backend, but declaring no support for blocks (as a backend not yet ported)."""

    supports_blocks = False


class AbleAdapter(NumpySuiteAdapter):
    """NumPy with honest autograd and jit: dropout is linear in x, so its vjp is the dropout of the
    cotangent with the same mask (computed under the ``backward`` mode), and "compiling" runs the
    function under the ``jit`` mode."""

    def vjp(self, fn: Callable[[Any], Any], x: Any, cotangent: Any) -> tuple[Any, Any]:
        y = fn(x)
        with mode("backward"):
            return y, fn(cotangent)

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def compiled(*args: Any) -> Any:
            with mode("jit"):
                return fn(*args)

        return compiled


class DeclaresFlushing(NumpySuiteAdapter):
    """An adapter declaring that float32 subnormals are flushed on the CPU."""

    def flushes_subnormals(self, dtype: str, device: str) -> bool:
        return dtype == "float32"


ABLE = Abilities(autograd=True, jit=True)
#: name -> (Implementation, adapter, abilities) of every backend registered by this module.
BACKENDS: dict[str, tuple[type[NumpyImplementation], type[NumpySuiteAdapter], Abilities]] = {
    "growth-numpy-able": (Correct, AbleAdapter, ABLE),
    "growth-numpy-declares-flushing": (Correct, DeclaresFlushing, Abilities()),
    "growth-flushes-declared": (FlushesSubnormals, DeclaresFlushing, Abilities()),
    "growth-backward-stream-low-word": (BackwardDropsStreamHighWord, AbleAdapter, ABLE),
    "growth-jit-mask-all-true": (JitReturnsAllTrueMask, AbleAdapter, ABLE),
    "growth-backward-last-mask": (BackwardReusesLastMask, AbleAdapter, ABLE),
}
#: Checks named in the tables below more than once.
LAYOUTS = "test_layouts_give_the_logical_result"
SUBNORMALS = "test_subnormals_are_scaled_exactly"
EXTREMES = "test_overflow_signed_zeros_and_specials"
TINY_P = "test_tiny_p_and_p_near_one"
SURVIVE = "test_results_and_masks_survive_later_calls"
IDENTITY_MASK = "test_identity_mask_has_the_mask_shape_and_bool_dtype"
EXPLICIT_SEED_STATES = "test_explicit_seed_leaves_global_random_state_untouched"
BLOCKS_ON_DEVICES = "test_blocks_on_every_device"
_ON_DEVICE = {"unidrop_device": "cpu", "unidrop_dtype": "float32"}
BLOCK_CASE = {"global_shape": (6, 9), "shape": (3, 4), "offset": (2, 5), "dims": (), **_ON_DEVICE}
BROADCAST_BLOCK_CASE = {
    "global_shape": (5, 4, 33),
    "shape": (2, 3, 7),
    "offset": (1, 1, 26),
    "dims": (1,),
    **_ON_DEVICE,
}
BROADCAST_GRID_CASE = {"global_shape": (4, 6, 5), "cuts": ((0, 1, 4), (0, 3, 6), (0, 2, 5)), "dims": (1,)}
GRID_CASE = {"global_shape": (5, 7), "cuts": ((0, 2, 5), (0, 1, 7)), "dims": ()}
BAD_BLOCK_CASE = {"global_shape": (4, 6), "offset": (0, -1), "error": ValueError, "says": "-1"}

#: (mutant, check, its arguments, what its failure says): the check fails on the mutant.
KILLS: list[tuple[type[Correct], str, dict[str, Any], str]] = [
    (WrapsBlockAt2To20, "test_large_array_at_chunk_edges", {"unidrop_dtype": "float32"}, "shape"),
    (
        ChunkStartTakesPreviousBit,
        "test_large_arrays_of_several_axes_at_chunk_edges",
        {"shape": (2053, 2045), "dims": ()},
        "2053, 2045",
    ),
    (DoubleRoundingIn64Bits, "test_every_16bit_pattern", {"dtype": "float16", "p": 0.7}, "bit pattern"),
    (DoubleRoundingIn64Bits, "test_every_16bit_pattern", {"dtype": "bfloat16", "p": 0.7}, "bit pattern"),
    (Saturates, "test_every_16bit_pattern", {"dtype": "float16", "p": 0.7}, "bit pattern"),
    (Saturates, EXTREMES, {"unidrop_dtype": "float32", "p": 0.5}, "extreme"),
    (
        FlushesSubnormals,
        SUBNORMALS,
        {"unidrop_dtype": "float32", "p": 0.5},
        "subnormal",
    ),
    (
        FlushesSubnormals,
        SUBNORMALS,
        {"unidrop_dtype": "bfloat16", "p": 0.1},
        "subnormal",
    ),
    (
        KeptNegativeZeroBecomesPositive,
        EXTREMES,
        {"unidrop_dtype": "float64", "p": 0.5},
        "extreme",
    ),
    (
        IdentityBelow2ToMinus32,
        TINY_P,
        {"unidrop_dtype": "float64"},
        "p=9.094947017729282e-13",
    ),
    (RoundsTheThreshold, "test_threshold_of_a_fractional_product_is_its_floor", {"extra": 0.5}, "must keep"),
    (RoundsTheThreshold, TINY_P, {"unidrop_dtype": "float32"}, r"shape=\(32, 32\)"),
    (Float32ScaleForFloat64, TINY_P, {"unidrop_dtype": "float64"}, "float64"),
    (MemoryOrderFor3D, LAYOUTS, {"layout": "fortran-3d"}, "fortran-3d"),
    (MemoryOrderFor3D, LAYOUTS, {"layout": "transposed-3d"}, "transposed-3d"),
    (
        FlipsNegativeStrides,
        LAYOUTS,
        {"layout": "reversed-rows"},
        "reversed-rows",
    ),
    (FlipsNegativeStrides, LAYOUTS, {"layout": "reversed-3d"}, "reversed-3d"),
    (
        SharesMaskAlongZeroStrides,
        LAYOUTS,
        {"layout": "zero-stride-middle"},
        "zero",
    ),
    (
        WritesIntoReversedInput,
        LAYOUTS,
        {"layout": "reversed-every-other-column"},
        "after dropout|under the view",
    ),
    (
        ReusesOutputBuffer,
        SURVIVE,
        {"unidrop_dtype": "float32"},
        "output",
    ),
    (ReusesMaskBuffer, SURVIVE, {"unidrop_dtype": "float32"}, "mask"),
    (
        IdentityMaskOfTheInputShape,
        IDENTITY_MASK,
        {"how": "p=0", "dims": (0,), "unidrop_dtype": "float32"},
        "broadcast_dims",
    ),
    (
        IdentityMaskOfBytes,
        IDENTITY_MASK,
        {"how": "eval", "dims": (), "unidrop_dtype": "float32"},
        "broadcast_dims",
    ),
    (
        DrawsFromNumpysLegacyState,
        EXPLICIT_SEED_STATES,
        {},
        "NumPy's legacy",
    ),
    (DrawsFromNumpyWhenLarge, "test_a_large_call_leaves_global_random_state_untouched", {}, "NumPy's legacy"),
    (ThresholdSaturatesAtUint32, "test_p_one_drops_the_largest_word", {"unidrop_dtype": "float32"}, "p=1.0"),
    (IdentityMaskDrawsFromPython, "test_identity_paths_touch_no_random_state", {}, "Python's random"),
    (SeedNoneStirsNumpy, "test_seed_none_draws_from_its_own_source_only", {}, "NumPy's legacy"),
    (SeedNoneOf16Bits, "test_seed_none_masks_have_entropy", {}, "distinct"),
    (BlockIgnoresOffset, BLOCKS_ON_DEVICES, BLOCK_CASE, "not its slice"),
    (BlockOfLocalIndices, "test_a_grid_of_blocks_reassembles_the_whole", GRID_CASE, "block"),
    (BlockAsOneRun, "test_a_large_block_matches_the_stream_at_sampled_elements", {}, "mask"),
    (BlockAsOneRun, BLOCKS_ON_DEVICES, BLOCK_CASE, "not its slice"),
    (BlockStridesCountBroadcastAxes, BLOCKS_ON_DEVICES, BROADCAST_BLOCK_CASE, "not its slice"),
    (
        BlockStridesCountBroadcastAxes,
        "test_a_grid_of_blocks_reassembles_the_whole",
        BROADCAST_GRID_CASE,
        "block",
    ),
    (NoBlocks, BLOCKS_ON_DEVICES, BLOCK_CASE, "does not implement blocks"),
    (NoBlocks, "test_bad_blocks_are_refused", BAD_BLOCK_CASE, "does not implement blocks"),
]
#: Mutants whose check needs the able adapter (autograd and jit): (backend name, check, arguments, message).
ABLE_KILLS = [
    (
        "growth-backward-stream-low-word",
        "test_autograd_gradient_is_cotangent_times_keep_times_scale",
        {"shape": (6, 50), "seed": (1 << 63) + (1 << 32) + 5, "stream": (1 << 40) + 9, "dims": (0,)},
        "gradient",
    ),
    (
        "growth-jit-mask-all-true",
        "test_jit_gives_the_reference_result_and_mask",
        {"seed": (1 << 64) - 1, "stream": (1 << 63) + 5, "dims": (1,)},
        "mask under jit",
    ),
    ("growth-backward-last-mask", "test_autograd_of_two_dropout_calls_uses_each_calls_mask", {}, "gradient"),
]


def mutant_name(mutant: type[Correct]) -> str:
    return f"growth-{mutant.__name__}"


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    """Register every mutant and the able backends under their names; forget them afterwards."""
    for mutant in {m for m, *_ in KILLS}:
        BACKENDS[mutant_name(mutant)] = (mutant, NumpySuiteAdapter, Abilities())
    for name, (implementation, adapter, abilities) in BACKENDS.items():
        registry.register(backend_named(name, implementation, adapter, abilities))
    yield
    registry.reset()


def backend_named(
    name: str,
    implementation: type[NumpyImplementation],
    adapter: type[NumpySuiteAdapter],
    abilities: Abilities,
) -> NumpyBackend:
    """A NumPy backend called ``name`` doing its work with ``implementation``."""
    attributes = {
        "name": name,
        "distribution": "unidrop-tests-suite-growth",
        "abilities": abilities,
        "load": lambda self: implementation(),
        "suite_adapter": lambda self: adapter(self),
    }
    return type(f"Backend_{name}", (NumpyBackend,), attributes)()


def run_check(backend: str, check: str, arguments: dict[str, Any]) -> None:
    """Run one check of the conformance suite on ``backend``, as a backend's own tests would."""
    suite = type("Probe", (ConformanceSuite,), {"backend_name": backend})()
    getattr(suite, check)(**arguments)


def kill_id(kill: tuple[Any, ...]) -> str:
    target = kill[0] if isinstance(kill[0], str) else mutant_name(kill[0])
    arguments = "-".join(str(v) for v in kill[2].values())
    return f"{target}-{kill[1].removeprefix('test_')}" + (f"-{arguments}" if arguments else "")


@pytest.mark.parametrize("kill", KILLS, ids=kill_id)
def test_the_check_fails_on_its_mutant(kill: tuple[type[Correct], str, dict[str, Any], str]) -> None:
    mutant, check, arguments, says = kill
    with pytest.raises(AssertionError, match=says):
        run_check(mutant_name(mutant), check, arguments)


@pytest.mark.parametrize("kill", ABLE_KILLS, ids=kill_id)
def test_the_ability_check_fails_on_its_mutant(kill: tuple[str, str, dict[str, Any], str]) -> None:
    backend, check, arguments, says = kill
    with pytest.raises(AssertionError, match=says):
        run_check(backend, check, arguments)


@pytest.mark.parametrize(
    ("check", "arguments"),
    sorted({(check, tuple(arguments.items())) for _, check, arguments, _ in KILLS}, key=str),
    ids=str,
)
def test_the_check_passes_on_numpy(check: str, arguments: tuple[tuple[str, Any], ...]) -> None:
    run_check("numpy", check, dict(arguments))


@pytest.mark.parametrize("kill", ABLE_KILLS, ids=kill_id)
def test_the_ability_check_passes_on_numpy_with_honest_abilities(
    kill: tuple[str, str, dict[str, Any], str],
) -> None:
    _, check, arguments, _ = kill
    run_check("growth-numpy-able", check, arguments)


def test_a_declared_flush_is_an_expected_failure_and_a_wrong_declaration_fails() -> None:
    arguments = {"unidrop_dtype": "float32", "p": 0.5}
    with pytest.raises(pytest.xfail.Exception, match="declares that it flushes float32 subnormals"):
        run_check("growth-flushes-declared", SUBNORMALS, arguments)
    with pytest.raises(pytest.fail.Exception, match="drop the declaration"):
        run_check("growth-numpy-declares-flushing", SUBNORMALS, arguments)
    # the declaration covers float32 alone: a flushed bfloat16 still fails plainly
    with pytest.raises(AssertionError, match="subnormal bfloat16"):
        run_check(
            "growth-flushes-declared",
            SUBNORMALS,
            {"unidrop_dtype": "bfloat16", "p": 0.5},
        )
