"""The CPU path: mask stream v1 computed with unidrop-numpy's Philox on zero-copy NumPy views.

The input and the output are viewed as NumPy arrays (no copy, any strides), split into
chunks in C order, and the chunks are shared among ``torch.get_num_threads()`` threads
(NumPy releases the GIL inside its loops). Every temporary is one chunk long and per thread.
bfloat16, which NumPy lacks, goes through float32, its compute dtype, and is rounded back
to bfloat16 by torch (round to nearest even), as the mask stream prescribes.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from unidrop_numpy.chunked import blocks
from unidrop_numpy.philox import PhiloxWorkspace

from unidrop import contract

#: Elements per chunk: large enough that a chunk's NumPy calls outweigh the Python between them.
CHUNK = 1 << 17

_local = threading.local()
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _workspace() -> PhiloxWorkspace:
    workspace = getattr(_local, "workspace", None)
    if workspace is None:
        workspace = _local.workspace = PhiloxWorkspace(CHUNK // 4 + 2)
    return workspace


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(threads, thread_name_prefix="unidrop-torch")
            _pool_size = threads
        return _pool


def keep_words(seed: int, stream: int, start: int, count: int, threshold: int) -> np.ndarray:
    """Keep decisions (True = kept) of flat mask indices start .. start+count-1 (any 64-bit start)."""
    out = np.empty(count, dtype=bool)
    workspace = _workspace()
    step = (CHUNK // 4) * 4
    for offset in range(0, count, step):
        n = min(step, count - offset)
        np.greater_equal(
            workspace.words(seed, stream, start + offset, n),
            np.uint32(threshold),
            out=out[offset : offset + n],
        )
    return out


def keep_mask(seed: int, stream: int, mask_shape: tuple[int, ...], p: float) -> torch.Tensor:
    """The boolean keep mask of ``mask_shape`` on the CPU."""
    t = contract.threshold(p)
    count = math.prod(mask_shape)
    if t >= contract.TWO_POW_32:
        return torch.zeros(mask_shape, dtype=torch.bool)
    return torch.from_numpy(keep_words(seed, stream, 0, count, t)).reshape(mask_shape)


def _fill(
    x: np.ndarray,
    y: np.ndarray,
    mshape: tuple[int, ...],
    seed: int,
    stream: int,
    threshold: int,
    scale: np.floating,
) -> None:
    """Write mask stream v1 dropout of ``x`` into ``y`` (same shape), chunk by chunk, in threads."""
    parts = list(blocks(x.shape, mshape, CHUNK))
    compute = scale.dtype
    t = np.uint32(threshold)

    def work(share: list) -> None:
        workspace = _workspace()
        for index, mstart, mcount, mblock in share:
            dropped = np.less(workspace.words(seed, stream, mstart, mcount), t).reshape(mblock)
            out = y[index]
            np.multiply(x[index], scale, out=out, dtype=compute, casting="same_kind")
            np.copyto(out, 0, where=dropped)

    threads = min(max(1, torch.get_num_threads()), len(parts))
    if threads == 1:
        work(parts)
        return
    shares = [parts[i::threads] for i in range(threads)]
    for future in [_executor(threads).submit(work, share) for share in shares]:
        future.result()


def dropout(x: torch.Tensor, seed: int, stream: int, p: float, broadcast_dims: list[int]) -> torch.Tensor:
    """Mask stream v1 dropout of a CPU tensor; the result has the strides ``torch.empty_like`` gives."""
    dims = tuple(broadcast_dims)
    mshape = contract.mask_shape(tuple(x.shape), dims)
    t = contract.threshold(p)
    if t >= contract.TWO_POW_32 or x.numel() == 0:
        return torch.zeros_like(x)
    source = x.detach()
    if source.dtype == torch.bfloat16:
        source = source.to(torch.float32)
    y = torch.empty_like(source)
    xn, yn = source.numpy(), y.numpy()
    if xn.ndim == 0:
        xn, yn, mshape = xn.reshape(1), yn.reshape(1), (1,)
    compute = np.dtype(contract.compute_dtype(str(xn.dtype)))
    _fill(xn, yn, mshape, seed, stream, t, compute.type(contract.scale(p)))
    return y.to(torch.bfloat16) if x.dtype == torch.bfloat16 else y
