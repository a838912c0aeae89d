"""The mutants: mask stream v1 (:class:`unidrop_mutants.stream.StreamV1`) with one defect each.

Each is an Implementation subclass whose docstring says its defect in one line and whose
``caught_by`` names the conformance suite's test(s) that must catch it. By concern:
:mod:`.randomness` (key, counter, lanes, threshold, chunks), :mod:`.arithmetic` (scale, compute
dtype, rounding, subnormals, overflow, signed zeros), :mod:`.layout`, :mod:`.state` (masks,
buffers, random state, seeds) and :mod:`.paths` (jit and gradients). Each is registered by
:data:`unidrop_mutants.backend.MUTANTS`.
"""
