"""Benchmark VaDE against k-means and a Gaussian mixture on MNIST (70,000 x 784).

Run from the repository root, with nothing else heavy running on the machine::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_mnist.py --threads 2

(seeds 0-4 for every method; ``--seeds 0 1 2``, ``--baselines-seeds 0``,
``--vade-params '{"max_epochs": 50}'`` and ``--data PATH`` change that).

Data: ``sklearn_vade.datasets.load_mnist(path=...)`` with ``../shared/data/mnist.npz``
(relative to the repository root) when that file exists, else the loader's default
(its cache, or a download); ``--data PATH`` overrides. ``X`` is the pixels / 255 as
float32, all 70,000 rows. The labels are used only to score, never to fit, to choose a
seed or to select a model.

For each seed:

- ``VaDEClustering(n_clusters=10, random_state=seed, **vade_params)`` (the defaults
  unless ``--vade-params`` gives a JSON dict of other parameters) is fitted in a fresh
  subprocess, ``python benchmarks/bench_mnist.py --single-seed SEED ...``, which prints
  its record as one JSON line, so that the peak resident memory
  (``getrusage(RUSAGE_SELF).ru_maxrss``, in MiB) is that of one fit. The record holds
  ACC (Hungarian matching, ``sklearn_vade.cluster_accuracy``), NMI, ARI, fit seconds,
  peak RSS, ``n_iter_``, ``converged_``, ``lower_bound_``, ``timings_`` (seconds per
  phase), the number of pretraining epochs, seconds per epoch of pretraining
  (``timings_["pretraining"] / len(pretrain_losses_)``) and of training
  (``timings_["training"] / n_iter_``), and the warnings raised;
- ``KMeans(n_clusters=10, n_init=3, random_state=seed)`` and
  ``GaussianMixture(n_components=10, covariance_type="diag", random_state=seed)`` are
  fitted in this process on the same X (for the seeds of ``--baselines-seeds``).

Before the fits, the script measures this machine's matmul throughput (torch, fp32 and
bf16) on the network's layer shapes at batch 256, and reports it next to the achieved
throughput of a VaDE training epoch, estimated as

    6 * n_samples * n_weights / (training seconds per epoch)

with ``n_weights`` the number of weights (not biases) of the Linear layers of the
encoder, both latent heads and the decoder (2 flops per weight per sample forward, 4
backward).

Results go to ``benchmarks/results/mnist.json`` and ``benchmarks/results/mnist.md``
(per-seed rows for each method, median/min/max rows, VaDE's phases, the throughput and
the environment), rewritten after every fit so that an interrupted run keeps what it
did.
"""

import argparse
import datetime
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    REPO_ROOT,
    RESULTS_DIR,
    cpu_model,
    environment,
    environment_line,
    fit_and_score,
    markdown_table,
    sort_runs,
    summarize,
    write_atomic,
    write_json_atomic,
)
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from sklearn_vade import VaDEClustering
from sklearn_vade.datasets import load_mnist

METHODS = ("VaDE", "KMeans", "GMM-diag")
METRICS = ("acc", "nmi", "ari", "fit_seconds", "s_per_epoch_pretrain",
           "s_per_epoch_train", "peak_rss_mb", "achieved_gflops_train")
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "mnist.npz"
DEFAULT_OUT = RESULTS_DIR
BATCH = 256
THROUGHPUT_FORMULA = (
    "achieved GFLOP/s = 6 * n_samples * n_weights / (training seconds per epoch) / 1e9,"
    " n_weights = weights (not biases) of the Linear layers of encoder, mu and log-var"
    " heads and decoder; training seconds per epoch = timings_['training'] / n_iter_")
COLUMNS = [
    ("method", "method", None), ("seed", "seed", None),
    ("ACC", "acc", "{:.4f}"), ("NMI", "nmi", "{:.4f}"), ("ARI", "ari", "{:.4f}"),
    ("fit s", "fit_seconds", "{:.1f}"),
    ("s/epoch pretrain", "s_per_epoch_pretrain", "{:.2f}"),
    ("s/epoch train", "s_per_epoch_train", "{:.2f}"),
    ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
]


# ------------------------------------------------------------------------- data
def load_data(path):
    """(X, y): pixels / 255 as float32 (70000, 784), and the digit labels."""
    X, y = load_mnist(path=path, return_X_y=True)
    X = X.astype(np.float32)
    X /= np.float32(255.0)
    return X, y


