"""Phase 3 of fit: the joint ELBO training, with its anchored warm-up."""

import collections
import time
from typing import NamedTuple

import numpy as np
import torch

from . import _elbo
from ._distributed import ALONE
from ._engine import encode_means, make_optimizer, run_epochs
from ._utils import autocast, iter_batches

# The anchored warm-up ends before its budget (config.warmup_epochs) once it has
# done its work: after at least WARMUP_MIN_EPOCHS epochs, when the partition by
# gamma agrees with the start at an adjusted Rand index of WARMUP_AGREEMENT or
# more (None: always the whole budget) and the ELBO of the last
# WARMUP_SETTLED_EPOCHS epochs no longer rises (see bound_rising). Its budget was
# set for MNIST, where 25 epochs left 0.956-0.963; on the digits gamma agrees at
# 0.99 after about 60 of its 125 epochs, with the bound settled (benchmarks/
# README.md). The bound's condition keeps the budget where the model is still
# learning the data's density after its partition is set (on small data with few
# steps per epoch: four blobs of 600 points, whose bound rose from -8.0 to -5.3
# nats after gamma agreed).
WARMUP_MIN_EPOCHS = 25
WARMUP_AGREEMENT = 0.99
WARMUP_SETTLED_EPOCHS = 20


def bound_rising(elbos, n_sigmas=2.0):
    """Whether the per-epoch ELBOs ``elbos`` still rise: the least-squares slope
    through them is more than ``n_sigmas`` standard errors above 0 (the epochs'
    minibatch noise sets the scale: no threshold in nats)."""
    y = np.asarray(elbos, dtype=float)
    t = np.arange(len(y), dtype=float) - (len(y) - 1) / 2.0
    slope = (t @ (y - y.mean())) / (t @ t)
    residuals = y - y.mean() - slope * t
    standard_error = np.sqrt((residuals @ residuals) / (len(y) - 2) / (t @ t))
    return bool(slope > n_sigmas * standard_error)


class TrainResult(NamedTuple):
    """What the joint phase did: per-epoch history, epochs run, convergence, whether
    it was interrupted, how many epochs were rolled back as non-finite, the epochs
    of the model kept when the last epoch's model left a component empty (None: the
    last epoch's model), how many components the last epoch's model left empty and
    how many the model kept leaves empty; the seconds of the anchored warm-up
    (0.0 without one)."""

    history: list
    n_epochs: int
    converged: bool
    interrupted: bool
    recoveries: int
    kept_epochs: object = None
    emptied: int = 0
    kept_empty: int = 0
    warmup_seconds: float = 0.0


def negative_elbo(net, x, eps, likelihood, compute_dtype=None,
                  reconstruction_weight=1.0, log_q=None):
    """Minibatch loss: minus the mean ELBO, with gamma = p(c|z) at the sampled z.

    ``log_q`` (shape (n, K)), when given, replaces gamma as ``q(c|x)`` in the bound
    (any q(c|x) gives a lower bound; gamma is the one that maximises it).

    With ``reconstruction_weight`` w != 1 the loss is minus the mean of
    ``w * E[log p(x|z)] + (the other four terms)``. The networks run under autocast to
    ``compute_dtype`` (None: x's dtype); the ELBO is computed in x's dtype. Also
    returns gamma (for the "em" update of pi), the labels at the posterior mean (for
    the convergence test) and the batch means of the five (unweighted) terms.
    """
    prior = net.prior
    with autocast(x.device, compute_dtype):
        outputs = net(x, eps)
    mu, log_var, z, decoded = (t.to(x.dtype) for t in outputs)
    log_pi, mu_c, log_var_c = prior.log_pi, prior.mu_c, prior.log_var_c
    log_gamma = _elbo.log_responsibilities(z, log_pi, mu_c, log_var_c)
    recon = _elbo.reconstruction_log_likelihood(x, decoded, likelihood, net.log_var_x)
    terms = _elbo.elbo_terms(recon, mu, log_var,
                             log_gamma if log_q is None else log_q.to(x.dtype),
                             log_pi, mu_c, log_var_c)
    objective = terms.weighted(reconstruction_weight)
    with torch.no_grad():
        labels = _elbo.log_responsibilities(mu, log_pi, mu_c, log_var_c).argmax(1)
        term_means = torch.stack([t.mean() for t in terms])
    return -objective.mean(), torch.exp(log_gamma.detach()), labels, term_means


