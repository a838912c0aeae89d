"""Meta-tests: the conformance suite catches each mutant of tests/mutants at its named test.

tests/mutants (distribution ``unidrop-mutants``, installed by the nox ``tests`` session) holds
mask stream v1 with one subtle defect per backend (issue 10). The whole suite runs once, in one
pytest subprocess, on every mutant and on the unmutated control ``mutant-none``; then each
mutant must fail it, at every test its ``caught_by`` names. A mutant today's suite lets through
is an explicit ``xfail(strict=True)`` saying which check it needs: when the suite grows to catch
it, the xfail fails and must be removed. ``python -m unidrop_mutants.runner`` prints the table.
"""

from __future__ import annotations

import importlib
import inspect
import random
from typing import Any

import numpy as np
import pytest
from unidrop_mutants import CONTROL, DESCRIPTORS, MUTANTS  # tests/mutants: nox -s tests installs it
from unidrop_mutants.runner import Outcome, run_suite
from unidrop_mutants.stream import StreamV1

import unidrop
from unidrop import arguments, reference
from unidrop.philox import element_word

#: The main commit whose suite the survivors below were measured on.
MEASURED_ON = "f146994"

#: mutant slug -> the check the suite needs to catch it (today's suite lets it through).
SURVIVORS = {
    "threshold-rounded": "a p with a fractional p*2**32 just above a word u (t = floor: u kept)",
    "threshold-ceiling": "a p with a fractional p*2**32 just above a word u (t = floor: u kept)",
    "threshold-saturates-at-uint32": "p = 1 on an element whose word is 2**32 - 1 (a precomputed seed)",
    "chunk-starts-one-block-early": "exact results at sampled indices past 2**20 elements",
    "chunk-restarts-lanes": "exact results at sampled indices of a mask of millions of elements",
    "tiny-p-unscaled": "float64 with p < 2**-32: nothing dropped, kept elements scaled by 1/(1-p) > 1",
    "half-via-float64": "every 16-bit bit pattern at several p (double rounding through float32)",
    "half-saturates": "every 16-bit bit pattern at several p (overflow gives inf)",
    "flushes-float32-subnormals": "subnormal float32 inputs and results (kept subnormals exact)",
    "flushes-float64-subnormals": "subnormal float64 inputs and results (kept subnormals exact)",
    "overflow-clamped": "float32/float64 products that overflow give inf",
    "fortran-3d-in-memory-order": "3-D Fortran-ordered inputs",
    "negative-strides-in-memory-order": "negative-stride views (x[::-1], x[:, ::-2])",
    "zero-strides-share-mask": "zero-stride views (np.broadcast_to)",
    "identity-mask-uint8": "the identity mask's dtype is bool (p = 0 and eval)",
    "draws-from-numpy-global-rng-when-large": "the whole global RNG state after a call on a large array",
    "seed-none-low-entropy": "the entropy of seed=None (many draws, all distinct masks)",
    "jit-drops-stream-high-word": "jit with a stream >= 2**32",
    "gradient-drops-seed-high-word": "the gradient with a seed >= 2**32",
    "gradient-ignores-broadcast-dims": "the gradient with broadcast_dims",
    "gradient-uses-stale-mask": "the gradient of a function calling dropout twice",
}


