"""Data-parallel training: the processes of a ``torch.distributed`` group that fit
one model together, or this process alone.

When :meth:`VaDEClustering.fit` is called inside an initialised process group of
more than one process (e.g. a script launched with ``torchrun``), every process
calls it with the same parameters and either the same X (replicated input, the
default) or its own rows of the data (sharded input, ``fit(X, sharded=True)``).

Replicated: each global minibatch (the rows of ``batch_size`` in the epoch's
shuffled order, which every process draws from the same generator) is split into
one contiguous share per process. Sharded: every epoch has the steps of the
union's ``ceil(n_rows / batch_size)`` minibatches, and each process gives every
step an equal part of its own shuffled rows (a process with a third of the rows
gives about a third of each batch), so the processes' parts of a step make one
global minibatch of about ``batch_size`` rows.

Either way each process computes the loss and the gradients of its part, and the
gradients are summed across processes, weighted by the parts' sizes, so that
every process takes the step of the whole minibatch. The other statistics that
decisions depend on (the epoch's loss, the mixture weights' EM update, the
cluster labels behind the convergence test, the occupancy of the components, the
data's size, value range and feature moments, the final bound) are combined the
same way, and the start of the mixture prior is computed once, by process 0
(from every process's codes when sharded), and broadcast. Every process
therefore ends with the same model; with sharded input its ``labels_`` are those
of its own rows.

:class:`Replicas` is that group as the training phases see it; outside a process
group (or in a group of one), :data:`ALONE` does nothing, so a single-process fit
computes exactly what it computed before this module existed.
"""

import contextlib
import hashlib
import math
import pickle
import time

import numpy as np
import scipy.sparse as sp
import torch


