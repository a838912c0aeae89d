"""``unidrop_torch.Dropout``: a drop-in ``nn.Module`` for ``torch.nn.Dropout`` and its channel forms.

Each class subclasses the torch class it replaces (``Dropout`` is a ``torch.nn.Dropout``,
``Dropout1d`` a ``torch.nn.Dropout1d``, and so on, as in torch: a ``Dropout2d`` is not a
``torch.nn.Dropout``), so code that finds dropout layers by type (MC-dropout toggling, setting
``p`` on every dropout layer) finds these too. ``p`` and ``inplace`` are torch's plain
attributes; ``p`` is read on every call, so changing it on a live module takes effect (and is
validated) at the next call.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from unidrop import arguments, layer_seeds

from . import fx
from .functional import dropout
from .support import check_inplace, refuse_scripting

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

    ``layer`` (with a ``seed``) numbers the layer for the layer-seed convention of
    :mod:`unidrop.layer_seeds`: its stream is then ``step * 2**32 + layer``, at step 0 until
    :func:`unidrop_torch.set_step` moves it (``stream`` may not be given as well).

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
        layer: int | None = None,
        mask_stream: str = "unidrop",
    ) -> None:
        try:
            p = arguments.check_p(p)
        except ValueError as error:  # torch's words first: code that matches them keeps working
            raise ValueError(
                f"dropout probability has to be between 0 and 1, but got {p} ({error})"
            ) from None
        inplace = check_inplace(inplace)
        super().__init__(p, inplace)  # type: ignore[call-arg]  # the torch class: sets p, inplace
        self.broadcast_dims = arguments.check_broadcast_dims(broadcast_dims)
        self.seed = None if seed is None else arguments.check_uint64(seed, "seed")
        self.stream = arguments.check_uint64(stream, "stream")
        self.layer = None if layer is None else layer_seeds.check_uint32(layer, "layer")
        if self.layer is not None:
            if self.seed is None or self.stream:
                raise ValueError(
                    f"layer={self.layer} numbers the layer for the layer-seed convention: it needs a "
                    f"seed (the run's base seed) and no stream (got seed={self.seed}, stream={self.stream})"
                )
            self.stream = layer_seeds.layer_stream(0, self.layer)
        if mask_stream not in MASK_STREAMS:
            raise ValueError(f"mask_stream must be one of {MASK_STREAMS}, got {mask_stream!r}")
        if mask_stream == "torch" and (self.layer is not None or self.seed is not None or self.stream):
            given = "layer" if self.layer is not None else "seed" if self.seed is not None else "stream"
            raise ValueError(
                f"{given}={getattr(self, given)} needs unidrop's mask stream: mask_stream='torch' draws "
                "from torch's generator (torch.manual_seed makes it reproducible)"
            )
        if mask_stream == "torch" and any(0 <= axis < 2 for axis in self.broadcast_dims):
            # torch's streams share a mask only along axes after the first two, whatever the rank
            raise ValueError(
                f"mask_stream='torch' has no stream for broadcast_dims={self.broadcast_dims}: torch "
                f"shares a mask only along every axis after the first two (Dropout1d/2d/3d)"
            )
        self.mask_stream = mask_stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        traced = fx.leaf_call(self, x)
        if traced is not None:
            return traced
        if self.mask_stream == "torch":
            return self._torch_stream(x)
        return dropout(
            x,
            self.p,
            self.training,
            self.inplace,
            seed=self.seed,
            stream=self.stream,
            broadcast_dims=self._broadcast_dims_for(x),
        )

    def _broadcast_dims_for(self, x: torch.Tensor) -> int | Sequence[int]:
        """The broadcast axes for input ``x``: the module's ``broadcast_dims``."""
        return self.broadcast_dims

    def _torch_stream(self, x: torch.Tensor) -> torch.Tensor:
        dims = arguments.normalize_broadcast_dims(self.broadcast_dims, x.dim())
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

    def __prepare_scriptable__(self) -> nn.Module:
        """``torch.jit.script`` calls this on every submodule first: refuse, naming what to use."""
        refuse_scripting(f"unidrop_torch.{type(self).__name__}")

    def extra_repr(self) -> str:
        """torch's ``p=..., inplace=...``, then the unidrop settings that differ from the defaults."""
        parts = [f"p={self.p}", f"inplace={self.inplace}"]
        if self.broadcast_dims != self._default_broadcast_dims:
            parts.append(f"broadcast_dims={self.broadcast_dims}")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        if self.layer is not None:
            parts.append(f"layer={self.layer}, step={self.stream >> 32}")
        elif self.stream:
            parts.append(f"stream={self.stream}")
        if self.mask_stream != "unidrop":
            parts.append(f"mask_stream={self.mask_stream!r}")
        return ", ".join(parts)

    _default_broadcast_dims: tuple[int, ...] = ()


class Dropout(_MaskStreamDropout, nn.Dropout):
    """A ``torch.nn.Dropout`` by mask stream v1 (see :class:`_MaskStreamDropout` for the arguments).

    ``Dropout(p, inplace, *, broadcast_dims=(), seed=None, stream=0, mask_stream="unidrop")``.
    """


