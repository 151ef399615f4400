"""Phase 2: the label-free starts of the mixture prior (init_params)."""

import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score, silhouette_samples, silhouette_score

from sklearn_vade import VaDEClustering, _init
from sklearn_vade._init import (
    MANIFOLD_MIN_SAMPLES,
    Partition,
    classification_log_likelihood,
    cluster_moments,
    cluster_silhouettes,
    consensus_labels,
    embedding_partition,
    entropy_merges,
    initial_partition,
    merged_labels,
    merged_partition_labels,
    most_consensual,
    most_probable_component,
    sized_mixture_labels,
    split_instead_of_small,
    trade_if_more_likely,
)


def _rings(n_per_ring, rng):
    """Two concentric rings: not Gaussian clusters but two connected manifolds,
    which a Gaussian mixture splits wrongly and a neighbourhood graph keeps whole."""
    angles = rng.uniform(0, 2 * np.pi, size=2 * n_per_ring)
    radius = np.repeat([1.0, 4.0], n_per_ring) + 0.1 * rng.standard_normal(
        2 * n_per_ring)
    codes = np.c_[radius * np.cos(angles), radius * np.sin(angles)]
    return codes, np.repeat([0, 1], n_per_ring)


def _strip_and_two_small_blobs(rng):
    """A long uniform strip of 2,000 rows and two tight blobs of 60 rows each
    beside it: a three-component mixture cuts the strip in two and puts both
    blobs into one component (its restarts agree on that), while the strip's
    pieces overlap and the blobs overlap nothing."""
    strip = np.c_[rng.uniform(0, 20, 2000), rng.uniform(0, 1, 2000)]
    blobs = [rng.normal([10, 6], 0.3, (60, 2)), rng.normal([10, 16], 0.3, (60, 2))]
    return np.concatenate([strip, *blobs]), np.repeat([0, 1, 2], [2000, 60, 60])


def test_cluster_moments_are_the_clusters_weights_means_and_variances(rng):
    codes = rng.standard_normal((50, 3))
    labels = np.r_[np.zeros(20, int), np.ones(30, int)]
    weights, means, variances = cluster_moments(codes, labels, 2)
    np.testing.assert_allclose(weights, [0.4, 0.6])
    np.testing.assert_allclose(means[1], codes[20:].mean(axis=0))
    np.testing.assert_allclose(variances[0], codes[:20].var(axis=0) + _init.REG_COVAR)


def test_cluster_moments_place_an_empty_cluster_on_data(rng):
    codes = rng.standard_normal((40, 2))
    labels = np.zeros(40, int)
    labels[:3] = 2  # cluster 1 empty, cluster 2 small
    weights, means, variances = cluster_moments(codes, labels, 3)
    assert np.all(np.isfinite(means)) and np.all(variances > 0)
    assert weights.sum() == pytest.approx(1.0) and np.all(weights > 0)
    # the empty component starts on one of the samples, not at a shared centre
    assert np.any(np.all(np.isclose(codes, means[1]), axis=1))


def test_consensus_keeps_the_partition_most_restarts_agree_on(monkeypatch, rng):
    """Of five restarts, three give one partition (up to renaming) and two others;
    the kept one is of the three, wherever they come in the order."""
    base = np.repeat([0, 1, 2], 20)
    odd = np.roll(base, 7)
    scripted = iter([odd, base, (base + 1) % 3, np.roll(base, -5), base[::-1]])

    class Scripted:
        def __init__(self, **kwargs):
            pass

        def fit(self, points):
            self.labels = next(scripted)
            return self

        def predict(self, points):
            return self.labels

        def score(self, points):
            return 0.0

    monkeypatch.setattr(_init, "GaussianMixture", Scripted)
    labels = consensus_labels(rng.standard_normal((60, 2)), 3, rng, n_restarts=5)
    assert adjusted_rand_score(base, labels) == pytest.approx(1.0)


