"""scikit-learn's estimator checks, on the estimator as users build it."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_vade import VaDEClustering

# scikit-learn 1.9.1's sparse checks assume that an estimator with predict_proba is a
# classifier and read ``classifier_tags.multi_class``, which is None for a clusterer,
# so they raise AttributeError before looking at our output. The sparse path is
# tested in test_robustness.py.
_SCIKIT_LEARN_DEFECT = (
    "scikit-learn 1.9.1 assumes predict_proba means a classifier and reads "
    "classifier_tags.multi_class on None"
)
EXPECTED_FAILED_CHECKS = {
    "check_estimator_sparse_array": _SCIKIT_LEARN_DEFECT,
    "check_estimator_sparse_matrix": _SCIKIT_LEARN_DEFECT,
}


@parametrize_with_checks(
    [VaDEClustering()], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