class Replicas:
    """The ``world_size`` processes of a ``torch.distributed`` group (this one has
    ``rank``), as the training phases use them. Create with :func:`replicas`.

    ``shard_rows``: with sharded input, the number of rows of each process's X
    (in rank order; the data is their union, process 0's rows first); None when
    every process holds the whole data."""

    def __init__(self, rank=0, world_size=1, shard_rows=None):
        self.rank, self.world_size = rank, world_size
        self.shard_rows = None if shard_rows is None else tuple(shard_rows)

    @property
    def alone(self):
        return self.world_size == 1

    @property
    def sharded(self):
        """Whether each process holds only its own rows of the data."""
        return self.shard_rows is not None

    def n_rows(self, n_local):
        """Rows of the data, this process's X having ``n_local``."""
        return sum(self.shard_rows) if self.sharded else n_local

    @property
    def row_offset(self):
        """Where this process's rows begin in the data (sharded input)."""
        return sum(self.shard_rows[:self.rank]) if self.sharded else 0

    def own_rows(self, n_rows):
        """The rows of this process's X (``n_rows`` of them) that it covers in a
        pass over the data: its share when every process holds them all, else
        all of them."""
        return slice(0, n_rows) if self.sharded else self.share(n_rows)

    @property
    def is_main(self):
        return self.rank == 0

    def share(self, n_rows):
        """This process's contiguous share of a global batch of ``n_rows`` rows,
        as a slice (shares differ in size by at most one row)."""
        if self.alone:
            return slice(0, n_rows)
        return slice(n_rows * self.rank // self.world_size,
                     n_rows * (self.rank + 1) // self.world_size)

    def sum_(self, tensor):
        """Sum ``tensor`` over the processes, in place; returns it."""
        if not self.alone:
            with released(tensor):
                torch.distributed.all_reduce(tensor)
        return tensor

    def mean_rows(self, values):
        """The mean over the rows of the global batch of ``values`` (this
        process's rows, shape (n_local, ...))."""
        if self.alone:
            return values.mean(dim=0)
        total = torch.cat([values.sum(dim=0).reshape(-1),
                           values.new_tensor([len(values)])])
        self.sum_(total)
        return (total[:-1] / total[-1]).reshape(values.shape[1:])

    def sum_over_shards(self, values):
        """The sum over the processes of ``values`` (a numpy array of counts or
        sums over this process's rows) with sharded input; as it is otherwise
        (every process counted over the whole data)."""
        if not self.sharded:
            return values
        values = np.asarray(values)
        total = self.sum_(torch.as_tensor(values, dtype=torch.float64
                                          if values.dtype.kind == "f" else torch.int64))
        return total.numpy().astype(values.dtype, copy=False)

    def mean_over_data(self, values):
        """The mean of ``values`` (one per row of this process's X) over the
        data: over every process's rows with sharded input."""
        if not self.sharded:
            return float(np.mean(values))
        return float(self.sum_over_shards(np.sum(values, dtype=np.float64))
                     / self.n_rows(len(values)))

    def extremes(self, lowest, highest):
        """The smallest ``lowest`` and largest ``highest`` over the processes with
        sharded input (a value range); as they are otherwise."""
        if not self.sharded:
            return lowest, highest
        both = torch.tensor([-lowest, highest], dtype=torch.float64)
        with released(both):
            torch.distributed.all_reduce(both, op=torch.distributed.ReduceOp.MAX)
        return -float(both[0]), float(both[1])

    def pooled_moments(self, mean, variance, n_rows):
        """The mean and (population) variance of the data from each process's
        ``mean`` and ``variance`` over its ``n_rows`` rows (arrays of one value
        per feature), with sharded input; as they are otherwise. Two passes, as
        Chan et al. combine partial moments: the pooled mean first, then the
        within and between sums of squared deviations, so that features far from
        zero relative to their spread keep their variance."""
        if not self.sharded:
            return mean, variance
        mean, variance = np.asarray(mean, np.float64), np.asarray(variance, np.float64)
        n_total = sum(self.shard_rows)
        pooled = self.sum_over_shards(n_rows * mean) / n_total
        squares = self.sum_over_shards(n_rows * (variance + (mean - pooled) ** 2))
        return pooled, squares / n_total

    def gather_rows(self, rows):
        """Every process's ``rows`` (arrays of the same columns), stacked in rank
        order on process 0 (None on the others); with sharded input only."""
        if not self.sharded:
            raise RuntimeError("gather_rows is for sharded input")
        parts = self.gather_objects(rows)
        return np.concatenate(parts) if self.is_main else None

    def shuffling_generator(self, generator):
        """The generator that shuffles this process's rows in an epoch: with
        sharded input, one of its own (seeded from one draw of ``generator``,
        which every process makes alike, and the rank), since the processes'
        row counts differ; else ``generator`` itself."""
        if not self.sharded:
            return generator
        seed = int(torch.randint(2 ** 62, (1,), generator=generator,
                                 device=generator.device))
        own = torch.Generator(device=generator.device)
        own.manual_seed(seed + self.rank)
        return own

    def check_shards(self, batch_size):
        """With sharded input, every process must hold at least one row per step
        of an epoch (``ceil(n_rows / batch_size)`` steps), so that it has a part
        in every minibatch; the same ValueError in every process otherwise."""
        if not self.sharded:
            return
        n_steps = math.ceil(sum(self.shard_rows) / batch_size)
        if min(self.shard_rows) < n_steps:
            raise ValueError(
                f"Data-parallel fit stopped in every process: with sharded input "
                f"every process needs at least one row per step of an epoch "
                f"({n_steps} steps of batch_size={batch_size} over "
                f"{sum(self.shard_rows)} rows), but the processes hold "
                + ", ".join(map(str, self.shard_rows)) + " rows. Give the small "
                "shards more rows, or raise batch_size.")

    def sum_gradients(self, parameters, weight):
        """Replace each parameter's gradient (of this process's mean loss) by the
        sum over processes of ``weight`` times it, ``weight`` being this
        process's share of the global batch: the gradient of the global batch's
        mean loss. Parameters without a gradient (the same on every process: they
        run the same code) are left without."""
        if self.alone:
            return
        parameters = [p for p in parameters if p.grad is not None]
        flat = torch.cat([p.grad.reshape(-1) for p in parameters]) * weight
        self.sum_(flat)
        offset = 0
        for p in parameters:
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p.grad))
            offset += p.numel()

    def broadcast_object(self, obj):
        """Process 0's ``obj`` (any picklable object), on every process."""
        if self.alone:
            return obj
        device = self._device()
        payload = _to_bytes(obj, device) if self.is_main else None
        size = torch.tensor([0 if payload is None else len(payload)],
                            dtype=torch.int64, device=device)
        with released(size):
            torch.distributed.broadcast(size, src=0)
        if payload is None:
            payload = torch.empty(int(size), dtype=torch.uint8, device=device)
        with released(payload):
            torch.distributed.broadcast(payload, src=0)
        return obj if self.is_main else _from_bytes(payload)

    def all_gather_objects(self, obj):
        """Every process's ``obj`` (picklable), in rank order, on every process."""
        if self.alone:
            return [obj]
        sizes, padded = self._padded(obj)
        gathered = [torch.empty_like(padded) for _ in range(self.world_size)]
        with released(padded, *gathered):
            torch.distributed.all_gather(gathered, padded)
        return [_from_bytes(part[:n]) for part, n in zip(gathered, sizes)]

    def gather_objects(self, obj):
        """Every process's ``obj`` (picklable), in rank order, on process 0;
        None on the others."""
        if self.alone:
            return [obj]
        sizes, padded = self._padded(obj)
        gathered = ([torch.empty_like(padded) for _ in range(self.world_size)]
                    if self.is_main else None)
        with released(padded, *(gathered or [])):
            torch.distributed.gather(padded, gathered, dst=0)
        if not self.is_main:
            return None
        return [_from_bytes(part[:n]) for part, n in zip(gathered, sizes)]

    # The object collectives above stand in for torch.distributed's
    # broadcast_object_list, all_gather_object and gather_object, whose tensors
    # are their own: gloo may free those on its thread while the process exits
    # (see released). Here the pickles travel as byte tensors held until gloo
    # has let go of them.

    def _device(self):
        """Where the byte tensors of the object collectives live: the current
        GPU with NCCL, else the CPU."""
        if torch.distributed.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _padded(self, obj):
        """Every process's pickle size (a list of ints, by all-gather) and this
        process's pickle of ``obj`` padded to the longest."""
        device = self._device()
        payload = _to_bytes(obj, device)
        size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
        sizes = [torch.zeros_like(size) for _ in range(self.world_size)]
        with released(size, *sizes):
            torch.distributed.all_gather(sizes, size)
        sizes = [int(n) for n in sizes]
        padded = torch.zeros(max(sizes), dtype=torch.uint8, device=device)
        padded[:len(payload)] = payload
        return sizes, padded

    def broadcast_module_(self, module):
        """Every tensor of ``module``'s state set to process 0's, in place."""
        if not self.alone:
            for tensor in module.state_dict().values():
                with released(tensor):
                    torch.distributed.broadcast(tensor, src=0)

    def merge_labels_(self, labels, mine):
        """``labels`` (one per row of X) made the same on every process: each row
        takes the label of the process whose share held it this epoch (``mine``:
        a boolean mask of this process's rows); rows no process held keep
        their value."""
        if self.alone:
            return labels
        # one all-reduce: row labels + 1 where held (else 0), and the holders
        coded, held = self.sum_(torch.stack([
            torch.where(mine, labels + 1, torch.zeros_like(labels)),
            mine.to(labels.dtype)]))
        labels.copy_(torch.where(held > 0, coded - 1, labels))
        return labels

    def agree_on_input(self, validate, params, sharded=False):
        """``validate()`` (the validation of X, which it returns), checked to agree
        across the processes: returns ``(X, group)``, ``group`` being these
        processes with the rows of each when ``sharded``.

        Every process of a data-parallel fit must pass the same parameters, and
        the same X unless ``sharded`` (then X's features and dtype must agree);
        a process whose validation fails, or whose X or parameters differ from
        process 0's, would leave the others waiting in a collective that never
        matches (gloo aborts with "Received data size doesn't match expected
        size"). So every process validates, then all exchange what they found
        (an error, or X's rows, features, dtype and a hash of its values, the
        parameters and ``sharded``): a process whose validation failed raises its
        own error, the others a ``ValueError`` that quotes it; on a difference
        every process raises the same ``ValueError`` naming it. Alone,
        ``validate()`` runs as it is."""
        if self.alone:
            return validate(), self
        error, report = None, None
        try:
            X = validate()
            report = input_fingerprint(X, params, sharded)
        except Exception as exc:  # noqa: BLE001 - reported to every process below
            error = exc
        reports = self.all_gather_objects(
            (None if error is None else f"{type(error).__name__}: {error}", report))
        failed = [(rank, message) for rank, (message, _) in enumerate(reports)
                  if message is not None]
        if error is not None:
            raise error  # this process's own error, as a single-process fit raises it
        if failed:
            lines = "; ".join(f"process {rank}: {message}" for rank, message in failed)
            raise ValueError(
                f"Data-parallel fit stopped in every process: the input of "
                f"{len(failed)} of {self.world_size} processes failed validation "
                f"({lines}).")
        reports = [report for _, report in reports]
        differences = input_differences(reports)
        if differences and not any(r["sharded"] for r in reports):
            raise ValueError(
                "Data-parallel fit stopped in every process: every process must "
                "pass the same X and the same parameters (each trains on its share "
                "of every global minibatch, drawn from the whole of X), but "
                + "; ".join(differences) + ". If each process passes only its own "
                "rows of the data, say so with fit(X, sharded=True); or give every "
                "process the whole data, e.g. one numpy.memmap on a shared "
                "filesystem (np.load(path, mmap_mode='r')), from which each process "
                "reads only the rows of its shares.")
        if differences:
            raise ValueError(
                "Data-parallel fit stopped in every process: with sharded input "
                "every process passes its own rows, with the same features, dtype "
                "and parameters and fit(X, sharded=True) in every process, but "
                + "; ".join(differences) + ".")
        if sharded:
            return X, Replicas(self.rank, self.world_size,
                               [r["rows"] for r in reports])
        return X, self


