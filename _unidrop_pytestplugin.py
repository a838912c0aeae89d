"""pytest plugin of unidrop's conformance suite (entry point ``pytest11: unidrop``).

A top-level module, as Hypothesis's ``_hypothesis_pytestplugin`` is, so that pytest loading
it in any project imports neither unidrop (whose import discovers the installed backends)
nor Hypothesis. It is inert unless asked: it adds the ``unidrop`` option group; the
deterministic Hypothesis profile ``unidrop-ci`` is registered only when ``--unidrop-backend``
or ``--hypothesis-profile=unidrop-ci`` is given, and loaded when ``--unidrop-backend`` is given
without a ``--hypothesis-profile``; and it parametrizes only tests of a class built on the
suite's parts (:class:`unidrop.conformance.helpers.SuitePart`), looking for one only once the
suite is in ``sys.modules``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the plugin imports no unidrop module until a conformance test asks for one
    from unidrop.conformance.adapter import SuiteAdapter

#: A deterministic Hypothesis profile for CI: ``--hypothesis-profile=unidrop-ci``.
CI_PROFILE = "unidrop-ci"

_options: dict[str, object] = {"backend": None, "devices": None, "usage_error": None}


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


def register_ci_profile() -> None:
    """Register the deterministic CI profile (imports Hypothesis, so only when it is wanted)."""
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        CI_PROFILE,
        derandomize=True,
        max_examples=40,
        deadline=None,
        print_blob=True,
        suppress_health_check=_suppressed(HealthCheck),
    )


def _suppressed(health_check: Any) -> list[Any]:
    """too_slow, and differing_executors where Hypothesis has it (6.80, the floor, has not): a
    session running several suite subclasses (a backend's tests with two of them, the mutant
    family) runs the same ``@given`` test on instances of each."""
    names = ("too_slow", "differing_executors")
    return [getattr(health_check, name) for name in names if hasattr(health_check, name)]


@pytest.hookimpl(tryfirst=True)  # before Hypothesis's own plugin loads --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    _options["backend"] = config.getoption("--unidrop-backend")
    _options["devices"] = config.getoption("--unidrop-device")
    _options["usage_error"] = None
    profile = config.getoption("--hypothesis-profile", default=None)
    if _options["backend"] is not None or profile == CI_PROFILE:
        register_ci_profile()
    if _options["backend"] is not None and profile is None:
        # the suite is being run (the README's command): deterministic, with no deadline that a
        # first, slower example (a JAX compile, a cold cache) would miss; --hypothesis-profile wins
        from hypothesis import settings

        settings.load_profile(CI_PROFILE)
    if isinstance(_options["backend"], str):  # refuse a bad backend or device before collecting
        check_devices(_adapter_of(_options["backend"]))


def check_devices(backend: SuiteAdapter) -> None:
    """A pytest.UsageError where the suite, run on ``backend``, would check no device: a
    ``--unidrop-device`` it does not report, or no device at all (a GPU backend without a GPU)."""
    if not devices_for(backend):
        raise pytest.UsageError(
            f"the unidrop backend {backend.name!r} reports no device here (its devices() is empty): "
            "there is nothing to check (a GPU backend needs a GPU this process can see)"
        )


def _adapter_of(name: str) -> SuiteAdapter:
    """The suite adapter of the installed backend ``name``; a pytest.UsageError saying what is wrong."""
    from unidrop import get_backend

    try:
        return get_backend(name).suite_adapter()
    except (LookupError, ValueError, TypeError, NotImplementedError) as error:
        raise pytest.UsageError(f"--unidrop-backend: {error}") from None


def selected_backend() -> str | None:
    """The backend named by ``--unidrop-backend``, if any."""
    name = _options["backend"]
    return name if isinstance(name, str) else None


def devices_for(backend: SuiteAdapter) -> list[str]:
    """The devices to check: ``--unidrop-device`` values, or every device the backend reports.

    A ``--unidrop-device`` the backend does not report (a typo, ``cuda:0`` without a GPU)
    is a pytest.UsageError listing the backend's devices.
    """
    available = backend.devices()
    chosen = _options["devices"]
    if not (isinstance(chosen, list) and chosen):
        return available
    unknown = [device for device in chosen if device not in available]
    if unknown:
        raise pytest.UsageError(
            f"--unidrop-device {', '.join(map(repr, unknown))}: not a device of the unidrop backend "
            f"{backend.name!r} here; its devices: {', '.join(available) or 'none'}"
        )
    return list(chosen)


def pytest_collection_finish(session: pytest.Session) -> None:
    """End the run with a usage error found while parametrizing a subclassed suite (a bad device)."""
    error = _options["usage_error"]
    if isinstance(error, pytest.UsageError):
        _options["usage_error"] = None
        raise error


#: The module of the suite parts' base class: imported by every class built on the suite.
_PARTS_MODULE = "unidrop.conformance.helpers"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``unidrop_device`` and ``unidrop_dtype`` for tests of a suite part's subclass.

    A class built on the suite has imported it, so with the suite not in ``sys.modules`` no
    test can be one of its own: the hook then imports nothing (as Hypothesis's plugin does).
    """
    if _PARTS_MODULE not in sys.modules:
        return
    wanted = {"unidrop_device", "unidrop_dtype"} & set(metafunc.fixturenames)
    if not wanted or metafunc.cls is None:
        return
    suite_part = sys.modules[_PARTS_MODULE].SuitePart
    if not issubclass(metafunc.cls, suite_part):
        return
    try:
        adapter = metafunc.cls().adapter
    except pytest.UsageError as error:  # no --unidrop-backend: one usage error once collection ends
        _options["usage_error"] = error
        for name in sorted(wanted):
            metafunc.parametrize(name, [])
        return
    if "unidrop_device" in wanted:
        try:
            devices = devices_for(adapter)
        except pytest.UsageError as error:  # raised once collection ends, as a usage error
            _options["usage_error"] = error
            devices = []
        metafunc.parametrize("unidrop_device", devices)
    if "unidrop_dtype" in wanted:
        from unidrop.arguments import FLOAT_DTYPES

        dtypes = adapter.dtypes()
        metafunc.parametrize("unidrop_dtype", [d for d in FLOAT_DTYPES if d in dtypes])
