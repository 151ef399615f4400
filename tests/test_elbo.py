"""The ELBO terms of ``sklearn_vade._elbo`` against float64 numpy/scipy references.

Each term is compared with an independent reference (scipy densities, entropies and
quadrature, Monte-Carlo estimates written in numpy), hypothesis drives shapes and
scales, and the invariants the bound relies on are checked: responsibilities are
normalised and stable where naive Bayes underflows, gamma = p(c|z) maximises the bound
by exactly KL(g || p(c|z)), KL(q(z|x) || p(z|c)) >= 0 with equality at q = p_c, the
variance floor holds and the mixture weights stay on the simplex. The per-sample ELBO
of ``evaluate`` is checked end to end against a Monte-Carlo estimate on a tiny network.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import integrate, special, stats
from sklearn.datasets import load_digits

from sklearn_vade import _elbo
from sklearn_vade._inference import evaluate
from sklearn_vade._network import (
    LOG_VAR_FLOOR,
    OBS_LOG_VAR_FLOOR,
    PI_FLOOR,
    PI_UPDATES,
    VAR_FLOOR,
    MixturePrior,
    VaDENetwork,
    floored_log_var,
)
from sklearn_vade._utils import row_normals

# Exact comparisons explore freely; Monte-Carlo ones are derandomized so that a
# 5-standard-error tolerance cannot flake from one run to the next.
EXACT = settings(deadline=None, max_examples=25, database=None)
MONTE_CARLO = settings(deadline=None, max_examples=25, database=None, derandomize=True)
# torch's softplus returns l itself for l > 20, dropping log1p(exp(-l)) <= 2.1e-9: the
# Bernoulli term is exact up to this per feature (see test_bernoulli_*).
SOFTPLUS_CUTOFF_ERROR = math.log1p(math.exp(-20.0))


def _t(a):
    """A float64 torch tensor."""
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _arrays(shape, lo, hi):
    return hnp.arrays(np.float64, shape, elements=_floats(lo, hi))


@st.composite
def gaussian_pairs(draw, max_n=3, max_k=3, max_d=3, log10_scale=(-2.0, 2.0)):
    """n posteriors N(mu, s2) and K components N(mu_c, s2_c) in d dimensions.

    Means are ``scale * U[-1, 1]`` with ``scale`` in 10**log10_scale, log-variances in
    [-4, 4].
    """
    n, k, d = (draw(st.integers(1, m)) for m in (max_n, max_k, max_d))
    scale = 10.0 ** draw(_floats(*log10_scale))
    mu = scale * draw(_arrays((n, d), -1.0, 1.0))
    mu_c = scale * draw(_arrays((k, d), -1.0, 1.0))
    log_var = draw(_arrays((n, d), -4.0, 4.0))
    log_var_c = draw(_arrays((k, d), -4.0, 4.0))
    return mu, log_var, mu_c, log_var_c


@st.composite
def distributions(draw, k, allow_zeros=True):
    """A distribution over k classes: Dirichlet(alpha), some entries possibly 0."""
    alpha = draw(_arrays((k,), 0.2, 5.0))
    seed = draw(st.integers(0, 2**32 - 1))
    g = np.random.default_rng(seed).dirichlet(alpha)
    if allow_zeros:
        keep = np.array(draw(st.lists(st.booleans(), min_size=k, max_size=k)))
        keep[np.argmax(g)] = True
        g = np.where(keep, g, 0.0)
        g = g / g.sum()
    return g


def _mixture_log_joint(z, log_pi, mu_c, log_var_c):
    """log pi_c + log N(z; mu_c, diag s2_c) with scipy, shape (n, K).

    The diagonal density factorises: log N(z; mu_c, diag s2_c) = sum_j log N(z_j;
    mu_cj, s2_cj) (checked against multivariate_normal in test_log_normal_diag_*).
    """
    sd_c = np.exp(0.5 * log_var_c)
    return log_pi + stats.norm.logpdf(z[:, None, :], mu_c, sd_c).sum(-1)


# ---------------------------------------------------------------------------
# 1. E_{N(mu, s2)}[log N(z; mu_c, s2_c)] in closed form
# ---------------------------------------------------------------------------


def _quad_expected_log_normal(m, s, m_c, s_c):
    """int N(z; m, s2) log N(z; m_c, s_c2) dz in 1-D by adaptive quadrature.

    Substituting z = m + s u gives int phi(u) log N(m + s u; m_c, s_c2) du; the mass
    of phi beyond |u| = 14 is below 1e-44.
    """
    value, _ = integrate.quad(
        lambda u: stats.norm.pdf(u) * stats.norm.logpdf(m + s * u, m_c, s_c),
        -14.0,
        14.0,
        epsabs=1e-13,
        epsrel=1e-12,
        limit=200,
    )
    return value


@EXACT
@given(gaussian_pairs())
def test_expected_log_normal_matches_quadrature(pair):
    """The closed-form expected log density equals 1-D quadrature summed over dims."""
    mu, log_var, mu_c, log_var_c = pair
    closed = _elbo.expected_log_normal_diag(
        _t(mu), _t(log_var), _t(mu_c), _t(log_var_c)
    ).numpy()
    sd, sd_c = np.exp(0.5 * log_var), np.exp(0.5 * log_var_c)
    reference = np.zeros(closed.shape)
    for i in range(mu.shape[0]):
        for c in range(mu_c.shape[0]):
            for j in range(mu.shape[1]):  # the integral factorises over dimensions
                reference[i, c] += _quad_expected_log_normal(
                    mu[i, j], sd[i, j], mu_c[c, j], sd_c[c, j]
                )
    np.testing.assert_allclose(closed, reference, rtol=1e-9, atol=1e-9)


@MONTE_CARLO
@given(gaussian_pairs(), st.integers(0, 2**32 - 1))
def test_expected_log_normal_matches_monte_carlo(pair, seed):
    """The closed-form expected log density is within 5 standard errors of MC."""
    mu, log_var, mu_c, log_var_c = pair
    closed = _elbo.expected_log_normal_diag(
        _t(mu), _t(log_var), _t(mu_c), _t(log_var_c)
    ).numpy()
    n_draws = 20_000
    rng = np.random.default_rng(seed)
    z = mu + np.exp(0.5 * log_var) * rng.standard_normal((n_draws, *mu.shape))
    # log N(z; mu_c, s2_c) = sum_j norm.logpdf(z_j; mu_cj, s_cj), z ~ N(mu, s2)
    samples = stats.norm.logpdf(
        z[:, :, None, :], mu_c, np.exp(0.5 * log_var_c)
    ).sum(-1)  # (draws, n, K)
    estimate = samples.mean(0)
    std_err = samples.std(0, ddof=1) / math.sqrt(n_draws)
    assert np.all(
        np.abs(closed - estimate) <= 5 * std_err + 1e-12 * (1 + np.abs(closed))
    )


# ---------------------------------------------------------------------------
# 2. Densities and entropies against scipy
# ---------------------------------------------------------------------------


@EXACT
@given(gaussian_pairs(max_n=4, max_k=4, max_d=4))
def test_log_normal_diag_matches_scipy(pair):
    """log_normal_diag equals scipy's multivariate_normal(cov=diag).logpdf."""
    z, _, mu_c, log_var_c = pair
    got = _elbo.log_normal_diag(_t(z).unsqueeze(1), _t(mu_c), _t(log_var_c)).numpy()
    # log N(z; mu_c, diag exp(log_var_c)), one column per component
    reference = np.stack(
        [
            stats.multivariate_normal(m, np.diag(np.exp(lv))).logpdf(z).reshape(-1)
            for m, lv in zip(mu_c, log_var_c)
        ],
        axis=1,
    )
    np.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-9)