def default_data_path():
    return str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None


# ------------------------------------------------------------------ throughput
def network_shapes(n_features=784, hidden_layer_sizes=(500, 500, 2000), latent_dim=10):
    """``(name, n_in, n_out)`` of every Linear layer of VaDE's network, in order."""
    units = [n_features, *hidden_layer_sizes]
    dec = [latent_dim, *hidden_layer_sizes[::-1]]
    shapes = [(f"enc{i}", a, b) for i, (a, b) in enumerate(zip(units, units[1:]))]
    shapes += [("mu_head", units[-1], latent_dim),
               ("log_var_head", units[-1], latent_dim)]
    shapes += [(f"dec{i}", a, b) for i, (a, b) in enumerate(zip(dec, dec[1:]))]
    shapes.append(("output", dec[-1], n_features))
    return shapes


def n_linear_weights(shapes):
    return sum(a * b for _, a, b in shapes)


def _time_linear(x, w, reps, autocast):
    """Median seconds of one ``F.linear(x, w)`` over ``reps`` timed repetitions."""
    def call():
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return F.linear(x, w)
        return F.linear(x, w)

    for _ in range(3):  # warm-up
        call()
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    inner = max(1, math.ceil(2e-3 / once))  # each timed repetition lasts >= ~2 ms
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(inner):
            call()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def matmul_peak(shapes=None, batch=BATCH, reps=15, seed=0):
    """This machine's torch matmul GFLOP/s on the network's layer shapes.

    For each distinct ``(n_in, n_out)`` of ``shapes`` and each mode, times
    ``F.linear(x, w)`` with ``x`` (batch, n_in) and ``w`` (n_out, n_in), taking
    ``2 * batch * n_in * n_out`` flops and the median of ``reps`` repetitions. Modes:
    ``fp32``; ``bf16`` (bf16 tensors); ``bf16_autocast`` (fp32 tensors under
    ``torch.autocast("cpu", torch.bfloat16)``, casts included). ``network`` is the
    GFLOP/s of one forward pass through all the layers (total flops / total time).
    Uses torch's current thread count.
    """
    shapes = network_shapes() if shapes is None else shapes
    gen = torch.Generator().manual_seed(seed)
    modes = {"fp32": (torch.float32, False), "bf16": (torch.bfloat16, False),
             "bf16_autocast": (torch.float32, True)}
    seconds = {}  # (mode, n_in, n_out) -> median seconds
    per_shape = []
    for n_in, n_out in dict.fromkeys((a, b) for _, a, b in shapes):
        row = {"shape": f"{batch}x{n_in} @ {n_in}x{n_out}", "n_in": n_in,
               "n_out": n_out, "gflop": 2 * batch * n_in * n_out / 1e9}
        for mode, (dtype, autocast) in modes.items():
            x = torch.randn(batch, n_in, generator=gen).to(dtype)
            w = torch.randn(n_out, n_in, generator=gen).to(dtype)
            with torch.no_grad():
                t = _time_linear(x, w, reps, autocast)
            seconds[mode, n_in, n_out] = t
            row[f"{mode}_gflops"] = row["gflop"] / t
        per_shape.append(row)
    total_gflop = sum(2 * batch * a * b for _, a, b in shapes) / 1e9
    network = {
        f"{mode}_gflops": total_gflop / sum(seconds[mode, a, b] for _, a, b in shapes)
        for mode in modes}
    return {
        "batch": batch, "reps": reps, "torch_threads": torch.get_num_threads(),
        "flops_per_matmul": "2 * batch * n_in * n_out",
        "statistic": "median over reps",
        "cpu_capability": _cpu_capability(),
        "per_shape": per_shape,
        "network": {"gflop_per_forward": total_gflop, **network},
    }


