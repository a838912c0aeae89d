"""pytest plugin (entry point ``pytest11: unidrop``): the conformance suite's options.

Inert unless asked: it adds an option group and registers a Hypothesis profile; the
suite's tests are collected only from :mod:`unidrop.conformance` or a subclass of
:class:`~unidrop.conformance.suite.ConformanceSuite`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from unidrop.backend import Backend

#: A deterministic Hypothesis profile for CI: ``--hypothesis-profile=unidrop-ci``.
CI_PROFILE = "unidrop-ci"

_options: dict[str, object] = {"backend": None, "devices": None}


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
        help="device to check (repeatable); default: every device the backend reports",
    )


def _register_hypothesis_profile() -> None:
    """Register the CI profile at import, before Hypothesis's own plugin loads ``--hypothesis-profile``."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # pragma: no cover - hypothesis is a dependency of the suite
        return
    settings.register_profile(
        CI_PROFILE,
        derandomize=True,
        max_examples=40,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )


_register_hypothesis_profile()


def pytest_configure(config: pytest.Config) -> None:
    _options["backend"] = config.getoption("--unidrop-backend")
    _options["devices"] = config.getoption("--unidrop-device")


def selected_backend() -> str | None:
    """The backend named by ``--unidrop-backend``, if any."""
    name = _options["backend"]
    return name if isinstance(name, str) else None


def devices_for(backend: Backend) -> list[str]:
    """The devices to check: ``--unidrop-device`` values, or every device the backend reports."""
    chosen = _options["devices"]
    return list(chosen) if isinstance(chosen, list) and chosen else backend.devices()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    wanted = {"unidrop_device", "unidrop_dtype"} & set(metafunc.fixturenames)
    if not wanted or metafunc.cls is None or not hasattr(metafunc.cls, "backend"):
        return
    backend = metafunc.cls().backend
    if "unidrop_device" in wanted:
        metafunc.parametrize("unidrop_device", devices_for(backend))
    if "unidrop_dtype" in wanted:
        from unidrop.contract import FLOAT_DTYPES

        metafunc.parametrize("unidrop_dtype", [d for d in FLOAT_DTYPES if d in backend.dtypes])
