"""``unidrop.Abilities``: the optional abilities a backend declares, checked when declared."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import unidrop


def test_the_abilities_default_to_none_and_each_can_be_declared():
    assert unidrop.Abilities() == unidrop.Abilities(autograd=False, jit=False, explicit_seed=False)
    declared = unidrop.Abilities(autograd=True, jit=True, explicit_seed=True)
    assert (declared.autograd, declared.jit, declared.explicit_seed) == (True, True, True)


@pytest.mark.parametrize("name", ["vmap", "features", "Autograd", "grad"])
def test_an_unknown_ability_is_a_type_error_naming_it(name):
    with pytest.raises(TypeError, match=rf"\b{name}\b"):
        unidrop.Abilities(**{name: True})


@pytest.mark.parametrize("ability", ["autograd", "jit", "explicit_seed"])
@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0, np.True_], ids=repr)
def test_an_ability_that_is_not_a_bool_is_a_type_error_naming_it_and_the_value(ability, value):
    with pytest.raises(TypeError) as info:
        unidrop.Abilities(**{ability: value})
    message = str(info.value)
    assert f"Abilities({ability}=...)" in message and repr(value) in message, message
    assert "True or False" in message, message


def test_declared_abilities_cannot_be_changed_afterwards():
    abilities = unidrop.Abilities()
    with pytest.raises(dataclasses.FrozenInstanceError):
        abilities.autograd = True  # type: ignore[misc]
