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
from pathlib import Path

import torch
from _common import (
    RESULTS_DIR,
    environment,
    environment_line,
    fit_and_score,
    markdown_table,
    sort_runs,
    write_atomic,
    write_json_atomic,
)
from _common import medians as _medians
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture

from sklearn_vade import VaDEClustering

METHODS = {
    "VaDE": lambda seed: VaDEClustering(n_clusters=10, random_state=seed),
    "KMeans": lambda seed: KMeans(n_clusters=10, n_init=10, random_state=seed),
    "GMM-diag": lambda seed: GaussianMixture(
        n_components=10, covariance_type="diag", random_state=seed),
}
METRICS = ("acc", "nmi", "ari", "fit_seconds")
DEFAULT_OUT = RESULTS_DIR
COLUMNS = [("method", "method", None), ("seed", "seed", None), ("ACC", "acc", "{:.4f}"),
           ("NMI", "nmi", "{:.4f}"), ("ARI", "ari", "{:.4f}"),
           ("fit s", "fit_seconds", "{:.1f}")]


def _vade_details(model):
    return {"n_iter": int(model.n_iter_), "converged": bool(model.converged_),
            "lower_bound": float(model.lower_bound_)}


def run_one(method, seed, X, y):
    """Fit one method from one seed on X (unlabelled); score its labels against y."""
    details = _vade_details if method == "VaDE" else None
    return fit_and_score(method, METHODS[method](seed), seed, X, y, details)


def medians(records):
    """One row per method with the median of each metric over its seeds."""
    return _medians(records, METHODS, METRICS)


def markdown(env, records, summary):
    lines = [
        "# Digits benchmark",
        "",
        "`load_digits().data / 16` (1797 x 64, 10 classes); labels used only to score.",
        environment_line(env),
        "",
        *markdown_table([*sort_runs(records, METHODS), *summary], COLUMNS),
    ]
    return "\n".join(lines) + "\n"


def write_results(out_dir, env, records):
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = medians(records)
    payload = {"environment": env, "runs": records, "medians": summary}
    write_json_atomic(out_dir / "digits.json", payload)
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