# How long a collective's caller waits for gloo to let go of its tensors (seconds):
# a bound that normal runs never reach (they wait microseconds, if at all).
RELEASE_TIMEOUT = 5.0


@contextlib.contextmanager
def released(*tensors):
    """Around one collective on ``tensors``: on leaving (not on an error), wait
    until the backend's worker thread has dropped its references to them (gloo
    only; at most RELEASE_TIMEOUT seconds).

    Gloo runs a collective on a worker thread, which drops its reference to the
    tensors some time after the caller has seen the collective complete. If the
    caller has dropped its own reference by then, the worker frees the Python
    object of the tensor, for which it takes the GIL; while the interpreter is
    shutting down that is fatal ("terminate called without an active
    exception", SIGABRT: a process that ends right after a collective, as a
    script that fits and exits does, or one whose input failed the check of
    :meth:`Replicas.agree_on_input`). Waiting here, while the caller still
    holds the tensors, leaves the last reference, and the freeing, to the
    caller's thread. Other backends (NCCL keeps its work objects for its
    watchdog) are left alone."""
    before = [_use_count(t) for t in tensors]
    yield
    if None in before or torch.distributed.get_backend() != "gloo":
        return
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while (any(_use_count(t) > n for t, n in zip(tensors, before))
           and time.monotonic() < deadline):
        time.sleep(1e-4)  # releases the GIL


