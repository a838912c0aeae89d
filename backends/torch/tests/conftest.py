"""Test settings for the torch backend's own tests."""

from hypothesis import settings

# The suite's deterministic Hypothesis profile (registered by unidrop's pytest plugin), unless
# --hypothesis-profile chooses another: the subclassed suite then runs the same examples every time.
settings.load_profile("unidrop-ci")
