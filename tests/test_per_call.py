"""The per-call path: one DropoutPlan a call, derived values remembered, every rule still enforced."""

from __future__ import annotations

import numpy as np
import pytest

import unidrop
from unidrop import arguments, reference


def test_one_plan_is_built_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    real = arguments.DropoutPlan.__init__

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(args)
        real(self, *args, **kwargs)

    monkeypatch.setattr(arguments.DropoutPlan, "__init__", counting)
    x = np.ones((3, 4), dtype=np.float32)
    unidrop.dropout(x, 0.5, seed=1, broadcast_dims=(1,))
    assert len(built) == 1


def test_broadcast_dims_are_normalized_once_per_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = arguments.normalize_broadcast_dims
    monkeypatch.setattr(arguments, "_DERIVED", {})
    monkeypatch.setattr(arguments, "normalize_broadcast_dims", lambda *a: calls.append(a) or real(*a))
    x = np.ones((5, 6), dtype=np.float32)
    first = unidrop.dropout(x, 0.5, seed=3, broadcast_dims=(-2,))
    again = unidrop.dropout(x, 0.5, seed=3, broadcast_dims=(-2,))
    assert len(calls) == 1
    assert np.array_equal(first, again)
    expected, _ = reference.dropout([1.0] * 30, (5, 6), "float32", 0.5, 3, 0, (0,))
    assert first.reshape(-1).tolist() == expected


@pytest.mark.parametrize(
    ("remembered", "judged", "error"),
    [
        ((1,), (True,), TypeError),  # (True,) == (1,) as a key: it must still be refused
        (1, True, TypeError),
        ((0,), (0.0,), TypeError),
        ((1,), (1, 1), ValueError),
        ((), (2,), ValueError),
    ],
)
def test_a_remembered_answer_never_lets_a_bad_value_through(
    remembered: object, judged: object, error: type
) -> None:
    x = np.ones((2, 3), dtype=np.float32)
    unidrop.dropout(x, 0.5, seed=1, broadcast_dims=remembered)  # type: ignore[arg-type]
    with pytest.raises(error, match="broadcast_dims"):
        unidrop.dropout(x, 0.5, seed=1, broadcast_dims=judged)  # type: ignore[arg-type]


def test_numpy_integers_and_lists_give_the_plain_int_answer() -> None:
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    plain = unidrop.dropout(x, 0.5, seed=4, broadcast_dims=(0,))
    assert np.array_equal(unidrop.dropout(x, 0.5, seed=4, broadcast_dims=(np.int64(0),)), plain)
    assert np.array_equal(unidrop.dropout(x, 0.5, seed=4, broadcast_dims=[0]), plain)
    assert np.array_equal(unidrop.dropout(x, 0.5, seed=4, broadcast_dims=-2), plain)


def test_the_remembered_answers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arguments, "_DERIVED", {})
    for n in range(1, arguments.DERIVED_CACHE_SIZE + 50):
        arguments.broadcast_and_mask_shape((n, 2), (1,))
    assert len(arguments._DERIVED) <= arguments.DERIVED_CACHE_SIZE
    assert arguments.broadcast_and_mask_shape((7, 2), (1,)) == ((1,), (7, 1))


@pytest.mark.parametrize("supported", [["float32"], ("float32",), iter(["float32"]), {"float32": 1}])
def test_check_dtype_takes_any_collection_of_names(supported: object) -> None:
    assert arguments.check_dtype("float32", supported) == "float32"  # type: ignore[arg-type]


def test_check_dtype_still_names_the_allowed_dtypes() -> None:
    with pytest.raises(TypeError, match=r"got dtype int32, allowed: float32, float64"):
        arguments.check_dtype("int32", iter(["float64", "float32"]))


@pytest.mark.parametrize("value", [True, np.uint64(5), -1, 1 << 64])
def test_check_uint64_fast_path_keeps_every_rule(value: object) -> None:
    if isinstance(value, np.integer):
        assert arguments.check_uint64(value, "seed") == 5
        return
    with pytest.raises((TypeError, ValueError), match="seed must be an integer in"):
        arguments.check_uint64(value, "seed")
