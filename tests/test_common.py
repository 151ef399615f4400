"""scikit-learn's estimator checks, on the estimator as users build it."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_vade import VaDEClustering


@parametrize_with_checks([VaDEClustering()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
