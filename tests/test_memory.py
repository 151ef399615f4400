"""The pretraining cache (``memory``): a fit through it is the fit without it; what
its key holds; fits that differ only in the mixture share one pretraining."""

import math
import os
import tempfile

import numpy as np
import pytest
import torch
from joblib import Memory
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_vade import VaDEClustering, _pretrain, _run, select_n_clusters
from sklearn_vade._outofcore import MappedRows

from .conftest import SMALL_SHORT

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def fit(X, **params):
    """A small fit with the quick start (the start is not what is cached)."""
    return VaDEClustering(**dict(dict(SMALL_SHORT, n_clusters=5, init_params="gmm"),
                                 **params)).fit(X)


def assert_same_fit(a, b):
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.lower_bound_ == b.lower_bound_
    assert a.pretrain_losses_ == b.pretrain_losses_
    assert a.lower_bounds_ == b.lower_bounds_
    np.testing.assert_array_equal(a.means_, b.means_)


def test_a_fit_through_the_cache_is_the_fit_without_it(small_digits, tmp_path,
                                                       pretrainings):
    X = small_digits[0]
    plain = fit(X)
    assert len(pretrainings) == 1
    stored = fit(X, memory=str(tmp_path))  # pretrains and stores
    assert len(pretrainings) == 2
    loaded = fit(X, memory=str(tmp_path))  # loads
    assert len(pretrainings) == 2
    for cached in (stored, loaded):
        assert_same_fit(cached, plain)
        np.testing.assert_array_equal(cached.predict_proba(X), plain.predict_proba(X))
    # another n_clusters loads the same pretraining and still ends as its plain fit:
    # the joint phase draws on the generator from where the pretraining left it
    other = fit(X, n_clusters=4, memory=Memory(str(tmp_path), verbose=0))
    assert len(pretrainings) == 2
    assert_same_fit(other, fit(X, n_clusters=4))
    assert other.memory.location == str(tmp_path)  # a parameter, kept as given


def test_the_key_holds_what_the_pretraining_depends_on(small_digits, tmp_path,
                                                       pretrainings):
    X = small_digits[0]
    fit(X, memory=str(tmp_path))
    assert len(pretrainings) == 1
    # the mixture and the joint phase are not in the key
    for params in (dict(n_clusters=3), dict(pi_update="softmax"),
                   dict(init_params="umap"), dict(max_epochs=4), dict(tol=0.5),
                   dict(reconstruction_weight=2.0)):
        fit(X, memory=str(tmp_path), **params)
        assert len(pretrainings) == 1, params
    # the data, the network, the pretraining's settings and the seed are
    for params in (dict(random_state=1), dict(pretrain_epochs=9),
                   dict(batch_size=16), dict(learning_rate=2e-4),
                   dict(latent_dim=4), dict(hidden_layer_sizes=(64, 32)),
                   dict(likelihood="gaussian"), dict(precision="bfloat16")):
        before = len(pretrainings)
        fit(X, memory=str(tmp_path), **params)
        assert len(pretrainings) == before + 1, params
    before = len(pretrainings)
    changed = X.copy()
    changed[0, 0] = 1.0 - changed[0, 0]
    fit(changed, memory=str(tmp_path))
    assert len(pretrainings) == before + 1
    # the machine's arithmetic is: another thread count sums in another order
    before, threads = len(pretrainings), torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        fit(X, memory=str(tmp_path))
    finally:
        torch.set_num_threads(threads)
    assert len(pretrainings) == before + 1


def test_n_init_runs_share_their_pretrainings_across_n_clusters(small_digits,
                                                               tmp_path,
                                                               monkeypatch,
                                                               pretrainings):
    """Each run's seed is drawn before any start: a start may draw a number of
    random numbers that depends on n_clusters (the UMAP start's trades do), and a
    seed drawn after it would differ between fits that differ only there."""
    X = small_digits[0]
    initialise = _run.initialise_mixture

    def drawing_k_numbers(net, X_train, config, rng, *args, **kwargs):
        rng.random_sample(config.n_clusters)
        return initialise(net, X_train, config, rng, *args, **kwargs)

    monkeypatch.setattr(_run, "initialise_mixture", drawing_k_numbers)
    for k in (3, 4, 5):
        fit(X, memory=str(tmp_path), n_init=2, n_clusters=k, max_epochs=1)
    assert len(pretrainings) == 2


