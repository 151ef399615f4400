"""Benchmark VaDE against k-means and a Gaussian mixture beyond images.

Data sets (``../shared/data``, see its README; labels used only to score), each fed
as a user would, with only ``n_clusters`` set:

- ``20news``: 20 Newsgroups tf-idf (18,846 posts x 2,000 terms, 20 classes), as a
  scipy.sparse CSR matrix, as is (values in [0, 1]: Bernoulli likelihood);
- ``wisdm``: WISDM phone-accelerometer features (5,418 x 40, 6 activities),
  standardised with ``StandardScaler`` (Gaussian likelihood);
- ``pendigits``: UCI pen-based digits (10,992 x 16, 10 classes), standardised;
- ``digits``: scikit-learn's bundled digits, ``X / 16`` (Bernoulli);
- ``hepta`` (FCPS Hepta, 212 x 3, 7 clusters) and ``s1`` (SIPU S1, 5,000 x 2, 15
  clusters): synthetic sets of separated blobs, standardised;
- long-tailed versions of the shared sets, drawn by :func:`long_tailed` (seeded,
  the same rows on every machine): ``mnist-lt10``, ``mnist-lt50``, ``usps-lt10``
  (pixels / 255, Bernoulli) and ``20news-lt10`` (as ``20news``); the number after
  ``lt`` is the ratio of the largest class to the smallest. WISDM is long-tailed
  as it is (shares 38/30/12/10/6/5%);
- head-heavy versions, drawn by :func:`head_heavy` (seeded): ``20news-head2``,
  ``usps-head2`` and ``pendigits-head2``: 8 of the classes, two of which hold
  about 86% of the rows and six small ones 5% down to 0.7% (the shape of a
  news set kept for judging, where two topics hold about 80%).

For each data set and seed it fits ``VaDEClustering(n_clusters=K,
random_state=seed)`` with its defaults, ``KMeans(n_clusters=K, n_init=10,
random_state=seed)`` and ``GaussianMixture(n_components=K, covariance_type="diag",
random_state=seed)`` on the same input (dense for the mixture), and records ACC
(Hungarian), NMI, ARI and fit seconds. Results go to
``benchmarks/results/datasets.{json,md}`` (per-seed rows; mean, standard deviation,
min and max per method and data set), rewritten after every fit.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_datasets.py      # all, seeds 0-4
    python benchmarks/bench_datasets.py --datasets wisdm --seeds 0 1
"""

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from _common import (
    RESULTS_DIR,
    environment,
    environment_line,
    fit_and_score,
    markdown_table,
    write_atomic,
    write_json_atomic,
)
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from sklearn_vade import VaDEClustering

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
METRICS = ("acc", "nmi", "ari", "fit_seconds")
METHODS = ("VaDE", "KMeans", "GMM-diag")
# The long-tailed sets: (source, ratio of the largest class to the smallest).
LONG_TAILED = {"mnist-lt10": ("mnist", 10), "mnist-lt50": ("mnist", 50),
               "usps-lt10": ("usps", 10), "20news-lt10": ("20news", 10)}
# Seed of the draw of every long-tailed set (fixed: one data set, many fit seeds).
LONG_TAILED_SEED = 0
# The head-heavy sets: source of each.
HEAD_HEAVY = {"20news-head2": "20news", "usps-head2": "usps",
              "pendigits-head2": "pendigits"}


def long_tailed(y, ratio, seed=LONG_TAILED_SEED):
    """Sorted row indices of a long-tailed subset of a labelled set.

    The K classes, in a random order, get geometric sizes from ``n_max`` down to
    ``n_max / ratio``: class number i (from 0) in that order keeps
    ``round(n_max * ratio ** (-i / (K - 1)))`` of its rows, drawn at random without
    replacement, where ``n_max`` is the size of the smallest class (so that every
    class can supply any size). Labels only choose the rows of a benchmark set;
    they never reach a fit.
    """
    rng = np.random.RandomState(seed)
    classes, counts = np.unique(y, return_counts=True)
    order = rng.permutation(len(classes))
    n_max = counts.min()
    rows = []
    for rank, c in enumerate(classes[order]):
        size = int(round(n_max * ratio ** (-rank / (len(classes) - 1))))
        rows.append(rng.choice(np.flatnonzero(y == c), size, replace=False))
    return np.sort(np.concatenate(rows))


