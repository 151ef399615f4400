"""Issue 26 screen: choosing between the two UMAP partitions by their separation.

The ``"umap"`` start partitions the UMAP embedding of the codes two ways, the
mixture's (``"umap-mixture"``: K components, its size rules) and the merged
over-clustering (``"umap-merge"``), and keeps the merge's only where its clusters
are clearly better separated. This screen measures, on the codes of ``.cache``
(pretrained as ``fit`` pretrains, see ``screen_n_clusters.codes_of``), both
partitions of several UMAP embeddings per data set and seed, with label-free
indices of each: the mean silhouette over rows in the embedding (``sil``, what
the start compared until 2026-12-08) and in the standardised codes
(``sil_codes``), the clusters' silhouettes in the embedding averaged over the
clusters and their minimum (``sil_clusters``, ``sil_min``: what the start
compares since; ``_init.cluster_silhouettes``), and the Davies-Bouldin
(``db``) and Calinski-Harabasz (``ch``) indices in the embedding. The truth only
scores (``acc``). One JSON record per line on stdout.

``--draws`` names the embeddings: ``0`` is the one ``screen_merges.py`` caches
(``.cache/<name>-<seed>-embedding<K>.npy``, UMAP seeded with the data seed, the
partitions drawn from ``RandomState(seed)``); ``r > 0`` a fresh UMAP seeded with
``1000 + r``, the partitions drawn from ``RandomState(r)``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/screen_separation.py \\
        --datasets digits usps-lt10 --seeds 0 1 --draws 0 1 2 3 > separation.jsonl
    python benchmarks/screen_separation.py --summary separation.jsonl \\
        --fits results/init_params_fits.json

``--summary`` reads such records (and, with ``--fits``, the ``"umap"`` fits of
``bench_init_params.py``, which log both silhouettes, with the accuracy of the
``"umap-mixture"`` and ``"umap-merge"`` fits of the same data and seed) and
prints, for each margin, on how many starts the rule "the merge where its
silhouette is higher by more than the margin" keeps the merge, and how its
accuracy then compares with the mixture's.
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from screen_n_clusters import codes_of
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from sklearn_vade import _init
from sklearn_vade._metrics import cluster_accuracy

MARGINS = (0.0, 0.02, 0.03, 0.05, 0.08)


def embedding_of(name, seed, K, codes, draw, cache):
    """The UMAP embedding of draw ``draw`` and the seed of its partitions."""
    if draw:
        return _init.umap_embedding(codes, K, 1000 + draw), draw
    saved = cache / f"{name}-{seed}-embedding{K}.npy"
    if not saved.exists():
        np.save(saved, _init.umap_embedding(codes, K, seed))
    return np.load(saved), seed


def row_silhouette(points, labels, n_rows=_init.SILHOUETTE_ROWS):
    """The mean silhouette over rows (over a fixed sample of ``n_rows`` beyond)."""
    if len(points) > n_rows:
        rows = np.random.RandomState(0).choice(len(points), n_rows, replace=False)
        points, labels = points[rows], labels[rows]
    if len(np.unique(labels)) < 2:
        return -1.0
    return float(silhouette_score(points, labels))


def indices(embedding, codes, labels):
    """Label-free indices of a partition."""
    spread = codes.std(axis=0)
    scaled = (codes - codes.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    clusters = _init.cluster_silhouettes(embedding, labels)
    return {"sil": round(row_silhouette(embedding, labels), 4),
            "sil_codes": round(row_silhouette(scaled, labels), 4),
            "sil_clusters": round(float(clusters.mean()), 4),
            "sil_min": round(float(clusters.min()), 4),
            "db": round(float(davies_bouldin_score(embedding, labels)), 4),
            "ch": round(float(calinski_harabasz_score(embedding, labels)), 1)}


def screen(args):
    for name in args.datasets:
        for seed in args.seeds:
            codes, y, K = codes_of(name, seed, args.cache)
            codes = np.asarray(codes, dtype=np.float64)
            for draw in args.draws:
                begin = time.perf_counter()
                embedding, rng_seed = embedding_of(name, seed, K, codes, draw,
                                                   args.cache)
                found = {
                    "mixture": _init.sized_mixture_labels(
                        embedding, codes, K, np.random.RandomState(rng_seed)),
                    "merge": _init.merged_partition_labels(
                        embedding, K, np.random.RandomState(rng_seed))}
                record = {"dataset": name, "seed": seed, "draw": draw}
                for method, labels in found.items():
                    record[method] = {"acc": round(float(cluster_accuracy(y, labels)),
                                                   4),
                                      **indices(embedding, codes, labels)}
                record["seconds"] = round(time.perf_counter() - begin, 1)
                print(json.dumps(record), flush=True)


def starts(paths, fits):
    """(data, tag, mixture ACC, merge ACC, silhouette margin) of every start."""
    rows = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            rows.append((r["dataset"], f"seed {r['seed']} draw {r['draw']}",
                         r["mixture"]["acc"], r["merge"]["acc"],
                         r["merge"]["sil"] - r["mixture"]["sil"]))
    if fits:
        records = json.loads(Path(fits).read_text())["records"]
        acc = {(r["dataset"], r["seed"], r["init_params"]): r["acc"]
               for r in records}
        for r in records:
            pair = (acc.get((r["dataset"], r["seed"], "umap-mixture")),
                    acc.get((r["dataset"], r["seed"], "umap-merge")))
            if r["init_params"] == "umap" and r.get("silhouettes") and all(pair):
                merged, mixture = r["silhouettes"]
                rows.append((r["dataset"], f"fit seed {r['seed']}", *pair,
                             merged - mixture))
    return rows


def summary(args):
    rows = starts(args.summary, args.fits)
    print(f"{len(rows)} starts of {len({r[0] for r in rows})} data sets")
    for margin in MARGINS:
        kept = [merge - mixture for _, _, mixture, merge, d in rows if d > margin]
        missed = sum(merge > mixture + 0.01
                     for _, _, mixture, merge, d in rows if d <= margin)
        print(f"margin {margin:.2f}: the merge kept on {len(kept)}, better than the "
              f"mixture by more than 0.01 on {sum(g > 0.01 for g in kept)}, worse "
              f"by more than 0.01 on {sum(g < -0.01 for g in kept)} (the least "
              f"gain {min(kept, default=0):+.3f}); the merge better but not kept "
              f"on {missed}")
    for row in sorted(rows):
        print("{} {}: mixture {:.3f}, merge {:.3f}, silhouette margin {:+.4f}"
              .format(*row))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--draws", nargs="+", type=int, default=[0])
    parser.add_argument("--cache", type=Path,
                        default=Path(__file__).resolve().parent / ".cache")
    parser.add_argument("--summary", nargs="+", type=Path, default=None,
                        help="JSON-lines files of this screen: print the margins")
    parser.add_argument("--fits", type=Path, default=None,
                        help="results/init_params_fits.json, with --summary")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.summary:
        summary(args)
    else:
        args.cache.mkdir(parents=True, exist_ok=True)
        screen(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
