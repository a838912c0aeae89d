"""The work: a DataArray's data goes to its own backend; dims, coords, name and attrs are kept."""

import xarray as xr

import unidrop


class XarrayImplementation(unidrop.Implementation):
    supports_blocks = True  # dropout() honours plan.block (a block of a larger array)

    def dtypes(self) -> frozenset[str]:
        return frozenset({"float16", "float32", "float64"})

    def shape_and_dtype(self, x: xr.DataArray) -> tuple[tuple[int, ...], str]:
        return tuple(x.shape), x.dtype.name  # the canonical name: 'float32' for '>f4' too

    def dropout(self, x: xr.DataArray, plan: unidrop.DropoutPlan) -> tuple[xr.DataArray, xr.DataArray]:
        options = {"seed": plan.seed, "stream": plan.stream, "broadcast_dims": plan.broadcast_dims}
        if plan.block is not None:  # x is a block of a larger array: its data gets the same block
            global_shape, offset = plan.block.arguments_for(x.shape, plan.broadcast_dims)
            options.update(global_shape=global_shape, offset=offset)
        y, keep = unidrop.dropout(x.data, plan.p, return_mask=True, **options)
        return x.copy(deep=False, data=y), xr.DataArray(keep, dims=x.dims)

    def full_mask(self, x: xr.DataArray, shape: tuple[int, ...]) -> xr.DataArray:
        return xr.ones_like(x, dtype=bool)[tuple(slice(n) for n in shape)]  # on x's device, as x's data
