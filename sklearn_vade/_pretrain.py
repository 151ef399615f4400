"""Phase 1 of fit: autoencoder pretraining."""

import math
from typing import NamedTuple

import torch

from ._distributed import ALONE
from ._engine import encode_means, make_optimizer, run_epochs
from ._utils import autocast


class PretrainResult(NamedTuple):
    """Per-epoch mean reconstruction loss of the autoencoder; whether a
    KeyboardInterrupt ended pretraining; epochs rolled back as non-finite."""

    losses: list
    interrupted: bool = False
    recoveries: int = 0


def autoencoder_loss(net, x, likelihood, compute_dtype=None):
    """Mean reconstruction loss of the deterministic autoencoder ``decode(mu~(x))``.

    Cross-entropy for Bernoulli data, squared error for Gaussian data, summed over
    features. The network runs under autocast to ``compute_dtype`` (None: x's dtype).
    """
    with autocast(x.device, compute_dtype):
        decoded = net.decode(net.encode(x)[0])
    decoded = decoded.to(x.dtype)
    if likelihood == "bernoulli":
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            decoded, x, reduction="none"
        )
    else:
        loss = (decoded - x) ** 2
    return loss.sum(dim=1).mean()


def pretrain_autoencoder(net, X, config, generator, progress, replicas=ALONE):
    """Train encoder mean head and decoder as a plain autoencoder.

    After training, the latent space is rescaled to unit overall standard deviation
    (without changing the autoencoder's function), so that the mixture prior starts on
    a scale independent of the data. In data-parallel training (``replicas``),
    each process trains on its part of every batch and the spread is measured
    over the whole data (:func:`latent_spread`).
    """
    result = PretrainResult(losses=[])
    if config.pretrain_epochs > 0:
        optimizer = make_optimizer(net.autoencoder_parameters(),
                                   config.pretrain_learning_rate)

        def step(x, idx, part):
            loss = autoencoder_loss(net, x, config.likelihood, config.compute_dtype)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            replicas.sum_gradients(net.autoencoder_parameters(), part.weight)
            optimizer.step()
            return loss.detach()

        result = PretrainResult(*run_epochs(X, config, config.pretrain_epochs, step,
                                            generator, progress, "pretraining",
                                            optimizer, net, replicas=replicas))
    spread = latent_spread(net, X, config.batch_size, replicas)
    # codes without spread (one sample: NaN; a collapsed encoder: ~0) are left as
    # they are
    if math.isfinite(spread) and spread > 1e-6:
        net.rescale_latent(1.0 / spread)
    return result


def latent_spread(net, X, batch_size, replicas=ALONE):
    """The standard deviation of all the latent means' values over the data: by
    process 0 from the whole of X, or with sharded input pooled from every
    process's rows; the same on every process."""
    if not replicas.sharded:
        spread = None
        if replicas.is_main:
            spread = float(encode_means(net, X, batch_size).std())
        return replicas.broadcast_object(spread)
    mu = encode_means(net, X, batch_size).double()
    mean, variance = replicas.pooled_moments(
        mu.mean().cpu().numpy(), mu.var(correction=0).cpu().numpy(), mu.numel())
    n_values = replicas.n_rows(len(mu)) * mu.shape[1]
    # torch's std: the unbiased estimate
    return math.sqrt(float(variance) * n_values / max(n_values - 1, 1))
