"""One run of fit, from one seed: pretraining, the start, the joint phase and the
final E-step, as module-level functions of their inputs.

Nothing here sees the estimator: :meth:`VaDEClustering.fit` validates the data and
the parameters into a :class:`Prepared`, calls :func:`fit_single` once per
``n_init`` run, keeps the best :class:`Run` and only then sets its own attributes.
With the estimator's ``memory``, the pretraining goes through a
``joblib.Memory`` cache (:func:`pretrain`).
"""

import functools
import hashlib
import importlib
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ._data import training_rows
from ._distributed import replicas
from ._inference import evaluate_fitted, inference_network, state_tensors
from ._init import initialise_mixture
from ._network import VaDENetwork
from ._outofcore import MappedRows
from ._pretrain import PretrainResult, pretrain_autoencoder
from ._progress import progress_factory
from ._training import train_vade
from ._utils import torch_generator
from ._validation import model_spec
from ._version import __version__


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
    def from_validated(cls, X, config, device, offset, scale, group=None):
        """``group``: the processes fitting together (default: the current
        ``torch.distributed`` group, see :func:`~._distributed.replicas`)."""
        return cls(X, config, device, offset, scale,
                   training_rows(X, offset, scale, device),
                   replicas() if group is None else group)

    def network(self, generator):
        """A new float32 network of this fit's spec on the training device."""
        return VaDENetwork.from_spec(model_spec(self.config), self.X.shape[1],
                                     generator, self.device, torch.float32)


class Pretrained(NamedTuple):
    """What a cached pretraining keeps: the autoencoder's arrays (no prior), its
    losses and rollbacks, and the state of the run's torch generator after it (the
    joint phase draws on from there)."""

    weights: dict
    losses: list
    recoveries: int
    generator_state: np.ndarray


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
    start_method: object = None  # the start that ran (Partition.method); None
    # when the run continued an earlier fit


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


class _Unfinished(Exception):
    """A pretraining stopped by Ctrl-C, carrying its state: raised through
    ``joblib.Memory`` so that the cache never keeps it."""

    def __init__(self, pretrained):
        super().__init__()
        self.pretrained = pretrained


def _pretrained(net, result, generator):
    weights = {k: v.detach().cpu().numpy().copy()
               for k, v in net.autoencoder_state().items()}
    return Pretrained(weights=weights, losses=list(result.losses),
                      recoveries=result.recoveries,
                      generator_state=generator.get_state().numpy().copy())


def _cached_pretraining(data, offset, scale, settings, *, prep, verbose):
    """Pretrain from the seed in ``settings``, as :func:`fit_single` would.

    The arguments that are not ignored (``data``, ``offset``, ``scale``,
    ``settings``) are the cache's key: everything the pretraining depends on.
    """
    generator = torch_generator(settings["seed"], prep.device)
    net = prep.network(generator)
    result = pretrain_autoencoder(net, prep.X_train, prep.config, generator,
                                  _progress(verbose, prep.replicas), prep.replicas)
    pretrained = _pretrained(net, result, generator)
    if result.interrupted:
        raise _Unfinished(pretrained)
    return pretrained


# The modules whose code a pretraining runs: their source is part of the cache's
# key, so that a changed engine or network never loads a pretraining of the old.
_PRETRAINING_CODE = ("_pretrain", "_engine", "_network", "_data", "_outofcore",
                     "_distributed", "_utils", "_run")


@functools.lru_cache(maxsize=1)
def _code_digest():
    h = hashlib.blake2b(digest_size=16)
    for name in _PRETRAINING_CODE:
        h.update(Path(importlib.import_module(f"{__package__}.{name}").__file__)
                 .read_bytes())
    return h.hexdigest()


