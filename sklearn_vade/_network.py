"""The torch modules of VaDE: encoder, decoder and the Gaussian-mixture prior.

Modules are built on the ``meta`` device and initialised from an explicit
``torch.Generator``, so that building a network never touches torch's global generator.
"""

import math

import torch
from torch import nn

# Smallest variance any Gaussian in the model may take: variances are computed as
# exp(raw) + floor, in log space as logaddexp(raw, log(floor)).
VAR_FLOOR = 1e-6
LOG_VAR_FLOOR = math.log(VAR_FLOOR)
# Gaussian observation noise is floored higher: a constant feature would otherwise
# drive its variance, and the likelihood, to infinity.
OBS_LOG_VAR_FLOOR = math.log(1e-3)
# Smallest mixture weight under pi_update="renormalize" and "unconstrained".
PI_FLOOR = 1e-6
PI_UPDATES = ("em", "renormalize", "softmax", "unconstrained", "fixed")


def floored_log_var(raw, log_floor=LOG_VAR_FLOOR):
    """``log(exp(raw) + floor)``: a smooth floor on a variance, in log space."""
    return torch.logaddexp(raw, torch.full_like(raw, log_floor))


def _linear(n_in, n_out, generator, device, dtype):
    """A Linear layer initialised as torch does, but from ``generator``."""
    layer = nn.Linear(n_in, n_out, device="meta").to_empty(device=device)
    layer = layer.to(dtype)
    bound = 1.0 / math.sqrt(n_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def mlp(units, generator, device, dtype):
    """ReLU multilayer perceptron through ``units`` (input first), ReLU after each."""
    layers = []
    for n_in, n_out in zip(units[:-1], units[1:]):
        layers += [_linear(n_in, n_out, generator, device, dtype), nn.ReLU()]
    return nn.Sequential(*layers)


def permute_components(state, order):
    """A fitted state (dict of arrays) with the mixture's components in ``order``;
    the networks' entries are shared, not copied."""
    state = dict(state)
    for name in ("prior.mu_c", "prior.raw_log_var_c", "prior.pi_value"):
        state[name] = state[name][order]
    return state


class MixturePrior(nn.Module):
    """``p(c) = Cat(pi)`` and ``p(z|c) = N(mu_c, diag sigma2_c)``.

    ``pi_update`` decides how pi is parametrised and learnt:

    * ``"em"``: a buffer, moved after each step toward the batch mean of the
      responsibilities (see :meth:`em_step`); no gradient.
    * ``"renormalize"``: a parameter trained by the optimiser, projected back onto the
      simplex after each step (see :meth:`project`).
    * ``"softmax"``: ``pi = softmax(logits)`` with free logits.
    * ``"unconstrained"``: a free parameter used as is (floored at ``PI_FLOOR``).
    * ``"fixed"``: a buffer that keeps its initial value.
    """

    def __init__(self, n_components, latent_dim, pi_update, device, dtype):
        super().__init__()
        self.pi_update = pi_update
        kwargs = dict(device=device, dtype=dtype)
        self.mu_c = nn.Parameter(torch.zeros(n_components, latent_dim, **kwargs))
        self.raw_log_var_c = nn.Parameter(
            torch.zeros(n_components, latent_dim, **kwargs))
        pi = torch.full((n_components,), 1.0 / n_components, **kwargs)
        if pi_update in ("em", "fixed"):
            self.register_buffer("pi_value", pi)
        else:
            self.pi_value = nn.Parameter(pi)  # pi, or its logits under "softmax"

    def set_parameters(self, weights, means, variances):
        """Set pi, mu_c and sigma2_c (e.g. from a fitted GaussianMixture)."""
        to = dict(device=self.mu_c.device, dtype=self.mu_c.dtype)
        weights = torch.as_tensor(weights, **to).clamp_min(PI_FLOOR)
        weights = weights / weights.sum()
        variances = torch.as_tensor(variances, **to).clamp_min(2 * VAR_FLOOR)
        with torch.no_grad():
            self.mu_c.copy_(torch.as_tensor(means, **to))
            # inverse of floored_log_var: raw = log(var - floor)
            self.raw_log_var_c.copy_(torch.log(variances - VAR_FLOOR))
            if self.pi_update == "softmax":
                self.pi_value.copy_(torch.log(weights))
            else:
                self.pi_value.copy_(weights)

    @property
    def log_var_c(self):
        return floored_log_var(self.raw_log_var_c)

    @property
    def log_pi(self):
        """``log pi`` as the model uses it (unnormalised under "unconstrained")."""
        if self.pi_update == "softmax":
            return torch.log_softmax(self.pi_value, dim=0)
        return torch.log(self.pi_value.clamp_min(PI_FLOOR))

    @property
    def log_weights(self):
        """``log pi`` normalised to the simplex, whatever the parametrisation (under
        "unconstrained" the free pi need not sum to 1)."""
        log_pi = self.log_pi
        return log_pi - torch.logsumexp(log_pi, dim=0)

    @property
    def weights(self):
        """pi on the simplex, whatever the parametrisation."""
        return torch.exp(self.log_weights)

    @torch.no_grad()
    def em_step(self, gamma_mean, rate):
        """Under "em": ``pi <- (1 - rate) pi + rate gamma_mean``.

        ``gamma_mean``, the batch's mean of gamma (shape (K,)), maximises the ELBO
        in pi for the batch, as gamma = p(c|z) does for q(c|x); the running average
        smooths it across batches.
        """
        if self.pi_update == "em":
            self.pi_value.mul_(1.0 - rate).add_(rate * gamma_mean)
            self.pi_value.div_(self.pi_value.sum())

    @torch.no_grad()
    def project(self):
        """Under "renormalize": clip pi to ``PI_FLOOR`` and divide by its sum."""
        if self.pi_update == "renormalize":
            self.pi_value.clamp_(min=PI_FLOOR)
            self.pi_value.div_(self.pi_value.sum())


class VaDENetwork(nn.Module):
    """Encoder ``q(z|x)``, decoder ``p(x|z)`` and the mixture prior ``p(z, c)``.

    Parameters
    ----------
    n_features : int
    latent_dim : int
    hidden_layer_sizes : tuple of int
        Encoder widths; the decoder mirrors them.
    n_components : int
    likelihood : {"bernoulli", "gaussian"}
    pi_update : str
    generator : torch.Generator
    device, dtype : torch device and dtype
    """

    def __init__(
        self,
        n_features,
        latent_dim,
        hidden_layer_sizes,
        n_components,
        likelihood,
        pi_update,
        generator,
        device="cpu",
        dtype=torch.float32,
    ):
        super().__init__()
        self.likelihood = likelihood
        units = [n_features, *hidden_layer_sizes]
        last = units[-1]
        self.encoder = mlp(units, generator, device, dtype)
        self.mu_head = _linear(last, latent_dim, generator, device, dtype)
        self.log_var_head = _linear(last, latent_dim, generator, device, dtype)
        self.decoder = mlp([latent_dim, *hidden_layer_sizes[::-1]], generator, device,
                           dtype)
        decoder_out = hidden_layer_sizes[0] if hidden_layer_sizes else latent_dim
        self.output = _linear(decoder_out, n_features, generator, device, dtype)
        # Gaussian observation noise, one log-variance per feature (Bernoulli: unused).
        self.raw_log_var_x = nn.Parameter(
            torch.zeros(n_features, device=device, dtype=dtype))
        self.prior = MixturePrior(n_components, latent_dim, pi_update, device, dtype)

    @classmethod
    def from_spec(cls, spec, n_features, generator, device="cpu",
                  dtype=torch.float32):
        """The network that a model spec describes.

        ``spec`` is the dict a fitted estimator keeps beside its weights (builtins
        only, see ``_validation.model_spec``): ``n_clusters``, ``latent_dim``,
        ``hidden_layer_sizes``, ``likelihood`` and ``pi_update``. Its weights are
        drawn from ``generator``.
        """
        return cls(n_features=n_features, latent_dim=spec["latent_dim"],
                   hidden_layer_sizes=tuple(spec["hidden_layer_sizes"]),
                   n_components=spec["n_clusters"], likelihood=spec["likelihood"],
                   pi_update=spec["pi_update"], generator=generator, device=device,
                   dtype=dtype)

    def encode(self, x):
        """x (n, D) -> (mu~, log sigma2~), each (n, d)."""
        h = self.encoder(x)
        return self.mu_head(h), floored_log_var(self.log_var_head(h))

    def reparameterize(self, mu, log_var, eps):
        """z = mu~ + sigma~ * eps."""
        return mu + torch.exp(0.5 * log_var) * eps

    def decode(self, z):
        """z (..., d) -> logits or means (..., D)."""
        return self.output(self.decoder(z))

    @property
    def log_var_x(self):
        return floored_log_var(self.raw_log_var_x, OBS_LOG_VAR_FLOOR)

    def forward(self, x, eps):
        """One pass for training: returns ``(mu, log_var, z, decoded)``."""
        mu, log_var = self.encode(x)
        z = self.reparameterize(mu, log_var, eps)
        return mu, log_var, z, self.decode(z)

    def autoencoder_parameters(self):
        """The parameters the deterministic autoencoder ``decode(mu~(x))`` trains:
        the encoder, its mean head and the decoder (not the variance head, the
        observation noise or the prior)."""
        return [p for name, p in self.named_parameters()
                if not name.startswith(("prior.", "log_var_head.", "raw_log_var_x"))]

    def autoencoder_state(self):
        """The state of the encoder and decoder, without the mixture prior (what
        a pretraining shared between fits keeps)."""
        return {k: v for k, v in self.state_dict().items()
                if not k.startswith("prior.")}

    @torch.no_grad()
    def rescale_latent(self, factor):
        """Multiply the latent means by ``factor`` without changing the autoencoder.

        The encoder's mean head is scaled by ``factor`` and the decoder's first layer by
        ``1 / factor``, so ``decode(encode(x))`` is unchanged.
        """
        self.mu_head.weight.mul_(factor)
        self.mu_head.bias.mul_(factor)
        first = self.decoder[0] if len(self.decoder) else self.output
        first.weight.div_(factor)
