"""Phase 2 of fit: the mixture prior's start, from a label-free partition of the codes.

The starts, chosen by ``VaDEClustering(init_params=...)``:

* ``"gmm"`` (the paper's): a diagonal Gaussian mixture fitted on the codes, the most
  likely of several restarts.
* ``"umap-mixture"``: a manifold clustering of the codes, as N2D does (McConville
  et al., 2020): the standardised codes are embedded with UMAP (``n_components`` =
  the number of clusters, ``min_dist`` 0), a full-covariance Gaussian mixture is
  fitted in that embedding several times, and the restart that agrees best with
  the others (highest mean adjusted Rand index) is kept; a cluster far below an
  equal share of the samples is traded for a split of the widest one.
* ``"umap-merge"``: the same embedding over-clustered by mixtures with twice as
  many components, merged back to K by the overlap of their posteriors
  (Baudry et al., 2010), without any rule on cluster sizes.
* ``"umap"`` (the default): both partitions of the embedding, keeping the
  merge's only where its clusters are better separated there (see
  :func:`embedding_partition`).

The prior is then set to the moments of each cluster's codes. Below
``MANIFOLD_MIN_SAMPLES`` samples the embedding has too few neighbours to be
meaningful and the ``"gmm"`` start is used instead; above
``MANIFOLD_MAX_SAMPLES`` the manifold starts run on a random sample of the codes.

Every function here works on numpy arrays and takes its randomness from a numpy
``RandomState``; none of them sees labels.
"""

import sys
import warnings
from typing import NamedTuple

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_samples
from sklearn.mixture import GaussianMixture

from . import _elbo
from ._distributed import ALONE
from ._engine import encode_means
from ._utils import draw_seed, torch_threads_kept

# Restarts of the GaussianMixture fitted on the codes ("gmm": the most likely is
# kept) or in the manifold embedding (the most consensual is kept).
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
# A manifold cluster holding fewer than this fraction of an equal share (n / K) of
# the samples is dissolved and the widest cluster split in its place. The joint
# phase empties such components anyway (20 Newsgroups: clusters of 6-74 posts
# against 942 on average, emptied within the first joint epochs), and the data it
# takes them from are better spent on a cluster that merges two groups.
MIN_CLUSTER_SHARE = 0.1
# A manifold cluster below this fraction of an equal share is traded the same
# way only when the codes are more likely under the traded partition's Gaussians
# (see trade_if_more_likely). On scikit-learn's digits the embedding's mixture
# gave 27 of the 182 "1"s a component of their own while merging 3 and 9 (4
# seeds of 5): the likelihood took the trade on 3 of them; on WISDM it refused
# every candidate, where forcing the trades lowered the start by up to 0.07
# (benchmarks/README.md).
TRADE_SHARE = 0.5
# The "umap-merge" start over-clusters the embedding into MERGE_COMPONENTS times
# K components and merges them back to K by the overlap of their posteriors
# (merged_labels), the most consensual of GMM_N_INIT restarts. The posteriors are
# tempered by MERGE_TEMPERATURE (softmax of the log densities divided by it), so
# that components whose posteriors are almost hard still rank by proximity; a
# merged cluster of fewer than MERGE_FLOOR rows (two of UMAP's neighbourhoods)
# merges first: in the screen (benchmarks/screen_merges.py), clusters that small
# appeared only where the merge went wrong (the digits, Pendigits, WISDM, 20
# Newsgroups: 7-27 rows), while the long-tailed images' smallest clusters kept
# 39 rows or more.
MERGE_COMPONENTS = 2
MERGE_TEMPERATURE = 3.0
MERGE_FLOOR = 2 * UMAP_N_NEIGHBORS
# The "umap" start computes both partitions of the embedding, the mixture's
# ("umap-mixture") and the merged over-clustering ("umap-merge"), and keeps the
# mixture's unless the merge's clusters are better separated there: the
# silhouette (Rousseeuw, 1987) of each cluster, the mean over its rows, averaged
# over the clusters, is higher for the merge by more than SILHOUETTE_MARGIN, and
# every one of the merge's clusters has a positive silhouette (its rows lie, on
# average, nearer their own cluster than the next). The mixture cuts the large
# classes of long-tailed data into touching pieces, the merge joins touching
# classes of balanced data; the wrong one has clusters that touch. Each cluster
# counts once, whatever its size: the mean over rows (the start's earlier rule,
# with a margin of 0.05) is the large classes' verdict, and preferred the
# mixture on the head-heavy sets, where it cut the two classes holding 86% of
# the rows into near-equal pieces and joined the six small ones
# (benchmarks/README.md, "Head-heavy data"). A
# merged cluster with a negative silhouette joins groups that do not belong
# together (long-tailed 20 Newsgroups: the merge's better cluster average came
# with such a cluster, and the lower accuracy). The margin leaves near ties to
# the mixture: where both partitions are nearly the same (USPS) the averages
# differ by less than 0.004, and on one of the digits' fits the merge, 0.04 less
# accurate, was ahead by 0.005; the merges kept on the benchmark sets were ahead
# by 0.014 to 0.2. Over SILHOUETTE_ROWS rows the silhouettes are those of a fixed
# sample of that many (the exact index is quadratic in the rows).
SILHOUETTE_MARGIN = 0.01
SILHOUETTE_ROWS = 6000


