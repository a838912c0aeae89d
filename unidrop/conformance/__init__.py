"""The unidrop conformance suite: the one definition of a correct backend.

Run it on any installed backend with
``pytest --pyargs unidrop.conformance --unidrop-backend NAME`` (or ``unidrop check NAME``),
or subclass :class:`unidrop.conformance.suite.ConformanceSuite` in a backend's own tests.
"""
