"""Dataset loaders in the style of ``sklearn.datasets``.

A loader looks for a local copy first (``path``, then ``data_home``) and otherwise
downloads the data with :func:`sklearn.datasets.fetch_openml`, caching it as a
compressed ``.npz`` in ``data_home`` so that the next call reads the local file.
"""

import os
from pathlib import Path

import numpy as np
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

_MNIST_FILE = "mnist.npz"


def _read_npz(path):
    with np.load(path, allow_pickle=False) as data:
        missing = {"X", "y"} - set(data.files)
        if missing:
            raise ValueError(
                f"{path} is not an MNIST file for this loader: it lacks the arrays "
                f"{sorted(missing)}. Expected a .npz with 'X' (70000, 784) and 'y'."
            )
        return data["X"], data["y"]


def load_mnist(*, path=None, data_home=None, download_if_missing=True,
               return_X_y=False):
    """Load the 70,000 MNIST digits (train then test), pixels as uint8 in [0, 255].

    Divide ``X`` by 255 to get the [0, 1] data that the Bernoulli likelihood expects.

    Parameters
    ----------
    path : str or path-like, default=None
        A local ``.npz`` holding ``X`` (n, 784) and ``y`` (n,). When given, nothing
        else is looked at.
    data_home : str or path-like, default=None
        Cache folder, by default scikit-learn's (``~/scikit_learn_data``, or the
        ``SCIKIT_LEARN_DATA`` environment variable). ``mnist.npz`` there is read if
        present, and written after a download.
    download_if_missing : bool, default=True
        If the data is not cached, download it from OpenML (``mnist_784``).
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch` with ``data`` (70000, 784) uint8 and
        ``target`` (70000,) int64, or ``(X, y)`` if ``return_X_y``.

    Examples
    --------
    >>> from sklearn_vade.datasets import load_mnist
    >>> X, y = load_mnist(return_X_y=True)  # doctest: +SKIP
    >>> X = X / 255.0  # doctest: +SKIP
    """
    if path is not None:
        X, y = _read_npz(path)
    else:
        cache = Path(get_data_home(data_home)) / _MNIST_FILE
        if cache.exists():
            X, y = _read_npz(cache)
        elif not download_if_missing:
            raise OSError(
                f"MNIST is not cached at {cache} and download_if_missing=False. Pass "
                "path= to a local mnist.npz, or allow the download."
            )
        else:
            X, y = _download_mnist()
            tmp = cache.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, X=X, y=y)
            os.replace(tmp, cache)
    X = np.asarray(X, dtype=np.uint8)
    y = np.asarray(y).astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, DESCR="MNIST handwritten digits, 70,000 x 784.")


def _download_mnist():  # pragma: no cover - needs the network
    from sklearn.datasets import fetch_openml

    X, y = fetch_openml("mnist_784", version=1, return_X_y=True, as_frame=False,
                        parser="liac-arff")
    return X.astype(np.uint8), y.astype(np.int64)