def _threadpools():
    """scikit-learn's native thread pools (OpenMP, BLAS) as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("user_api", "internal_api", "num_threads", "version", "prefix")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


def _cpu_capability():
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        return None


# --------------------------------------------------------------- one VaDE fit
def _max_rss_mb():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes / KiB


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _ratio(num, den):
    return num / den if num is not None and den else None


def vade_details(model, n_samples):
    """Fields of a fitted VaDEClustering: iterations, phases, s/epoch, GFLOP/s."""
    timings = {k: float(v) for k, v in getattr(model, "timings_", {}).items()}
    pretrain_epochs = len(getattr(model, "pretrain_losses_", []))
    n_iter = int(model.n_iter_)
    shapes = network_shapes(model.n_features_in_, tuple(model.hidden_layer_sizes),
                            model.latent_dim)
    n_weights = n_linear_weights(shapes)
    s_train = _ratio(timings.get("training"), n_iter)
    return {
        "n_iter": n_iter,
        "converged": bool(model.converged_),
        "lower_bound": float(model.lower_bound_),
        "timings": timings,
        "pretrain_epochs": pretrain_epochs,
        "s_per_epoch_pretrain": _ratio(timings.get("pretraining"), pretrain_epochs),
        "s_per_epoch_train": s_train,
        "n_linear_weights": n_weights,
        "achieved_gflops_train": _ratio(6 * n_samples * n_weights / 1e9, s_train),
        "params": _json_safe(model.get_params()),
    }


def run_single_seed(seed, data, vade_params):
    """Fit VaDE from one seed in this process; return its record (printed as JSON)."""
    X, y = load_data(data)
    rss_before = _max_rss_mb()
    model = VaDEClustering(**{"n_clusters": 10, **vade_params, "random_state": seed})
    record = fit_and_score("VaDE", model, seed, X, y,
                           details=lambda m: vade_details(m, X.shape[0]))
    record["peak_rss_mb"] = _max_rss_mb()
    record["peak_rss_mb_before_fit"] = rss_before
    if not record.get("error"):
        # inference on the training rows (float64, see bench_predict_memory.py)
        start = time.perf_counter()
        model.predict_proba(X)
        record["predict_proba_rows_per_s"] = X.shape[0] / (time.perf_counter() - start)
    return record


def run_vade_subprocess(seed, args, vade_params):
    """Run ``--single-seed`` in a fresh interpreter; return its record."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--single-seed", str(seed),
           "--threads", str(args.threads), "--vade-params", json.dumps(vade_params)]
    if args.data is not None:
        cmd += ["--data", args.data]
    # stderr (progress, warnings) goes straight to the terminal; stdout is the record.
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    return parse_child_output(proc.stdout, proc.returncode, seed)


def parse_child_output(stdout, returncode, seed):
    """The VaDE record in the child's stdout (other lines are echoed), or an error."""
    record = None
    for line in stdout.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("method") == "VaDE":
            record = parsed
        else:
            print(line)
    if returncode != 0 or record is None:
        problem = "" if record is not None else " and printed no record"
        return {"method": "VaDE", "seed": seed,
                "error": f"subprocess exited with code {returncode}{problem}"}
    return record


# ----------------------------------------------------------------- baselines
def baselines(seed):
    return {
        "KMeans": KMeans(n_clusters=10, n_init=3, random_state=seed),
        "GMM-diag": GaussianMixture(n_components=10, covariance_type="diag",
                                    random_state=seed),
    }


def baseline_details(model):
    details = {"n_iter": int(model.n_iter_)}
    if hasattr(model, "converged_"):
        details.update(converged=bool(model.converged_),
                       lower_bound=float(model.lower_bound_))
    return details


# --------------------------------------------------------------------- output
def _fmt(value, fmt):
    return "-" if value is None else fmt.format(value)


def _display(record):
    """A failed run shows ``failed`` in its ACC cell."""
    return {**record, "acc": "failed"} if record.get("error") else record


