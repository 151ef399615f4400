"""The float32 inference path (``inference_precision="float32"``) against the
float64 default: same model, faster arithmetic, results within float32's reach."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sklearn_vade import VaDEClustering

from .conftest import SMALL_LONG

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def fitted(small_digits):
    X, _ = small_digits
    return VaDEClustering(n_clusters=10, **SMALL_LONG).fit(X)


@pytest.fixture
def both(fitted):
    """The fitted model (float64) and a copy of it set to float32 (a clone would
    drop the fit)."""
    single = VaDEClustering.__new__(VaDEClustering)
    single.__setstate__(fitted.__getstate__())
    single.set_params(inference_precision="float32")
    return fitted, single


def test_float32_outputs_are_float32_and_close_to_float64(both, small_digits):
    """Every inference method returns float32 arrays within float32's reach of
    the float64 results; labels agree wherever float64's top two clusters are not
    within 1e-4 of each other."""
    double, single = both
    X, _ = small_digits
    proba64, proba32 = double.predict_proba(X), single.predict_proba(X)
    assert proba32.dtype == np.float32 and proba64.dtype == np.float64
    np.testing.assert_allclose(proba32, proba64, atol=1e-4)
    np.testing.assert_allclose(proba32.sum(axis=1), 1.0, rtol=1e-5)
    top2 = np.sort(proba64, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert clear.mean() > 0.9  # the comparison below is not vacuous
    np.testing.assert_array_equal(single.predict(X)[clear], double.predict(X)[clear])
    z32, z64 = single.transform(X), double.transform(X)
    assert z32.dtype == np.float32
    np.testing.assert_allclose(z32, z64, rtol=1e-4, atol=1e-4)
    elbo32, elbo64 = single.score_samples(X), double.score_samples(X)
    assert elbo32.dtype == np.float32
    np.testing.assert_allclose(elbo32, elbo64, rtol=1e-4)
    assert abs(single.score(X) - double.score(X)) < 1e-4 * abs(double.score(X))
    decoded32 = single.inverse_transform(z64)
    assert decoded32.dtype == np.float32
    np.testing.assert_allclose(decoded32, double.inverse_transform(z64), atol=1e-5)


def test_sample_follows_the_inference_precision(both):
    """sample draws the same components and codes in either precision; only the
    decoding's arithmetic differs."""
    double, single = both
    X64, y64 = double.sample(50)
    X32, y32 = single.sample(50)
    assert X32.dtype == np.float32 and X64.dtype == np.float64
    np.testing.assert_array_equal(y32, y64)
    np.testing.assert_allclose(X32, X64, atol=1e-5)


def test_set_params_switches_precision_without_refitting(fitted, small_digits):
    """The precision can change after fit, both ways; back in float64 the results
    are bit for bit those of before, and the fitted state is untouched."""
    X, _ = small_digits
    est = VaDEClustering.__new__(VaDEClustering)
    est.__setstate__(fitted.__getstate__())
    before = est.predict_proba(X)
    state = {k: v.copy() for k, v in est._state.items()}
    assert est.set_params(inference_precision="float32").predict_proba(X).dtype == \
        np.float32
    after = est.set_params(inference_precision="float64").predict_proba(X)
    np.testing.assert_array_equal(after, before)
    for key, value in state.items():
        np.testing.assert_array_equal(est._state[key], value)


def test_fit_results_do_not_depend_on_the_inference_precision(small_digits):
    """labels_, lower_bound_ and the fitted arrays come from float64 whatever
    inference_precision says: only later inference changes."""
    X, _ = small_digits
    params = dict(SMALL_LONG, pretrain_epochs=5, max_epochs=3)
    double = VaDEClustering(n_clusters=4, **params).fit(X)
    single = VaDEClustering(n_clusters=4, inference_precision="float32",
                            **params).fit(X)
    np.testing.assert_array_equal(single.labels_, double.labels_)
    assert single.lower_bound_ == double.lower_bound_
    np.testing.assert_array_equal(single.means_, double.means_)
    assert clone(single).get_params()["inference_precision"] == "float32"


def test_float32_inference_on_dask_arrays_is_float32(both, small_digits):
    da = pytest.importorskip("dask.array")
    _, single = both
    X, _ = small_digits
    lazy = single.predict_proba(da.from_array(X, chunks=(100, X.shape[1])))
    assert lazy.dtype == np.float32
    np.testing.assert_array_equal(lazy.compute(), single.predict_proba(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_float32_inference_runs_on_the_gpu(both, small_digits):
    """With a GPU and device "auto", the float32 path infers there, and agrees
    with the CPU's float64 results."""
    double, single = both
    X, _ = small_digits
    proba = single.predict_proba(X)
    assert single._network().prior.mu_c.device.type == "cuda"
    np.testing.assert_allclose(proba, double.predict_proba(X), atol=1e-4)