@EXACT
@given(st.data(), st.integers(1, 4), st.integers(1, 6))
def test_bernoulli_binary_matches_scipy(data, n, n_features):
    """bernoulli_log_likelihood equals summed scipy.stats.bernoulli.logpmf on 0/1 x."""
    binary = st.sampled_from([0.0, 1.0])
    x = data.draw(hnp.arrays(np.float64, (n, n_features), elements=binary))
    logits = data.draw(_arrays((n, n_features), -10.0, 10.0))
    got = _elbo.bernoulli_log_likelihood(_t(x), _t(logits)).numpy()
    # sum_j log Bernoulli(x_j; p_j), p_j = sigmoid(logit_j)
    reference = stats.bernoulli.logpmf(x, special.expit(logits)).sum(-1)
    np.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-12)


@EXACT
@given(st.data(), st.integers(1, 4), st.integers(1, 6))
def test_bernoulli_fractional_and_extreme_logits(data, n, n_features):
    """For x in [0, 1] and logits up to +-50 it is finite and equals the formula."""
    x = data.draw(_arrays((n, n_features), 0.0, 1.0))
    logit = _floats(-50.0, 50.0) | st.sampled_from([-50.0, 50.0])
    logits = data.draw(hnp.arrays(np.float64, (n, n_features), elements=logit))
    got = _elbo.bernoulli_log_likelihood(_t(x), _t(logits)).numpy()
    # sum_j x_j log p_j + (1 - x_j) log(1 - p_j), log p = log_expit(l),
    # log(1 - p) = log_expit(-l): stable where p rounds to 0 or 1
    reference = (
        x * special.log_expit(logits) + (1 - x) * special.log_expit(-logits)
    ).sum(-1)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(
        got, reference, rtol=1e-10, atol=1e-10 + n_features * SOFTPLUS_CUTOFF_ERROR
    )


