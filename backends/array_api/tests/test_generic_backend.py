"""The Array API backend on array-api-strict and on NumPy through its namespace: blocks, float16,
64-bit indices, dispatch. Expected values come from ``unidrop.reference``."""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest
from unidrop_array_api.philox_words import philox as philox_words

import unidrop
from unidrop import philox, reference
from unidrop.conformance.family import same_or_either

SEED, STREAM = 0xDEADBEEF12345678, 2**32 + 3


def test_philox_in_uint64_arrays_equals_the_pure_python_one():
    counters = [(0, 0, 0, 0), (2**32 - 1, 2**32 - 1, 5, 2**31), (123, 456, 789, 1011)]
    key = (0xA4093822, 0x299F31D0)
    columns = [xps.asarray([c[i] for c in counters], dtype=xps.uint64) for i in range(4)]
    got = philox_words(tuple(columns), key)
    for row, counter in enumerate(counters):
        assert tuple(int(word[row]) for word in got) == philox.philox4x32(counter, key)


@pytest.mark.parametrize("dims", [(), (1,)])
def test_a_block_far_into_a_huge_global_array_uses_64_bit_indices(dims):
    """Global flat indices past 2**32 (the block counter's high word) and a broadcast axis."""
    global_shape, offset, shape = (2**21, 2**13), (2**21 - 3, 2**13 - 7), (3, 5)
    values = np.linspace(-2.0, 2.0, 15).reshape(shape)
    x = xps.asarray(values.astype(np.float32))
    y, keep = unidrop.dropout(
        x, 0.5, seed=SEED, stream=STREAM, return_mask=True, broadcast_dims=dims,
        global_shape=global_shape, offset=offset,
    )  # fmt: skip
    want, want_keep = reference.dropout(
        values.reshape(-1).tolist(), shape, "float32", 0.5, SEED, STREAM, dims, global_shape, offset
    )
    np.testing.assert_array_equal(np.from_dlpack(y).reshape(-1), np.asarray(want, dtype=np.float32))
    np.testing.assert_array_equal(np.from_dlpack(keep).reshape(-1), np.asarray(want_keep))


def test_float16_through_the_namespace_of_numpy_is_rounded_once():
    """NumPy arrays have ``__array_namespace__``: named explicitly, the generic backend serves them."""
    bits = np.arange(0, 2**16, 97, dtype=np.uint16)
    values = bits.view(np.float16)
    y = unidrop.dropout(values, 0.3, seed=SEED, stream=STREAM, backend="array_api")
    want, _ = reference.dropout(
        values.astype(np.float64).tolist(), values.shape, "float16", 0.3, SEED, STREAM
    )
    want16 = np.asarray(want, dtype=np.float64).astype(np.float16)
    assert y.dtype == np.float16
    same = (y.view(np.uint16) == want16.view(np.uint16)) | (np.isnan(y) & np.isnan(want16))
    assert same.all(), np.flatnonzero(~same)[:5]


def test_numpy_arrays_still_go_to_the_numpy_backend_and_strict_ones_to_the_generic_one():
    assert unidrop.registry.backend_for(np.ones(3)).name == "numpy"
    assert unidrop.registry.backend_for(xps.ones(3)).name == "array_api"


def test_integer_arrays_are_refused_naming_their_dtype():
    with pytest.raises(TypeError, match=r"dtype int32"):
        unidrop.dropout(xps.ones(3, dtype=xps.int32), 0.5, seed=1)


def test_p_one_gives_positive_zeros_with_no_warning(recwarn):
    x = xps.asarray([0.0, -1.0, np.inf, np.nan], dtype=xps.float32)
    y = np.from_dlpack(unidrop.dropout(x, 1.0, seed=1))
    assert (y == 0).all() and not np.signbit(y).any()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


class _Immutable:
    """An array whose library forbids writes (the standard allows immutable arrays)."""

    def __setitem__(self, key, value):
        raise TypeError("this library's arrays are immutable")


def test_inplace_into_an_array_its_library_will_not_write_names_the_type():
    implementation = unidrop.get_backend("array_api").implementation()
    with pytest.raises(TypeError, match=r"inplace=True .*_Immutable.*immutable"):
        implementation.copy_into(_Immutable(), xps.ones(3))


def test_inplace_writes_into_an_array_api_strict_array():
    values = np.linspace(-2.0, 2.0, 15).reshape(3, 5)
    x = xps.asarray(values.copy())  # its own memory: the write must not change values
    assert unidrop.dropout(x, 0.4, seed=SEED, stream=STREAM, inplace=True) is x
    want, _ = reference.dropout(values.reshape(-1).tolist(), (3, 5), "float64", 0.4, SEED, STREAM)
    np.testing.assert_array_equal(np.from_dlpack(x).reshape(-1), np.asarray(want))


