"""The 128-bit key tensor the dropout operation takes: (seed, stream) as four 32-bit words.

The operation receives ``key``, an int32 tensor of shape (4,) holding the bit patterns of
``(seed mod 2**32, seed >> 32, stream mod 2**32, stream >> 32)``. It is the only thing the
backward pass saves (16 bytes, whatever the size of the input).

* An explicit integer seed gives a key on the CPU: kernels read it on the host, so no
  host-device copy is made (CUDA graph capture works) and ``torch.compile`` folds it in.
* ``seed=None`` draws the seed words with ``torch.randint`` from torch's default generator
  of the tensor's device, so ``torch.manual_seed`` and ``torch.random.fork_rng`` govern it; on
  CUDA the key stays on the device and the kernel loads it, so nothing waits for the device.
"""

from __future__ import annotations

import torch

from unidrop.arguments import TWO_POW_32
from unidrop.philox import MASK32

KEY_WORDS = 4


def as_int32(word: int) -> int:
    """The signed int32 with the same bit pattern as the 32-bit word ``word``."""
    word &= MASK32
    return word - (1 << 32) if word >= 1 << 31 else word


def as_uint32(value: int) -> int:
    """The 32-bit word whose bit pattern is the int32 ``value``."""
    return value & MASK32


def words_of(seed: int, stream: int) -> list[int]:
    """The four key words of (seed, stream), as int32 bit patterns."""
    return [as_int32(seed), as_int32(seed >> 32), as_int32(stream), as_int32(stream >> 32)]


def key_from_ints(seed: int, stream: int) -> torch.Tensor:
    """A CPU key tensor for integer ``seed`` and ``stream`` in [0, 2**64).

    Under ``torch.compile`` a seed or stream that changes between calls becomes a symbolic
    integer: its words are then computed by tensor operations in the graph, so a new seed does not
    recompile. (torch hands symbolic integers to compiled code as int64: such a seed or stream
    must be below 2**63, or torch raises "expected int arg".)
    """
    if torch.compiler.is_compiling():
        halves = [seed % TWO_POW_32, seed // TWO_POW_32, stream % TWO_POW_32, stream // TWO_POW_32]
        words = torch.tensor(halves, dtype=torch.int64, device="cpu")
        return torch.where(words >= 1 << 31, words - TWO_POW_32, words).to(torch.int32)
    # on the CPU whatever torch.set_default_device says: a key is read as scalars (no device copy)
    return torch.tensor(words_of(seed, stream), dtype=torch.int32, device="cpu")


def draw_seed_words(device: torch.device) -> torch.Tensor:
    """Two random seed words drawn from torch's default generator for ``device`` (on ``device``)."""
    return torch.randint(-(1 << 31), 1 << 31, (2,), dtype=torch.int32, device=device)


def key_from_seed_words(seed_words: torch.Tensor, stream: int) -> torch.Tensor:
    """A key on ``seed_words``' device: the drawn seed words followed by the stream's words.

    The stream words are written with fills (no copy from the host), so this is safe under
    CUDA graph capture and never synchronises with the device.
    """
    low = seed_words.new_full((1,), as_int32(stream))
    high = seed_words.new_full((1,), as_int32(stream >> 32))
    return torch.cat([seed_words.reshape(2), low, high])


def int_of_seed_words(seed_words: torch.Tensor) -> int:
    """The seed that drawn seed words stand for (low word first), read on the host."""
    low, high = (as_uint32(int(v)) for v in seed_words.tolist())
    return low | (high << 32)


def ints_of(key: torch.Tensor) -> tuple[int, int]:
    """(seed, stream) of a key tensor, read on the host (a device key is copied back: a sync)."""
    w = [as_uint32(int(v)) for v in key.tolist()]
    return w[0] | (w[1] << 32), w[2] | (w[3] << 32)


def check_key(key: torch.Tensor) -> None:
    """Raise unless ``key`` is an int32 tensor of shape (4,)."""
    if not isinstance(key, torch.Tensor) or key.dtype != torch.int32 or tuple(key.shape) != (KEY_WORDS,):
        raise TypeError(
            "unidrop key must be an int32 tensor of shape (4,) (seed low, seed high, stream low, "
            f"stream high), got {key!r}"
        )


def make_key(seed: int | torch.Tensor, stream: int) -> torch.Tensor:
    """The key for a resolved seed: an int (CPU key) or drawn seed words (key on their device)."""
    if isinstance(seed, torch.Tensor):
        return key_from_seed_words(seed, stream)
    return key_from_ints(seed, stream)
