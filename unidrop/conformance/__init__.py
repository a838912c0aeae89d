"""The unidrop conformance suite: the one definition of a correct backend.

Run it on any installed backend with
``pytest --pyargs unidrop.conformance --unidrop-backend NAME`` (or ``unidrop check NAME``),
or subclass :class:`unidrop.conformance.suite.ConformanceSuite` in a backend's own tests. It
is made of parts that a backend's tests may also compose alone: :mod:`.exactness`,
:mod:`.statistics`, :mod:`.rules` and :mod:`.abilities`, over the shared :mod:`.helpers`, all
reaching the backend through one :mod:`.adapter`.
"""
