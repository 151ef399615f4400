"""Out-of-core fit: a float32 memmap larger than the memory budget, fitted with its
peak resident memory measured.

The file holds ``--rows`` x 784 rows (default 2,000,000: 6.3 GB) built from the
70,000 MNIST digits (X / 255), each copy with small Gaussian noise (standard
deviation ``--noise``) clipped to [0, 1]; it is written once to ``--dir`` and
reused while its size matches. The fit runs in a child process (so that building
the file counts for nothing) with the default recipe, except for the epoch
counts (``--pretrain-epochs``, ``--max-epochs``: an epoch over millions of rows
takes minutes on two cores) and ``--precision``. Recorded: the child's peak
resident memory (``ru_maxrss``, which counts the mapped file's resident pages),
the fit's seconds per phase, the labels' accuracy against the digits' labels, the
file's size. Linux only.

Results go to ``benchmarks/results/outofcore.{json,md}``.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_outofcore.py
    python benchmarks/bench_outofcore.py --rows 200000 --pretrain-epochs 1 \\
        --max-epochs 2
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import (
    RESULTS_DIR,
    environment,
    environment_line,
    markdown_table,
    write_atomic,
    write_json_atomic,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
N_FEATURES = 784
MiB = 2**20


def build(path, rows, noise, seed=0):
    """The memmap file of ``rows`` noisy copies of MNIST (kept if it exists)."""
    if path.exists() and path.stat().st_size == rows * N_FEATURES * 4:
        return
    with np.load(DATA_DIR / "mnist.npz") as data:
        base = (data["X"] / np.float32(255)).astype(np.float32)
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=(rows, N_FEATURES))
    rng = np.random.default_rng(seed)
    for start in range(0, rows, len(base)):
        stop = min(rows, start + len(base))
        chunk = base[: stop - start] + rng.normal(
            0, noise, (stop - start, N_FEATURES)).astype(np.float32)
        np.clip(chunk, 0, 1, out=chunk)
        out[start:stop] = chunk
    out.flush()
    del out


def fit_child(args):
    """Fit on the memmap (in the child process) and print one JSON line."""
    import torch

    from sklearn_vade import VaDEClustering, cluster_accuracy

    torch.set_num_threads(args.threads)
    X = np.memmap(args.file, dtype=np.float32, mode="r",
                  shape=(args.rows, N_FEATURES))
    with np.load(DATA_DIR / "mnist.npz") as data:
        y = np.resize(data["y"], args.rows)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = VaDEClustering(n_clusters=10, pretrain_epochs=args.pretrain_epochs,
                             max_epochs=args.max_epochs, precision=args.precision,
                             random_state=0).fit(X)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "fit_seconds": seconds,
        "timings": est.timings_,
        "accuracy": float(cluster_accuracy(y, est.labels_)),
        "n_iter": int(est.n_iter_),
    }))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--pretrain-epochs", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", type=Path,
                        default=Path(__file__).resolve().parent / ".cache")
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        fit_child(args)
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"mnist-{args.rows}.f32"
    start = time.perf_counter()
    build(path, args.rows, args.noise)
    print(f"file {path} ready in {time.perf_counter() - start:.0f} s", flush=True)
    child = subprocess.run(
        [sys.executable, __file__, "--child", "--file", str(path),
         "--rows", str(args.rows), "--pretrain-epochs", str(args.pretrain_epochs),
         "--max-epochs", str(args.max_epochs), "--precision", args.precision,
         "--threads", str(args.threads)],
        check=True, capture_output=True, text=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB
    record = {
        "rows": args.rows, "file_gib": path.stat().st_size / 2**30,
        "peak_rss_mib": peak / MiB, "pretrain_epochs": args.pretrain_epochs,
        "max_epochs": args.max_epochs, "precision": args.precision,
        "noise": args.noise, **result,
    }
    print(json.dumps(record), flush=True)
    env = environment(args.threads)
    write_json_atomic(RESULTS_DIR / "outofcore.json",
                      {"environment": env, "records": [record]})
    t = result["timings"]
    row = dict(record, pretrain=t.get("pretraining"), init=t.get("initialisation"),
               train=t.get("training"), evaluation=t.get("evaluation"),
               epochs=f"{args.pretrain_epochs} + {args.max_epochs}")
    lines = [
        "# Out-of-core fit: a float32 memmap larger than the memory budget", "",
        "The default recipe on noisy copies of MNIST read from a memory-mapped "
        "file, with few epochs (each is minutes long); peak RSS of the fitting "
        "process (mapped pages included). Accuracy against the digits' labels only "
        "shows that the fit is sound; it is not a quality figure.", "",
        environment_line(env), "",
        *markdown_table([row], [
            ("rows", "rows", "{:,}"), ("file GiB", "file_gib", "{:.1f}"),
            ("peak RSS MiB", "peak_rss_mib", "{:,.0f}"),
            ("precision", "precision", None),
            ("epochs (pretrain + joint)", "epochs", None),
            ("pretrain s", "pretrain", "{:.0f}"), ("init s", "init", "{:.0f}"),
            ("train s", "train", "{:.0f}"), ("final pass s", "evaluation", "{:.0f}"),
            ("fit s", "fit_seconds", "{:.0f}"), ("ACC", "accuracy", "{:.3f}"),
        ]), ""]
    write_atomic(RESULTS_DIR / "outofcore.md", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
