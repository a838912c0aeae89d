"""Drop-in parity with torch.nn.functional.dropout and torch.nn.Dropout1d/2d/3d.

Errors and warnings are compared with torch's own modules side by side; mask structure (which
axes share one mask value) is read off torch's output and unidrop's output is checked against
the reference with those axes broadcast. Only the random stream differs.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import unidrop_torch
from torch_helpers import assert_same, expected_output, sample

PAIRS = [
    (unidrop_torch.Dropout1d, torch.nn.Dropout1d),
    (unidrop_torch.Dropout2d, torch.nn.Dropout2d),
    (unidrop_torch.Dropout3d, torch.nn.Dropout3d),
]
SIZES = (3, 4, 5, 2, 3, 2)  # rank r takes the first r: every axis longer than 1


def _outcome(module: torch.nn.Module, x: torch.Tensor) -> tuple[object, list[tuple[type, str]]]:
    """(the result or the exception's type and message, the warnings as (category, message))."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: object = module(x)
        except Exception as error:  # compared with torch's, type and message
            result = (type(error), str(error))
    return result, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=lambda c: getattr(c, "__name__", ""))
@pytest.mark.parametrize("rank", range(7))
@pytest.mark.parametrize(("p", "training"), [(0.5, True), (0.5, False), (1.0, True), (0.0, True)])
def test_channel_dropout_errors_and_warnings_match_torch(
    ours: type, theirs: type, rank: int, p: float, training: bool
) -> None:
    x = torch.ones(SIZES[:rank])
    mine, mine_warnings = _outcome(ours(p, seed=1).train(training), x)
    torch_result, torch_warnings = _outcome(theirs(p).train(training), x)
    assert mine_warnings == torch_warnings
    if isinstance(torch_result, tuple):
        assert mine == torch_result
    else:
        assert isinstance(mine, torch.Tensor) and mine.shape == x.shape


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=lambda c: getattr(c, "__name__", ""))
def test_channel_dropout_shares_the_mask_over_torchs_axes(ours: type, theirs: type) -> None:
    """For every rank torch takes in training, the mask is shared over the axes torch shares it over."""
    checked = []
    for rank in range(7):
        x = torch.ones(SIZES[:rank])
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch_y = theirs(0.5)(x)
            except RuntimeError:  # a rank torch refuses: the test above checks we refuse it too
                continue
            shared = tuple(a for a in range(rank) if bool((torch_y == torch_y.narrow(a, 0, 1)).all()))
            values = sample(SIZES[:rank], torch.float32, seed=rank, specials=False)
            y = ours(0.5, seed=7, stream=rank)(values)
        assert_same(y, expected_output(values, 0.5, 7, rank, shared), f"{theirs.__name__} rank {rank}")
        checked.append((rank, shared))
    assert len(checked) >= 2, checked  # 1d: ranks 2, 3; 2d: 2..6; 3d: 1..6


def test_torch_mask_stream_keeps_torchs_rank_rules() -> None:
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        unidrop_torch.Dropout1d(0.5, mask_stream="torch")(torch.ones(2, 3, 4, 5))
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        unidrop_torch.Dropout2d(0.5, mask_stream="torch")(torch.ones(4, 5))


# -- the functional form: F.dropout's positional arguments and inplace ---------------------------


def test_training_and_inplace_are_positional_like_f_dropout() -> None:
    x = sample((6, 5), torch.float32, seed=1)
    expected = expected_output(x, 0.5, 3)
    assert_same(unidrop_torch.dropout(x, 0.5, True, seed=3), expected, "training positional")
    assert unidrop_torch.dropout(x, 0.5, False, seed=3) is x
    assert unidrop_torch.dropout(input=x, p=0.5, training=False) is x
    out = unidrop_torch.dropout(x, 0.5, True, True, seed=3)
    assert out is x
    assert_same(x, expected, "in place: the input holds the result")


@pytest.mark.parametrize("inplace_call", ["functional", "module"])
def test_inplace_gives_the_out_of_place_values_and_returns_the_input(inplace_call: str) -> None:
    for dtype in (torch.bfloat16, torch.float64):
        x = sample((4, 3, 5), dtype, seed=2)
        y = unidrop_torch.dropout(x, 0.3, seed=9, stream=2, broadcast_dims=(1,))
        target = x.clone()
        if inplace_call == "functional":
            out = unidrop_torch.dropout(target, 0.3, inplace=True, seed=9, stream=2, broadcast_dims=(1,))
        else:
            out = unidrop_torch.Dropout(0.3, True, seed=9, stream=2, broadcast_dims=(1,))(target)
        assert out is target
        assert_same(target, y, f"{dtype} in place")


def test_inplace_with_return_mask_returns_the_input_and_the_mask() -> None:
    x = torch.ones(4, 6)
    y, keep = unidrop_torch.dropout(x, 0.5, True, True, seed=1, return_mask=True)
    assert y is x and keep.dtype == torch.bool and torch.equal(x != 0, keep)


def test_inplace_autograd_follows_torch() -> None:
    leaf = torch.ones(8, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        torch.nn.functional.dropout(leaf, 0.5, True, True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        unidrop_torch.dropout(leaf, 0.5, True, True, seed=1)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        unidrop_torch.Dropout(0.5, inplace=True, seed=1)(leaf)
    assert unidrop_torch.dropout(leaf, 0.5, False, True) is leaf  # nothing to write: as torch
    empty = torch.empty(0, 3, requires_grad=True)  # nothing to write either: torch returns it
    assert torch.nn.functional.dropout(empty, 0.5, True, True) is empty
    assert unidrop_torch.dropout(empty, 0.5, True, True, seed=1) is empty
    assert unidrop_torch.Dropout(0.5, inplace=True, seed=1)(empty) is empty
    # on a non-leaf the gradient flows through the in-place result
    hidden = leaf * 2.0
    unidrop_torch.dropout(hidden, 0.5, True, True, seed=1).sum().backward()
    assert_same(leaf.grad, expected_output(torch.full((8,), 2.0), 0.5, 1), "gradient")


def test_inplace_must_be_a_bool_or_the_1_and_0_torch_takes() -> None:
    with pytest.raises(TypeError, match="inplace must be True or False"):
        unidrop_torch.dropout(torch.ones(3), 0.5, True, "yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="inplace must be True or False"):
        unidrop_torch.Dropout(0.5, 2)  # type: ignore[arg-type]
    x = torch.ones(3)
    assert unidrop_torch.dropout(x, 0.5, True, 1, seed=1) is x  # type: ignore[arg-type]
    assert unidrop_torch.dropout(x, 0.5, True, 0, seed=1) is not x  # type: ignore[arg-type]
    assert unidrop_torch.Dropout(0.5, 1).inplace is True  # type: ignore[arg-type]


def test_a_bad_p_names_it_in_torchs_words_too() -> None:
    """Code that matches torch's message for a p outside [0, 1] still matches."""
    for p in (1.5, -0.1):
        with pytest.raises(
            ValueError, match="dropout probability has to be between 0 and 1, but got"
        ) as torch_error:
            torch.nn.Dropout(p)
        with pytest.raises(ValueError, match=str(torch_error.value)):
            unidrop_torch.Dropout(p)