def test_a_namespace_of_the_2022_standard_without_signbit_gets_the_references_bits():
    """array-api-strict set to 2022.12 (before signbit) raises RuntimeError for it: the sign of zero
    is then read by division, and the result, -0 and +0 included, is still the reference's."""
    values = np.array([[-0.0, 0.0, -1.5, 2.0, -0.0, 3.0, 0.0, -4.0]] * 3, dtype=np.float32)
    xps.set_array_api_strict_flags(api_version="2022.12")
    try:
        y = unidrop.dropout(xps.asarray(values), 0.5, seed=3)
        got = np.asarray(y)
    finally:
        xps.reset_array_api_strict_flags()
    want, _ = reference.dropout(values.reshape(-1).tolist(), values.shape, "float32", 0.5, 3, 0)
    np.testing.assert_array_equal(got.reshape(-1), np.array(want, dtype=np.float32))
    np.testing.assert_array_equal(np.signbit(got.reshape(-1)), np.signbit(np.array(want, dtype=np.float32)))


@pytest.mark.parametrize("version", ["2022.12", "2023.12"])
def test_the_family_works_on_standards_without_scalars_in_where(version):
    """Before 2024.12 the standard's ``where`` takes arrays only: alpha_dropout's dropped value (a
    Python float) raised AttributeError there. Its values are the reference's, on every version."""
    values = np.linspace(-3.0, 3.0, 40, dtype=np.float32).reshape(5, 8)
    xps.set_array_api_strict_flags(api_version=version)
    try:
        y, keep = unidrop.alpha_dropout(xps.asarray(values), 0.3, seed=5, return_mask=True)
        got, kept = np.asarray(y), np.asarray(keep)
    finally:
        xps.reset_array_api_strict_flags()
    pairs, want_keep = reference.alpha_dropout(
        values.reshape(-1).tolist(), values.shape, "float32", 0.3, 5, 0
    )
    np.testing.assert_array_equal(kept.reshape(-1), np.array(want_keep))
    same_or_either(got, pairs, f"alpha_dropout, standard {version}")


@pytest.mark.parametrize(
    "x",
    [np.ma.masked_array([1.0, 2.0, 3.0, 4.0], mask=[0, 1, 0, 0]), np.matrix([[1.0, 2.0], [3.0, 4.0]])],
    ids=["masked", "matrix"],
)
def test_numpy_subclasses_are_refused_rather_than_read_as_plain_data(x):
    """A masked array once came back as a plain array with its masked element scaled nowhere."""
    with pytest.raises(
        TypeError, match=r"plain numpy\.ndarray, got the subclass numpy\.(ma\.MaskedArray|matrix)"
    ):
        unidrop.dropout(x, 0.4, seed=1, backend="array_api")


def test_a_byte_swapped_numpy_array_is_refused_naming_the_byte_order():
    with pytest.raises(TypeError, match=r"native byte order, got dtype '>f4' \(float32"):
        unidrop.dropout(np.ones(3, ">f4"), 0.4, seed=1, backend="array_api")


def test_inplace_refuses_numpy_arrays_it_cannot_hold_the_result_in_and_draws_no_seed():
    """Elements sharing memory would each end with the last write (every row alike); a read-only
    array was refused only after the work. Both are refused before a missing seed is drawn."""
    shared = np.lib.stride_tricks.as_strided(np.arange(4.0), (3, 4), (0, 8))
    read_only = np.ones(4)
    read_only.flags.writeable = False
    for x, message in [(shared, "share memory"), (read_only, "read-only")]:
        before = np.array(x)
        unidrop.manual_seed(3)
        with pytest.raises(ValueError, match=message):
            unidrop.dropout(x, 0.4, backend="array_api", inplace=True)
        drawn_after_refusal = unidrop.seeding.draw_seed()
        unidrop.manual_seed(3)
        assert drawn_after_refusal == unidrop.seeding.draw_seed(), "the refusal drew a seed"
        np.testing.assert_array_equal(np.array(x), before)


def test_a_0d_numpy_array_gives_0d_arrays_as_the_numpy_backend_does():
    """NumPy's arithmetic makes 0-d results scalars; through backend="array_api" the results (and
    the mask) are 0-d arrays, as the input, with the NumPy backend's values."""
    z = np.array(2.0, np.float32)
    y, keep = unidrop.dropout(z, 0.5, seed=1, backend="array_api", return_mask=True)
    assert type(y) is np.ndarray and y.shape == () and type(keep) is np.ndarray and keep.dtype == bool
    assert y == unidrop.dropout(z, 0.5, seed=1)
    for name in ("alpha_dropout", "gaussian_dropout"):
        got = getattr(unidrop, name)(z, 0.5, seed=1, backend="array_api")
        assert type(got) is np.ndarray and got.shape == (), name
        np.testing.assert_array_equal(got, getattr(unidrop, name)(z, 0.5, seed=1), name)


def test_a_library_without_uint64_is_named_not_left_to_wrap():
    """JAX without 64-bit types makes uint32 when asked for uint64: the words would wrap; a
    TypeError says what happened and how to fix it."""
    from types import SimpleNamespace

    from unidrop_array_api.philox_words import require_uint64

    xp = SimpleNamespace(uint64="uint64")
    made = SimpleNamespace(dtype="uint32")
    with pytest.raises(TypeError, match=r"made uint32 when asked for uint64\. With JAX, enable 64-bit types"):
        require_uint64(xp, made)
    fine = SimpleNamespace(dtype="uint64")
    assert require_uint64(xp, fine) is fine
