"""Phase 3 of fit, the joint ELBO loop, and the deterministic evaluation pass."""

import collections
import copy
import math
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.sparsefuncs import mean_variance_axis

from . import _elbo
from ._utils import autocast, iter_batches


class TrainResult(NamedTuple):
    """What the joint phase did: per-epoch history, epochs run, convergence, whether
    it was interrupted, how many epochs were rolled back as non-finite, the epochs
    of the model kept when the last epoch's model left a component empty (None: the
    last epoch's model), and how many components that model left empty."""

    history: list
    n_epochs: int
    converged: bool
    interrupted: bool
    recoveries: int
    kept_epochs: object = None
    emptied: int = 0


class Evaluation(NamedTuple):
    """A deterministic pass over X: posterior means, log-variances, log gamma, ELBO."""

    mu: np.ndarray
    log_var: np.ndarray
    log_gamma: np.ndarray
    elbo: np.ndarray


def make_optimizer(params, learning_rate):
    return torch.optim.Adam(params, lr=learning_rate, fused=True)


# Times an epoch may be rolled back (each time with half the learning rate) after
# its loss or the parameters became non-finite, before fit gives up.
MAX_RECOVERIES = 10
# Optimizer steps between snapshots of the model (taken at epoch ends): a copy of
# the parameters and Adam's moments costs about as much as one step.
SNAPSHOT_STEPS = 20
# Models of the last epochs kept in memory for the guard against a joint phase that
# empties components (see train_vade).
KEPT_STATES = 5
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


class TrainingDivergedError(FloatingPointError):
    """Training kept producing non-finite values although the step was lowered."""


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
               on_epoch_end=None, on_rollback=None, lr_factor=None, lr_floor=0.0):
    """Shuffle X once per epoch (from ``generator``) and call ``step`` on each batch.

    ``step(x)`` returns the batch loss. After each epoch the learning rate is
    multiplied by ``lr_factor(epoch)`` (default: ``config.lr_decay``) but not below
    ``lr_floor``. ``on_epoch_end(epoch, mean_loss)`` may return True to stop early.

    ``net`` and the optimizer are snapshotted at the end of an epoch once at least
    ``SNAPSHOT_STEPS`` steps have passed since the last snapshot (every epoch on
    large data). An epoch whose mean loss or resulting parameters are not finite is
    rolled back to the snapshot and training resumes from there with half the
    learning rate (at most ``MAX_RECOVERIES`` times, then
    :class:`TrainingDivergedError`). A KeyboardInterrupt also restores the snapshot
    and ends the phase. After a rollback ``on_rollback(n_epochs)`` is told how many
    epochs are kept, so the modules always match the epochs reported.
    """
    n_samples = X.shape[0]
    steps_per_epoch = math.ceil(n_samples / config.batch_size)
    if lr_factor is None:
        def lr_factor(epoch):
            return config.lr_decay
    losses = []
    recoveries = 0
    interrupted = False
    bar = progress(total=n_epochs, desc=phase)
    snapshot, snapshot_epoch, steps_since_snapshot = _snapshot(net, optimizer), 0, 0
    reference = None

    def rollback():
        _restore(net, optimizer, snapshot)
        del losses[snapshot_epoch:]
        if on_rollback is not None:
            on_rollback(snapshot_epoch)

    try:
        while len(losses) < n_epochs:
            epoch = len(losses)
            order = torch.randperm(n_samples, generator=generator,
                                   device=generator.device)
            total = torch.zeros((), device=X.device)
            for batch in iter_batches(n_samples, config.batch_size):
                idx = order[batch].to(X.device)
                loss = step(X[idx])
                if reference is None:  # the loss at the phase's starting point
                    reference = float(loss)
                total += loss * len(idx)
            mean_loss = float(total) / n_samples
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
            steps_since_snapshot += steps_per_epoch
            if steps_since_snapshot >= SNAPSHOT_STEPS or stop:
                snapshot, snapshot_epoch = _snapshot(net, optimizer), len(losses)
                steps_since_snapshot = 0
            if stop:
                break
    except KeyboardInterrupt:
        rollback()
        interrupted = True
    finally:
        bar.close()
    return EpochsResult(losses=losses, interrupted=interrupted, recoveries=recoveries)