@pytest.mark.parametrize("choice, kept", [("likelihood", 3), ("consensus", 1)])
def test_restart_choice_keeps_the_most_likely_or_the_most_consensual(
        monkeypatch, rng, choice, kept):
    """Of five scripted restarts, the fourth has the highest log-likelihood and
    the second the partition that three restarts share."""
    base = np.repeat([0, 1, 2], 20)
    partitions = [np.roll(base, 7), base, (base + 1) % 3, np.roll(base, -5), base[::-1]]
    scores = iter([-3.0, -2.0, -2.5, -1.0, -4.0])
    scripted = iter(partitions)

    class Scripted:
        def __init__(self, **kwargs):
            pass

        def fit(self, points):
            self.labels, self.log_likelihood = next(scripted), next(scores)
            return self

        def predict(self, points):
            return self.labels

        def score(self, points):
            return self.log_likelihood

    monkeypatch.setattr(_init, "GaussianMixture", Scripted)
    monkeypatch.setattr(_init, "RESTART_CHOICE", choice)
    labels = consensus_labels(rng.standard_normal((60, 2)), 3, rng, n_restarts=5)
    np.testing.assert_array_equal(labels, partitions[kept])


def test_a_small_cluster_is_traded_for_a_split_of_the_widest(rng):
    """Three equal blobs, labelled as two clusters (one merging two blobs) plus a
    handful of outliers: the outliers join their nearest cluster and the merged
    pair is split, recovering the blobs."""
    points, truth = make_blobs(n_samples=600, centers=[[0, 0], [10, 0], [0, 10]],
                               cluster_std=0.5, random_state=0)
    labels = np.where(truth == 2, 1, 0)
    tiny = np.flatnonzero(truth == 0)[:5]  # 5 < 0.1 * 600 / 3
    labels[tiny] = 2
    result = split_instead_of_small(points, labels, 3, rng)
    assert adjusted_rand_score(truth, result) == 1.0
    assert np.bincount(result).min() == 200


def test_a_small_island_is_absorbed_not_split_off_again(rng):
    """Outliers lying apart, labelled as their own tiny cluster, join a cluster;
    the split that would cut them off again is refused, and the two blobs merged
    into one cluster are split instead."""
    points, truth = make_blobs(n_samples=600, centers=[[0, 0], [10, 0], [0, 10]],
                               cluster_std=0.5, random_state=0)
    island = np.random.RandomState(1).normal([60, 60], 0.3, size=(8, 2))
    points = np.vstack([points, island])
    labels = np.r_[np.where(truth == 2, 1, 0), np.full(8, 2)]
    result = split_instead_of_small(points, labels, 3, rng)
    assert np.bincount(result).min() >= 0.1 * len(points) / 3
    assert adjusted_rand_score(truth, result[:600]) == 1.0


def test_partitions_without_small_clusters_are_left_alone(rng):
    points, truth = make_blobs(n_samples=300, centers=3, random_state=1)
    unbalanced = truth.copy()
    unbalanced[np.flatnonzero(truth == 0)[:80]] = 1  # 20 left: twice the floor of 10
    state = rng.get_state()
    np.testing.assert_array_equal(split_instead_of_small(points, unbalanced, 3, rng),
                                  unbalanced)
    # no random number drawn: fits without small clusters are unchanged
    assert rng.get_state()[2] == state[2]
    np.testing.assert_array_equal(rng.get_state()[1], state[1])


def test_classification_log_likelihood_is_the_clusters_gaussians_at_their_codes(rng):
    codes = rng.standard_normal((40, 2))
    labels = np.r_[np.zeros(10, int), np.ones(30, int)]
    weights, means, variances = cluster_moments(codes, labels, 2)
    expected = np.mean([
        np.log(weights[c]) - 0.5 * np.sum(np.log(2 * np.pi * variances[c])
                                          + (x - means[c]) ** 2 / variances[c])
        for x, c in zip(codes, labels)])
    assert classification_log_likelihood(codes, labels, 2) == pytest.approx(expected)


def test_a_style_group_is_traded_when_two_classes_are_merged(rng):
    """Two blobs merged into one cluster while a third blob is cut in two, one
    piece under half an equal share: the codes are more likely once the piece
    rejoins its blob and the merged pair is split, so the trade is kept."""
    points, truth = make_blobs(n_samples=600, centers=[[0, 0], [8, 0], [0, 8]],
                               cluster_std=1.0, random_state=0)
    labels = np.where(truth == 2, 1, 0)
    third = np.flatnonzero(truth == 0)
    piece = third[np.argsort(points[third, 0])[:40]]  # its left edge: 40 < 100
    labels[piece] = 2
    result = trade_if_more_likely(points, points, labels, 3, rng, 0.5)
    assert adjusted_rand_score(truth, result) > 0.98
    assert (classification_log_likelihood(points, result, 3)
            > classification_log_likelihood(points, labels, 3))


