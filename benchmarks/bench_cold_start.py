"""What a fit costs in a new Python process: the import, and the start's UMAP,
whose numba functions compile on their first call in a process unless numba's
on-disk cache holds them (``_init.cache_compiled_functions``, on by default).

Every fit runs in a process of its own, the two conditions alternating, on one
pretraining (``memory``: a folder made by a first fit, so that the fits measured
load it and differ only in the start's compilation):

- ``compile``: ``_init.cache_compiled_functions`` replaced by a function that does
  nothing, as before 2026-12-08: UMAP's functions compile in the process;
- ``cached``: the default, after one fit has filled numba's cache.

Records: the seconds from the process's launch to the fit (the interpreter
and the imports of torch, scikit-learn, sklearn_vade and this script's
modules), the start's seconds
(``timings_["initialisation"]``), the fit's seconds (with the pretraining
loaded) and ACC (labels only score; the two conditions must give the same
partition).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_cold_start.py --dataset digits \\
        --seed 0 --repeats 3

Results go to ``results/cold_start.json`` and ``results/cold_start.md``.
"""

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    RESULTS_DIR,
    environment,
    environment_line,
    markdown_table,
    write_atomic,
    write_json_atomic,
)

CONDITIONS = ("compile", "cached")


def child(condition, dataset, seed, memory, threads, launched):
    """One fit in this (new) process, launched at ``launched`` (time.time() of
    the parent); prints its record as JSON."""
    import torch
    from _common import score
    from bench_ablation import load

    from sklearn_vade import VaDEClustering, _init
    imported = time.time() - launched  # the interpreter, torch, sklearn_vade, ...
    torch.set_num_threads(threads)
    if condition == "compile":
        _init.cache_compiled_functions = lambda packages: 0

    X, y, K = load(dataset)
    begin = time.perf_counter()
    model = VaDEClustering(n_clusters=K, random_state=seed, memory=memory).fit(X)
    seconds = time.perf_counter() - begin
    print(json.dumps({"condition": condition, "import": imported,
                      "start": model.timings_["initialisation"], "fit": seconds,
                      "labels_hash": hashlib.sha1(model.labels_.tobytes()).hexdigest(),
                      **score(y, model.labels_)}))


def run_child(condition, args, memory):
    command = [sys.executable, "-W", "ignore", str(Path(__file__).resolve()),
               "--child", condition, "--dataset", args.dataset, "--seed",
               str(args.seed), "--memory", memory, "--threads", str(args.threads),
               "--launched", repr(time.time())]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def markdown(env, records):
    rows = []
    for condition in CONDITIONS:
        mine = [r for r in records if r["condition"] == condition]
        if mine:
            rows.append({"condition": condition, "runs": len(mine),
                         **{key: statistics.median(r[key] for r in mine)
                            for key in ("import", "start", "fit", "acc")}})
    columns = [("condition", "condition", None), ("runs", "runs", "{:d}"),
               ("imports s", "import", "{:.1f}"), ("start s", "start", "{:.1f}"),
               ("fit s (pretraining loaded)", "fit", "{:.1f}"),
               ("ACC", "acc", "{:.4f}")]
    return "\n".join(["# A fit in a new process: UMAP compiled or loaded", "",
                      environment_line(env), "", "Medians over the runs.", "",
                      *markdown_table(rows, columns), "", "Every run:", "",
                      *markdown_table(records, [("condition", "condition", None),
                                                ("imports s", "import", "{:.1f}"),
                                                ("start s", "start", "{:.1f}"),
                                                ("fit s", "fit", "{:.1f}"),
                                                ("ACC", "acc", "{:.4f}")])]) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=CONDITIONS, default=None)
    parser.add_argument("--memory", default=None)
    parser.add_argument("--launched", type=float, default=None)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.dataset, args.seed, args.memory, args.threads,
              args.launched)
        return
    env = environment(args.threads, dataset=args.dataset, seed=args.seed)
    print(environment_line(env), flush=True)
    records = []
    with tempfile.TemporaryDirectory() as memory:
        run_child("cached", args, memory)  # pretrains, and fills numba's cache
        for _ in range(args.repeats):
            for condition in CONDITIONS:
                records.append(run_child(condition, args, memory))
                print(records[-1], flush=True)
    if len({r["labels_hash"] for r in records}) != 1:
        print("warning: the conditions' partitions differ", flush=True)
    write_json_atomic(RESULTS_DIR / "cold_start.json",
                      {"environment": env, "records": records})
    write_atomic(RESULTS_DIR / "cold_start.md", markdown(env, records))


if __name__ == "__main__":
    main()
