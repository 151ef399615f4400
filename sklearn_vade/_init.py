"""Phase 2 of fit: the mixture prior's start, from a label-free partition of the codes.

Two starts, chosen by ``VaDEClustering(init_params=...)``:

* ``"gmm"`` (the paper's): a diagonal Gaussian mixture fitted on the codes, the most
  likely of several restarts.
* ``"umap"``: a manifold clustering of the codes, as N2D does (McConville et al.,
  2020): the standardised codes are embedded with UMAP (``n_components`` = the number
  of clusters, ``min_dist`` 0), a full-covariance Gaussian mixture is fitted in that
  embedding several times, and the restart that agrees best with the others
  (highest mean adjusted Rand index) is kept; then, while the embedding's
  neighbourhood graph ties two clusters together more tightly than the two halves
  of some other cluster hold to each other, the two are merged and that cluster
  split, when the codes are also more likely after it (see
  :func:`swap_by_connectivity`: no cluster size enters). The prior is then set to
  the moments of each cluster's codes. Below ``MANIFOLD_MIN_SAMPLES`` samples the
  embedding has too few neighbours to be meaningful and the ``"gmm"`` start is
  used instead; above ``MANIFOLD_MAX_SAMPLES`` it runs on a random sample of the
  codes.

Every function here works on numpy arrays and takes its randomness from a numpy
``RandomState``; none of them sees labels.
"""

import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors

from . import _elbo
from ._distributed import ALONE
from ._engine import encode_means
from ._utils import draw_seed, torch_threads_kept

# Restarts of the GaussianMixture fitted on the codes ("gmm": the most likely is
# kept) or in the manifold embedding ("umap": the most consensual is kept).
GMM_N_INIT = 10
# UMAP's neighbourhood size and the fewest samples for which the manifold start is
# used (below it: the "gmm" start). N2D uses 10-20 neighbours on MNIST.
UMAP_N_NEIGHBORS = 15
MANIFOLD_MIN_SAMPLES = 200
# The most codes the manifold start embeds: beyond them (e.g. out-of-core data) it
# runs on a random sample of this size and every code joins the most probable
# component of the sample's clusters' Gaussians (UMAP takes 1-2 minutes on
# 70,000 codes here and grows faster than linearly).
MANIFOLD_MAX_SAMPLES = 100_000
# Variance added to every component's code variance (the codes have unit overall
# standard deviation after pretraining), as GaussianMixture's reg_covar.
REG_COVAR = 1e-4
# Which restart of the mixture in the embedding the manifold start keeps: the most
# consensual ("consensus") or the most likely ("likelihood"); see consensus_labels.
RESTART_CHOICE = "consensus"
# The swaps of the manifold start (swap_by_connectivity): the neighbourhood graph
# of the embedding links each point to its SWAP_NEIGHBORS nearest neighbours (a
# group of fewer points cannot be held together by its own links alone: the
# graph does not isolate the small islands UMAP leaves, of 20-60 of WISDM's
# activity windows), and a swap is made when the merged pair is at least
# SWAP_MARGIN times as tightly linked as the split cluster's halves and the codes
# are more likely after it. The graph alone is not enough: UMAP leaves a class in
# pieces without links between them (Pendigits: a class's 160 rows apart from
# its 909 others), while two classes can touch; the likelihood alone would take
# weak swaps (the digits: a pair tied 1.5 times as tightly, accuracy 0.875 ->
# 0.802; benchmarks/README.md). They replaced, on
# 2026-12-07, rules on cluster sizes: clusters under a tenth of an equal share
# were dissolved, those under half of one traded when the likelihood said so;
# on long-tailed data they cut large classes and merged small ones
# (benchmarks/README.md, "Long-tailed data").
SWAP_NEIGHBORS = 60
SWAP_MARGIN = 2.0


class Partition(NamedTuple):
    """A start for the prior: a hard partition of the samples and the mixture
    parameters in code space (weights (K,), means (K, d), variances (K, d))."""

    labels: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    method: str  # what actually ran: "gmm" or "umap"


