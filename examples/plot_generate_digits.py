"""
=======================================
Generating new digits from each cluster
=======================================

VaDE is a generative model: a cluster ``c`` is drawn from the mixture weights
``pi``, a latent code ``z`` from that cluster's Gaussian ``N(mu_c, sigma2_c)``, and
the decoder turns ``z`` into an image. This example draws new digits in two ways:
cluster by cluster, by sampling codes around each component and decoding them with
:meth:`~sklearn_vade.VaDEClustering.inverse_transform`, and from the whole model
with :meth:`~sklearn_vade.VaDEClustering.sample`.
"""

# %%
# Fit VaDE
# --------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from sklearn_vade import VaDEClustering

X, _ = load_digits(return_X_y=True)  # the labels are not needed at all here
X = X / 16.0

vade = VaDEClustering(n_clusters=10, hidden_layer_sizes=(256, 256), random_state=0)
vade.fit(X)
print("mixture weights:", np.round(vade.weights_, 3))

# %%
# Digits from each cluster
# ------------------------
#
# Each row is one cluster. The first column decodes the component's mean
# ``mu_c``; the others decode codes drawn from ``N(mu_c, sigma2_c)``, using the
# fitted ``means_`` and ``covariances_``. For the Bernoulli likelihood the decoder
# returns pixel probabilities, shown as grey levels. The label on the left gives
# the cluster number and its weight ``pi_c``.

rng = np.random.RandomState(0)
n_draws = 9
order = np.argsort(-vade.weights_)  # largest cluster first

fig, axes = plt.subplots(len(order), n_draws + 1, figsize=(7, 7.4))
for row, k in enumerate(order):
    z = vade.means_[k] + np.sqrt(vade.covariances_[k]) * rng.standard_normal(
        (n_draws, vade.means_.shape[1])
    )
    z = np.vstack([vade.means_[k], z])  # the mean first
    images = vade.inverse_transform(z)
    for col, image in enumerate(images):
        ax = axes[row, col]
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(f"c{k}\n{vade.weights_[k]:.0%}", rotation=0,
                            labelpad=16, va="center", fontsize=8)
axes[0, 0].set_title("mu_c", fontsize=9)
axes[0, n_draws // 2 + 1].set_title("z ~ N(mu_c, sigma2_c)", fontsize=9)
fig.suptitle("Decoded digits, one row per cluster")
fig.tight_layout()

# %%
# Digits from the whole model
# ---------------------------
#
# :meth:`~sklearn_vade.VaDEClustering.sample` draws the clusters too, in
# proportion to the weights ``pi``, and returns the decoded images with the
# cluster of each. It draws from the estimator's ``random_state``, so with an
# integer seed it returns the same samples on every call.

X_new, c_new = vade.sample(40)

fig, axes = plt.subplots(4, 10, figsize=(7, 3.4))
for ax, image, c in zip(axes.ravel(), X_new, c_new):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"c{c}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("vade.sample(40), with the cluster of each")
fig.tight_layout()

# %%
# Reconstructions
# ---------------
#
# :meth:`~sklearn_vade.VaDEClustering.transform` encodes images to the mean of
# their latent code; ``inverse_transform`` decodes it back. Top: real digits;
# bottom: their reconstructions.

originals = X[:10]
reconstructions = vade.inverse_transform(vade.transform(originals))
fig, axes = plt.subplots(2, 10, figsize=(7, 1.8))
for col in range(10):
    for row, image in enumerate((originals[col], reconstructions[col])):
        axes[row, col].imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
axes[0, 0].set_ylabel("x", rotation=0, labelpad=10)
axes[1, 0].set_ylabel("x'", rotation=0, labelpad=10)
fig.tight_layout()
plt.show()
