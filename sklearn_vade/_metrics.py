"""Clustering accuracy with the Hungarian matching of clusters to classes."""

from scipy.optimize import linear_sum_assignment
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils.validation import check_consistent_length, column_or_1d


def cluster_accuracy(labels_true, labels_pred):
    """Best accuracy over one-to-one matchings of predicted clusters to true classes.

    The matching maximises the number of samples whose cluster is matched to their
    class (the Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`).
    Clusters left unmatched (more clusters than classes) count as errors.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground-truth classes.
    labels_pred : array-like of shape (n_samples,)
        Cluster labels to evaluate.

    Returns
    -------
    accuracy : float
        In [0, 1]; 1 when the clustering equals the classes up to renaming.

    Examples
    --------
    >>> from sklearn_vade import cluster_accuracy
    >>> cluster_accuracy([0, 0, 1, 1, 2], [1, 1, 0, 0, 0])
    0.8
    """
    labels_true = column_or_1d(labels_true)
    labels_pred = column_or_1d(labels_pred)
    check_consistent_length(labels_true, labels_pred)
    if labels_true.size == 0:
        raise ValueError(
            "cluster_accuracy needs at least one sample; got empty arrays."
        )
    counts = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / labels_true.size)
