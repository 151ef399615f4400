"""
====================================================
The latent space in two dimensions, with the mixture
====================================================

With ``latent_dim=2`` the latent space of VaDE can be drawn directly. Each digit
is placed at the mean of its latent code,
:meth:`~sklearn_vade.VaDEClustering.transform`, and coloured by its cluster. The
ellipses show the fitted mixture: each component's Gaussian
``N(mu_c, diag sigma2_c)`` at one and two standard deviations, from the fitted
``means_`` and ``covariances_``. The covariances are diagonal, so the ellipses are
aligned with the axes.

Two dimensions are too few for ten digit classes to separate well (the default is
``latent_dim=10``); the picture shows how the model works rather than its best
clustering.
"""

# %%
# Fit VaDE with a 2-D latent space
# --------------------------------
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse
from sklearn.datasets import load_digits

from sklearn_vade import VaDEClustering, cluster_accuracy

X, y = load_digits(return_X_y=True)
X = X / 16.0

vade = VaDEClustering(n_clusters=10, latent_dim=2, hidden_layer_sizes=(256, 256),
                      random_state=0)
labels = vade.fit_predict(X)
Z = vade.transform(X)  # (n_samples, 2): the posterior means mu~(x)
print(f"ACC {cluster_accuracy(y, labels):.3f} (labels used only to score)")

# %%
# The codes and the mixture
# -------------------------
#
# Left: coloured by cluster, with the mixture's ellipses; a sample belongs to the
# component with the largest ``pi_c N(z; mu_c, sigma2_c)`` at its code. Right: the
# same codes coloured by the true digit, for comparison.

colors = plt.cm.tab10(np.arange(10))
fig, (ax_c, ax_y) = plt.subplots(1, 2, figsize=(11, 5.2), sharex=True, sharey=True)
ax_c.scatter(Z[:, 0], Z[:, 1], c=colors[labels], s=6, alpha=0.6, linewidths=0)
for k, (mean, var) in enumerate(zip(vade.means_, vade.covariances_)):
    for n_std, alpha in ((1, 0.35), (2, 0.2)):
        ax_c.add_patch(Ellipse(mean, 2 * n_std * np.sqrt(var[0]),
                               2 * n_std * np.sqrt(var[1]), facecolor=colors[k],
                               edgecolor="black", linewidth=0.6, alpha=alpha))
    ax_c.annotate(f"c{k}", mean, ha="center", va="center", fontsize=9,
                  fontweight="bold")
ax_c.set_title("clusters and the mixture (1 and 2 standard deviations)")
ax_c.set_xlabel("z[0]")
ax_c.set_ylabel("z[1]")

for digit in range(10):
    mask = y == digit
    ax_y.scatter(Z[mask, 0], Z[mask, 1], color=plt.cm.tab10(digit), s=6, alpha=0.6,
                 linewidths=0, label=str(digit))
ax_y.legend(title="digit", markerscale=3, fontsize=8, loc="best")
ax_y.set_title("true digits")
ax_y.set_xlabel("z[0]")
fig.tight_layout()

# %%
# Decoding the plane
# ------------------
#
# :meth:`~sklearn_vade.VaDEClustering.inverse_transform` decodes any point of the
# latent plane. Decoding a grid over the region the codes occupy shows how the
# digits morph into one another between the components.

n_grid = 15
lo, hi = np.percentile(Z, [2, 98], axis=0)
g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], n_grid),
                     np.linspace(hi[1], lo[1], n_grid))
images = vade.inverse_transform(np.column_stack([g0.ravel(), g1.ravel()]))
canvas = np.zeros((n_grid * 9, n_grid * 9))  # white gaps between digits
for index, image in enumerate(images):
    row, col = divmod(index, n_grid)
    canvas[row * 9:row * 9 + 8, col * 9:col * 9 + 8] = image.reshape(8, 8)

fig, ax = plt.subplots(figsize=(6, 6))
ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1,
          extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto")
ax.set_xlabel("z[0]")
ax.set_ylabel("z[1]")
ax.set_title("decoded grid over the latent plane")
fig.tight_layout()
plt.show()
