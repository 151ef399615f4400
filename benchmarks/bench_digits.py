"""Benchmark VaDE against k-means and a Gaussian mixture on scikit-learn's digits.

For each seed, fits on ``load_digits().data / 16`` (1797 x 64, 10 classes):

- ``VaDEClustering(n_clusters=10, random_state=seed)`` with its defaults,
- ``KMeans(n_clusters=10, n_init=10, random_state=seed)``,
- ``GaussianMixture(n_components=10, covariance_type="diag", random_state=seed)``,

and records clustering accuracy (Hungarian matching), NMI, ARI and fit seconds
together. The labels are used only to score. Results go to
``benchmarks/results/digits.json`` and ``benchmarks/results/digits.md`` (per-seed
rows and a median row per method), rewritten after every seed.

Usage::

    python benchmarks/bench_digits.py                 # seeds 0-4, 2 torch threads
    python benchmarks/bench_digits.py --seeds 0 1 --threads 1
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

import sklearn_vade
from sklearn_vade import VaDEClustering, cluster_accuracy

METHODS = {
    "VaDE": lambda seed: VaDEClustering(n_clusters=10, random_state=seed),
    "KMeans": lambda seed: KMeans(n_clusters=10, n_init=10, random_state=seed),
    "GMM-diag": lambda seed: GaussianMixture(
        n_components=10, covariance_type="diag", random_state=seed),
}
METRICS = ("acc", "nmi", "ari", "fit_seconds")
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def run_one(method, seed, X, y):
    """Fit one method from one seed on X (unlabelled); score its labels against y."""
    model = METHODS[method](seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        labels = model.fit_predict(X)
        seconds = time.perf_counter() - start
    record = {
        "method": method,
        "seed": seed,
        "acc": cluster_accuracy(y, labels),
        "nmi": float(normalized_mutual_info_score(y, labels)),
        "ari": float(adjusted_rand_score(y, labels)),
        "fit_seconds": seconds,
        "n_clusters_found": int(np.unique(labels).size),
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
    }
    if method == "VaDE":
        record.update(n_iter=int(model.n_iter_), converged=bool(model.converged_),
                      lower_bound=float(model.lower_bound_))
    return record


def medians(records):
    """One row per method with the median of each metric over its seeds."""
    rows = []
    for method in METHODS:
        runs = [r for r in records if r["method"] == method]
        if runs:
            row = {"method": method, "seed": "median", "n_seeds": len(runs)}
            row.update({m: statistics.median(r[m] for r in runs) for m in METRICS})
            rows.append(row)
    return rows


def environment(threads):
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "date": now.isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "threads_requested": threads,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "sklearn_vade": sklearn_vade.__version__,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def markdown(env, records, summary):
    lines = [
        "# Digits benchmark",
        "",
        "`load_digits().data / 16` (1797 x 64, 10 classes); labels used only to score.",
        f"torch {env['torch']} with {env['torch_threads']} thread(s), "
        f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY'] or 'unset'}, "
        f"scikit-learn {env['scikit-learn']}, sklearn_vade {env['sklearn_vade']}, "
        f"Python {env['python']}, "
        f"{env['cpu_count']} CPUs; {env['date']}.",
        "",
        "| method | seed | ACC | NMI | ARI | fit s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    order = list(METHODS)
    by_method = sorted(records, key=lambda r: (order.index(r["method"]), r["seed"]))
    for r in [*by_method, *summary]:
        lines.append(f"| {r['method']} | {r['seed']} | {r['acc']:.4f} | {r['nmi']:.4f} "
                     f"| {r['ari']:.4f} | {r['fit_seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def write_atomic(path, text):
    """Write through a .tmp file so an interrupted run never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(out_dir, env, records):
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = medians(records)
    payload = {"environment": env, "runs": records, "medians": summary}
    write_atomic(out_dir / "digits.json", json.dumps(payload, indent=2) + "\n")
    write_atomic(out_dir / "digits.md", markdown(env, records, summary))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="random_state values to run (default: 0 1 2 3 4)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads (default: 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")

    torch.set_num_threads(args.threads)
    data = load_digits()
    X, y = data.data / 16.0, data.target
    env = environment(args.threads)
    records = []
    for seed in args.seeds:
        for method in METHODS:
            record = run_one(method, seed, X, y)
            records.append(record)
            print(f"seed {seed} {method:<9} ACC {record['acc']:.4f} "
                  f"NMI {record['nmi']:.4f} ARI {record['ari']:.4f} "
                  f"{record['fit_seconds']:.1f} s", flush=True)
        write_results(args.out, env, records)
    print(markdown(env, [], medians(records)))


if __name__ == "__main__":
    main()
