"""Shared fixtures. The suite runs torch on one thread: on a 2-core machine two
CPU-bound processes (or OpenMP spin-waiting) otherwise slow each other down badly."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's bundled handwritten digits, scaled to [0, 1]."""
    data = load_digits()
    return data.data / 16.0, data.target


@pytest.fixture(scope="session")
def small_digits(digits):
    """The first 300 digits: enough to cluster, quick to fit."""
    X, y = digits
    return X[:300], y[:300]


@pytest.fixture
def rng():
    return np.random.RandomState(0)
