"""The MNIST loader: local file, cache, download path (faked), errors."""

from pathlib import Path

import numpy as np
import pytest

from sklearn_vade import datasets
from sklearn_vade.datasets import load_mnist

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def _fake_mnist(n=20):
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, size=(n, 784)).astype(np.uint8), rng.randint(0, 10, n)


def test_load_from_path(tmp_path):
    """path= reads a local .npz and returns uint8 pixels and int64 labels."""
    X, y = _fake_mnist()
    np.savez(tmp_path / "m.npz", X=X, y=y)
    bunch = load_mnist(path=tmp_path / "m.npz")
    np.testing.assert_array_equal(bunch.data, X)
    np.testing.assert_array_equal(bunch.target, y)
    assert bunch.data.dtype == np.uint8 and bunch.target.dtype == np.int64


def test_download_is_cached_then_read(tmp_path, monkeypatch):
    """A download is written to data_home and the next call reads the cache."""
    X, y = _fake_mnist()
    calls = []
    monkeypatch.setattr(datasets, "_download_mnist",
                        lambda data_home: calls.append(data_home) or (X, y))
    X1, y1 = load_mnist(data_home=tmp_path, return_X_y=True)
    assert (tmp_path / "mnist.npz").exists()
    X2, y2 = load_mnist(data_home=tmp_path, return_X_y=True)
    assert calls == [tmp_path]  # downloaded once, into data_home
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y2, y)


def test_missing_without_download(tmp_path):
    """download_if_missing=False on an empty cache says where it looked."""
    with pytest.raises(OSError, match="not cached at .*download_if_missing=False"):
        load_mnist(data_home=tmp_path, download_if_missing=False)


def test_wrong_file_is_refused(tmp_path):
    """A .npz without X and y is refused, naming what is missing."""
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 784)))
    with pytest.raises(ValueError, match=r"lacks the arrays \['X', 'y'\]"):
        load_mnist(path=tmp_path / "bad.npz")


@pytest.mark.skipif(not SHARED_MNIST.exists(), reason="shared MNIST file not present")
def test_shared_mnist_file():
    """The project's copy of MNIST loads with the expected shape and classes."""
    X, y = load_mnist(path=SHARED_MNIST, return_X_y=True)
    assert X.shape == (70000, 784)
    assert np.array_equal(np.unique(y), np.arange(10))
    assert X.max() == 255


@pytest.mark.parametrize("X, match", [
    (np.full((3, 784), 0.5), "integers in \\[0, 255\\]"),  # already scaled
    (np.full((3, 784), 300.0), "integers in \\[0, 255\\]"),  # would wrap to 44
    (np.full((3, 784), -1), "integers in \\[0, 255\\]"),
    (np.zeros((3, 28, 29)), r"X of shape \(n, 784\)"),
    (np.zeros((3, 100)), r"X of shape \(n, 784\)"),
])
def test_pixels_that_would_not_convert_exactly_are_refused(X, match, tmp_path):
    np.savez(tmp_path / "m.npz", X=X, y=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=match):
        load_mnist(path=tmp_path / "m.npz")


def test_integer_and_image_shaped_pixels_are_accepted(tmp_path):
    X, y = _fake_mnist()
    np.savez(tmp_path / "m.npz", X=X.astype(np.float64).reshape(-1, 28, 28), y=y)
    np.testing.assert_array_equal(load_mnist(path=tmp_path / "m.npz").data, X)
