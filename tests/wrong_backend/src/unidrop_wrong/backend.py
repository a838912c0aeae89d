"""The wrong backends' descriptors: what the entry points load (NumPy is imported by ``load()``)."""

from __future__ import annotations

from typing import ClassVar

from unidrop_numpy import NumpyBackend

from unidrop import Implementation


class WrongBackend(NumpyBackend):
    """The NumPy backend's descriptor (and suite adapter) with the implementation named ``defect``.

    ``defect`` is the name of an Implementation subclass in :mod:`unidrop_wrong.implementation`.
    """

    distribution = "unidrop-wrong-backends"
    defect: ClassVar[str]

    def load(self) -> Implementation:
        from . import implementation

        made: Implementation = getattr(implementation, self.defect)()
        return made


class OffByOneThreshold(WrongBackend):
    name = "wrong-threshold"
    defect = "OffByOneThreshold"


class WrongScale(WrongBackend):
    name = "wrong-scale"
    defect = "WrongScale"


class WrongCounterLayout(WrongBackend):
    name = "wrong-counter"
    defect = "WrongCounterLayout"


class MultiplyInsteadOfSelect(WrongBackend):
    name = "wrong-select"
    defect = "MultiplyInsteadOfSelect"


class IgnoresStream(WrongBackend):
    name = "wrong-stream"
    defect = "IgnoresStream"


class ModifiesInput(WrongBackend):
    name = "wrong-inplace"
    defect = "ModifiesInput"


class MaskOfAnotherType(WrongBackend):
    name = "wrong-mask-type"
    defect = "MaskOfAnotherType"