@torch.no_grad()
def encode_means(net, X, batch_size):
    """Posterior means ``mu~(x)`` of all rows of X, shape (n, latent_dim).

    The means go straight into one tensor allocated up front: keeping each batch's
    small result alive between the large temporary buffers of the next batches
    fragments the C heap, which then grows with the number of batches (seen: +450 MB
    at the peak of a fit on the 70,000 MNIST digits).
    """
    net.eval()
    n_samples, latent_dim = X.shape[0], net.mu_head.out_features
    out = torch.empty((n_samples, latent_dim), dtype=net.mu_head.weight.dtype,
                      device=net.mu_head.weight.device)
    for batch in iter_batches(n_samples, batch_size):
        out[batch] = net.encode(X[batch])[0]
    net.train()
    return out


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
    objective = terms.total
    if reconstruction_weight != 1.0:
        objective = objective + (reconstruction_weight - 1.0) * terms.reconstruction
    with torch.no_grad():
        labels = _elbo.log_responsibilities(mu, log_pi, mu_c, log_var_c).argmax(1)
        term_means = torch.stack([t.mean() for t in terms])
    return -objective.mean(), torch.exp(log_gamma.detach()), labels, term_means


# Names of the ELBO's five terms, in the order of _elbo.ELBOTerms, as in history_.
TERM_NAMES = ("reconstruction", "log_prior_z", "log_prior_c", "entropy_z", "entropy_c")


def train_vade(net, X, config, generator, progress, n_epochs, anchor=None):
    """Maximise the ELBO jointly over encoder, decoder and prior with Adam.

    ``anchor`` is the initial partition (labels of shape (n_samples,)). During the
    first ``config.warmup_epochs`` epochs, ``q(c|x)`` is that partition (with
    ``config.anchor_smoothing`` > 0, that weight spread evenly over all components),
    and pi keeps its initial value: the encoder pulls the codes of each cluster
    together under its own Gaussian before gamma = p(c|z) takes over. After the
    warm-up, gamma as usual.

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
    on a tie), the network goes back to the most recent model, among those of the
    last ``KEPT_STATES`` epochs whose minibatches used every component, that has
    every component in use on the whole of X (if there is one), and
    ``kept_epochs`` says how many epochs that model had trained. The check is on
    the whole model because the minibatches' labels mix the models of one epoch
    (on 20 Newsgroups they showed every component in use while the end-of-epoch
    model left one empty).
    """
    warmup_epochs = config.warmup_epochs if anchor is not None else 0
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, config.warmup_learning_rate if warmup_epochs
                               else config.learning_rate)
    n_samples = X.shape[0]
    n_components = net.prior.mu_c.shape[0]
    labels = torch.full((n_samples,), -1, dtype=torch.long, device=X.device)
    previous = labels.clone()
    term_sums = torch.zeros(len(TERM_NAMES), device=X.device)
    latent_dim = net.mu_head.out_features
    history = []
    state = {"converged": False}
    # (epochs, network state) of recent epochs whose minibatches used every component
    full_states = collections.deque(maxlen=KEPT_STATES)
    if anchor is not None:
        anchor = np.asarray(anchor)  # kept as numpy for the per-epoch ARI
        anchor_device = torch.as_tensor(anchor, dtype=torch.long, device=X.device)
        smoothing = config.anchor_smoothing
        q_anchor = torch.full((n_components, n_components), smoothing / n_components)
        q_anchor += (1.0 - smoothing) * torch.eye(n_components)
        # log 0 = -inf off the partition when unsmoothed: the bound's terms take
        # 0 log 0 = 0 and weight nothing by a q of 0
        log_anchor = torch.log(q_anchor).to(X.device)

    def step(x_and_idx):
        x, idx = x_and_idx
        warming = len(history) < warmup_epochs
        eps = torch.randn(len(x), latent_dim, generator=generator,
                          device=generator.device).to(x.device, x.dtype)
        log_q = log_anchor[anchor_device[idx]] if warming else None
        loss, gamma, batch_labels, term_means = negative_elbo(
            net, x, eps, config.likelihood, config.compute_dtype,
            config.reconstruction_weight, log_q)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if warming:  # pi is held: the optimiser skips a parameter without gradient
            net.prior.pi_value.grad = None
        optimizer.step()
        if not warming:
            net.prior.em_step(gamma, config.em_rate)
        net.prior.project()
        labels[idx] = batch_labels
        term_sums.add_(term_means.to(term_sums.dtype) * len(idx))
        return loss.detach()

    def on_epoch_end(epoch, mean_loss):
        changed = float((labels != previous).float().mean())
        previous.copy_(labels)
        terms = (term_sums / n_samples).tolist()
        term_sums.zero_()
        current = labels.cpu().numpy()
        occupancy = np.bincount(current, minlength=n_components).tolist()
        history.append({
            "epoch": epoch, "elbo": float(sum(terms)), "objective": -mean_loss,
            **dict(zip(TERM_NAMES, terms)), "label_change": changed,
            "init_agreement": (None if anchor is None else
                               float(adjusted_rand_score(anchor, current))),
            "warmup": epoch < warmup_epochs,
            "min_weight": float(net.prior.weights.detach().min()),
            "n_empty": sum(count == 0 for count in occupancy),
            "occupancy": occupancy,
        })
        state["converged"] = (epoch > warmup_epochs
                              and epoch + 1 >= warmup_epochs + config.min_epochs
                              and changed < config.tol)
        if history[-1]["n_empty"] == 0:  # a model with every component in use
            full_states.append((epoch + 1, {k: v.detach().clone()
                                            for k, v in net.state_dict().items()}))
        return state["converged"]

    def on_rollback(n_kept):
        del history[n_kept:]
        while full_states and full_states[-1][0] > n_kept:
            full_states.pop()
        term_sums.zero_()
        state["converged"] = False
        # the labels of the kept epoch are gone: as at the start, the first epoch
        # after a rollback counts every sample as changed and cannot converge
        previous.fill_(-1)

    def lr_factor(epoch):  # constant during the warm-up, then steps
        after = epoch + 1 - warmup_epochs
        if after == 0:  # the warm-up's last epoch: on to the joint phase's step
            return config.learning_rate / config.warmup_learning_rate
        stepping = after > 0 and after % config.lr_step_epochs == 0
        return config.lr_step_factor if stepping else 1.0

    result = run_epochs(_IndexedRows(X), config, n_epochs, step, generator, progress,
                        "training", optimizer, net, on_epoch_end, on_rollback,
                        lr_factor, config.lr_floor)
    kept_epochs, emptied = None, 0
    if history:
        emptied = _n_empty(net, X, config.batch_size)
    if emptied:
        last = {k: v.detach().clone() for k, v in net.state_dict().items()}
        for epochs, full_state in reversed(full_states):
            if epochs == len(history):
                continue  # the last epoch's model itself
            net.load_state_dict(full_state)
            if not _n_empty(net, X, config.batch_size):
                kept_epochs = epochs
                break
        else:
            net.load_state_dict(last)
    return TrainResult(history=history, n_epochs=len(history),
                       converged=state["converged"], interrupted=result.interrupted,
                       recoveries=result.recoveries, kept_epochs=kept_epochs,
                       emptied=emptied)


