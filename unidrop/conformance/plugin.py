"""The conformance suite's view of its pytest plugin (the hooks live in ``_unidrop_pytestplugin``)."""

from _unidrop_pytestplugin import CI_PROFILE, devices_for, selected_backend

__all__ = ["CI_PROFILE", "devices_for", "selected_backend"]
