"""unidrop backend for Dask: ``unidrop.dropout`` of a ``dask.array.Array`` is a lazy array whose
every chunk computes exactly its slice of the whole array's mask (mask stream v1, blocks).

The entry point loads :class:`unidrop_dask.backend.DaskBackend`; importing this package imports
no framework.
"""

__all__: list[str] = []
