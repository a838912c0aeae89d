"""Test settings for the torch backend's own tests: a deterministic Hypothesis profile."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.errors import InvalidArgument

#: unidrop's CI profile, registered by its pytest plugin only when asked for.
CI_PROFILE = "unidrop-ci"


def pytest_configure(config: pytest.Config) -> None:
    """Unless --hypothesis-profile chose one: the CI profile if registered, else a derandomized one.

    Either way the subclassed conformance suite runs the same examples every time.
    """
    if config.getoption("--hypothesis-profile", default=None) is not None:
        return
    try:
        settings.get_profile(CI_PROFILE)
    except InvalidArgument:
        settings.register_profile("unidrop-torch-tests", derandomize=True, deadline=None)
        settings.load_profile("unidrop-torch-tests")
    else:
        settings.load_profile(CI_PROFILE)