def test_a_rare_class_is_not_traded(rng):
    """A small cluster that is a class of its own beside a large one: the trade
    (it joins that class, the other large class is split in two) is possible
    but makes the codes less likely, so the partition is kept as it is."""
    points, truth = make_blobs(n_samples=[300, 300, 90],
                               centers=[[0, 0], [20, 0], [0, 7]], cluster_std=1.0,
                               random_state=0)
    floor = 0.5 * len(points) / 3
    traded, split = _init.trade(points, truth, 2, np.array([0, 1]),
                                np.random.RandomState(0), floor)
    assert split  # the trade exists: only the likelihood refuses it
    assert (classification_log_likelihood(points, traded, 3)
            < classification_log_likelihood(points, truth, 3))
    result = trade_if_more_likely(points, points, truth, 3, rng, 0.5)
    np.testing.assert_array_equal(result, truth)


def test_no_trade_is_tried_without_a_cluster_under_the_candidate_floor(rng):
    points, truth = make_blobs(n_samples=[200, 200, 110],
                               centers=[[0, 0], [8, 0], [0, 8]], random_state=1)
    state = rng.get_state()
    np.testing.assert_array_equal(trade_if_more_likely(points, points, truth, 3, rng,
                                                       0.5), truth)
    assert rng.get_state()[2] == state[2]
    np.testing.assert_array_equal(rng.get_state()[1], state[1])


def test_consensus_recovers_separated_blobs(rng):
    X, y = make_blobs(n_samples=400, centers=4, cluster_std=0.5, random_state=3)
    labels = consensus_labels(X, 4, rng, n_restarts=5)
    assert adjusted_rand_score(y, labels) == pytest.approx(1.0)


def test_manifold_start_follows_the_manifolds(rng):
    codes, y = _rings(200, rng)
    manifold = initial_partition(codes, 2, "umap", np.random.RandomState(0))
    assert manifold.method in ("umap-mixture", "umap-merge")  # the one kept
    assert adjusted_rand_score(y, manifold.labels) > 0.95
    # the prior starts at the moments of the manifold clusters' codes
    inner = manifold.labels == manifold.labels[0]
    np.testing.assert_allclose(manifold.means[manifold.labels[0]],
                               codes[inner].mean(axis=0))
    assert manifold.weights.sum() == pytest.approx(1.0)


