"""Ablation of the start and the joint regime, on cached pretrained autoencoders.

For each data set and seed the autoencoder is pretrained once, exactly as
``VaDEClustering(n_clusters=K, random_state=seed).fit`` pretrains it, and cached
(``--cache``, default ``benchmarks/.cache``): its weights and the states of the fit's
random generators after pretraining. Each variant then starts from that cache and
runs phases 2 and 3 of ``fit`` (initialisation, joint training) with its own
settings, so that variants differ only in what they name; the start of each
``init_params`` is cached too (its seconds are those of the run that made it).
Labels only score.

Recorded per variant and seed: the accuracy of the initial partition (``start``),
of the Gaussian prior set from it (``prior``: argmax gamma at the latent means
before any joint training), after the joint phase (``final``), the final
agreement with the initial partition (ARI, label-free), empty components and
seconds. Results go to ``results/ablation.json`` and ``results/ablation.md``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_ablation.py --datasets digits \
        --seeds 0 1 2 --variants umap-warmup-strong gmm-paper
"""

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, environment, environment_line, score
from bench_datasets import DATA_DIR
from bench_datasets import load as load_dataset

import sklearn_vade
from sklearn_vade import _elbo, _init
from sklearn_vade._engine import encode_means
from sklearn_vade._init import Partition, initialise_mixture
from sklearn_vade._pretrain import pretrain_autoencoder
from sklearn_vade._progress import progress_factory
from sklearn_vade._training import train_vade
from sklearn_vade._utils import draw_seed, local_random_state, torch_generator

# Each variant: the start ("gmm" or "umap") and overrides of the fit's FitConfig;
# max_epochs counts the epochs after the warm-up.
PAPER_REGIME = dict(learning_rate=1e-4, lr_step_epochs=1, lr_step_factor=0.99,
                    lr_floor=0.0, min_epochs=0, warmup_epochs=0,
                    warmup_learning_rate=1e-4, max_epochs=50)
STRONG_REGIME = dict(learning_rate=2e-3, lr_step_epochs=10, lr_step_factor=0.9,
                     lr_floor=2e-4, min_epochs=50, warmup_learning_rate=2e-3,
                     max_epochs=100)
