"""Same random_state, same data: identical results; no global generator touched."""

import random
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_vade import VaDEClustering

PARAMS = dict(hidden_layer_sizes=(32, 32), latent_dim=4, pretrain_epochs=20,
              max_epochs=10, batch_size=50)


def _fit(X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VaDEClustering(n_clusters=5, **dict(PARAMS, **kwargs)).fit(X)


def test_same_seed_gives_identical_results(small_digits):
    """Two fits with the same seed agree bit for bit."""
    X, _ = small_digits
    a, b = _fit(X, random_state=7), _fit(X, random_state=7)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bounds_ == b.lower_bounds_


def test_different_seeds_give_different_models(small_digits):
    """The seed matters: another seed gives other parameters."""
    X, _ = small_digits
    a, b = _fit(X, random_state=1), _fit(X, random_state=2)
    assert not np.array_equal(a.means_, b.means_)


def test_fit_leaves_global_generators_alone(small_digits):
    """fit and inference never read or advance numpy's, torch's or random's state."""
    X, _ = small_digits
    np_state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    py_state = random.getstate()
    est = _fit(X, random_state=None)
    est.predict_proba(X)
    est.sample(5)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert np.random.get_state()[2] == np_state[2]
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert random.getstate() == py_state


def test_random_state_instance_is_accepted(small_digits):
    """A RandomState instance drives the fit as its seed would."""
    X, _ = small_digits
    a = _fit(X, random_state=np.random.RandomState(3))
    b = _fit(X, random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
