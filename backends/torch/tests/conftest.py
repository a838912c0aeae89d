"""Test settings for the torch backend's own tests."""

from hypothesis import settings

from unidrop.conformance.plugin import CI_PROFILE  # importing it registers the profile

# The suite's deterministic Hypothesis profile, unless --hypothesis-profile chooses another:
# the subclassed suite then runs the same examples every time.
settings.load_profile(CI_PROFILE)
