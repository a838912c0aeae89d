"""The NumPy backend's work: mask stream v1 on NumPy arrays, through the compiled kernel
(:mod:`.compiled`) where it was built, else the pure-NumPy kernel of :mod:`.chunked`."""

from __future__ import annotations

from typing import Any

import numpy as np

from unidrop import DropoutPlan, Implementation, arguments

from . import bfloat16, compiled, family
from .chunked import dropout_array
from .threads import get_num_threads

_BASE_DTYPES = frozenset({"float16", "float32", "float64"})
_WITH_BFLOAT16 = _BASE_DTYPES | {bfloat16.NAME}


class NumpyImplementation(Implementation):
    """Dropout of ``numpy.ndarray``, NumPy scalars and memmaps; other subclasses are refused.

    Blocks of a global mask (``global_shape=``, ``offset=``) are supported by both kernels.
    """

    supports_blocks = True

    def __init__(self) -> None:
        self._compiled = compiled.use_compiled()  # UNIDROP_NUMPY_KERNEL is read once, here

    def describe(self) -> str:
        """Which kernel computes dropout (compiled, or pure NumPy) and why."""
        return compiled.describe(self._compiled)

    def dtypes(self) -> frozenset[str]:
        """float16, float32 and float64, and bfloat16 where ml_dtypes is installed."""
        return _WITH_BFLOAT16 if bfloat16.available() else _BASE_DTYPES

    def shape_and_dtype(self, x: Any) -> tuple[tuple[int, ...], str]:
        """Also refuses the subclasses :func:`_check_subclass` refuses, at every call: in
        evaluation mode (or at ``p == 0``) too, so that a model does not fail in training only."""
        if type(x) is not np.ndarray:
            _check_subclass(x)
        return tuple(x.shape), bfloat16.dtype_name(x.dtype)

    def dropout(self, x: Any, plan: DropoutPlan) -> tuple[Any, Any | None]:
        # a memmap's data as a plain ndarray view (no copy); other subclasses were refused
        array = x if type(x) is np.ndarray else np.asarray(x)
        threads = get_num_threads()  # a bad UNIDROP_NUM_THREADS is refused at the first call, any size
        if self._compiled and array.size and not plan.drops_all:
            y, keep = compiled.dropout(array, plan, threads)
        else:
            y, keep = dropout_array(array, plan)
        return (y[()] if isinstance(x, np.generic) else y), keep

    def full_mask(self, x: Any, shape: tuple[int, ...]) -> Any:
        return np.ones(shape, dtype=bool)

    mutable_arrays = True

    def stream_words(self, x: Any, plan: DropoutPlan) -> Any:
        return family.stream_words(plan)

    def namespace(self, x: Any) -> Any:
        return np

    def quiet_arithmetic(self) -> Any:
        """``np.errstate(all="ignore")``: the family is as silent as dropout's kernels, whatever
        ``np.seterr`` says (overflow gives inf, a NaN stays NaN)."""
        return np.errstate(all="ignore")

    def check_writable(self, x: Any) -> None:
        family.check_writable(x)

    def like_input(self, x: Any, y: Any) -> Any:
        """A NumPy scalar for a scalar ``x``, a 0-d array for a 0-d array, and otherwise an array laid
        out as ``x`` (a Fortran-ordered ``x`` gives a Fortran-ordered result), as :meth:`dropout` gives."""
        if isinstance(x, np.generic):
            return y[()] if isinstance(y, np.ndarray) else y
        if not isinstance(y, np.ndarray):  # NumPy's arithmetic made a 0-d array's result a scalar
            return np.asarray(y)
        # both in C order, the common case: already laid out as x, with no array made to compare
        if y.ndim > 1 and y.shape == x.shape and not (x.flags.c_contiguous and y.flags.c_contiguous):
            laid_out = np.empty_like(x, dtype=y.dtype, subok=False)  # x's memory order, as dropout's
            if laid_out.strides != y.strides:  # the family's arithmetic followed the mask's order
                np.copyto(laid_out, y)
                return laid_out
        return y

    def copy_into(self, x: Any, y: Any) -> None:
        family.copy_into(x, y)


def _check_subclass(x: Any) -> None:
    """Refuse ``ndarray`` subclasses whose meaning a plain result would lose; memmaps are plain data.

    ``numpy.memmap`` (and its subclasses) only say where the data lives: they are taken, and the
    result is a plain ``ndarray`` in memory. Masked arrays, matrices and any other subclass are
    refused with a TypeError naming the type and saying how to pass the plain data.
    """
    if not isinstance(x, np.ndarray) or type(x) is np.ndarray or isinstance(x, np.memmap):
        return
    kind = arguments.type_name(x)
    if isinstance(x, np.ma.MaskedArray):
        why, fix = (
            "its mask",
            "x.filled(value) for the data with masked elements replaced, or numpy.ma.getdata(x)",
        )
    elif isinstance(x, np.matrix):
        why, fix = "the matrix rules", "numpy.asarray(x), and numpy.asmatrix(y) on the result if needed"
    else:
        why, fix = "what the subclass adds", "numpy.asarray(x) if its plain data is what should be dropped"
    raise TypeError(
        f"unidrop's NumPy backend takes numpy.ndarray (and numpy.memmap), got the subclass {kind}, "
        f"whose meaning ({why}) a plain result would lose; pass {fix}"
    )
