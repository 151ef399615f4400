"""Phase 3 of fit, the joint ELBO loop, and the deterministic evaluation pass."""

from typing import NamedTuple

import numpy as np
import torch

from . import _elbo
from ._utils import autocast, iter_batches


class TrainResult(NamedTuple):
    """What the joint phase did: per-epoch history, epochs run, convergence."""

    history: list
    n_epochs: int
    converged: bool


class Evaluation(NamedTuple):
    """A deterministic pass over X: posterior means, log-variances, log gamma, ELBO."""

    mu: np.ndarray
    log_var: np.ndarray
    log_gamma: np.ndarray
    elbo: np.ndarray


def make_optimizer(params, learning_rate):
    return torch.optim.Adam(params, lr=learning_rate, fused=True)


def run_epochs(X, config, n_epochs, step, generator, progress, phase, optimizer,
               on_epoch_end=None):
    """Shuffle X once per epoch (from ``generator``) and call ``step`` on each batch.

    ``step(x)`` returns the batch loss. The learning rate decays by
    ``config.lr_decay`` per epoch. ``on_epoch_end(epoch, mean_loss)`` may return True
    to stop early. Returns the list of per-epoch mean losses.
    """
    n_samples = X.shape[0]
    losses = []
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    bar = progress(total=n_epochs, desc=phase)
    for epoch in range(n_epochs):
        order = torch.randperm(n_samples, generator=generator, device=generator.device)
        total = torch.zeros((), device=X.device)
        for batch in iter_batches(n_samples, config.batch_size):
            idx = order[batch].to(X.device)
            total += step(X[idx]) * len(idx)
        scheduler.step()
        mean_loss = float(total) / n_samples
        losses.append(mean_loss)
        bar.update(1, mean_loss)
        if on_epoch_end is not None and on_epoch_end(epoch, mean_loss):
            break
    bar.close()
    return losses


@torch.no_grad()
def encode_means(net, X, batch_size):
    """Posterior means ``mu~(x)`` of all rows of X, shape (n, latent_dim)."""
    net.eval()
    out = torch.cat([net.encode(X[b])[0] for b in iter_batches(len(X), batch_size)])
    net.train()
    return out


def negative_elbo(net, x, eps, likelihood, compute_dtype=None):
    """Minibatch loss: minus the mean ELBO, with gamma = p(c|z) at the sampled z.

    The networks run under autocast to ``compute_dtype`` (None: x's dtype); the ELBO
    is computed in x's dtype. Also returns gamma (for the "em" update of pi) and the
    labels at the posterior mean (for the convergence test).
    """
    prior = net.prior
    with autocast(x.device, compute_dtype):
        outputs = net(x, eps)
    mu, log_var, z, decoded = (t.to(x.dtype) for t in outputs)
    log_pi, mu_c, log_var_c = prior.log_pi, prior.mu_c, prior.log_var_c
    log_gamma = _elbo.log_responsibilities(z, log_pi, mu_c, log_var_c)
    recon = _elbo.reconstruction_log_likelihood(x, decoded, likelihood, net.log_var_x)
    terms = _elbo.elbo_terms(recon, mu, log_var, log_gamma, log_pi, mu_c, log_var_c)
    with torch.no_grad():
        labels = _elbo.log_responsibilities(mu, log_pi, mu_c, log_var_c).argmax(1)
    return -terms.total.mean(), torch.exp(log_gamma.detach()), labels


def train_vade(net, X, config, generator, progress, n_epochs):
    """Maximise the ELBO jointly over encoder, decoder and prior with Adam.

    Converged when, after an epoch, fewer than ``config.tol`` of the samples changed
    cluster (argmax gamma at the posterior mean) since the previous epoch.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, config.learning_rate)
    n_samples = X.shape[0]
    labels = torch.full((n_samples,), -1, dtype=torch.long, device=X.device)
    previous = labels.clone()
    latent_dim = net.mu_head.out_features
    history = []
    state = {"converged": False}

    def step(x_and_idx):
        x, idx = x_and_idx
        eps = torch.randn(len(x), latent_dim, generator=generator,
                          device=generator.device).to(x.device, x.dtype)
        loss, gamma, batch_labels = negative_elbo(net, x, eps, config.likelihood,
                                                  config.compute_dtype)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        net.prior.em_step(gamma, config.em_rate)
        net.prior.project()
        labels[idx] = batch_labels
        return loss.detach()

    def on_epoch_end(epoch, mean_loss):
        changed = float((labels != previous).float().mean())
        previous.copy_(labels)
        history.append({"epoch": epoch, "elbo": -mean_loss, "label_change": changed,
                        "min_weight": float(net.prior.weights.detach().min())})
        state["converged"] = epoch > 0 and changed < config.tol
        return state["converged"]

    indexed = _IndexedRows(X)
    run_epochs(indexed, config, n_epochs, step, generator, progress, "training",
               optimizer, on_epoch_end)
    return TrainResult(history=history, n_epochs=len(history),
                       converged=state["converged"])


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

    The reconstruction term averages ``log p(x|z)`` over the fixed draws
    ``z = mu~ + sigma~ * eps[l]``, shared by all rows, so the result of a row does not
    depend on the other rows. ``log_det_scale`` is subtracted from every ELBO to put it
    on the scale of the original data (for standardised Gaussian data).

    X may be a tensor or an array; each batch of rows goes through ``preprocess``
    (if given) and becomes a tensor of the network's dtype, so that no full-size
    copy of X is made.
    """
    net.eval()
    prior = net.prior
    log_pi, mu_c, log_var_c = prior.log_pi, prior.mu_c, prior.log_var_c
    dtype = mu_c.dtype
    outputs = []
    for batch in iter_batches(X.shape[0], batch_size):
        x = X[batch] if preprocess is None else preprocess(X[batch])
        x = torch.as_tensor(x, dtype=dtype, device=mu_c.device)
        mu, log_var = net.encode(x)
        recon = torch.stack([
            _elbo.reconstruction_log_likelihood(
                x, net.decode(net.reparameterize(mu, log_var, e)), likelihood,
                net.log_var_x)
            for e in eps
        ]).mean(0)
        log_gamma = _elbo.log_responsibilities(mu, log_pi, mu_c, log_var_c)
        terms = _elbo.elbo_terms(recon, mu, log_var, log_gamma, log_pi, mu_c, log_var_c)
        outputs.append((mu, log_var, log_gamma, terms.total - log_det_scale))
    net.train()
    mu, log_var, log_gamma, elbo = (torch.cat(t).cpu().numpy() for t in zip(*outputs))
    return Evaluation(mu=mu, log_var=log_var, log_gamma=log_gamma, elbo=elbo)
