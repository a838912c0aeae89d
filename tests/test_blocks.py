"""Blocks of a global mask in the core: validation of ``global_shape``/``offset`` (unidrop.blocks),
the reference's blocks against slices of its whole array, and the core's dispatch rules."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
from unidrop_numpy.backend import NumpyBackend
from unidrop_numpy.implementation import NumpyImplementation

import unidrop
from unidrop import reference, registry
from unidrop.blocks import MaskBlock, block_flat_indices, c_strides, check_block


@pytest.mark.parametrize(
    ("global_shape", "offset", "error", "says"),
    [
        ((4, 6), None, TypeError, "offset is missing"),
        (None, (0, 0), TypeError, "global_shape is missing"),
        ((4,), (0, 0), ValueError, r"global_shape must have one entry per axis .*\(2\), got \(4,\)"),
        ((4, 6, 1), (0, 0), ValueError, r"\(4, 6, 1\) with 3"),
        ((4, 6), (0,), ValueError, r"offset must have one entry per axis .*\(2\), got \(0,\)"),
        ((4, 6), (0, -1), ValueError, r"offset must hold non-negative ints, got -1 in \(0, -1\)"),
        ((-4, 6), (0, 0), ValueError, r"global_shape must hold non-negative ints, got -4"),
        ((4, 6), (0, True), TypeError, r"offset must hold non-negative ints, got True"),
        ((True, 6), (0, 0), TypeError, r"global_shape must hold non-negative ints, got True"),
        ((4, 6), (0, np.bool_(False)), TypeError, r"got np.False_|got False"),
        ((4, 6.0), (0, 0), TypeError, r"got 6.0 of type float"),
        ((4, 6), (0, "1"), TypeError, r"got '1' of type str"),
        ((4, 6), "01", TypeError, r"got '0' of type str in '01'"),
        (7, (0, 0), TypeError, r"global_shape must be a sequence of 2 non-negative ints, got 7"),
        ((4, 6), 0, TypeError, r"offset must be a sequence of 2 non-negative ints, got 0"),
        ((4, 6), {0, 1}, TypeError, r"offset must be an ordered sequence .*\{0, 1\}"),
        ({4, 6}, (0, 0), TypeError, r"global_shape must be an ordered sequence"),
        ({0: 4, 1: 6}, (0, 0), TypeError, r"global_shape must be an ordered sequence"),
        ((4, 6), (2, 0), ValueError, r"offset \(2, 0\) does not lie inside global_shape \(4, 6\) \(axis 0"),
        ((4, 6), (0, 4), ValueError, r"\(axis 1: 4 \+ 3 > 6\)"),
        ((2, 6), (0, 0), ValueError, r"axis 0: 0 \+ 3 > 2"),
    ],
)
def test_bad_blocks_raise_an_error_naming_the_value(global_shape, offset, error, says):
    with pytest.raises(error, match=says):
        check_block((3, 3), global_shape, offset, ())
    x = np.ones((3, 3), np.float32)  # through dropout too, in training and in evaluation mode
    for training in (True, False):
        with pytest.raises(error, match=says):
            unidrop.dropout(x, 0.5, seed=1, training=training, global_shape=global_shape, offset=offset)


def test_more_than_2_to_64_mask_elements_are_refused_unless_broadcast():
    huge = (1 << 32, (1 << 32) + 1)
    with pytest.raises(ValueError, match="more than 2\\*\\*64 mask elements"):
        check_block((1, 1), huge, (0, 0), ())
    block = check_block((1, 1), huge, (5, 7), (1,))  # the mask is (2**32, 1)
    assert block == MaskBlock((1 << 32, 1), (5, 0))
    assert check_block((1, 1), (1 << 32, 1 << 32), (1, 2), ()) is not None  # exactly 2**64: fine


def test_neither_is_a_whole_array_and_numpy_integers_are_accepted():
    assert check_block((3, 3), None, None, ()) is None
    block = check_block((2, 3), np.array([4, 6]), (np.uint8(1), np.int64(3)), ())
    assert block == MaskBlock((4, 6), (1, 3))
    assert all(type(v) is int for v in (*block.global_mask_shape, *block.mask_offset))
    assert check_block((), (), (), ()) == MaskBlock((), ())


def test_broadcast_axes_have_mask_size_one_and_offset_zero():
    block = check_block((2, 3, 4), (5, 6, 7), (3, 2, 1), (0, 2))
    assert block == MaskBlock((1, 6, 1), (0, 2, 0))
    assert block.global_strides() == (6, 1, 1)
    assert block.start() == 2


@pytest.mark.parametrize(
    ("global_shape", "shape", "offset"),
    [
        ((7,), (3,), (2,)),
        ((4, 5, 6), (2, 3, 4), (1, 2, 2)),
        ((4, 5, 6), (4, 1, 6), (0, 3, 0)),
        ((3, 2, 2), (1, 0, 2), (2, 1, 0)),
    ],
)
def test_block_flat_indices_are_the_global_indices_of_the_slice(global_shape, shape, offset):
    block = check_block(shape, global_shape, offset, ())
    whole = np.arange(math.prod(global_shape)).reshape(global_shape)
    where = tuple(slice(o, o + n) for o, n in zip(offset, shape, strict=True))
    assert block_flat_indices(block, shape) == whole[where].reshape(-1).tolist()
    assert block.start() == sum(o * s for o, s in zip(offset, whole.strides, strict=True)) // whole.itemsize
    assert c_strides(global_shape) == tuple(s // whole.itemsize for s in whole.strides)


def blocks_of(global_shape: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every (shape, offset) of a block of ``global_shape`` (sizes from 0 to the whole axis)."""
    per_axis = [[(n, o) for n in range(size + 1) for o in range(size - n + 1)] for size in global_shape]
    for choice in itertools.product(*per_axis):
        yield tuple(n for n, _ in choice), tuple(o for _, o in choice)


