"""k-means and a diagonal Gaussian mixture on exactly the data of bench_ablation.py.

The baselines that the summary (``summary.py``) and the README's "Should I use
VaDE?" table set VaDE's figures against: for each data set and seed,
``KMeans(n_clusters=K, n_init=10, random_state=seed)`` and
``GaussianMixture(n_components=K, covariance_type="diag", random_state=seed)``, on
the input that ``bench_ablation.py`` gives VaDE (the digits / 16, USPS and MNIST
pixels / 255, the others as in ``bench_datasets.py``; dense for the mixture).
Labels only score. Results: ``results/baselines.json`` (one record per data set,
seed and method, replaced when rerun).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_baselines.py \
        --datasets digits usps pendigits wisdm 20news mnist --seeds 0 1 2 3 4
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

METHODS = {
    "KMeans": lambda K, seed: KMeans(n_clusters=K, n_init=10, random_state=seed),
    "GMM-diag": lambda K, seed: GaussianMixture(n_components=K, covariance_type="diag",
                                                random_state=seed),
}


def run(name, seed, method, data):
    X, y, K = data
    if method != "KMeans" and sp.issparse(X):
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
                key = (name, seed, method)
                records = [r for r in records
                           if (r["dataset"], r["seed"], r["method"]) != key]
                records.append(record)
                print(json.dumps(record), flush=True)
                write_json_atomic(path, {"environment": env, "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
