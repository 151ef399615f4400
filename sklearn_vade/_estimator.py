"""VaDEClustering: the scikit-learn estimator."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import metadata_routing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    check_memory,
    validate_data,
)

from ._dask import blockwise, is_dask_array
from ._data import feature_scaling
from ._distributed import ALONE, replicas
from ._inference import (
    decode,
    evaluate_fitted,
    inference_network,
    sample_latent,
)
from ._network import PI_UPDATES, permute_components
from ._outofcore import MappedRows, is_mapped
from ._run import Prepared, fit_single
from ._utils import (
    draw_seed,
    local_random_state,
    resolve_device,
    unchanged_on_error,
    warn_user,
)
from ._validation import (
    check_hidden_layer_sizes,
    check_params_vs_input,
    model_spec,
    resolve_likelihood,
)

# Parameters and fitted attributes added since models were first saved, with the
# value a model saved before them gets when loaded (see __setstate__).
_ADDED_SINCE_SAVED = {"memory": None, "interrupted_": None,
                      "inference_precision": "float64", "init_method_": None}


class VaDEClustering(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator
):
    """Variational Deep Embedding: a VAE with a Gaussian-mixture prior, for clustering.

    The generative model is ``p(c) = Cat(pi)``, ``p(z|c) = N(mu_c, diag sigma2_c)`` and
    ``p(x|z)`` Bernoulli (data in [0, 1]) or Gaussian, decoded by a neural network. An
    encoder gives ``q(z|x) = N(mu~(x), diag sigma2~(x))``; the cluster posterior
    ``gamma = q(c|x)`` is not learnt but computed as ``p(c|z)`` by Bayes' rule.

    ``fit`` (1) pretrains the encoder and decoder as an autoencoder, (2) partitions
    the latent means without labels (by default a UMAP embedding clustered by a
    Gaussian mixture, see ``init_params``) and sets pi, mu_c and sigma2_c to the
    moments of each cluster's codes, and (3) maximises the evidence lower bound
    (ELBO) over all parameters with Adam, starting with an anchored warm-up in
    which ``q(c|x)`` is that partition. A sample's cluster is the argmax of gamma.

    Parameters
    ----------
    n_clusters : int, default=10
        Number of mixture components.

    latent_dim : int, default=10
        Dimension of the latent space z.

    hidden_layer_sizes : tuple of int, default=(500, 500, 2000)
        Widths of the encoder's hidden layers; the decoder mirrors them. An empty
        tuple gives a linear encoder and decoder.

    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        The decoder's distribution ``p(x|z)``. ``"bernoulli"`` needs X in [0, 1].
        ``"gaussian"`` standardises each feature internally and learns one noise
        variance per feature; it suits real-valued data on any scale. ``"auto"``
        picks Bernoulli when all of X lies in [0, 1], Gaussian otherwise.

    pi_update : {"em", "renormalize", "softmax", "unconstrained", "fixed"}, \
            default="em"
        How the mixture weights pi are learnt. ``"em"``: after each step pi moves
        toward the batch mean of gamma (the ELBO's maximiser in pi), as a running
        average. ``"renormalize"``: pi is trained by Adam, then clipped to a small
        floor and renormalised after each step. ``"softmax"``: pi is the softmax of
        free logits. ``"unconstrained"``: the paper's free parameter (floored at a
        small positive value; ``weights_`` reports it normalised). ``"fixed"``: pi
        keeps its initial value.

    init_params : {"umap", "umap-mixture", "umap-merge", "gmm"}, default="umap"
        How the mixture prior is initialised from the pretrained codes. The
        codes are embedded with UMAP (``n_clusters`` dimensions, 15 neighbours,
        ``min_dist=0``), as in N2D, and the embedding is partitioned; pi, mu_c
        and sigma2_c are then the weights, means and variances of each cluster's
        codes. ``"umap-mixture"``: a full-covariance Gaussian mixture with
        ``n_clusters`` components is fitted in the embedding ten times and the
        restart that agrees best with the others (mean adjusted Rand index) is
        kept; it cuts a large class into pieces when the classes are of very
        unequal size. ``"umap-merge"``: the embedding is over-clustered by
        mixtures with ``2 * n_clusters`` components, which are merged back to
        ``n_clusters`` by the overlap of their posteriors, keeping small,
        separated clusters whole, with no rule on cluster sizes; it joins
        classes that touch. ``"umap"``: both, keeping the partition whose
        clusters are better separated in the embedding (the higher mean
        silhouette); see the user guide for what it chose on the benchmark
        sets. Below 200 samples the UMAP starts fall back to ``"gmm"``: the
        paper's start, a diagonal Gaussian mixture on the codes (ten restarts,
        the most likely kept). Either way the joint phase begins with an
        anchored warm-up on that partition (except in a fit continued by
        ``warm_start``).

    pretrain_epochs : int or "auto", default="auto"
        Epochs of autoencoder pretraining; 0 skips it. ``"auto"`` gives one
        gradient step per sample (at least 50, at most 1200) and between 50 and
        1000 epochs: 150 epochs on 1797 samples, 50 on 70,000.

    max_epochs : int or "auto", default="auto"
        Maximum number of epochs of the joint ELBO training, its anchored warm-up
        included; 0 stops after the mixture initialisation. The warm-up gets one
        step per sample (at most 1000 steps) and at least 25 epochs, and at most
        half of an explicit ``max_epochs``; after 25 epochs it ends early once
        the partition by gamma agrees with the start (adjusted Rand index 0.99)
        and the ELBO of the last 20 epochs no longer rises.
        ``"auto"`` gives the warm-up's budget plus 50 epochs (125 + 50 on 1797
        samples, 25 + 50 on 70,000); there the warm-up goes on beyond its
        budget, up to twice it, while gamma's agreement with the start still
        rises, and the 50 epochs follow its end.

    batch_size : int, default=256
        Minibatch size of both training phases (capped at the number of samples).

    learning_rate : float, default=1e-4
        Adam's step size in the joint phase; pretraining and the anchored warm-up
        use ten times this value. The step decays by 1% per epoch, except during
        the anchored warm-up.

    reconstruction_weight : float, default=1.0
        Weight of the reconstruction term ``E_q[log p(x|z)]`` in the training
        objective (the other four ELBO terms keep weight 1). Values above 1 make
        the codes follow the data more closely than the mixture prior; the original
        VaDE code used 5 for the HHAR sensor data. ``score``, ``lower_bound_`` and the
        ``elbo`` of ``history_`` always report the unweighted ELBO.

    n_init : int, default=1
        Number of complete fits from different seeds; the one with the highest final
        ELBO is kept (labels are never used).

    tol : float, default=1e-3
        Training stops when fewer than this fraction of the samples changed cluster
        during an epoch.

    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train. ``"auto"`` uses CUDA when available. Inference
        (``predict``, ``predict_proba``, ``transform``, ``score_samples``,
        ``inverse_transform``, ``sample``) runs from the fitted numpy arrays, on
        the CPU in float64 unless ``inference_precision="float32"``: a model
        fitted on a GPU predicts on machines without one, and its outputs do not
        depend on batch size or device.

    precision : {"float32", "bfloat16", "auto"}, default="float32"
        The arithmetic of training (both phases; inference is unaffected, see
        ``device``). ``"bfloat16"`` runs the network's matrix products under
        ``torch.autocast`` in bfloat16 while the ELBO, the mixture and the weights
        stay float32: about 1.7x faster training steps where the hardware computes
        bfloat16 natively (CPUs with AVX-512 bf16 or AMX, GPUs from NVIDIA Ampere on),
        several times slower where it is emulated (e.g. CPUs with only AVX2).
        ``"auto"`` picks bfloat16 only where it is native, so its results depend on
        the machine. Its accuracy is measured in the benchmarks (docs: Benchmarks).

    inference_precision : {"float64", "float32"}, default="float64"
        The arithmetic of inference (``predict``, ``predict_proba``,
        ``transform``, ``score_samples``, ``score``, ``inverse_transform``,
        ``sample``); ``labels_``, ``lower_bound_`` and the choice among ``n_init``
        runs always use float64. ``"float64"``: on the CPU, each row's result a
        function of that row alone. ``"float32"``: about twice as fast on a CPU
        and on the GPU when ``device`` gives one (CUDA available and ``device``
        ``"auto"`` or ``"cuda"``); the arrays returned are float32, and differ
        from float64's by about 1e-5 (probabilities) and may change in their last
        digits with the batch of rows (measured in the user guide). It can be
        changed after fit with ``set_params``.

    random_state : int, RandomState instance or None, default=None
        Seeds numpy and a local ``torch.Generator``. Global generators are never
        touched. Pass an int for reproducible results: the same seed, data, device
        and number of torch threads give bit-identical results (another thread
        count changes the order of floating-point sums, and so the fit).

    verbose : int, default=0
        0 is silent; 1 shows a progress bar per phase; 2 also prints every epoch.

    memory : str or object with the joblib.Memory interface, default=None
        Caches the pretrained autoencoder. A string is the path to the caching
        directory; None caches nothing. A fit whose data, network
        (``latent_dim``, ``hidden_layer_sizes``, ``likelihood``), pretraining
        (``pretrain_epochs``, ``batch_size``, ``learning_rate``, ``precision``),
        seed, device, arithmetic (CPU kind, torch's thread count and float32
        matmul precision; on a GPU its name, CUDA and TF32 settings) and
        package code match an earlier one loads that pretraining instead of
        repeating it, and ends exactly as it would have without the cache.
        Fits that differ only in ``n_clusters`` or the joint phase's
        parameters share one pretraining: a grid search over ``n_clusters``
        pretrains once per fold, and :func:`select_n_clusters`
        once in all. The key hashes X (one pass over it). Not used in
        data-parallel training.

    warm_start : bool, default=False
        If True, a second call to ``fit`` continues the joint training from the
        previous fit (no pretraining, no new initialisation, ``n_init`` ignored).
        ``n_clusters``, ``latent_dim``, ``hidden_layer_sizes``, ``pi_update`` and
        an explicit ``likelihood`` must match the previous fit (else ValueError);
        ``likelihood="auto"`` keeps the fitted likelihood.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample, ``predict(X)``.

    likelihood_ : {"bernoulli", "gaussian"}
        The likelihood used (what ``likelihood="auto"`` resolved to).

    weights_ : ndarray of shape (n_clusters,)
        Mixture weights pi, on the simplex.

    means_ : ndarray of shape (n_clusters, latent_dim)
        Component means mu_c in latent space.

    covariances_ : ndarray of shape (n_clusters, latent_dim)
        Component variances sigma2_c (diagonal covariances).

    lower_bound_ : float
        Mean per-sample ELBO on the training data at the end of fit (nats).

    lower_bounds_ : list of float
        Mean minibatch ELBO of each training epoch.

    converged_ : bool
        Whether the joint training met ``tol`` before ``max_epochs``.

    n_iter_ : int
        Number of joint-training epochs run. When the last epoch's model left a
        component without samples, the model kept is the most recent one with
        every component in use among the last five epochs whose minibatches used
        every component and the model at the end of the anchored warm-up; if none
        has, the one of them that leaves the fewest empty, when that is fewer
        (with a ConvergenceWarning naming it).

    history_ : list of dict
        One record per training epoch, for diagnostics: ``elbo`` (mean over the
        epoch's minibatches, at sampled z) and its five terms ``reconstruction``,
        ``log_prior_z``, ``log_prior_c``, ``entropy_z`` and ``entropy_c`` (the mean
        entropy of the cluster posterior gamma, in nats: near 0 when every sample
        belongs clearly to one cluster), ``objective`` (what was maximised: the ELBO
        with the reconstruction weighted), ``label_change`` (fraction of samples
        that changed cluster), ``init_agreement`` (adjusted Rand index between the
        epoch's partition and the initial one: a label-free measure of how far the
        joint phase moved from its start; None in a fit continued by
        ``warm_start``), ``warmup`` (whether the epoch was part
        of the anchored warm-up, whose ``elbo`` uses the anchored ``q(c|x)``),
        ``min_weight`` (smallest pi), ``occupancy`` (samples per component, by
        argmax gamma) and ``n_empty`` (components with none).

    pretrain_losses_ : list of float
        Mean reconstruction loss of each pretraining epoch.

    timings_ : dict
        Wall-clock seconds of each phase of the kept run: ``pretraining``,
        ``initialisation``, ``training`` (of which ``warmup``, the anchored
        warm-up), ``evaluation``.

    interrupted_ : {"pretraining", "training"} or None
        The phase a KeyboardInterrupt (Ctrl-C) ended (see ``fit``); None when
        fit ran to its end.

    init_method_ : {"umap-mixture", "umap-merge", "gmm"} or None
        The start the model was initialised from: with the default
        ``init_params="umap"``, which of the two UMAP partitions was kept;
        ``"gmm"`` where a UMAP start fell back to it (under 200 samples, or
        after an interrupted pretraining). A fit continued by ``warm_start``
        keeps the earlier fit's; None on a model saved before this attribute
        existed.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.

    See Also
    --------
    sklearn.mixture.GaussianMixture : The same mixture, on the raw data.
    sklearn.cluster.KMeans : Hard clustering on the raw data.

    References
    ----------
    Z. Jiang, Y. Zheng, H. Tan, B. Tang and H. Zhou, "Variational Deep Embedding: An
    Unsupervised and Generative Approach to Clustering", IJCAI 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_vade import VaDEClustering
    >>> X = load_digits().data[:300] / 16
    >>> vade = VaDEClustering(n_clusters=10, hidden_layer_sizes=(64, 64),
    ...                       pretrain_epochs=20, max_epochs=20, random_state=0)
    >>> labels = vade.fit_predict(X)
    >>> labels.shape
    (300,)
    >>> vade.predict_proba(X).sum(axis=1).round(6).min()
    np.float64(1.0)
    """

    # fit's ``sharded`` says how this process's X relates to the other processes'
    # (see fit), it is not data for metadata routing: no set_fit_request for it
    __metadata_request__fit = {"sharded": metadata_routing.UNUSED}

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like"],
        "likelihood": [StrOptions({"auto", "bernoulli", "gaussian"})],
        "pi_update": [StrOptions(set(PI_UPDATES))],
        "init_params": [StrOptions({"umap", "umap-mixture", "umap-merge", "gmm"})],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left"),
                            StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 0, None, closed="left"),
                       StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "reconstruction_weight": [Interval(Real, 0, None, closed="neither")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "precision": [StrOptions({"float32", "bfloat16", "auto"})],
        "inference_precision": [StrOptions({"float64", "float32"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "memory": [str, HasMethods("cache"), None],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        n_clusters=10,
        *,
        latent_dim=10,
        hidden_layer_sizes=(500, 500, 2000),
        likelihood="auto",
        pi_update="em",
        init_params="umap",
        pretrain_epochs="auto",
        max_epochs="auto",
        batch_size=256,
        learning_rate=1e-4,
        reconstruction_weight=1.0,
        n_init=1,
        tol=1e-3,
        device="auto",
        precision="float32",
        inference_precision="float64",
        random_state=None,
        verbose=0,
        memory=None,
        warm_start=False,
    ):
        self.n_clusters = n_clusters
        self.latent_dim = latent_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.likelihood = likelihood
        self.pi_update = pi_update
        self.init_params = init_params
        self.pretrain_epochs = pretrain_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reconstruction_weight = reconstruction_weight
        self.n_init = n_init
        self.tol = tol
        self.device = device
        self.precision = precision
        self.inference_precision = inference_precision
        self.random_state = random_state
        self.verbose = verbose
        self.memory = memory
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, sharded=False):
        """Pretrain, initialise and train VaDE on X.

        A KeyboardInterrupt (Ctrl-C) during pretraining or training ends fit early
        with a warning: the model is the state at the end of the last completed
        epoch (after an interrupted pretraining, the mixture is initialised on the
        autoencoder as it is and the joint phase is skipped), and further ``n_init``
        runs are not started. An interrupt at any other moment leaves the estimator
        as it was before fit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse matrices (CSR or CSC) are densified batch by
            batch, never as a whole. A ``numpy.memmap`` is read out of core: a
            block of rows at a time, in an I/O-friendly shuffle (blocks of
            contiguous rows in random order, rows shuffled within windows of
            blocks), so that data larger than memory can be fitted; a NaN or
            infinity is reported with the rows that hold it. Inside an
            initialised ``torch.distributed`` process group of several
            processes, every process passes the same X and trains on its share
            of each batch, or, with ``sharded=True``, its own rows of the data;
            all end with the same model (see the user guide's "Scaling up"
            page).
        y : Ignored
            Not used, present for API consistency by convention.
        sharded : bool, default=False
            Only inside a ``torch.distributed`` process group of several
            processes: True when each process passes its own rows of the data
            (with the same features, dtype and parameters in every process). The
            model is fitted to the union of the processes' rows, as if one
            process had fitted all of them; ``labels_`` are those of this
            process's rows, ``lower_bound_`` is the bound over all of them.
            Every process must hold at least one row per minibatch of an epoch
            (``ceil(n_rows / batch_size)`` rows). Ignored outside a process
            group.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        # nothing on the estimator changes unless the block completes
        with unchanged_on_error(self):
            continuing = self.warm_start and hasattr(self, "_state")
            # in data-parallel training every process checks that all agree
            X, group = replicas().agree_on_input(
                lambda: self._validate(X, continuing), self.get_params(), sharded)
            prep = self._configure(X, continuing, group)
            memory = None if self.memory is None else check_memory(self.memory)
            # the same seeds on every process of data-parallel training
            rng = prep.replicas.broadcast_object(local_random_state(self.random_state))
            n_runs = 1 if continuing else self.n_init
            # every run's seed first: a run's pretraining (and so its place in
            # memory's cache) then does not depend on what earlier runs' starts drew
            seeds = [draw_seed(rng) for _ in range(n_runs)]
            best = None
            for seed in seeds:
                run = fit_single(prep, seed, rng, self.verbose,
                                 self._state if continuing else None, memory)
                if best is None or run.lower_bound > best.lower_bound:
                    best = run
                if run.interrupted:
                    break
            self._set_fitted_state(best, prep.X, prep.config, prep.offset, prep.scale,
                                   prep.replicas)
            if prep.replicas.is_main:  # the same warnings would come from every process
                self._warn_about_fit(best, prep.config)
        return self

    def _prepare(self, X, continuing, group=ALONE):
        """Validate X and the parameters; resolve the fit's configuration
        (:meth:`_validate`, then :meth:`_configure`)."""
        return self._configure(self._validate(X, continuing), continuing, group)

    def _validate(self, X, continuing):
        """X validated: a numpy array, a CSR matrix or, for a ``numpy.memmap``,
        a :class:`~._outofcore.MappedRows` (validated without reading it: shape
        and features here, its values by its scans)."""
        if is_mapped(X):
            validate_data(self, X, dtype="numeric", ensure_all_finite=False,
                          reset=not continuing)
            X = MappedRows(X)
        else:
            X = validate_data(self, X, dtype=[np.float64, np.float32],
                              accept_sparse=("csr", "csc"), reset=not continuing)
            X = X.tocsr() if sp.issparse(X) else X
        return X

    def _configure(self, X, continuing, group):
        """The :class:`~._run.Prepared` fit of the validated X by the processes
        ``group`` (see :mod:`._distributed`): the parameters checked and resolved
        against the data (with sharded input, against every process's rows: their
        number, value range and feature moments)."""
        check_hidden_layer_sizes(self.hidden_layer_sizes)
        device = resolve_device(self.device)
        config = check_params_vs_input(self.get_params(), X, device, group)
        group.check_shards(config.batch_size)
        if continuing:
            config = self._continuation_config(config, X, group)
            offset, scale = self._x_offset, self._x_scale
        else:
            offset, scale = feature_scaling(X, config.likelihood, group)
        return Prepared.from_validated(X, config, device, offset, scale, group)

    def _continuation_config(self, config, X, group=ALONE):
        """The configuration of a warm-started fit: the network and likelihood of
        the previous fit, which the parameters must not contradict."""
        fitted = self._config
        new = model_spec(config)
        for name in ("n_clusters", "latent_dim", "hidden_layer_sizes", "pi_update"):
            if new[name] != fitted[name]:
                raise ValueError(
                    f"warm_start=True continues the previous fit, whose {name} was "
                    f"{fitted[name]!r}; got {name}={new[name]!r}. Set "
                    "warm_start=False to fit a new model."
                )
        if self.likelihood not in ("auto", fitted["likelihood"]):
            raise ValueError(
                "warm_start=True continues the previous fit, whose likelihood was "
                f"{fitted['likelihood']!r}; got likelihood={self.likelihood!r}. Set "
                "warm_start=False to fit a new model."
            )
        if fitted["likelihood"] == "bernoulli":
            resolve_likelihood("bernoulli", X, group)  # X must still lie in [0, 1]
        # a continued fit has no initial partition, so no anchored warm-up: the
        # "auto" budget is the joint epochs alone
        max_epochs = config.max_epochs
        if self.max_epochs == "auto":
            max_epochs -= config.warmup_epochs
        return config._replace(likelihood=fitted["likelihood"], warmup_epochs=0,
                               warmup_extension=0, max_epochs=max_epochs)

    def _set_fitted_state(self, run, X, config, offset, scale, group=ALONE):
        """Keep the best run, put occupied components first (occupied over every
        process's rows with sharded input), run a final E-step."""
        occupancy = group.sum_over_shards(np.bincount(
            run.evaluation.log_gamma.argmax(axis=1), minlength=config.n_clusters))
        occupied = np.flatnonzero(occupancy)
        order = np.concatenate([occupied, np.setdiff1d(np.arange(config.n_clusters),
                                                       occupied)])
        state = permute_components(run.state, order)
        spec = model_spec(config)
        net = inference_network(state, spec, X.shape[1])
        # The final E-step: reordering the components permutes gamma's columns and
        # leaves the ELBO unchanged, so the run's own pass over X gives it exactly.
        log_gamma = run.evaluation.log_gamma[:, order]
        with torch.no_grad():
            weights = net.prior.weights.cpu().numpy()
            means = net.prior.mu_c.cpu().numpy().copy()
            covariances = torch.exp(net.prior.log_var_c).cpu().numpy()
        # Every fitted attribute is assigned here, after all the work is done, so
        # that an exception or interrupt never leaves a half-fitted estimator.
        self._state, self._config = state, spec
        self._cached_net = ((torch.float64, torch.device("cpu")), net)
        self._x_offset, self._x_scale = offset, scale
        self.likelihood_ = config.likelihood
        self.weights_, self.means_, self.covariances_ = weights, means, covariances
        self.labels_ = log_gamma.argmax(axis=1)
        self.lower_bound_ = run.lower_bound
        self.lower_bounds_ = [h["elbo"] for h in run.history]
        self.history_ = run.history
        self.pretrain_losses_ = run.pretrain_losses
        self.converged_ = run.converged
        self.n_iter_ = run.n_iter
        self.timings_ = run.timings
        self.interrupted_ = run.interrupted
        if run.start_method is not None or not hasattr(self, "init_method_"):
            self.init_method_ = run.start_method  # a continued fit keeps its start
        self._n_features_out = config.latent_dim

    def _warn_about_fit(self, run, config):
        if run.interrupted:
            warn_user(
                f"VaDEClustering.fit was interrupted during {run.interrupted} "
                f"(KeyboardInterrupt): the model is the state after "
                f"{len(run.pretrain_losses)} pretraining and {run.n_iter} training "
                "epochs. Call fit again to train fully, or set warm_start=True to "
                "continue the joint training.",
                UserWarning,
            )
        elif not run.converged and config.max_epochs > 0:
            if self.max_epochs == "auto":
                advice = (
                    "With the 'auto' budget this is common: the samples still "
                    "moving lie on borders between clusters (on the digits, 300 "
                    "joint epochs instead of 50 moved the median accuracy by 0.002). "
                    "history_ shows label_change per epoch; raise tol to stop "
                    "earlier, or max_epochs to train longer.")
            else:
                advice = "Increase max_epochs, or raise tol."
            warn_user(
                f"VaDEClustering did not converge: more than tol={self.tol} of the "
                f"samples still changed cluster after max_epochs={self.max_epochs!r} "
                f"({run.n_iter} epochs). " + advice,
                ConvergenceWarning,
            )
        if run.recoveries:
            warn_user(
                f"VaDEClustering training produced non-finite values {run.recoveries} "
                "time(s); each time it was rolled back to the last good state and "
                "continued with half the learning rate. A lower learning_rate may "
                "train faster.",
                ConvergenceWarning,
            )
        if run.kept_epochs is not None:
            which = ("the most recent in which every component held samples"
                     if not run.kept_empty else
                     f"which left the fewest empty ({run.kept_empty})")
            warn_user(
                f"VaDEClustering's joint training emptied {run.emptied} of the "
                f"{config.n_clusters} components by its last epoch; the model kept "
                f"is that after epoch {run.kept_epochs} of {run.n_iter}, {which} "
                "(history_ shows the "
                "drift: n_empty, init_agreement). The data may have fewer clusters; a "
                "smaller n_clusters, or a smaller max_epochs, avoids it.",
                ConvergenceWarning,
            )
        counts = np.bincount(self.labels_, minlength=config.n_clusters)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            warn_user(
                f"{len(empty)} of the {config.n_clusters} components of VaDEClustering "
                f"hold no training sample (components {empty.tolist()}, with weights "
                f"{np.round(self.weights_[empty], 4).tolist()}): the data may have "
                "fewer clusters. Try a smaller n_clusters, or compare several with "
                "score (the ELBO).",
                ConvergenceWarning,
            )

    # ---------------------------------------------------------------- internals
    def _network(self):
        """The fitted network for inference, in the dtype and on the device of
        ``inference_precision`` (kept until they change)."""
        if self.inference_precision == "float32":
            gpu = self.device != "cpu" and torch.cuda.is_available()
            setting = (torch.float32, torch.device("cuda" if gpu else "cpu"))
        else:
            setting = (torch.float64, torch.device("cpu"))
        cached = getattr(self, "_cached_net", None)
        if cached is None or cached[0] != setting:
            self._cached_net = (setting, inference_network(
                self._state, self._config, self.n_features_in_, *setting))
        return self._cached_net[1]

    def _output_dtype(self):
        """The dtype of inference's arrays."""
        return np.float32 if self.inference_precision == "float32" else np.float64

    def _evaluate(self, X, elbo=True):
        """The fitted model's deterministic pass over validated X."""
        return evaluate_fitted(self._network(), X, self._config, self._x_offset,
                               self._x_scale, elbo)

    def _check_fitted_input(self, X):
        check_is_fitted(self, "_state")
        X = validate_data(self, X, dtype=[np.float64, np.float32],
                          accept_sparse=("csr", "csc"), reset=False)
        X = X.tocsr() if sp.issparse(X) else X
        if self._config["likelihood"] == "bernoulli":
            resolve_likelihood("bernoulli", X)  # the check and message of fit
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cached_net", None)
        return state

    def __setstate__(self, state):
        # a model saved before a parameter or fitted attribute existed gets its
        # default, so that get_params, clone and repr work on it
        state = dict(state)
        fitted = "_state" in state
        for name, default in _ADDED_SINCE_SAVED.items():
            if fitted or not name.endswith("_"):  # attributes only on fitted models
                state.setdefault(name, default)
        super().__setstate__(state)

    # --------------------------------------------------------------- inference
    def predict(self, X):
        """Cluster of each sample: argmax of gamma at the posterior mean of z.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Sparse matrices (CSR or CSC) are densified batch by batch. A dask
            array gives a dask array, computed block of rows by block of rows.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.predict_proba(X).argmax(axis=1)

    def predict_proba(self, X):
        """Cluster posterior gamma = p(c | z = mu~(x)) of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Sparse matrices (CSR or CSC) are densified batch by batch. A dask
            array gives a dask array, computed block of rows by block of rows.

        Returns
        -------
        gamma : ndarray of shape (n_samples, n_clusters)
            Rows sum to 1.
        """
        if is_dask_array(X):
            check_is_fitted(self, "_state")
            return blockwise(self.predict_proba, X, self.n_features_in_,
                              len(self.weights_), self._output_dtype())
        X = self._check_fitted_input(X)
        return np.exp(self._evaluate(X, elbo=False).log_gamma)

    def transform(self, X):
        """Posterior mean mu~(x) of the latent code of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Sparse matrices (CSR or CSC) are densified batch by batch. A dask
            array gives a dask array, computed block of rows by block of rows.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
        """
        if is_dask_array(X):
            check_is_fitted(self, "_state")
            return blockwise(self.transform, X, self.n_features_in_,
                              self.means_.shape[1], self._output_dtype())
        X = self._check_fitted_input(X)
        return self._evaluate(X, elbo=False).mu

    def inverse_transform(self, X):
        """Decode latent codes back to data space: the mean of ``p(x|z)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim)
            Latent codes z, e.g. from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Decoded means on the original data scale (pixel probabilities for the
            Bernoulli likelihood).
        """
        check_is_fitted(self, "_state")
        Z = check_array(X, dtype=self._output_dtype())
        if Z.shape[1] != self.means_.shape[1]:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects latent "
                f"codes of latent_dim={self.means_.shape[1]} features."
            )
        return decode(self._network(), Z, self._config["likelihood"],
                      self._x_offset, self._x_scale)

    def score_samples(self, X):
        """Per-sample ELBO (a lower bound on log p(x), in nats, on X's own scale).

        The reconstruction term is estimated with an antithetic pair of draws of
        z per row, a fixed function of that row's values: the result is
        deterministic, each row's value does not depend on the other rows, and the
        sampling noise of the mean over rows shrinks as ``1/sqrt(n_samples)``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Sparse matrices (CSR or CSC) are densified batch by batch. A dask
            array gives a dask array, computed block of rows by block of rows.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
        """
        if is_dask_array(X):
            check_is_fitted(self, "_state")
            return blockwise(self.score_samples, X, self.n_features_in_, None,
                              self._output_dtype())
        X = self._check_fitted_input(X)
        return self._evaluate(X).elbo

    def score(self, X, y=None):
        """Mean per-sample ELBO of X (higher is better).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Sparse matrices (CSR or CSC) are densified batch by batch. A dask
            array gives a dask array, computed block of rows by block of rows.
        y : Ignored

        Returns
        -------
        elbo : float
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1):
        """Generate samples: c ~ Cat(pi), z ~ N(mu_c, sigma2_c), x = decoder mean.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Decoded means on the original data scale (pixel probabilities for the
            Bernoulli likelihood).
        y : ndarray of shape (n_samples,)
            Component of each sample.
        """
        check_is_fitted(self, "_state")
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires "
                "at least one sample."
            )
        z, y = sample_latent(self.weights_, self.means_, self.covariances_, n_samples,
                             local_random_state(self.random_state))
        return decode(self._network(), z, self._config["likelihood"],
                      self._x_offset, self._x_scale), y
