"""Issues 26 and 27 screen: over-cluster the start's embedding, then merge by overlap.

For each data set and seed, the autoencoder is pretrained as ``fit`` pretrains it
(cached by ``bench_ablation.pretrained``), its codes are embedded by UMAP as the
``"umap"`` start embeds them (``_init.umap_embedding``, K dimensions, the fit's
seed), and three label-free partitions into K clusters are compared:

- ``default``: the package's start on that embedding (the most consensual of the
  full-covariance mixtures with K components, then the size rules);
- ``ent<m>t<tau>``: a full-covariance mixture with m*K components, whose posterior
  columns are merged two at a time, always the pair whose merge lowers the
  posteriors' entropy most (Baudry et al., "Combining mixture components for
  clustering", JCGS 2010), down to K; ``tau`` tempers the posteriors first
  (``softmax(log w_j N_j(x) / tau)``) so that components whose posteriors are
  almost hard still rank by proximity.

For each partition it also records the label-free criteria that could choose
between them in code space: the classification log-likelihood of the codes under
the clusters' diagonal Gaussians (``cll``, what the start's trades compare) and
the mean log-likelihood after EM from that partition (``em_ll``), with the EM
partition's accuracy. The truth only scores. One JSON record per line.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/screen_merges.py \\
        --datasets digits usps pendigits usps-lt10 wisdm mnist-lt50 20news-lt10 \\
        --seeds 0 1
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from screen_n_clusters import codes_of
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from sklearn_vade import _init
from sklearn_vade._metrics import cluster_accuracy

MERGES = ((2, 1), (2, 3), (2, 10), (3, 1), (3, 3), (3, 10))  # (m, tau)
FLOORS = (0, 15, 30, 50)  # clusters below this many rows merge first (tau 3 only)


def tempered_posteriors(log_weighted, tau):
    """softmax(log_weighted / tau) over the components, row by row."""
    z = log_weighted / tau
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def merged_partitions(embedding, n_clusters, seed):
    """{"ent<m>t<tau>": labels} for every (m, tau) of MERGES."""
    reg = 1e-6 * max(1.0, float(embedding.var()))
    found = {}
    for m in sorted({m for m, _ in MERGES}):
        gmm = GaussianMixture(m * n_clusters, covariance_type="full", reg_covar=reg,
                              random_state=seed).fit(embedding)
        log_weighted = gmm._estimate_weighted_log_prob(embedding)
        components = log_weighted.argmax(axis=1)
        for _, tau in (mt for mt in MERGES if mt[0] == m):
            T = tempered_posteriors(log_weighted, tau)
            for floor in FLOORS if tau == 3 else (0,):
                groups = _init.entropy_merges(T, n_clusters, floor)
                labels = np.empty_like(components)
                for g, members in enumerate(groups):
                    labels[np.isin(components, members)] = g
                found[f"ent{m}t{tau}" + (f"f{floor}" if floor else "")] = labels
    return found


def default_partition(embedding, codes, n_clusters, seed):
    """The package's start on this embedding (its mixture and size rules)."""
    rng = np.random.RandomState(seed)
    labels = _init.consensus_labels(embedding, n_clusters, rng)
    labels = _init.split_instead_of_small(embedding, labels, n_clusters, rng)
    return _init.trade_if_more_likely(embedding, codes, labels, n_clusters, rng)


def criteria(codes, labels, n_clusters):
    """Code-space criteria of a partition: its classification log-likelihood and
    the log-likelihood (and partition) of a diagonal mixture after EM from it."""
    weights, means, variances = _init.cluster_moments(codes, labels, n_clusters)
    weights = np.clip(weights, 1e-6, None)
    gmm = GaussianMixture(n_clusters, covariance_type="diag", reg_covar=_init.REG_COVAR,
                          weights_init=weights / weights.sum(), means_init=means,
                          precisions_init=1 / variances, max_iter=300).fit(codes)
    return (_init.classification_log_likelihood(codes, labels, n_clusters),
            gmm.score(codes), gmm.predict(codes))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path,
                        default=Path(__file__).resolve().parent / ".cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    for name in args.datasets:
        for seed in args.seeds:
            codes, y, K = codes_of(name, seed, args.cache)
            saved = args.cache / f"{name}-{seed}-embedding{K}.npy"
            start = time.perf_counter()
            if saved.exists():
                embedding = np.load(saved)
            else:
                embedding = _init.umap_embedding(codes, K, seed)
                np.save(saved, embedding)
            seconds = time.perf_counter() - start
            partitions = {"default": default_partition(embedding, codes, K, seed),
                          **merged_partitions(embedding, K, seed)}
            kmeans = KMeans(K, n_init=10, random_state=seed).fit_predict(codes)
            for method, labels in partitions.items():
                cll, em_ll, em_labels = criteria(codes, labels, K)
                sizes = np.bincount(labels, minlength=K)
                print(json.dumps({
                    "dataset": name, "seed": seed, "K": K, "n": len(codes),
                    "embedding_s": round(seconds, 1), "method": method,
                    "acc": round(float(cluster_accuracy(y, labels)), 4),
                    "kmeans_codes_acc": round(float(cluster_accuracy(y, kmeans)), 4),
                    "largest": int(sizes.max()), "smallest": int(sizes.min()),
                    "cll": round(cll, 4), "em_ll": round(float(em_ll), 4),
                    "em_acc": round(float(cluster_accuracy(y, em_labels)), 4)}),
                    flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
