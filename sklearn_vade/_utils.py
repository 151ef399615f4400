"""Random generators, devices and batching."""

import numpy as np
import torch

_MAX_SEED = np.iinfo(np.int32).max


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


def iter_batches(n_samples, batch_size):
    """Slices ``[start, stop)`` covering ``range(n_samples)`` in order."""
    for start in range(0, n_samples, batch_size):
        yield slice(start, min(start + batch_size, n_samples))


def to_tensor(X, device, dtype):
    """A dense tensor copy of the rows of ``X`` (numpy or scipy sparse)."""
    if hasattr(X, "toarray"):
        X = X.toarray()
    return torch.as_tensor(np.asarray(X), device=device, dtype=dtype)
