"""Dask scaling: unidrop's Dask backend on a LocalCluster of 1 and 2 worker processes, on an array
larger than one worker's memory limit, with the result checked against the single-machine one.

The array (2**28 float32 elements, 1 GiB, by default) is made chunk by chunk on the workers
(element i holds ``i % 251 - 125``), dropped out by ``unidrop.dropout`` (each chunk by the NumPy
backend, one thread per call, so that the workers are the only parallelism), and each output chunk
is reduced to its SHA-256 on its worker: no worker ever holds the array, and only the digests come
back. The same digests of ``unidrop.dropout`` on the whole NumPy array in this process (the
single-machine result) must be equal, chunk for chunk: the results are then bit-identical.

Each configuration is timed ``--reps`` times after one warm-up run (the graph is built inside the
timed region); medians are reported. Writes ``benchmarks/results/dask_scaling.json`` and ``.md``
with the command, the machine and the versions.

    python benchmarks/dask_scaling.py [--log2-rows 14] [--log2-cols 14] [--reps 5]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import distributed
import numpy as np
import unidrop_numpy

import unidrop
from unidrop.bench.report import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"
P, SEED, STREAM = 0.1, 0x9E3779B97F4A7C15, 3
#: Each worker's memory limit: half the default array, so that no single worker could hold it.
MEMORY_LIMIT = 512 * 2**20


def source_chunk(block_info: Any = None) -> np.ndarray:
    """The input chunk at ``block_info``'s place: element (r, c) holds ``(r * cols + c) % 251 - 125``."""
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    cols = block_info[None]["shape"][1]
    index = np.int64 if block_info[None]["shape"][0] * cols > 2**31 else np.int32  # int32 is faster
    flat = np.arange(r0, r1, dtype=index)[:, None] * cols + np.arange(c0, c1, dtype=index)
    return (flat % 251 - 125).astype(np.float32)


def digest(chunk: np.ndarray) -> str:
    """SHA-256 of a chunk's bytes (C order)."""
    return hashlib.sha256(np.ascontiguousarray(chunk).data).hexdigest()


def digest_block(chunk: np.ndarray) -> np.ndarray:
    """A chunk's digest as a 1 x 1 object array: one fused task per chunk (source, dropout, digest)."""
    return np.array([[digest(chunk)]], dtype=object)


def one_thread_per_call() -> None:
    """Run on each worker: one thread per dropout call (the workers are the parallelism)."""
    unidrop_numpy.set_num_threads(1)


def cluster_digests(client: distributed.Client, shape: tuple[int, int], chunks: tuple[int, int]) -> list[str]:
    """Build the graph (source, dropout, digest per chunk) and compute it on ``client``'s cluster."""
    x = da.map_blocks(
        source_chunk,
        chunks=da.core.normalize_chunks(chunks, shape),
        dtype=np.float32,
        meta=np.empty((0, 0), np.float32),
        name=f"source-{shape[0]}-{shape[1]}-{chunks[0]}-{chunks[1]}",
    )
    y = unidrop.dropout(x, P, seed=SEED, stream=STREAM)
    digests = y.map_blocks(
        digest_block,
        chunks=(1, 1),
        dtype=object,
        meta=np.empty((0, 0), dtype=object),
        name="digest-" + y.name,
    )
    return [str(d) for d in client.compute(digests).result().ravel()]


def single_machine(shape: tuple[int, int], chunks: tuple[int, int]) -> tuple[list[str], float]:
    """The digests of the whole array's dropout in this process, and its time (default threads)."""
    rows, cols = shape
    info = {None: {"array-location": [(0, rows), (0, cols)], "shape": shape}}
    x = source_chunk(info)
    start = time.perf_counter()
    y = unidrop.dropout(x, P, seed=SEED, stream=STREAM)
    seconds = time.perf_counter() - start
    found = [
        digest(y[r : r + chunks[0], c : c + chunks[1]])
        for r in range(0, rows, chunks[0])
        for c in range(0, cols, chunks[1])
    ]
    return found, seconds


