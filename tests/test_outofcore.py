"""Out-of-core fit: a numpy.memmap is read a block of rows at a time, its pages are
handed back to the kernel as training goes, and the fit is of the same kind as on
the same data in memory."""

import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from sklearn_vade import VaDEClustering, _init, _outofcore
from sklearn_vade._outofcore import MappedRows

from .conftest import BLOB_MODEL

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

BLOB_FIT = dict(BLOB_MODEL, n_clusters=3, pretrain_epochs=20, max_epochs=20,
                random_state=0)


def memmap_of(X, path):
    """X written to a file and mapped back read-only."""
    written = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    written[:] = X
    written.flush()
    del written
    return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)


def resident_kib(path):
    """Resident memory (kB) of this process's mappings of ``path``, from smaps."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header
                inside = line.rstrip().endswith(str(path))
            elif inside and first == "Rss:":
                total += int(line.split()[1])
    return total


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=600, centers=3, n_features=8, cluster_std=0.5,
                      random_state=2)
    return (X * 10 + 100).astype(np.float32), y  # far from zero: scaled by the scan


def test_memmap_fit_is_of_the_kind_of_the_in_memory_fit(blobs, tmp_path):
    """The memmap's scan finds the same scaling and likelihood as the in-memory
    path, and both fits recover the blobs (the order of the minibatches differs)."""
    X, y = blobs
    mapped = VaDEClustering(**BLOB_FIT).fit(memmap_of(X, tmp_path / "X.dat"))
    in_memory = VaDEClustering(**BLOB_FIT).fit(X)
    assert mapped.likelihood_ == in_memory.likelihood_ == "gaussian"
    np.testing.assert_allclose(mapped._x_offset, in_memory._x_offset, rtol=1e-12)
    np.testing.assert_allclose(mapped._x_scale, in_memory._x_scale, rtol=1e-9)
    assert mapped.n_features_in_ == X.shape[1]
    assert adjusted_rand_score(y, mapped.labels_) > 0.95
    assert adjusted_rand_score(y, in_memory.labels_) > 0.95
    np.testing.assert_array_equal(mapped.predict(X), mapped.labels_)


def test_range_and_moments_of_blocks_match_numpy(monkeypatch, tmp_path):
    """One scan gives the value range and the per-feature mean and standard
    deviation, combined over blocks, equal to numpy's over the whole array, also
    for features far from zero."""
    monkeypatch.setattr(_outofcore, "SCAN_ROWS", 7)  # many uneven blocks
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 4)) * [1, 1e-3, 10, 1] + [0, 1e6, -5, 3]
    rows = MappedRows(memmap_of(X, tmp_path / "X.dat"))
    scans = []
    scan = rows.scan
    monkeypatch.setattr(rows, "scan", lambda: scans.append(1) or scan())
    assert rows.value_range() == (X.min(), X.max())
    mean, std = rows.moments()
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, X.std(axis=0), rtol=1e-6)
    assert len(scans) == 1  # the range and the moments come from one pass


def test_epoch_order_shuffles_whole_blocks_within_windows(monkeypatch, tmp_path):
    """Each epoch's order is a permutation of the rows; each window of the order
    holds whole blocks of contiguous rows, and the order changes between epochs."""
    monkeypatch.setattr(_outofcore, "BLOCK_ROWS", 10)
    monkeypatch.setattr(_outofcore, "WINDOW_BLOCKS", 3)
    rows = MappedRows(memmap_of(np.zeros((95, 2), np.float32), tmp_path / "X.dat"))
    generator = torch.Generator().manual_seed(0)
    first, second = rows.epoch_order(generator), rows.epoch_order(generator)
    for order in (first, second):
        assert sorted(order.tolist()) == list(range(95))
        # windows of three whole blocks (block 9 holds rows 90-94 only, wherever
        # it falls), then the one block left
        size = {b: min(10, 95 - 10 * b) for b in range(10)}
        seen, count = set(), 0
        for row in order.tolist():
            seen.add(row // 10)
            count += 1
            assert len(seen) <= 3
            if len(seen) == 3 and count == sum(size[b] for b in seen):
                seen, count = set(), 0
        assert len(seen) == 1 and count == sum(size[b] for b in seen)
    assert not torch.equal(first, second)
    window = first[:30].numpy()
    assert not np.all(np.diff(window) == 1)  # shuffled within the window


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="reads /proc/self/smaps")
def test_memmap_fit_keeps_little_of_the_file_resident(blobs, monkeypatch, tmp_path):
    """Fit never holds much of the mapped file in memory: with pages handed back
    after every 64 kB read, the file's resident part stays a small fraction of it
    through the scans, the training batches and the passes over all rows."""
    X, _ = blobs
    X = np.tile(X, (40, 1)).astype(np.float32)  # 24,000 x 8: 750 kB
    path = tmp_path / "X.dat"
    mapped = memmap_of(X, path)
    monkeypatch.setattr(_outofcore, "RELEASE_BYTES", 64 * 1024)
    monkeypatch.setattr(_outofcore, "SCAN_ROWS", 512)
    # a window of the shuffle: 4 blocks of 64 rows, 8 kB, at most 8 pages
    monkeypatch.setattr(_outofcore, "BLOCK_ROWS", 64)
    monkeypatch.setattr(_outofcore, "WINDOW_BLOCKS", 4)
    resident = []
    read = MappedRows.__getitem__

    def recording(self, rows):
        block = read(self, rows)
        resident.append(resident_kib(path))
        return block

    monkeypatch.setattr(MappedRows, "__getitem__", recording)
    VaDEClustering(**dict(BLOB_FIT, pretrain_epochs=2, max_epochs=2,
                          batch_size=256)).fit(mapped)
    assert len(resident) > 100  # the scans, the batches and the passes all read
    assert X.nbytes // 1024 >= 700
    # the release threshold plus the largest read (a window's 8 pages, a scan
    # block of 16 kB, an inference batch of 32 kB) and the pages the kernel maps
    # around a fault (64 kB by default)
    assert max(resident) <= 176, str(resident)


def test_non_finite_value_names_its_rows_and_leaves_the_estimator(blobs, tmp_path):
    """A NaN in the memmap is met by the first scan; the error names the block of
    rows that holds it, and a fitted estimator is left as it was."""
    X, _ = blobs
    est = VaDEClustering(**BLOB_FIT).fit(X)
    labels, means = est.labels_.copy(), est.means_.copy()
    bad = X.copy()
    bad[345, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity in rows 0 to 599"):
        est.fit(memmap_of(bad, tmp_path / "X.dat"))
    np.testing.assert_array_equal(est.labels_, labels)
    np.testing.assert_array_equal(est.means_, means)


def test_non_finite_value_in_a_training_batch_is_refused(tmp_path):
    """Every block read is checked, not only by the scans: a batch of rows holding
    an infinity raises, naming the rows it was read from."""
    X = np.ones((50, 3), np.float32)
    X[17, 1] = np.inf
    rows = MappedRows(memmap_of(X, tmp_path / "X.dat"))
    np.testing.assert_array_equal(rows[np.array([3, 1, 40])], X[[3, 1, 40]])
    with pytest.raises(ValueError, match="rows 2 to 17 of the memory-mapped"):
        rows[np.array([2, 17, 5])]


def test_manifold_start_on_a_sample_labels_every_code(monkeypatch):
    """Beyond MANIFOLD_MAX_SAMPLES codes, the start embeds a sample and extends its
    clusters to every code through their Gaussians."""
    pytest.importorskip("umap")
    monkeypatch.setattr(_init, "MANIFOLD_MAX_SAMPLES", 300)
    codes, y = make_blobs(n_samples=1500, centers=4, n_features=5, cluster_std=0.5,
                          random_state=0)
    start = _init.manifold_partition(codes, 4, np.random.RandomState(0))
    assert start.labels.shape == (1500,)
    assert adjusted_rand_score(y, start.labels) > 0.99
    np.testing.assert_allclose(start.weights, np.bincount(start.labels) / 1500)
