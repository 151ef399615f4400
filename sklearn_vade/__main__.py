"""The main job: VaDE and k-means on scikit-learn's digits, side by side.

Run ``python -m sklearn_vade`` to fit ``VaDEClustering(n_clusters=10)`` with its
defaults and ``KMeans(n_clusters=10, n_init=10)`` on ``load_digits().data / 16``
and print clustering accuracy, NMI, ARI and fit time. Labels are used only to score.
"""

import argparse
import os
import time

import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from . import VaDEClustering, cluster_accuracy


def _scores(name, model, X, y):
    """Fit ``model`` on X; return one table row of scores against y."""
    start = time.perf_counter()
    labels = model.fit_predict(X)
    seconds = time.perf_counter() - start
    return (name, cluster_accuracy(y, labels), normalized_mutual_info_score(y, labels),
            adjusted_rand_score(y, labels), seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_vade", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0,
                        help="random_state of both models (default: 0)")
    parser.add_argument("--verbose", type=int, default=0, choices=[0, 1, 2],
                        help="verbosity of VaDEClustering (default: 0)")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    vade = VaDEClustering(n_clusters=10, random_state=args.seed, verbose=args.verbose)
    kmeans = KMeans(n_clusters=10, n_init=10, random_state=args.seed)
    rows = [_scores("VaDE", vade, X, y), _scores("KMeans", kmeans, X, y)]

    print(f"digits: {X.shape[0]} samples, {X.shape[1]} features, 10 classes")
    print(f"{'method':<8} {'ACC':>6} {'NMI':>6} {'ARI':>6} {'fit s':>7}")
    for name, acc, nmi, ari, seconds in rows:
        print(f"{name:<8} {acc:6.3f} {nmi:6.3f} {ari:6.3f} {seconds:7.1f}")


if __name__ == "__main__":
    main()
