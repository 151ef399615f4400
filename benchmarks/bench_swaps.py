"""A start without rules on cluster sizes, screened: swaps by the neighbourhood graph.

The default ``"umap"`` start (``sklearn_vade._init.manifold_partition``) corrects
the mixture fitted in the UMAP embedding by rules on cluster sizes: a cluster
under a tenth of an equal share is dissolved, one under half of it traded for a
split of the widest cluster when the codes' likelihood rises. On long-tailed data
those rules presume what is not there. This script screens a replacement that
looks at no size, :func:`swap_by_connectivity` (defined here, not in the
package: it was not adopted, see benchmarks/README.md, "Long-tailed data"):
while the embedding's neighbourhood graph ties two clusters more tightly than
the 2-means halves of another cluster, and the codes are more likely after the
swap, the pair is merged and the cluster split.

For each data set and seed, the codes of the autoencoder that ``bench_ablation.py``
pretrained and cached are embedded and clustered exactly as the fit's start does
(the fit's random state after pretraining; UMAP's threads as the fit's), and
recorded: the accuracy of the consensus partition (``raw``), of the default
start (``default``: the size rules), of the likelihood-checked trade alone
(``traded``: clusters under half an equal share traded for a split of the widest
when the codes are more likely, none dissolved unconditionally), of that trade
with the graph's check (``checked``, :func:`graph_checked_trades`), of the swaps
with their gate (``swapped``),
and every swap the graph proposes, made in turn without the gate: how many
times more tightly the pair is tied than the halves (``ratio``; None when the
halves share no link), the change of the codes' classification log-likelihood
(``dll``, nats per sample), the accuracy before and after, and the sizes.
Labels only score.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_swaps.py --datasets digits \
        usps-lt10 --seeds 0 1 2 3 4

Results go to ``results/swaps.json`` and ``results/swaps.md``.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from _common import RESULTS_DIR, environment, environment_line, score
from bench_ablation import load, pretrained
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

import sklearn_vade
from sklearn_vade import _init
from sklearn_vade._engine import encode_means
from sklearn_vade._utils import draw_seed

# The neighbourhood graph of the embedding links each point to its SWAP_NEIGHBORS
# nearest neighbours (a group of fewer points cannot hold together on its own
# links: the graph does not isolate the islands of 20-60 windows that UMAP leaves
# in WISDM), and a swap is made when the merged pair is at least SWAP_MARGIN
# times as tightly tied as the split cluster's halves and the codes are more
# likely after it. Neither alone: UMAP leaves some classes in pieces without a
# link between them (Pendigits: 160 rows of a class apart from its 909 others)
# while two classes can touch, and the likelihood also takes weak swaps (the
# digits: a pair tied 1.5 times as tightly, accuracy 0.875 -> 0.802).
SWAP_NEIGHBORS = 60
SWAP_MARGIN = 2.0


def swap_by_connectivity(points, codes, labels, n_clusters, rng,
                         n_neighbors=SWAP_NEIGHBORS, margin=SWAP_MARGIN):
    """Merge the two clusters the neighbourhood graph ties most tightly together and
    split the one whose halves it ties most loosely, while it says so.

    A mixture with K components in the embedding cuts a large class into pieces
    and merges small classes to make its clusters of comparable size; a
    neighbourhood graph tells the two apart without any assumption on sizes. The
    graph links each point of ``points`` (the embedding) to its ``n_neighbors``
    nearest ones (symmetrised); the tie between two groups of points is the
    number of links between them over the geometric mean of their links in all
    (their volumes). Each round, the most tied pair of clusters is compared
    with the least tied halves of another cluster (each cluster split in two by
    2-means, as bisecting k-means splits): when the pair is at least ``margin``
    times as tightly tied as those halves and the codes are more likely after
    the swap (:func:`classification_log_likelihood`, the Gaussians the prior
    starts from), the pair is merged and the cluster split (K stays K). At
    most K rounds; the first swap refused ends them. A partition whose clusters
    are each held together more tightly than any two of them are tied is
    returned unchanged.
    """
    labels = np.array(labels, copy=True)
    n = len(labels)
    if n_clusters < 3 or n < 4:
        return labels
    graph = neighbour_graph(points, n_neighbors)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    likelihood = _init.classification_log_likelihood(codes, labels, n_clusters)
    halves = {}  # cluster -> (tie of its halves, rows of its second half)
    for _ in range(n_clusters):
        links = _links_between(graph, labels, n_clusters)
        volume = links.sum(axis=1)
        tie = links / np.sqrt(np.maximum(np.outer(volume, volume), 1e-300))
        np.fill_diagonal(tie, -np.inf)
        merged, joined = np.unravel_index(np.argmax(tie), tie.shape)
        for c in range(n_clusters):
            if c not in halves:
                halves[c] = _halves(points, graph, degree, np.flatnonzero(labels == c),
                                    rng, min(n_neighbors, n - 1))
        candidates = [c for c in range(n_clusters) if c not in (merged, joined)]
        split = min(candidates, key=lambda c: halves[c][0])
        split_tie, half = halves[split]
        if split_tie >= tie[merged, joined]:
            break
        swapped = labels.copy()
        swapped[labels == joined] = merged
        swapped[half] = joined
        swapped_likelihood = _init.classification_log_likelihood(codes, swapped,
                                                                 n_clusters)
        if (tie[merged, joined] < margin * split_tie
                or swapped_likelihood <= likelihood):
            break
        labels, likelihood = swapped, swapped_likelihood
        for c in (merged, joined, split):
            halves.pop(c, None)
    return labels


def neighbour_graph(points, n_neighbors):
    """Each point linked to its ``n_neighbors`` nearest (at most n - 1), made
    symmetric (a link both ways counts twice), as a CSR matrix."""
    nearest = NearestNeighbors(n_neighbors=min(n_neighbors, len(points) - 1))
    graph = nearest.fit(points).kneighbors_graph(points, mode="connectivity")
    return (graph + graph.T).tocsr()


def _links_between(graph, labels, n_clusters):
    """(K, K) numbers of the graph's links between (and within) the clusters."""
    one_hot = sp.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)),
                            shape=(len(labels), n_clusters))
    return (one_hot.T @ graph @ one_hot).toarray()