@pytest.mark.parametrize(
    ("global_shape", "dims"),
    [
        ((), ()),
        ((5,), ()),
        ((3, 4), ()),
        ((3, 4), (0,)),
        ((3, 4), (1,)),
        ((2, 3, 3), (1,)),
        ((2, 3, 3), (0, 2)),
    ],
)
def test_the_references_blocks_are_slices_of_its_whole_array(global_shape, dims):
    """Every block of a small global shape: the reference's output and mask are the whole's slices."""
    seed, stream, p = (1 << 64) - 7, (1 << 33) + 1, 0.5
    values = (np.arange(math.prod(global_shape), dtype=np.float64) + 1).reshape(global_shape)
    whole, whole_keep = reference.dropout(
        values.reshape(-1).tolist(), global_shape, "float32", p, seed, stream, dims
    )
    whole = np.array(whole).reshape(global_shape)
    mask_shape = tuple(1 if axis in dims else n for axis, n in enumerate(global_shape))
    whole_keep = np.array(whole_keep, dtype=bool).reshape(mask_shape)
    assert 0 < whole_keep.sum() < whole_keep.size or not global_shape
    for shape, offset in blocks_of(global_shape):
        where = tuple(slice(o, o + n) for o, n in zip(offset, shape, strict=True))
        mask_where = tuple(slice(0, 1) if axis in dims else part for axis, part in enumerate(where))
        out, keep = reference.dropout(
            values[where].reshape(-1).tolist(), shape, "float32", p, seed, stream, dims, global_shape, offset
        )
        assert out == whole[where].reshape(-1).tolist(), (shape, offset)
        assert keep == whole_keep[mask_where].reshape(-1).tolist(), (shape, offset)


def test_a_whole_block_is_the_whole_array_and_a_shifted_one_is_not():
    values = [1.0] * 12
    whole = reference.dropout(values, (3, 4), "float32", 0.5, 3)
    assert reference.dropout(values, (3, 4), "float32", 0.5, 3, global_shape=(3, 4), offset=(0, 0)) == whole
    assert reference.dropout(values, (3, 4), "float32", 0.5, 3, global_shape=(4, 4), offset=(1, 0)) != whole


@pytest.mark.parametrize("how", ["eval", "p=0"])
def test_the_identity_paths_of_a_block_return_x_itself(how):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    p, training = (0.5, False) if how == "eval" else (0.0, True)
    block = {"global_shape": (6, 4), "offset": (3, 0)}
    assert unidrop.dropout(x, p, seed=1, training=training, **block) is x
    y, keep = unidrop.dropout(x, p, seed=1, training=training, return_mask=True, broadcast_dims=(1,), **block)
    assert y is x and keep.shape == (3, 1) and keep.dtype == bool and keep.all()


class WithoutBlocks(NumpyImplementation):
    """The NumPy backend, not declaring blocks (a backend written before them)."""

    supports_blocks = False


@pytest.fixture
def backend_without_blocks() -> Iterator[str]:
    attributes = {
        "name": "no-blocks",
        "distribution": "unidrop-tests-blocks",
        "load": lambda self: WithoutBlocks(),
    }
    registry.register(type("NoBlocksBackend", (NumpyBackend,), attributes)())
    yield "no-blocks"
    registry.reset()


def test_a_backend_without_blocks_is_refused_a_block_but_not_a_whole_array(backend_without_blocks):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="does not implement blocks of a global mask"):
        unidrop.dropout(x, 0.5, seed=1, global_shape=(4, 3), offset=(2, 0), backend=backend_without_blocks)
    whole = unidrop.dropout(x, 0.5, seed=1, backend=backend_without_blocks)
    np.testing.assert_array_equal(whole, unidrop.dropout(x, 0.5, seed=1, backend="numpy"))


@pytest.mark.parametrize(
    ("shape", "global_shape", "offset", "dims"),
    [((2, 3), (5, 7), (1, 4), ()), ((2, 3, 4), (5, 6, 7), (3, 2, 1), (0, 2)), ((3, 1), (3, 9), (0, 8), (0,))],
)
def test_arguments_for_describe_the_same_block_again(shape, global_shape, offset, dims):
    """A backend handing a block on (the example xarray backend) passes arguments_for's values."""
    block = check_block(shape, global_shape, offset, dims)
    again = check_block(shape, *block.arguments_for(shape, dims), dims)
    assert again == block
    values = [1.0] * math.prod(shape)
    want = reference.dropout(values, shape, "float32", 0.5, 9, 0, dims, global_shape, offset)
    assert (
        reference.dropout(values, shape, "float32", 0.5, 9, 0, dims, *block.arguments_for(shape, dims))
        == want
    )