# The anchored warm-up lasts WARMUP_STEPS optimiser steps, at least 10 epochs
# unless the variant says otherwise (min_warmup_epochs; the default fit's is 25).
WARMUP_STEPS = 1000
VARIANTS = {
    "gmm-paper": dict(init_params="gmm", **PAPER_REGIME),
    "umap-paper": dict(init_params="umap", **PAPER_REGIME),
    "umap-warmup-paper": dict(init_params="umap", **{**PAPER_REGIME,
                                                    "warmup_epochs": 10}),
    "umap-warmup-strong": dict(init_params="umap", warmup_epochs=10, **STRONG_REGIME),
    "umap-strong": dict(init_params="umap", warmup_epochs=0, **STRONG_REGIME),
    "gmm-strong": dict(init_params="gmm", warmup_epochs=0, **STRONG_REGIME),
    "gmm-warmup-strong": dict(init_params="gmm", warmup_epochs=10, **STRONG_REGIME),
    "umap-anchor-paper": dict(init_params="umap", **{**PAPER_REGIME,
                                                     "warmup_epochs": "steps"}),
    "umap-anchor-strong": dict(init_params="umap", warmup_epochs="steps",
                               **STRONG_REGIME),
    # umap-anchor-paper above was the default recipe on 2026-12-01; umap-anchor-hot
    # (the warm-up at ten times the step) was the default from its third session,
    # umap-anchor-hot-long (at least 25 warm-up epochs) is since the session of
    # 2026-12-01 16:00
    "umap-anchor-hot": dict(init_params="umap", **{
        **PAPER_REGIME, "warmup_epochs": "steps", "warmup_learning_rate": 1e-3}),
    # the warm-up at three times the step: between keeping the start (hot) and
    # letting the joint phase move it (paper)
    "umap-anchor-warm": dict(init_params="umap", **{
        **PAPER_REGIME, "warmup_epochs": "steps", "warmup_learning_rate": 3e-4}),
    # the default without trading small manifold clusters for splits (the default
    # until the fourth session of 2026-12-01)
    "umap-nosplit-anchor-hot": dict(init_params="umap", min_cluster_share=0.0, **{
        **PAPER_REGIME, "warmup_epochs": "steps", "warmup_learning_rate": 1e-3}),
    # the warm-up at least 25 epochs (MNIST's is 10: 2,740 steps but 10 passes,
    # against 28 on USPS)
    "umap-anchor-hot-long": dict(init_params="umap", min_warmup_epochs=25, **{
        **PAPER_REGIME, "warmup_epochs": "steps", "warmup_learning_rate": 1e-3}),
    # the default with UMAP's neighbourhood at 30 instead of 15 (the start only)
    "umap30-anchor-hot-long": dict(init_params="umap", min_warmup_epochs=25,
                                   umap_n_neighbors=30, **{
        **PAPER_REGIME, "warmup_epochs": "steps", "warmup_learning_rate": 1e-3}),
    # the default keeping the most likely restart of the mixture in UMAP's
    # embedding instead of the most consensual one (the start only)
    "umapll-anchor-hot-long": dict(init_params="umap", min_warmup_epochs=25,
                                   restart_choice="likelihood", **{
        **PAPER_REGIME, "warmup_epochs": "steps", "warmup_learning_rate": 1e-3}),
    # the default as of 2026-12-01 (late): umap-anchor-hot-long whose start also
    # trades clusters under half an equal share when the codes' likelihood says so
    # (_init.trade_if_more_likely); the other variants ran without that trade
    "umaptrade-anchor-hot-long": dict(init_params="umap", min_warmup_epochs=25,
                                      trade_share=0.5, **{
        **PAPER_REGIME, "warmup_epochs": "steps", "warmup_learning_rate": 1e-3}),
    "gmm-anchor-paper": dict(init_params="gmm", **{**PAPER_REGIME,
                                                   "warmup_epochs": "steps"}),
    # The warm-up's q(c|x) with 0.1 of its weight spread over all components (the
    # first anchored warm-up; the "-smooth" records ran with it).
    "umap-anchor-smooth-paper": dict(init_params="umap", anchor_smoothing=0.1,
                                     **{**PAPER_REGIME, "warmup_epochs": "steps"}),
    "umap-anchor-smooth-hot": dict(init_params="umap", anchor_smoothing=0.1, **{
        **PAPER_REGIME, "warmup_epochs": "steps", "warmup_learning_rate": 1e-3}),
    "umap-anchor-smooth-strong": dict(init_params="umap", anchor_smoothing=0.1,
                                      warmup_epochs="steps", **STRONG_REGIME),
}


def load(name):
    if name == "usps":
        with np.load(DATA_DIR / "usps.npz") as data:
            return data["X"] / 255.0, data["y"], 10
    if name == "mnist":
        with np.load(DATA_DIR / "mnist.npz") as data:
            return (data["X"] / np.float32(255)).astype(np.float32), data["y"], 10
    X, y, K, _ = load_dataset(name, DATA_DIR)
    return X, y, K


def pretrained(estimator, prep, cache_file):
    """Network, torch generator and numpy RandomState as fit has them after
    pretraining; from the cache when it holds them."""
    rng = local_random_state(estimator.random_state)
    generator = torch_generator(draw_seed(rng), prep.device)
    net = prep.network(generator)
    if cache_file.exists():
        saved = torch.load(cache_file, weights_only=False)
        net.load_state_dict(saved["net"])
        generator.set_state(saved["generator"])
        rng.set_state(saved["rng"])
        return net, generator, rng, saved["seconds"]
    start = time.perf_counter()
    pretrain_autoencoder(net, prep.X_train, prep.config, generator,
                         progress_factory(0))
    seconds = time.perf_counter() - start
    torch.save({"net": net.state_dict(), "generator": generator.get_state(),
                "rng": rng.get_state(), "seconds": seconds}, cache_file)
    return net, generator, rng, seconds


def initialised(net, generator, rng, X_train, config, cache_file):
    """Phase 2 on the pretrained network, as fit runs it; from the cache when it
    holds it (the start depends only on the pretrained network, the random states
    and ``init_params``)."""
    if cache_file.exists():
        saved = torch.load(cache_file, weights_only=False)
        net.load_state_dict(saved["net"])
        generator.set_state(saved["gen"])
        rng.set_state(saved["rng"])
        return net, generator, rng, Partition(*saved["start"]), saved.get("seconds")
    t0 = time.perf_counter()
    start = initialise_mixture(net, X_train, config, rng)
    seconds = time.perf_counter() - t0
    torch.save({"net": net.state_dict(), "gen": generator.get_state(),
                "rng": rng.get_state(), "start": tuple(start), "seconds": seconds},
               cache_file)
    return net, generator, rng, start, seconds


