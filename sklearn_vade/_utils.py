"""Random generators, devices, batching, warnings and the all-or-nothing fit."""

import contextlib
import os
import sys
import warnings

import numpy as np
import sklearn
import torch
from sklearn.utils import check_random_state

_MAX_SEED = np.iinfo(np.int32).max


def local_random_state(random_state):
    """A numpy ``RandomState`` for ``random_state`` that leaves the global one alone.

    ``None`` gives a generator seeded from fresh OS entropy (where
    ``sklearn.utils.check_random_state`` would return numpy's global generator).
    """
    if random_state is None:
        return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
    return check_random_state(random_state)


def draw_seed(rng):
    """A fresh integer seed from a numpy ``RandomState``."""
    return int(rng.randint(_MAX_SEED))


def torch_generator(seed, device):
    """A local ``torch.Generator`` on ``device``, seeded with ``seed``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def resolve_device(device):
    """Map ``"auto"`` to CUDA when available, else CPU; check that CUDA exists."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch finds no CUDA device. "
            "Use device='cpu' or device='auto'."
        )
    return torch.device(device)


def fast_dtype(device):
    """bfloat16 where the device computes it natively, else None (stay in float32).

    Training runs its matrix products under ``torch.autocast`` in this dtype: about
    2x faster on CPUs with AVX-512 bf16 or AMX, and on recent GPUs.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


@contextlib.contextmanager
def torch_threads_kept():
    """Put torch's thread count back after the block. UMAP's numba sets the
    OpenMP runtime that torch shares to one thread per core: without this, a fit
    (and the caller's torch afterwards) would go on with more threads than the
    caller chose."""
    n_threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != n_threads:
            torch.set_num_threads(n_threads)


def autocast(device, dtype):
    """``torch.autocast`` to ``dtype`` on ``device``; a no-op when dtype is None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)


def iter_batches(n_samples, batch_size):
    """Slices ``[start, stop)`` covering ``range(n_samples)`` in order."""
    for start in range(0, n_samples, batch_size):
        yield slice(start, min(start + batch_size, n_samples))


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(h):
    """The splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    h = h + _GOLDEN
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _column_keys(n_columns):
    """Fixed uint64 keys, one per column, for :func:`row_normals`."""
    return _splitmix64(np.arange(n_columns, dtype=np.uint64) * _GOLDEN)


def row_normals(rows, n_dims):
    """Standard normal draws, ``n_dims`` per row, determined by each row's values.

    ``rows`` is an array (or tensor) of shape (n_rows, n_columns). Row i's draws are
    a pseudo-random function of the float64 values of ``rows[i]`` alone: the same
    row gives the same draws in any batch, order or call, and distinct rows give
    independent-looking draws. Used for the Monte-Carlo
    part of the ELBO of a fitted model, so that ``score_samples`` is deterministic
    and row-wise while the noise of the draws averages out over rows (draws shared
    by all rows would shift the mean ELBO by the same error for every row).

    Each value's bits, offset by a fixed key of its column, go through the
    splitmix64 finaliser; the row's hash is the finalised (wrapping uint64) sum of
    these, and uniforms from a counter on that hash become normals by the
    Box-Muller transform.
    """
    if isinstance(rows, torch.Tensor):
        rows = rows.detach().cpu().numpy()
    # + 0.0 turns -0.0 into 0.0: equal values, equal bits
    rows = np.ascontiguousarray(rows, dtype=np.float64) + 0.0
    bits = rows.view(np.uint64)
    with np.errstate(over="ignore"):
        mixed = _splitmix64(bits + _column_keys(rows.shape[1]))
        h = _splitmix64(mixed.sum(axis=1, dtype=np.uint64))
        counters = np.arange(1, 2 * n_dims + 1, dtype=np.uint64) * _GOLDEN
        u = _splitmix64(h[:, None] + counters)
    # 52 random bits -> (0, 1), never 0 (log) nor 1: (k + 0.5) / 2**52 is exact.
    u = ((u >> np.uint64(12)).astype(np.float64) + 0.5) * 2.0 ** -52
    u1, u2 = u[:, :n_dims], u[:, n_dims:]
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


# Frames in these folders are not the user's: warnings point past them.
_INTERNAL = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
             os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep)


def warn_user(message, category):
    """``warnings.warn`` attributed to the user's line: the first caller outside
    this package and scikit-learn (whose Pipeline, meta-estimators and
    ``_fit_context`` wrap fit), whatever the entry point."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(
            frame.f_code.co_filename).startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)



@contextlib.contextmanager
def unchanged_on_error(obj):
    """Put ``obj.__dict__`` back as it was when the block raises (anything, Ctrl-C
    included): no half-fitted estimator after an error (scikit-learn's
    ``validate_data`` sets ``n_features_in_`` first thing)."""
    before = dict(obj.__dict__)
    try:
        yield
    except BaseException:
        obj.__dict__.clear()
        obj.__dict__.update(before)
        raise
