"""The VaDE evidence lower bound, as pure tensor functions.

Notation (Jiang et al., 2017). For one sample ``x``:

* encoder ``q(z|x) = N(z; mu~, diag sigma2~)``, given as ``(mu, log_var)``;
* prior ``p(c) = Cat(pi)`` and ``p(z|c) = N(z; mu_c, diag sigma2_c)``, given as
  ``(log_pi, mu_c, log_var_c)``;
* ``q(c|x) = gamma``, given as ``log_gamma``;
* decoder ``p(x|z)``: Bernoulli with logits, or Gaussian with a mean and a per-feature
  log-variance.

The bound is the sum of five terms, each computed by one function here::

    ELBO = E_q[log p(x|z)]                               reconstruction_log_likelihood
         + sum_c gamma_c E_q[log N(z; mu_c, sigma2_c)]   expected_log_prior_z
         + sum_c gamma_c log pi_c                        expected_log_prior_c
         - E_q[log q(z|x)]                               entropy_normal_diag
         - sum_c gamma_c log gamma_c                     entropy_categorical

Every function works per sample (a leading batch dimension ``n``), in the dtype of its
inputs, and never exponentiates before normalising.
"""

import math
from typing import NamedTuple

import torch

LOG_2PI = math.log(2.0 * math.pi)


def log_normal_diag(x, mean, log_var):
    """Log density of a diagonal Gaussian, summed over the last dimension.

    ``log N(x; m, diag s2) = -1/2 sum_j (log 2pi + log s2_j + (x_j - m_j)^2 / s2_j)``.
    Inputs broadcast against each other.
    """
    return -0.5 * torch.sum(
        LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var), dim=-1
    )


def expected_log_normal_diag(mu, log_var, mu_c, log_var_c):
    """Closed form of ``E_{N(z; mu, s2)}[log N(z; mu_c, s2_c)]`` for every pair.

    ``= -1/2 sum_j (log 2pi + log s2_cj + s2_j / s2_cj + (mu_j - mu_cj)^2 / s2_cj)``.

    Parameters
    ----------
    mu, log_var : tensor of shape (n, d)
        The encoder's posterior ``q(z|x)``.
    mu_c, log_var_c : tensor of shape (K, d)
        The mixture components ``p(z|c)``.

    Returns
    -------
    tensor of shape (n, K)
    """
    mu = mu.unsqueeze(1)  # (n, 1, d)
    var = torch.exp(log_var).unsqueeze(1)  # (n, 1, d)
    inv_var_c = torch.exp(-log_var_c)  # (K, d)
    return -0.5 * torch.sum(
        LOG_2PI + log_var_c + (var + (mu - mu_c) ** 2) * inv_var_c, dim=-1
    )


def log_responsibilities(z, log_pi, mu_c, log_var_c):
    """``log gamma_c = log p(c|z)`` by Bayes' rule in log space.

    ``log p(c|z) = log pi_c + log N(z; mu_c, s2_c) - logsumexp_c'(...)``.

    Parameters
    ----------
    z : tensor of shape (n, d)
    log_pi : tensor of shape (K,)
    mu_c, log_var_c : tensor of shape (K, d)

    Returns
    -------
    tensor of shape (n, K), whose rows exponentiate to distributions.
    """
    log_joint = log_pi + log_normal_diag(z.unsqueeze(1), mu_c, log_var_c)  # (n, K)
    return log_joint - torch.logsumexp(log_joint, dim=1, keepdim=True)


def bernoulli_log_likelihood(x, logits):
    """``log p(x|z) = sum_j x_j log p_j + (1 - x_j) log(1 - p_j)``, p = sigmoid(logits).

    Written as ``x * logits + log sigmoid(-logits)``
    (= ``x * logits - softplus(logits)``), stable for any real logits.
    """
    return torch.sum(x * logits + torch.nn.functional.logsigmoid(-logits), dim=-1)


def gaussian_log_likelihood(x, mean, log_var):
    """``log p(x|z) = log N(x; mean, diag exp(log_var))``, per sample."""
    return log_normal_diag(x, mean, log_var)


def reconstruction_log_likelihood(x, decoded, likelihood, log_var_x=None):
    """Term 1, ``log p(x|z)`` at one decoded sample of z.

    ``decoded`` holds logits for ``"bernoulli"`` and means for ``"gaussian"``, where
    ``log_var_x`` (shape (n_features,)) is the observation noise.
    """
    if likelihood == "bernoulli":
        return bernoulli_log_likelihood(x, decoded)
    return gaussian_log_likelihood(x, decoded, log_var_x)


def expected_log_prior_z(gamma, mu, log_var, mu_c, log_var_c):
    """Term 2, ``sum_c gamma_c E_q[log p(z|c)]`` in closed form."""
    return torch.sum(gamma * expected_log_normal_diag(mu, log_var, mu_c, log_var_c), 1)


def expected_log_prior_c(gamma, log_pi):
    """Term 3, ``E_q[log p(c)] = sum_c gamma_c log pi_c``."""
    return torch.sum(gamma * log_pi, dim=1)


def entropy_normal_diag(log_var):
    """Term 4, ``-E_q[log q(z|x)] = 1/2 sum_j (1 + log 2pi + log s2~_j)``."""
    return 0.5 * torch.sum(1.0 + LOG_2PI + log_var, dim=-1)


def entropy_categorical(log_gamma):
    """Term 5, ``-E_q[log q(c|x)] = -sum_c gamma_c log gamma_c`` (0 log 0 = 0)."""
    gamma = torch.exp(log_gamma)
    return -torch.sum(torch.where(gamma > 0, gamma * log_gamma, 0.0), dim=1)


class ELBOTerms(NamedTuple):
    """The five per-sample terms of the bound; ``total`` is their sum."""

    reconstruction: torch.Tensor
    log_prior_z: torch.Tensor
    log_prior_c: torch.Tensor
    entropy_z: torch.Tensor
    entropy_c: torch.Tensor

    @property
    def total(self):
        return (
            self.reconstruction
            + self.log_prior_z
            + self.log_prior_c
            + self.entropy_z
            + self.entropy_c
        )

    def weighted(self, reconstruction_weight):
        """What the joint phase maximises: the bound with its reconstruction term
        weighted, ``w * reconstruction + (the other four terms)``."""
        if reconstruction_weight == 1.0:
            return self.total
        return self.total + (reconstruction_weight - 1.0) * self.reconstruction


def elbo_terms(reconstruction, mu, log_var, log_gamma, log_pi, mu_c, log_var_c):
    """The five terms of the ELBO per sample, given ``q(c|x)`` as ``log_gamma``.

    ``reconstruction`` is term 1 (an estimate of ``E_q[log p(x|z)]``, shape (n,)); the
    other four are exact expectations under ``q(z|x) q(c|x)``.
    """
    gamma = torch.exp(log_gamma)
    return ELBOTerms(
        reconstruction=reconstruction,
        log_prior_z=expected_log_prior_z(gamma, mu, log_var, mu_c, log_var_c),
        log_prior_c=expected_log_prior_c(gamma, log_pi),
        entropy_z=entropy_normal_diag(log_var),
        entropy_c=entropy_categorical(log_gamma),
    )