@torch.no_grad()
def _n_empty(net, X, batch_size):
    """Components that no sample of X falls in (argmax gamma at the posterior
    means)."""
    prior = net.prior
    labels = _elbo.log_responsibilities(encode_means(net, X, batch_size),
                                        prior.log_pi, prior.mu_c,
                                        prior.log_var_c).argmax(1)
    return prior.mu_c.shape[0] - int(torch.unique(labels).numel())


class _IndexedRows:
    """X indexed by row ids, returning the rows together with their ids."""

    def __init__(self, X):
        self.X = X
        self.shape = X.shape
        self.device = X.device

    def __getitem__(self, idx):
        return self.X[idx], idx


@torch.no_grad()
def evaluate(net, X, likelihood, eps, batch_size, log_det_scale=0.0,
             preprocess=None):
    """Deterministic pass: gamma = p(c | z = mu~(x)) and the ELBO per sample.

    With ``eps=None`` the decoder is not run and ``elbo`` is None (for predict and
    transform, which need only the encoder).

    The reconstruction term averages ``log p(x|z)`` over the draws
    ``z = mu~ + sigma~ * eps[l]``. ``eps`` is either an array of shape
    (n_draws, latent_dim), the same draws for every row, or a function of a batch
    (the rows of X as given, before ``preprocess``) returning draws of shape
    (n_draws, batch rows, latent_dim) that depend on each row alone. Either way the
    result of a row does not depend on the other rows. ``log_det_scale`` is
    subtracted from every ELBO to put it on the scale of the original data (for
    standardised Gaussian data).

    X may be a tensor or an array; each batch of rows goes through ``preprocess``
    (if given) and becomes a tensor of the network's dtype, so that no full-size
    copy of X is made.
    """
    net.eval()
    prior = net.prior
    # pi normalised: under pi_update="unconstrained" the free pi need not sum to 1,
    # and log(sum pi) would otherwise be added to every reported ELBO
    log_pi = prior.log_pi - torch.logsumexp(prior.log_pi, dim=0)
    mu_c, log_var_c = prior.mu_c, prior.log_var_c
    dtype = mu_c.dtype
    # The results go straight into arrays allocated once: keeping small per-batch
    # tensors alive between the large per-batch buffers fragments the C heap, which
    # then grows with the number of batches (seen: +1.5 GB on 100,000 rows).
    n_samples, latent_dim = X.shape[0], mu_c.shape[1]
    mu = np.empty((n_samples, latent_dim))
    log_var = np.empty((n_samples, latent_dim))
    log_gamma = np.empty((n_samples, mu_c.shape[0]))
    elbo = None if eps is None else np.empty(n_samples)
    for batch in iter_batches(n_samples, batch_size):
        raw = X[batch]
        x = raw if preprocess is None else preprocess(raw)
        batch_eps = eps(raw) if callable(eps) else eps
        x = torch.as_tensor(x, dtype=dtype, device=mu_c.device)
        batch_mu, batch_log_var = net.encode(x)
        batch_log_gamma = _elbo.log_responsibilities(batch_mu, log_pi, mu_c, log_var_c)
        mu[batch] = batch_mu.cpu().numpy()
        log_var[batch] = batch_log_var.cpu().numpy()
        log_gamma[batch] = batch_log_gamma.cpu().numpy()
        if eps is None:
            continue
        recon = torch.stack([
            _elbo.reconstruction_log_likelihood(
                x, net.decode(net.reparameterize(batch_mu, batch_log_var, e)),
                likelihood, net.log_var_x)
            for e in torch.as_tensor(batch_eps, dtype=dtype, device=mu_c.device)
        ]).mean(0)
        terms = _elbo.elbo_terms(recon, batch_mu, batch_log_var, batch_log_gamma,
                                 log_pi, mu_c, log_var_c)
        elbo[batch] = (terms.total - log_det_scale).cpu().numpy()
    net.train()
    return Evaluation(mu=mu, log_var=log_var, log_gamma=log_gamma, elbo=elbo)


