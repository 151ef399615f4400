"""One run of fit, from one seed: pretraining, the start, the joint phase and the
final E-step, as module-level functions of their inputs.

Nothing here sees the estimator: :meth:`VaDEClustering.fit` validates the data and
the parameters into a :class:`Prepared`, calls :func:`fit_single` once per
``n_init`` run, keeps the best :class:`Run` and only then sets its own attributes.
"""

import time
from typing import NamedTuple

import numpy as np
import torch

from ._data import training_rows
from ._distributed import replicas
from ._inference import evaluate_fitted, inference_network, state_tensors
from ._init import initialise_mixture
from ._network import VaDENetwork
from ._pretrain import pretrain_autoencoder
from ._progress import progress_factory
from ._training import train_vade
from ._utils import draw_seed, torch_generator
from ._validation import model_spec


class Prepared(NamedTuple):
    """Validated data and the resolved configuration of one call to fit."""

    X: object  # ndarray or CSR matrix, as validated
    config: object  # FitConfig
    device: torch.device
    offset: np.ndarray  # per-feature scaling (see _data.feature_scaling)
    scale: np.ndarray
    X_train: object  # rows as standardised float32 tensors on the device
    replicas: object  # the processes training together (see _distributed)

    @classmethod
    def from_validated(cls, X, config, device, offset, scale):
        return cls(X, config, device, offset, scale,
                   training_rows(X, offset, scale, device), replicas())

    def network(self, generator):
        """A new float32 network of this fit's spec on the training device."""
        return VaDENetwork.from_spec(model_spec(self.config), self.X.shape[1],
                                     generator, self.device, torch.float32)


class Pretrained(NamedTuple):
    """Weights of a pretrained autoencoder (no prior), its losses and seconds."""

    weights: dict
    losses: list
    seconds: float


class Run(NamedTuple):
    """One complete fit from one seed."""

    state: dict  # the network's arrays (float64 numpy)
    pretrain_losses: list
    history: list
    n_iter: int
    converged: bool
    lower_bound: float
    timings: dict
    evaluation: object  # the deterministic pass over the training data
    interrupted: object  # None, or the phase that a KeyboardInterrupt stopped
    recoveries: int
    kept_epochs: object = None  # see TrainResult
    emptied: int = 0  # see TrainResult
    kept_empty: int = 0  # see TrainResult


class _Clock:
    """Wall-clock seconds of successive phases."""

    def __init__(self):
        self.laps = {}
        self._last = time.perf_counter()

    def lap(self, name):
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _progress(verbose, replicas):
    """Progress lines from process 0 only."""
    return progress_factory(verbose if replicas.is_main else 0)


def pretrain_only(prep, rng, verbose=0):
    """Pretrain the autoencoder alone (for fits of several ``n_clusters`` that share
    it). Returns a :class:`Pretrained`; a KeyboardInterrupt propagates."""
    generator = torch_generator(draw_seed(rng), prep.device)
    net = prep.network(generator)
    prep.replicas.broadcast_module_(net)
    start = time.perf_counter()
    result = pretrain_autoencoder(net, prep.X_train, prep.config, generator,
                                  _progress(verbose, prep.replicas), prep.replicas)
    if result.interrupted:
        raise KeyboardInterrupt
    weights = {k: v.detach().cpu().numpy().copy()
               for k, v in net.autoencoder_state().items()}
    return Pretrained(weights=weights, losses=result.losses,
                      seconds=time.perf_counter() - start)


def fit_single(prep, rng, verbose=0, warm_state=None, pretrained=None):
    """One complete fit from one seed: pretrain (unless ``pretrained`` weights are
    given), initialise, train, evaluate.

    ``warm_state``, the state of an earlier fit, continues its joint training
    instead (no pretraining, no start). Returns a :class:`Run`.
    """
    X, X_train, config, device = prep.X, prep.X_train, prep.config, prep.device
    replicas = prep.replicas
    generator = torch_generator(draw_seed(rng), device)
    progress = _progress(verbose, replicas)
    clock = _Clock()
    net = prep.network(generator)
    replicas.broadcast_module_(net)  # the same start on every process
    interrupted, recoveries, max_epochs = None, 0, config.max_epochs
    anchor = None
    if warm_state is not None:
        net.load_state_dict(state_tensors(warm_state, device, torch.float32))
        pretrain_losses = []
    else:
        if pretrained is None:
            pretrain = pretrain_autoencoder(net, X_train, config, generator, progress,
                                            replicas)
            pretrain_losses, recoveries = pretrain.losses, pretrain.recoveries
            if pretrain.interrupted:
                interrupted, max_epochs = "pretraining", 0
        else:
            net.load_state_dict(state_tensors(pretrained.weights, device,
                                              torch.float32), strict=False)
            pretrain_losses = list(pretrained.losses)
        clock.lap("pretraining")
        # after an interrupted pretraining, the quick start (no UMAP)
        start = initialise_mixture(
            net, X_train,
            config._replace(init_params="gmm") if interrupted else config, rng,
            replicas)
        anchor = start.labels
        clock.lap("initialisation")
    train = train_vade(net, X_train, config, generator, progress, max_epochs, anchor,
                       replicas)
    if train.interrupted:
        interrupted = "training"
    clock.lap("training")
    state = {k: v.detach().cpu().double().numpy().copy()
             for k, v in net.state_dict().items()}
    spec = model_spec(config)
    evaluation = evaluate_fitted(inference_network(state, spec, X.shape[1]), X, spec,
                                 prep.offset, prep.scale, codes=False)
    clock.lap("evaluation")
    return Run(state=state, pretrain_losses=pretrain_losses, history=train.history,
               n_iter=train.n_epochs, converged=train.converged and not interrupted,
               lower_bound=float(np.mean(evaluation.elbo)), timings=clock.laps,
               evaluation=evaluation, interrupted=interrupted,
               recoveries=recoveries + train.recoveries,
               kept_epochs=train.kept_epochs, emptied=train.emptied,
               kept_empty=train.kept_empty)