def _to_bytes(obj, device):
    """``obj`` pickled, as a uint8 tensor on ``device``."""
    payload = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8)
    return payload.to(device)


def _from_bytes(tensor):
    """The object pickled in the uint8 ``tensor``."""
    return pickle.loads(tensor.cpu().numpy().tobytes())


def _use_count(tensor):
    """The number of references to ``tensor``'s C++ object (None where this torch
    does not tell)."""
    counter = getattr(tensor, "_use_count", None)
    return None if counter is None else counter()


# Parameters that may differ between the processes of one fit: random_state is
# process 0's on every process (broadcast), verbose only shapes process 0's output
# and memory is not used in data-parallel training.
_LOCAL_PARAMS = ("random_state", "verbose", "memory")


def input_fingerprint(X, params, sharded=False):
    """What the processes of a data-parallel fit must agree on: X's rows,
    features and dtype, a hash of its values (as validated; a memory-mapped X by
    its block-by-block scan; not with sharded input, whose values differ), the
    parameters (their reprs) and whether the input is sharded."""
    if sharded:
        digest = None
    elif hasattr(X, "digest"):  # out-of-core rows (_outofcore.MappedRows)
        digest = X.digest()
    else:
        h = hashlib.blake2b(digest_size=16)
        if sp.issparse(X):
            for part in (X.data, X.indices, X.indptr):
                h.update(np.ascontiguousarray(part).data)
        else:
            h.update(np.ascontiguousarray(X).data)
        digest = h.hexdigest()
    return {"rows": int(X.shape[0]), "features": int(X.shape[1]),
            "dtype": str(X.dtype), "values": digest,
            "parameters": {k: repr(v) for k, v in sorted(params.items())
                           if k not in _LOCAL_PARAMS},
            "sharded": bool(sharded)}


def input_differences(reports):
    """What differs between process 0's fingerprint and the others' (phrases,
    one per kind of difference), from :func:`input_fingerprint`'s reports."""
    first, differences = reports[0], []
    sharded = [r.get("sharded", False) for r in reports]
    if any(v != sharded[0] for v in sharded):
        differences.append(f"fit's sharded differs ({_by_process(sharded)})")
    for what in ("features", "dtype") if all(sharded) else ("rows", "features",
                                                             "dtype"):
        values = [r[what] for r in reports]
        if any(v != values[0] for v in values):
            differences.append(f"X's {what} differ ({_by_process(values)})")
    if (not differences and not any(sharded)
            and any(r["values"] != first["values"] for r in reports)):
        others = [rank for rank, r in enumerate(reports)
                  if r["values"] != first["values"]]
        differences.append("X has the same shape but other values in process(es) "
                           + ", ".join(map(str, others)) + " than in process 0")
    for name in sorted({name for r in reports for name in r["parameters"]}):
        values = [r["parameters"].get(name) for r in reports]
        if any(v != values[0] for v in values):
            differences.append(f"parameter {name} differs ({_by_process(values)})")
    return differences


def _by_process(values):
    """``"process 0: a, process 1: b"``."""
    return ", ".join(f"process {rank}: {v}" for rank, v in enumerate(values))


#: This process alone: every method is the identity or does nothing.
ALONE = Replicas()


def replicas():
    """The current ``torch.distributed`` default group as :class:`Replicas`, or
    :data:`ALONE` outside one (or in a group of one process)."""
    distributed = torch.distributed
    if (distributed.is_available() and distributed.is_initialized()
            and distributed.get_world_size() > 1):
        return Replicas(distributed.get_rank(), distributed.get_world_size())
    return ALONE
