"""The data floor: per-feature scaling and the training copy of X.

Gaussian data is standardised per feature in float64 (Bernoulli data is used as
is); the training copy is float32 rows on the training device, dense X copied once
(float32 X needing no scaling is read in place on the CPU),
sparse X densified batch by batch, memory-mapped X (:mod:`._outofcore`) read and
standardised batch by batch.
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.sparsefuncs import mean_variance_axis

from ._distributed import ALONE
from ._outofcore import MappedRows
from ._utils import iter_batches


def feature_scaling(X, likelihood, group=ALONE):
    """Per-feature offset and scale: standardisation for Gaussian data, else none.

    Features with no spread (constant up to rounding) keep scale 1. X may be dense or
    a scipy.sparse matrix; neither is copied. With sharded input (``group``, see
    :mod:`._distributed`) the moments are those of every process's rows.
    """
    n_features = X.shape[1]
    if likelihood != "gaussian":
        return np.zeros(n_features), np.ones(n_features)
    if isinstance(X, MappedRows):
        offset, scale = X.moments()
    elif sp.issparse(X):
        offset, variance = mean_variance_axis(X, axis=0)
        offset = offset.astype(np.float64)
        # rounding can leave a constant feature's variance slightly below zero
        scale = np.sqrt(np.clip(variance.astype(np.float64), 0.0, None))
    else:
        offset = X.mean(axis=0, dtype=np.float64)
        scale = X.std(axis=0, dtype=np.float64)
    if group.sharded:
        offset, variance = group.pooled_moments(offset, scale ** 2, X.shape[0])
        scale = np.sqrt(variance)
    constant = ~(scale > 1e-12 * np.abs(offset)) | ~(scale > np.finfo(np.float64).tiny)
    scale[constant] = 1.0
    return offset, scale


def standardise_rows(X, offset, scale, dtype=np.float64):
    """Rows of X (dense or sparse) as a dense array of ``dtype``, standardised in
    float64 and then rounded once (a feature far from zero relative to its spread,
    e.g. timestamps, would lose its variation if rounded to float32 first).

    Where there is nothing to scale (offset 0, scale 1), dense rows already of
    ``dtype`` come back as they are, uncopied: callers never write into the result.
    """
    X = X.toarray() if sp.issparse(X) else X
    if not offset.any() and (scale == 1).all():
        return np.asarray(X, dtype=dtype)
    X = np.array(X, dtype=np.float64)  # one copy per batch, then in place
    X -= offset
    X /= scale
    return X.astype(dtype, copy=False)


def training_rows(X, offset, scale, device):
    """The training data as rows of standardised float32 tensors on ``device``.

    Dense X is copied once into a tensor, except float32 X on the CPU that needs
    no scaling (e.g. pixels in [0, 1] for the Bernoulli likelihood), which training
    reads in place, never writing to it; sparse X stays sparse and each batch of
    rows is densified when it is drawn.
    """
    if sp.issparse(X):
        return _BatchRows(X, offset, scale, device)
    if isinstance(X, MappedRows):
        return _MappedTrainingRows(X, offset, scale, device)
    if (torch.device(device).type == "cpu" and X.dtype == np.float32
            and X.flags.c_contiguous and not offset.any() and (scale == 1).all()):
        with warnings.catch_warnings():  # read-only X (e.g. a memmap): never written
            warnings.filterwarnings("ignore", "The given NumPy array is not writ")
            return torch.from_numpy(X)
    X_train = torch.empty(X.shape, dtype=torch.float32, device=device)
    # Standardised in float64, a chunk of rows at a time, then rounded once to
    # float32: a feature far from zero relative to its spread (e.g. timestamps)
    # would lose its variation if rounded to float32 first.
    for rows in iter_batches(X.shape[0], _STANDARDISE_ROWS):
        chunk = standardise_rows(X[rows], offset, scale)
        X_train[rows] = torch.as_tensor(chunk.astype(np.float32))
    return X_train


# Rows standardised at a time when the training copy of dense X is made.
_STANDARDISE_ROWS = 4096


class _BatchRows:
    """Rows of X that are not held as one tensor (a CSR matrix, or a
    :class:`~._outofcore.MappedRows`), made dense, standardised and sent to the
    device batch by batch."""

    def __init__(self, X, offset, scale, device):
        self.X = X.tocsr() if sp.issparse(X) else X
        self.shape = X.shape
        self.device = torch.device(device)
        self.offset, self.scale = offset, scale

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, torch.Tensor):
            rows = rows.cpu().numpy()
        x = standardise_rows(self.X[rows], self.offset, self.scale)
        return torch.as_tensor(x.astype(np.float32), device=self.device)


class _MappedTrainingRows(_BatchRows):
    """Rows of a memory-mapped X (a :class:`~._outofcore.MappedRows`), read,
    standardised and sent to the device batch by batch, in the I/O-friendly order
    of :meth:`~._outofcore.MappedRows.epoch_order`."""

    def epoch_order(self, generator):
        return self.X.epoch_order(generator)
