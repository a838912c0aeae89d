"""The layer-seed convention (unidrop.layer_seeds): its formulas, its words and its errors."""

from __future__ import annotations

import pytest

from unidrop import layer_seeds


@pytest.mark.parametrize(
    ("step", "layer", "stream"),
    [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, 4294967296),
        (3, 5, 12884901893),
        (4294967295, 4294967295, 18446744073709551615),
    ],
)
def test_stream_is_step_high_word_and_layer_low_word(step: int, layer: int, stream: int) -> None:
    assert layer_seeds.layer_stream(step, layer) == stream
    assert layer_seeds.stream_words(step, layer) == (step, layer)
    assert layer_seeds.layer_randomness(77, step, layer) == (77, stream)


def test_distinct_steps_and_layers_are_distinct_streams() -> None:
    streams = {layer_seeds.layer_stream(step, layer) for step in range(40) for layer in range(40)}
    assert len(streams) == 1600


@pytest.mark.parametrize("name", ["step", "layer"])
@pytest.mark.parametrize("bad", [-1, 2**32, 2**64, 10**30])
def test_out_of_range_step_or_layer_is_a_value_error_naming_it(name: str, bad: int) -> None:
    args = {"step": 0, "layer": 0, name: bad}
    with pytest.raises(ValueError, match=rf"^{name} must be an integer in \[0, 2\*\*32\), got "):
        layer_seeds.layer_stream(**args)
    with pytest.raises(ValueError, match=rf"^{name} must"):
        layer_seeds.stream_words(**args)


@pytest.mark.parametrize("bad", [True, 1.0, "1", None])
def test_non_integer_step_is_a_type_error_naming_it(bad: object) -> None:
    with pytest.raises(TypeError, match=r"^step must be an integer in \[0, 2\*\*32\), got "):
        layer_seeds.layer_stream(bad, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("bad", "error"), [(-1, ValueError), (2**64, ValueError), (0.5, TypeError)])
def test_base_seed_is_a_64_bit_integer(bad: object, error: type) -> None:
    with pytest.raises(error, match=r"^base_seed must be an integer in \[0, 2\*\*64\)"):
        layer_seeds.layer_randomness(bad, 0, 0)  # type: ignore[arg-type]
    assert layer_seeds.layer_randomness(2**64 - 1, 0, 0) == (2**64 - 1, 0)


def test_paths_from_torch_and_nnx_read_the_same() -> None:
    assert layer_seeds.layer_path(["blocks", "0", "drop"]) == "blocks.0.drop"
    assert layer_seeds.layer_path(("blocks", 0, "drop")) == "blocks.0.drop"
    assert layer_seeds.layer_path(()) == ""


def test_path_key_orders_numbers_numerically_and_reads_torch_and_nnx_paths_alike() -> None:
    paths = ["layers.10.drop", "b", "layers.2.drop", "a.z", "layers.2.attn", "a"]
    ordered = sorted(paths, key=lambda name: layer_seeds.path_key(layer_seeds.torch_path(name)))
    assert ordered == ["a", "a.z", "b", "layers.2.attn", "layers.2.drop", "layers.10.drop"]
    assert layer_seeds.path_key(("layers", 10, "drop")) == layer_seeds.path_key(("layers", "10", "drop"))
    assert layer_seeds.torch_path("") == () and layer_seeds.torch_path("a.0") == ("a", "0")
