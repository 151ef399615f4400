"""
=======================================================
Clustering handwritten digits, scored against the truth
=======================================================

VaDE clusters scikit-learn's 8x8 handwritten digits without seeing their labels.
The labels are used afterwards, only to score the clustering: the clustering
accuracy of :func:`~sklearn_vade.cluster_accuracy` matches each cluster to one
digit with the Hungarian algorithm (the matching that gets the most samples right),
and the confusion matrix below puts each cluster in the column of its matched digit.
"""

# %%
# Fit VaDE on the pixels
# ----------------------
#
# The pixels are scaled to [0, 1], so ``likelihood="auto"`` picks the Bernoulli
# likelihood. The network is smaller than the default, to keep the example fast.

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.datasets import load_digits
from sklearn.metrics import (
    adjusted_rand_score,
    confusion_matrix,
    normalized_mutual_info_score,
)

from sklearn_vade import VaDEClustering, cluster_accuracy

X, y = load_digits(return_X_y=True)
X = X / 16.0

vade = VaDEClustering(n_clusters=10, hidden_layer_sizes=(256, 256), random_state=0)
labels = vade.fit_predict(X)

print(f"likelihood: {vade.likelihood_}, {len(vade.pretrain_losses_)} pretraining "
      f"and {vade.n_iter_} training epochs, ELBO {vade.lower_bound_:.2f} nats")
print(f"ACC {cluster_accuracy(y, labels):.3f}  "
      f"NMI {normalized_mutual_info_score(y, labels):.3f}  "
      f"ARI {adjusted_rand_score(y, labels):.3f}")

# %%
# The :class:`~sklearn.exceptions.ConvergenceWarning` above (if any) says that
# more than a fraction ``tol`` of the samples still changed cluster in the last of
# the 50 joint-training epochs of the "auto" budget. On the digits this is common
# and harmless, as a few samples on the borders between clusters keep flipping;
# ``max_epochs`` or ``tol`` control it (see the user guide).
#
# The confusion matrix, clusters matched to digits
# ------------------------------------------------
#
# Rows are the true digits, columns the clusters. The columns are reordered by the
# same Hungarian matching that :func:`~sklearn_vade.cluster_accuracy` uses, so the
# diagonal holds the samples that count as correct and everything off the diagonal
# is an error. Each column is labelled with its cluster number.

counts = confusion_matrix(y, labels)  # (digit, cluster); both run over 0..9 here
digits, clusters = linear_sum_assignment(counts, maximize=True)
order = clusters[np.argsort(digits)]  # the cluster matched to digit 0, 1, ...
matched = counts[:, order]
print(f"diagonal / total = {np.trace(matched) / matched.sum():.3f}")

fig, ax = plt.subplots(figsize=(6.4, 5.4))
image = ax.imshow(matched, cmap="Blues")
for i in range(matched.shape[0]):
    for j in range(matched.shape[1]):
        if matched[i, j]:
            color = "white" if matched[i, j] > matched.max() / 2 else "black"
            ax.text(j, i, matched[i, j], ha="center", va="center", fontsize=7,
                    color=color)
ax.set_xticks(range(10), [f"c{k}" for k in order])
ax.set_yticks(range(10))
ax.set_xlabel("cluster (ordered by its matched digit)")
ax.set_ylabel("true digit")
ax.set_title(f"VaDE on the digits: accuracy {cluster_accuracy(y, labels):.3f}")
fig.colorbar(image, ax=ax, shrink=0.8, label="samples")
fig.tight_layout()

# %%
# How sure is the model?
# ----------------------
#
# :meth:`~sklearn_vade.VaDEClustering.predict_proba` gives the cluster posterior
# ``gamma`` of each sample. Most digits are assigned with near certainty. The
# share of samples outside their digit's matched cluster grows as the confidence
# falls, but many of them are confident too: a cluster that gathers parts of two
# digits is a confident mistake for one of them, which no threshold on ``gamma``
# can detect.

gamma = vade.predict_proba(X)
confidence = gamma.max(axis=1)
correct = order[y] == labels  # the sample's cluster is the one matched to its digit

edges = np.array([0, 0.6, 0.8, 0.9, 0.99, 1.0])
bins = np.digitize(confidence, edges[1:-1])
fig, ax = plt.subplots(figsize=(6.4, 3.6))
n_right = np.bincount(bins[correct], minlength=len(edges) - 1)
n_wrong = np.bincount(bins[~correct], minlength=len(edges) - 1)
positions = np.arange(len(edges) - 1)
ax.bar(positions - 0.2, n_right, 0.4, label="in the cluster matched to its digit")
ax.bar(positions + 0.2, n_wrong, 0.4, label="in another cluster")
for p, r, w in zip(positions, n_right, n_wrong):
    if r + w:
        ax.annotate(f"{w / (r + w):.0%} off", (p, max(r, w)), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
ax.set_xticks(positions, [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])])
ax.set_xlabel("max gamma (posterior probability of the predicted cluster)")
ax.set_ylabel("samples")
ax.set_yscale("log")
ax.set_ylim(top=ax.get_ylim()[1] * 3)
ax.legend(loc="upper left", fontsize=8)
fig.tight_layout()
plt.show()
