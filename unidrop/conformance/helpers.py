"""What every part of the conformance suite shares: test inputs, comparisons, and the base class.

:class:`SuitePart` is the base of every part (:mod:`.exactness`, :mod:`.statistics`,
:mod:`.rules`, :mod:`.abilities`): it names the backend under test and makes, reads and drops
out arrays through the suite's :class:`~unidrop.conformance.adapter.SuiteAdapter`. The plugin
parametrizes the ``unidrop_device`` and ``unidrop_dtype`` fixtures of any subclass of it.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
import pytest

import unidrop
from unidrop import arguments, reference
from unidrop.backend import Backend

from . import plugin
from .adapter import SuiteAdapter
from .diagnosis import mask_hint


def exact_values(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` (float64) rounded to ``dtype``, returned as float64 holding exact dtype values."""
    if dtype == "bfloat16":
        return np.array([reference.round_to(float(v), "bfloat16") for v in values.ravel()]).reshape(
            values.shape
        )
    return values.astype(dtype).astype(np.float64)


def sample_values(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Deterministic test inputs of ``shape``, exact in ``dtype``, with a few specials mixed in."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * rng.choice([1.0, 100.0, 1e-3], size=shape)
    flat = values.reshape(-1)
    if flat.size >= 8:
        flat[[1, 3, 5, 7]] = [np.nan, np.inf, -np.inf, -0.0]
    return exact_values(values, dtype)


def assert_same_floats(actual: np.ndarray, expected: np.ndarray, context: str) -> None:
    """Equal values with NaN matching NaN, and equal signs of zero (dropped elements are +0)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64).reshape(actual.shape)
    mismatch = ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
    mismatch |= (np.signbit(actual) != np.signbit(expected)) & ~np.isnan(expected)
    if mismatch.any():
        where = np.argwhere(mismatch)[:5].tolist()
        raise AssertionError(
            f"{context}: {int(mismatch.sum())} of {actual.size} elements differ from the expected values, "
            f"first at {where}: got {actual[mismatch][:5].tolist()}, "
            f"expected {expected[mismatch][:5].tolist()}"
        )


def keep_string(keep: np.ndarray) -> str:
    """A keep mask as a string of ``0`` and ``1`` in C order, as the known-answer file writes it."""
    return "".join("1" if k else "0" for k in np.asarray(keep).reshape(-1))


class SuitePart:
    """Base of every part of the conformance suite: the backend under test and how to reach it.

    Set ``backend_name`` in a backend's own tests (otherwise ``--unidrop-backend`` decides);
    override :attr:`adapter` to reach the framework some other way than the backend's own adapter.
    """

    #: Set by a subclass in a backend's own tests; otherwise ``--unidrop-backend`` decides.
    backend_name: ClassVar[str | None] = None

    @property
    def backend(self) -> Backend:
        """The registered backend under test (``unidrop.dropout`` dispatches to it by name)."""
        name = self.backend_name or plugin.selected_backend()
        if name is None:
            raise pytest.UsageError("the unidrop conformance suite needs --unidrop-backend NAME")
        return unidrop.get_backend(name)

    @functools.cached_property
    def adapter(self) -> SuiteAdapter:
        """How the suite makes, reads and inspects arrays: the backend's own ``suite_adapter()``."""
        return self.backend.suite_adapter()

    @property
    def device(self) -> str:
        """The device of the suite's device-independent checks: the first one to check (a skip,
        saying so, where the backend reports none: a GPU backend's own tests without a GPU)."""
        devices = plugin.devices_for(self.adapter)
        if not devices:
            pytest.skip(f"the unidrop backend {self.adapter.name!r} reports no device here")
        return devices[0]

    @property
    def float_dtypes(self) -> list[str]:
        """The float dtypes the backend supports, in the contract's order."""
        dtypes = self.adapter.dtypes()
        return [d for d in arguments.FLOAT_DTYPES if d in dtypes]

    def make(self, values: np.ndarray, dtype: str, device: str | None = None) -> Any:
        """A backend array of ``values`` (exact in ``dtype``) as ``dtype`` on ``device``."""
        with np.errstate(invalid="ignore"):  # a signalling NaN converts to a NaN, as wanted
            host = values.astype(np.float64 if dtype == "float64" else np.float32)
        return self.adapter.from_numpy(host, dtype, device or self.device)

    def read(self, x: Any) -> np.ndarray:
        """A backend array as a NumPy array."""
        return np.asarray(self.adapter.to_numpy(x))

    def dropout(self, x: Any, p: float, **kwargs: Any) -> Any:
        """``unidrop.dropout`` on the backend under test, chosen by name; the result (and mask) must
        be arrays of ``x``'s type and the mask boolean, or the call fails saying so."""
        result = unidrop.dropout(x, p, backend=self.adapter.name, **kwargs)
        if kwargs.get("return_mask"):
            y, keep = result
            self.check_kind(x, y, "result", p, kwargs)
            self.check_kind(x, keep, "mask", p, kwargs, dtype="bool")
        else:
            self.check_kind(x, result, "result", p, kwargs)
        return result

    def check_kind(
        self, x: Any, out: Any, role: str, p: float, kwargs: dict[str, Any], dtype: str | None = None
    ) -> None:
        """Fail, naming both and the call ``dropout(x, p, **kwargs)`` whose ``role`` (result or
        mask) ``out`` is, if ``out`` is not of ``x``'s type (an array of another framework, a
        wrapper's inner array); with ``dtype``, if ``out`` has another dtype."""

        def call() -> str:  # made only for a failure: dropout() is called many times per run
            return "".join([f"dropout(x, {p!r}", *(f", {k}={v!r}" for k, v in kwargs.items()), ")"])

        if type(out) is not type(x) and not isinstance(x, np.generic):  # a NumPy scalar's mask is an array
            raise AssertionError(
                f"the {role} of {call()} is a {arguments.type_name(out)}, not a "
                f"{arguments.type_name(x)} like the input: a backend returns arrays of its input's own type"
            )
        if dtype is not None:
            found = self.adapter.shape_and_dtype(out)[1]
            if found != dtype:
                raise AssertionError(f"the {role} of {call()} has dtype {found}, not {dtype}")

    def check_against_reference(
        self,
        shape: tuple[int, ...],
        dtype: str,
        p: float,
        seed: int,
        stream: int,
        broadcast_dims: tuple[int, ...] = (),
        device: str | None = None,
        input_seed: int = 0,
    ) -> None:
        """The backend's output and mask for one case are bit-identical to the reference's."""
        values = sample_values(shape, dtype, input_seed)
        x = self.make(values, dtype, device)
        y, keep = self.dropout(
            x, p, seed=seed, stream=stream, broadcast_dims=broadcast_dims, return_mask=True
        )
        expected, expected_keep = reference.dropout(
            values.reshape(-1).tolist(), shape, dtype, p, seed, stream, broadcast_dims
        )
        context = f"shape={shape} dtype={dtype} p={p} seed={seed} stream={stream} dims={broadcast_dims}"
        assert self.adapter.shape_and_dtype(y) == (shape, dtype), context
        mask_shape = arguments.DropoutPlan.build(shape, dtype, p, seed, stream, broadcast_dims).mask_shape
        assert tuple(self.read(keep).shape) == mask_shape, context
        got_keep = keep_string(self.read(keep))
        want_keep = keep_string(np.array(expected_keep, dtype=bool))
        if got_keep != want_keep:
            hint = mask_hint([k == "1" for k in got_keep], seed, stream, p, mask_shape)
            raise AssertionError(f"{context}: the keep mask differs from the reference's.{hint}")
        assert_same_floats(self.read(y), np.array(expected, dtype=np.float64), context)
