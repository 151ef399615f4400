"""The epoch engine shared by the training phases: shuffled minibatches, the
learning-rate schedule, snapshots, rollback of diverged epochs and Ctrl-C.

A phase gives :func:`run_epochs` a ``step`` function (one optimiser step on a batch,
returning its loss) and optional callbacks at the end of an epoch and after a
rollback; the engine knows nothing of autoencoders or ELBOs.
"""

import copy
import math
from typing import NamedTuple

import torch

from ._distributed import ALONE
from ._utils import iter_batches


def make_optimizer(params, learning_rate):
    return torch.optim.Adam(params, lr=learning_rate, fused=True)


# Times an epoch may be rolled back (each time with half the learning rate) after
# its loss or the parameters became non-finite, before fit gives up.
MAX_RECOVERIES = 10
# Optimizer steps between snapshots of the model (taken at epoch ends): a copy of
# the parameters and Adam's moments costs about as much as one step.
SNAPSHOT_STEPS = 20
# See _diverged.
DIVERGENCE_FACTOR = 100.0


class EpochsResult(NamedTuple):
    """What a phase of training did.

    ``losses``: mean loss of each completed epoch. ``interrupted``: a
    KeyboardInterrupt stopped the phase (the modules hold the state of the last
    completed epoch). ``recoveries``: epochs rolled back after a non-finite loss.
    """

    losses: list
    interrupted: bool
    recoveries: int


class Part(NamedTuple):
    """Which rows of a global batch of ``n_batch`` rows a step is given: the
    slice ``rows`` (all of them, but in data-parallel training)."""

    rows: slice
    n_batch: int

    @property
    def weight(self):
        """The share of the batch: the factor of this step's gradient in the
        batch's."""
        return (self.rows.stop - self.rows.start) / self.n_batch


class TrainingDivergedError(FloatingPointError):
    """Training kept producing non-finite values although the step was lowered."""


def epoch_batches(order, batch_size, replicas=ALONE):
    """The steps of an epoch: ``(idx, part)`` for each minibatch, ``idx`` the
    rows of this process's X that it computes (from ``order``, its shuffle of
    them) and ``part`` (a :class:`Part`) where they lie in the global batch.

    Alone or with replicated input, ``order`` shuffles the whole data alike in
    every process: batches of ``batch_size`` rows in turn, each split into the
    processes' shares (a batch with fewer rows than processes is skipped). With
    sharded input, each process's ``order`` shuffles its own rows: the epoch has
    ``ceil(n_rows / batch_size)`` steps over the union's rows, and step ``s`` takes
    the ``s``-th of that many near-equal pieces of every process's order, process
    0's first in the global batch."""
    if not replicas.sharded:
        for batch in iter_batches(len(order), batch_size):
            idx = order[batch]
            if len(idx) < replicas.world_size:
                continue
            part = Part(replicas.share(len(idx)), len(idx))
            yield idx[part.rows], part
        return
    shard_rows = torch.tensor(replicas.shard_rows)
    n_steps = math.ceil(int(shard_rows.sum()) / batch_size)
    rank = replicas.rank
    for step in range(n_steps):
        first = step * shard_rows // n_steps
        counts = (step + 1) * shard_rows // n_steps - first
        start = int(counts[:rank].sum())
        yield (order[int(first[rank]):int(first[rank] + counts[rank])],
               Part(slice(start, start + int(counts[rank])), int(counts.sum())))


def _snapshot(net, optimizer):
    return ({k: v.detach().clone() for k, v in net.state_dict().items()},
            copy.deepcopy(optimizer.state_dict()))


def _restore(net, optimizer, snapshot):
    net.load_state_dict(snapshot[0])
    optimizer.load_state_dict(copy.deepcopy(snapshot[1]))


def _diverged(mean_loss, reference, net):
    """Whether an epoch diverged: a non-finite parameter or loss, or a mean loss
    ``DIVERGENCE_FACTOR`` times (in units of ``|reference| + 1``) above the loss of
    the phase's first step. Both phases start from a sensible point (random
    initialisation, or the pretrained and initialised model), so a loss that far
    above it means the step is too large (e.g. weights of 1e7 after Adam at lr=100),
    not slow progress."""
    if not math.isfinite(mean_loss) or mean_loss > reference + DIVERGENCE_FACTOR * (
            abs(reference) + 1.0):
        return True
    # The largest magnitude of each parameter is NaN or inf exactly when one of its
    # values is: one reduction per tensor, about 9x cheaper than isfinite(p).all(),
    # which matters on small data where an epoch is a single step.
    with torch.no_grad():
        return not math.isfinite(sum(float(p.abs().max()) for p in net.parameters()))


