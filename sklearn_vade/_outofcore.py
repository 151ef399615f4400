"""Out-of-core data: a ``numpy.memmap`` read a block of rows at a time, never whole.

:class:`MappedRows` wraps the memory-mapped X that ``fit`` was given. Every pass of
fit reads it through this object: one scan for the value range and the per-feature
moments (which also finds non-finite values, naming their rows), the shuffled
minibatches of training, the passes over all rows (encoding, the final E-step).
The pages of the file that a process has read stay in its resident memory until
it unmaps them; after every ``RELEASE_BYTES`` read they are handed back to the
kernel (``madvise(MADV_DONTNEED)``; the kernel's page cache keeps them, so reading
them again is cheap), which bounds the fit's memory whatever the file's size.

The minibatches of an epoch follow an I/O-friendly shuffle: the blocks of
``BLOCK_ROWS`` contiguous rows are taken in a random order, and the rows of each
window of ``WINDOW_BLOCKS`` consecutive blocks are shuffled among themselves, so
that a batch reads a few runs of contiguous rows instead of rows all over the
file. In-memory X keeps its full shuffle.
"""

import hashlib
import math
import mmap

import numpy as np
import torch

from ._utils import iter_batches

# Rows per contiguous block of the shuffle; blocks per window shuffled together.
BLOCK_ROWS = 1024
WINDOW_BLOCKS = 16
# Bytes read from the mapping between two hand-backs of its pages to the kernel
# (counting every page a read may touch).
RELEASE_BYTES = 256 * 2**20
# Rows per block of the scans (value range, moments).
SCAN_ROWS = 8192


def is_mapped(X):
    """Whether X is a memory-mapped array (``numpy.memmap``) read out of core."""
    return isinstance(X, np.memmap)


class MappedRows:
    """Rows of a 2-d ``numpy.memmap``, read as in-memory float arrays.

    ``rows[i:j]`` and ``rows[index]`` return a new float64/float32 array (X's own
    float dtype; integers become float64) and check that it is finite. The
    object has ``shape``, ``dtype``, ``ndim`` and ``len``, so that the passes of a
    fitted model take it where they take an array.
    """

    def __init__(self, X):
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2-d memory-mapped X, got {X.ndim} dimensions.")
        self.X = X
        self.shape, self.ndim = X.shape, 2
        self.dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(
            np.float64)
        self.device = torch.device("cpu")
        self._mmap = getattr(X, "_mmap", None)
        self._unreleased = 0
        self._statistics = None  # see statistics()
        self._digest = None  # see digest()

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, torch.Tensor):
            rows = rows.cpu().numpy()
        if isinstance(rows, slice):
            block = np.array(self.X[rows], dtype=self.dtype)
            where = (rows.start or 0, (rows.start or 0) + len(block) - 1)
        else:
            rows = np.asarray(rows)
            order = np.argsort(rows, kind="stable")
            block = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
            block[order] = self.X[rows[order]]  # read in file order
            where = (int(rows.min()), int(rows.max())) if len(rows) else (0, 0)
        # scattered rows: each may touch its own pages, whatever its size
        pages = len(rows) * (self.X.strides[0] // mmap.PAGESIZE + 2) \
            if not isinstance(rows, slice) else 0
        self._read(max(block.nbytes, pages * mmap.PAGESIZE))
        if not np.isfinite(block).all():
            raise ValueError(self._non_finite_message(*where))
        return block

    def _non_finite_message(self, first, last):
        return (f"Input X contains NaN or infinity in rows {first:,} to {last:,} "
                "of the memory-mapped file. Replace or drop those values (e.g. with "
                "sklearn.impute.SimpleImputer) and fit again.")

    def _read(self, nbytes):
        self._unreleased += nbytes
        if self._unreleased >= RELEASE_BYTES:
            self.release()

    def release(self):
        """Hand the mapping's resident pages back to the kernel."""
        self._unreleased = 0
        if self._mmap is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._mmap.madvise(mmap.MADV_DONTNEED)

    def scan(self):
        """Blocks of rows in file order, each as ``(slice, array)``."""
        for rows in iter_batches(self.shape[0], SCAN_ROWS):
            yield rows, self[rows]

    def digest(self):
        """A hash of X's values (as read), its shape and dtype, from one scan that
        hands its pages back, kept: the key of a cached pretraining (hashing the
        mapping as an array would make the whole file resident)."""
        if self._digest is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(repr((self.shape, str(self.dtype))).encode())
            for _, block in self.scan():
                h.update(np.ascontiguousarray(block).data)
            self.release()
            self._digest = h.hexdigest()
        return self._digest

    def value_range(self):
        """The smallest and largest value of X (see :meth:`statistics`)."""
        return self.statistics()[0]

    def moments(self):
        """Per-feature mean and standard deviation in float64 (see
        :meth:`statistics`)."""
        return self.statistics()[1]

    def statistics(self):
        """``((min, max), (mean, std))`` of X from one scan, kept: the value range
        decides the likelihood and the moments standardise Gaussian data, so one
        pass over the file serves both. The per-feature moments combine the
        blocks' means and sums of squared deviations as Chan et al."""
        if self._statistics is None:
            lo, hi = math.inf, -math.inf
            n, mean = 0, np.zeros(self.shape[1])
            m2 = np.zeros(self.shape[1])
            for _, block in self.scan():
                k = len(block)
                if not k:
                    continue
                lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
                block_mean = block.mean(axis=0, dtype=np.float64)
                block_m2 = ((block - block_mean) ** 2).sum(axis=0, dtype=np.float64)
                delta = block_mean - mean
                mean = mean + delta * (k / (n + k))
                m2 = m2 + block_m2 + delta ** 2 * (n * k / (n + k))
                n += k
            self._statistics = ((lo, hi), (mean, np.sqrt(m2 / max(n, 1))))
        return self._statistics

    def epoch_order(self, generator):
        """A permutation of the rows: blocks in random order, rows shuffled within
        windows of blocks (see the module's docstring)."""
        n = self.shape[0]
        n_blocks = math.ceil(n / BLOCK_ROWS)
        blocks = torch.randperm(n_blocks, generator=generator,
                                device=generator.device).cpu().tolist()
        windows = []
        for first in range(0, n_blocks, WINDOW_BLOCKS):
            part = torch.cat([torch.arange(b * BLOCK_ROWS, min(n, (b + 1) * BLOCK_ROWS))
                              for b in blocks[first:first + WINDOW_BLOCKS]])
            shuffle = torch.randperm(len(part), generator=generator,
                                     device=generator.device).cpu()
            windows.append(part[shuffle])
        rows = torch.cat(windows)
        return rows.to(generator.device)
