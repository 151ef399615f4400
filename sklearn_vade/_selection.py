"""Choosing the number of clusters: several VaDE fits sharing one pretraining."""

import math
import tempfile
import time
from numbers import Integral

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.validation import _num_samples

from ._elbo import entropy_categorical
from ._estimator import VaDEClustering
from ._utils import draw_seed, local_random_state


def n_mixture_parameters(n_clusters, latent_dim):
    """Free parameters of a diagonal Gaussian mixture in the latent space:
    ``K - 1`` weights, ``K * d`` means and ``K * d`` variances."""
    return (n_clusters - 1) + 2 * n_clusters * latent_dim


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        # checked below, with messages that say what to pass instead
        "n_clusters_values": "no_validation",
        "estimator": "no_validation",
        "criterion": [StrOptions({"bic", "icl", "elbo"})],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=False,  # each candidate validates its own fit
)
def select_n_clusters(X, n_clusters_values, *, estimator=None, criterion="bic",
                      verbose=0):
    """Fit VaDE for several ``n_clusters`` from one pretrained autoencoder.

    The autoencoder is pretrained once (once per ``n_init`` run), through the
    estimator's ``memory`` cache, or a temporary one when it has none: each
    candidate is exactly the fit ``VaDEClustering(n_clusters=K)`` with the other
    parameters of ``estimator`` would give, and all but the first load the shared
    pretraining. With ``random_state=None`` one seed is drawn for all the
    candidates (their ``random_state`` shows it). In data-parallel training
    (``torch.distributed``) the cache is not used and every candidate pretrains.
    Each fit is
    scored on X by its ELBO (``lower_bound_``, mean nats per sample, higher is
    better) and by a BIC-style penalised criterion

        ``bic = -2 * n_samples * lower_bound_ + p(K) * log(n_samples)``

    (lower is better) where ``p(K) = (K - 1) + 2 * K * latent_dim`` counts the
    mixture's parameters: the networks have the same size for every K, so only the
    mixture's parameters differ between candidates. The ELBO alone tends to keep
    growing with K; the penalty trades that gain against the extra components. The
    integrated completed likelihood criterion ``icl = bic + 2 * sum_i H(gamma_i)``
    (Biernacki, Celeux and Govaert, 2000) further penalises candidates whose
    clusters overlap, measured by the entropy H of each sample's cluster
    posterior.

    A KeyboardInterrupt (Ctrl-C) stops the search: the candidate being fitted
    warns as ``fit`` does, and the interrupt propagates.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training data (never labels).
    n_clusters_values : list of int
        The candidate numbers of clusters, each at least 1.
    estimator : VaDEClustering, default=None
        The configuration to use (its ``n_clusters`` is ignored); by default
        ``VaDEClustering()``. Its ``n_init``, ``random_state`` and other parameters
        apply to every candidate; ``warm_start`` is ignored.
    criterion : {"bic", "icl", "elbo"}, default="bic"
        How ``best_n_clusters`` is chosen: the lowest BIC, the lowest ICL or the
        highest ELBO.
    verbose : int, default=0
        1 prints one line per candidate.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``n_clusters`` (the candidates, ascending); one value per candidate in
        ``elbo``, ``bic``, ``icl``, ``entropy`` (mean posterior entropy, nats),
        ``n_parameters`` and ``fit_seconds``; ``estimators`` (the fitted
        VaDEClustering of each candidate); ``best_index``, ``best_n_clusters``,
        ``best_estimator``, ``criterion`` and ``pretrain_seconds`` (the shared
        pretraining's wall-clock seconds, which ``fit_seconds`` leave out).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn_vade import VaDEClustering, select_n_clusters
    >>> X, _ = make_blobs(n_samples=300, centers=3, cluster_std=0.5, random_state=0)
    >>> result = select_n_clusters(
    ...     X, [2, 3, 4], estimator=VaDEClustering(
    ...         hidden_layer_sizes=(32,), latent_dim=2, pretrain_epochs=30,
    ...         max_epochs=30, random_state=0))
    >>> result.n_clusters.tolist()
    [2, 3, 4]
    >>> result.bic.shape
    (3,)
    """
    if estimator is not None and not isinstance(estimator, VaDEClustering):
        raise TypeError(
            "estimator must be a VaDEClustering (its parameters configure every "
            f"candidate), got {type(estimator).__name__}. To compare other "
            "clusterers over n_clusters, use GridSearchCV."
        )
    if isinstance(n_clusters_values, Integral) or not all(
            isinstance(k, Integral) and not isinstance(k, bool)
            for k in np.ravel(np.asarray(n_clusters_values, dtype=object))):
        raise TypeError(
            "n_clusters_values must be a list of integers, the candidates (e.g. "
            f"[5, 10, 15]), got {n_clusters_values!r}."
        )
    values = sorted({int(k) for k in n_clusters_values})
    if not values or values[0] < 1:
        raise ValueError(
            "n_clusters_values must hold at least one integer >= 1, got "
            f"{list(n_clusters_values)!r}."
        )
    n_samples = _num_samples(X)  # fail early on bad X
    if values[-1] > n_samples:
        raise ValueError(
            f"n_clusters_values holds {values[-1]}, more clusters than the "
            f"n_samples={n_samples} of X: VaDE needs at least one sample per "
            "cluster. Drop the candidates above n_samples.")
    base = clone(estimator if estimator is not None else VaDEClustering())
    base.set_params(warm_start=False)
    if base.random_state is None:
        # one seed for every candidate, or none would find the others' pretraining
        base.set_params(random_state=draw_seed(local_random_state(None)))
    estimators, elbo, bic, entropy, n_params, seconds = [], [], [], [], [], []
    pretrain_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="sklearn_vade_") as scratch:
        memory = scratch if base.memory is None else base.memory
        for K in values:
            est = clone(base).set_params(n_clusters=K, memory=memory)
            start = time.perf_counter()
            est.fit(X)
            if est.interrupted_:  # Ctrl-C: fit has warned; stop the search
                raise KeyboardInterrupt
            # the first candidate pretrains; the others load it
            pretrain_seconds = pretrain_seconds or est.timings_["pretraining"]
            seconds.append(time.perf_counter() - start - est.timings_["pretraining"])
            est.set_params(memory=base.memory)  # not the removed scratch folder
            p = n_mixture_parameters(K, est.latent_dim)
            estimators.append(est)
            elbo.append(est.lower_bound_)
            n_params.append(p)
            bic.append(-2.0 * n_samples * est.lower_bound_ + p * math.log(n_samples))
            log_gamma = torch.log(torch.as_tensor(est.predict_proba(X)))
            entropy.append(float(entropy_categorical(log_gamma).mean()))
            if verbose:
                print(f"n_clusters={K}: ELBO {elbo[-1]:.4f} nats/sample, BIC "
                      f"{bic[-1]:.6g}, {seconds[-1]:.1f} s")
    elbo, bic, entropy = np.array(elbo), np.array(bic), np.array(entropy)
    icl = bic + 2.0 * n_samples * entropy
    best = {"bic": lambda: int(np.argmin(bic)), "icl": lambda: int(np.argmin(icl)),
            "elbo": lambda: int(np.argmax(elbo))}[criterion]()
    return Bunch(n_clusters=np.array(values), elbo=elbo, bic=bic, icl=icl,
                 entropy=entropy,
                 n_parameters=np.array(n_params), fit_seconds=np.array(seconds),
                 estimators=estimators, best_index=best,
                 best_n_clusters=values[best], best_estimator=estimators[best],
                 criterion=criterion, pretrain_seconds=pretrain_seconds)