def test_bernoulli_saturated_logits_are_exact():
    """Logits of +-50 against the wrong label cost exactly 50 nats, without inf/nan."""
    x = _t([[0.0, 1.0, 1.0, 0.0]])
    logits = _t([[50.0, -50.0, 50.0, -50.0]])
    got = _elbo.bernoulli_log_likelihood(x, logits)
    # log(1 - sigmoid(50)) = log sigmoid(-50) = -50 - log1p(e^-50) ~ -50, twice;
    # log sigmoid(50) = -log1p(e^-50) ~ 0, twice
    torch.testing.assert_close(got, _t([-100.0]), rtol=0, atol=1e-12)


@EXACT
@given(st.data(), st.integers(1, 4), st.integers(1, 6))
def test_gaussian_likelihood_matches_scipy(data, n, n_features):
    """gaussian_log_likelihood, via reconstruction_log_likelihood, sums norm.logpdf."""
    x = data.draw(_arrays((n, n_features), -10.0, 10.0))
    mean = data.draw(_arrays((n, n_features), -10.0, 10.0))
    log_var_x = data.draw(_arrays((n_features,), -4.0, 4.0))
    got = _elbo.reconstruction_log_likelihood(
        _t(x), _t(mean), "gaussian", _t(log_var_x)
    ).numpy()
    # sum_j log N(x_j; mean_j, exp(log_var_x_j))
    reference = stats.norm.logpdf(x, mean, np.exp(0.5 * log_var_x)).sum(-1)
    np.testing.assert_allclose(got, reference, rtol=1e-10, atol=1e-10)


@EXACT
@given(_arrays((3, 4), -4.0, 4.0) | _arrays((1, 1), -30.0, 10.0))
def test_entropy_normal_diag_matches_scipy(log_var):
    """entropy_normal_diag equals scipy's multivariate_normal(cov=diag).entropy()."""
    got = _elbo.entropy_normal_diag(_t(log_var)).numpy()
    # H[N(mu, diag s2)] = 1/2 sum_j (1 + log 2pi + log s2_j)
    reference = [
        stats.multivariate_normal(cov=np.diag(np.exp(lv))).entropy() for lv in log_var
    ]
    np.testing.assert_allclose(got, reference, rtol=1e-10, atol=1e-10)


@EXACT
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.lists(distributions(k), min_size=1, max_size=4)
    )
)
def test_entropy_categorical_matches_scipy_with_zeros(rows):
    """entropy_categorical equals scipy.stats.entropy and is finite with gamma_c = 0."""
    gamma = np.array(rows)
    with np.errstate(divide="ignore"):
        log_gamma = np.log(gamma)  # -inf where gamma_c = 0
    got = _elbo.entropy_categorical(_t(log_gamma)).numpy()
    # H[gamma] = -sum_c gamma_c log gamma_c, with 0 log 0 = 0
    reference = stats.entropy(gamma, axis=1)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, reference, rtol=1e-10, atol=1e-12)


