"""The mutants' descriptors: what the entry points load (NumPy is imported by ``load()``).

Every mutant is the NumPy backend's descriptor and suite adapter with a
:class:`~unidrop_mutants.stream.StreamV1` subclass as its implementation; ``mutant-none`` is the
unmutated stream, the control that must pass the whole suite. Each declares autograd and jit,
which its :class:`~unidrop_mutants.suite_adapter.MutantSuiteAdapter` provides, so that the
suite's ability checks run on every mutant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

from unidrop_numpy import NumpyBackend

from unidrop import Abilities, Implementation

if TYPE_CHECKING:
    from unidrop.conformance.adapter import SuiteAdapter

#: slug -> the mutant's class, as ``module.Class`` under :mod:`unidrop_mutants.defects`; the
#: backend is named ``mutant-<slug>`` and its entry point names the descriptor ``Class`` here.
MUTANTS: dict[str, str] = {
    "key-words-swapped": "randomness.KeyWordsSwapped",
    "seed-high-word-ignored": "randomness.SeedHighWordIgnored",
    "block-and-stream-swapped": "randomness.BlockAndStreamSwapped",
    "block-words-swapped": "randomness.BlockWordsSwapped",
    "block-high-word-from-stream": "randomness.BlockHighWordFromStream",
    "block-high-word-zero": "randomness.BlockHighWordZero",
    "stream-high-word-ignored": "randomness.StreamHighWordIgnored",
    "stream-words-swapped": "randomness.StreamWordsSwapped",
    "lanes-reversed": "randomness.LanesReversed",
    "lanes-interleaved": "randomness.LanesInterleaved",
    "seven-rounds": "randomness.SevenRounds",
    "key-bumps-swapped": "randomness.KeyBumpsSwapped",
    "threshold-rounded": "randomness.ThresholdRounded",
    "threshold-ceiling": "randomness.ThresholdCeiling",
    "threshold-in-float32": "randomness.ThresholdInFloat32",
    "threshold-saturates-at-uint32": "randomness.ThresholdSaturatesAtUint32",
    "chunk-starts-one-block-early": "randomness.ChunkStartsOneBlockEarly",
    "chunk-restarts-lanes": "randomness.ChunkRestartsLanes",
    "tail-from-next-block": "randomness.TailFromNextBlock",
    "scale-float32-for-float64": "arithmetic.ScaleFloat32ForFloat64",
    "scale-in-float32-arithmetic": "arithmetic.ScaleInFloat32Arithmetic",
    "divides-by-keep-probability": "arithmetic.DividesByKeepProbability",
    "tiny-p-unscaled": "arithmetic.TinyPUnscaled",
    "half-computed-in-half": "arithmetic.HalfComputedInHalf",
    "half-via-float64": "arithmetic.HalfViaFloat64",
    "half-saturates": "arithmetic.HalfSaturates",
    "bfloat16-truncates": "arithmetic.Bfloat16Truncates",
    "bfloat16-ties-away": "arithmetic.Bfloat16TiesAway",
    "float64-computed-in-float32": "arithmetic.Float64ComputedInFloat32",
    "half-returned-as-float32": "arithmetic.HalfReturnedAsFloat32",
    "flushes-float32-subnormals": "arithmetic.FlushesFloat32Subnormals",
    "flushes-float64-subnormals": "arithmetic.FlushesFloat64Subnormals",
    "overflow-clamped": "arithmetic.OverflowClamped",
    "dropped-zero-keeps-sign": "arithmetic.DroppedZeroKeepsSign",
    "kept-zero-loses-sign": "arithmetic.KeptZeroLosesSign",
    "fortran-3d-in-memory-order": "layout.FortranOrder3DInMemoryOrder",
    "negative-strides-in-memory-order": "layout.NegativeStridesInMemoryOrder",
    "zero-strides-share-mask": "layout.ZeroStridesShareMask",
    "byte-order-ignored": "layout.ByteOrderIgnored",
    "strided-input-overwritten": "layout.StridedInputOverwritten",
    "block-offset-ignored": "layout.BlockOffsetIgnored",
    "block-uses-local-indices": "layout.BlockUsesLocalIndices",
    "block-is-one-run-from-its-start": "layout.BlockIsOneRunFromItsStart",
    "block-strides-over-broadcast-axes": "layout.BlockStridesOverBroadcastAxes",
    "mask-is-uint8": "state.MaskIsUint8",
    "mask-of-input-shape": "state.MaskOfInputShape",
    "broadcast-mask-sliced": "state.BroadcastMaskSliced",
    "identity-mask-ignores-broadcast-dims": "state.IdentityMaskIgnoresBroadcastDims",
    "identity-mask-uint8": "state.IdentityMaskUint8",
    "identity-mask-cached": "state.IdentityMaskCached",
    "result-is-the-input-when-nothing-changes": "state.ResultIsTheInputWhenNothingChanges",
    "output-buffer-reused": "state.OutputBufferReused",
    "mask-buffer-reused": "state.MaskBufferReused",
    "draws-from-numpy-global-rng": "state.DrawsFromNumpyGlobalRng",
    "draws-from-numpy-global-rng-when-large": "state.DrawsFromNumpyGlobalRngWhenLarge",
    "seed-none-low-entropy": "state.SeedNoneLowEntropy",
    "seed-none-ignores-manual-seed": "state.SeedNoneIgnoresManualSeed",
    "identity-draws-seed": "state.IdentityDrawsSeed",
    "jit-drops-seed-high-word": "paths.JitDropsSeedHighWord",
    "jit-drops-stream-high-word": "paths.JitDropsStreamHighWord",
    "gradient-drops-seed-high-word": "paths.GradientDropsSeedHighWord",
    "gradient-ignores-broadcast-dims": "paths.GradientIgnoresBroadcastDims",
    "gradient-uses-stale-mask": "paths.GradientUsesStaleMask",
}

#: The name of the unmutated control backend.
CONTROL = "mutant-none"


class MutantBackend(NumpyBackend):
    """The NumPy backend's descriptor with mask stream v1 in whole-array NumPy, ``defect`` its mutant."""

    distribution = "unidrop-mutants"
    abilities = Abilities(autograd=True, jit=True)
    #: ``module.Class`` of the mutant under :mod:`unidrop_mutants.defects`; empty for the control
    defect: ClassVar[str] = ""

    def load(self) -> Implementation:
        module, name = self.defect.split(".") if self.defect else ("stream", "StreamV1")
        where = f"{__package__}.{'defects.' if self.defect else ''}{module}"
        made: Implementation = getattr(importlib.import_module(where), name)()
        return made

    def suite_adapter(self) -> SuiteAdapter:
        from .suite_adapter import MutantSuiteAdapter

        return MutantSuiteAdapter(self)


def _descriptor(slug: str, defect: str) -> type[MutantBackend]:
    name = defect.rpartition(".")[2] or "Unmutated"
    body = {"name": f"mutant-{slug}", "defect": defect, "__module__": __name__, "__qualname__": name}
    return type(name, (MutantBackend,), body)


#: backend name -> descriptor class, the control first.
DESCRIPTORS: dict[str, type[MutantBackend]] = {
    f"mutant-{slug}": _descriptor(slug, defect) for slug, defect in {"none": "", **MUTANTS}.items()
}

globals().update({cls.__name__: cls for cls in DESCRIPTORS.values()})  # what the entry points name