def head_heavy(y, n_classes=8, n_head=2, tail=(0.05, 0.007),
               seed=LONG_TAILED_SEED):
    """Sorted row indices of a head-heavy subset of a labelled set.

    ``n_classes`` classes drawn at random; the last ``n_classes - n_head`` of
    them (the tail) get geometric shares of the subset from ``tail[0]`` down to
    ``tail[1]``, and the ``n_head`` others split the rest equally. The subset is
    as large as the smallest drawn class allows for a head class. Labels only
    choose the rows of a benchmark set; they never reach a fit.
    """
    rng = np.random.RandomState(seed)
    classes = rng.choice(np.unique(y), n_classes, replace=False)
    n_tail = n_classes - n_head
    tail_shares = np.geomspace(tail[0], tail[1], n_tail)
    head_share = (1.0 - tail_shares.sum()) / n_head
    counts = np.array([np.sum(y == c) for c in classes])
    n_total = int(counts.min() / head_share)
    shares = np.concatenate([np.full(n_head, head_share), tail_shares])
    rows = [rng.choice(np.flatnonzero(y == c), int(round(n_total * share)),
                       replace=False) for c, share in zip(classes, shares)]
    return np.sort(np.concatenate(rows))


def load(name, data_dir):
    """(X as a user would feed it, y, K, description)."""
    if name in HEAD_HEAVY:
        X, y, _, how = load(HEAD_HEAVY[name], data_dir)
        rows = head_heavy(y)
        X, y = X[rows], y[rows]
        if how.startswith("StandardScaler"):  # as a user would: the subset's own
            X = StandardScaler().fit_transform(X)
        return (X, np.unique(y, return_inverse=True)[1], 8,
                f"{how}; head_heavy(y) rows (seed {LONG_TAILED_SEED})")
    if name == "usps":
        with np.load(Path(data_dir) / "usps.npz", allow_pickle=False) as data:
            X, y = data["X"], data["y"]
        return ((X / np.float32(255)).astype(np.float32), y, 10,
                "pixels / 255 (float32)")
    if name in LONG_TAILED:
        source, ratio = LONG_TAILED[name]
        if source == "20news":
            X, y, K, how = load(source, data_dir)
        else:
            with np.load(Path(data_dir) / f"{source}.npz", allow_pickle=False) as data:
                X, y = data["X"], data["y"]
            K, how = int(np.unique(y).size), "pixels / 255 (float32)"
        rows = long_tailed(y, ratio)
        X = X[rows]
        if not sp.issparse(X):
            X = (X / np.float32(255)).astype(np.float32)
        return (X, y[rows], K,
                f"{how}; long_tailed(y, {ratio}) rows (seed {LONG_TAILED_SEED})")
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y, 10, "load_digits().data / 16"
    files = {"20news": "20news_tfidf2000.npz", "wisdm": "wisdm_ar_v1.1_features.npz",
             "pendigits": "pendigits.npz", "hepta": "synth_fcps_hepta.npz",
             "s1": "synth_sipu_s1.npz"}
    with np.load(Path(data_dir) / files[name], allow_pickle=False) as data:
        X, y = data["X"], data["y"]
    K = int(np.unique(y).size)
    if name == "20news":
        return sp.csr_matrix(X), y, K, "tf-idf as is, scipy.sparse CSR float32"
    return (StandardScaler().fit_transform(X.astype(np.float64)), y, K,
            "StandardScaler().fit_transform(X)")


def make(method, K, seed):
    if method == "VaDE":
        return VaDEClustering(n_clusters=K, random_state=seed)
    if method == "KMeans":
        return KMeans(n_clusters=K, n_init=10, random_state=seed)
    return GaussianMixture(n_components=K, covariance_type="diag", random_state=seed)


def _vade_details(model):
    history = model.history_[-1] if model.history_ else {}
    return {"n_iter": int(model.n_iter_), "converged": bool(model.converged_),
            "lower_bound": float(model.lower_bound_),
            "likelihood": model.likelihood_,
            "min_weight": float(model.weights_.min()),
            "last_epoch": {k: v for k, v in history.items()
                           if isinstance(v, (int, float))}}