@EXACT
@given(gaussian_pairs(max_n=4, max_k=4, max_d=3, log10_scale=(-2.0, 0.5)), st.data())
def test_elbo_terms_match_numpy(pair, data):
    """Each of the five ELBOTerms equals its numpy formula, total is their sum and
    weighted(w) their sum with the reconstruction weighted by w."""
    mu, log_var, mu_c, log_var_c = pair
    n, k = mu.shape[0], mu_c.shape[0]
    gamma = np.array([data.draw(distributions(k)) for _ in range(n)])
    pi = data.draw(distributions(k, allow_zeros=False))
    recon = data.draw(_arrays((n,), -100.0, 0.0))
    with np.errstate(divide="ignore"):
        log_gamma = np.log(gamma)
    terms = _elbo.elbo_terms(
        _t(recon), _t(mu), _t(log_var), _t(log_gamma), _t(np.log(pi)), _t(mu_c),
        _t(log_var_c),
    )
    var, var_c = np.exp(log_var), np.exp(log_var_c)
    # E_q[log N(z; mu_c, s2_c)] = sum_j -1/2 (log 2pi s2_cj + (s2_j + (mu_j - mu_cj)^2)
    #                                            / s2_cj)
    e_log_n = -0.5 * (
        np.log(2 * np.pi * var_c)
        + (var[:, None, :] + (mu[:, None, :] - mu_c) ** 2) / var_c
    ).sum(-1)
    reference = {
        "reconstruction": recon,
        "log_prior_z": (gamma * e_log_n).sum(1),  # sum_c gamma_c E_q[log p(z|c)]
        "log_prior_c": (gamma * np.log(pi)).sum(1),  # sum_c gamma_c log pi_c
        "entropy_z": 0.5 * (1 + np.log(2 * np.pi * var)).sum(1),  # H[q(z|x)]
        "entropy_c": stats.entropy(gamma, axis=1),  # H[gamma]
    }
    for name, ref in reference.items():
        np.testing.assert_allclose(
            getattr(terms, name).numpy(), ref, rtol=1e-10, atol=1e-10, err_msg=name
        )
    np.testing.assert_allclose(
        terms.total.numpy(), sum(reference.values()), rtol=1e-10, atol=1e-9
    )
    # the joint phase's objective: the reconstruction weighted, the rest as is
    np.testing.assert_allclose(
        terms.weighted(0.25).numpy(),
        sum(reference.values()) - 0.75 * reference["reconstruction"],
        rtol=1e-10, atol=1e-9,
    )
    np.testing.assert_array_equal(terms.weighted(1.0).numpy(), terms.total.numpy())


# ---------------------------------------------------------------------------
# 3. Responsibilities
# ---------------------------------------------------------------------------