def implementation_of(backend: str) -> StreamV1:
    made = unidrop.get_backend(backend).implementation()
    assert isinstance(made, StreamV1)
    return made


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The whole suite on the control and every mutant: one pytest run (about a minute on 2 cores)."""
    return run_suite(list(DESCRIPTORS), tmp_path_factory.mktemp("mutants"))


def test_every_mutant_is_installed_and_registered_once() -> None:
    installed = {i.name for i in unidrop.list_backends() if i.distribution == "unidrop-mutants"}
    assert installed == set(DESCRIPTORS) == {CONTROL, *(f"mutant-{slug}" for slug in MUTANTS)}
    assert len(MUTANTS) >= 30
    assert set(SURVIVORS) <= set(MUTANTS)


def test_every_defect_class_is_a_registered_mutant_with_a_one_line_defect_and_a_catcher() -> None:
    defined = set()
    for module in ("randomness", "arithmetic", "layout", "state", "paths"):
        found = importlib.import_module(f"unidrop_mutants.defects.{module}")
        defined |= {
            f"{module}.{name}"
            for name, cls in vars(found).items()
            if inspect.isclass(cls) and issubclass(cls, StreamV1) and cls.__module__ == found.__name__
            if not name.startswith("_")
        }
    assert defined == set(MUTANTS.values())
    for slug in MUTANTS:
        mutant = type(implementation_of(f"mutant-{slug}"))
        assert mutant is not StreamV1 and mutant.caught_by, slug
        assert len((mutant.__doc__ or "").strip().splitlines()) == 1, f"{slug}: say the defect in one line"


def test_the_unmutated_control_passes_the_whole_suite(outcomes: dict[str, Outcome]) -> None:
    """Without this the kills below would mean nothing: the base every mutant changes is correct."""
    control = outcomes[CONTROL]
    assert control.failed == set()
    assert control.skipped == set(), "autograd and jit are declared, so nothing is skipped"
    assert len(control.passed) > 80


def _cases() -> list[Any]:
    cases = []
    for slug in MUTANTS:
        marks = []
        if slug in SURVIVORS:
            reason = f"survives the suite as of {MEASURED_ON}: needs {SURVIVORS[slug]}"
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        cases.append(pytest.param(slug, marks=marks, id=slug))
    return cases


@pytest.mark.parametrize("slug", _cases())
def test_the_suite_kills_the_mutant_at_its_named_test(slug: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[f"mutant-{slug}"]
    caught_by = type(implementation_of(f"mutant-{slug}")).caught_by
    assert outcome.failed, f"mutant-{slug} passed the whole suite ({len(outcome.passed)} tests)"
    missed = [test for test in caught_by if not outcome.caught_at(test)]
    assert not missed, f"mutant-{slug}: {missed} did not fail; what failed: {sorted(outcome.failed)}"


# ---- each survivor is really wrong: an input on which it differs from the reference ----------
# (so its xfail is a gap in the suite, not a mutant no test could ever catch)


def _reference(values: Any, p: float, seed: int, stream: int = 0, dims: tuple[int, ...] = ()) -> Any:
    values = np.asarray(values)
    dtype = "bfloat16" if values.dtype.name == "bfloat16" else values.dtype.name
    y, _ = reference.dropout(
        values.astype(np.float64).reshape(-1).tolist(), values.shape, dtype, p, seed, stream, dims
    )
    return np.array(y).reshape(values.shape)


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(
        np.all((a == b) & (np.signbit(a) == np.signbit(b)) | (np.isnan(a) & np.isnan(b)))
    )


def _differs_from_reference(
    backend: str, x: Any, p: float, seed: int, stream: int = 0, dims: tuple[int, ...] = ()
) -> bool:
    got = unidrop.dropout(x, p, seed=seed, stream=stream, broadcast_dims=dims, backend=backend)
    return not _same(got, _reference(np.array(x), p, seed, stream, dims))


def _word_threshold_witness(backend: str, fraction: float) -> bool:
    u = element_word(7, 0, 5)
    return _differs_from_reference(backend, np.ones(8, np.float32), (u + fraction) / 2**32, 7)


def _large_witness(backend: str, n: int) -> bool:
    _, keep = unidrop.dropout(np.ones(n, np.float32), 0.5, seed=3, return_mask=True, backend=backend)
    t = arguments.threshold(0.5)
    return any(bool(keep[i]) != (element_word(3, 0, i) >= t) for i in range(n - 64, n))


def _layout_witness(backend: str, view: Any) -> bool:
    got = unidrop.dropout(view, 0.5, seed=11, backend=backend)
    return not _same(got, _reference(np.ascontiguousarray(view), 0.5, 11))


def _global_rng_witness(backend: str, n: int) -> bool:
    before = np.random.get_state()
    unidrop.dropout(np.ones(n, np.float32), 0.5, seed=1, backend=backend)
    after = np.random.get_state()
    np.random.set_state(before)
    return any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def _seed_none_witness(backend: str) -> bool:
    unidrop.manual_seed(0)
    x = np.ones(64, np.float32)
    masks = {unidrop.dropout(x, 0.5, backend=backend).tobytes() for _ in range(1000)}
    unidrop.manual_seed(random.SystemRandom().getrandbits(64))
    return len(masks) < 1000  # 64-bit seeds: a repeat has probability about 2**-45


def _path_witness(backend: str, path: str, fn: Any, expected: Any, x: Any) -> bool:
    adapter = unidrop.get_backend(backend).suite_adapter()
    got = adapter.jit(fn)(x) if path == "jit" else adapter.vjp(fn, np.ones_like(x), x)[1]
    return not _same(got, expected)


def _half_witness(backend: str, p: float) -> bool:
    """Every finite float16 value, where kept, against the reference's rounding."""
    values = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    values = values[np.isfinite(values)]
    got = np.asarray(unidrop.dropout(values, p, seed=0, backend=backend), np.float64)
    return any(
        not _same(got[i], reference.scaled(float(values[i]), "float16", p)) for i in np.nonzero(got)[0]
    )


