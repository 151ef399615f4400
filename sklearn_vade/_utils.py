"""Random generators, devices and batching."""

import numpy as np
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


def autocast(device, dtype):
    """``torch.autocast`` to ``dtype`` on ``device``; a no-op when dtype is None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)


def iter_batches(n_samples, batch_size):
    """Slices ``[start, stop)`` covering ``range(n_samples)`` in order."""
    for start in range(0, n_samples, batch_size):
        yield slice(start, min(start + batch_size, n_samples))