@EXACT
@given(gaussian_pairs(max_n=4, max_k=5, max_d=4, log10_scale=(-2.0, 0.0)), st.data())
def test_log_responsibilities_match_naive_bayes(pair, data):
    """Where nothing underflows, log p(c|z) is naive Bayes' rule in float64."""
    z, _, mu_c, log_var_c = pair
    pi = data.draw(distributions(mu_c.shape[0], allow_zeros=False))
    got = _elbo.log_responsibilities(
        _t(z), _t(np.log(pi)), _t(mu_c), _t(log_var_c)
    ).numpy()
    # p(c|z) = pi_c N(z; mu_c, s2_c) / sum_c' pi_c' N(z; mu_c', s2_c')
    joint = pi * np.stack(
        [
            stats.multivariate_normal(m, np.diag(np.exp(lv))).pdf(z).reshape(-1)
            for m, lv in zip(mu_c, log_var_c)
        ],
        axis=1,
    )
    assert np.all(joint.sum(1) > 1e-300)  # the regime where naive Bayes is exact
    naive = joint / joint.sum(1, keepdims=True)
    np.testing.assert_allclose(np.exp(got), naive, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(np.exp(got).sum(1), 1.0, rtol=0, atol=1e-12)


@EXACT
@given(st.integers(0, 2**32 - 1), _floats(30.0, 300.0), st.integers(2, 5))
def test_log_responsibilities_stable_where_naive_underflows(seed, offset, k):
    """In 200 dims with far-away z, naive Bayes gives nan; the package stays exact."""
    rng = np.random.default_rng(seed)
    d = 200
    mu_c = rng.standard_normal((k, d))
    log_var_c = rng.uniform(-1.0, 1.0, (k, d))
    z = offset + rng.standard_normal((3, d))
    pi = rng.dirichlet(np.ones(k))
    got = _elbo.log_responsibilities(
        _t(z), _t(np.log(pi)), _t(mu_c), _t(log_var_c)
    ).numpy()
    log_joint = _mixture_log_joint(z, np.log(pi), mu_c, log_var_c)
    with np.errstate(invalid="ignore"):
        # naive p(c|z) = pi_c N(z; mu_c, s2_c) / sum: every density underflows to 0
        naive = np.exp(log_joint) / np.exp(log_joint).sum(1, keepdims=True)
    assert np.all(np.isnan(naive))
    # log p(c|z) = log pi_c + log N(z; mu_c, s2_c) - logsumexp_c'(...), in log space
    reference = log_joint - special.logsumexp(log_joint, axis=1, keepdims=True)
    # |log p(z, c)| reaches 1e7 here: log-space normalisation is exact to its ulps
    tol = 1e-12 + 1e-13 * np.abs(log_joint).max()
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(np.exp(got).sum(1), 1.0, rtol=0, atol=tol)
    np.testing.assert_allclose(got, reference, rtol=1e-9, atol=tol)


# ---------------------------------------------------------------------------
# 4. gamma = p(c|z) maximises the bound
# ---------------------------------------------------------------------------


def _kl(g, log_p):
    """KL(g || p) = sum_c g_c (log g_c - log p_c), 0 log 0 = 0, p given in log space."""
    return special.xlogy(g, g).sum(-1) - (g * log_p).sum(-1)


def _bound_in_gamma(log_g, z, log_pi, mu_c, log_var_c):
    """F(g) = sum_c g_c (log pi_c + log N(z; mu_c, s2_c) - log g_c), package terms."""
    g = torch.exp(log_g)
    log_lik = _elbo.log_normal_diag(z.unsqueeze(1), mu_c, log_var_c)  # (n, K)
    return (
        _elbo.expected_log_prior_c(g, log_pi)
        + torch.sum(g * log_lik, dim=1)
        + _elbo.entropy_categorical(log_g)
    )


@EXACT
@given(gaussian_pairs(max_n=1, max_k=5, max_d=4, log10_scale=(-2.0, 0.5)), st.data())
def test_responsibilities_maximise_bound_by_kl(pair, data):
    """F(p(c|z)) = log p(z), and F(g) = log p(z) - KL(g || p(c|z)) for any other g."""
    z, _, mu_c, log_var_c = pair
    k = mu_c.shape[0]
    pi = data.draw(distributions(k, allow_zeros=False))
    g = data.draw(distributions(k))
    args = _t(z), _t(np.log(pi)), _t(mu_c), _t(log_var_c)
    log_joint = _mixture_log_joint(z, np.log(pi), mu_c, log_var_c)[0]
    log_evidence = special.logsumexp(log_joint)  # log p(z) = log sum_c pi_c N(z; c)
    log_post = _elbo.log_responsibilities(*args)
    at_posterior = _bound_in_gamma(log_post, *args).item()
    with np.errstate(divide="ignore"):
        at_g = _bound_in_gamma(_t(np.log(g))[None], *args).item()
    kl = _kl(g, log_joint - log_evidence)  # KL(g || p(c|z))
    np.testing.assert_allclose(at_posterior, log_evidence, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(at_g, log_evidence - kl, rtol=1e-10, atol=1e-10)
    assert at_g <= at_posterior + 1e-10


@EXACT
@given(gaussian_pairs(max_n=3, max_k=5, max_d=4, log10_scale=(-2.0, 0.5)), st.data())
def test_elbo_total_is_maximal_at_posterior_gamma(pair, data):
    """With a near-point q(z|x), any gamma but p(c|mu) lowers elbo_terms.total."""
    mu, _, mu_c, log_var_c = pair
    n, k = mu.shape[0], mu_c.shape[0]
    log_var = np.full(mu.shape, -30.0)
    pi = data.draw(distributions(k, allow_zeros=False))
    g = np.array([data.draw(distributions(k)) for _ in range(n)])
    recon = torch.zeros(n, dtype=torch.float64)
    prior = _t(np.log(pi)), _t(mu_c), _t(log_var_c)
    log_post = _elbo.log_responsibilities(_t(mu), *prior)
    best = _elbo.elbo_terms(recon, _t(mu), _t(log_var), log_post, *prior).total
    with np.errstate(divide="ignore"):
        log_g = _t(np.log(g))
    other = _elbo.elbo_terms(recon, _t(mu), _t(log_var), log_g, *prior).total
    # total(g) - total(p) = -KL(g || p(c|mu)) + O(exp(-30) / s2_c)
    kl = _kl(g, log_post.numpy())
    np.testing.assert_allclose((other - best).numpy(), -kl, rtol=1e-8, atol=1e-8)
    assert torch.all(other[kl > 1e-7] < best[kl > 1e-7])
    assert torch.all(other <= best + 1e-9)


# ---------------------------------------------------------------------------
# 5. The per-sample ELBO of evaluate, end to end
# ---------------------------------------------------------------------------


def _affine(layer, h):
    """h W^T + b with the layer's float64 weights."""
    return h @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()


def _numpy_encode(net, x):
    """mu~, log s2~ = heads(relu(W x + b)), log s2~ = log(exp(raw) + VAR_FLOOR)."""
    h = np.maximum(_affine(net.encoder[0], x), 0.0)
    raw = _affine(net.log_var_head, h)
    return _affine(net.mu_head, h), np.logaddexp(raw, math.log(VAR_FLOOR))


def _numpy_log_px(net, x, z, likelihood):
    """log p(x|z) for z of shape (..., d): decoder relu(W z + b) then affine output."""
    out = _affine(net.output, np.maximum(_affine(net.decoder[0], z), 0.0))
    if likelihood == "bernoulli":
        # sum_j x_j log sigmoid(l_j) + (1 - x_j) log sigmoid(-l_j)
        return (x * special.log_expit(out) + (1 - x) * special.log_expit(-out)).sum(-1)
    raw = net.raw_log_var_x.detach().numpy()
    sd_x = np.exp(0.5 * np.logaddexp(raw, OBS_LOG_VAR_FLOOR))  # s2 = exp(raw) + 1e-3
    return stats.norm.logpdf(x, out, sd_x).sum(-1)  # sum_j log N(x_j; out_j, s2_j)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_evaluate_elbo_matches_monte_carlo(likelihood):
    """evaluate's per-sample ELBO equals a numpy MC estimate over q(z|x) q(c|x)."""
    generator = torch.Generator().manual_seed(0)
    net = VaDENetwork(5, 2, (4,), 3, likelihood, "em", generator, dtype=torch.float64)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[-0.3, 0.2], [0.1, -0.1], [0.4, 0.5]])
    variances = np.array([[0.2, 0.5], [1.5, 0.3], [0.7, 1.1]])
    net.prior.set_parameters(weights, means, variances)
    rng = np.random.default_rng(1)
    if likelihood == "bernoulli":
        x = rng.uniform(size=(6, 5))
        x[0, :2], x[1, 2:4] = 0.0, 1.0
    else:
        x = rng.standard_normal((6, 5))
        with torch.no_grad():
            net.raw_log_var_x.copy_(_t([-1.0, 0.0, 0.5, -2.0, 1.0]))
    half = torch.randn(2000, 2, generator=generator, dtype=torch.float64)
    eps = torch.cat([half, -half])  # 4000 antithetic draws, shared by all rows
    ev = evaluate(net, _t(x), likelihood, eps, batch_size=4)

    mu, log_var = _numpy_encode(net, x)
    np.testing.assert_allclose(ev.mu, mu, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ev.log_var, log_var, rtol=1e-12, atol=1e-14)
    sd = np.exp(0.5 * log_var)
    gamma = np.exp(ev.log_gamma)  # q(c|x) as evaluate reports it
    np.testing.assert_allclose(gamma.sum(1), 1.0, rtol=0, atol=1e-12)
    sd_c = np.sqrt(variances)

    # Exact part: elbo - mean_l log p(x | mu + s eps_l) is the four closed-form terms
    # sum_c gamma_c (E_q log N(z; mu_c, s2_c) + log pi_c - log gamma_c) + H[q(z|x)].
    recon_draws = _numpy_log_px(net, x, mu + sd * eps.numpy()[:, None, :], likelihood)
    e_log_n = -0.5 * (
        np.log(2 * np.pi * variances)
        + (sd[:, None, :] ** 2 + (mu[:, None, :] - means) ** 2) / variances
    ).sum(-1)
    closed = (
        (gamma * (e_log_n + np.log(weights))).sum(1)
        + stats.entropy(gamma, axis=1)
        + 0.5 * (1 + np.log(2 * np.pi * sd**2)).sum(1)
    )
    np.testing.assert_allclose(ev.elbo - recon_draws.mean(0), closed, rtol=1e-10)

    # Monte-Carlo part: f = log p(x|z) + log p(z|c) + log pi_c - log q(z|x) - log q(c|x)
    # with z ~ q(z|x), c ~ q(c|x), against evaluate's elbo; the package's own error is
    # that of the mean of 2000 antithetic pair averages.
    pair_means = 0.5 * (recon_draws[:2000] + recon_draws[2000:])
    package_se = pair_means.std(0, ddof=1) / math.sqrt(2000)
    n_draws = 200_000
    mc_rng = np.random.default_rng(2)
    for i in range(x.shape[0]):
        z = mu[i] + sd[i] * mc_rng.standard_normal((n_draws, 2))
        c = mc_rng.choice(3, size=n_draws, p=gamma[i] / gamma[i].sum())
        f = (
            _numpy_log_px(net, x[i], z, likelihood)
            + stats.norm.logpdf(z, means[c], sd_c[c]).sum(1)
            + np.log(weights[c])
            - stats.norm.logpdf(z, mu[i], sd[i]).sum(1)
            - ev.log_gamma[i, c]
        )
        se = math.hypot(f.std(ddof=1) / math.sqrt(n_draws), package_se[i])
        error = abs(ev.elbo[i] - f.mean())
        assert error <= 5 * se + 1e-9, (i, ev.elbo[i], f.mean(), se)


