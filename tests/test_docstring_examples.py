"""The examples in unidrop's public docstrings run, and what they show is the reference's answer."""

from __future__ import annotations

import doctest
import warnings

import numpy as np

import unidrop
from unidrop import api, reference


def test_the_examples_of_unidrop_dropout_run_and_print_what_they_show():
    finder = doctest.DocTestFinder()
    tests = [t for t in finder.find(api, "unidrop.api") if t.examples]
    assert [t.name for t in tests] == ["unidrop.api.dropout"]  # the public function has an example
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    with warnings.catch_warnings():
        # the deliberately wrong backends of this session accept NumPy arrays too, and say so
        warnings.filterwarnings("ignore", "several unidrop backends accept", RuntimeWarning)
        for test in tests:
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_the_output_shown_by_the_dropout_example_is_the_references():
    """The shown array is read back and compared with ``unidrop.reference.dropout`` of the same call."""
    (test,) = doctest.DocTestFinder().find(unidrop.dropout, "dropout")
    namespace: dict = {}
    checked = 0
    for example in test.examples:
        if "unidrop.dropout(" not in example.source:
            exec(example.source, namespace)  # the setup lines: imports and x
            continue
        assert example.source.strip() == "unidrop.dropout(x, 0.5, seed=42)", example.source
        x = namespace["x"]
        shown = eval(example.want, {"array": np.array, "float32": np.float32})
        expected, _ = reference.dropout(x.reshape(-1).tolist(), x.shape, x.dtype.name, 0.5, 42)
        assert shown.dtype == x.dtype
        assert shown.tolist() == expected
        checked += 1
    assert checked == 1
