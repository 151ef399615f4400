"""The "Should I use VaDE?" table, from the committed results.

Reads ``results/ablation.json`` (the records of the default recipe,
``DEFAULT_VARIANT``, or of the same fit under an earlier name: ``NO_TRADE``,
``SAME_FIT``) and ``results/baselines.json`` (k-means on the same data and
seeds, and the one-cluster floor), and writes ``results/summary.rst``: per
data set, VaDE's median accuracy over the seeds measured, k-means' median on
the same seeds, on how many of those seeds VaDE scored higher, the accuracy of
one cluster for all (the largest class's share), the most components VaDE left
empty at the end, and the median fit times. VaDE's time is the sum of its three
phases as the ablation timed them (pretraining, start, joint phase; seeds whose
cached start has no recorded time are left out of the median); it leaves out
the validation and the final evaluation pass, seconds on these sizes. The README
quotes this table and docs/benchmarks.rst includes the file;
``tests/test_docs.py`` checks that the README's copy is the table this script
writes (``--readme`` updates that copy).

    python benchmarks/summary.py --readme
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.rst"
# The README's copy of the table lies between these two comment lines.
README_MARKERS = (".. should-i-use-start\n", ".. should-i-use-end\n")
# The bench_ablation.py variant that runs what VaDEClustering's defaults run, and
# the earlier default that differs from it only by its shorter minimum warm-up
# (10 epochs, not 25): where 1,000 steps already take 25 epochs or more, the two
# are the same fit, and the summary reads the earlier default's records.
DEFAULT_VARIANT = "umaptrade-anchor-hot-long"
# The earlier default, whose start did not trade clusters under half an equal
# share (_init.trade_if_more_likely), and the data sets whose starts have no such
# cluster on any seed recorded (the smallest holds 0.88 of an equal share or more
# on MNIST, seeds 0-4: benchmarks/README.md): there the trade draws no random
# number and changes nothing, the two are the same fit.
NO_TRADE = ("umap-anchor-hot-long", {"mnist"})
SAME_FIT = ("umap-anchor-hot", 10, 25)  # variant, its minimum, the earlier default's
# Rows in this order; the data as bench_ablation.py feeds it (../shared/data/README).
DATASETS = {
    "mnist": "MNIST (70,000 x 784)",
    "usps": "USPS (9,298 x 256)",
    "digits": "digits (1,797 x 64)",
    "pendigits": "Pendigits (10,992 x 16)",
    "wisdm": "WISDM (5,418 x 40)",
    "20news": "20 Newsgroups (18,846 x 2,000)",
    "mnist-lt10": "MNIST-LT10 (25,801 x 784)",
    "mnist-lt50": "MNIST-LT50 (17,677 x 784)",
    "usps-lt10": "USPS-LT10 (2,893 x 256)",
    "20news-lt10": "20 Newsgroups-LT10 (5,017 x 2,000)",
}
# Rows of each data set: its warm-up's length decides whether SAME_FIT applies.
N_SAMPLES = {"mnist": 70_000, "usps": 9_298, "digits": 1_797, "pendigits": 10_992,
             "wisdm": 5_418, "20news": 18_846, "mnist-lt10": 25_801,
             "mnist-lt50": 17_677, "usps-lt10": 2_893, "20news-lt10": 5_017}
HEADER = ("data", "seeds", "VaDE ACC", "k-means ACC", "VaDE higher", "one cluster",
          "empty", "VaDE fit", "k-means fit")


def _duration(seconds):
    if seconds < 1:
        return "< 1 s"
    if seconds < 100:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def warmup_epochs(n_samples, minimum, batch_size=256, steps=1000):
    """The anchored warm-up's epochs, as bench_ablation.py and fit count them."""
    per_epoch = -(-n_samples // min(batch_size, n_samples))
    return max(minimum, -(-min(n_samples, steps) // per_epoch))


def rows(ablation, baselines):
    """One tuple of cells per data set with both VaDE and k-means results."""
    variant, old, new = SAME_FIT
    earlier, untraded = NO_TRADE
    same = {name for name, n in N_SAMPLES.items()
            if warmup_epochs(n, old) == warmup_epochs(n, new)} & untraded
    vade = {(r["dataset"], r["seed"]): r for r in ablation
            if r["variant"] == variant and r["dataset"] in same}
    vade.update({(r["dataset"], r["seed"]): r for r in ablation
                 if r["variant"] == earlier and r["dataset"] in untraded})
    vade.update({(r["dataset"], r["seed"]): r for r in ablation
                 if r["variant"] == DEFAULT_VARIANT})
    kmeans = {(r["dataset"], r["seed"]): r for r in baselines
              if r["method"] == "KMeans"}
    floor = {r["dataset"]: r["acc"] for r in baselines if r["method"] == "one-cluster"}
    table = []
    for name, label in DATASETS.items():
        seeds = sorted(s for (d, s) in vade if d == name and (d, s) in kmeans)
        if not seeds:
            continue
        v = [vade[name, s] for s in seeds]
        k = [kmeans[name, s] for s in seeds]
        acc = [r["final_acc"] for r in v]
        phases = [[r[key] for key in ("pretrain_seconds", "init_seconds",
                                      "train_seconds")] for r in v]
        fit = [sum(p) for p in phases if None not in p]
        higher = sum(a > r["acc"] for a, r in zip(acc, k))
        spread = f" ({min(acc):.3f}-{max(acc):.3f})" if len(acc) > 1 else ""
        table.append((
            label,
            str(len(seeds)),
            f"{statistics.median(acc):.3f}{spread}",
            f"{statistics.median(r['acc'] for r in k):.3f}",
            f"{higher} of {len(seeds)}",
            f"{floor[name]:.3f}" if name in floor else "",
            str(max(r["n_empty"] for r in v)),
            _duration(statistics.median(fit)) if fit else "",
            _duration(statistics.median(r["fit_seconds"] for r in k)),
        ))
    return table


def rst_table(table):
    """An RST simple table of HEADER and the rows."""
    widths = [max(len(cell) for cell in column) for column in zip(HEADER, *table)]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([rule, line(HEADER), rule, *map(line, table), rule]) + "\n"


def summary(results_dir=RESULTS_DIR):
    """The table, from the results files in ``results_dir``."""
    ablation = json.loads((results_dir / "ablation.json").read_text())["records"]
    baselines = json.loads((results_dir / "baselines.json").read_text())["records"]
    return rst_table(rows(ablation, baselines))


def quote_in_readme(table, readme=README):
    """Put ``table`` between the README's markers, in place."""
    text = readme.read_text()
    start = text.index(README_MARKERS[0]) + len(README_MARKERS[0])
    end = text.index(README_MARKERS[1])
    readme.write_text(text[:start] + "\n" + table + "\n" + text[end:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true",
                        help="also replace the README's copy of the table")
    args = parser.parse_args(argv)
    text = summary()
    (RESULTS_DIR / "summary.rst").write_text(text)
    if args.readme:
        quote_in_readme(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
