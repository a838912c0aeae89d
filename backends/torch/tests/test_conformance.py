"""The shared conformance suite, run on the torch backend (every device it reports)."""

from unidrop.conformance.suite import ConformanceSuite


class TestTorchConformance(ConformanceSuite):
    backend_name = "torch"