class Partition(NamedTuple):
    """A start for the prior: a hard partition of the samples and the mixture
    parameters in code space (weights (K,), means (K, d), variances (K, d))."""

    labels: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    method: str  # what actually ran: "gmm", "umap-mixture" or "umap-merge"


def initialise_mixture(net, X, config, rng, replicas=ALONE):
    """Partition the latent means of X, copy the partition's mixture into the
    prior and narrow the encoder's variances. Returns the :class:`Partition`.

    In data-parallel training (``replicas``), process 0 computes the start (with
    sharded input, from every process's latent means) and every process receives
    it, with the state of process 0's ``rng`` after it; with sharded input the
    partition's labels are then those of the process's own rows."""
    start = None
    if replicas.sharded:
        mu = replicas.gather_rows(
            encode_means(net, X, config.batch_size).double().cpu().numpy())
    elif replicas.is_main:
        mu = encode_means(net, X, config.batch_size).double().cpu().numpy()
    if replicas.is_main:
        start = initial_partition(mu, config.n_clusters, config.init_params, rng)
    if not replicas.alone:
        start, rng_state = replicas.broadcast_object((start, rng.get_state()))
        rng.set_state(rng_state)
    if replicas.sharded:
        first = replicas.row_offset
        start = start._replace(labels=start.labels[first:first + X.shape[0]])
    net.prior.set_parameters(start.weights, start.means, start.variances)
    # q(z|x) starts narrow relative to every component, so that sampled codes do not
    # jump between components before the encoder's variances are learnt.
    with torch.no_grad():
        net.log_var_head.weight.zero_()
        net.log_var_head.bias.copy_(torch.as_tensor(
            np.log(config.init_posterior_var * start.variances.min(axis=0))))
    return start


def initial_partition(codes, n_clusters, init_params, rng):
    """The start chosen by ``init_params`` ("gmm" or one of MANIFOLD_STARTS) on
    ``codes`` (n, d)."""
    codes = np.asarray(codes, dtype=np.float64)
    if len(codes) < 2:  # one sample, one cluster: GaussianMixture needs two samples
        return Partition(np.zeros(len(codes), dtype=np.intp), np.ones(1),
                         codes.copy(), np.ones_like(codes), "gmm")
    if (init_params in MANIFOLD_STARTS and len(codes) >= MANIFOLD_MIN_SAMPLES
            and n_clusters > 1):
        return manifold_partition(codes, n_clusters, rng, init_params)
    return gmm_partition(codes, n_clusters, rng)


# The values of init_params that partition the UMAP embedding of the codes.
MANIFOLD_STARTS = ("umap", "umap-mixture", "umap-merge")


def gmm_partition(codes, n_clusters, rng):
    """Diagonal GaussianMixture on the codes, the most likely of GMM_N_INIT restarts."""
    gmm = GaussianMixture(n_components=n_clusters, covariance_type="diag",
                          n_init=GMM_N_INIT, reg_covar=REG_COVAR,
                          random_state=draw_seed(rng)).fit(codes)
    return Partition(gmm.predict(codes), gmm.weights_, gmm.means_, gmm.covariances_,
                     "gmm")