def run_epochs(X, config, n_epochs, step, generator, progress, phase, optimizer, net,
               on_epoch_end=None, on_rollback=None, lr_factor=None, lr_floor=0.0,
               replicas=ALONE):
    """Shuffle X once per epoch (from ``generator``) and call ``step`` on each batch.

    ``step(x, idx, part)`` returns the mean loss of the rows ``x`` (ids ``idx``);
    ``part`` is a :class:`Part` of the global batch: all of it, except in
    data-parallel training (``replicas``, see :mod:`._distributed`), where each
    process is given its part of every batch (:func:`epoch_batches`), the
    epoch's loss is summed over the processes, and ``step`` must sum its
    gradients over them (weighted by ``part.weight``).
    After each epoch the learning rate is multiplied by ``lr_factor(epoch)``
    (default: ``config.lr_decay``) but not below ``lr_floor``.
    ``on_epoch_end(epoch, mean_loss)`` may return True to stop early.
    ``n_epochs`` is a number or a callable that returns the current budget (the
    joint phase's grows when its warm-up goes on).

    ``net`` and the optimizer are snapshotted at the end of an epoch once at least
    ``SNAPSHOT_STEPS`` steps have passed since the last snapshot (every epoch on
    large data). An epoch whose mean loss or resulting parameters are not finite is
    rolled back to the snapshot and training resumes from there with half the
    learning rate (at most ``MAX_RECOVERIES`` times, then
    :class:`TrainingDivergedError`). A KeyboardInterrupt also restores the snapshot
    and ends the phase (in data-parallel training it propagates instead). After a
    rollback ``on_rollback(n_epochs)`` is told how many epochs are kept, so the
    modules always match the epochs reported.
    """
    n_samples = X.shape[0]
    steps_per_epoch = math.ceil(replicas.n_rows(n_samples) / config.batch_size)
    shuffler = replicas.shuffling_generator(generator)
    if lr_factor is None:
        def lr_factor(epoch):
            return config.lr_decay
    losses = []
    recoveries = 0
    interrupted = False
    budget = n_epochs if callable(n_epochs) else lambda: n_epochs
    bar = progress(total=budget(), desc=phase)
    snapshot, snapshot_epoch, steps_since_snapshot = _snapshot(net, optimizer), 0, 0
    reference = None

    def rollback():
        _restore(net, optimizer, snapshot)
        del losses[snapshot_epoch:]
        if on_rollback is not None:
            on_rollback(snapshot_epoch)

    try:
        while len(losses) < budget():
            epoch = len(losses)
            if hasattr(X, "epoch_order"):  # out-of-core X: see _outofcore
                order = X.epoch_order(shuffler)
            else:
                order = torch.randperm(n_samples, generator=shuffler,
                                       device=shuffler.device)
            total = torch.zeros((), device=X.device)
            n_seen = 0
            for idx, part in epoch_batches(order, config.batch_size, replicas):
                idx = idx.to(X.device)
                loss = step(X[idx], idx, part)
                if reference is None:  # the loss at the phase's starting point
                    reference = float(loss if replicas.alone else
                                      replicas.sum_(loss.detach() * part.weight))
                total += loss * len(idx)
                n_seen += part.n_batch
            mean_loss = float(replicas.sum_(total)) / n_seen
            if _diverged(mean_loss, reference, net):
                recoveries += 1
                if recoveries > MAX_RECOVERIES:
                    raise TrainingDivergedError(
                        f"VaDEClustering {phase} diverged: the loss became non-finite "
                        f"or exploded {recoveries} times (last at epoch {epoch + 1}), "
                        "although each retry halved the learning rate. Lower "
                        "learning_rate, or check X for extreme values."
                    )
                lowered = [0.5 * group["lr"] for group in optimizer.param_groups]
                rollback()
                for group, lr in zip(optimizer.param_groups, lowered):
                    group["lr"] = lr
                steps_since_snapshot = 0
                continue
            for group in optimizer.param_groups:
                if group["lr"] > lr_floor:
                    group["lr"] = max(lr_floor, group["lr"] * lr_factor(epoch))
            losses.append(mean_loss)
            bar.update(1, mean_loss)
            stop = on_epoch_end is not None and on_epoch_end(epoch, mean_loss)
            bar.set_total(budget())
            steps_since_snapshot += steps_per_epoch
            if steps_since_snapshot >= SNAPSHOT_STEPS or stop:
                snapshot, snapshot_epoch = _snapshot(net, optimizer), len(losses)
                steps_since_snapshot = 0
            if stop:
                break
    except KeyboardInterrupt:
        if not replicas.alone:
            # the processes would not agree on the epoch it arrived in: the fit
            # stops in every process (torchrun ends the others), unchanged
            raise
        rollback()
        interrupted = True
    finally:
        bar.close()
    return EpochsResult(losses=losses, interrupted=interrupted, recoveries=recoveries)


@torch.no_grad()
def encode_means(net, X, batch_size, rows=None):
    """Posterior means ``mu~(x)`` of the rows of X (all, or the slice ``rows``),
    shape (n, latent_dim).

    The means go straight into one tensor allocated up front: keeping each batch's
    small result alive between the large temporary buffers of the next batches
    fragments the C heap, which then grows with the number of batches (seen: +450 MB
    at the peak of a fit on the 70,000 MNIST digits).
    """
    net.eval()
    first, last = (0, X.shape[0]) if rows is None else (rows.start, rows.stop)
    latent_dim = net.mu_head.out_features
    out = torch.empty((last - first, latent_dim), dtype=net.mu_head.weight.dtype,
                      device=net.mu_head.weight.device)
    for batch in iter_batches(last - first, batch_size):
        out[batch] = net.encode(X[first + batch.start:first + batch.stop])[0]
    net.train()
    return out
