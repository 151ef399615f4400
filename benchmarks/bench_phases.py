"""Seconds of each phase of ``VaDEClustering.fit`` (pretraining, start, anchored
warm-up, joint phase), with the defaults, for the warm-up that ends once its work
is done and, in the same run, for the warm-up of fixed length it replaced.

For each data set and seed, the fit runs once per warm-up rule, in the order
given, with ``memory`` set to a new temporary folder: the first fit pretrains and
the others load that pretraining (so that the rules are compared on one
pretraining; their pretraining seconds are the first fit's). ``fixed`` sets
``sklearn_vade._training.WARMUP_AGREEMENT`` to None: the warm-up runs its whole
budget, as before 2026-12-07; ``agreement`` is the default (the warm-up ends
once gamma agrees with the start and the bound has settled). Records:
ACC/NMI/ARI (labels only score), the final bound (``lower_bound_``), the
seconds of each phase (``timings_``; the joint phase is training minus warm-up),
the fit's wall-clock seconds, the warm-up's epochs, the epochs in all and the
final partition's agreement with the start.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_phases.py --datasets digits \\
        20news-lt10 --seeds 0 1 2 3 4

Results go to ``results/phases.json`` and ``results/phases.md``.
"""

import argparse
import statistics
import tempfile
import time
import warnings

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

from sklearn_vade import VaDEClustering, _training

RULES = {"fixed": None, "agreement": _training.WARMUP_AGREEMENT}
PHASES = ("pretraining", "start", "warmup", "joint")


def fit_once(X, y, K, seed, rule, memory):
    _training.WARMUP_AGREEMENT = RULES[rule]
    try:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = VaDEClustering(n_clusters=K, random_state=seed,
                                   memory=memory).fit(X)
        seconds = time.perf_counter() - start
    finally:
        _training.WARMUP_AGREEMENT = RULES["agreement"]
    timings, history = model.timings_, model.history_
    return {"seed": seed, "rule": rule, **score(y, model.labels_),
            "lower_bound": model.lower_bound_,
            "pretraining": timings["pretraining"],
            "start": timings["initialisation"], "warmup": timings["warmup"],
            "joint": timings["training"] - timings["warmup"],
            "evaluation": timings["evaluation"], "fit": seconds,
            "warmup_epochs": sum(record["warmup"] for record in history),
            "epochs": len(history),
            "final_agreement": history[-1]["init_agreement"] if history else None}


def medians(records):
    rows = []
    keys = sorted({(r["dataset"], r["rule"]) for r in records},
                  key=lambda key: (key[0], list(RULES).index(key[1])))
    for dataset, rule in keys:
        mine = [r for r in records if (r["dataset"], r["rule"]) == (dataset, rule)]
        row = {"dataset": dataset, "rule": rule, "seeds": len(mine)}
        for key in ("acc", "lower_bound", *PHASES, "warmup_epochs", "epochs"):
            row[key] = statistics.median(r[key] for r in mine)
        row["fit"] = statistics.median(
            r["fit"] + (r["pretraining_first"] if r["loaded"] else 0.0) for r in mine)
        rows.append(row)
    return rows


def markdown(env, records):
    columns = [("data", "dataset", None), ("warm-up", "rule", None),
               ("seeds", "seeds", "{:d}"), ("ACC", "acc", "{:.4f}"),
               ("ELBO", "lower_bound", "{:.3f}"),
               ("pretraining s", "pretraining", "{:.1f}"),
               ("start s", "start", "{:.1f}"), ("warm-up s", "warmup", "{:.1f}"),
               ("joint s", "joint", "{:.1f}"), ("fit s", "fit", "{:.1f}"),
               ("warm-up epochs", "warmup_epochs", "{:.0f}"),
               ("epochs", "epochs", "{:.0f}")]
    per_seed = [("data", "dataset", None), ("seed", "seed", "{:d}"),
                ("warm-up", "rule", None), ("ACC", "acc", "{:.4f}"),
                ("ELBO", "lower_bound", "{:.3f}"),
                ("start s", "start", "{:.1f}"), ("warm-up s", "warmup", "{:.1f}"),
                ("joint s", "joint", "{:.1f}"),
                ("warm-up epochs", "warmup_epochs", "{:d}"),
                ("epochs", "epochs", "{:d}"),
                ("agreement with the start", "final_agreement", "{:.3f}")]
    lines = ["# Seconds per phase of fit", "", environment_line(env), "",
             "Medians over the seeds; a fit that loaded its pretraining counts the "
             "first fit's pretraining seconds in its fit seconds.", "",
             *markdown_table(medians(records), columns), "", "Per seed:", "",
             *markdown_table(records, per_seed)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = environment(args.threads)
    print(environment_line(env), flush=True)
    records = []
    for name in args.datasets:
        X, y, K = load(name)
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as memory:
                first = None
                for rule in args.rules:
                    record = {"dataset": name, **fit_once(X, y, K, seed, rule, memory)}
                    first = first or record
                    record["loaded"] = record is not first
                    record["pretraining_first"] = first["pretraining"]
                    if record["loaded"]:
                        record["pretraining"] = first["pretraining"]
                    records.append(record)
                    print({k: round(v, 4) if isinstance(v, float) else v
                           for k, v in record.items()}, flush=True)
            write_json_atomic(RESULTS_DIR / "phases.json",
                              {"environment": env, "records": records})
            write_atomic(RESULTS_DIR / "phases.md", markdown(env, records))


if __name__ == "__main__":
    main()
