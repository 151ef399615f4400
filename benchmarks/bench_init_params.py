"""The starts of ``init_params`` side by side, in full fits of ``VaDEClustering``.

For each data set and seed, ``VaDEClustering(n_clusters=K, random_state=seed,
init_params=...)`` is fitted once per start, in the order given, on one
pretraining: ``memory`` is ``--memory`` when given (a joblib cache kept between
runs) or a new temporary folder, so that the second fit loads the first one's
pretraining. The start's partition is recorded as ``fit`` computes it (a wrapper
around ``_init.initial_partition`` keeps its result; nothing else changes).
Records: ACC/NMI/ARI of the final labels and ACC of the start (labels only
score), the start that ran (``method``: a ``"umap"`` start on fewer than 200 rows
runs ``"gmm"``), the final bound, the start's and the fit's seconds, the smallest
cluster of the final labels and the final partition's agreement with the start.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_init_params.py \\
        --datasets usps-lt10 digits --seeds 0 1 2 --starts umap umap-merge

Results go to ``results/init_params_fits.json`` and ``results/init_params_fits.md``
(``--out`` names others; ``--merge`` adds the records of earlier JSON files, e.g.
of other data sets; a fit of this run replaces a merged record of the same data
set, seed and start). Each record also counts the epochs of the anchored warm-up.
"""

import argparse
import json
import statistics
import tempfile
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
from bench_ablation import load

from sklearn_vade import VaDEClustering, _init
from sklearn_vade._metrics import cluster_accuracy

STARTS = ("umap", "umap-mixture", "umap-merge", "gmm")


def fit_once(X, y, K, seed, init_params, memory):
    """One fit; returns its record."""
    starts, separation = [], []
    compute, silhouettes = _init.initial_partition, _init.cluster_silhouettes

    def recording(codes, n_clusters, method, rng):
        starts.append(compute(codes, n_clusters, method, rng))
        return starts[-1]

    def recording_silhouettes(points, labels):
        values = silhouettes(points, labels)
        separation.append([round(float(values.mean()), 4),
                           round(float(values.min()), 4)])
        return values

    _init.initial_partition = recording
    _init.cluster_silhouettes = recording_silhouettes
    try:
        begin = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = VaDEClustering(n_clusters=K, random_state=seed,
                                   init_params=init_params, memory=memory).fit(X)
        seconds = time.perf_counter() - begin
    finally:
        _init.initial_partition, _init.cluster_silhouettes = compute, silhouettes
    start, history = starts[-1], model.history_
    return {"seed": seed, "init_params": init_params, "method": start.method,
            **score(y, model.labels_),
            "start_acc": float(cluster_accuracy(y, start.labels)),
            "lower_bound": model.lower_bound_,
            "start_s": model.timings_["initialisation"], "fit_s": seconds,
            # the pretraining's seconds within fit_s: about 0 where fit loaded it
            # from ``memory``
            "pretrain_s": model.timings_["pretraining"],
            "smallest": int(np.bincount(model.labels_, minlength=K).min()),
            "n_empty": int(K - np.unique(model.labels_).size),
            "final_agreement": history[-1]["init_agreement"] if history else None,
            "warmup_epochs": sum(h["warmup"] for h in history),
            # the "umap" start's clusters' silhouettes in the embedding, their
            # mean over clusters and minimum: the merge's, then the mixture's
            # where the merge's minimum is positive (records before 2026-12-08
            # have "silhouettes": the means over rows, the merge's and the
            # mixture's)
            "cluster_silhouettes": separation}


def carry_pretraining(record, replaced):
    """Where ``record``'s fit loaded its pretraining (``memory``) and a record it
    replaces pretrained (the same data, seed and network: the same work), keep
    that pretraining's seconds as ``pretrain_s_same_seed``, so that the
    summary can give the whole fit's time."""
    if record["pretrain_s"] >= 1.0:
        return
    for earlier in replaced:
        seconds = earlier.get("pretrain_s_same_seed", earlier.get("pretrain_s", 0.0))
        if seconds >= 1.0:
            record["pretrain_s_same_seed"] = seconds
            return


