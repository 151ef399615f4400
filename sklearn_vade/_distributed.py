"""Data-parallel training: the processes of a ``torch.distributed`` group that fit
one model together, or this process alone.

When :meth:`VaDEClustering.fit` is called inside an initialised process group of
more than one process (e.g. a script launched with ``torchrun``), every process
calls it with the same X and the same parameters. Each global minibatch (the rows
of ``batch_size`` in the epoch's shuffled order, which every process draws from
the same generator) is split into one contiguous share per process; each process
computes the loss and the gradients of its share, and the gradients are summed
across processes, weighted by the shares' sizes, so that every process takes the
step of the whole minibatch. The other statistics that decisions depend on (the
epoch's loss, the mixture weights' EM update, the cluster labels behind the
convergence test, the occupancy of the components) are combined the same way,
and the start of the mixture prior is computed once, by process 0, and
broadcast. Every process therefore ends with the same model.

:class:`Replicas` is that group as the training phases see it; outside a process
group (or in a group of one), :data:`ALONE` does nothing, so a single-process fit
computes exactly what it computed before this module existed.
"""

import hashlib

import numpy as np
import scipy.sparse as sp
import torch


class Replicas:
    """The ``world_size`` processes of a ``torch.distributed`` group (this one has
    ``rank``), as the training phases use them. Create with :func:`replicas`."""

    def __init__(self, rank=0, world_size=1):
        self.rank, self.world_size = rank, world_size

    @property
    def alone(self):
        return self.world_size == 1

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
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_module_(self, module):
        """Every tensor of ``module``'s state set to process 0's, in place."""
        if not self.alone:
            for tensor in module.state_dict().values():
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

    def agree_on_input(self, prepare, params):
        """``prepare()`` (the validation of X and the parameters), checked to agree
        across the processes: returns what it returns.

        Every process of a data-parallel fit must pass the same X and the same
        parameters; a process whose validation fails, or whose X or parameters
        differ from process 0's, would leave the others waiting in a collective
        that never matches (gloo aborts with "Received data size doesn't match
        expected size"). So every process validates, then all exchange what
        they found (an error, or X's rows, features, dtype and a hash of its
        values, and the parameters): a process whose validation failed raises
        its own error, the others a ``ValueError`` that quotes it; on a
        difference every process raises the same ``ValueError`` naming it.
        Alone, ``prepare()`` runs as it is."""
        if self.alone:
            return prepare()
        error, report = None, None
        try:
            prepared = prepare()
            report = input_fingerprint(prepared.X, params)
        except Exception as exc:  # noqa: BLE001 - reported to every process below
            error = exc
        reports = [None] * self.world_size
        torch.distributed.all_gather_object(
            reports, (None if error is None else f"{type(error).__name__}: {error}",
                      report))
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
        differences = input_differences([report for _, report in reports])
        if differences:
            raise ValueError(
                "Data-parallel fit stopped in every process: every process must "
                "pass the same X and the same parameters (each trains on its share "
                "of every global minibatch, drawn from the whole of X), but "
                + "; ".join(differences) + ". Sharded input, each process passing "
                "only its own rows, is not supported: give every process the whole "
                "data, e.g. one numpy.memmap on a shared filesystem (np.load(path, "
                "mmap_mode='r')), from which each process reads only the rows of "
                "its shares.")
        return prepared


# Parameters that may differ between the processes of one fit: random_state is
# process 0's on every process (broadcast), verbose only shapes process 0's output
# and memory is not used in data-parallel training.
_LOCAL_PARAMS = ("random_state", "verbose", "memory")


def input_fingerprint(X, params):
    """What the processes of a data-parallel fit must agree on: X's rows,
    features and dtype, a hash of its values (as validated; a memory-mapped X by
    its block-by-block scan) and the parameters (their reprs)."""
    if hasattr(X, "digest"):  # out-of-core rows (_outofcore.MappedRows)
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
                           if k not in _LOCAL_PARAMS}}


def input_differences(reports):
    """What differs between process 0's fingerprint and the others' (phrases,
    one per kind of difference), from :func:`input_fingerprint`'s reports."""
    first, differences = reports[0], []
    for what in ("rows", "features", "dtype"):
        values = [r[what] for r in reports]
        if any(v != values[0] for v in values):
            differences.append(f"X's {what} differ ({_by_process(values)})")
    if not differences and any(r["values"] != first["values"] for r in reports):
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