def summarize(records):
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        for method in METHODS:
            runs = [r for r in records
                    if r["dataset"] == dataset and r["method"] == method]
            if not runs:
                continue
            row = {"dataset": dataset, "method": method, "n_seeds": len(runs)}
            for metric in METRICS:
                values = [r[metric] for r in runs]
                row[metric] = statistics.mean(values)
                row[metric + "_std"] = (statistics.stdev(values)
                                        if len(values) > 1 else 0.0)
                row[metric + "_min"] = min(values)
                row[metric + "_max"] = max(values)
            rows.append(row)
    return rows


def markdown(env, records, summary):
    def fmt(row, metric):
        return (f"{row[metric]:.3f} ± {row[metric + '_std']:.3f} "
                f"[{row[metric + '_min']:.3f}, {row[metric + '_max']:.3f}]")

    table = [{"dataset": r["dataset"], "method": r["method"],
              "seeds": str(r["n_seeds"]), "ACC": fmt(r, "acc"),
              "NMI": fmt(r, "nmi"), "ARI": fmt(r, "ari"),
              "fit s": f"{r['fit_seconds']:.1f}"} for r in summary]
    columns = [(h, h, None) for h in ("dataset", "method", "seeds", "ACC", "NMI",
                                      "ARI", "fit s")]
    per_seed = [("dataset", "dataset", None), ("method", "method", None),
                ("seed", "seed", "{}"), ("ACC", "acc", "{:.4f}"),
                ("NMI", "nmi", "{:.4f}"), ("ARI", "ari", "{:.4f}"),
                ("fit s", "fit_seconds", "{:.1f}")]
    lines = ["# VaDE beyond images", "",
             "Mean ± standard deviation [min, max] over seeds; labels used only to "
             "score.", environment_line(env), "",
             *markdown_table(table, columns), "", "## Per seed", "",
             *markdown_table(records, per_seed)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+",
                        default=["wisdm", "pendigits", "digits", "20news"],
                        choices=["20news", "wisdm", "pendigits", "digits", "hepta",
                                 "s1", *LONG_TAILED, *HEAD_HEAVY])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--merge", type=Path, nargs="+", default=[],
                        help="datasets.json files of earlier runs whose records are "
                        "kept in the output (a later file, then this run, wins for "
                        "the same data set, method and seed); with --seeds and no "
                        "value, only merges")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = environment(args.threads, data_dir=str(args.data_dir))
    merged = {}
    for path in args.merge:
        earlier = json.loads(path.read_text())
        env.setdefault("merged_from", []).append(earlier["environment"])
        env.setdefault("inputs", {}).update(earlier["environment"].get("inputs", {}))
        for r in earlier["runs"]:
            merged[(r["dataset"], r["method"], r["seed"])] = r
    records = [r for key, r in merged.items()
               if not (key[0] in args.datasets and key[2] in args.seeds)]
    if not args.seeds:
        write_results(args.out, env, records)
    for name in args.datasets:
        X, y, K, how = load(name, args.data_dir)
        env.setdefault("inputs", {})[name] = {"shape": list(X.shape), "K": K,
                                              "as": how}
        X_dense = X.toarray().astype(np.float64) if sp.issparse(X) else X
        for seed in args.seeds:
            for method in METHODS:
                data = X_dense if method == "GMM-diag" else X
                details = _vade_details if method == "VaDE" else None
                record = fit_and_score(method, make(method, K, seed), seed, data, y,
                                       details)
                record["dataset"] = name
                records.append(record)
                print(f"{name:<9} seed {seed} {method:<8} ACC {record['acc']:.4f} "
                      f"NMI {record['nmi']:.4f} ARI {record['ari']:.4f} "
                      f"{record['fit_seconds']:.1f} s", flush=True)
                write_results(args.out, env, records)
    print(markdown(env, [], summarize(records)).split("## Per seed")[0])


def write_results(out, env, records):
    order = ["20news", "wisdm", "pendigits", "digits", *LONG_TAILED]
    records = sorted(records, key=lambda r: (order.index(r["dataset"]),
                                             METHODS.index(r["method"]), r["seed"]))
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(records)
    write_json_atomic(out / "datasets.json",
                      {"environment": env, "runs": records, "summary": summary})
    write_atomic(out / "datasets.md", markdown(env, records, summary))


if __name__ == "__main__":
    main()
