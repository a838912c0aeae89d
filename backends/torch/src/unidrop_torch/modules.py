"""``unidrop_torch.Dropout``: a drop-in ``nn.Module`` for ``torch.nn.Dropout`` and its channel forms.

Each class subclasses the torch class it replaces (``Dropout`` is a ``torch.nn.Dropout``,
``Dropout1d`` a ``torch.nn.Dropout1d``, and so on, as in torch: a ``Dropout2d`` is not a
``torch.nn.Dropout``), so code that finds dropout layers by type (MC-dropout toggling, setting
``p`` on every dropout layer) finds these too. ``p`` and ``inplace`` are torch's plain
attributes; ``p`` is read on every call, so changing it on a live module takes effect (and is
validated) at the next call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unidrop import contract

from .functional import dropout

MASK_STREAMS = ("unidrop", "torch")


class _MaskStreamDropout(nn.Module):
    """Dropout by mask stream v1; follows ``train()``/``eval()`` as ``torch.nn.Dropout`` does.

    Mixed in before a torch dropout class, whose ``__init__`` stores ``p`` and ``inplace``
    once this class has validated them.

    In training, each element of the mask shape (the input's shape with the
    ``broadcast_dims`` axes set to 1) is dropped with probability ``p`` and kept elements
    are scaled by ``1 / (1 - p)``; in evaluation the input is returned as is.

    ``seed=None`` (the default) draws a fresh seed from torch's default generator on every
    call, so ``torch.manual_seed`` makes a run reproducible, as with ``torch.nn.Dropout``.
    An integer ``seed`` gives the same mask on every call (for tests and exact replays);
    vary ``stream`` to get others.

    ``inplace=True`` writes the result into the input and returns it, as ``torch.nn.Dropout``
    does (the result is computed first: no memory is saved).

    ``mask_stream="torch"`` reproduces torch's own random stream exactly by delegating to
    ``torch.nn.functional.dropout`` (no ``broadcast_dims``) or ``torch.feature_dropout``
    (``broadcast_dims`` = every axis after the first two, the Dropout1d/2d/3d pattern), for
    code that must match an existing PyTorch run. It gives up unidrop's guarantees (the same
    mask on every device and framework, backward that saves no mask).
    """

    p: float
    inplace: bool

    def __init__(
        self,
        p: float = 0.5,
        inplace: bool = False,
        *,
        broadcast_dims: int | Sequence[int] = (),
        seed: int | None = None,
        stream: int = 0,
        mask_stream: str = "unidrop",
    ) -> None:
        p = contract.check_p(p)
        if not isinstance(inplace, bool):
            raise TypeError(f"inplace must be True or False, got {inplace!r}")
        super().__init__(p, inplace)  # type: ignore[call-arg]  # the torch class: sets p, inplace
        self.broadcast_dims = (broadcast_dims,) if isinstance(broadcast_dims, int) else tuple(broadcast_dims)
        self.seed = None if seed is None else contract.check_uint64(seed, "seed")
        self.stream = contract.check_uint64(stream, "stream")
        if mask_stream not in MASK_STREAMS:
            raise ValueError(f"mask_stream must be one of {MASK_STREAMS}, got {mask_stream!r}")
        self.mask_stream = mask_stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask_stream == "torch":
            return self._torch_stream(x)
        y = dropout(
            x,
            self.p,
            training=self.training,
            seed=self.seed,
            stream=self.stream,
            broadcast_dims=self.broadcast_dims,
        )
        return x.copy_(y) if self.inplace and y is not x else y

    def _torch_stream(self, x: torch.Tensor) -> torch.Tensor:
        dims = contract.normalize_broadcast_dims(self.broadcast_dims, x.dim())
        if not dims:
            return nn.functional.dropout(x, self.p, self.training, self.inplace)
        if x.dim() >= 3 and dims == tuple(range(2, x.dim())):
            if self.inplace:
                return torch.feature_dropout_(x, self.p, self.training)
            return torch.feature_dropout(x, self.p, self.training)
        raise ValueError(
            f"mask_stream='torch' reproduces torch.nn.functional.dropout (broadcast_dims=()) and "
            f"the channel dropout of Dropout1d/2d/3d (broadcast_dims = every axis after the first "
            f"two, here {tuple(range(2, x.dim()))}); torch has no stream for broadcast_dims={dims}"
        )

    def extra_repr(self) -> str:
        """torch's ``p=..., inplace=...``, then the unidrop settings that differ from the defaults."""
        parts = [f"p={self.p}", f"inplace={self.inplace}"]
        if self.broadcast_dims != self._default_broadcast_dims:
            parts.append(f"broadcast_dims={self.broadcast_dims}")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        if self.stream:
            parts.append(f"stream={self.stream}")
        if self.mask_stream != "unidrop":
            parts.append(f"mask_stream={self.mask_stream!r}")
        return ", ".join(parts)

    _default_broadcast_dims: tuple[int, ...] = ()


class Dropout(_MaskStreamDropout, nn.Dropout):
    """A ``torch.nn.Dropout`` by mask stream v1 (see :class:`_MaskStreamDropout` for the arguments).

    ``Dropout(p, inplace, *, broadcast_dims=(), seed=None, stream=0, mask_stream="unidrop")``.
    """


class Dropout1d(_MaskStreamDropout, nn.Dropout1d):
    """A ``torch.nn.Dropout1d``: channel dropout of (N, C, L) or (C, L), ``broadcast_dims=-1``."""

    _default_broadcast_dims = (-1,)

    def __init__(self, p: float = 0.5, inplace: bool = False, **kwargs: object) -> None:
        super().__init__(p, inplace, broadcast_dims=(-1,), **kwargs)  # type: ignore[arg-type]


class Dropout2d(_MaskStreamDropout, nn.Dropout2d):
    """A ``torch.nn.Dropout2d``: channel dropout of (N, C, H, W) or (C, H, W), ``broadcast_dims=(-2, -1)``."""

    _default_broadcast_dims = (-2, -1)

    def __init__(self, p: float = 0.5, inplace: bool = False, **kwargs: object) -> None:
        super().__init__(p, inplace, broadcast_dims=(-2, -1), **kwargs)  # type: ignore[arg-type]


class Dropout3d(_MaskStreamDropout, nn.Dropout3d):
    """A ``torch.nn.Dropout3d``: channel dropout of (N, C, D, H, W) or (C, D, H, W), ``(-3, -2, -1)``."""

    _default_broadcast_dims = (-3, -2, -1)

    def __init__(self, p: float = 0.5, inplace: bool = False, **kwargs: object) -> None:
        super().__init__(p, inplace, broadcast_dims=(-3, -2, -1), **kwargs)  # type: ignore[arg-type]
