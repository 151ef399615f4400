"""Speed and memory of inference on a million rows, in float64 (the default) and
float32 (``inference_precision="float32"``): predict_proba, transform and
score_samples process X batch by batch, so their peak memory is the input plus a
small constant.

A ``VaDEClustering`` with the default network (784-500-500-2000-10) is fitted
briefly on 10,000 MNIST rows (10 pretraining and 5 joint epochs: the speed does not
depend on the model's quality), then a float32 array of ``--rows`` x 784 (default
1,000,000, 3.1 GB) is filled with copies of those rows in place (no temporary
copies). For each precision and inference method the script resets the process's
resident-memory high-water mark (``/proc/self/clear_refs``), calls the method, and
records the peak resident memory above the resident memory just before the call,
with the output's own size, the wall-clock seconds and the rows per second. The
float32 results are compared with float64's on the 10,000 rows (largest absolute
difference; for predict, the share of equal labels). Linux only.

Results go to ``benchmarks/results/predict_memory.{json,md}``.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_predict_memory.py  # 1,000,000 rows
    python benchmarks/bench_predict_memory.py --rows 200000 --methods predict_proba \
        --precisions float32
"""

import argparse
import itertools
import statistics
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
    write_atomic,
    write_json_atomic,
)

from sklearn_vade import VaDEClustering
from sklearn_vade._inference import INFERENCE_BATCH
from sklearn_vade.datasets import load_mnist