def time_clusters(
    counts: tuple[int, ...], shape: tuple[int, int], chunks: tuple[int, int], reps: int
) -> list[dict[str, Any]]:
    """Median and all times of the whole computation on clusters of ``counts`` worker processes.

    All clusters are started first and their runs interleaved (1, 2, 1, 2, ...), so that a change
    in the machine's load (it is shared) falls on every configuration alike.
    """
    with contextlib.ExitStack() as stack:
        clients = []
        for workers in counts:
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    memory_limit=MEMORY_LIMIT,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(distributed.Client(cluster, set_as_default=False))
            client.run(one_thread_per_call)
            clients.append(client)
        # warm-up: imports and loads on every worker
        digests = [cluster_digests(client, shape, chunks) for client in clients]
        times: list[list[float]] = [[] for _ in counts]
        for _ in range(reps):
            for index, client in enumerate(clients):
                start = time.perf_counter()
                again = cluster_digests(client, shape, chunks)
                times[index].append(time.perf_counter() - start)
                assert again == digests[index], "two runs on one cluster differ"
    return [
        {"workers": w, "median_s": statistics.median(t), "times_s": t, "digests": d}
        for w, t, d in zip(counts, times, digests, strict=True)
    ]


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        # the machine is shared: the load while this ran says how far the figures can be trusted
        "load_average_1_5_15": os.getloadavg(),
    }


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "unidrop": unidrop.__version__,
        "numpy kernel": unidrop.get_backend("numpy").implementation().describe(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-rows", type=int, default=14)
    parser.add_argument("--log2-cols", type=int, default=14)
    parser.add_argument("--log2-chunk-rows", type=int, default=10)
    parser.add_argument("--log2-chunk-cols", type=int, default=12)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "dask_scaling.json")
    args = parser.parse_args(argv)
    shape = (1 << args.log2_rows, 1 << args.log2_cols)
    chunks = (1 << args.log2_chunk_rows, 1 << args.log2_chunk_cols)
    array_bytes = shape[0] * shape[1] * 4
    runs = time_clusters((1, 2), shape, chunks, args.reps)
    reference, single_s = single_machine(shape, chunks)
    equal = all(run["digests"] == reference for run in runs)
    result = {
        "command": "python " + shlex.join(["benchmarks/dask_scaling.py", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "versions": versions(),
        "array": {"shape": shape, "dtype": "float32", "bytes": array_bytes, "chunks": chunks},
        "dropout": {"p": P, "seed": SEED, "stream": STREAM},
        "worker_memory_limit_bytes": MEMORY_LIMIT,
        "threads_per_worker": 1,
        "unidrop_threads_per_call": 1,
        "reps": args.reps,
        "clusters": [{k: v for k, v in run.items() if k != "digests"} for run in runs],
        "single_machine_dropout_s": single_s,
        "equal_to_single_machine": equal,
        "chunks_compared": len(reference),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    one, two = (run["median_s"] for run in runs)
    lines = [
        "# Dask scaling: unidrop-dask on a LocalCluster",
        "",
        f"`{result['command']}`",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"{result['machine']['memory_gib']} GiB, load average at the end "
        f"{', '.join(f'{v:.1f}' for v in result['machine']['load_average_1_5_15'])}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if k != "numpy kernel")
        + f"; NumPy backend: {result['versions']['numpy kernel']}.",
        "",
        f"Array: {shape[0]} x {shape[1]} float32 ({array_bytes / 2**30:.2f} GiB) in chunks of "
        f"{chunks[0]} x {chunks[1]} ({chunks[0] * chunks[1] * 4 / 2**20:.0f} MiB), made on the workers; "
        f"each worker's memory limit {MEMORY_LIMIT / 2**20:.0f} MiB, one thread, one unidrop thread "
        "per call. "
        f"p = {P}. Timed: build the graph, make each chunk, dropout, SHA-256 of each output chunk "
        f"(median of {args.reps} after a warm-up; the two clusters' runs interleaved).",
        "",
        "| worker processes | median s | all runs s |",
        "|---|---|---|",
        *(
            f"| {run['workers']} | {run['median_s']:.2f} | {', '.join(f'{t:.2f}' for t in run['times_s'])} |"
            for run in runs
        ),
        "",
        f"Speed-up from 1 to 2 workers: {one / two:.2f}x. Single machine (unidrop.dropout on the whole "
        f"NumPy array in one process, default threads, dropout alone): {single_s:.2f} s.",
        "",
        f"Equal to the single-machine result: **{equal}** (SHA-256 of all {len(reference)} chunks).",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