def test_a_memory_mapped_x_is_keyed_by_a_scan(small_digits, tmp_path, pretrainings):
    """A memmap is hashed block by block (MappedRows.digest), not as an array
    made resident; the same values give the same key, others another."""
    X = small_digits[0].astype(np.float32)
    path = tmp_path / "x.dat"
    mapped = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mapped[:] = X
    mapped.flush()
    mapped = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    assert MappedRows(mapped).digest() == MappedRows(mapped).digest()
    changed = X.copy()
    changed[-1, -1] += 0.5
    assert MappedRows(np.asarray(changed)).digest() != MappedRows(mapped).digest()
    a = fit(mapped, memory=str(tmp_path / "cache"))
    b = fit(mapped, memory=str(tmp_path / "cache"), n_clusters=3)
    assert len(pretrainings) == 1
    assert_same_fit(a, fit(mapped))
    assert_same_fit(b, fit(mapped, n_clusters=3))


def test_an_interrupted_pretraining_is_not_kept(small_digits, tmp_path,
                                                monkeypatch, pretrainings):
    X = small_digits[0]
    loss = _pretrain.autoencoder_loss
    calls = {"n": 0}
    steps = math.ceil(len(X) / SMALL_SHORT["batch_size"])  # per epoch

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * steps + steps // 2:  # halfway through the third epoch
            raise KeyboardInterrupt
        return loss(*args, **kwargs)

    monkeypatch.setattr(_pretrain, "autoencoder_loss", interrupted)
    with pytest.warns(UserWarning, match="interrupted during pretraining"):
        cut = fit(X, memory=str(tmp_path))
    assert cut.interrupted_ == "pretraining" and cut.n_iter_ == 0
    assert len(cut.pretrain_losses_) == 2  # the completed epochs
    monkeypatch.setattr(_pretrain, "autoencoder_loss", loss)
    again = fit(X, memory=str(tmp_path))
    assert len(pretrainings) == 2
    assert again.interrupted_ is None
    assert_same_fit(again, fit(X))


def test_select_n_clusters_stops_on_ctrl_c(small_digits, monkeypatch):
    X = small_digits[0]
    folders = []
    temporary = tempfile.TemporaryDirectory

    def recorded(*args, **kwargs):
        folder = temporary(*args, **kwargs)
        folders.append(folder.name)
        return folder

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_pretrain, "autoencoder_loss", interrupted)
    monkeypatch.setattr(tempfile, "TemporaryDirectory", recorded)
    with pytest.warns(UserWarning, match="interrupted during pretraining"):
        with pytest.raises(KeyboardInterrupt):
            select_n_clusters(X, [2, 3], estimator=VaDEClustering(**SMALL_SHORT))
    assert len(folders) == 1 and not os.path.exists(folders[0])


def test_select_n_clusters_without_a_seed_pretrains_once(small_digits,
                                                         pretrainings):
    X = small_digits[0]
    template = VaDEClustering(**dict(SMALL_SHORT, random_state=None,
                                     init_params="gmm"))
    result = select_n_clusters(X, [2, 3, 4], estimator=template)
    assert len(pretrainings) == 1
    seeds = {e.random_state for e in result.estimators}
    assert len(seeds) == 1 and isinstance(seeds.pop(), int)
    assert template.random_state is None
    with pytest.raises(ValueError, match="n_clusters_values holds 301, more clusters "
                       "than the n_samples=300 of X"):
        select_n_clusters(X, [2, 301], estimator=template)
    assert len(pretrainings) == 1  # refused before any fit


def test_a_grid_search_over_n_clusters_pretrains_once_per_fold(small_digits,
                                                               tmp_path,
                                                               pretrainings):
    X = small_digits[0]
    search = GridSearchCV(VaDEClustering(**dict(SMALL_SHORT, init_params="gmm",
                                                memory=str(tmp_path))),
                          {"n_clusters": [3, 4, 5]}, cv=2).fit(X)
    # two folds, then the refit on all of X: three pretrainings for seven fits
    assert len(pretrainings) == 3
    best = search.best_estimator_
    assert_same_fit(best, fit(X, n_clusters=best.n_clusters))


def test_memory_is_validated(small_digits):
    with pytest.raises(InvalidParameterError, match="The 'memory' parameter"):
        VaDEClustering(**dict(SMALL_SHORT, memory=3)).fit(small_digits[0])
