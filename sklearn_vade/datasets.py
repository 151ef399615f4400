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


def _read_mnist_npz(path):
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
        A local ``.npz`` holding ``X`` (n, 784) or (n, 28, 28), integer pixels in
        [0, 255], and ``y`` (n,). When given, nothing else is looked at.
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

    Raises
    ------
    ValueError
        If the file lacks ``X`` or ``y``, or holds pixels of another shape or
        values that are not integers in [0, 255] (e.g. already divided by 255).
    OSError
        If the data is not cached and ``download_if_missing=False``.

    Examples
    --------
    >>> from sklearn_vade.datasets import load_mnist
    >>> X, y = load_mnist(return_X_y=True)  # doctest: +SKIP
    >>> X = X / 255.0  # doctest: +SKIP
    """
    if path is not None:
        X, y = _read_mnist_npz(path)
    else:
        cache = Path(get_data_home(data_home)) / _MNIST_FILE
        if cache.exists():
            X, y = _read_mnist_npz(cache)
        elif not download_if_missing:
            raise OSError(
                f"MNIST is not cached at {cache} and download_if_missing=False. Pass "
                "path= to a local mnist.npz, or allow the download."
            )
        else:
            X, y = _download_mnist(data_home)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, X=X, y=y)
            os.replace(tmp, cache)
    X, y = _check_mnist(X, y)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, DESCR="MNIST handwritten digits, 70,000 x 784.")


def _check_mnist(X, y):
    """X as uint8 (n, 784) and y as int64 (n,), refusing anything that would not
    convert exactly (e.g. pixels already scaled to [0, 1])."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 3 and X.shape[1:] == (28, 28):
        X = X.reshape(len(X), 784)
    if X.ndim != 2 or X.shape[1] != 784 or y.shape != (X.shape[0],):
        raise ValueError(
            f"an MNIST file must hold X of shape (n, 784) (or (n, 28, 28)) and y of "
            f"shape (n,); got X {X.shape} and y {y.shape}."
        )
    if X.dtype != np.uint8:
        if X.dtype.kind not in "biuf" or not np.array_equal(X, np.round(X)) or (
                X.size and (X.min() < 0 or X.max() > 255)):
            raise ValueError(
                "MNIST pixels must be integers in [0, 255]; this file holds "
                f"{X.dtype} values in [{X.min():.6g}, {X.max():.6g}] (already "
                "scaled? then pass it to VaDEClustering directly)."
            )
        X = X.astype(np.uint8)
    return X, y.astype(np.int64)


def _download_mnist(data_home=None):  # pragma: no cover - needs the network
    from sklearn.datasets import fetch_openml

    X, y = fetch_openml("mnist_784", version=1, return_X_y=True, as_frame=False,
                        parser="liac-arff", data_home=data_home)
    return X.astype(np.uint8), y.astype(np.int64)
