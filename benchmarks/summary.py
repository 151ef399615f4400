"""The "Should I use VaDE?" table, from the committed results.

VaDE's figures come from full fits of ``VaDEClustering`` with today's defaults
where they exist: the ``init_params="umap"`` records of ``FIT_RESULTS``
(``bench_init_params.py``), all of a data set's from the first file that has it.
Data sets without such fits keep the records of an earlier default from
``results/ablation.json`` (``bench_ablation.py``'s ``DEFAULT_VARIANT``, or the
same fit under an earlier name: ``NO_TRADE``, ``SAME_FIT``), and the table's
``source`` column says which: ``fit`` or ``ablation``. ``results/baselines.json``
gives k-means on the same data and seeds and the one-cluster floor.

Per data set: VaDE's median accuracy over the seeds measured, k-means' median on
the same seeds, on how many of those seeds VaDE scored higher, the accuracy of
one cluster for all (the largest class's share), the most components VaDE left
empty at the end, and the median fit times. A fit's time is its wall-clock
seconds; where it loaded its pretraining from ``memory`` (older records, whose
pretraining ran in an earlier fit of the same seed), the pretraining's seconds
of the fit it replaced (``pretrain_s_same_seed``) or else of the ablation's
record of that seed are added (the same network, data and epochs). An ablation
record's time is the sum of its three phases (pretraining, start, joint
phase; seeds whose cached start has no recorded time are left out of the
median), without the validation and the final evaluation pass, seconds on
these sizes. The README quotes this table and docs/benchmarks.rst includes the
file; ``tests/test_docs.py`` checks that the README's copy is the table this
script writes (``--readme`` updates that copy).

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
# Full fits with the defaults of their day, newest first (bench_init_params.py):
# default_fits after the warm-up's extension (2026-12-07, late); warmup_fits its
# first fits (USPS-LT10, MNIST-LT50); init_params_fits the silhouette-chosen start,
# whose fits of the digits, Pendigits and 20 Newsgroups-LT10 did not extend the
# warm-up (the harness replays: the same fit with and without the extension);
# head_fits the head-heavy sets (2026-12-08, the defaults of default_fits).
FIT_RESULTS = ("default_fits.json", "head_fits.json", "warmup_fits.json",
               "init_params_fits.json")
# A fit whose pretraining took less than this loaded it from memory.
LOADED_PRETRAINING_S = 1.0
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
    "usps-head2": "USPS-head2 (1,645 x 256)",
    "pendigits-head2": "Pendigits-head2 (2,452 x 16)",
    "20news-head2": "20 Newsgroups-head2 (1,458 x 2,000)",
}
# Rows of each data set: its warm-up's length decides whether SAME_FIT applies.
N_SAMPLES = {"mnist": 70_000, "usps": 9_298, "digits": 1_797, "pendigits": 10_992,
             "wisdm": 5_418, "20news": 18_846, "mnist-lt10": 25_801,
             "mnist-lt50": 17_677, "usps-lt10": 2_893, "20news-lt10": 5_017,
             "usps-head2": 1_645, "pendigits-head2": 2_452, "20news-head2": 1_458}
HEADER = ("data", "source", "seeds", "VaDE ACC", "k-means ACC", "VaDE higher",
          "one cluster", "empty", "VaDE fit", "k-means fit")


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


def ablation_records(ablation):
    """{(data set, seed): record} of the default of the ablation's day."""
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
    return vade


def fit_records(fits, ablation_by_seed):
    """{(data set, seed): (ACC, empty components, seconds)} of the fits
    (``fits``: lists of records, newest first; a data set's records all come from
    the first list that has it, so that fits of different days are not mixed)."""
    found, taken = {}, set()
    for records in fits:
        mine = [r for r in records
                if r["init_params"] == "umap" and r["dataset"] not in taken]
        for r in mine:
            key = r["dataset"], r["seed"]
            seconds = r["fit_s"]
            if r.get("pretrain_s", 0.0) < LOADED_PRETRAINING_S:
                earlier = ablation_by_seed.get(key)
                if "pretrain_s_same_seed" in r:  # a fit it replaced pretrained
                    seconds += r["pretrain_s_same_seed"]
                else:
                    seconds = (seconds + earlier["pretrain_seconds"]
                               if earlier is not None else None)
            empty = r.get("n_empty", int(r["smallest"] == 0))
            found[key] = (r["acc"], empty, seconds)
        taken.update(r["dataset"] for r in mine)
    return found


def rows(ablation, baselines, fits=()):
    """One tuple of cells per data set with both VaDE and k-means results."""
    by_seed = ablation_records(ablation)
    fitted = fit_records(fits, by_seed)
    vade = {key: (r["final_acc"], r["n_empty"],
                  None if r["init_seconds"] is None else
                  r["pretrain_seconds"] + r["init_seconds"] + r["train_seconds"])
            for key, r in by_seed.items()}
    kmeans = {(r["dataset"], r["seed"]): r for r in baselines
              if r["method"] == "KMeans"}
    floor = {r["dataset"]: r["acc"] for r in baselines if r["method"] == "one-cluster"}
    table = []
    for name, label in DATASETS.items():
        source = "fit" if any(d == name for d, _ in fitted) else "ablation"
        mine = fitted if source == "fit" else vade
        seeds = sorted(s for (d, s) in mine if d == name and (d, s) in kmeans)
        if not seeds:
            continue
        acc, empty, seconds = zip(*(mine[name, s] for s in seeds))
        k = [kmeans[name, s] for s in seeds]
        fit = [t for t in seconds if t is not None]
        higher = sum(a > r["acc"] for a, r in zip(acc, k))
        spread = f" ({min(acc):.3f}-{max(acc):.3f})" if len(acc) > 1 else ""
        table.append((
            label,
            source,
            str(len(seeds)),
            f"{statistics.median(acc):.3f}{spread}",
            f"{statistics.median(r['acc'] for r in k):.3f}",
            f"{higher} of {len(seeds)}",
            f"{floor[name]:.3f}" if name in floor else "",
            str(max(empty)),
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
    fits = [json.loads((results_dir / name).read_text())["records"]
            for name in FIT_RESULTS if (results_dir / name).exists()]
    return rst_table(rows(ablation, baselines, fits))


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
