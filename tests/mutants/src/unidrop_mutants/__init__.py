"""Mutants of mask stream v1 for the conformance suite's meta-tests (issue 10): one defect each.

Importing this package imports no NumPy. :data:`~unidrop_mutants.backend.MUTANTS` lists them;
``tests/test_mutants.py`` runs the suite on each and checks that it is caught.
"""

from .backend import CONTROL, DESCRIPTORS, MUTANTS, MutantBackend

__all__ = ["CONTROL", "DESCRIPTORS", "MUTANTS", "MutantBackend"]