def _row_eps(x):
    """The estimator's draws: one antithetic pair per row, from the row's values."""
    draws = row_normals(x, 2)[None]
    return np.concatenate([draws, -draws])


def test_row_wise_draws_average_out_over_rows():
    """With draws determined by each row, the mean ELBO is off only by per-row noise
    / sqrt(n) (here about 0.001 nats), where one pair of draws shared by all rows
    shifts it by a common error (here 0.01-0.03 nats; about 1 nat for the default
    network fitted on the digits)."""
    generator = torch.Generator().manual_seed(0)
    net = VaDENetwork(8, 2, (16,), 3, "bernoulli", "em", generator, dtype=torch.float64)
    with torch.no_grad():  # posterior variances near 0.5: the draws matter
        net.log_var_head.weight.zero_()
        net.log_var_head.bias.fill_(math.log(0.5))
    x = np.random.default_rng(0).uniform(size=(4000, 8))
    half = torch.randn(500, 2, generator=generator, dtype=torch.float64)
    exact = evaluate(net, _t(x), "bernoulli", torch.cat([half, -half]), 1024).elbo

    row_wise = evaluate(net, _t(x), "bernoulli", _row_eps, 1024).elbo
    error = row_wise - exact
    se = error.std(ddof=1) / math.sqrt(len(x))
    assert abs(error.mean()) <= 5 * se
    shared = [evaluate(net, _t(x), "bernoulli", torch.stack([h, -h]), 1024).elbo.mean()
              - exact.mean() for h in half[:8]]
    assert se < 0.1 * np.sqrt(np.mean(np.square(shared)))
    # and a row's value does not depend on its batch (up to the rounding of products)
    np.testing.assert_allclose(
        evaluate(net, _t(x[::-1].copy()), "bernoulli", _row_eps, 7).elbo,
        row_wise[::-1], rtol=1e-12)


