"""VaDE (Variational Deep Embedding) clustering for scikit-learn, on PyTorch."""

from ._estimator import VaDEClustering
from ._metrics import cluster_accuracy
from ._selection import select_n_clusters
from ._version import __version__

__all__ = ["VaDEClustering", "cluster_accuracy", "select_n_clusters", "__version__"]
