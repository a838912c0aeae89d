"""pytest plugin (entry point ``pytest11: unidrop``): the conformance suite's options.

Inert unless asked: it adds an option group and a Hypothesis profile, and does
nothing else unless ``--unidrop-backend`` is given.
"""

from __future__ import annotations

import pytest

CI_PROFILE = "unidrop-ci"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("unidrop", "unidrop conformance suite")
    group.addoption(
        "--unidrop-backend",
        action="store",
        default=None,
        metavar="NAME",
        help="run the unidrop conformance suite (pytest --pyargs unidrop.conformance) on this backend",
    )
    group.addoption(
        "--unidrop-device",
        action="append",
        default=None,
        metavar="DEVICE",
        help="devices to check (repeatable); default: every device the backend reports",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # the suite needs Hypothesis; without it the plugin stays inert
        return
    settings.register_profile(
        CI_PROFILE,
        derandomize=True,
        max_examples=60,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