# Models of the last epochs kept in memory for the guard against a joint phase that
# empties components (see train_vade).
KEPT_STATES = 5
# Names of the ELBO's five terms, as in history_.
TERM_NAMES = _elbo.ELBOTerms._fields


def train_vade(net, X, config, generator, progress, n_epochs, anchor=None,
               replicas=ALONE):
    """Maximise the ELBO jointly over encoder, decoder and prior with Adam.

    ``anchor`` is the initial partition (labels of shape (n_samples,)). During the
    first ``config.warmup_epochs`` epochs, ``q(c|x)`` is that partition (with
    ``config.anchor_smoothing`` > 0, that weight spread evenly over all components),
    and pi keeps its initial value: the encoder pulls the codes of each cluster
    together under its own Gaussian before gamma = p(c|z) takes over. After the
    warm-up, gamma as usual. When the warm-up reaches ``config.warmup_epochs``
    with gamma's partition still coming closer to the start, it goes on, by at most
    ``config.warmup_extension`` epochs, and ``n_epochs`` grows by as many (see
    :meth:`JointPhase.extends_warmup`).

    Adam's step is ``config.warmup_learning_rate`` during the warm-up and
    ``config.learning_rate`` after it, when it is multiplied by
    ``config.lr_step_factor``
    every ``config.lr_step_epochs`` epochs, down to ``config.lr_floor``. Converged
    when, after an epoch and no earlier than ``config.min_epochs`` epochs after the
    warm-up (and not in its first epoch), fewer than
    ``config.tol`` of the samples changed cluster (argmax gamma at the posterior
    mean) since the previous epoch. Each epoch adds a record to the history: the
    mean ELBO and each of its five terms (over the epoch's minibatches, at sampled
    z), the fraction of samples that changed cluster, the agreement of the current
    partition with the initial one (adjusted Rand index), the smallest weight and
    the occupancy of each component.

    A joint phase that empties components is not kept: when the last epoch's model
    leaves a component without samples (argmax gamma at the posterior means, in
    the training dtype; ``labels_`` come from the float64 model, which can differ
    on a tie), the network goes back to the most recent model that has every
    component in use on the whole of X, among those of the last ``KEPT_STATES``
    epochs whose minibatches used every component and the model at the end of the
    warm-up (the trained start). When none of them has, it goes back to the one
    that leaves the fewest components empty (the most recent of those), if that is
    fewer than the last model leaves. ``kept_epochs`` says how many epochs the
    model kept had trained. The check is on the whole model because the
    minibatches' labels mix the models of one epoch (on 20 Newsgroups they showed
    every component in use while the end-of-epoch model left one empty), and the
    end of the warm-up is kept because a joint phase can empty a component within
    a few epochs of it and keep emptying others, so that no recent model is full
    (20 Newsgroups, seed 1, warm-up at ten times the step: five components empty).

    In data-parallel training (``replicas``, see :mod:`._distributed`) each process
    trains on its share of every batch; gradients, pi's EM update, the epoch's
    terms, labels and occupancy are combined over the processes, so that every
    decision above is the same on all of them.
    """
    phase = JointPhase(net, X, config, generator, anchor, replicas)
    result = run_epochs(X, config, lambda: n_epochs + phase.extended, phase.step,
                        generator, progress,
                        "training", phase.optimizer, net, phase.end_of_epoch,
                        phase.rollback, phase.lr_factor, config.lr_floor, replicas)
    kept_epochs, emptied, kept_empty = phase.keep_a_full_model()
    return TrainResult(history=phase.history, n_epochs=len(phase.history),
                       converged=phase.converged, interrupted=result.interrupted,
                       recoveries=result.recoveries, kept_epochs=kept_epochs,
                       emptied=emptied, kept_empty=kept_empty,
                       warmup_seconds=phase.warmup_seconds)


