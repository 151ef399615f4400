"""Interruption: a KeyboardInterrupt (Ctrl-C) during fit keeps the last completed
epoch; one outside the training loops leaves the estimator as it was."""

import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from sklearn_vade import VaDEClustering, _pretrain, _run, _training

from .conftest import SMALL_SHORT, assert_valid_outputs

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


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
    est = VaDEClustering(n_clusters=5, **dict(SMALL_SHORT, max_epochs=100, tol=0.0))
    with pytest.warns(UserWarning, match="interrupted during training"):
        est.fit(X)
    # Snapshots every 20 steps (2 epochs): the interrupt in epoch 5 goes back to 4.
    assert est.n_iter_ == len(est.history_) == 4
    assert not est.converged_
    assert len(est.pretrain_losses_) == SMALL_SHORT["pretrain_epochs"]
    np.testing.assert_array_equal(est.labels_, est.predict(X))
    assert_valid_outputs(est, X)


def test_interrupt_during_pretraining_skips_the_joint_phase(small_digits,
                                                            monkeypatch):
    X = small_digits[0]
    monkeypatch.setattr(_pretrain, "autoencoder_loss",
                        _interrupt_at(_pretrain.autoencoder_loss, 65))
    est = VaDEClustering(n_clusters=5, **dict(SMALL_SHORT, n_init=3))
    with pytest.warns(UserWarning, match="interrupted during pretraining"):
        est.fit(X)
    assert len(est.pretrain_losses_) == 6
    assert est.n_iter_ == 0
    np.testing.assert_array_equal(est.labels_, est.predict(X))
    assert_valid_outputs(est, X)


def test_interrupt_outside_training_leaves_the_estimator_as_before(small_digits,
                                                                   monkeypatch):
    X = small_digits[0]
    est = VaDEClustering(n_clusters=5, **SMALL_SHORT).fit(X)
    before = pickle.dumps(est)
    proba = est.predict_proba(X)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_run, "initialise_mixture", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X)
    assert pickle.dumps(est) == before
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    fresh = VaDEClustering(n_clusters=5, **SMALL_SHORT)
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