def manifold_partition(codes, n_clusters, rng, method="umap"):
    """UMAP of the standardised codes, then its partition by ``method`` (see
    :func:`embedding_partition`). The prior from the clusters' codes.

    Beyond MANIFOLD_MAX_SAMPLES codes, the partition of a random sample of them
    is extended to all by the Gaussians of its clusters' codes."""
    if len(codes) > MANIFOLD_MAX_SAMPLES:
        sample = np.sort(rng.choice(len(codes), MANIFOLD_MAX_SAMPLES, replace=False))
        start = manifold_partition(codes[sample], n_clusters, rng, method)
        labels = most_probable_component(codes, start)
        weights, means, variances = cluster_moments(codes, labels, n_clusters)
        return Partition(labels, weights, means, variances, start.method)
    embedding = umap_embedding(codes, n_clusters, draw_seed(rng))
    labels, ran = embedding_partition(embedding, codes, n_clusters, rng, method)
    weights, means, variances = cluster_moments(codes, labels, n_clusters)
    return Partition(labels, weights, means, variances, ran)


def embedding_partition(embedding, codes, n_clusters, rng, method="umap"):
    """The partition of the UMAP embedding of the codes into ``n_clusters``
    clusters, and the method that made it: ``"umap-mixture"``, the most
    consensual mixture with its size rules (:func:`sized_mixture_labels`);
    ``"umap-merge"``, the most consensual merged over-clustering
    (:func:`merged_partition_labels`); ``"umap"``, both, keeping the mixture's
    unless the merge's clusters are better separated: their silhouettes
    (:func:`cluster_silhouettes`) higher on average over the clusters by more
    than SILHOUETTE_MARGIN, and every one positive. Each draws from ``rng`` as
    it would alone, and ``rng`` is left where the kept one left it."""
    if method == "umap-mixture":
        return sized_mixture_labels(embedding, codes, n_clusters, rng), method
    if method == "umap-merge":
        return merged_partition_labels(embedding, n_clusters, rng), method
    merge_rng = np.random.RandomState()
    merge_rng.set_state(rng.get_state())
    sized = sized_mixture_labels(embedding, codes, n_clusters, rng)
    merged = merged_partition_labels(embedding, n_clusters, merge_rng)
    if merge_is_better_separated(embedding, merged, sized):
        rng.set_state(merge_rng.get_state())
        return merged, "umap-merge"
    return sized, "umap-mixture"


def merge_is_better_separated(embedding, merged, sized):
    """Whether the ``"umap"`` start keeps the merge's partition ``merged`` rather
    than the mixture's ``sized``: every merged cluster's silhouette positive and
    their average over the clusters higher than the mixture's by more than
    SILHOUETTE_MARGIN (see :func:`cluster_silhouettes`)."""
    merge_scores = cluster_silhouettes(embedding, merged)
    return bool(merge_scores.min() > 0 and merge_scores.mean()
                > cluster_silhouettes(embedding, sized).mean() + SILHOUETTE_MARGIN)


def cluster_silhouettes(points, labels, n_rows=SILHOUETTE_ROWS):
    """The silhouette of each cluster of the partition ``labels`` of ``points``
    (the mean silhouette of its rows; clusters in label order, those without a
    row left out): over all rows up to ``n_rows``, else over a fixed sample of
    ``n_rows`` of them (the same for every partition of the same points). A
    single cluster gets -1."""
    if len(points) > n_rows:
        rows = np.random.RandomState(0).choice(len(points), n_rows, replace=False)
        points, labels = points[rows], labels[rows]
    clusters, labels = np.unique(labels, return_inverse=True)
    if len(clusters) < 2:
        return np.full(len(clusters), -1.0)
    values = silhouette_samples(points, labels)
    return np.bincount(labels, weights=values) / np.bincount(labels)


def sized_mixture_labels(embedding, codes, n_clusters, rng):
    """The ``"umap-mixture"`` partition of the embedding: the most consensual
    mixture (:func:`consensus_labels`), then the dissolution of clusters under a
    tenth of an equal share and the likelihood-checked trades."""
    labels = consensus_labels(embedding, n_clusters, rng)
    labels = split_instead_of_small(embedding, labels, n_clusters, rng,
                                    MIN_CLUSTER_SHARE)
    return trade_if_more_likely(embedding, codes, labels, n_clusters, rng,
                                TRADE_SHARE)


