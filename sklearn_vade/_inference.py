"""Inference: functions of a fitted model's arrays.

A fitted :class:`~sklearn_vade.VaDEClustering` holds its network as a dict of numpy
arrays (``state``) and a model spec (see :meth:`VaDENetwork.from_spec`); the
functions here rebuild the network from them and run deterministic passes over X,
batch by batch. By default the network is rebuilt in float64 on the CPU, so that a
row's result depends neither on the other rows nor on how they are batched, nor on
the device the model was trained on; ``inference_precision="float32"`` rebuilds it
in float32, on the training device (faster; results then agree with float64's to
about 1e-5 and may change in their last digits with the batch). The formulas are
in :mod:`._elbo`.
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from . import _elbo
from ._data import standardise_rows
from ._network import VaDENetwork
from ._utils import iter_batches, row_normals, torch_generator

# Draws of eps per row for the deterministic ELBO estimate: antithetic pairs
# (eps, -eps), eps a function of the row's values (see _utils.row_normals).
N_SCORE_PAIRS = 1
# Rows per batch for inference passes (predict, transform, score).
INFERENCE_BATCH = 1024
CPU = torch.device("cpu")


class Evaluation(NamedTuple):
    """A deterministic pass over X: posterior means, log-variances, log gamma, ELBO."""

    mu: np.ndarray
    log_var: np.ndarray
    log_gamma: np.ndarray
    elbo: np.ndarray


def state_tensors(state, device, dtype):
    """The arrays of a fitted state as tensors, ready for ``load_state_dict``."""
    return {k: torch.as_tensor(v, device=device, dtype=dtype)
            for k, v in state.items()}


def inference_network(state, spec, n_features, dtype=torch.float64,
                      device=CPU):
    """The network of a fitted state in ``dtype`` on ``device``, in eval mode."""
    net = VaDENetwork.from_spec(spec, n_features, torch_generator(0, device), device,
                                dtype)
    net.load_state_dict(state_tensors(state, device, dtype))
    net.eval()
    return net


def numpy_dtype(net):
    """The numpy dtype of the network's parameters (float64 or float32)."""
    return torch.empty((), dtype=net.prior.mu_c.dtype).numpy().dtype


def row_draws(latent_dim, n_pairs=N_SCORE_PAIRS):
    """The draws of eps for a batch of rows: ``n_pairs`` antithetic pairs per row,
    determined by the row's values alone (shape (2 n_pairs, rows, latent_dim))."""

    def eps(x):
        x = x.toarray() if sp.issparse(x) else x
        draws = row_normals(x, n_pairs * latent_dim).reshape(
            len(x), n_pairs, latent_dim).transpose(1, 0, 2)
        return np.concatenate([draws, -draws])

    return eps


def evaluate_fitted(net, X, spec, offset, scale, elbo=True, codes=True):
    """The deterministic pass of a fitted model (``net``, see
    :func:`inference_network`) over raw X (dense or CSR): posterior means and
    log-variances (unless ``codes`` is False: None), log gamma and, with ``elbo``,
    the per-sample ELBO on X's own scale, as arrays of the network's dtype."""
    return evaluate(net, X, spec["likelihood"],
                    row_draws(spec["latent_dim"]) if elbo else None,
                    INFERENCE_BATCH, float(np.sum(np.log(scale))),
                    preprocess=lambda x: standardise_rows(x, offset, scale,
                                                          numpy_dtype(net)),
                    codes=codes)


@torch.no_grad()
def decode(net, Z, likelihood, offset, scale):
    """Decoded means of latent codes Z (n, latent_dim) on the data's own scale
    (pixel probabilities for the Bernoulli likelihood), in the network's dtype."""
    dtype, device = net.prior.mu_c.dtype, net.prior.mu_c.device
    outputs = []
    for batch in iter_batches(len(Z), INFERENCE_BATCH):
        decoded = net.decode(torch.as_tensor(Z[batch], dtype=dtype, device=device))
        if likelihood == "bernoulli":
            decoded = torch.sigmoid(decoded)
        outputs.append(decoded.cpu().numpy())
    decoded = np.concatenate(outputs)
    return (decoded * scale + offset).astype(decoded.dtype, copy=False)


def sample_latent(weights, means, covariances, n_samples, rng):
    """Draw components ``y ~ Cat(weights)`` and codes ``z ~ N(means[y],
    covariances[y])``; returns ``(z, y)`` with y sorted."""
    counts = rng.multinomial(n_samples, weights)
    y = np.repeat(np.arange(len(weights)), counts)
    return draw_codes(means, covariances, y, rng), y


def draw_codes(means, covariances, components, rng):
    """Codes ``z ~ N(means[c], covariances[c])``, one for each entry c of
    ``components`` (an integer array)."""
    return means[components] + np.sqrt(covariances[components]) * rng.standard_normal(
        (len(components), means.shape[1]))


@torch.no_grad()
def evaluate(net, X, likelihood, eps, batch_size, log_det_scale=0.0,
             preprocess=None, codes=True):
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
    copy of X is made. With ``codes=False`` the posterior means and log-variances
    are not kept (None): fit needs only log gamma and the ELBO, and on out-of-core
    data the codes of every row would be the largest arrays of the fit.
    """
    net.eval()
    prior = net.prior
    # pi normalised: under pi_update="unconstrained" log(sum pi) would otherwise be
    # added to every reported ELBO
    log_pi = prior.log_weights
    mu_c, log_var_c = prior.mu_c, prior.log_var_c
    dtype = mu_c.dtype
    # The results go straight into arrays allocated once: keeping small per-batch
    # tensors alive between the large per-batch buffers fragments the C heap, which
    # then grows with the number of batches (seen: +1.5 GB on 100,000 rows).
    n_samples, latent_dim = X.shape[0], mu_c.shape[1]
    out = numpy_dtype(net)
    mu = np.empty((n_samples, latent_dim), out) if codes else None
    log_var = np.empty((n_samples, latent_dim), out) if codes else None
    log_gamma = np.empty((n_samples, mu_c.shape[0]), out)
    elbo = None if eps is None else np.empty(n_samples, out)
    for batch in iter_batches(n_samples, batch_size):
        raw = X[batch]
        x = raw if preprocess is None else preprocess(raw)
        batch_eps = eps(raw) if callable(eps) else eps
        x = torch.as_tensor(x, dtype=dtype, device=mu_c.device)
        batch_mu, batch_log_var = net.encode(x)
        batch_log_gamma = _elbo.log_responsibilities(batch_mu, log_pi, mu_c, log_var_c)
        if codes:
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