def medians(records):
    rows = []
    keys = sorted({(r["dataset"], r["init_params"]) for r in records},
                  key=lambda key: (key[0], STARTS.index(key[1])))
    for dataset, init_params in keys:
        mine = [r for r in records if (r["dataset"], r["init_params"]) ==
                (dataset, init_params)]
        row = {"dataset": dataset, "init_params": init_params, "seeds": len(mine)}
        for key in ("acc", "nmi", "start_acc", "lower_bound", "start_s", "fit_s"):
            row[key] = statistics.median(r[key] for r in mine)
        row["min_acc"] = min(r["acc"] for r in mine)
        rows.append(row)
    return rows


def markdown(env, records):
    columns = [("data", "dataset", None), ("init_params", "init_params", None),
               ("seeds", "seeds", "{:d}"), ("ACC", "acc", "{:.4f}"),
               ("min ACC", "min_acc", "{:.4f}"),
               ("NMI", "nmi", "{:.4f}"), ("start ACC", "start_acc", "{:.4f}"),
               ("ELBO", "lower_bound", "{:.3f}"), ("start s", "start_s", "{:.1f}"),
               ("fit s", "fit_s", "{:.1f}")]
    per_seed = [("data", "dataset", None), ("seed", "seed", "{:d}"),
                ("init_params", "init_params", None), ("ran", "method", None),
                ("ACC", "acc", "{:.4f}"), ("NMI", "nmi", "{:.4f}"),
                ("start ACC", "start_acc", "{:.4f}"),
                ("ELBO", "lower_bound", "{:.3f}"),
                ("smallest cluster", "smallest", "{:d}"),
                ("agreement with the start", "final_agreement", "{:.3f}"),
                ("warm-up epochs", "warmup_epochs", "{}"),
                ("start s", "start_s", "{:.1f}"), ("fit s", "fit_s", "{:.1f}"),
                ("silhouettes (merge, mixture)", "silhouettes", None),
                ("cluster silhouettes: mean, min (merge, mixture)",
                 "cluster_silhouettes", None)]
    lines = ["# The starts of init_params in full fits", "",
             environment_line(env), "",
             "Medians over the seeds (a fit that loaded its pretraining has the "
             "seconds of the rest of fit only).", "",
             *markdown_table(medians(records), columns), "", "Per seed:", "",
             *markdown_table(records, per_seed)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["usps-lt10", "digits"],
                        help="none: only the tables of the --merge records")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--starts", nargs="+",
                        default=["umap", "umap-mixture", "umap-merge"],
                        choices=STARTS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", type=Path, default=None,
                        help="joblib cache of the pretrainings, kept between runs")
    parser.add_argument("--merge", type=Path, nargs="+", default=[],
                        help="earlier results/init_params_fits.json files to include")
    parser.add_argument("--out", default="init_params_fits",
                        help="results/OUT.json and results/OUT.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = environment(args.threads)
    print(environment_line(env), flush=True)
    records = [record for path in args.merge
               for record in json.loads(path.read_text())["records"]]
    for name in args.datasets:
        X, y, K = load(name)
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as scratch:
                memory = str(args.memory or scratch)
                for init_params in args.starts:
                    record = {"dataset": name,
                              **fit_once(X, y, K, seed, init_params, memory)}
                    key = name, seed, init_params
                    replaced = [r for r in records
                                if (r["dataset"], r["seed"], r["init_params"]) == key]
                    carry_pretraining(record, replaced)
                    records = [r for r in records if r not in replaced] + [record]
                    print({k: round(v, 4) if isinstance(v, float) else v
                           for k, v in record.items()}, flush=True)
            write(env, records, args.out)
    write(env, records, args.out)


def write(env, records, out="init_params_fits"):
    write_json_atomic(RESULTS_DIR / f"{out}.json",
                      {"environment": env, "records": records})
    write_atomic(RESULTS_DIR / f"{out}.md", markdown(env, records))


if __name__ == "__main__":
    main()
