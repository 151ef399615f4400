"""Reliability: sparse input, awkward but valid data, numerical faults, interruption,
persistence that is safe to load, determinism across processes."""

import hashlib
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from sklearn_vade import VaDEClustering, _inference, _pretrain, _run, _training
from sklearn_vade._data import feature_scaling, training_rows

# A small network and a short schedule: these tests are about robustness, not quality.
TINY = dict(hidden_layer_sizes=(16,), latent_dim=2, pretrain_epochs=3, max_epochs=3,
            batch_size=16, random_state=0)
SMALL = dict(hidden_layer_sizes=(64, 64), latent_dim=5, pretrain_epochs=10,
             max_epochs=10, batch_size=32, random_state=0)


def fit_quietly(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X)


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


# ----------------------------------------------------------------- sparse input
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("scale", [1.0, 10.0])  # Bernoulli, then Gaussian
def test_sparse_fit_equals_dense_fit(small_digits, fmt, scale):
    """A sparse matrix gives exactly the model the same dense array gives."""
    X = small_digits[0][:200] * scale
    dense = fit_quietly(VaDEClustering(n_clusters=5, **SMALL), X)
    sparse = fit_quietly(VaDEClustering(n_clusters=5, **SMALL),
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
    est = fit_quietly(VaDEClustering(n_clusters=5, **SMALL), X)
    est.predict_proba(X)
    est.score(X)
    assert rows and max(rows) <= 64 < X.shape[0]


def test_dense_predict_does_not_copy_the_input():
    """Inference on float32 input allocates per batch, not per input (numpy memory
    traced; torch's own buffers are per batch by construction)."""
    rng = np.random.RandomState(0)
    est = fit_quietly(VaDEClustering(n_clusters=3, **TINY),
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
    est = VaDEClustering(n_clusters=3, **dict(TINY, **params))
    fit_quietly(est, X)
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
    est = VaDEClustering(n_clusters=n_clusters, **dict(TINY, random_state=seed))
    fit_quietly(est, X)
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
    est = VaDEClustering(n_clusters=5, **dict(SMALL, tol=0.0))
    with pytest.warns(ConvergenceWarning, match="non-finite values 1 time"):
        est.fit(X)
    assert len(est.pretrain_losses_) == SMALL["pretrain_epochs"]
    assert est.n_iter_ == SMALL["max_epochs"] == len(est.history_)
    assert np.isfinite(est.pretrain_losses_).all()
    assert np.isfinite(est.lower_bounds_).all()
    assert_valid_outputs(est, X)


def test_persistent_divergence_stops_with_a_clear_error(small_digits, monkeypatch):
    def always_nan(*args, **kwargs):
        loss, *rest = negative_elbo(*args, **kwargs)
        return (loss * float("nan"), *rest)

    negative_elbo = _training.negative_elbo
    monkeypatch.setattr(_training, "negative_elbo", always_nan)
    est = VaDEClustering(n_clusters=3, **TINY)
    with pytest.raises(FloatingPointError,
                       match="training diverged.*Lower learning_rate"):
        est.fit(small_digits[0][:60])
    with pytest.raises(NotFittedError):
        est.predict(small_digits[0][:60])


def test_empty_components_are_reported():
    """Two distinct points cannot occupy four components: the warning names the empty
    ones, and the output stays finite (no log(0))."""
    X = np.repeat(np.array([[0.1, 0.9, 0.2], [0.8, 0.1, 0.7]]), 50, axis=0)
    est = VaDEClustering(n_clusters=4, **TINY)
    with pytest.warns(ConvergenceWarning,
                      match=r"components \[2, 3\].*smaller n_clusters"):
        est.fit(X)
    assert np.unique(est.labels_).size <= 2
    assert_valid_outputs(est, X)


# ------------------------------------------------------------------ interruption
def _interrupt_at(function, at_call):
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise KeyboardInterrupt
        return function(*args, **kwargs)

    return interrupted


def test_interrupt_during_training_keeps_last_completed_epoch(small_digits,
                                                              monkeypatch):
    X = small_digits[0]  # 300 rows, batch 32: 10 steps per epoch
    monkeypatch.setattr(_training, "negative_elbo",
                        _interrupt_at(_training.negative_elbo, 45))
    est = VaDEClustering(n_clusters=5, **dict(SMALL, max_epochs=100, tol=0.0))
    with pytest.warns(UserWarning, match="interrupted during training"):
        est.fit(X)
    # Snapshots every 20 steps (2 epochs): the interrupt in epoch 5 goes back to 4.
    assert est.n_iter_ == len(est.history_) == 4
    assert not est.converged_
    assert len(est.pretrain_losses_) == SMALL["pretrain_epochs"]
    np.testing.assert_array_equal(est.labels_, est.predict(X))
    assert_valid_outputs(est, X)


def test_interrupt_during_pretraining_skips_the_joint_phase(small_digits,
                                                            monkeypatch):
    X = small_digits[0]
    monkeypatch.setattr(_pretrain, "autoencoder_loss",
                        _interrupt_at(_pretrain.autoencoder_loss, 65))
    est = VaDEClustering(n_clusters=5, **dict(SMALL, n_init=3))
    with pytest.warns(UserWarning, match="interrupted during pretraining"):
        est.fit(X)
    assert len(est.pretrain_losses_) == 6
    assert est.n_iter_ == 0
    np.testing.assert_array_equal(est.labels_, est.predict(X))
    assert_valid_outputs(est, X)


def test_interrupt_outside_training_leaves_the_estimator_as_before(small_digits,
                                                                   monkeypatch):
    X = small_digits[0]
    est = fit_quietly(VaDEClustering(n_clusters=5, **SMALL), X)
    before = pickle.dumps(est)
    proba = est.predict_proba(X)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_run, "initialise_mixture", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X)
    assert pickle.dumps(est) == before
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    fresh = VaDEClustering(n_clusters=5, **SMALL)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)


