"""Benchmark how well select_n_clusters recovers the number of classes.

For each data set and seed it runs ``select_n_clusters(X, candidates,
estimator=VaDEClustering(random_state=seed))`` with the defaults (one pretraining,
one fit per candidate) over the true number of classes K +- 4 (at least 2), and
records the ELBO, BIC and ICL of every candidate and the candidate each criterion
picks. The labels give only the true K and the accuracy of the picked fits; they
choose nothing.

Data sets (``../shared/data``, see its README), fed as in ``bench_datasets.py``:

- ``hepta``: FCPS Hepta (212 x 3, 7 clusters), standardised (Gaussian likelihood);
- ``digits``: scikit-learn's digits, ``X / 16`` (Bernoulli);
- ``wisdm`` and ``pendigits``: standardised features (Gaussian);
- ``20news``: tf-idf as is, sparse.

Results go to ``benchmarks/results/select_k.{json,md}``, rewritten after every
data set and seed.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_select_k.py --datasets hepta digits
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import (
    RESULTS_DIR,
    environment,
    environment_line,
    markdown_table,
    score,
    write_atomic,
    write_json_atomic,
)
from bench_datasets import DATA_DIR
from bench_datasets import load as load_dataset

from sklearn_vade import VaDEClustering, select_n_clusters

CRITERIA = ("elbo", "bic", "icl")


def load(name, data_dir):
    """(X as a user would feed it, y, K)."""
    X, y, K, _ = load_dataset(name, data_dir)
    return X, y, K


def run_one(name, X, y, K, seed, params=None):
    candidates = list(range(max(2, K - 4), K + 5))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / empty-component warnings
        result = select_n_clusters(X, candidates,
                                   estimator=VaDEClustering(random_state=seed,
                                                            **(params or {})))
    seconds = time.perf_counter() - start
    picks = {"elbo": int(result.n_clusters[np.argmax(result.elbo)]),
             "bic": int(result.n_clusters[np.argmin(result.bic)]),
             "icl": int(result.n_clusters[np.argmin(result.icl)])}
    accuracy_at = {k: score(y, result.estimators[candidates.index(k)].labels_)["acc"]
                   for k in {*picks.values(), K}}
    return {"dataset": name, "seed": seed, "true_k": K, "candidates": candidates,
            "elbo": result.elbo.tolist(), "bic": result.bic.tolist(),
            "icl": result.icl.tolist(), "picks": picks,
            "acc_at": {str(k): v for k, v in sorted(accuracy_at.items())},
            "seconds": seconds, "pretrain_seconds": result.pretrain_seconds}


def write(records, env, out):
    write_json_atomic(out / "select_k.json", {"environment": env, "runs": records})
    rows = [{"dataset": r["dataset"], "seed": r["seed"], "true_k": r["true_k"],
             "range": f"{r['candidates'][0]}-{r['candidates'][-1]}",
             **{f"pick_{c}": r["picks"][c] for c in CRITERIA},
             "acc_true": r["acc_at"][str(r["true_k"])],
             "acc_bic": r["acc_at"][str(r["picks"]["bic"])],
             "seconds": r["seconds"]} for r in records]
    lines = ["# Choosing n_clusters with select_n_clusters", "",
             "Defaults, candidates true K +- 4; labels give only the true K and the "
             "accuracies.", environment_line(env), "",
             *markdown_table(rows, [
                 ("dataset", "dataset", None), ("seed", "seed", "{}"),
                 ("true K", "true_k", "{}"), ("candidates", "range", None),
                 ("ELBO pick", "pick_elbo", "{}"), ("BIC pick", "pick_bic", "{}"),
                 ("ICL pick", "pick_icl", "{}"),
                 ("ACC at true K", "acc_true", "{:.3f}"),
                 ("ACC at BIC pick", "acc_bic", "{:.3f}"), ("s", "seconds", "{:.0f}")]),
             "", "## ELBO per candidate (nats per sample)", ""]
    for r in records:
        lines.append(f"- {r['dataset']} seed {r['seed']}: " + ", ".join(
            f"{k}: {e:.2f}" for k, e in zip(r["candidates"], r["elbo"])))
    write_atomic(out / "select_k.md", "\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["hepta", "digits"],
                        choices=["hepta", "s1", "digits", "wisdm", "pendigits",
                                 "20news"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--vade-params", type=json.loads, default={},
                        help="JSON dict of extra VaDEClustering parameters")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = environment(args.threads, data_dir=str(args.data_dir),
                      vade_params=args.vade_params)
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in args.datasets:
        X, y, K = load(name, args.data_dir)
        for seed in args.seeds:
            record = run_one(name, X, y, K, seed, args.vade_params)
            records.append(record)
            write(records, env, args.out)
            print(f"{name} seed {seed}: true K {K}, picks {record['picks']}, "
                  f"{record['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
