"""Persistence: the fitted state is numpy arrays, pickle and joblib round trips are
exact, skops trusts only the estimator's class, and a model fitted for CUDA loads and
predicts on a machine without CUDA."""

import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch

from sklearn_vade import VaDEClustering

from .conftest import SMALL_SHORT, assert_valid_outputs

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def fitted(small_digits):
    return VaDEClustering(n_clusters=5, **SMALL_SHORT).fit(small_digits[0])


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
    unpickles and predicts (always on CPU) where CUDA is absent. (No GPU here:
    the first half checks the property that makes it work, the second a model
    that says device="cuda" in a process where CUDA is absent.)"""
    def tensors(value, where):
        if isinstance(value, torch.Tensor):
            return [where]
        if isinstance(value, dict):
            return [t for k, v in value.items() for t in tensors(v, f"{where}[{k!r}]")]
        if isinstance(value, (list, tuple)):
            return [t for i, v in enumerate(value) for t in tensors(v, f"{where}[{i}]")]
        return []

    assert [t for name, value in vars(fitted).items()
            for t in tensors(value, name)] == []
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
    est = VaDEClustering(n_clusters=5, **dict(SMALL_SHORT, device="cuda")).fit(X)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert_valid_outputs(est, X)


@pytest.mark.parametrize("dump_load", ["pickle", "joblib"])
def test_persistence_round_trip_is_exact(fitted, small_digits, dump_load, tmp_path):
    """pickle and joblib round trips give exactly the same outputs."""
    X, _ = small_digits
    if dump_load == "pickle":
        loaded = pickle.loads(pickle.dumps(fitted))
    else:
        path = tmp_path / "model.joblib"
        joblib.dump(fitted, path)
        loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))


def test_fitted_state_holds_no_tensors(fitted):
    """Public and private fitted state is numpy and builtins, loadable anywhere."""
    pickled_state = fitted.__getstate__()
    for value in pickled_state.values():
        assert not isinstance(value, (torch.Tensor, torch.nn.Module))
    assert all(isinstance(v, np.ndarray) for v in fitted._state.values())


@pytest.mark.parametrize("fitted_model", [True, False])
def test_a_model_saved_before_memory_existed_loads(fitted, small_digits,
                                                   fitted_model):
    """A pickle from before ``memory`` and ``interrupted_`` (2026-12-02),
    ``inference_precision`` and ``init_method_`` (2026-12-07) gets their
    defaults: get_params, clone and repr work, and it predicts as it did."""
    from sklearn.base import clone

    X, _ = small_digits
    est = fitted if fitted_model else VaDEClustering(n_clusters=5, **SMALL_SHORT)
    old = est.__getstate__()
    for name in ("memory", "interrupted_", "inference_precision", "init_method_"):
        old.pop(name, None)
    # what unpickling such a model does: a bare instance, then its saved state
    loaded = VaDEClustering.__new__(VaDEClustering)
    loaded.__setstate__(old)
    assert "memory" not in old and loaded.get_params()["memory"] is None
    assert loaded.get_params()["inference_precision"] == "float64"
    assert repr(loaded) == repr(est)
    assert clone(loaded).get_params() == est.get_params()
    if fitted_model:
        assert loaded.interrupted_ is None and loaded.init_method_ is None
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    else:
        assert not hasattr(loaded, "interrupted_")
        assert not hasattr(loaded, "init_method_")
