"""Shared fixtures, estimator configurations and helpers. The suite runs torch on one
thread: on a 2-core machine two CPU-bound processes (or OpenMP spin-waiting) otherwise
slow each other down badly.

Test modules import the configurations and helpers with ``from .conftest import
NAME``: the suite runs with ``--import-mode=importlib``, which keeps tests/ off
sys.path and names this module ``tests.conftest`` (``from conftest import`` fails).
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sklearn_vade import _run

torch.set_num_threads(1)


# ------------------------------------------------------- estimator configurations
# Keyword arguments of VaDEClustering; a test changes one with dict(CONFIG, key=value)
# and never edits it in place.

# A small network trained long enough to cluster the first 300 digits:
# 60 pretraining and 30 joint epochs.
SMALL_LONG = dict(hidden_layer_sizes=(64, 64), latent_dim=5, pretrain_epochs=60,
                  max_epochs=30, batch_size=64, random_state=0)

# The same network on a short schedule, 10 pretraining and 10 joint epochs: for tests
# about robustness, not quality.
SMALL_SHORT = dict(hidden_layer_sizes=(64, 64), latent_dim=5, pretrain_epochs=10,
                   max_epochs=10, batch_size=32, random_state=0)

# A tiny network, 3 pretraining and 3 joint epochs: for tests about robustness, not
# quality.
TINY_SHORT = dict(hidden_layer_sizes=(16,), latent_dim=2, pretrain_epochs=3,
                  max_epochs=3, batch_size=16, random_state=0)

# 20 pretraining and 10 joint epochs, and no random_state: each reproducibility test
# passes its own.
UNSEEDED = dict(hidden_layer_sizes=(32, 32), latent_dim=4, pretrain_epochs=20,
                max_epochs=10, batch_size=50)

# Pretraining only (2 epochs, max_epochs=0): for validation tests that need a fit.
PRETRAIN_ONLY = dict(hidden_layer_sizes=(8,), latent_dim=2, pretrain_epochs=2,
                     max_epochs=0, random_state=0)

# Small networks, default ("auto") training budgets: for the blobs of test_selection.
BLOB_MODEL = dict(hidden_layer_sizes=(32, 32), latent_dim=2, random_state=0)


# ---------------------------------------------------------------------- fixtures
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
def pretrainings(monkeypatch):
    """The number of times an autoencoder is pretrained (not loaded)."""
    calls = []
    pretrain = _run.pretrain_autoencoder

    def counting(*args, **kwargs):
        calls.append(1)
        return pretrain(*args, **kwargs)

    monkeypatch.setattr(_run, "pretrain_autoencoder", counting)
    return calls


@pytest.fixture
def rng():
    return np.random.RandomState(0)


# ----------------------------------------------------------------------- helpers
def assert_valid_outputs(est, X):
    proba = est.predict_proba(X)
    assert proba.shape == (X.shape[0], est.n_clusters)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
    labels = est.predict(X)
    assert labels.min() >= 0 and labels.max() < est.n_clusters
    assert np.isfinite(est.score_samples(X)).all()
    assert np.isfinite(est.transform(X)).all()
    assert np.isfinite(est.weights_).all() and np.isfinite(est.means_).all()
    assert (est.covariances_ > 0).all()
    np.testing.assert_allclose(est.weights_.sum(), 1.0, rtol=1e-10)
