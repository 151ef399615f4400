"""
===================================================
Learning the mixture weights of imbalanced clusters
===================================================

The mixture weights ``pi`` of VaDE's prior say how large each cluster is. The
``pi_update`` parameter chooses how they are learnt during the joint training;
the initialisation (a :class:`~sklearn.mixture.GaussianMixture` on the pretrained
latent codes) sets them the same way in every mode.

Here the data are three Gaussian blobs of 500, 150 and 50 samples (71%, 21% and
7%) in ten dimensions. The joint phase is run long (400 epochs at a step of
``1e-3``, ``tol=0`` so that it never stops early) to make the behaviour of each
mode visible; with the "auto" budget of 50 epochs and the default step the modes
end up much closer together.
"""

# %%
# One fit per mode
# ----------------
#
# The data are real-valued, so ``likelihood="auto"`` picks the Gaussian
# likelihood. The blob labels are used only to match each fitted component to its
# blob, so that the weights can be compared with the true proportions.

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.datasets import make_blobs
from sklearn.metrics import confusion_matrix

from sklearn_vade import VaDEClustering, cluster_accuracy

sizes = [500, 150, 50]
X, y = make_blobs(n_samples=sizes, n_features=10, cluster_std=3.0, random_state=0)
true_weights = np.array(sizes) / sum(sizes)

modes = ["em", "softmax", "fixed", "renormalize", "unconstrained"]
fits = {}
for mode in modes:
    vade = VaDEClustering(n_clusters=3, latent_dim=2, hidden_layer_sizes=(64, 64),
                          pi_update=mode, learning_rate=1e-3, max_epochs=400,
                          tol=0, random_state=0)
    vade.fit(X)
    # The component matched to blob 0, 1, 2 (Hungarian matching on the counts).
    _, matched = linear_sum_assignment(
        confusion_matrix(y, vade.labels_, labels=range(3)), maximize=True)
    fits[mode] = (vade, matched)
    print(f"{mode:>13}: weights {np.round(vade.weights_[matched], 3)}, "
          f"ACC {cluster_accuracy(y, vade.labels_):.3f}, "
          f"training ELBO {vade.lower_bound_:.3f}")
print(f"{'true':>13}: weights {np.round(true_weights, 3)}")

# %%
# The weights against the true proportions
# ----------------------------------------
#
# ``"em"`` moves ``pi`` toward the average responsibility of each batch, the
# ELBO's maximiser in ``pi``; ``"softmax"`` follows the gradient of free logits,
# which vanishes at the same point. Both stay at the true proportions.
# ``"fixed"`` keeps the initial weights. ``"renormalize"`` and ``"unconstrained"``
# drift toward equal weights: the gradient of the ELBO with respect to each
# ``pi_c`` is positive (about 1 for every component at the optimum), Adam turns
# it into about the same step for each, and renormalising after equal additive
# steps pulls every weight toward ``1 / n_clusters``. The clusters themselves are
# barely affected here, as the blobs are well separated, but the weights no longer
# describe the cluster sizes.

fig, ax = plt.subplots(figsize=(7.5, 4))
width = 0.8 / (len(modes) + 1)
positions = np.arange(3)
ax.bar(positions - 0.4 + width / 2, true_weights, width, color="black",
       label="true proportion")
for i, mode in enumerate(modes):
    vade, matched = fits[mode]
    ax.bar(positions - 0.4 + (i + 1.5) * width, vade.weights_[matched], width,
           label=f'pi_update="{mode}"')
ax.set_xticks(positions, [f"blob {b}\n({n} samples)" for b, n in enumerate(sizes)])
ax.set_ylabel("mixture weight")
ax.set_title("Fitted weights_ after 400 epochs, by pi_update")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The smallest weight during training
# -----------------------------------
#
# ``history_`` records the smallest mixture weight after each training epoch.
# The smallest blob holds 7% of the samples: ``"em"``, ``"softmax"`` and
# ``"fixed"`` keep its weight there, while the drift of the two other modes
# builds up with the number of steps.

fig, ax = plt.subplots(figsize=(7.5, 3.6))
for mode in modes:
    vade, _ = fits[mode]
    ax.plot([h["min_weight"] for h in vade.history_], label=f'"{mode}"')
ax.axhline(true_weights.min(), color="black", linestyle=":",
           label="true smallest proportion")
ax.set_xlabel("training epoch")
ax.set_ylabel("smallest weight")
ax.legend(fontsize=8, ncol=2)
fig.tight_layout()

# %%
# A note on ``"unconstrained"``
# -----------------------------
#
# ``"unconstrained"`` is the free parameter of the paper's code: ``pi`` is not
# kept on the simplex, and training uses ``log pi_c`` of weights that sum to more
# than one. Its training ELBO (``history_``) is therefore inflated although the
# model is no better: it is not a bound on the log-likelihood. ``lower_bound_``
# and ``score`` use the normalised ``weights_``, as ``weights_`` itself does, and
# are comparable with the other modes.
plt.show()