class JointPhase:
    """The joint phase's state across the epochs of :func:`_engine.run_epochs`:
    one optimiser ``step`` per batch, ``end_of_epoch`` (history, convergence,
    models kept for the guard), ``rollback`` after a diverged epoch, the
    learning-rate schedule ``lr_factor``, and the guard itself,
    ``keep_a_full_model``, after the last epoch. See :func:`train_vade`."""

    def __init__(self, net, X, config, generator, anchor=None, replicas=ALONE):
        self.net, self.X, self.config, self.generator = net, X, config, generator
        self.replicas = replicas
        self.warmup_epochs = config.warmup_epochs if anchor is not None else 0
        self.extended = 0  # epochs the warm-up went on beyond its budget
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(
            self.params, config.warmup_learning_rate if self.warmup_epochs
            else config.learning_rate)
        self.n_components = net.prior.mu_c.shape[0]
        self.latent_dim = net.mu_head.out_features
        # argmax gamma at the posterior means, as each minibatch left them
        self.labels = torch.full((X.shape[0],), -1, dtype=torch.long,
                                 device=X.device)
        self.previous = self.labels.clone()
        # rows of this process's shares in the epoch (replicated input: every
        # process labels its shares; with sharded input it labels all its rows)
        self.mine = None if replicas.alone or replicas.sharded else torch.zeros(
            X.shape[0], dtype=torch.bool, device=X.device)
        self.term_sums = torch.zeros(len(TERM_NAMES), device=X.device)
        self.n_rows = 0  # rows of the epoch's batches so far
        self.history = []
        self.converged = False
        # (epochs, network state) of recent epochs whose minibatches used every
        # component
        self.full_states = collections.deque(maxlen=KEPT_STATES)
        self.warmup_state = None  # (epochs, network state) at the warm-up's end
        self.started, self.warmup_seconds = time.perf_counter(), 0.0
        self.anchor = None if anchor is None else np.asarray(anchor)  # for the ARI
        if anchor is not None:
            self.anchor_device = torch.as_tensor(self.anchor, dtype=torch.long,
                                                 device=X.device)
            smoothing, k = config.anchor_smoothing, self.n_components
            q_anchor = torch.full((k, k), smoothing / k)
            q_anchor += (1.0 - smoothing) * torch.eye(k)
            # log 0 = -inf off the partition when unsmoothed: the bound's terms
            # take 0 log 0 = 0 and weight nothing by a q of 0
            self.log_anchor = torch.log(q_anchor).to(X.device)

    def step(self, x, idx, part):
        net, config, replicas = self.net, self.config, self.replicas
        warming = len(self.history) < self.warmup_epochs
        # the noise of the whole batch, so that every process's generator stays
        # on the same stream as the others' (they shuffle from it)
        eps = torch.randn(part.n_batch, self.latent_dim, generator=self.generator,
                          device=self.generator.device)[part.rows]
        eps = eps.to(x.device, x.dtype)
        log_q = self.log_anchor[self.anchor_device[idx]] if warming else None
        loss, gamma, batch_labels, term_means = negative_elbo(
            net, x, eps, config.likelihood, config.compute_dtype,
            config.reconstruction_weight, log_q)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        replicas.sum_gradients(self.params, part.weight)
        if warming:  # pi is held: the optimiser skips a parameter without gradient
            net.prior.pi_value.grad = None
        self.optimizer.step()
        if not warming:
            net.prior.em_step(replicas.mean_rows(gamma), config.em_rate)
        net.prior.project()
        self.labels[idx] = batch_labels
        if self.mine is not None:
            self.mine[idx] = True
        self.term_sums.add_(term_means.to(self.term_sums.dtype) * len(idx))
        self.n_rows += part.n_batch
        return loss.detach()

    def end_of_epoch(self, epoch, mean_loss):
        """Record the epoch; True when converged."""
        config, warmup_epochs = self.config, self.warmup_epochs
        if self.mine is not None:
            self.replicas.merge_labels_(self.labels, self.mine)
            self.mine.zero_()
        replicas = self.replicas
        n_changed = int((self.labels != self.previous).sum())
        changed = float(replicas.sum_over_shards(np.int64(n_changed))
                        / replicas.n_rows(len(self.labels)))
        self.previous.copy_(self.labels)
        terms = (replicas.sum_(self.term_sums) / self.n_rows).tolist()
        self.term_sums.zero_()
        self.n_rows = 0
        current = self.labels.cpu().numpy()
        occupancy = replicas.sum_over_shards(
            np.bincount(current, minlength=self.n_components)).tolist()
        agreement = None
        if self.anchor is not None:
            agreement = adjusted_rand_index(replicas.sum_over_shards(
                contingency(self.anchor, current, self.n_components)))
        elbo = float(sum(terms))
        if self.warmup_served(epoch, agreement, elbo):
            self.end_warmup(epoch + 1)
        elif self.extends_warmup(epoch, agreement):
            self.extend_warmup()
        warmup_epochs = self.warmup_epochs
        self.history.append({
            "epoch": epoch, "elbo": elbo, "objective": -mean_loss,
            **dict(zip(TERM_NAMES, terms)), "label_change": changed,
            "init_agreement": agreement,
            "warmup": epoch < warmup_epochs,
            "min_weight": float(self.net.prior.weights.detach().min()),
            "n_empty": sum(count == 0 for count in occupancy),
            "occupancy": occupancy,
        })
        self.converged = (epoch > warmup_epochs
                          and epoch + 1 >= warmup_epochs + config.min_epochs
                          and changed < config.tol)
        state = None
        if self.history[-1]["n_empty"] == 0:  # a model with every component in use
            state = _clone_state(self.net)
            self.full_states.append((epoch + 1, state))
        if epoch + 1 == warmup_epochs:  # one copy serves both when both apply
            self.warmup_seconds = time.perf_counter() - self.started
            self.warmup_state = (epoch + 1, state or _clone_state(self.net))
        return self.converged

    def warmup_served(self, epoch, agreement, elbo):
        """Whether the warm-up, after ``epoch`` (0-based, whose bound is
        ``elbo``), has done its work before its budget: at least
        WARMUP_MIN_EPOCHS epochs, gamma's partition agrees with the start
        (adjusted Rand index >= WARMUP_AGREEMENT), and the bound of the last
        WARMUP_SETTLED_EPOCHS epochs no longer rises."""
        if (WARMUP_AGREEMENT is None or agreement is None
                or not WARMUP_MIN_EPOCHS <= epoch + 1 < self.warmup_epochs
                or agreement < WARMUP_AGREEMENT):
            return False
        recent = [h["elbo"] for h in self.history[-(WARMUP_SETTLED_EPOCHS - 1):]]
        return (len(recent) + 1 >= WARMUP_SETTLED_EPOCHS
                and not bound_rising([*recent, elbo]))

    def extends_warmup(self, epoch, agreement):
        """Whether the warm-up, at the end of its last epoch ``epoch`` (0-based)
        with gamma's partition agreeing with the start at ``agreement``, goes on
        for one more: fewer than ``config.warmup_extension`` epochs added so far,
        the agreement still below WARMUP_AGREEMENT, and the agreements of the
        last WARMUP_SETTLED_EPOCHS epochs still rising (:func:`bound_rising`).
        Not after an early end (a rollback can bring such an end back as the
        last epoch) nor with WARMUP_AGREEMENT None (the warm-up of fixed
        length).

        The budget was set on balanced data, where gamma takes the start's shape
        within it; on long-tailed data the Gaussians of the large classes still
        take rows of the small ones at its end, and each further epoch gives
        some back (benchmarks/README.md)."""
        if (agreement is None or WARMUP_AGREEMENT is None
                or epoch + 1 != self.warmup_epochs
                or self.warmup_epochs != self.config.warmup_epochs + self.extended
                or self.extended >= self.config.warmup_extension
                or agreement >= WARMUP_AGREEMENT
                or len(self.history) + 1 < WARMUP_SETTLED_EPOCHS):
            return False
        recent = [h["init_agreement"]
                  for h in self.history[-(WARMUP_SETTLED_EPOCHS - 1):]]
        return bound_rising([*recent, agreement])

    def extend_warmup(self):
        """One more epoch of warm-up, at its step (the schedule of
        :meth:`lr_factor` has already moved to the joint phase's step for the
        next epoch: undone)."""
        self.warmup_epochs += 1
        self.extended += 1
        for group in self.optimizer.param_groups:
            group["lr"] *= self.config.warmup_learning_rate / self.config.learning_rate

    def end_warmup(self, n_epochs):
        """End the warm-up after ``n_epochs`` epochs: from the next epoch on, gamma
        and the joint phase's step (the schedule of :meth:`lr_factor` already ran
        for this epoch)."""
        self.warmup_epochs = n_epochs
        for group in self.optimizer.param_groups:
            group["lr"] *= self.config.learning_rate / self.config.warmup_learning_rate

    def rollback(self, n_kept):
        """The engine went back to the end of epoch ``n_kept``."""
        del self.history[n_kept:]
        while self.full_states and self.full_states[-1][0] > n_kept:
            self.full_states.pop()
        if self.warmup_state is not None and self.warmup_state[0] > n_kept:
            self.warmup_state = None
        self.term_sums.zero_()
        self.n_rows = 0
        if self.mine is not None:
            # every process rolls back at the same step (the decision is taken on
            # summed losses): merge the discarded epoch's labels, so that the rows
            # that no share holds in later epochs agree between the processes
            self.replicas.merge_labels_(self.labels, self.mine)
            self.mine.zero_()
        self.converged = False
        # the labels of the kept epoch are gone: as at the start, the first epoch
        # after a rollback counts every sample as changed and cannot converge
        self.previous.fill_(-1)

    def lr_factor(self, epoch):
        """Constant during the warm-up, then steps."""
        config = self.config
        after = epoch + 1 - self.warmup_epochs
        if after == 0:  # the warm-up's last epoch: on to the joint phase's step
            return config.learning_rate / config.warmup_learning_rate
        stepping = after > 0 and after % config.lr_step_epochs == 0
        return config.lr_step_factor if stepping else 1.0

    def keep_a_full_model(self):
        """The guard: ``(kept_epochs, emptied, kept_empty)``, see
        :func:`train_vade`."""
        net, X, batch_size = self.net, self.X, self.config.batch_size
        replicas = self.replicas
        emptied = _n_empty(net, X, batch_size, replicas) if self.history else 0
        if not emptied:
            return None, 0, 0
        candidates = {epochs: state for epochs, state in self.full_states}
        if self.warmup_state is not None:
            candidates.setdefault(*self.warmup_state)
        candidates.pop(len(self.history), None)  # the last epoch's model itself
        last = _clone_state(net)
        best = (emptied, None)  # (empty components, epochs), None: the last model
        for epochs in sorted(candidates, reverse=True):  # the most recent first
            net.load_state_dict(candidates[epochs])
            n_empty = _n_empty(net, X, batch_size, replicas)
            if n_empty < best[0]:
                best = (n_empty, epochs)
            if n_empty == 0:
                break
        kept_empty, kept_epochs = best
        net.load_state_dict(last if kept_epochs is None else candidates[kept_epochs])
        return kept_epochs, emptied, kept_empty