def test_row_normals_are_standard_normal_and_row_wise():
    """Draws of distinct rows look i.i.d. N(0, 1); a row's draws depend on its values
    only (not on the batch, order or dtype it comes in)."""
    X = np.concatenate([load_digits().data / 16, np.eye(64), np.zeros((1, 64))])
    draws = row_normals(X, 10)
    assert draws.shape == (len(X), 10)
    assert stats.kstest(draws.ravel(), "norm").pvalue > 1e-3
    corr = np.corrcoef(draws, rowvar=False)
    assert np.abs(corr - np.eye(10)).max() < 0.1
    np.testing.assert_array_equal(row_normals(X[::-3], 10), draws[::-3])
    np.testing.assert_array_equal(row_normals(X.astype(np.float32), 10), draws)
    assert len(np.unique(draws[:, 0])) == len(np.unique(X, axis=0))
    np.testing.assert_array_equal(row_normals(-0.0 * X[-1:], 10), draws[-1:])
    np.testing.assert_array_equal(row_normals(torch.as_tensor(X[:5]), 10), draws[:5])


# ---------------------------------------------------------------------------
# 6. Invariants
# ---------------------------------------------------------------------------


@EXACT
@given(gaussian_pairs(max_n=4, max_k=4, max_d=4))
def test_gaussian_kl_nonnegative_and_zero_at_equality(pair):
    """KL(q || p_c) = -E_q[log p_c] - H[q] is >= 0, matches numpy, is 0 at q = p_c."""
    mu, log_var, mu_c, log_var_c = pair
    kl = -_elbo.expected_log_normal_diag(
        _t(mu), _t(log_var), _t(mu_c), _t(log_var_c)
    ) - _elbo.entropy_normal_diag(_t(log_var)).unsqueeze(1)
    kl = kl.numpy()
    var, var_c = np.exp(log_var)[:, None, :], np.exp(log_var_c)
    # KL = 1/2 sum_j (log s2_cj - log s2_j + (s2_j + (mu_j - mu_cj)^2) / s2_cj - 1)
    reference = 0.5 * (
        np.log(var_c) - np.log(var) + (var + (mu[:, None, :] - mu_c) ** 2) / var_c - 1
    ).sum(-1)
    scale = 1e-12 * (1 + np.abs(reference) + (mu[:, None, :] ** 2 / var_c).sum(-1))
    assert np.all(kl >= -scale)
    np.testing.assert_allclose(kl, reference, rtol=1e-8, atol=1e-8)
    at_equality = -_elbo.expected_log_normal_diag(
        _t(mu_c), _t(log_var_c), _t(mu_c), _t(log_var_c)
    ).diagonal() - _elbo.entropy_normal_diag(_t(log_var_c))
    np.testing.assert_allclose(at_equality.numpy(), 0.0, rtol=0, atol=1e-10)


