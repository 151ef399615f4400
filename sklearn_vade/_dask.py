"""Inference on dask arrays, block of rows by block of rows.

dask is optional (``pip install ".[dask]"``) and never imported here: a dask array
is recognised by its type's module and mapped with its own ``map_blocks``. Each
task calls the fitted estimator's method on a numpy block, so the estimator
travels to the workers pickled, as any dask task's function does.
"""

import numpy as np


def is_dask_array(X):
    """Whether X is a dask array (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "map_blocks")


def blockwise(method, X, n_features, n_columns, dtype):
    """``method`` (a fitted estimator's method) applied to each block of rows of the
    dask array X: a dask array of ``n_columns`` columns (None: one value per row),
    computed block by block when asked. An error met in a block names its rows."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array, got one of {X.ndim} dimensions.")
    if X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but VaDEClustering is "
                         f"expecting {n_features} features as input.")

    def apply(block, block_info=None):
        try:
            return method(block)
        except ValueError as exc:
            start, stop = block_info[0]["array-location"][0]
            raise ValueError(f"rows {start} to {stop - 1} of the dask array: "
                             f"{exc}") from exc

    X = X.rechunk({1: -1})  # every feature of a row in the same block
    if n_columns is None:
        return X.map_blocks(apply, drop_axis=1, dtype=dtype,
                            meta=np.empty((0,), dtype=dtype))
    return X.map_blocks(apply, chunks=(X.chunks[0], (n_columns,)), dtype=dtype,
                        meta=np.empty((0, 0), dtype=dtype))
