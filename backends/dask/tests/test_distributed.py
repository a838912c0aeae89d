"""The Dask backend on a real dask.distributed LocalCluster of two worker processes.

Each chunk's task runs in a worker process (pickled by reference to unidrop_dask.chunks); the
result must equal the NumPy backend's on the whole array, and seed=None's one drawn seed must
reach every worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import dask.array as da
import numpy as np
import pytest

import unidrop
from unidrop import seeding

distributed = pytest.importorskip("distributed", reason="the distributed extra is not installed")

SEED, STREAM = (1 << 63) + 12345, (1 << 32) + 1


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    """A client of a LocalCluster of 2 worker processes, one thread each (started once: ~2 s)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit="1GiB"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def values_of(shape: tuple[int, ...]) -> np.ndarray:
    size = int(np.prod(shape))
    return (np.arange(size, dtype=np.float64) % 251 - 125).reshape(shape).astype(np.float32)


def test_the_workers_are_other_processes(client: distributed.Client) -> None:
    """The cluster runs two worker processes, neither of them this one."""
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids


@pytest.mark.parametrize("dims", [(), (0,), (1,), (0, 2)])
def test_cluster_result_equals_the_numpy_backend_on_the_whole_array(
    client: distributed.Client, dims: tuple[int, ...]
) -> None:
    """Uneven chunks, broadcast_dims across chunk boundaries: output and mask computed on the
    workers equal the NumPy backend's on the whole array, and both workers took chunks."""
    x = values_of((37, 29, 11))
    dx = da.from_array(x, chunks=((10, 20, 7), (3, 13, 13), (6, 5)))
    y, keep = unidrop.dropout(dx, 0.35, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True)
    futures = client.compute([y, keep])
    got_y, got_keep = client.gather(futures)
    want_y, want_keep = unidrop.dropout(
        x, 0.35, seed=SEED, stream=STREAM, broadcast_dims=dims, return_mask=True
    )
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_keep, want_keep)


def test_chunks_run_on_both_workers(client: distributed.Client) -> None:
    """The tasks of one dropout spread over both worker processes (18 chunks, 2 workers)."""
    x = values_of((60, 60))
    y = unidrop.dropout(da.from_array(x, chunks=((10,) * 6, (20,) * 3)), 0.5, seed=SEED).persist()
    distributed.wait(y)
    holders = {worker for workers in client.who_has(y).values() for worker in workers}
    assert len(holders) == 2, f"all chunks ran on {holders}"
    np.testing.assert_array_equal(y.compute(), unidrop.dropout(x, 0.5, seed=SEED))
    del y


def test_seed_none_reaches_every_worker(client: distributed.Client) -> None:
    """seed=None: the seed drawn in this process when the graph is built is the one every worker uses."""
    x = values_of((40, 30))
    unidrop.manual_seed(2026)
    drawn = seeding.draw_seed()
    unidrop.manual_seed(2026)
    y = unidrop.dropout(da.from_array(x, chunks=(7, 11)), 0.5)
    got = client.compute(y).result()
    np.testing.assert_array_equal(got, unidrop.dropout(x, 0.5, seed=drawn))


def test_a_larger_array_on_the_cluster(client: distributed.Client) -> None:
    """2**22 + 3 float32 elements in 7 uneven chunks: equal to the NumPy backend on the whole array."""
    n = (1 << 22) + 3
    x = (np.arange(n, dtype=np.int64) % 251 - 125).astype(np.float32)
    chunks = (600_000, 1_000_000, 400_001, 900_000, 500_000, 700_000, n - 4_100_001)
    # made on the workers, not shipped from here
    dx = (da.arange(n, dtype=np.int64, chunks=(chunks,)) % 251 - 125).astype(np.float32)
    got = client.compute(unidrop.dropout(dx, 0.1, seed=SEED, stream=STREAM)).result()
    np.testing.assert_array_equal(got, unidrop.dropout(x, 0.1, seed=SEED, stream=STREAM))
