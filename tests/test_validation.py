"""Every bad parameter or input raises a clear error, with the message pinned."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_vade import VaDEClustering, cluster_accuracy
from sklearn_vade._validation import check_params_vs_input

from .conftest import PRETRAIN_ONLY


@pytest.fixture
def X():
    return np.random.RandomState(0).uniform(size=(30, 4))


@pytest.mark.parametrize("param, value", [
    ("n_clusters", 0),
    ("n_clusters", 2.5),
    ("latent_dim", 0),
    ("likelihood", "poisson"),
    ("pi_update", "adam"),
    ("pretrain_epochs", -1),
    ("pretrain_epochs", "long"),
    ("max_epochs", -3),
    ("batch_size", 0),
    ("learning_rate", 0.0),
    ("learning_rate", -1e-3),
    ("n_init", 0),
    ("tol", -1.0),
    ("device", "tpu"),
    ("warm_start", "yes"),
    ("random_state", "seed"),
])
def test_invalid_parameter_names_parameter(param, value, X):
    """A bad parameter raises InvalidParameterError naming it."""
    est = VaDEClustering(n_clusters=2, **PRETRAIN_ONLY).set_params(**{param: value})
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        est.fit(X)


@pytest.mark.parametrize("sizes", [(0,), (10, -1), (2.5,), ((3, 4),), ("a",)])
def test_invalid_hidden_layer_sizes(sizes, X):
    """hidden_layer_sizes must be positive integers."""
    est = VaDEClustering(n_clusters=2, **dict(PRETRAIN_ONLY, hidden_layer_sizes=sizes))
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a sequence of "
                                         "positive integers"):
        est.fit(X)


def test_empty_hidden_layer_sizes_is_a_linear_model(X):
    """An empty tuple is valid: no hidden layer, so the code's mean is an affine
    function of the input (the input's scaling included)."""
    est = VaDEClustering(n_clusters=2,
                         **dict(PRETRAIN_ONLY, hidden_layer_sizes=())).fit(X)
    assert est.predict(X).shape == (30,)
    assert not [name for name in est._state if name.startswith(("encoder.",
                                                                   "decoder."))]
    assert est._state["mu_head.weight"].shape == (2, 4)
    mixed = 0.3 * X[:10] + 0.7 * X[10:20]
    np.testing.assert_allclose(
        est.transform(mixed),
        0.3 * est.transform(X[:10]) + 0.7 * est.transform(X[10:20]), atol=1e-10)


def test_bernoulli_outside_unit_interval(X):
    """Bernoulli on data outside [0, 1] says so and names the remedies."""
    est = VaDEClustering(n_clusters=2, likelihood="bernoulli", **PRETRAIN_ONLY)
    with pytest.raises(ValueError, match=r"needs every value of X in \[0, 1\].*"
                                         r"likelihood='gaussian'"):
        est.fit(X * 3)


def test_bernoulli_predict_outside_unit_interval(X):
    """A Bernoulli model refuses prediction data outside [0, 1] too."""
    est = VaDEClustering(n_clusters=2, **PRETRAIN_ONLY).fit(X)
    with pytest.raises(ValueError, match=r"X ranges over \[-0\.99"):
        est.predict(X - 1)


def test_fewer_samples_than_clusters(X):
    """n_samples < n_clusters is refused, naming both numbers."""
    est = VaDEClustering(n_clusters=5, **PRETRAIN_ONLY)
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=5"):
        est.fit(X[:3])


@pytest.mark.parametrize("bad, match", [
    (np.nan, "Input X contains NaN"),
    (np.inf, "Input X contains infinity"),
])
def test_non_finite_input(bad, match, X):
    """NaN and inf are refused by name."""
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match=match):
        VaDEClustering(n_clusters=2, **PRETRAIN_ONLY).fit(X)


def test_string_input():
    """Non-numeric input is refused."""
    X = np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object)
    with pytest.raises(ValueError, match="could not convert string to float"):
        VaDEClustering(n_clusters=2, **PRETRAIN_ONLY).fit(X)


def test_one_dimensional_input():
    """1-D input is refused with scikit-learn's reshape hint."""
    with pytest.raises(ValueError, match="Expected 2D array"):
        VaDEClustering(n_clusters=2, **PRETRAIN_ONLY).fit(np.arange(10.0))


def test_empty_input():
    """An empty array is refused."""
    with pytest.raises(ValueError, match="0 sample"):
        VaDEClustering(n_clusters=2, **PRETRAIN_ONLY).fit(np.empty((0, 3)))


def test_wrong_number_of_features_at_predict(X):
    """predict on data with another number of features names both numbers."""
    est = VaDEClustering(n_clusters=2, **PRETRAIN_ONLY).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but VaDEClustering is "
                                         "expecting 4 features"):
        est.predict(X[:, :3])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform",
                                    "score_samples", "score"])
def test_not_fitted(method, X):
    """Inference before fit raises NotFittedError."""
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(VaDEClustering(), method)(X)


def test_sample_before_fit_and_bad_n_samples(X):
    """sample needs a fitted model and a positive integer count."""
    with pytest.raises(NotFittedError):
        VaDEClustering().sample(3)
    est = VaDEClustering(n_clusters=2, **PRETRAIN_ONLY).fit(X)
    with pytest.raises(ValueError, match="Invalid value for 'n_samples': 0"):
        est.sample(0)


def test_cuda_requested_without_cuda(X, monkeypatch):
    """device='cuda' on a machine without CUDA says what to use instead."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    est = VaDEClustering(n_clusters=2, device="cuda", **PRETRAIN_ONLY)
    with pytest.raises(ValueError, match="device='cuda' was requested but torch "
                                         "finds no CUDA device"):
        est.fit(X)


def test_cluster_accuracy_errors_and_values():
    """cluster_accuracy matches clusters to classes and checks its input."""
    assert cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    assert cluster_accuracy([0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 0, 0]) == pytest.approx(
        1 / 3)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cluster_accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="at least one sample"):
        cluster_accuracy([], [])


@pytest.mark.parametrize("n_samples, pretrain, warmup", [
    (178, 178, 178),  # one step per epoch: the steps are the epochs
    (1797, 150, 125),  # 8 steps per epoch
    (70_000, 50, 25),  # 274 steps per epoch: the minima bind
])
def test_auto_budgets_match_the_user_guide(n_samples, pretrain, warmup):
    """The "auto" epochs of the user guide's table: pretraining one step per sample
    (50 to 1,200 steps, 50 to 1,000 epochs), the anchored warm-up one step per
    sample (at most 1,000 steps, at least 25 epochs) plus 50 joint epochs; an
    explicit max_epochs gives the warm-up at most half."""
    X = np.broadcast_to(np.float32(0.5), (n_samples, 8))  # shape and range only
    params = VaDEClustering(batch_size=256).get_params()
    config = check_params_vs_input(params, X, "cpu")
    assert (config.pretrain_epochs, config.warmup_epochs) == (pretrain, warmup)
    assert config.max_epochs == warmup + 50
    # the warm-up may go on to twice its budget, the joint phase's 50 after it
    assert config.warmup_extension == warmup
    explicit = check_params_vs_input(dict(params, max_epochs=30), X, "cpu")
    assert (explicit.warmup_epochs, explicit.max_epochs) == (min(warmup, 15), 30)
    assert explicit.warmup_extension == 0  # max_epochs holds