def _clone_state(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@torch.no_grad()
def _n_empty(net, X, batch_size, replicas=ALONE):
    """Components that no sample of X falls in (argmax gamma at the posterior
    means); in data-parallel training each process looks at its own rows
    (:meth:`~._distributed.Replicas.own_rows`)."""
    prior = net.prior
    mu = encode_means(net, X, batch_size, replicas.own_rows(X.shape[0]))
    # in chunks: gamma's intermediate (rows, K, d) tensors of all rows at once
    # took 1.6 GB on 2,000,000 rows (an out-of-core fit)
    used = torch.zeros(prior.mu_c.shape[0], dtype=torch.bool, device=mu.device)
    for rows in iter_batches(len(mu), _GAMMA_CHUNK):
        used[_elbo.log_responsibilities(mu[rows], prior.log_pi, prior.mu_c,
                                        prior.log_var_c).argmax(1)] = True
    if not replicas.alone:
        used = replicas.sum_(used.to(torch.int64)) > 0
    return prior.mu_c.shape[0] - int(used.sum())


# Rows whose responsibilities _n_empty computes at once.
_GAMMA_CHUNK = 65536


def contingency(first, second, n_labels):
    """The (n_labels, n_labels) counts of rows by their labels in two partitions."""
    return np.bincount(np.asarray(first) * n_labels + np.asarray(second),
                       minlength=n_labels * n_labels).reshape(n_labels, n_labels)


def adjusted_rand_index(table):
    """The adjusted Rand index of two partitions from their contingency table,
    computed as :func:`sklearn.metrics.adjusted_rand_score` computes it (so that
    tables summed over the processes of a sharded fit give the index of the
    whole data)."""
    table = np.asarray(table, dtype=np.int64)
    n = int(table.sum())
    squares = int((table ** 2).sum())
    by_first, by_second = table.sum(axis=1), table.sum(axis=0)
    both = squares - n  # pairs together in both (times two)
    only_second = int(table.dot(by_second).sum()) - squares
    only_first = int(table.T.dot(by_first).sum()) - squares
    neither = n * n - only_second - only_first - squares
    if only_first == 0 and only_second == 0:
        return 1.0
    return 2.0 * (both * neither - only_first * only_second) / (
        (both + only_first) * (only_first + neither)
        + (both + only_second) * (only_second + neither))
