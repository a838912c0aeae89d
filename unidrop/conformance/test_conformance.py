"""Entry module of ``pytest --pyargs unidrop.conformance --unidrop-backend NAME``."""

from unidrop.conformance.suite import ConformanceSuite


class TestConformance(ConformanceSuite):
    """The suite on the backend named by ``--unidrop-backend``."""