def _arithmetic(device):
    """What decides the float results of the same code on another machine."""
    settings = {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        settings.update(gpu=torch.cuda.get_device_name(device),
                        cuda=torch.version.cuda,
                        tf32=(torch.backends.cuda.matmul.allow_tf32,
                              torch.backends.cudnn.allow_tf32))
    return settings


def _pretraining_settings(prep, seed):
    """What, besides the data, a pretraining depends on. ``n_clusters`` and the
    rest of the mixture are not in it: fits that differ only there share it."""
    config = prep.config
    return {"n_features": int(prep.X.shape[1]), "latent_dim": config.latent_dim,
            "hidden_layer_sizes": list(config.hidden_layer_sizes),
            "likelihood": config.likelihood,
            "pretrain_epochs": config.pretrain_epochs,
            "batch_size": config.batch_size,
            "pretrain_learning_rate": config.pretrain_learning_rate,
            "lr_decay": config.lr_decay, "compute_dtype": str(config.compute_dtype),
            "device": str(prep.device), "seed": seed,
            # another machine, thread count or version may sum in another order
            **_arithmetic(prep.device), "torch": torch.__version__,
            "sklearn_vade": __version__, "code": _code_digest()}


def pretrain(prep, net, generator, seed, progress, memory=None, verbose=0):
    """Phase 1 into ``net``: pretrain the autoencoder, or, with ``memory`` (a
    ``joblib.Memory``), load the pretraining that the same data, settings and seed
    gave before, and put ``generator`` where that pretraining left it, so that
    the fit goes on exactly as if it had pretrained. Returns a
    :class:`~._pretrain.PretrainResult`. In data-parallel training the cache is
    not used (the processes would have to agree on every hit)."""
    if memory is None or not prep.replicas.alone:
        return pretrain_autoencoder(net, prep.X_train, prep.config, generator,
                                    progress, prep.replicas)
    data = prep.X.digest() if isinstance(prep.X, MappedRows) else prep.X
    cached = memory.cache(_cached_pretraining, ignore=["prep", "verbose"])
    interrupted = False
    try:
        stored = cached(data, prep.offset, prep.scale,
                        _pretraining_settings(prep, seed), prep=prep, verbose=verbose)
    except _Unfinished as stop:
        stored, interrupted = stop.pretrained, True
    # copies: a Memory with mmap_mode loads read-only arrays
    net.load_state_dict({k: torch.tensor(v, device=prep.device, dtype=torch.float32)
                         for k, v in stored.weights.items()}, strict=False)
    generator.set_state(torch.tensor(stored.generator_state))
    return PretrainResult(losses=list(stored.losses), interrupted=interrupted,
                          recoveries=stored.recoveries)


def fit_single(prep, seed, rng, verbose=0, warm_state=None, memory=None):
    """One complete fit from one seed: pretrain (through ``memory``'s cache when
    given, see :func:`pretrain`), initialise, train, evaluate.

    ``seed`` seeds the run's torch generator (the networks' weights, the
    shuffles, the noise); ``rng``, a numpy RandomState, draws the start.
    ``warm_state``, the state of an earlier fit, continues its joint training
    instead (no pretraining, no start). Returns a :class:`Run`.
    """
    X, X_train, config, device = prep.X, prep.X_train, prep.config, prep.device
    replicas = prep.replicas
    generator = torch_generator(seed, device)
    progress = _progress(verbose, replicas)
    clock = _Clock()
    net = prep.network(generator)
    replicas.broadcast_module_(net)  # the same start on every process
    interrupted, recoveries, max_epochs = None, 0, config.max_epochs
    anchor, start_method = None, None
    if warm_state is not None:
        net.load_state_dict(state_tensors(warm_state, device, torch.float32))
        pretrain_losses = []
    else:
        pretrained = pretrain(prep, net, generator, seed, progress, memory, verbose)
        pretrain_losses, recoveries = pretrained.losses, pretrained.recoveries
        if pretrained.interrupted:
            interrupted, max_epochs = "pretraining", 0
        clock.lap("pretraining")
        # after an interrupted pretraining, the quick start (no UMAP)
        start = initialise_mixture(
            net, X_train,
            config._replace(init_params="gmm") if interrupted else config, rng,
            replicas)
        anchor, start_method = start.labels, start.method
        clock.lap("initialisation")
    train = train_vade(net, X_train, config, generator, progress, max_epochs, anchor,
                       replicas)
    if train.interrupted:
        interrupted = "training"
    clock.lap("training")
    clock.laps["warmup"] = train.warmup_seconds  # part of "training"
    state = {k: v.detach().cpu().double().numpy().copy()
             for k, v in net.state_dict().items()}
    spec = model_spec(config)
    evaluation = evaluate_fitted(inference_network(state, spec, X.shape[1]), X, spec,
                                 prep.offset, prep.scale, codes=False)
    clock.lap("evaluation")
    return Run(state=state, pretrain_losses=pretrain_losses, history=train.history,
               n_iter=train.n_epochs, converged=train.converged and not interrupted,
               lower_bound=replicas.mean_over_data(evaluation.elbo),
               timings=clock.laps,
               evaluation=evaluation, interrupted=interrupted,
               recoveries=recoveries + train.recoveries,
               kept_epochs=train.kept_epochs, emptied=train.emptied,
               kept_empty=train.kept_empty, start_method=start_method)
