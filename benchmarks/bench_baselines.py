"""k-means, Gaussian mixtures and the one-cluster floor on bench_ablation.py's data.

The baselines that the summary (``summary.py``) and the README's "Should I use
VaDE?" table set VaDE's figures against: for each data set and seed,
``KMeans(n_clusters=K, n_init=10, random_state=seed)`` and
``GaussianMixture(n_components=K, covariance_type="diag", random_state=seed)``, on
the input that ``bench_ablation.py`` gives VaDE (the digits / 16, USPS and MNIST
pixels / 255, the others as in ``bench_datasets.py``, the long-tailed sets
included; dense for the mixture). Also ``GMM-full``, a full-covariance mixture
(``reg_covar=1e-4``), where it fits: on at most ``GMM_FULL_MAX_FEATURES`` features
(not on MNIST's 784 or the 2,000 of 20 Newsgroups), and ``one-cluster``, every
sample in one cluster: the floor a clustering must beat (its ACC is the largest
class's share). Labels only score. Results: ``results/baselines.json`` (one
record per data set, seed and method, replaced when rerun).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_baselines.py \
        --datasets digits usps pendigits wisdm 20news mnist --seeds 0 1 2 3 4
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_baselines.py --datasets \
        usps-lt10 20news-lt10 mnist-lt10 mnist-lt50 wisdm --methods KMeans \
        GMM-full one-cluster
"""

import argparse
import json
import sys
import time

import numpy as np
import scipy.sparse as sp
import torch
from _common import RESULTS_DIR, environment, score, write_json_atomic
from bench_ablation import load
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits


class OneCluster:
    """Every sample in cluster 0."""

    def fit_predict(self, X):
        return np.zeros(X.shape[0], dtype=np.intp)


METHODS = {
    "KMeans": lambda K, seed: KMeans(n_clusters=K, n_init=10, random_state=seed),
    "GMM-diag": lambda K, seed: GaussianMixture(n_components=K, covariance_type="diag",
                                                random_state=seed),
    "GMM-full": lambda K, seed: GaussianMixture(n_components=K, covariance_type="full",
                                                reg_covar=1e-4, random_state=seed),
    "one-cluster": lambda K, seed: OneCluster(),
}
# The most features on which the full-covariance mixture is fitted (K covariance
# matrices of d x d: on MNIST's 784 pixels or 20 Newsgroups' 2,000 terms it takes
# minutes to hours and is singular without heavy regularisation).
GMM_FULL_MAX_FEATURES = 256


def run(name, seed, method, data):
    X, y, K = data
    if method == "GMM-full" and X.shape[1] > GMM_FULL_MAX_FEATURES:
        return None
    if method.startswith("GMM") and sp.issparse(X):
        X = X.toarray()
    start = time.perf_counter()
    labels = METHODS[method](K, seed).fit_predict(X)
    seconds = time.perf_counter() - start
    return {"dataset": name, "seed": seed, "method": method, **score(y, labels),
            "fit_seconds": seconds, "n_empty": int(K - np.unique(labels).size)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # scikit-learn's OpenMP and BLAS pools
    path = RESULTS_DIR / "baselines.json"
    records = json.loads(path.read_text())["records"] if path.exists() else []
    env = environment(args.threads)
    for name in args.datasets:
        data = load(name)
        for seed in args.seeds:
            for method in args.methods:
                record = run(name, seed, method, data)
                if record is None:  # GMM-full on too many features
                    continue
                key = (name, seed, method)
                records = [r for r in records
                           if (r["dataset"], r["seed"], r["method"]) != key]
                records.append(record)
                print(json.dumps(record), flush=True)
                write_json_atomic(path, {"environment": env, "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
