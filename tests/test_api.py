"""The public API's validation, as users meet it (backend-independent rules)."""

from __future__ import annotations

import os
import warnings
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import unidrop
from unidrop import arguments, seeding


def test_eval_and_p_zero_still_refuse_out_of_range_integer_seeds():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="seed must be an integer in"):
        unidrop.dropout(x, 0.0, seed=-1)
    with pytest.raises(ValueError, match="stream must be an integer in"):
        unidrop.dropout(x, 0.5, training=False, stream=1 << 64)


@pytest.mark.parametrize("training", ["yes", None, 2, 0.5])
def test_training_must_be_a_bool(training):
    with pytest.raises(TypeError, match=f"training must be True or False, got {training!r}"):
        unidrop.dropout(np.ones(3), 0.5, seed=0, training=training)


@pytest.mark.parametrize(
    ("training", "is_identity"), [(np.False_, True), (0, True), (np.True_, False), (1, False)]
)
def test_numpy_bools_and_0_1_are_taken_as_training_flags(training, is_identity):
    x = np.ones(64, np.float32)
    assert (unidrop.dropout(x, 0.5, seed=0, training=training) is x) == is_identity


@pytest.mark.parametrize(
    "p", [np.float32(0.25), np.array(0.25), Fraction(1, 4), Decimal("0.25"), np.array(0.25, dtype=object)]
)
def test_p_may_be_any_real_scalar(p):
    x = np.ones(64, np.float32)
    np.testing.assert_array_equal(unidrop.dropout(x, p, seed=3), unidrop.dropout(x, 0.25, seed=3))


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_p_held_by_an_ml_dtypes_float_is_taken(name):
    """JAX's bfloat16 and the float8 types (ml_dtypes: NumPy's kind "V") hold real numbers too."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = getattr(ml_dtypes, name)
    x = np.ones(64, np.float32)
    for p in (dtype(0.25), np.array(0.25, dtype)):
        np.testing.assert_array_equal(unidrop.dropout(x, p, seed=3), unidrop.dropout(x, 0.25, seed=3))


@pytest.mark.parametrize(
    "p",
    [
        np.complex64(0.5),
        np.array([0.5]),
        "0.5",
        b"0.5",
        True,
        np.array("0.5", dtype=object),
        np.zeros((), "V4"),  # raw bytes, NumPy's other kind "V"
    ],
)
def test_p_that_is_not_one_real_number_is_refused(p):
    with pytest.raises(TypeError, match="p must be a real number in"):
        unidrop.dropout(np.ones(3), p, seed=0)


@pytest.mark.parametrize(
    "p",
    [
        np.True_,
        np.False_,
        np.array(True),
        np.array(False),
        np.array(0.5j),
        np.complex128(0.5),
        np.array(True, dtype=object),  # a 0-d object array holding a bool is a bool too
        np.array(np.False_, dtype=object),
        np.array("0.5"),  # a string held in an array is a string: float() would parse it
        np.array(b"0.5"),
        np.array(" 0.25 "),
        np.datetime64("2020"),
        np.timedelta64(1),  # registers as an integer, but is a duration (it dropped everything)
        np.timedelta64(0, "ns"),
        np.array(np.timedelta64(1)),
    ],
)
def test_bool_and_complex_valued_p_is_refused_like_python_true(p):
    x = np.ones(64, np.float32)
    with pytest.raises(TypeError, match=r"p must be a real number in \[0, 1\], got "):
        unidrop.dropout(x, p, seed=0)


def test_a_torch_bool_tensor_is_refused_as_p():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="p must be a real number"):
        unidrop.dropout(np.ones(64, np.float32), torch.tensor(True), seed=0)
    with pytest.raises(TypeError, match="p must be a real number"):
        unidrop.dropout(np.ones(64, np.float32), torch.tensor(0.5j), seed=0)


@pytest.mark.parametrize(
    "p",
    [
        10**400,
        -(10**400),
        Fraction(10**400, 3),
        Decimal(10**400),
        Decimal("1e400"),
        10**5000,
        Decimal("sNaN"),
    ],
    ids=["int", "negative-int", "fraction", "decimal", "decimal-exponent", "past-str-digits-limit", "snan"],
)
def test_p_too_large_for_a_float_or_nan_is_a_short_value_error(p):
    with pytest.raises(ValueError, match=r"p must be a real number in \[0, 1\], got ") as info:
        unidrop.dropout(np.ones(3, np.float32), p, seed=0)
    message = str(info.value)
    assert len(message) < 160, message
    assert "static" not in message


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"seed": 10**400}, "seed"),
        ({"stream": -(10**400)}, "stream"),
        ({"seed": 10**5000}, "seed"),
        ({"broadcast_dims": (10**400,)}, "broadcast_dims"),
    ],
)
def test_huge_integers_are_abbreviated_in_messages(kwargs, what):
    with pytest.raises(ValueError, match=what) as info:
        unidrop.dropout(np.ones(3, np.float32), 0.5, **{"seed": 0, **kwargs})
    assert len(str(info.value)) < 160, str(info.value)
    assert "0000000000000000000000" not in str(info.value)


def test_p_that_cannot_be_read_gets_the_jit_hint_only_when_traced():
    def unreadable(module: str, name: str) -> Any:
        def fail(self: Any) -> float:
            raise RuntimeError("abstract value")

        return type(name, (), {"__module__": module, "__float__": fail})()

    x = np.ones(3)
    with pytest.raises(TypeError, match="static Python value"):  # duck-typed like jax's tracers
        unidrop.dropout(x, unreadable("jax._src.interpreters.partial_eval", "DynamicJaxprTracer"), seed=0)
    with pytest.raises(TypeError, match="static Python value"):
        unidrop.dropout(x, unreadable("torch.fx.proxy", "Proxy"), seed=0)
    with pytest.raises(TypeError, match="p must be a real number") as info:
        unidrop.dropout(x, unreadable("mylib", "Opaque"), seed=0)
    assert "static" not in str(info.value)
    with pytest.raises(TypeError, match="training must be True or False") as info:
        unidrop.dropout(x, 0.5, seed=0, training=unreadable("mylib", "Opaque"))
    assert "static" not in str(info.value)


def test_a_real_jax_tracer_as_p_gets_the_jit_hint():
    jax = pytest.importorskip("jax")
    with pytest.raises(TypeError, match="static Python value"):
        jax.jit(lambda p: unidrop.dropout(np.ones(3, np.float32), p, seed=0))(0.5)


@pytest.mark.parametrize("identity", [{"p": 0.0}, {"p": 0.5, "training": False}], ids=["p0", "eval"])
@pytest.mark.parametrize(
    ("what", "value"),
    [("seed", 1.5), ("seed", "3"), ("seed", np.True_), ("seed", True), ("stream", 2.0), ("stream", "1")],
)
def test_identity_path_still_checks_seed_and_stream_types(identity, what, value):
    x = np.ones(8, np.float32)
    kwargs = {"seed": 0, "stream": 0, what: value}
    with pytest.raises(TypeError, match=f"{what} must be an integer in .*got {value!r}"):
        unidrop.dropout(x, **identity, **kwargs)


@pytest.mark.parametrize(
    "randomness",
    [{"seed": None}, {"seed": np.uint64(2**64 - 1), "stream": np.int32(3)}, {"seed": 7, "stream": 2**63}],
)
def test_identity_path_returns_x_itself_for_valid_seed_and_stream(randomness):
    x = np.ones(8, np.float32)
    assert unidrop.dropout(x, 0.0, **randomness) is x
    assert unidrop.dropout(x, 0.5, training=False, **randomness) is x


def test_identity_path_runs_the_backends_own_check_and_draws_nothing():
    from unidrop_numpy.implementation import NumpyImplementation

    calls = []

    class CheckedImplementation(NumpyImplementation):
        def check_randomness(self, seed, stream, x):
            calls.append((seed, stream, x))
            if seed == "key":
                return
            raise ValueError(f"checked-numpy refuses seed {seed!r}")

        def resolve_randomness(self, seed, stream, x):
            raise AssertionError("the identity path must not resolve (draw) randomness")

    class Checked(type(unidrop.get_backend("numpy"))):
        name = "checked-numpy"

        def load(self):
            return CheckedImplementation()

    backend, x = Checked(), np.ones(4, np.float32)
    assert unidrop.dropout(x, 0.0, seed="key", stream=5, backend=backend) is x
    assert calls == [("key", 5, x)]
    with pytest.raises(ValueError, match="checked-numpy refuses seed 9"):
        unidrop.dropout(x, 0.5, training=False, seed=9, backend=backend)


def test_default_check_randomness_touches_no_random_state():
    implementation, x = unidrop.get_backend("numpy").implementation(), np.ones(4, np.float32)
    before = seeding._source.getstate()
    implementation.check_randomness(None, 0, x)
    implementation.check_randomness(2**64 - 1, 2**64 - 1, x)
    assert seeding._source.getstate() == before
    with pytest.raises(TypeError, match=r"stream must be an integer in .*got 1\.5"):
        implementation.check_randomness(None, 1.5, x)


def _masks_in_forked_child(x: np.ndarray) -> str:
    """Fork; the child draws one seed=None mask and reports it as a bit string."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)  # JAX's, if loaded
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            keep = unidrop.dropout(x, 0.5, return_mask=True)[1]
            os.write(write_end, "".join("1" if k else "0" for k in keep).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        bits = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert status == 0, "the forked child failed"
    return bits


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork exists on POSIX only")
def test_forked_children_draw_different_masks_and_manual_seed_still_reproduces():
    x = np.ones(128, np.float32)

    def bits(y):
        return "".join("1" if k else "0" for k in y != 0)

    unidrop.manual_seed(2024)
    first = bits(unidrop.dropout(x, 0.5))
    children = [_masks_in_forked_child(x) for _ in range(2)]
    second = bits(unidrop.dropout(x, 0.5))
    assert children[0] != children[1], "two forked children drew the same seed=None mask"
    assert second not in children, "a forked child drew the parent's next mask"
    unidrop.manual_seed(2024)  # the parent's own draws stay reproducible across the forks
    assert [bits(unidrop.dropout(x, 0.5)), bits(unidrop.dropout(x, 0.5))] == [first, second]


def test_return_mask_must_be_a_bool():
    with pytest.raises(TypeError, match="return_mask must be True or False"):
        unidrop.dropout(np.ones(3), 0.5, seed=0, return_mask=1)


def test_complex_input_is_refused_naming_its_dtype():
    # bfloat16 is allowed too where ml_dtypes is installed (the nox numpy pins include it)
    with pytest.raises(
        TypeError,
        match=r"dtype complex64; the supported floating dtypes: float16, (bfloat16, )?float32, float64",
    ):
        unidrop.dropout(np.ones(3, np.complex64), 0.5, seed=0)


@pytest.mark.parametrize("dtype", ["float128", "float8_e4m3fn", "bfloat16", "longdouble"])
def test_an_unsupported_floating_dtype_is_named_with_the_supported_ones(dtype):
    message = r"does not support dtype \w+; the supported floating dtypes: float16, float32, float64$"
    with pytest.raises(TypeError, match=message):
        arguments.check_dtype(dtype, {"float16", "float32", "float64"})


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64 here")
def test_a_numpy_long_double_array_is_refused_as_unsupported_not_as_non_float():
    with pytest.raises(
        TypeError, match=r"does not support dtype float(96|128); .* float16, (bfloat16, )?float32, float64"
    ):
        unidrop.dropout(np.ones(3, np.longdouble), 0.5, seed=0)


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool", "object", "datetime64"])
def test_a_non_floating_dtype_still_needs_a_floating_point_array(dtype):
    with pytest.raises(
        TypeError, match=rf"needs a floating-point array; got dtype {dtype}, allowed: float16"
    ):
        arguments.check_dtype(dtype, {"float16", "float32", "float64"})


def test_bad_p_is_refused_before_anything_else_happens():
    x = np.ones(3, np.float32)
    before = x.copy()
    with pytest.raises(ValueError, match=r"got 1\.01"):
        unidrop.dropout(x, 1.01, seed=0)
    np.testing.assert_array_equal(x, before)


def test_a_single_int_is_accepted_as_broadcast_dims():
    x = np.ones((3, 4), np.float32)
    y = unidrop.dropout(x, 0.5, seed=1, broadcast_dims=0)
    np.testing.assert_array_equal(y, unidrop.dropout(x, 0.5, seed=1, broadcast_dims=(0,)))
    assert (y == y[0]).all()


def test_manual_seed_makes_seed_none_reproducible_and_validates():
    x = np.ones(256, np.float32)
    unidrop.manual_seed(7)
    first = unidrop.dropout(x, 0.5)
    unidrop.manual_seed(7)
    np.testing.assert_array_equal(unidrop.dropout(x, 0.5), first)
    with pytest.raises(ValueError, match="seed must be an integer"):
        unidrop.manual_seed(-3)


def test_a_broadcast_axis_of_a_0d_array_is_refused_saying_it_has_none():
    with pytest.raises(ValueError, match=r"axis 0 is out of range .* 0 dimensions \(a 0-d array has no axes"):
        unidrop.dropout(np.array(1.0, np.float32), 0.5, seed=1, broadcast_dims=(0,))
    with pytest.raises(ValueError, match=r"\(allowed: -2 \.\. 1\)"):
        unidrop.dropout(np.ones((2, 3), np.float32), 0.5, seed=1, broadcast_dims=(2,))