N_FEATURES = 784
MiB = 2**20


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak():
    """Reset the resident-memory high-water mark (VmHWM) to the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def rss_mib():
    return _status_kib("VmRSS") / 1024


def peak_mib():
    return _status_kib("VmHWM") / 1024


def encoder_shapes(model):
    """(n_in, n_out) of every Linear layer a row goes through in the encoder: the
    hidden layers, then the mean and log-variance heads."""
    units = [model.n_features_in_, *model.hidden_layer_sizes]
    return [*zip(units[:-1], units[1:]), (units[-1], model.latent_dim),
            (units[-1], model.latent_dim)]


def encoder_ceiling(shapes, batch, dtype, reps=15, seed=0):
    """Rows per second of the encoder's matrix products alone (``F.linear`` on
    ``shapes`` at ``batch`` rows, median seconds of ``reps`` repetitions each) and
    their GFLOP/s (2 * rows * n_in * n_out flops per product)."""
    gen = torch.Generator().manual_seed(seed)
    seconds = 0.0
    for n_in, n_out in shapes:
        x = torch.randn(batch, n_in, generator=gen, dtype=dtype)
        w = torch.randn(n_out, n_in, generator=gen, dtype=dtype)
        with torch.no_grad():
            for _ in range(3):
                torch.nn.functional.linear(x, w)
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                torch.nn.functional.linear(x, w)
                times.append(time.perf_counter() - start)
        seconds += statistics.median(times)
    flops = 2 * batch * sum(a * b for a, b in shapes)
    return {"rows_per_s": batch / seconds, "gflops": flops / seconds / 1e9}


def training_rows(data, n_rows, seed):
    """``n_rows`` x 784 float32 rows in [0, 1]: MNIST when available, else random."""
    rng = np.random.RandomState(seed)
    try:
        X, _ = load_mnist(path=data, download_if_missing=False, return_X_y=True)
        return (X[rng.permutation(len(X))[:n_rows]] / 255.0).astype(np.float32), "MNIST"
    except (OSError, ValueError):
        return rng.rand(n_rows, N_FEATURES).astype(np.float32), "uniform random"


def precision_differences(model, X, methods):
    """How far the float32 results lie from float64's on X, per method: the
    largest absolute difference (relative, for score_samples), and for predict the
    share of equal labels."""
    outputs = {}
    for precision in ("float64", "float32"):
        model.set_params(inference_precision=precision)
        outputs[precision] = {method: getattr(model, method)(X) for method in methods}
    model.set_params(inference_precision="float64")
    differences = {}
    for method in methods:
        double = outputs["float64"][method]
        single = outputs["float32"][method].astype(np.float64)
        if method == "predict":
            differences[method] = f"{np.mean(single == double):.4%} equal labels"
        elif method == "score_samples":
            relative = np.max(np.abs(single - double) / np.abs(double))
            differences[method] = f"largest relative difference {relative:.1e}"
        else:
            differences[method] = (f"largest absolute difference "
                                   f"{np.max(np.abs(single - double)):.1e}")
    return differences


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--methods", nargs="+",
                        default=["predict", "predict_proba", "transform",
                                 "score_samples"])
    parser.add_argument("--precisions", nargs="+", default=["float64", "float32"],
                        choices=["float64", "float32"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=None,
                        help="MNIST .npz (default: ../shared/data/mnist.npz)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = args.data
    repo = Path(__file__).resolve().parent.parent
    default_data = repo.parent / "shared" / "data" / "mnist.npz"
    if data is None and default_data.exists():
        data = str(default_data)

    train, source = training_rows(data, 10_000, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = VaDEClustering(n_clusters=10, pretrain_epochs=10, max_epochs=5,
                               random_state=0, device="cpu").fit(train)
    differences = precision_differences(model, train, args.methods)

    X = np.empty((args.rows, N_FEATURES), dtype=np.float32)
    for start in range(0, args.rows, len(train)):
        stop = min(start + len(train), args.rows)
        X[start:stop] = train[: stop - start]

    shapes = encoder_shapes(model)
    ceiling = {name: encoder_ceiling(shapes, INFERENCE_BATCH, dtype)
               for name, dtype in (("float64", torch.float64),
                                   ("float32", torch.float32))}
    env = environment(args.threads, rows=args.rows, data=source)
    print(environment_line(env))
    for name, c in ceiling.items():
        print(f"encoder matmuls alone in {name}: {c['rows_per_s']:,.0f} rows/s "
              f"({c['gflops']:.1f} GFLOP/s)", flush=True)
    records = []
    for precision, method in itertools.product(args.precisions, args.methods):
        model.set_params(inference_precision=precision)
        getattr(model, method)(X[:INFERENCE_BATCH])  # the network built, warm
        before = rss_mib()
        reset_peak()
        start = time.perf_counter()
        out = getattr(model, method)(X)
        seconds = time.perf_counter() - start
        peak = peak_mib()
        record = {"precision": precision, "method": method, "rows": args.rows,
                  "input_mib": X.nbytes / MiB, "output_mib": out.nbytes / MiB,
                  "rss_before_mib": before, "peak_above_before_mib": peak - before,
                  "overhead_beyond_output_mib": peak - before - out.nbytes / MiB,
                  "seconds": seconds, "rows_per_s": args.rows / seconds,
                  "share_of_float64_ceiling":
                      args.rows / seconds / ceiling["float64"]["rows_per_s"]}
        records.append(record)
        print(f"{precision} {method:>14}: peak {peak - before:7.1f} MiB above the "
              f"{before:7.1f} MiB before (input {X.nbytes / MiB:.0f} MiB, output "
              f"{out.nbytes / MiB:.1f} MiB), {seconds:.1f} s, "
              f"{args.rows / seconds:,.0f} rows/s", flush=True)
        del out
    write_json_atomic(RESULTS_DIR / "predict_memory.json",
                      {"environment": env, "encoder_shapes": shapes,
                       "inference_batch": INFERENCE_BATCH,
                       "encoder_ceiling": ceiling, "records": records,
                       "float32_vs_float64": differences})
    columns = [("precision", "precision", None), ("method", "method", None),
               ("rows", "rows", "{:d}"),
               ("input MiB", "input_mib", "{:.0f}"),
               ("output MiB", "output_mib", "{:.1f}"),
               ("RSS before MiB", "rss_before_mib", "{:.0f}"),
               ("peak above before MiB", "peak_above_before_mib", "{:.1f}"),
               ("seconds", "seconds", "{:.1f}"),
               ("rows/s", "rows_per_s", "{:,.0f}"),
               ("of the float64 ceiling", "share_of_float64_ceiling", "{:.0%}")]
    ceiling_lines = [
        f"Ceiling: the encoder's matrix products alone ({len(shapes)} products, "
        f"batch {INFERENCE_BATCH}, median of 15): "
        + "; ".join(f"{name} {c['rows_per_s']:,.0f} rows/s ({c['gflops']:.1f} "
                    "GFLOP/s)" for name, c in ceiling.items()) + "."]
    difference_lines = [
        f"float32 against float64 on the {len(train):,} training rows: "
        + "; ".join(f"{method} {text}" for method, text in differences.items()) + "."]
    lines = [environment_line(env), "", *markdown_table(records, columns), "",
             *ceiling_lines, "", *difference_lines]
    write_atomic(RESULTS_DIR / "predict_memory.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