_SIGINT_SCRIPT = textwrap.dedent("""
    import signal, sys, warnings
    # Python's own Ctrl-C handler, as in a terminal: a process started from a
    # background job of a non-interactive shell (a queued test run) inherits SIGINT
    # as ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np, torch
    from sklearn.datasets import load_digits
    from sklearn_vade import VaDEClustering
    torch.set_num_threads(1)
    X = load_digits().data[:300] / 16
    est = VaDEClustering(n_clusters=5, hidden_layer_sizes=(64,), latent_dim=5,
                         pretrain_epochs=5, max_epochs=100000, tol=0.0,
                         batch_size=32, init_params="gmm", random_state=0,
                         verbose=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    print("interrupted" if any("interrupted" in str(w.message) for w in caught)
          else "not interrupted")
    print("n_iter", est.n_iter_)
    print("agree", bool((est.predict(X) == est.labels_).all()))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
def test_ctrl_c_in_a_real_process_returns_a_fitted_model():
    proc = subprocess.Popen([sys.executable, "-c", _SIGINT_SCRIPT],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # verbose=2 prints one line per epoch
            if line.startswith("training epoch 3:"):
                proc.send_signal(signal.SIGINT)
                break
        # A SIGINT sent while the process is not yet listening (or a lost one) is
        # what a user answers by pressing Ctrl-C again: resend a few times.
        for _ in range(5):
            try:
                out, err = proc.communicate(timeout=20)
                break
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
        else:
            out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "interrupted"
    assert int(lines[1].split()[1]) >= 2
    assert lines[2] == "agree True"


# --------------------------------------------------------------- persistence
@pytest.fixture(scope="module")
def fitted(small_digits):
    return fit_quietly(VaDEClustering(n_clusters=5, **SMALL), small_digits[0])


def test_skops_round_trip_trusts_only_the_estimator_class(fitted, small_digits,
                                                          tmp_path):
    """The fitted state is numpy arrays and builtins: skops needs to trust nothing but
    the estimator's own class, and the loaded model predicts exactly the same."""
    sio = pytest.importorskip("skops.io")
    X = small_digits[0]
    path = tmp_path / "vade.skops"
    sio.dump(fitted, path)
    assert sio.get_untrusted_types(file=path) == [
        "sklearn_vade._estimator.VaDEClustering"]
    loaded = sio.load(path, trusted=["sklearn_vade._estimator.VaDEClustering"])
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert loaded.score(X) == fitted.score(X)
    np.testing.assert_array_equal(loaded.sample(5)[0], fitted.sample(5)[0])


_LOAD_WITHOUT_CUDA = textwrap.dedent("""
    import pickle, sys
    import numpy as np, torch
    torch.cuda.is_available = lambda: False  # a machine without a GPU
    est, X = pickle.load(open(sys.argv[1], "rb"))
    assert est.device == "cuda"
    np.save(sys.argv[2], est.predict_proba(X))
""")


def test_model_fitted_for_cuda_predicts_on_a_cpu_only_machine(fitted, small_digits,
                                                              tmp_path):
    """The fitted state holds no tensors, so a model trained with device="cuda"
    unpickles and predicts (always on CPU) where CUDA is absent."""
    X = small_digits[0]
    gpu_model = pickle.loads(pickle.dumps(fitted))
    gpu_model.set_params(device="cuda")  # as if fitted on a GPU machine
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump((gpu_model, X), f)
    subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_CUDA,
                    str(tmp_path / "model.pkl"), str(tmp_path / "proba.npy")],
                   check=True,
                   env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"),
                                  fitted.predict_proba(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu_inference(small_digits):
    X = small_digits[0]
    est = fit_quietly(VaDEClustering(n_clusters=5, **dict(SMALL, device="cuda")), X)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert_valid_outputs(est, X)


# ---------------------------------------------------------------- determinism
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = VaDEClustering(n_clusters=1, latent_dim=1, hidden_layer_sizes=(4,),
                             pretrain_epochs=2, max_epochs=2, random_state=0).fit(X)
    assert np.isfinite(est.score(X)) and np.isfinite(est.means_).all()


def test_unconstrained_pi_is_normalised_in_the_score(small_digits):
    """Scaling a free pi changes neither gamma nor the reported ELBO."""
    X = small_digits[0][:200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = VaDEClustering(n_clusters=3, hidden_layer_sizes=(16,), latent_dim=2,
                             pi_update="unconstrained", pretrain_epochs=3,
                             max_epochs=2, random_state=0).fit(X)
    before = est.score_samples(X), est.predict_proba(X)
    net = est._network()
    with torch.no_grad():
        net.prior.pi_value.mul_(7.0)
    np.testing.assert_allclose(est.score_samples(X), before[0], rtol=1e-12)
    np.testing.assert_allclose(est.predict_proba(X), before[1], rtol=1e-12)
