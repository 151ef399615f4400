"""Issue 27 screen: is the number of clusters visible in the start's embedding?

For each data set and seed, the autoencoder is pretrained as ``fit`` pretrains it
(cached by ``bench_ablation.pretrained`` in ``--cache``), its codes are embedded by
UMAP as the start embeds them (``_init.umap_embedding``, 10 dimensions, since K is
unknown), and three label-free estimates of K are read from the embedding:

- ``bic`` / ``aic``: the number of components (2-25) of the full-covariance
  GaussianMixture with the lowest BIC / AIC;
- ``hdbscan<share>``: the clusters HDBSCAN finds with ``min_cluster_size`` that
  share of the rows;
- ``dp``: a Dirichlet-process BayesianGaussianMixture with 30 components and
  ``weight_concentration_prior=1e-3``: the components with a weight above 1%;
- ``ps<threshold>``: the largest K (2-25) whose prediction strength (Tibshirani
  and Walther, 2005) is at least the threshold: the rows (at most 4,000) are
  halved at random, each half partitioned by a full-covariance mixture with K
  components, and the mixture of one half predicts the other's; the strength is
  the smallest share, over the other half's clusters, of its pairs of rows that
  the prediction keeps together, averaged over 3 splits and both directions
  (1 where no K reaches the threshold). It asks for the most clusters that
  reproduce, not the best-fitting number.

The truth only scores. Prints one JSON record per data set and seed.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/screen_n_clusters.py \\
        --datasets digits usps usps-lt10 wisdm pendigits 20news-lt10 mnist-lt50
    OMP_WAIT_POLICY=PASSIVE python benchmarks/screen_n_clusters.py \\
        --datasets hepta s1 digits usps usps-lt10 pendigits wisdm \\
        --out benchmarks/results/n_clusters.jsonl
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from bench_ablation import load, pretrained
from sklearn.cluster import HDBSCAN
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

from sklearn_vade import VaDEClustering, _init
from sklearn_vade._engine import encode_means

EMBEDDING_DIM = 10
HDBSCAN_SHARES = (0.005, 0.01, 0.02)
PS_THRESHOLDS = (0.8, 0.9)
PS_ROWS = 4000
PS_SPLITS = 3


def codes_of(name, seed, cache):
    X, y, K = load(name)
    estimator = VaDEClustering(n_clusters=K, random_state=seed)
    estimator._validate_params()
    prep = estimator._prepare(X, continuing=False)
    net, _, _, _ = pretrained(estimator, prep, cache / f"{name}-{seed}.pt")
    codes = encode_means(net, prep.X_train, prep.config.batch_size)
    return codes.double().cpu().numpy(), y, K


def pairs_kept(labels, predicted):
    """Per cluster of ``labels`` with two rows or more: the share of its pairs of
    rows that ``predicted`` puts into one cluster."""
    shares = []
    for cluster in np.unique(labels):
        counts = np.bincount(predicted[labels == cluster])
        n = counts.sum()
        if n > 1:
            shares.append((counts * (counts - 1)).sum() / (n * (n - 1)))
    return np.array(shares)


def prediction_strength(embedding, k, seed, reg):
    """The prediction strength of K full-covariance components with ``reg_covar``
    ``reg`` (see above)."""
    rng = np.random.RandomState(seed)
    strengths = []
    for split in range(PS_SPLITS):
        rows = rng.permutation(len(embedding))[:PS_ROWS]
        halves = embedding[rows[:len(rows) // 2]], embedding[rows[len(rows) // 2:]]
        models = [GaussianMixture(k, covariance_type="full", reg_covar=reg,
                                  random_state=seed + 2 * split + i).fit(half)
                  for i, half in enumerate(halves)]
        for train, test in ((0, 1), (1, 0)):
            strengths.append(pairs_kept(models[test].predict(halves[test]),
                                        models[train].predict(halves[test])).min())
    return float(np.mean(strengths))


def estimates(embedding, seed):
    reg = 1e-6 * max(1.0, float(embedding.var()))
    bic, aic = {}, {}
    for k in range(2, 26):
        gmm = GaussianMixture(k, covariance_type="full", random_state=seed,
                              reg_covar=reg).fit(embedding)
        bic[k], aic[k] = gmm.bic(embedding), gmm.aic(embedding)
    found = {"bic": min(bic, key=bic.get), "aic": min(aic, key=aic.get)}
    for share in HDBSCAN_SHARES:
        size = max(5, int(share * len(embedding)))
        found[f"hdbscan{share}"] = int(HDBSCAN(min_cluster_size=size)
                                       .fit_predict(embedding).max() + 1)
    dp = BayesianGaussianMixture(n_components=30, weight_concentration_prior=1e-3,
                                 covariance_type="full", max_iter=500,
                                 random_state=seed, reg_covar=reg).fit(embedding)
    found["dp"] = int((dp.weights_ > 0.01).sum())
    strength = {k: prediction_strength(embedding, k, seed, reg) for k in range(2, 26)}
    for threshold in PS_THRESHOLDS:
        found[f"ps{threshold}"] = max((k for k, v in strength.items()
                                       if v >= threshold), default=1)
    found["ps"] = {k: round(v, 3) for k, v in strength.items()}
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help="also append the records to this JSON-lines file")
    parser.add_argument("--cache", type=Path,
                        default=Path(__file__).resolve().parent / ".cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    for name in args.datasets:
        for seed in args.seeds:
            codes, y, K = codes_of(name, seed, args.cache)
            start = time.perf_counter()
            embedding = _init.umap_embedding(codes, EMBEDDING_DIM, seed)
            record = {"dataset": name, "seed": seed, "K": K, "n": len(codes),
                      "embedding_s": round(time.perf_counter() - start, 1),
                      **estimates(embedding, seed)}
            print(json.dumps(record), flush=True)
            if args.out is not None:
                with args.out.open("a") as out:
                    out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