def markdown(env, throughput, records, summary):
    n, d = env.get("n_samples"), env.get("n_features")
    lines = [
        "# MNIST benchmark",
        "",
        f"`load_mnist()` pixels / 255 as float32 ({n} x {d}, 10 classes), from "
        f"`{env.get('data') or 'the loader default'}`; labels used only to score.",
        environment_line(env),
        f"CPU: {env.get('cpu_model') or 'unknown'}. Command: `{env['command']}`.",
        "VaDE: `VaDEClustering(n_clusters=10, random_state=seed"
        + "".join(f", {k}={v!r}" for k, v in env.get("vade_params", {}).items())
        + ")`, one fresh subprocess per seed (peak RSS is per fit, in MiB, and "
        "includes the data and torch); KMeans (`n_init=3`) and GMM-diag in the parent "
        "process (no per-fit RSS).",
        "",
        *markdown_table([*map(_display, sort_runs(records, METHODS)), *summary],
                        COLUMNS),
        "",
    ]
    vade = [r for r in sort_runs(records, METHODS) if r["method"] == "VaDE"]
    if vade:
        lines += [
            "## VaDE phases",
            "",
            "| seed | n_iter | converged | lower bound | pretrain epochs | pretrain s "
            "| init s | train s | eval s | achieved GFLOP/s (train) "
            "| predict_proba rows/s | warnings |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in vade:
            if r.get("error"):
                lines.append(f"| {r['seed']} | failed: {r['error']} |" + " |" * 10)
                continue
            t = r.get("timings") or {}
            lines.append(
                f"| {r['seed']} | {_fmt(r.get('n_iter'), '{}')} "
                f"| {_fmt(r.get('converged'), '{}')} "
                f"| {_fmt(r.get('lower_bound'), '{:.2f}')} "
                f"| {_fmt(r.get('pretrain_epochs'), '{}')} "
                f"| {_fmt(t.get('pretraining'), '{:.1f}')} "
                f"| {_fmt(t.get('initialisation'), '{:.1f}')} "
                f"| {_fmt(t.get('training'), '{:.1f}')} "
                f"| {_fmt(t.get('evaluation'), '{:.1f}')} "
                f"| {_fmt(r.get('achieved_gflops_train'), '{:.1f}')} "
                f"| {_fmt(r.get('predict_proba_rows_per_s'), '{:,.0f}')} "
                f"| {len(r.get('warnings', []))} |")
        lines.append("")
    if throughput:
        net = throughput["network"]
        lines += [
            "## Throughput",
            "",
            f"torch matmul (`F.linear`) at batch {throughput['batch']} with "
            f"{throughput['torch_threads']} thread(s), median of {throughput['reps']} "
            f"reps, 2*m*n*k flops; CPU capability "
            f"{throughput.get('cpu_capability') or 'unknown'}. GFLOP/s:",
            "",
            "| shape | fp32 | bf16 | bf16 autocast |",
            "|---|---:|---:|---:|",
        ]
        for row in throughput["per_shape"]:
            lines.append(f"| {row['shape']} | {row['fp32_gflops']:.1f} "
                         f"| {row['bf16_gflops']:.1f} "
                         f"| {row['bf16_autocast_gflops']:.1f} |")
        lines.append(f"| network forward (all layers) | {net['fp32_gflops']:.1f} "
                     f"| {net['bf16_gflops']:.1f} "
                     f"| {net['bf16_autocast_gflops']:.1f} |")
        achieved = [r["achieved_gflops_train"] for r in vade
                    if r.get("achieved_gflops_train") is not None]
        lines += ["", f"Achieved by VaDE training: {THROUGHPUT_FORMULA}."]
        if achieved:
            med = statistics.median(achieved)
            # the peak of the arithmetic training used
            bf16 = env.get("vade_params", {}).get("precision") == "bfloat16"
            mode = "bf16_autocast" if bf16 else "fp32"
            lines.append(f"Median over seeds: {med:.1f} GFLOP/s, "
                         f"{100 * med / net[f'{mode}_gflops']:.0f}% of the "
                         f"{mode.replace('_', ' ')} network forward peak above.")
        lines.append("")
    warned = [r for r in sort_runs(records, METHODS) if r.get("warnings")]
    if warned:
        lines += ["## Warnings", ""]
        lines += [f"- {r['method']} seed {r['seed']}: {w}"
                  for r in warned for w in r["warnings"]]
        lines.append("")
    return "\n".join(lines)


def write_results(out_dir, env, throughput, records):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(records, METHODS, METRICS, stats=("median", "min", "max"))
    updated = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    payload = {"environment": env, "updated": updated, "throughput": throughput,
               "runs": records, "summary": summary}
    write_json_atomic(out_dir / "mnist.json", payload)
    write_atomic(out_dir / "mnist.md", markdown(env, throughput, records, summary))


def _print_record(r):
    if r.get("error"):
        print(f"seed {r['seed']} {r['method']:<9} FAILED: {r['error']}", flush=True)
        return
    print(f"seed {r['seed']} {r['method']:<9} ACC {r['acc']:.4f} NMI {r['nmi']:.4f} "
          f"ARI {r['ari']:.4f} {r['fit_seconds']:.1f} s", flush=True)


# ----------------------------------------------------------------------- main
def _vade_params(text):
    try:
        params = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(params, dict):
        raise argparse.ArgumentTypeError(
            "must be a JSON object, e.g. '{\"max_epochs\": 50}'")
    if "random_state" in params:
        raise argparse.ArgumentTypeError(
            "random_state is set by the seed; leave it out")
    return params


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Exact command, from the repository root: "
               "OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_mnist.py --threads 2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="random_state values for VaDE (default: 0 1 2 3 4)")
    parser.add_argument("--baselines-seeds", type=int, nargs="*", default=None,
                        help="random_state values for KMeans and GMM-diag (default: "
                             "the same as --seeds; give none to skip them)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads, here and in each VaDE subprocess "
                             "(default: 2)")
    parser.add_argument("--data", default=default_data_path(),
                        help="MNIST .npz with X (70000, 784) and y (default: "
                             f"{DEFAULT_DATA} if it exists, else load_mnist's cache or "
                             "download)")
    parser.add_argument("--vade-params", type=_vade_params, default={},
                        help="JSON dict of extra VaDEClustering parameters, e.g. "
                             "'{\"max_epochs\": 50}' (default: none, the defaults)")
    parser.add_argument("--throughput-reps", type=int, default=15,
                        help="repetitions per shape of the matmul peak measurement; 0 "
                             "skips it (default: 15)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--single-seed", type=int, default=None, metavar="SEED",
                        help="internal: fit VaDE from SEED in this process and print "
                             "its record as one JSON line")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.throughput_reps < 0:
        parser.error("--throughput-reps must be >= 0")
    if args.baselines_seeds is None:
        args.baselines_seeds = list(args.seeds)
    try:  # fail now, not after the first fit, on a bad parameter
        VaDEClustering(**{"n_clusters": 10, **args.vade_params})._validate_params()
    except AttributeError:
        pass
    except (TypeError, ValueError) as exc:
        parser.error(f"--vade-params: {exc}")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.single_seed is not None:
        record = run_single_seed(args.single_seed, args.data, args.vade_params)
        print(json.dumps(_json_safe(record)), flush=True)
        return

    X, y = load_data(args.data)
    env = environment(
        args.threads, argv=[sys.executable, *sys.argv], cpu_model=cpu_model(),
        torch_parallel_info=torch.__config__.parallel_info(),
        threadpools=_threadpools(), data=args.data,
        n_samples=int(X.shape[0]), n_features=int(X.shape[1]),
        seeds=list(args.seeds), baselines_seeds=list(args.baselines_seeds),
        vade_params=args.vade_params, vade_in_subprocess=True,
        peak_rss_unit="MiB (ru_maxrss of the VaDE subprocess)",
        throughput_formula=THROUGHPUT_FORMULA)
    throughput = None
    if args.throughput_reps:
        throughput = matmul_peak(reps=args.throughput_reps)
        net = throughput["network"]
        print(f"matmul peak (network forward, batch {BATCH}): "
              f"fp32 {net['fp32_gflops']:.1f} GFLOP/s, bf16 {net['bf16_gflops']:.1f}, "
              f"bf16 autocast {net['bf16_autocast_gflops']:.1f}", flush=True)
    records = []
    write_results(args.out, env, throughput, records)

    def add(record):
        records.append(_json_safe(record))
        _print_record(record)
        write_results(args.out, env, throughput, records)

    baseline_seeds = list(dict.fromkeys(args.baselines_seeds))
    for seed in args.seeds:
        add(run_vade_subprocess(seed, args, args.vade_params))
        if seed in baseline_seeds:
            baseline_seeds.remove(seed)
            for method, model in baselines(seed).items():
                add(fit_and_score(method, model, seed, X, y, baseline_details))
    for seed in baseline_seeds:  # baseline seeds that VaDE does not run
        for method, model in baselines(seed).items():
            add(fit_and_score(method, model, seed, X, y, baseline_details))
    summary = summarize(records, METHODS, METRICS, stats=("median",))
    print("\n".join(markdown_table(summary, COLUMNS)))


if __name__ == "__main__":
    main()