@torch.no_grad()
def gamma_labels(net, X_train, batch_size):
    mu = encode_means(net, X_train, batch_size)
    prior = net.prior
    return _elbo.log_responsibilities(mu, prior.log_pi, prior.mu_c,
                                      prior.log_var_c).argmax(1).cpu().numpy()


def run(name, seed, variant, cache_dir, precision="float32"):
    X, y, K = load(name)
    overrides = dict(VARIANTS[variant])
    min_share = overrides.pop("min_cluster_share", _init.MIN_CLUSTER_SHARE)
    n_neighbors = overrides.pop("umap_n_neighbors", _init.UMAP_N_NEIGHBORS)
    choice = overrides.pop("restart_choice", _init.RESTART_CHOICE)
    trade_share = overrides.pop("trade_share", 0.0)  # see umaptrade-anchor-hot-long
    estimator = sklearn_vade.VaDEClustering(n_clusters=K, random_state=seed,
                                            precision=precision)
    estimator._validate_params()
    prep = estimator._prepare(X, continuing=False)
    # bfloat16 pretraining gives another autoencoder: cached apart
    tag = "" if precision == "float32" else f"-{precision}"
    net, generator, rng, pretrain_seconds = pretrained(
        estimator, prep, cache_dir / f"{name}-{seed}{tag}.pt")
    config = prep.config
    max_epochs = overrides.pop("max_epochs")
    min_warmup = overrides.pop("min_warmup_epochs", 10)
    if overrides.get("warmup_epochs") == "steps":
        steps = -(-prep.X_train.shape[0] // config.batch_size)
        overrides["warmup_epochs"] = max(min_warmup, -(-WARMUP_STEPS // steps))
    max_epochs += overrides.get("warmup_epochs", 0)
    config = config._replace(**overrides)
    start_tag = "-nosplit" if min_share == 0 and config.init_params == "umap" else ""
    if n_neighbors != _init.UMAP_N_NEIGHBORS:
        start_tag += f"-nn{n_neighbors}"
    if choice != _init.RESTART_CHOICE:
        start_tag += f"-{choice}"
    if trade_share and config.init_params == "umap":
        start_tag += f"-trade{trade_share}"
    saved_share, saved_neighbors = _init.MIN_CLUSTER_SHARE, _init.UMAP_N_NEIGHBORS
    saved_choice, saved_trade = _init.RESTART_CHOICE, _init.TRADE_SHARE
    _init.MIN_CLUSTER_SHARE, _init.UMAP_N_NEIGHBORS = min_share, n_neighbors
    _init.RESTART_CHOICE, _init.TRADE_SHARE = choice, trade_share
    try:
        net, generator, rng, start, init_seconds = initialised(
            net, generator, rng, prep.X_train, config,
            cache_dir / f"{name}-{seed}{tag}-{config.init_params}{start_tag}-start.pt")
    finally:
        _init.MIN_CLUSTER_SHARE, _init.UMAP_N_NEIGHBORS = saved_share, saved_neighbors
        _init.RESTART_CHOICE, _init.TRADE_SHARE = saved_choice, saved_trade
    prior_labels = gamma_labels(net, prep.X_train, config.batch_size)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = train_vade(net, prep.X_train, config, generator, progress_factory(0),
                           max_epochs, start.labels)
    train_seconds = time.perf_counter() - t0
    final = gamma_labels(net, prep.X_train, config.batch_size)
    return {
        "dataset": name, "seed": seed,
        "variant": variant if precision == "float32" else f"{variant}+{precision}",
        "precision": precision, "start": start.method,
        "start_acc": score(y, start.labels)["acc"],
        "prior_acc": score(y, prior_labels)["acc"],
        **{f"final_{k}": v for k, v in score(y, final).items()},
        "init_agreement": train.history[-1]["init_agreement"] if train.history
        else None,
        "warmup_agreement": next((h["init_agreement"] for h in
                                  reversed(train.history) if h["warmup"]), None),
        "n_empty": int(K - np.unique(final).size),
        "n_epochs": train.n_epochs,
        "kept_epochs": train.kept_epochs,
        "elbo": train.history[-1]["elbo"] if train.history else None,
        "pretrain_seconds": pretrain_seconds, "init_seconds": init_seconds,
        "train_seconds": train_seconds,
        # timings and float sums differ between CPU kinds (AVX2, AVX-512)
        "cpu": torch.backends.cpu.get_cpu_capability(),
    }


def _seconds(value):
    return "" if value is None else f"{value:.1f}"


def markdown(env, records):
    lines = ["# Ablation: start and joint regime", "",
             "Accuracy (Hungarian) of the initial partition (start), of the Gaussian "
             "prior set from it (prior), after the joint phase (final); agreement = "
             "ARI of the final partition with the start (label-free). Labels only "
             "score.", "",
             environment_line(env), "",
             "| dataset | variant | seeds | start | prior | final | final NMI | "
             "agreement | empty | train s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["variant"]), []).append(r)
    for (name, variant), rows in groups.items():
        def med(key):
            values = [r[key] for r in rows if r[key] is not None]
            return statistics.median(values) if values else float("nan")
        lines.append(
            f"| {name} | {variant} | {len(rows)} | {med('start_acc'):.3f} | "
            f"{med('prior_acc'):.3f} | {med('final_acc'):.3f} | "
            f"{med('final_nmi'):.3f} | {med('init_agreement'):.3f} | "
            f"{max(r['n_empty'] for r in rows)} | {med('train_seconds'):.0f} |")
    lines += ["", "Medians over the seeds; `empty` is the most over the seeds.", "",
              "## Per seed", "",
              "| dataset | variant | seed | start | prior | final | agreement | "
              "empty | epochs | init s | train s |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        agreement = ("" if r["init_agreement"] is None
                     else f"{r['init_agreement']:.3f}")
        lines.append(
            f"| {r['dataset']} | {r['variant']} | {r['seed']} | {r['start_acc']:.3f} |"
            f" {r['prior_acc']:.3f} | {r['final_acc']:.3f} | {agreement} | "
            f"{r['n_empty']} | {r['n_epochs']} | {_seconds(r['init_seconds'])} | "
            f"{r['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def rst(records):
    """The median table as an RST csv-table, for docs/benchmarks.rst to include."""
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["variant"]), []).append(r)
    rows = []
    for (name, variant), group in sorted(groups.items()):
        def med(key):
            values = [r[key] for r in group if r[key] is not None]
            return f"{statistics.median(values):.3f}" if values else ""
        seeds = " ".join(str(r["seed"]) for r in sorted(group, key=lambda r: r["seed"]))
        finals = " ".join(f"{r['final_acc']:.3f}"
                          for r in sorted(group, key=lambda r: r["seed"]))
        rows.append(f'   "{name}", "{variant}", "{seeds}", {med("start_acc")}, '
                    f'{med("prior_acc")}, {med("final_acc")}, "{finals}", '
                    f'{med("init_agreement")}, {max(r["n_empty"] for r in group)}')
    return "\n".join([
        ".. csv-table:: Medians over the seeds (per-seed finals in seed order); "
        "generated by bench_ablation.py",
        '   :header: "data", "variant", "seeds", "start", "prior", "final", '
        '"final per seed", "agreement", "empty"',
        "", *rows]) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS),
                        choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path,
                        default=Path(__file__).resolve().parent / ".cache")
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "bfloat16"],
                        help="VaDEClustering(precision=...); other than float32, "
                             "the variant's name gets '+PRECISION'")
    parser.add_argument("--out", default="ablation")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{args.out}.json"
    records = json.loads(path.read_text())["records"] if path.exists() else []
    env = environment(args.threads)
    for name in args.datasets:
        for seed in args.seeds:
            for variant in args.variants:
                record = run(name, seed, variant, args.cache, args.precision)
                key = (name, seed, record["variant"])
                records = [r for r in records
                           if (r["dataset"], r["seed"], r["variant"]) != key]
                records.append(record)
                print(json.dumps(record), flush=True)
                path.write_text(json.dumps({"environment": env, "records": records},
                                           indent=1))
                (RESULTS_DIR / f"{args.out}.md").write_text(markdown(env, records))
                (RESULTS_DIR / f"{args.out}_table.rst").write_text(rst(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
