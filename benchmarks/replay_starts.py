"""Issue 26: both partitions of a fit's own "umap" start, scored side by side.

``VaDEClustering(n_clusters=K, random_state=seed, memory=MEMORY).fit(X)`` runs
with its defaults up to the start, where the embedding's two partitions, the
mixture's and the merge's, are computed as ``_init.embedding_partition``
computes them (the same random draws), scored, and the fit is stopped. With the
joblib folder of earlier fits as ``--memory`` (``bench_init_params.py
--memory``), the pretraining is loaded and the starts are those fits' own; each
replay then costs the start alone (seconds to a minute). Printed per data set
and seed (one JSON record per line): for each partition the ACC (labels only
score), the mean silhouette over rows and over clusters in the embedding and
its least cluster's silhouette (``_init.cluster_silhouettes``), and which one
the default's rule keeps.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/replay_starts.py \\
        --memory CACHE --datasets digits wisdm --seeds 0 1 2 3 4
"""

import argparse
import json
import time
import warnings

import numpy as np
import torch
from bench_ablation import load
from sklearn.metrics import silhouette_score

from sklearn_vade import VaDEClustering, _init
from sklearn_vade._metrics import cluster_accuracy


class _Stop(Exception):
    """Raised once the start's partitions are scored."""


def scores(embedding, labels, y):
    clusters = _init.cluster_silhouettes(embedding, labels)
    rows = _init.SILHOUETTE_ROWS
    if len(labels) > rows:  # the same fixed sample as cluster_silhouettes'
        sample = np.random.RandomState(0).choice(len(labels), rows, replace=False)
    else:
        sample = np.arange(len(labels))
    return {"acc": round(float(cluster_accuracy(y, labels)), 4),
            "sil_rows": round(float(silhouette_score(embedding[sample],
                                                     labels[sample])), 4),
            "sil_clusters": round(float(clusters.mean()), 4),
            "sil_min": round(float(clusters.min()), 4),
            "sizes": sorted(np.bincount(labels).tolist(), reverse=True)}


def replay(X, y, K, seed, memory):
    record = {"seed": seed}

    def partition(embedding, codes, n_clusters, rng, method="umap"):
        merge_rng = np.random.RandomState()
        merge_rng.set_state(rng.get_state())
        sized = _init.sized_mixture_labels(embedding, codes, n_clusters, rng)
        merged = _init.merged_partition_labels(embedding, n_clusters, merge_rng)
        record["mixture"] = scores(embedding, sized, y)
        record["merge"] = scores(embedding, merged, y)
        record["kept"] = ("merge" if _init.merge_is_better_separated(
            embedding, merged, sized) else "mixture")
        raise _Stop

    original = _init.embedding_partition
    _init.embedding_partition = partition
    begin = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            VaDEClustering(n_clusters=K, random_state=seed, memory=memory).fit(X)
    except _Stop:
        pass
    finally:
        _init.embedding_partition = original
    record["seconds"] = round(time.perf_counter() - begin, 1)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", required=True,
                        help="the joblib folder of the fits whose starts to replay")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.datasets:
        X, y, K = load(name)
        for seed in args.seeds:
            print(json.dumps({"dataset": name, **replay(X, y, K, seed, args.memory)}),
                  flush=True)


if __name__ == "__main__":
    main()