def merged_partition_labels(embedding, n_clusters, rng, n_restarts=GMM_N_INIT):
    """The ``"umap-merge"`` partition of the embedding: ``n_restarts``
    full-covariance mixtures with MERGE_COMPONENTS * K components, each merged
    back to K clusters (:func:`merged_labels`); the most consensual is kept.

    A mixture with K components cuts a large class into pieces and merges small
    classes when the classes are of very unequal size (MNIST with classes from
    6,000 rows down to 120); merging the components that share rows keeps a
    small, separated class whole and joins the pieces of a large one. On
    balanced data whose classes touch while styles of one class lie apart
    (Pendigits, MNIST's 4 and 9), the merges join classes instead
    (benchmarks/README.md)."""
    runs = [merged_labels(log_weighted, n_clusters) for log_weighted in
            mixture_restarts(embedding, MERGE_COMPONENTS * n_clusters, rng,
                             n_restarts, log_densities=True)]
    return runs[most_consensual(runs)[0]]


def mixture_restarts(points, n_components, rng, n_restarts, log_densities=False):
    """Labels (or, with ``log_densities``, the weighted log densities (n, M)) of
    ``n_restarts`` full-covariance GaussianMixture fits, one init each."""
    runs = []
    for _ in range(n_restarts):
        gmm = GaussianMixture(n_components=n_components, covariance_type="full",
                              reg_covar=1e-6 * max(1.0, float(points.var())),
                              random_state=draw_seed(rng))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning of one restart
            gmm.fit(points)
        runs.append(gmm._estimate_weighted_log_prob(points) if log_densities
                    else gmm.predict(points))
    return runs


def most_consensual(runs):
    """Index of the partition in ``runs`` with the highest mean adjusted Rand
    index against the others, and the mean of that index over all pairs."""
    agreement = np.zeros(len(runs))
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            ari = adjusted_rand_score(runs[i], runs[j])
            agreement[i] += ari
            agreement[j] += ari
    mean = float(agreement.sum() / max(1, len(runs) * (len(runs) - 1)))
    return int(np.argmax(agreement)), mean


def merged_labels(log_weighted, n_clusters, floor=MERGE_FLOOR,
                  temperature=MERGE_TEMPERATURE):
    """Labels of the components of a mixture (``log_weighted``: log w_j N_j(x),
    (n, M)) merged into ``n_clusters`` clusters by :func:`entropy_merges` of the
    posteriors tempered by ``temperature``; each row joins the cluster of its
    most probable component."""
    scaled = log_weighted / temperature
    posteriors = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    posteriors /= posteriors.sum(axis=1, keepdims=True)
    groups = entropy_merges(posteriors, n_clusters, floor)
    cluster_of = np.empty(log_weighted.shape[1], dtype=np.intp)
    for cluster, members in enumerate(groups):
        cluster_of[members] = cluster
    return cluster_of[np.argmax(log_weighted, axis=1)]


def entropy_merges(posteriors, n_clusters, floor=0):
    """Groups of columns of ``posteriors`` (n, M) merged greedily down to
    ``n_clusters``: each time the two columns whose sum lowers the entropy
    ``-sum p log p`` of the posteriors most (Baudry et al., "Combining mixture
    components for clustering", 2010), i.e. the components that share the most
    rows, whatever their sizes. While a merged column is the most probable for
    fewer than ``floor`` rows, the smallest such merges first, with the column
    that lowers the entropy most."""
    T = np.array(posteriors, dtype=np.float64, copy=True)
    sizes = np.bincount(np.argmax(T, axis=1), minlength=T.shape[1])
    groups = [[j] for j in range(T.shape[1])]
    while T.shape[1] > max(1, n_clusters):
        own = _sum_xlogx(T)
        if sizes.min() < floor:
            a = int(np.argmin(sizes))
            gain = _sum_xlogx(T[:, [a]] + T) - own[a] - own
            gain[a] = -np.inf
            b = int(np.argmax(gain))
            a, b = min(a, b), max(a, b)
        else:
            best = (-np.inf, 0, 1)
            for a in range(T.shape[1] - 1):
                gain = _sum_xlogx(T[:, [a]] + T[:, a + 1:]) - own[a] - own[a + 1:]
                b = int(np.argmax(gain))
                if gain[b] > best[0]:  # the first of equal gains
                    best = (gain[b], a, a + 1 + b)
            _, a, b = best
        T[:, a] += T[:, b]
        T = np.delete(T, b, axis=1)
        sizes[a] += sizes[b]
        sizes = np.delete(sizes, b)
        groups[a] += groups.pop(b)
    return groups