def _halves(points, graph, degree, rows, rng, min_size):
    """The 2-means split of the points ``rows``: (the tie of its halves, the rows
    of the second half); (inf, none) when a half would hold fewer than
    ``min_size`` points (a group the graph cannot hold apart, see
    :func:`swap_by_connectivity`)."""
    if len(rows) < 2 * min_size:
        return np.inf, rows[:0]
    side = KMeans(n_clusters=2, n_init=3,
                  random_state=draw_seed(rng)).fit_predict(points[rows])
    first, second = rows[side == 0], rows[side == 1]
    if min(len(first), len(second)) < min_size:
        return np.inf, rows[:0]
    between = graph[first][:, second].sum()
    return between / np.sqrt(degree[first].sum() * degree[second].sum()), second


def graph_checked_trades(points, codes, labels, n_clusters, rng,
                         candidate_share=0.5, n_neighbors=SWAP_NEIGHBORS):
    """The default's likelihood-checked trade (``_init.trade_if_more_likely``) with
    a second condition: the small cluster must be tied to the cluster its points
    join more tightly than the two halves of the split cluster are tied to each
    other (a style group of a class is; a small class of its own is not)."""
    labels = np.array(labels, copy=True)
    graph = neighbour_graph(points, n_neighbors)
    floor = candidate_share * len(labels) / n_clusters
    tried = set()
    likelihood = _init.classification_log_likelihood(codes, labels, n_clusters)
    for _ in range(n_clusters):
        counts = np.bincount(labels, minlength=n_clusters)
        candidates = [c for c in np.argsort(counts, kind="stable")
                      if counts[c] < floor and c not in tried]
        if not candidates:
            break
        freed = candidates[0]
        tried.add(freed)
        kept = np.flatnonzero((counts > 0) & (np.arange(n_clusters) != freed))
        traded, split = _init.trade(points, labels, freed, kept, rng, floor)
        if not split:
            continue
        members = labels == freed
        joined = np.bincount(traded[members], minlength=n_clusters).argmax()
        links = _links_between(graph, labels, n_clusters)
        volume = links.sum(axis=1)
        pair_tie = links[freed, joined] / np.sqrt(volume[freed] * volume[joined])
        halves = traded == freed  # the split-off half took the freed label
        source = np.bincount(labels[halves], minlength=n_clusters).argmax()
        other = (labels == source) & ~halves
        between = graph[np.flatnonzero(halves)][:, np.flatnonzero(other)].sum()
        degree = np.asarray(graph.sum(axis=1)).ravel()
        split_tie = between / np.sqrt(degree[halves].sum() * degree[other].sum())
        traded_likelihood = _init.classification_log_likelihood(codes, traded,
                                                                n_clusters)
        if traded_likelihood > likelihood and pair_tie > split_tie:
            labels, likelihood = traded, traded_likelihood
    return labels


