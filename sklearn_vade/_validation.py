"""Data-dependent checks, and the resolution of ``"auto"`` values for one fit."""

import math
from typing import NamedTuple

import numpy as np
import torch

from ._distributed import ALONE
from ._outofcore import MappedRows
from ._utils import fast_dtype


class FitConfig(NamedTuple):
    """Every value one fit needs, resolved from the parameters and the data."""

    n_clusters: int
    latent_dim: int
    hidden_layer_sizes: tuple
    likelihood: str
    pi_update: str
    pretrain_epochs: int
    max_epochs: int
    batch_size: int
    learning_rate: float
    pretrain_learning_rate: float
    reconstruction_weight: float
    tol: float
    lr_decay: float
    lr_step_epochs: int
    lr_step_factor: float
    lr_floor: float
    min_epochs: int
    warmup_epochs: int
    warmup_learning_rate: float
    anchor_smoothing: float
    init_params: str
    em_rate: float
    init_posterior_var: float
    compute_dtype: object
    # epochs the anchored warm-up may go on beyond warmup_epochs while gamma
    # still comes closer to the start (see _training.JointPhase.extends_warmup);
    # the joint phase's budget moves with it
    warmup_extension: int = 0


# Budgets of "auto" epochs. Pretraining gets one gradient step per sample, between
# PRETRAIN_STEPS and MAX_PRETRAIN_STEPS steps, and at least MIN_PRETRAIN_EPOCHS and
# at most MAX_PRETRAIN_EPOCHS passes: tiny data (one batch) gets 50 steps and fits
# in a second or two, scikit-learn's digits (1797 samples) 150 epochs, MNIST 50.
# (PRETRAIN_STEPS was 100 until 2026-12-01: only data under 100 samples changed,
# such as that of scikit-learn's estimator checks.) The joint phase gets its
# anchored warm-up (below) plus JOINT_EPOCHS epochs.
PRETRAIN_STEPS = 50
MAX_PRETRAIN_STEPS = 1200
MIN_PRETRAIN_EPOCHS = 50
MAX_PRETRAIN_EPOCHS = 1000
JOINT_EPOCHS = 50
# The autoencoder is pretrained with a larger step than the joint phase, whose
# first Adam steps would otherwise move the codes away from the mixture's init.
PRETRAIN_LR_FACTOR = 10.0
# The joint phase's schedule: after the anchored warm-up (see
# _training.train_vade), the learning rate is multiplied by LR_STEP_FACTOR every
# LR_STEP_EPOCHS epochs, down to LR_FLOOR_FACTOR times its initial value, and the
# training may stop once MIN_TRAIN_EPOCHS_BEFORE_STOP epochs have passed.
LR_STEP_EPOCHS = 1
LR_STEP_FACTOR = 0.99
LR_FLOOR_FACTOR = 0.0
MIN_TRAIN_EPOCHS_BEFORE_STOP = 0
# The anchored warm-up gets one optimiser step per sample, at most MAX_WARMUP_STEPS,
# and at least MIN_WARMUP_EPOCHS epochs ("auto" max_epochs adds it to the joint
# budget; an explicit max_epochs gives it at most half of the epochs): 125 epochs
# on the digits, 25 on MNIST. On large data 1,000 steps are few epochs: with 10 at
# least, MNIST's codes had not settled into their clusters when the joint phase
# began (agreement with the start 0.90-0.92 at the end); 25 kept more of the start
# on every seed (0.956-0.963 against 0.943-0.954; benchmarks/README.md).
MAX_WARMUP_STEPS = 1000
# Adam's step during the warm-up, relative to learning_rate: ten times, pretraining's
# step. At the joint phase's own step the codes move too little during the warm-up
# for gamma to keep the start afterwards (USPS 0.936 median from starts of
# 0.956-0.965, MNIST 0.945 from 0.978); at ten times the final keeps the start
# (benchmarks/README.md: the ablation's umap-anchor-hot).
WARMUP_LR_FACTOR = 10.0
# Weight of the warm-up's q(c|x) spread evenly over all components. 0: q(c|x) is the
# initial partition itself. Spreading weight pulls every code toward every
# component, hardest toward the tightest ones; with 0.1 that collapsed 20 Newsgroups
# to one cluster within two epochs (benchmarks/README.md).
ANCHOR_SMOOTHING = 0.0
MIN_WARMUP_EPOCHS = 25
# With "auto" max_epochs, the warm-up may go on to WARMUP_EXTENSION_FACTOR times its
# budget while gamma's partition still comes closer to the start (see
# _training.JointPhase.extends_warmup). On MNIST-LT50 (seed 0) gamma agreed with
# the merge's start at an adjusted Rand index of 0.939 after the 25 epochs of the
# budget and was still rising (0.946 after 50, 0.952 after 100): the fit kept
# 0.909 of a 0.934 start, and 0.924 with a warm-up of 100 epochs
# (benchmarks/README.md, "A warm-up that lasts while it still helps").
WARMUP_EXTENSION_FACTOR = 2


def model_spec(config):
    """What defines the fitted network, as builtins (safe to persist): the spec
    that :meth:`VaDENetwork.from_spec` builds from."""
    return {"n_clusters": int(config.n_clusters), "latent_dim": int(config.latent_dim),
            "hidden_layer_sizes": [int(h) for h in config.hidden_layer_sizes],
            "likelihood": str(config.likelihood), "pi_update": str(config.pi_update)}