def initialise_mixture(net, X, config, rng, replicas=ALONE):
    """Partition the latent means of X, copy the partition's mixture into the
    prior and narrow the encoder's variances. Returns the :class:`Partition`.

    In data-parallel training (``replicas``), process 0 computes the start and
    every process receives it, with the state of process 0's ``rng`` after it."""
    start = None
    if replicas.is_main:
        mu = encode_means(net, X, config.batch_size).double().cpu().numpy()
        start = initial_partition(mu, config.n_clusters, config.init_params, rng)
    if not replicas.alone:
        start, rng_state = replicas.broadcast_object((start, rng.get_state()))
        rng.set_state(rng_state)
    net.prior.set_parameters(start.weights, start.means, start.variances)
    # q(z|x) starts narrow relative to every component, so that sampled codes do not
    # jump between components before the encoder's variances are learnt.
    with torch.no_grad():
        net.log_var_head.weight.zero_()
        net.log_var_head.bias.copy_(torch.as_tensor(
            np.log(config.init_posterior_var * start.variances.min(axis=0))))
    return start


def initial_partition(codes, n_clusters, init_params, rng):
    """The start chosen by ``init_params`` ("gmm" or "umap") on ``codes`` (n, d)."""
    codes = np.asarray(codes, dtype=np.float64)
    if len(codes) < 2:  # one sample, one cluster: GaussianMixture needs two samples
        return Partition(np.zeros(len(codes), dtype=np.intp), np.ones(1),
                         codes.copy(), np.ones_like(codes), "gmm")
    if init_params == "umap" and len(codes) >= MANIFOLD_MIN_SAMPLES and n_clusters > 1:
        return manifold_partition(codes, n_clusters, rng)
    return gmm_partition(codes, n_clusters, rng)


def gmm_partition(codes, n_clusters, rng):
    """Diagonal GaussianMixture on the codes, the most likely of GMM_N_INIT restarts."""
    gmm = GaussianMixture(n_components=n_clusters, covariance_type="diag",
                          n_init=GMM_N_INIT, reg_covar=REG_COVAR,
                          random_state=draw_seed(rng)).fit(codes)
    return Partition(gmm.predict(codes), gmm.weights_, gmm.means_, gmm.covariances_,
                     "gmm")


def manifold_partition(codes, n_clusters, rng):
    """UMAP of the standardised codes, then the most consensual of GMM_N_INIT
    full-covariance mixtures in the embedding, corrected by the embedding's
    neighbourhood graph (:func:`swap_by_connectivity`); the prior from the
    clusters' codes.

    Beyond MANIFOLD_MAX_SAMPLES codes, the partition of a random sample of them
    is extended to all by the Gaussians of its clusters' codes."""
    if len(codes) > MANIFOLD_MAX_SAMPLES:
        sample = np.sort(rng.choice(len(codes), MANIFOLD_MAX_SAMPLES, replace=False))
        start = manifold_partition(codes[sample], n_clusters, rng)
        labels = most_probable_component(codes, start)
        weights, means, variances = cluster_moments(codes, labels, n_clusters)
        return Partition(labels, weights, means, variances, "umap")
    embedding = umap_embedding(codes, n_clusters, draw_seed(rng))
    labels = consensus_labels(embedding, n_clusters, rng)
    labels = swap_by_connectivity(embedding, codes, labels, n_clusters, rng)
    weights, means, variances = cluster_moments(codes, labels, n_clusters)
    return Partition(labels, weights, means, variances, "umap")


