"""Robustness: sparse input, awkward but valid data, numerical faults and edge
cases."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from sklearn_vade import VaDEClustering, _inference, _pretrain, _training
from sklearn_vade._data import feature_scaling, training_rows

from .conftest import SMALL_SHORT, TINY_SHORT, assert_valid_outputs

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ----------------------------------------------------------------- sparse input
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("scale", [1.0, 10.0])  # Bernoulli, then Gaussian
def test_sparse_fit_equals_dense_fit(small_digits, fmt, scale):
    """A sparse matrix gives exactly the model the same dense array gives."""
    X = small_digits[0][:200] * scale
    dense = VaDEClustering(n_clusters=5, **SMALL_SHORT).fit(X)
    sparse = VaDEClustering(n_clusters=5, **SMALL_SHORT).fit(
        sp.csr_matrix(X).asformat(fmt))
    assert sparse.likelihood_ == dense.likelihood_
    assert sparse.likelihood_ == ("bernoulli" if scale == 1.0 else "gaussian")
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)),
                               dense.predict_proba(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sparse.score(sp.csr_matrix(X)), dense.score(X),
                               rtol=1e-6)


def test_sparse_input_is_densified_batch_by_batch(small_digits, monkeypatch):
    """No step of fit or inference densifies more rows than one batch."""
    X = sp.csr_matrix(small_digits[0])
    monkeypatch.setattr(_inference, "INFERENCE_BATCH", 64)
    rows = []
    original = sp.csr_matrix.toarray

    def recording_toarray(self, *args, **kwargs):
        rows.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", recording_toarray)
    est = VaDEClustering(n_clusters=5, **SMALL_SHORT).fit(X)
    est.predict_proba(X)
    est.score(X)
    assert rows and max(rows) <= 64 < X.shape[0]


def test_dense_predict_does_not_copy_the_input():
    """Inference on float32 input allocates per batch, not per input (numpy memory
    traced; torch's own buffers are per batch by construction)."""
    rng = np.random.RandomState(0)
    est = VaDEClustering(n_clusters=3, **TINY_SHORT).fit(
        rng.rand(100, 784).astype(np.float32))
    X = rng.rand(40_000, 784).astype(np.float32)  # 125 MB
    tracemalloc.start()
    try:
        est.predict_proba(X)
        est.score_samples(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * X.nbytes


# --------------------------------------------------------- awkward valid input
def _awkward_inputs():
    rng = np.random.RandomState(0)
    base = rng.rand(40, 6)
    fortran = np.asfortranarray(base)
    read_only = base.copy()
    read_only.flags.writeable = False
    duplicated = np.repeat(rng.rand(3, 6), 30, axis=0)
    constant_columns = base.copy()
    constant_columns[:, [0, 3]] = 0.7
    return {
        "constant": (np.full((30, 4), 3.5), {}),
        "all_zeros": (np.zeros((30, 4)), {}),
        "constant_columns": (constant_columns, {}),
        "heavy_duplication": (duplicated, {}),
        "exactly_n_clusters_rows": (rng.rand(3, 5), {}),
        "one_feature": (rng.randn(50, 1), {}),
        "wide_few_rows": (rng.randn(20, 2000), {}),
        "float32": (base.astype(np.float32), {}),
        "int": (rng.randint(0, 20, size=(40, 5)), {}),
        "bool": (rng.rand(40, 8) > 0.5, {}),
        "fortran": (fortran, {}),
        "read_only": (read_only, {}),
        "tiny_scale": (base * 1e-30, {}),
        "tiny_scale_gaussian": (base * 1e-30, {"likelihood": "gaussian"}),
        "huge_scale": (base * 1e6, {}),
        "negative_huge_scale": (-base * 1e6 + 3e6, {}),
        "batch_larger_than_data": (base, {"batch_size": 10_000}),
        "learning_rate_far_too_high": (base * 5.0, {"learning_rate": 10.0}),
    }


AWKWARD = _awkward_inputs()


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_awkward_but_valid_input_gives_finite_valid_output(name):
    X, params = AWKWARD[name]
    est = VaDEClustering(n_clusters=3, **dict(TINY_SHORT, **params))
    est.fit(X)
    assert_valid_outputs(est, X)
    assert est.labels_.shape == (X.shape[0],)
    np.testing.assert_array_equal(est.labels_, est.predict(X))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    n_clusters=st.integers(1, 4),
    extra_rows=st.integers(0, 30),
    n_features=st.integers(1, 12),
    log_scale=st.floats(-30, 6),
    offset=st.sampled_from([0.0, 1.0, -1e3]),
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_]),
    seed=st.integers(0, 2**16),
)
def test_fuzz_fit_predict_score(n_clusters, extra_rows, n_features, log_scale, offset,
                                dtype, seed):
    """Random shapes, scales and dtypes: finite output, probabilities summing to 1."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n_clusters + extra_rows, n_features) * 10.0**log_scale + offset
    if dtype is np.bool_:
        X = X > offset
    elif dtype is np.int64:
        X = np.round(np.clip(X, -1e9, 1e9))
    X = X.astype(dtype)
    if np.issubdtype(X.dtype, np.floating):
        X[~np.isfinite(X)] = 0.0  # float32 overflow at the largest scales
    est = VaDEClustering(n_clusters=n_clusters, **dict(TINY_SHORT, random_state=seed))
    est.fit(X)
    assert_valid_outputs(est, X)


# ------------------------------------------------------------ numerical faults
def _poison_once(function, at_call):
    """Wrap a loss function so that its result is NaN at call number ``at_call``."""
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        result = function(*args, **kwargs)
        if calls["n"] == at_call:
            if isinstance(result, tuple):
                return (result[0] * float("nan"),) + tuple(result[1:])
            return result * float("nan")
        return result

    return poisoned


@pytest.mark.parametrize("phase", ["pretraining", "training"])
def test_non_finite_loss_is_rolled_back(small_digits, monkeypatch, phase):
    """A NaN loss mid-fit is rolled back, training resumes, and fit says so."""
    X = small_digits[0]
    if phase == "pretraining":
        monkeypatch.setattr(_pretrain, "autoencoder_loss",
                            _poison_once(_pretrain.autoencoder_loss, 25))
    else:
        monkeypatch.setattr(_training, "negative_elbo",
                            _poison_once(_training.negative_elbo, 25))
    est = VaDEClustering(n_clusters=5, **dict(SMALL_SHORT, tol=0.0))
    with pytest.warns(ConvergenceWarning, match="non-finite values 1 time"):
        est.fit(X)
    assert len(est.pretrain_losses_) == SMALL_SHORT["pretrain_epochs"]
    assert est.n_iter_ == SMALL_SHORT["max_epochs"] == len(est.history_)
    assert np.isfinite(est.pretrain_losses_).all()
    assert np.isfinite(est.lower_bounds_).all()
    assert_valid_outputs(est, X)


def test_persistent_divergence_stops_with_a_clear_error(small_digits, monkeypatch):
    def always_nan(*args, **kwargs):
        loss, *rest = negative_elbo(*args, **kwargs)
        return (loss * float("nan"), *rest)

    negative_elbo = _training.negative_elbo
    monkeypatch.setattr(_training, "negative_elbo", always_nan)
    est = VaDEClustering(n_clusters=3, **TINY_SHORT)
    with pytest.raises(FloatingPointError,
                       match="training diverged.*Lower learning_rate"):
        est.fit(small_digits[0][:60])
    with pytest.raises(NotFittedError):
        est.predict(small_digits[0][:60])


def test_empty_components_are_reported():
    """Two distinct points cannot occupy four components: the warning names the empty
    ones, and the output stays finite (no log(0))."""
    X = np.repeat(np.array([[0.1, 0.9, 0.2], [0.8, 0.1, 0.7]]), 50, axis=0)
    est = VaDEClustering(n_clusters=4, **TINY_SHORT)
    with pytest.warns(ConvergenceWarning,
                      match=r"components \[2, 3\].*smaller n_clusters"):
        est.fit(X)
    assert np.unique(est.labels_).size <= 2
    assert_valid_outputs(est, X)


# ------------------------------------------------------- numerical edge cases
def test_training_copy_is_standardised_before_rounding_to_float32():
    """A feature far from zero relative to its spread (timestamps) keeps its
    variation in the float32 training copy: standardised in float64 first."""
    rng = np.random.default_rng(0)
    X = np.column_stack([1.7e9 + rng.normal(0.0, 1e3, 5000), rng.normal(size=5000)])
    offset, scale = feature_scaling(X, "gaussian")
    X_train = training_rows(X, offset, scale, "cpu").numpy()
    # float32 of 1.7e9 is a multiple of 128: rounding first would leave ~50 levels
    np.testing.assert_allclose(X_train, (X - offset) / scale, rtol=0, atol=1e-6)
    assert len(np.unique(X_train[:, 0])) > 4900
    sparse = training_rows(sp.csr_matrix(X), offset, scale, "cpu")
    np.testing.assert_array_equal(sparse[torch.arange(5000)].numpy(), X_train)


def test_pretraining_of_codes_without_spread_leaves_the_network_finite():
    """One sample (and n_clusters=1): the codes have no spread to rescale by."""
    X = np.random.default_rng(0).uniform(size=(1, 5))
    est = VaDEClustering(n_clusters=1, latent_dim=1, hidden_layer_sizes=(4,),
                         pretrain_epochs=2, max_epochs=2, random_state=0).fit(X)
    assert np.isfinite(est.score(X)) and np.isfinite(est.means_).all()


def test_unconstrained_pi_is_normalised_in_the_score(small_digits):
    """Scaling a free pi changes neither gamma nor the reported ELBO."""
    X = small_digits[0][:200]
    est = VaDEClustering(n_clusters=3, hidden_layer_sizes=(16,), latent_dim=2,
                         pi_update="unconstrained", pretrain_epochs=3,
                         max_epochs=2, random_state=0).fit(X)
    before = est.score_samples(X), est.predict_proba(X)
    net = est._network()
    with torch.no_grad():
        net.prior.pi_value.mul_(7.0)
    np.testing.assert_allclose(est.score_samples(X), before[0], rtol=1e-12)
    np.testing.assert_allclose(est.predict_proba(X), before[1], rtol=1e-12)