def _auto_epochs(value, n_steps_per_epoch, target_steps, lo, hi):
    if value != "auto":
        return int(value)
    return int(min(hi, max(lo, math.ceil(target_steps / n_steps_per_epoch))))


def resolve_precision(precision, device):
    """The dtype training autocasts to (None: float32, no autocast).

    ``"auto"``: bfloat16 where ``device`` computes it natively (AVX-512 bf16 or AMX
    CPUs, recent GPUs), float32 elsewhere, where bfloat16 is emulated and slower.
    """
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    return fast_dtype(device)


def resolve_likelihood(likelihood, X, group=ALONE):
    """``"auto"``: Bernoulli when all of X lies in [0, 1], else Gaussian (with
    sharded input, all of every process's X: ``group``, see
    :mod:`._distributed`)."""
    if isinstance(X, MappedRows):
        x_min, x_max = X.value_range()  # a scan, kept for the next call
    else:
        x_min, x_max = float(X.min()), float(X.max())
    x_min, x_max = group.extremes(x_min, x_max)
    in_unit = x_min >= 0.0 and x_max <= 1.0
    if likelihood == "bernoulli" and not in_unit:
        raise ValueError(
            "likelihood='bernoulli' needs every value of X in [0, 1]; X ranges over "
            f"[{x_min:.6g}, {x_max:.6g}]. Rescale X (e.g. with MinMaxScaler, or divide "
            "pixel values by 255), or use likelihood='gaussian' for real-valued data."
        )
    if likelihood == "auto":
        return "bernoulli" if in_unit else "gaussian"
    return likelihood


def check_params_vs_input(params, X, device, group=ALONE):
    """Check the estimator's parameters (``get_params()``) against X and return
    the resolved :class:`FitConfig`. With sharded input (``group``, see
    :mod:`._distributed`), X is every process's rows."""
    n_samples = group.n_rows(X.shape[0])
    if n_samples < params["n_clusters"]:
        raise ValueError(
            f"n_samples={n_samples} should be >= n_clusters={params['n_clusters']}: "
            "VaDE needs at least one sample per cluster. Lower n_clusters or pass "
            "more data."
        )
    batch_size = min(params["batch_size"], n_samples)
    steps = math.ceil(n_samples / batch_size)
    warmup_steps = min(n_samples, MAX_WARMUP_STEPS)
    warmup_epochs = max(MIN_WARMUP_EPOCHS, math.ceil(warmup_steps / steps))
    if params["max_epochs"] == "auto":
        max_epochs = warmup_epochs + JOINT_EPOCHS
        warmup_extension = (WARMUP_EXTENSION_FACTOR - 1) * warmup_epochs
    else:  # the user's budget holds, extension included
        max_epochs = int(params["max_epochs"])
        warmup_epochs = min(warmup_epochs, max_epochs // 2)
        warmup_extension = 0
    return FitConfig(
        n_clusters=params["n_clusters"],
        latent_dim=params["latent_dim"],
        hidden_layer_sizes=tuple(int(h) for h in params["hidden_layer_sizes"]),
        likelihood=resolve_likelihood(params["likelihood"], X, group),
        pi_update=params["pi_update"],
        pretrain_epochs=_auto_epochs(params["pretrain_epochs"], steps,
                                     min(max(n_samples, PRETRAIN_STEPS),
                                         MAX_PRETRAIN_STEPS),
                                     MIN_PRETRAIN_EPOCHS, MAX_PRETRAIN_EPOCHS),
        max_epochs=max_epochs,
        batch_size=batch_size,
        learning_rate=float(params["learning_rate"]),
        pretrain_learning_rate=PRETRAIN_LR_FACTOR * float(params["learning_rate"]),
        reconstruction_weight=float(params["reconstruction_weight"]),
        tol=float(params["tol"]),
        lr_decay=0.99,
        lr_step_epochs=LR_STEP_EPOCHS,
        lr_step_factor=LR_STEP_FACTOR,
        lr_floor=LR_FLOOR_FACTOR * float(params["learning_rate"]),
        min_epochs=MIN_TRAIN_EPOCHS_BEFORE_STOP,
        warmup_epochs=warmup_epochs,
        warmup_learning_rate=WARMUP_LR_FACTOR * float(params["learning_rate"]),
        anchor_smoothing=ANCHOR_SMOOTHING,
        init_params=params["init_params"],
        em_rate=float(min(0.1, max(batch_size / n_samples, 0.01))),
        init_posterior_var=0.1,
        compute_dtype=resolve_precision(params["precision"], device),
        warmup_extension=warmup_extension,
    )


def check_hidden_layer_sizes(hidden_layer_sizes):
    """Every width a positive integer."""
    sizes = np.asarray(hidden_layer_sizes)
    if sizes.ndim != 1 or not np.all([isinstance(h, (int, np.integer)) and h > 0
                                      for h in hidden_layer_sizes]):
        raise ValueError(
            "hidden_layer_sizes must be a sequence of positive integers, got "
            f"{hidden_layer_sizes!r}."
        )
