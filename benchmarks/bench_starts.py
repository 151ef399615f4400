"""Compare label-free starts on the ablation's cached pretrained codes.

For each data set and seed, the codes (latent means) of the autoencoder that
``bench_ablation.py`` cached are clustered ten times by each of three methods:
the UMAP embedding of the standardised codes (as ``init_params="umap"`` computes
it) with a full-covariance ``GaussianMixture`` per restart, a diagonal
``GaussianMixture`` on the codes, and k-means on the codes (one initialisation per
restart, restart r seeded r). Recorded per method: the mean accuracy of its
restarts, the accuracy of its most consensual restart (highest mean adjusted Rand
index with the other nine), and its stability, the mean ARI between its restarts.
Stability is label-free: the question is whether it tells, without labels, which
start a fit should trust. Labels only score. The pretrained autoencoder must be in
the cache (run ``bench_ablation.py`` first: it pretrains when the cache lacks it).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_starts.py --datasets wisdm usps \
        --seeds 3 4

Results go to ``results/starts.json`` and ``results/starts.md``.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, environment, environment_line, score
from bench_ablation import load, pretrained
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

import sklearn_vade
from sklearn_vade._engine import encode_means
from sklearn_vade._init import REG_COVAR, umap_embedding

N_RESTARTS = 10
METHODS = ("umap", "gmm", "kmeans")


def restarts(method, codes, embedding, n_clusters):
    """N_RESTARTS partitions of the codes by ``method``."""
    runs = []
    for r in range(N_RESTARTS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a restart's ConvergenceWarning
            if method == "umap":
                model = GaussianMixture(n_clusters, covariance_type="full",
                                        reg_covar=1e-6 * max(1.0, embedding.var()),
                                        random_state=r)
                runs.append(model.fit(embedding).predict(embedding))
            elif method == "gmm":
                model = GaussianMixture(n_clusters, covariance_type="diag",
                                        reg_covar=REG_COVAR, random_state=r)
                runs.append(model.fit(codes).predict(codes))
            else:
                runs.append(KMeans(n_clusters, n_init=1, random_state=r)
                            .fit_predict(codes))
    return runs


def agreement_matrix(runs):
    n = len(runs)
    matrix = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = adjusted_rand_score(runs[i], runs[j])
    return matrix


def run(name, seed, cache_dir):
    X, y, K = load(name)
    cache_file = cache_dir / f"{name}-{seed}.pt"
    if not cache_file.exists():
        raise SystemExit(f"{cache_file} is missing: run bench_ablation.py on "
                         f"{name} seed {seed} first")
    estimator = sklearn_vade.VaDEClustering(n_clusters=K, random_state=seed)
    estimator._validate_params()
    prep = estimator._prepare(X, continuing=False)
    net = pretrained(estimator, prep, cache_file)[0]
    codes = encode_means(net, prep.X_train, prep.config.batch_size).double().numpy()
    start = time.perf_counter()
    embedding = umap_embedding(codes, K, seed)
    record = {"dataset": name, "seed": seed}
    for method in METHODS:
        runs = restarts(method, codes, embedding, K)
        within = agreement_matrix(runs).sum(axis=1) / (N_RESTARTS - 1)
        accuracies = [score(y, labels)["acc"] for labels in runs]
        record[method] = {
            "acc_mean": float(np.mean(accuracies)),
            "acc_consensual": accuracies[int(np.argmax(within))],
            "stability": float(within.mean()),
        }
    record["seconds"] = time.perf_counter() - start
    return record


def markdown(env, records):
    lines = ["# Label-free starts on the cached codes", "",
             "Per method: mean accuracy of 10 restarts / accuracy of the most "
             "consensual restart / stability (mean ARI between restarts, "
             "label-free). Labels only score.", "", environment_line(env), "",
             "| dataset | seed | " + " | ".join(METHODS) + " |",
             "|---|---:|" + "---|" * len(METHODS)]
    for r in records:
        cells = [f"{r[m]['acc_mean']:.3f} / {r[m]['acc_consensual']:.3f} / "
                 f"{r[m]['stability']:.3f}" for m in METHODS]
        lines.append(f"| {r['dataset']} | {r['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["wisdm", "usps"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[3, 4])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path,
                        default=Path(__file__).resolve().parent / ".cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = RESULTS_DIR / "starts.json"
    records = json.loads(path.read_text())["records"] if path.exists() else []
    env = environment(args.threads)
    for name in args.datasets:
        for seed in args.seeds:
            record = run(name, seed, args.cache)
            records = [r for r in records
                       if (r["dataset"], r["seed"]) != (name, seed)] + [record]
            print(json.dumps(record), flush=True)
            path.write_text(json.dumps({"environment": env, "records": records},
                                       indent=1))
            (RESULTS_DIR / "starts.md").write_text(markdown(env, records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