def feature_scaling(X, likelihood):
    """Per-feature offset and scale: standardisation for Gaussian data, else none.

    Features with no spread (constant up to rounding) keep scale 1. X may be dense or
    a scipy.sparse matrix; neither is copied.
    """
    n_features = X.shape[1]
    if likelihood != "gaussian":
        return np.zeros(n_features), np.ones(n_features)
    if sp.issparse(X):
        offset, variance = mean_variance_axis(X, axis=0)
        offset = offset.astype(np.float64)
        # rounding can leave a constant feature's variance slightly below zero
        scale = np.sqrt(np.clip(variance.astype(np.float64), 0.0, None))
    else:
        offset = X.mean(axis=0, dtype=np.float64)
        scale = X.std(axis=0, dtype=np.float64)
    constant = ~(scale > 1e-12 * np.abs(offset)) | ~(scale > np.finfo(np.float64).tiny)
    scale[constant] = 1.0
    return offset, scale


def standardise_rows(X, offset, scale):
    """Rows of X (dense or sparse) as a dense float64 array, standardised."""
    X = X.toarray() if sp.issparse(X) else X
    X = np.array(X, dtype=np.float64)  # one copy per batch, then in place
    X -= offset
    X /= scale
    return X


def training_rows(X, offset, scale, device):
    """The training data as rows of standardised float32 tensors on ``device``.

    Dense X is copied once into a tensor; sparse X stays sparse and each batch of
    rows is densified when it is drawn.
    """
    if sp.issparse(X):
        return _SparseRows(X, offset, scale, device)
    X_train = torch.empty(X.shape, dtype=torch.float32, device=device)
    # Standardised in float64, a chunk of rows at a time, then rounded once to
    # float32: a feature far from zero relative to its spread (e.g. timestamps)
    # would lose its variation if rounded to float32 first.
    for rows in iter_batches(X.shape[0], _STANDARDISE_ROWS):
        chunk = standardise_rows(X[rows], offset, scale)
        X_train[rows] = torch.as_tensor(chunk.astype(np.float32))
    return X_train


# Rows standardised at a time when the training copy of dense X is made.
_STANDARDISE_ROWS = 4096


class _SparseRows:
    """Rows of a CSR matrix, densified and standardised batch by batch."""

    def __init__(self, X, offset, scale, device):
        self.X = X.tocsr()
        self.shape = X.shape
        self.device = torch.device(device)
        self.offset, self.scale = offset, scale

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, torch.Tensor):
            rows = rows.cpu().numpy()
        x = standardise_rows(self.X[rows], self.offset, self.scale)
        return torch.as_tensor(x.astype(np.float32), device=self.device)