def _sum_xlogx(T):
    """Column sums of ``T log T`` (0 where T is 0)."""
    return np.where(T > 0, T * np.log(np.maximum(T, 1e-300)), 0.0).sum(axis=0)


def import_umap():
    """umap-learn, imported when a fit first needs it, without its announcement
    that the optional TensorFlow part is absent, and with numba's on-disk cache
    on for its compiled functions (:func:`cache_compiled_functions`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tensorflow not installed",
                                category=ImportWarning)
        import umap
    cache_compiled_functions(UMAP_PACKAGES)
    return umap


# The packages whose numba functions the start compiles (UMAP and its
# nearest-neighbour search).
UMAP_PACKAGES = ("umap", "pynndescent")


def cache_compiled_functions(packages):
    """Turn on numba's on-disk cache for the jitted functions of the imported
    modules of ``packages`` that do not use it; returns how many.

    numba compiles a function on its first call in a process, and most of UMAP's
    are not cached (pynndescent caches many of its own): the start's first UMAP
    in a process took 13-14 s on the digits-sized data of
    ``benchmarks/README.md`` (2-core AVX-512), of which about 9 s compiling, and
    4 s once compiled. Cached, a new process loads the machine code instead (the
    first UMAP 3.9 s, the same embedding bit for bit): numba keeps it beside the
    package's sources (``__pycache__``), or in its user-wide cache directory
    where that is not writable, and recompiles when the source, numba or the CPU
    changes, as for pynndescent's own cached functions. A function it cannot
    cache stays as it was, and a cache file that cannot be read or written (a
    full disk, a folder made read-only later) means compiling, as before
    (:func:`_quiet_cache`)."""
    try:
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # a numba without these internals: nothing to do
        return 0
    enabled = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for function in list(vars(module).values()):
            if (isinstance(function, Dispatcher)
                    and isinstance(getattr(function, "_cache", None), NullCache)):
                try:
                    function.enable_caching()
                except Exception:  # noqa: BLE001 - no cache locator: compile as before
                    continue
                _quiet_cache(function._cache)
                enabled += 1
    return enabled


def _quiet_cache(cache):
    """Make numba's ``cache`` of one function fail quietly: on Linux its loading
    and saving raise any OSError (numba swallows only Windows' EACCES), which
    would fail the fit where compiling works. A failed load compiles, a failed
    save keeps the code in memory only."""
    load, save = cache.load_overload, cache.save_overload

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception:  # noqa: BLE001 - compile instead
            return None

    def save_overload(sig, data):
        try:
            save(sig, data)
        except Exception:  # noqa: BLE001 - the code stays compiled in memory
            pass

    cache.load_overload, cache.save_overload = load_overload, save_overload


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
    if RESTART_CHOICE == "likelihood":
        runs, log_likelihoods = [], []
        for _ in range(n_restarts):
            gmm = GaussianMixture(n_components=n_clusters, covariance_type="full",
                                  reg_covar=1e-6 * max(1.0, float(points.var())),
                                  random_state=draw_seed(rng))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning of one restart
                runs.append(gmm.fit(points).predict(points))
            log_likelihoods.append(gmm.score(points))
        return runs[int(np.argmax(log_likelihoods))]
    runs = mixture_restarts(points, n_clusters, rng, n_restarts)
    return runs[most_consensual(runs)[0]]


def split_instead_of_small(points, labels, n_clusters, rng,
                           min_share=MIN_CLUSTER_SHARE):
    """Replace clusters smaller than ``min_share * n / K`` samples by halves of
    wide clusters.

    The smallest such cluster is dissolved: each of its points joins the nearest
    centroid among the clusters that are not small. Then the widest of those (the
    largest sum of squared distances to its centroid) is split in two by 2-means,
    as bisecting k-means splits, and one half takes the freed label; a split that
    would leave a half below the floor (e.g. one that cuts off the dissolved
    points again, when they lie apart) is not made, and the next widest is
    tried. At most K times. Partitions without small clusters are returned
    unchanged, without drawing a random number.
    """
    labels = np.array(labels, copy=True)
    floor = min_share * len(labels) / n_clusters
    for _ in range(n_clusters):
        counts = np.bincount(labels, minlength=n_clusters)
        small = np.flatnonzero(counts < floor)
        kept = np.flatnonzero(counts >= floor)
        if len(small) == 0 or len(kept) == 0:
            break
        labels, split = trade(points, labels, small[np.argmin(counts[small])], kept,
                              rng, floor)
        if not split:  # no cluster splits into two halves above the floor
            break
    return labels


def trade(points, labels, freed, kept, rng, floor):
    """``labels`` with cluster ``freed`` dissolved into the nearest of the
    (occupied) clusters ``kept`` and the widest of those split in two by 2-means
    (one half takes label ``freed``); returns the labels and whether a split was
    made (none is when no split leaves both halves at least ``floor`` samples:
    then ``freed`` is left empty). See :func:`split_instead_of_small`."""
    labels = np.array(labels, copy=True)
    centroids = np.stack([points[labels == c].mean(axis=0) for c in kept])
    members = np.flatnonzero(labels == freed)
    if len(members):
        distance = ((points[members, None, :] - centroids[None]) ** 2).sum(-1)
        labels[members] = kept[np.argmin(distance, axis=1)]
    spread = [((points[labels == c] - points[labels == c].mean(axis=0)) ** 2).sum()
              for c in kept]
    for c in kept[np.argsort(spread, kind="stable")[::-1]]:
        rows = np.flatnonzero(labels == c)
        halves = KMeans(n_clusters=2, n_init=3,
                        random_state=draw_seed(rng)).fit_predict(points[rows])
        if min(np.bincount(halves, minlength=2)) >= floor:
            labels[rows[halves == 1]] = freed
            return labels, True
    return labels, False


def trade_if_more_likely(points, codes, labels, n_clusters, rng,
                         candidate_share=TRADE_SHARE):
    """Trade clusters below ``candidate_share * n / K`` samples for splits of wide
    ones (as :func:`split_instead_of_small` does), keeping a trade only when the
    codes are more likely under the traded partition's mixture.

    A manifold clustering sometimes spends a component on a small, tight group
    (a style of one class) while merging two classes that overlap in the
    embedding; other times a small cluster is a class of its own. The prior the
    joint phase starts from decides: a trade is kept when it raises the
    classification log-likelihood of the codes, ``mean_i log w_c(i) N(code_i |
    mean_c(i), diag var_c(i))`` with the clusters' moments (the Gaussians the
    prior is set to), both partitions having K components. Each cluster below
    the candidate floor is tried once, smallest first; both halves of a split
    must reach that floor (else the split would often cut the small group off
    again). Without such clusters nothing changes and no random number is
    drawn.
    """
    labels = np.array(labels, copy=True)
    floor = candidate_share * len(labels) / n_clusters
    tried = set()
    likelihood = classification_log_likelihood(codes, labels, n_clusters)
    for _ in range(n_clusters):
        counts = np.bincount(labels, minlength=n_clusters)
        candidates = [c for c in np.argsort(counts, kind="stable")
                      if counts[c] < floor and c not in tried]
        if not candidates:
            break
        freed = candidates[0]
        tried.add(freed)
        kept = np.flatnonzero((counts > 0) & (np.arange(n_clusters) != freed))
        if len(kept) == 0:
            break
        traded, split = trade(points, labels, freed, kept, rng, floor)
        if not split:
            continue
        traded_likelihood = classification_log_likelihood(codes, traded, n_clusters)
        if traded_likelihood > likelihood:
            labels, likelihood = traded, traded_likelihood
    return labels


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