def codes_of(name, seed, cache_dir):
    X, y, K = load(name)
    cache_file = cache_dir / f"{name}-{seed}.pt"
    if not cache_file.exists():
        raise SystemExit(f"{cache_file} is missing: run bench_ablation.py on "
                         f"{name} seed {seed} first")
    estimator = sklearn_vade.VaDEClustering(n_clusters=K, random_state=seed)
    estimator._validate_params()
    prep = estimator._prepare(X, continuing=False)
    net, _, rng, _ = pretrained(estimator, prep, cache_file)
    codes = encode_means(net, prep.X_train, prep.config.batch_size)
    return codes.double().cpu().numpy(), y, K, rng


def moves(points, codes, labels, n_clusters, rng, y):
    """Every swap the graph proposes, made one after the other (no gate)."""
    n_neighbors = SWAP_NEIGHBORS
    graph = neighbour_graph(points, n_neighbors)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    likelihood = _init.classification_log_likelihood(codes, labels, n_clusters)
    trace = []
    for _ in range(n_clusters):
        links = _links_between(graph, labels, n_clusters)
        volume = links.sum(axis=1)
        tie = links / np.sqrt(np.outer(volume, volume))
        np.fill_diagonal(tie, -np.inf)
        merged, joined = np.unravel_index(np.argmax(tie), tie.shape)
        halves = {c: _halves(points, graph, degree, np.flatnonzero(labels == c),
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
    codes, y, K, rng = codes_of(name, seed, cache_dir)
    embedding = _init.umap_embedding(codes, K, draw_seed(rng))
    raw = _init.consensus_labels(embedding, K, rng)
    state = rng.get_state()
    default = _init.split_instead_of_small(embedding, raw, K, rng,
                                           _init.MIN_CLUSTER_SHARE)
    default = _init.trade_if_more_likely(embedding, codes, default, K, rng,
                                         _init.TRADE_SHARE)
    rng.set_state(state)
    traded = _init.trade_if_more_likely(embedding, codes, raw, K, rng,
                                        _init.TRADE_SHARE)
    rng.set_state(state)
    checked = graph_checked_trades(embedding, codes, raw, K, rng)
    rng.set_state(state)
    swapped = swap_by_connectivity(embedding, codes, raw, K, rng)
    rng.set_state(state)
    return {"dataset": name, "seed": seed, "raw": score(y, raw)["acc"],
            "default": score(y, default)["acc"], "traded": score(y, traded)["acc"],
            "checked": score(y, checked)["acc"],
            "swapped": score(y, swapped)["acc"],
            "moves": moves(embedding, codes, raw, K, rng, y)}


def markdown(env, records):
    lines = ["# The manifold start's swaps", "",
             "Accuracy of the consensus partition (raw), of the default start "
             "(its rules on sizes), of the likelihood-checked trade alone (no "
             "dissolution of small clusters), of that trade checked by the graph "
             "(checked) and of the swaps "
             f"(swapped: ratio >= {SWAP_MARGIN} and likelihood up), then every "
             "swap the graph proposes, made in turn without the gate. Labels only "
             "score.", "", environment_line(env), "",
             "| dataset | seed | raw | default | traded | checked | swapped | moves "
             "(ratio, dll, acc before -> after) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in records:
        steps = "; ".join(
            f"{'no links' if m['ratio'] is None else format(m['ratio'], '.3g')}, "
            f"{m['dll']:+.3f}, {m['acc_before']:.3f} -> {m['acc_after']:.3f}"
            for m in r["moves"]) or "none"
        lines.append(f"| {r['dataset']} | {r['seed']} | {r['raw']:.3f} | "
                     f"{r['default']:.3f} | {r['traded']:.3f} | {r['checked']:.3f} | "
                     f"{r['swapped']:.3f} | "
                     f"{steps} |")
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
