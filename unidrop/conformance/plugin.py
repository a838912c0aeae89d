"""The conformance suite's view of its pytest plugin (the hooks live in ``_unidrop_pytestplugin``).

Importing this module registers the deterministic Hypothesis profile ``unidrop-ci``, so a
backend's own tests can ``settings.load_profile(CI_PROFILE)``.
"""

from _unidrop_pytestplugin import (
    CI_PROFILE,
    check_devices,
    devices_for,
    register_ci_profile,
    selected_backend,
)

register_ci_profile()

__all__ = ["CI_PROFILE", "check_devices", "devices_for", "register_ci_profile", "selected_backend"]
