"""Shared parts of the benchmark scripts: fit and score, summaries, environment, output.

The scripts in this folder are run as ``python benchmarks/<script>.py``, which puts this
folder on ``sys.path``, so they import this module as ``_common``.

Labels are used only by :func:`score`, after a model has been fitted: nothing here
lets them choose a model, a seed or a parameter.
"""

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
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import sklearn_vade
from sklearn_vade import cluster_accuracy

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------- fit and score
def score(y, labels):
    """ACC (Hungarian matching), NMI and ARI of ``labels`` against the classes ``y``."""
    return {
        "acc": cluster_accuracy(y, labels),
        "nmi": float(normalized_mutual_info_score(y, labels)),
        "ari": float(adjusted_rand_score(y, labels)),
    }


def format_warnings(caught):
    """Sorted, de-duplicated ``"Category: message"`` strings of caught warnings."""
    return sorted({f"{w.category.__name__}: {w.message}" for w in caught})


def fit_and_score(method, model, seed, X, y, details=None):
    """Fit ``model`` on X (unlabelled) and score its labels against y.

    Returns a record with ``method``, ``seed``, ``acc``, ``nmi``, ``ari``,
    ``fit_seconds`` (wall clock of ``fit_predict`` alone), ``n_clusters_found`` and the
    ``warnings`` raised during the fit. ``details(model)``, when given, returns a dict
    of further fields taken from the fitted model (e.g. ``n_iter_``).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        labels = model.fit_predict(X)
        seconds = time.perf_counter() - start
    record = {"method": method, "seed": seed, **score(y, labels),
              "fit_seconds": seconds,
              "n_clusters_found": int(np.unique(labels).size),
              "warnings": format_warnings(caught)}
    if details is not None:
        record.update(details(model))
    return record


# --------------------------------------------------------------------- summaries
STATISTICS = {"median": statistics.median, "min": min, "max": max}


def summarize(records, methods, metrics, stats=("median",)):
    """Rows of per-method statistics of each metric over that method's seeds.

    For each method (in ``methods`` order) and each statistic in ``stats`` (names in
    :data:`STATISTICS`), one row ``{"method", "seed": <statistic>, "n_seeds", <metric>:
    value, ...}``. Records with an ``"error"`` are left out; a metric that is missing or
    None in every record of a method is None.
    """
    rows = []
    for method in methods:
        runs = [r for r in records if r["method"] == method and not r.get("error")]
        if not runs:
            continue
        for stat in stats:
            row = {"method": method, "seed": stat, "n_seeds": len(runs)}
            for metric in metrics:
                values = [r[metric] for r in runs if r.get(metric) is not None]
                row[metric] = STATISTICS[stat](values) if values else None
            rows.append(row)
    return rows


def medians(records, methods, metrics):
    """One row per method with the median of each metric over its seeds."""
    return summarize(records, methods, metrics, stats=("median",))


def sort_runs(records, methods):
    """Records grouped by method (in ``methods`` order), then by seed."""
    order = list(methods)
    return sorted(records, key=lambda r: (order.index(r["method"]), r["seed"]))


# ------------------------------------------------------------------- environment
def environment(threads, **extra):
    """Versions, CPU count, torch threads and the command line, plus ``extra``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    env = {
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
    env.update(extra)
    return env


def environment_line(env):
    """One markdown sentence with the environment of a run."""
    return (f"torch {env['torch']} with {env['torch_threads']} thread(s), "
            f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY'] or 'unset'}, "
            f"scikit-learn {env['scikit-learn']}, sklearn_vade {env['sklearn_vade']}, "
            f"Python {env['python']}, "
            f"{env['cpu_count']} CPUs; {env['date']}.")


def cpu_model():
    """The CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


# ---------------------------------------------------------------------- markdown
def _cell(value, fmt):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return fmt.format(value)


def markdown_table(rows, columns):
    """A markdown table of ``rows`` (dicts).

    ``columns`` is a list of ``(header, key, fmt)``: ``fmt`` a ``str.format`` pattern
    for numbers (right-aligned column), or None for a left-aligned column printed as is.
    Missing or None values print as ``-``; strings (e.g. ``"median"``) print as is.
    """
    aligns = ["---" if fmt is None else "---:" for _, _, fmt in columns]
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |",
             "|" + "|".join(aligns) + "|"]
    for row in rows:
        cells = [_cell(row.get(key), fmt or "{}") for _, key, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# ------------------------------------------------------------------------ output
def write_atomic(path, text):
    """Write through a .tmp file so an interrupted run never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path, payload):
    write_atomic(path, json.dumps(payload, indent=2) + "\n")