def refuse_broadcast_dims(kwargs: dict[str, object], layer: str, shared_over: str) -> None:
    """TypeError naming ``layer``, whose mask axes are fixed, if it was given ``broadcast_dims``."""
    if "broadcast_dims" in kwargs:
        raise TypeError(
            f"{layer} shares its mask over {shared_over}: no broadcast_dims (unidrop_torch.Dropout takes any)"
        )


class _ChannelDropout(_MaskStreamDropout):
    """The rank rules of ``torch.nn.functional.dropout1d/2d/3d``, with unidrop's mask stream.

    For an input of rank r the mask is torch's: torch unsqueezes an unbatched input (rank other
    than ``_BATCHED_RANK``, for the forms that do so) and then shares the mask over every axis
    after the first two, so the broadcast axes are ``range(2, r)`` for a batched input and
    ``range(1, r)`` for an unbatched one. Ranks torch refuses raise its RuntimeError, ranks it
    deprecates give its UserWarning, in training and evaluation alike (in eager mode: under
    ``torch.compile`` the traced call gives no warning, since Dynamo cannot trace one).
    """

    _NAME: str = ""
    #: The rank torch treats as batched; other ranks are unsqueezed first (None: never).
    _BATCHED_RANK: int | None = None
    #: Ranks torch takes without a warning (or, for dropout1d, at all).
    _RANKS: tuple[int, int] = (0, 0)

    def __init__(self, p: float = 0.5, inplace: bool = False, **kwargs: object) -> None:
        shared = f"every axis after the channel axis, as torch's {self._NAME} does"
        refuse_broadcast_dims(kwargs, type(self).__name__, shared)
        super().__init__(p, inplace, broadcast_dims=self._default_broadcast_dims, **kwargs)  # type: ignore[arg-type]

    def _torch_stream(self, x: torch.Tensor) -> torch.Tensor:
        """torch's own class's forward: its rank rules and its random stream."""
        for cls in type(self).__mro__:
            if cls in (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d):
                return cls.forward(self, x)  # type: ignore[no-any-return]
        raise AssertionError(f"{type(self).__name__} subclasses no torch channel dropout class")

    def _broadcast_dims_for(self, x: torch.Tensor) -> tuple[int, ...]:
        rank = x.dim()
        self._check_rank(rank)
        batched = self._BATCHED_RANK is None or rank == self._BATCHED_RANK
        effective_rank = rank if batched else rank + 1
        draws = self.training and 0.0 < self.p < 1.0 and x.numel() > 0
        if effective_rank < 2 and draws:
            raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
        return tuple(range(2 if batched else 1, rank))

    def _check_rank(self, rank: int) -> None:
        low, high = self._RANKS
        if rank not in (low, high) and not torch.compiler.is_compiling():  # Dynamo cannot trace warn
            warnings.warn(
                f"{self._NAME}: Received a {rank}-D input to {self._NAME}, which is deprecated "
                "and will result in an error in a future release. To retain the behavior "
                "and silence this warning, please use dropout instead. Note that "
                f"{self._NAME} exists to provide channel-wise dropout on inputs with "
                f"{low - 1} spatial dimensions, a channel dimension, and an optional batch "
                f"dimension (i.e. {low}D or {high}D inputs).",
                UserWarning,
                stacklevel=4,
            )


class Dropout1d(_ChannelDropout, nn.Dropout1d):
    """A ``torch.nn.Dropout1d``: channel dropout of (N, C, L) or (C, L) inputs.

    As torch does, any other rank raises a RuntimeError.
    """

    _NAME = "dropout1d"
    _BATCHED_RANK = 3
    _RANKS = (2, 3)
    _default_broadcast_dims = (-1,)

    def _check_rank(self, rank: int) -> None:
        if rank not in self._RANKS:
            raise RuntimeError(
                f"dropout1d: Expected 2D or 3D input, but received a {rank}D input. "
                "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
                "spatial dimension, a channel dimension, and an optional batch dimension "
                "(i.e. 2D or 3D inputs)."
            )


class Dropout2d(_ChannelDropout, nn.Dropout2d):
    """A ``torch.nn.Dropout2d``: channel dropout of (N, C, H, W) inputs.

    As in torch, a 3-D input is taken as (N, C, L) (one mask value per (n, c), with torch's
    warning), a 2-D input is dropped element-wise, and every rank but 3 and 4 gives torch's
    deprecation warning.
    """

    _NAME = "dropout2d"
    _RANKS = (3, 4)
    _default_broadcast_dims = (-2, -1)

    def _check_rank(self, rank: int) -> None:
        super()._check_rank(rank)
        if rank == 3 and not torch.compiler.is_compiling():
            warnings.warn(
                "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
                "is the channel dim. This behavior will change in a future release to interpret the "
                "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
                "channel-wise dropout behavior, please switch to using dropout1d instead.",
                UserWarning,
                stacklevel=4,
            )


class Dropout3d(_ChannelDropout, nn.Dropout3d):
    """A ``torch.nn.Dropout3d``: channel dropout of (N, C, D, H, W) or (C, D, H, W) inputs.

    As in torch, other ranks give its deprecation warning and are taken as unbatched: the mask
    has one value per index of the first axis.
    """

    _NAME = "dropout3d"
    _BATCHED_RANK = 5
    _RANKS = (4, 5)
    _default_broadcast_dims = (-3, -2, -1)