@EXACT
@given(
    hnp.arrays(
        np.float64,
        st.integers(1, 8),
        elements=st.floats(allow_nan=False) | st.sampled_from([-40.0, -13.8, 0.0]),
    ),
    st.sampled_from([LOG_VAR_FLOOR, OBS_LOG_VAR_FLOOR]),
)
def test_floored_log_var_never_below_floor(raw, log_floor):
    """floored_log_var = log(exp(raw) + floor) and is never below log(floor)."""
    got = floored_log_var(_t(raw), log_floor).numpy()
    assert np.all(got >= log_floor)
    # log(exp(raw) + exp(log_floor)), computed stably by numpy
    np.testing.assert_allclose(got, np.logaddexp(raw, log_floor), rtol=1e-15)
    assert np.all(floored_log_var(_t(raw)).numpy() >= LOG_VAR_FLOOR)


@EXACT
@given(st.data())
def test_em_step_and_project_move_pi_as_documented(data):
    """The stored pi itself (not only the normalised weights): "em" moves it to
    (1 - rate) pi + rate mean(gamma); "renormalize" clips at PI_FLOOR and divides by
    the sum; the other modes leave it alone."""
    k = data.draw(st.integers(2, 5))
    gamma = data.draw(_arrays((6, k), 0.0, 1.0)) + 1e-3
    gamma /= gamma.sum(1, keepdims=True)
    rate = data.draw(_floats(0.01, 1.0))
    weights = np.full(k, 1.0 / k)
    for pi_update in PI_UPDATES:
        prior = MixturePrior(k, 2, pi_update, "cpu", torch.float64)
        prior.set_parameters(weights, np.zeros((k, 2)), np.ones((k, 2)))
        before = prior.pi_value.detach().numpy().copy()
        if pi_update == "renormalize":  # as if Adam had pushed pi off the simplex
            with torch.no_grad():
                prior.pi_value.copy_(_t(np.linspace(-0.5, 2.0, k)))
        prior.em_step(_t(gamma).mean(dim=0), rate)
        prior.project()
        pi = prior.pi_value.detach().numpy()
        if pi_update == "em":
            expected = (1 - rate) * before + rate * gamma.mean(0)
            np.testing.assert_allclose(pi, expected / expected.sum(), rtol=1e-12)
        elif pi_update == "renormalize":
            clipped = np.maximum(np.linspace(-0.5, 2.0, k), PI_FLOOR)
            np.testing.assert_allclose(pi, clipped / clipped.sum(), rtol=1e-12)
        else:
            np.testing.assert_array_equal(pi, before)


@pytest.mark.parametrize("pi_update", PI_UPDATES)
@EXACT
@given(st.data())
def test_prior_weights_stay_on_simplex(pi_update, data):
    """After set_parameters with zero weights (and em_step/project) pi is a simplex."""
    k = data.draw(st.integers(1, 6))
    weight = st.sampled_from([0.0]) | _floats(1e-3, 1.0)
    weights = np.array(data.draw(st.lists(weight, min_size=k, max_size=k)))
    variances = data.draw(_arrays((k, 2), 0.0, 10.0))
    prior = MixturePrior(k, 2, pi_update, "cpu", torch.float64)
    prior.set_parameters(weights, np.zeros((k, 2)), variances)
    pi = prior.weights.detach().numpy()
    assert np.all(np.isfinite(pi)) and np.all(pi > 0)
    np.testing.assert_allclose(pi.sum(), 1.0, rtol=0, atol=1e-12)
    # the weights as given, each floored at PI_FLOOR, renormalised
    # (log_pi floors pi at PI_FLOOR once more after the renormalisation)
    expected = np.maximum(weights, PI_FLOOR) / np.maximum(weights, PI_FLOOR).sum()
    np.testing.assert_allclose(pi, expected, rtol=1e-9, atol=k * PI_FLOOR)
    log_var_c = prior.log_var_c.detach().numpy()
    assert np.all(log_var_c >= LOG_VAR_FLOOR)
    # log s2_c = log(max(s2_c, 2 VAR_FLOOR))
    np.testing.assert_allclose(
        log_var_c, np.log(np.maximum(variances, 2 * VAR_FLOOR)), rtol=1e-12, atol=1e-12
    )
    gamma = np.zeros((4, k))
    gamma[:, 0] = 1.0  # all samples in one component: the others' mean is exactly 0
    prior.em_step(_t(gamma).mean(dim=0), rate=1.0)
    prior.project()
    pi = prior.weights.detach().numpy()
    assert np.all(np.isfinite(pi)) and np.all(pi >= 0)
    np.testing.assert_allclose(pi.sum(), 1.0, rtol=0, atol=1e-12)