WITNESSES = {
    "threshold-rounded": lambda b: _word_threshold_witness(b, 0.75),
    "threshold-ceiling": lambda b: _word_threshold_witness(b, 0.25),
    "chunk-starts-one-block-early": lambda b: _large_witness(b, (1 << 20) + 64),
    "chunk-restarts-lanes": lambda b: _large_witness(b, 1_000_050),
    "tiny-p-unscaled": lambda b: _differs_from_reference(b, np.full(8, 1.5), 2.0**-40, 1),
    "half-via-float64": lambda b: _half_witness(b, 0.1) or _half_witness(b, 0.7),
    "half-saturates": lambda b: _differs_from_reference(b, np.full(16, 60000, np.float16), 0.5, 1),
    "flushes-float32-subnormals": lambda b: _differs_from_reference(
        b, np.full(16, 3e-39, np.float32), 0.5, 1
    ),
    "flushes-float64-subnormals": lambda b: _differs_from_reference(b, np.full(16, 1e-310), 0.5, 1),
    "overflow-clamped": lambda b: _differs_from_reference(b, np.full(16, 3e38, np.float32), 0.5, 1),
    "fortran-3d-in-memory-order": lambda b: _layout_witness(
        b, np.asfortranarray(np.arange(60.0).reshape(3, 4, 5))
    ),
    "negative-strides-in-memory-order": lambda b: _layout_witness(b, np.arange(64.0)[::-1]),
    "zero-strides-share-mask": lambda b: _layout_witness(b, np.broadcast_to(np.arange(1.0, 17.0), (4, 16))),
    "identity-mask-uint8": lambda b: (
        unidrop.dropout(np.ones(4), 0.0, return_mask=True, backend=b)[1].dtype != bool
    ),
    "draws-from-numpy-global-rng-when-large": lambda b: _global_rng_witness(b, 1 << 16),
    "seed-none-low-entropy": _seed_none_witness,
    "jit-drops-stream-high-word": lambda b: _path_witness(
        b,
        "jit",
        lambda a: unidrop.dropout(a, 0.5, seed=1, stream=1 << 33, backend=b),
        _reference(np.ones(64), 0.5, 1, 1 << 33),
        np.ones(64),
    ),
    "gradient-drops-seed-high-word": lambda b: _path_witness(
        b,
        "grad",
        lambda a: unidrop.dropout(a, 0.5, seed=1 << 33, backend=b),
        _reference(np.ones(64), 0.5, 1 << 33),
        np.ones(64),
    ),
    "gradient-ignores-broadcast-dims": lambda b: _path_witness(
        b,
        "grad",
        lambda a: unidrop.dropout(a, 0.5, seed=1, broadcast_dims=(0,), backend=b),
        _reference(np.ones((4, 16)), 0.5, 1, 0, (0,)),
        np.ones((4, 16)),
    ),
    "gradient-uses-stale-mask": lambda b: _path_witness(
        b,
        "grad",
        lambda a: unidrop.dropout(a, 0.5, seed=1, backend=b) + unidrop.dropout(a, 0.5, seed=2, backend=b),
        _reference(np.ones(64), 0.5, 1) + _reference(np.ones(64), 0.5, 2),
        np.ones(64),
    ),
}


@pytest.mark.parametrize("slug", sorted(WITNESSES))
def test_a_survivor_differs_from_the_reference_on_its_witness(slug: str) -> None:
    """The survivor is really wrong (its witness input shows it); the control is right on the same input."""
    assert WITNESSES[slug](f"mutant-{slug}"), f"mutant-{slug} matched the reference on its witness"
    assert not WITNESSES[slug](CONTROL), f"the control differs from the reference on the witness of {slug}"


def test_every_survivor_has_a_witness_but_the_uint32_threshold() -> None:
    assert set(WITNESSES) == set(SURVIVORS) - {"threshold-saturates-at-uint32"}
