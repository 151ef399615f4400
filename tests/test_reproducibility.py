"""Same random_state, same data: identical results, in one process or two; no global
generator touched."""

import hashlib
import random
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_vade import VaDEClustering

from .conftest import UNSEEDED

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _fit(X, **kwargs):
    return VaDEClustering(n_clusters=5, **dict(UNSEEDED, **kwargs)).fit(X)


def test_same_seed_gives_identical_results(small_digits):
    """Two fits with the same seed agree bit for bit."""
    X, _ = small_digits
    a, b = _fit(X, random_state=7), _fit(X, random_state=7)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bounds_ == b.lower_bounds_


def test_float32_input_read_in_place_fits_as_float64(small_digits):
    """Float32 data in [0, 1] is trained on in place, not copied (MNIST: 220 MB
    less): the fit equals that of the same values in float64, the data is left
    untouched, and read-only data (e.g. a memmap) is accepted without warnings."""
    from sklearn_vade._data import feature_scaling, training_rows

    X32 = np.ascontiguousarray(small_digits[0], dtype=np.float32)
    offset, scale = feature_scaling(X32, "bernoulli")
    rows = training_rows(X32, offset, scale, torch.device("cpu"))
    assert rows.data_ptr() == X32.ctypes.data  # shared, not copied
    before = X32.copy()
    X32.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("error", message=".*not writ")  # torch's warning
        a = VaDEClustering(n_clusters=5, random_state=3, **UNSEEDED).fit(X32)
    b = _fit(X32.astype(np.float64), random_state=3)
    np.testing.assert_array_equal(X32, before)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.lower_bounds_ == b.lower_bounds_
    # Gaussian data is standardised into a copy
    offset, scale = feature_scaling(X32, "gaussian")
    assert training_rows(X32, offset, scale, "cpu").data_ptr() != X32.ctypes.data


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


_FIT_AND_HASH = textwrap.dedent("""
    import hashlib, warnings
    import numpy as np, torch
    from sklearn.datasets import load_digits
    from sklearn_vade import VaDEClustering
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    X = load_digits().data[:300] / 16
    est = VaDEClustering(n_clusters=5, hidden_layer_sizes=(64, 64), latent_dim=5,
                         pretrain_epochs=10, max_epochs=10, batch_size=32,
                         random_state=7).fit(X)
    digest = hashlib.sha256()
    for array in (est.labels_, est.predict_proba(X), est.score_samples(X)):
        digest.update(np.ascontiguousarray(array).tobytes())
    print(digest.hexdigest())
""")


def test_two_processes_give_bitwise_identical_results():
    digests = [subprocess.run([sys.executable, "-c", _FIT_AND_HASH], check=True,
                              capture_output=True, text=True).stdout.strip()
               for _ in range(2)]
    assert len(digests[0]) == len(hashlib.sha256().hexdigest())
    assert digests[0] == digests[1]