def test_manifold_start_falls_back_to_the_mixture_on_small_data(rng):
    codes, _ = _rings(MANIFOLD_MIN_SAMPLES // 2 - 1, rng)
    start = initial_partition(codes, 2, "umap", np.random.RandomState(0))
    assert start.method == "gmm"
    single = initial_partition(codes[:1], 1, "umap", np.random.RandomState(0))
    assert single.method == "gmm" and single.labels.tolist() == [0]


def test_init_params_is_validated_and_reaches_the_start(small_digits, monkeypatch):
    X, _ = small_digits
    seen = []
    original = _init.initial_partition

    def recording(codes, n_clusters, init_params, rng):
        start = original(codes, n_clusters, init_params, rng)
        seen.append((init_params, start.method))
        return start

    monkeypatch.setattr(_init, "initial_partition", recording)
    model = dict(n_clusters=3, hidden_layer_sizes=(16,), latent_dim=2,
                 pretrain_epochs=2, max_epochs=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = [VaDEClustering(init_params=init_params, **model).fit(X)
                  for init_params in ("umap", "gmm", "umap-merge", "umap-mixture")]
    assert seen[1:] == [("gmm", "gmm"), ("umap-merge", "umap-merge"),
                        ("umap-mixture", "umap-mixture")]
    assert seen[0][0] == "umap" and seen[0][1] in ("umap-mixture", "umap-merge")
    # the fitted model says which start ran; a continued fit keeps it
    assert [m.init_method_ for m in fitted] == [method for _, method in seen]
    continued = fitted[2].set_params(warm_start=True, max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert continued.fit(X).init_method_ == "umap-merge"
    with pytest.raises(ValueError, match="init_params"):
        VaDEClustering(init_params="kmeans", **model).fit(X)


def test_importing_umap_says_nothing_about_tensorflow():
    """umap-learn's ImportWarning about its optional TensorFlow part does not reach
    users (a fresh process, where umap is imported for the first time)."""
    import subprocess
    import sys

    code = "from sklearn_vade._init import import_umap; import_umap()"
    result = subprocess.run([sys.executable, "-W", "error::ImportWarning", "-c", code],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr



def test_umaps_compiled_functions_are_cached_on_disk(monkeypatch):
    """Every numba function of umap and pynndescent keeps its machine code on
    disk once imported for the start (a new process then loads it instead of
    compiling for ~9 s); one that numba cannot cache (no source file) is left
    as it was, without an error."""
    import types

    import numba
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    _init.import_umap()
    functions = [f for name, module in list(sys.modules.items())
                 if module is not None and name.split(".")[0] in _init.UMAP_PACKAGES
                 for f in vars(module).values() if isinstance(f, Dispatcher)]
    assert len(functions) > 100
    assert not [f for f in functions if isinstance(f._cache, NullCache)]
    assert _init.cache_compiled_functions(_init.UMAP_PACKAGES) == 0  # done once

    module = types.ModuleType("notcacheable")
    exec("def double(x):\n    return 2 * x", module.__dict__)  # no source file
    module.double = numba.njit(module.double)
    monkeypatch.setitem(sys.modules, "notcacheable", module)
    assert _init.cache_compiled_functions(("notcacheable",)) == 0
    assert isinstance(module.double._cache, NullCache) and module.double(2) == 4


def test_a_cache_that_cannot_be_read_or_written_compiles_as_before(tmp_path,
                                                                   monkeypatch):
    """numba raises an OSError from a cache file it cannot read or write (Linux);
    for the caches turned on by the start that means compiling, not a failed fit."""
    import errno
    import importlib

    (tmp_path / "vade_cachable_module.py").write_text(
        "import numba\n\n\n@numba.njit\ndef triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "vade_cachable_module", raising=False)
    module = importlib.import_module("vade_cachable_module")
    assert _init.cache_compiled_functions(("vade_cachable_module",)) == 1

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module.triple._cache, "_load_overload", full_disk)
    monkeypatch.setattr(module.triple._cache, "_save_overload", full_disk)
    assert module.triple(2) == 6
    assert not list(tmp_path.glob("__pycache__/*.nbi"))  # nothing was written


def test_the_umap_start_leaves_torch_threads_as_it_found_them(monkeypatch):
    """numba's OpenMP layer, under UMAP, sets the runtime torch shares to one thread
    per core; the fit's later phases and the caller keep their own count."""
    codes = np.random.RandomState(0).normal(size=(300, 3))
    before = torch.get_num_threads()
    _init.umap_embedding(codes, 3, 0)
    assert torch.get_num_threads() == before
    umap = _init.import_umap()
    fit_transform = umap.UMAP.fit_transform

    def resetting(self, *args, **kwargs):
        torch.set_num_threads(before + 1)  # what numba did here, 1 -> 2
        return fit_transform(self, *args, **kwargs)

    monkeypatch.setattr(umap.UMAP, "fit_transform", resetting)
    embedding = _init.umap_embedding(codes, 3, 0)
    assert embedding.shape == (300, 3)
    assert torch.get_num_threads() == before


def test_most_probable_component_is_the_weighted_densitys_argmax(rng):
    """Codes beyond the UMAP sample go to the component of highest
    ``w_c N(code | mean_c, diag var_c)``, in batches (scipy's density as reference)."""
    from scipy.stats import multivariate_normal

    weights = np.array([0.6, 0.3, 0.1])
    means = rng.normal(size=(3, 4))
    variances = rng.uniform(0.2, 2.0, size=(3, 4))
    codes = rng.normal(scale=1.5, size=(500, 4))
    start = Partition(np.zeros(3, dtype=int), weights, means, variances, "umap")
    expected = np.argmax(np.column_stack([
        np.log(w) + multivariate_normal(m, np.diag(v)).logpdf(codes)
        for w, m, v in zip(weights, means, variances)]), axis=1)
    assert len(np.unique(expected)) == 3
    np.testing.assert_array_equal(most_probable_component(codes, start, batch_size=64),
                                  expected)


def test_entropy_merges_join_the_components_that_share_rows_whatever_their_size():
    """Components 0 and 1 share many rows (the pieces of one large class); 2 and 3
    are small and share none: into three clusters, 0 and 1 merge and the small
    ones stay apart, although merging them would leave the sizes more equal."""
    posteriors = np.r_[np.tile([[0.6, 0.4, 0, 0]], (500, 1)),
                       np.tile([[0.4, 0.6, 0, 0]], (500, 1)),
                       np.tile([[0, 0, 1.0, 0]], (40, 1)),
                       np.tile([[0, 0, 0, 1.0]], (40, 1))]
    groups = entropy_merges(posteriors, 3)
    assert sorted(sorted(g) for g in groups) == [[0, 1], [2], [3]]


def test_entropy_merges_first_join_a_column_below_the_floor():
    """A column most probable for fewer than ``floor`` rows merges before any
    other pair, with the column it shares most rows with (here 1, not 0)."""
    posteriors = np.r_[np.tile([[0.6, 0.4, 0, 0]], (150, 1)),
                       np.tile([[0.4, 0.6, 0, 0]], (150, 1)),
                       np.tile([[0, 0, 1.0, 0]], (300, 1)),
                       np.tile([[0, 0.2, 0, 0.8]], (10, 1))]
    unfloored = entropy_merges(posteriors, 3)
    assert sorted(sorted(g) for g in unfloored) == [[0, 1], [2], [3]]
    floored = entropy_merges(posteriors, 3, floor=20)
    assert sorted(sorted(g) for g in floored) == [[0], [1, 3], [2]]


def test_merged_labels_cover_every_row_with_the_requested_clusters(rng):
    log_weighted = rng.standard_normal((200, 8)) * 5
    labels = merged_labels(log_weighted, 3, floor=0)
    assert labels.shape == (200,) and set(labels) == {0, 1, 2}
    # rows of one component share a cluster
    component = log_weighted.argmax(axis=1)
    for j in np.unique(component):
        assert len(set(labels[component == j])) == 1


def test_most_consensual_returns_the_agreed_partition_and_the_mean_agreement():
    a, b = np.repeat([0, 1], 50), np.repeat([1, 0], 50)  # the same partition
    c = np.tile([0, 1], 50)  # another
    index, mean = most_consensual([c, a, b])
    assert index == 1
    pairs = [(a, b), (a, c), (b, c)]
    assert mean == pytest.approx(np.mean([adjusted_rand_score(*p) for p in pairs]))


def test_merge_start_keeps_small_separated_classes_that_the_mixture_merges(rng):
    points, truth = _strip_and_two_small_blobs(rng)
    sized = sized_mixture_labels(points, points, 3, np.random.RandomState(0))
    assert adjusted_rand_score(truth, sized) < 0.5  # the strip cut, the blobs merged
    merged = merged_partition_labels(points, 3, np.random.RandomState(0))
    assert adjusted_rand_score(truth, merged) == pytest.approx(1.0)


def test_merge_start_runs_on_the_embedding_of_the_codes(rng):
    codes, y = _rings(200, rng)
    start = initial_partition(codes, 2, "umap-merge", np.random.RandomState(0))
    assert start.method == "umap-merge"
    assert adjusted_rand_score(y, start.labels) > 0.95
    assert start.weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(start.means[start.labels[0]],
                               codes[start.labels == start.labels[0]].mean(axis=0))


def test_the_default_start_keeps_the_better_separated_partition(rng, monkeypatch):
    """"umap" keeps the merge's partition where its clusters' silhouettes are
    higher on average and all positive, else the mixture's, and leaves the
    random state where the kept one's method, run alone, leaves it."""
    points, truth = make_blobs(n_samples=300, centers=3, cluster_std=0.5,
                               random_state=0)
    cut = truth.copy()  # one blob cut in two, two blobs joined
    cut[(truth == 0) & (points[:, 0] > np.median(points[truth == 0, 0]))] = 1
    cut[truth == 2] = 0

    def draw_then(labels, n_draws):
        def method(*args):
            args[-1].randint(10, size=n_draws)  # the rng: the last argument
            return labels
        return method

    for sized, merged, kept in [(truth, cut, "umap-mixture"),
                                (cut, truth, "umap-merge")]:
        monkeypatch.setattr(_init, "sized_mixture_labels", draw_then(sized, 1))
        monkeypatch.setattr(_init, "merged_partition_labels", draw_then(merged, 2))
        state = np.random.RandomState(5)
        labels, ran = embedding_partition(points, points, 3, state)
        assert ran == kept
        np.testing.assert_array_equal(labels, truth)
        alone = np.random.RandomState(5)
        alone.randint(10, size=1 if kept == "umap-mixture" else 2)
        assert state.randint(1 << 30) == alone.randint(1 << 30)
    # a merge better separated, but not by the margin, is not taken
    monkeypatch.setattr(_init, "SILHOUETTE_MARGIN",
                        cluster_silhouettes(points, truth).mean()
                        - cluster_silhouettes(points, cut).mean())
    labels, ran = embedding_partition(points, points, 3, np.random.RandomState(5))
    assert ran == "umap-mixture"
    np.testing.assert_array_equal(labels, cut)
    # each method alone runs only itself
    labels, ran = embedding_partition(points, points, 3, np.random.RandomState(5),
                                      "umap-mixture")
    assert ran == "umap-mixture"
    np.testing.assert_array_equal(labels, cut)


def test_the_default_start_weighs_every_cluster_once(monkeypatch):
    """Head-heavy data: two large groups, each of two lobes, hold most rows,
    four small separated ones the rest. The mixture's partition cuts each large
    group into its lobes and joins the small ones in pairs; its mean silhouette
    over rows is the higher, but over clusters the merge's is, and "umap" keeps
    the merge. A merge with a cluster of negative silhouette is not kept,
    however well separated the others."""
    centres = [[0, 0], [6, 0], [12, 0], [18, 0], [0, 12], [5, 12], [12, 12],
               [17, 12]]
    points, lobes = make_blobs(n_samples=[300] * 4 + [30] * 4, centers=centres,
                               cluster_std=[1.0] * 4 + [0.4] * 4, random_state=0)
    truth = np.array([0, 0, 1, 1, 2, 3, 4, 5])[lobes]
    cut = np.array([0, 1, 2, 3, 4, 4, 5, 5])[lobes]
    assert silhouette_score(points, cut) > silhouette_score(points, truth) + 0.05
    monkeypatch.setattr(_init, "sized_mixture_labels", lambda *args: cut)
    monkeypatch.setattr(_init, "merged_partition_labels", lambda *args: truth)
    labels, ran = embedding_partition(points, points, 6, np.random.RandomState(0))
    assert ran == "umap-merge"
    np.testing.assert_array_equal(labels, truth)
    # a merged cluster that joins two far groups has a negative silhouette
    joined = truth.copy()
    joined[truth == 5] = 2  # the small groups at (0, 12) and (17, 12) together
    joined[lobes == 0] = 5  # and the first large group cut into its lobes
    assert cluster_silhouettes(points, joined).min() < 0
    monkeypatch.setattr(_init, "merged_partition_labels", lambda *args: joined)
    _, ran = embedding_partition(points, points, 6, np.random.RandomState(0))
    assert ran == "umap-mixture"


def test_cluster_silhouettes_are_sklearns_or_those_of_a_fixed_sample():
    points, truth = make_blobs(n_samples=500, centers=3, random_state=1)
    values = silhouette_samples(points, truth)
    np.testing.assert_allclose(cluster_silhouettes(points, truth),
                               [values[truth == c].mean() for c in range(3)])
    # labels with gaps: one value per cluster present, in label order
    np.testing.assert_allclose(cluster_silhouettes(points, 2 * truth + 1),
                               cluster_silhouettes(points, truth))
    sampled = cluster_silhouettes(points, truth, n_rows=200)
    np.testing.assert_array_equal(sampled,
                                  cluster_silhouettes(points, truth, n_rows=200))
    np.testing.assert_allclose(sampled, cluster_silhouettes(points, truth),
                               atol=0.05)
    np.testing.assert_array_equal(cluster_silhouettes(points, np.zeros(500, int)),
                                  [-1.0])
