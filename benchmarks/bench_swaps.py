"""The manifold start's swaps, move by move, on cached pretrained codes.

For each data set and seed, the codes (latent means) of the autoencoder that
``bench_ablation.py`` pretrained and cached are embedded by UMAP and clustered by
the most consensual of ten mixtures, as the ``"umap"`` start does (its random
stream: ``RandomState(seed)``, not the fit's, so the partitions differ from the
fits' in places). Then every swap the neighbourhood graph proposes
(``_init.swap_by_connectivity``'s rounds with no gate: the most tied pair of
clusters merged, the cluster with the least tied 2-means halves split, while
the pair is tied more tightly than those halves) is made and recorded: how many
times more tightly the pair is tied than the halves (``ratio``), the change of
the codes' classification log-likelihood (``dll``, nats per sample), the
accuracy before and after, and the sizes involved. Also recorded: the accuracy
of the consensus partition (``raw``) and of the start with its gate
(``swapped``: ratio at least ``SWAP_MARGIN`` and likelihood up). The gate was
chosen from these traces; labels only score.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_swaps.py --datasets pendigits \
        wisdm --seeds 0 1 2

Results go to ``results/swaps.json`` and ``results/swaps.md``. The pretrained
autoencoder must be in the cache (``bench_ablation.py`` makes it).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, environment, environment_line, score
from bench_ablation import load, pretrained

import sklearn_vade
from sklearn_vade import _init
from sklearn_vade._engine import encode_means
from sklearn_vade._utils import draw_seed


def codes_of(name, seed, cache_dir):
    X, y, K = load(name)
    cache_file = cache_dir / f"{name}-{seed}.pt"
    if not cache_file.exists():
        raise SystemExit(f"{cache_file} is missing: run bench_ablation.py on "
                         f"{name} seed {seed} first")
    estimator = sklearn_vade.VaDEClustering(n_clusters=K, random_state=seed)
    estimator._validate_params()
    prep = estimator._prepare(X, continuing=False)
    net, _, _, _ = pretrained(estimator, prep, cache_file)
    codes = encode_means(net, prep.X_train, prep.config.batch_size)
    return codes.double().cpu().numpy(), y, K


def moves(points, codes, labels, n_clusters, rng, y):
    """Every swap the graph proposes, made one after the other (no gate)."""
    n_neighbors = _init.SWAP_NEIGHBORS
    graph = _init.NearestNeighbors(n_neighbors=n_neighbors).fit(points)
    graph = graph.kneighbors_graph(points, mode="connectivity")
    graph = (graph + graph.T).tocsr()
    degree = np.asarray(graph.sum(axis=1)).ravel()
    likelihood = _init.classification_log_likelihood(codes, labels, n_clusters)
    trace = []
    for _ in range(n_clusters):
        links = _init._links_between(graph, labels, n_clusters)
        volume = links.sum(axis=1)
        tie = links / np.sqrt(np.outer(volume, volume))
        np.fill_diagonal(tie, -np.inf)
        merged, joined = np.unravel_index(np.argmax(tie), tie.shape)
        halves = {c: _init._halves(points, graph, degree, np.flatnonzero(labels == c),
                                   rng, n_neighbors)
                  for c in range(n_clusters) if c not in (merged, joined)}
        split = min(halves, key=lambda c: halves[c][0])
        split_tie, half = halves[split]
        if split_tie >= tie[merged, joined]:
            break
        swapped = labels.copy()
        swapped[labels == joined] = merged
        swapped[half] = joined
        swapped_likelihood = _init.classification_log_likelihood(codes, swapped,
                                                                 n_clusters)
        trace.append({
            "ratio": float(tie[merged, joined] / split_tie) if split_tie else None,
            "dll": swapped_likelihood - likelihood,
            "acc_before": score(y, labels)["acc"],
            "acc_after": score(y, swapped)["acc"],
            "pair_sizes": [int((labels == merged).sum()),
                           int((labels == joined).sum())],
            "split_size": int((labels == split).sum()), "half_size": len(half)})
        labels, likelihood = swapped, swapped_likelihood
    return trace


def run(name, seed, cache_dir):
    codes, y, K = codes_of(name, seed, cache_dir)
    rng = np.random.RandomState(seed)
    embedding = _init.umap_embedding(codes, K, draw_seed(rng))
    raw = _init.consensus_labels(embedding, K, rng)
    state = rng.get_state()
    swapped = _init.swap_by_connectivity(embedding, codes, raw, K, rng)
    rng.set_state(state)
    return {"dataset": name, "seed": seed, "raw": score(y, raw)["acc"],
            "swapped": score(y, swapped)["acc"],
            "moves": moves(embedding, codes, raw, K, rng, y)}


def markdown(env, records):
    lines = ["# The manifold start's swaps", "",
             "Accuracy of the consensus partition (raw) and of the start "
             f"(swapped: ratio >= {_init.SWAP_MARGIN} and likelihood up), then every "
             "swap the graph proposes, made in turn without the gate. Labels only "
             "score.", "", environment_line(env), "",
             "| dataset | seed | raw | swapped | moves (ratio, dll, acc before -> "
             "after) |", "|---|---:|---:|---:|---|"]
    for r in records:
        steps = "; ".join(
            f"{'no links' if m['ratio'] is None else format(m['ratio'], '.3g')}, "
            f"{m['dll']:+.3f}, {m['acc_before']:.3f} -> {m['acc_after']:.3f}"
            for m in r["moves"]) or "none"
        lines.append(f"| {r['dataset']} | {r['seed']} | {r['raw']:.3f} | "
                     f"{r['swapped']:.3f} | {steps} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path,
                        default=Path(__file__).resolve().parent / ".cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = RESULTS_DIR / "swaps.json"
    records = json.loads(path.read_text())["records"] if path.exists() else []
    env = environment(args.threads)
    for name in args.datasets:
        for seed in args.seeds:
            record = run(name, seed, args.cache)
            records = [r for r in records if (r["dataset"], r["seed"]) != (name, seed)]
            records.append(record)
            print(json.dumps(record), flush=True)
            path.write_text(json.dumps({"environment": env, "records": records},
                                       indent=1))
            (RESULTS_DIR / "swaps.md").write_text(markdown(env, records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
