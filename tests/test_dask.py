"""Inference on dask arrays: lazy, block by block, the numpy results."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sklearn_vade import VaDEClustering

da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def fitted(small_digits):
    X = small_digits[0]
    return VaDEClustering(n_clusters=4, hidden_layer_sizes=(16,), latent_dim=3,
                          pretrain_epochs=2, max_epochs=2, init_params="gmm",
                          random_state=0).fit(X)


@pytest.mark.parametrize("chunks", [(70, 64), (50, 16), (300, 64)])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform",
                                    "score_samples"])
def test_dask_input_gives_the_numpy_results_lazily(fitted, small_digits, method,
                                                   chunks):
    X = small_digits[0]
    lazy = getattr(fitted, method)(da.from_array(X, chunks=chunks))
    assert isinstance(lazy, da.Array)
    expected = getattr(fitted, method)(X)
    assert lazy.shape == expected.shape
    # row by row and deterministic: the same up to float64 rounding (a block of
    # other size than the numpy path's batches can round a matmul differently)
    for scheduler in ("threads", "synchronous"):
        result = lazy.compute(scheduler=scheduler)
        if method == "predict":
            np.testing.assert_array_equal(result, expected)
        else:
            np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)


def test_score_of_a_dask_array(fitted, small_digits):
    X = small_digits[0]
    assert fitted.score(da.from_array(X, chunks=100)) == pytest.approx(fitted.score(X),
                                                                       rel=1e-12)


def test_a_bad_block_is_named_when_computed(fitted, small_digits):
    X = small_digits[0].copy()
    X[100, 3] = np.nan
    lazy = fitted.predict_proba(da.from_array(X, chunks=(70, 64)))  # no error yet
    with pytest.raises(ValueError, match=r"^rows 70 to 139 of the dask array: Input X "
                       r"contains NaN"):
        lazy.compute()


def test_wrong_shape_and_unfitted_fail_at_once(fitted, small_digits):
    X = da.from_array(small_digits[0][:, :10], chunks=50)
    with pytest.raises(ValueError, match="X has 10 features, but VaDEClustering is "
                       "expecting 64 features as input."):
        fitted.transform(X)
    with pytest.raises(ValueError, match="Expected a 2-D dask array, got one of 1 "
                       "dimensions."):
        fitted.score_samples(da.zeros(5, chunks=5))
    with pytest.raises(NotFittedError):
        VaDEClustering().predict_proba(X)


def test_dask_ml_parallel_post_fit(small_digits):
    """dask-ml's ParallelPostFit wraps the estimator too (predict, transform,
    score); its predict_proba assumes a classifier (it reads ``classes_``), so
    gamma of a dask array comes from VaDEClustering.predict_proba itself."""
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = small_digits[0]
    model = wrappers.ParallelPostFit(VaDEClustering(
        n_clusters=4, hidden_layer_sizes=(16,), latent_dim=3, pretrain_epochs=2,
        max_epochs=2, init_params="gmm", random_state=0)).fit(X)
    Xd = da.from_array(X, chunks=(70, 64))
    fitted = model.estimator
    labels = model.predict(Xd)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), fitted.predict(X))
    np.testing.assert_allclose(model.transform(Xd).compute(), fitted.transform(X),
                               rtol=1e-12, atol=1e-12)
    assert model.score(Xd, None) == pytest.approx(fitted.score(X), rel=1e-12)