def import_umap():
    """umap-learn, imported when a fit first needs it (numba compiles it on first
    use), without its announcement that the optional TensorFlow part is absent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tensorflow not installed",
                                category=ImportWarning)
        import umap
    return umap


def umap_embedding(codes, n_components, seed):
    """UMAP (``min_dist`` 0, euclidean) of the codes standardised per dimension."""
    umap = import_umap()

    spread = codes.std(axis=0)
    scaled = (codes - codes.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    reducer = umap.UMAP(n_components=n_components,
                        n_neighbors=min(UMAP_N_NEIGHBORS, len(codes) - 1),
                        min_dist=0.0, random_state=seed)
    with warnings.catch_warnings(), torch_threads_kept():
        # a fixed random_state makes UMAP single-threaded, and it says so
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return reducer.fit_transform(scaled).astype(np.float64)


def consensus_labels(points, n_clusters, rng, n_restarts=GMM_N_INIT):
    """Labels of one of ``n_restarts`` full-covariance GaussianMixture fits (one
    init each): by ``RESTART_CHOICE``, the restart with the
    highest mean adjusted Rand index against the other restarts
    (``"consensus"``) or the one with the highest mean log-likelihood
    (``"likelihood"``).

    In the codes, the likelihood of a restart tracked its quality poorly
    (restarts whose bounds differ by hundredths of a nat split the data
    differently); the partition that most restarts agree on is the stable one.
    """
    by_likelihood = RESTART_CHOICE == "likelihood"
    runs, log_likelihoods = [], []
    for _ in range(n_restarts):
        gmm = GaussianMixture(n_components=n_clusters, covariance_type="full",
                              reg_covar=1e-6 * max(1.0, float(points.var())),
                              random_state=draw_seed(rng))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning of one restart
            runs.append(gmm.fit(points).predict(points))
        if by_likelihood:
            log_likelihoods.append(gmm.score(points))
    if n_restarts == 1:
        return runs[0]
    if by_likelihood:
        return runs[int(np.argmax(log_likelihoods))]
    agreement = np.zeros(n_restarts)
    for i in range(n_restarts):
        for j in range(i + 1, n_restarts):
            ari = adjusted_rand_score(runs[i], runs[j])
            agreement[i] += ari
            agreement[j] += ari
    return runs[int(np.argmax(agreement))]


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
    nearest = NearestNeighbors(n_neighbors=min(n_neighbors, n - 1)).fit(points)
    graph = nearest.kneighbors_graph(points, mode="connectivity")
    graph = (graph + graph.T).tocsr()
    degree = np.asarray(graph.sum(axis=1)).ravel()
    likelihood = classification_log_likelihood(codes, labels, n_clusters)
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
        swapped_likelihood = classification_log_likelihood(codes, swapped, n_clusters)
        if (tie[merged, joined] < margin * split_tie
                or swapped_likelihood <= likelihood):
            break
        labels, likelihood = swapped, swapped_likelihood
        for c in (merged, joined, split):
            halves.pop(c, None)
    return labels


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


def classification_log_likelihood(codes, labels, n_clusters):
    """Mean over the codes of ``log w_c + log N(code | mean_c, diag var_c)`` for
    each code's own cluster c, with the clusters' weights and moments
    (:func:`cluster_moments`)."""
    weights, means, variances = cluster_moments(codes, labels, n_clusters)
    log_density = _log_normal_diag(codes, means[labels], variances[labels])
    return float(np.mean(log_density + np.log(weights[labels])))


def _log_normal_diag(x, mean, var):
    """:func:`._elbo.log_normal_diag` on float64 numpy arrays (variances, not their
    logs): the density of both the trade's criterion and the assignment of codes
    to the start's components."""
    as_tensor = torch.from_numpy
    return _elbo.log_normal_diag(as_tensor(np.asarray(x, dtype=np.float64)),
                                 as_tensor(np.asarray(mean, dtype=np.float64)),
                                 torch.log(as_tensor(np.asarray(var, dtype=np.float64)))
                                 ).numpy()


def most_probable_component(codes, start, batch_size=65536):
    """argmax over components of ``log w_c + log N(code | mean_c, diag var_c)``
    for each code, under the mixture of a :class:`Partition`."""
    log_weights = np.log(start.weights)
    labels = np.empty(len(codes), dtype=np.intp)
    for begin in range(0, len(codes), batch_size):
        batch = codes[begin:begin + batch_size]
        labels[begin:begin + batch_size] = np.argmax(
            log_weights + _log_normal_diag(batch[:, None, :], start.means[None],
                                           start.variances[None]), axis=1)
    return labels


def cluster_moments(codes, labels, n_clusters):
    """Weights, means and diagonal variances of the codes of each cluster.

    A cluster with fewer than two samples gets the overall variance and, when it
    has none, the code farthest from its assigned component's mean as its centre
    (so that every component starts where some data is).
    """
    n, d = codes.shape
    counts = np.bincount(labels, minlength=n_clusters).astype(np.float64)
    means = np.empty((n_clusters, d))
    variances = np.empty((n_clusters, d))
    overall = codes.var(axis=0) + REG_COVAR
    for c in range(n_clusters):
        members = codes[labels == c]
        if len(members) >= 2:
            means[c] = members.mean(axis=0)
            variances[c] = members.var(axis=0) + REG_COVAR
        else:
            means[c] = members[0] if len(members) else 0.0  # empty: set below
            variances[c] = overall
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        # every sample's own cluster is occupied, so its mean is set
        distance = np.sum((codes - means[labels]) ** 2, axis=1)
        far = np.argsort(-distance, kind="stable")[:len(empty)]
        means[empty] = codes[far]
    weights = np.maximum(counts, 1.0)
    return weights / weights.sum(), means, variances
