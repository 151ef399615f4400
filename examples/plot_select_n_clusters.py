"""
=============================================================
Choosing the number of clusters by the ELBO with GridSearchCV
=============================================================

:meth:`~sklearn_vade.VaDEClustering.score` returns the mean per-sample evidence
lower bound (ELBO) of the data, a lower bound on its log-likelihood under the
model. A model with more clusters can always fit its training data at least as
well, so the numbers of clusters are compared on **held-out** data: for each
candidate ``n_clusters``, fit on one part of the data and score the rest.

Because ``score`` is the ELBO, :class:`~sklearn.model_selection.GridSearchCV`
does exactly this without a ``scoring`` argument. The labels of the digits are
not used anywhere in the search; they only score the chosen model at the end.
"""

# %%
# The search
# ----------
#
# Two folds, shuffled with a fixed seed, and six candidates: 12 fits, each on half
# of the digits, then one fit of the best candidate on all of them
# (``refit=True``, the default), available as ``search.best_estimator_``.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_vade import VaDEClustering, cluster_accuracy

X, y = load_digits(return_X_y=True)
X = X / 16.0

candidates = [4, 6, 8, 10, 12, 14]
search = GridSearchCV(
    VaDEClustering(hidden_layer_sizes=(256, 256), random_state=0),
    param_grid={"n_clusters": candidates},
    cv=KFold(n_splits=2, shuffle=True, random_state=0),
)
search.fit(X)

results = search.cv_results_
mean, std = results["mean_test_score"], results["std_test_score"]
for k, m, s in zip(candidates, mean, std):
    print(f"n_clusters={k:2d}: held-out ELBO {m:7.3f} +- {s:.3f} nats")
print("best:", search.best_params_)

# %%
# The held-out ELBO against the number of clusters
# ------------------------------------------------
#
# Too few clusters describe unseen digits clearly worse; further on, the curve
# levels off: more components no longer help much, and the differences between
# the candidates on this plateau are of the order of the spread between the folds
# (the line printed below the figure names the plateau of this run: the
# candidates within one fold spread of the best). The search keeps the maximum;
# the plateau says that the data support roughly that many clusters rather than
# exactly that number (the digits have ten classes), and a search with more folds
# or repeated splits narrows it down at a higher cost.

fold_scores = np.array([results[f"split{i}_test_score"] for i in range(2)])
fig, ax = plt.subplots(figsize=(6.4, 4))
ax.errorbar(candidates, mean, yerr=std, marker="o", capsize=4,
            label="mean over folds (+- std)")
for i, scores in enumerate(fold_scores):
    ax.plot(candidates, scores, linestyle="none", marker=".", color="grey",
            label="each fold" if i == 0 else None)
best = search.best_params_["n_clusters"]
ax.axvline(best, color="tab:green", linestyle="--", linewidth=1,
           label=f"best: {best}")
ax.set_xticks(candidates)
ax.set_xlabel("n_clusters")
ax.set_ylabel("held-out ELBO per sample (nats)")
ax.set_title("GridSearchCV(VaDEClustering(), {'n_clusters': ...})")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()

best_index = int(np.argmax(mean))
floor = mean[best_index] - std[best_index]
plateau = [k for k, m in zip(candidates, mean) if m >= floor]
print(f"best: {best}; within one fold spread of it: {plateau}")

# %%
# The chosen model, scored against the digits
# -------------------------------------------
#
# Only now do the labels come in, to score the model that the search refitted on
# all the data with the chosen number of clusters.

vade = search.best_estimator_
labels = vade.predict(X)
print(f"n_clusters={vade.n_clusters}: accuracy {cluster_accuracy(y, labels):.3f} "
      "against the ten digits")
plt.show()
