"""The map of a model's hidden layer: a drawing's position is the projection of its own activations (PCA) or the
place of its nearest digits (t-SNE); maps are made with each run, and t-SNE later in a separate process."""

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from digitlab import embedding as maps
from digitlab.modelfiles import ModelLoadError
from digitlab.preprocessing import prepare_image, scale_images
from digitlab.serving import load_serving

ROOT = Path(__file__).resolve().parent.parent
ROWS = 600


@pytest.fixture(scope="module")
def ann():
    return load_serving("ann")


@pytest.fixture(scope="module")
def small_map(mnist, ann):
    """The shipped ANN's map of the first 600 test digits, t-SNE included."""
    indices = np.arange(ROWS)
    made = maps.make_embedding(ann, scale_images(mnist.x_test[indices]), mnist.y_test[indices], indices)
    return dataclasses.replace(made, tsne=maps.make_tsne(made))


def drawn(digit: np.ndarray) -> np.ndarray:
    """A 28×28 MNIST digit as the canvas sends a drawing: 280×280 RGBA, ink in alpha, then prepared."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = np.kron(digit, np.ones((10, 10), np.uint8))
    return prepare_image(rgba).image


def test_a_drawings_pca_position_is_the_projection_of_its_own_activations(small_map, ann, mnist):
    hidden = ann.run(scale_images(mnist.x_test[:ROWS]), outputs=["hidden"])["hidden"]
    reference = PCA(2, random_state=0).fit(hidden)  # fitted here, independently of the stored map
    np.testing.assert_allclose(small_map.pca, reference.transform(hidden), atol=1e-3)
    drawing = ann.run(drawn(mnist.x_test[9000])[None])["hidden"][0]  # a digit the map was not made from
    position, _ = maps.place(small_map, drawing, method="pca")
    np.testing.assert_allclose(position, reference.transform(drawing[None])[0], atol=1e-3)
    assert np.abs(position).max() > 0.1  # a real position, not the origin


def test_tsne_puts_a_stored_digit_on_itself_and_a_drawing_among_its_nearest_digits(small_map, ann, mnist):
    for row in (0, 123, ROWS - 1):
        position, near = maps.place(small_map, small_map.hidden[row], method="tsne")
        assert near[0] == row
        np.testing.assert_allclose(position, small_map.tsne[row], atol=1e-4)
    drawing = ann.run(drawn(mnist.x_test[9001])[None])["hidden"][0]
    position, near = maps.place(small_map, drawing, method="tsne")
    distances = np.linalg.norm(small_map.hidden.astype(np.float32) - drawing.astype(np.float16), axis=1)
    np.testing.assert_array_equal(near, np.argsort(distances)[:maps.NEIGHBOURS])
    corners = small_map.tsne[near]
    assert (corners.min(axis=0) <= position).all() and (position <= corners.max(axis=0)).all()
    assert np.bincount(small_map.labels[near]).argmax() == mnist.y_test[9001]  # its neighbours share its digit


def test_tsne_keeps_digits_of_a_kind_together_better_than_pca(small_map):
    def neighbour_accuracy(points):
        half = ROWS // 2
        knn = KNeighborsClassifier(5).fit(points[:half], small_map.labels[:half])
        return knn.score(points[half:], small_map.labels[half:])

    assert neighbour_accuracy(small_map.tsne) > max(0.85, neighbour_accuracy(small_map.pca) + 0.1)


def test_files_round_trip_and_a_missing_map_is_explained(small_map, tmp_path):
    paths = maps.save_embedding(small_map, tmp_path, prefix="m.")
    assert [p.name for p in paths] == ["m.embedding.npz", "m.tsne.npz"]
    loaded = maps.load_embedding(*paths)
    for field in dataclasses.fields(maps.Embedding):
        np.testing.assert_array_equal(getattr(loaded, field.name), getattr(small_map, field.name))
    assert maps.load_embedding(paths[0], tmp_path / "none.npz").tsne is None  # t-SNE not made yet
    with pytest.raises(ModelLoadError, match="no readable embedding at .*python -m digitlab.embedding"):
        maps.load_embedding(tmp_path / "none.npz")
    with pytest.raises(ValueError, match="this embedding has no t-SNE yet"):
        maps.place(dataclasses.replace(small_map, tsne=None), small_map.hidden[0], method="tsne")


def test_shipped_maps_cover_the_fixed_test_digits(mnist):
    for model_id in ("ann", "cnn"):
        made = maps.load_model_embedding(model_id)
        np.testing.assert_array_equal(made.indices, maps.sample_indices())
        np.testing.assert_array_equal(made.labels, mnist.y_test[maps.sample_indices()])
        assert made.tsne.shape == made.pca.shape == (maps.SAMPLE, 2)
        assert (made.predicted == made.labels).mean() > 0.98


def test_a_run_has_its_map_and_gets_tsne_in_a_separate_process(tiny_outcome, home, monkeypatch, mnist):
    store, outcome = tiny_outcome
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)  # for the maker process
    made = maps.load_model_embedding(outcome.run_id, store=store)  # written by run_training
    assert made.hidden.shape == (maps.SAMPLE, outcome.result.config.hidden_units) and made.tsne is None
    agree = made.predicted == outcome.report.y_pred[maps.sample_indices()]  # ONNX Runtime against Keras
    assert agree.mean() > 0.995
    assert maps.start_making(outcome.run_id)
    assert maps.making(outcome.run_id)
    # The public demo makes one map at a time: another model's waits (nothing starts), this one's is at it.
    assert not maps.start_making("0" * 32, at_most=1) and not maps.making("0" * 32)
    assert maps.start_making(outcome.run_id, at_most=1)
    deadline = time.time() + 600
    while maps.making(outcome.run_id):
        assert time.time() < deadline, "the t-SNE maker did not finish in 10 minutes"
        time.sleep(1)
    assert maps.failure(outcome.run_id) == ""
    made = maps.load_model_embedding(outcome.run_id, store=store)
    assert made.tsne.shape == (maps.SAMPLE, 2) and np.isfinite(made.tsne).all()

    bad = subprocess.run([sys.executable, "-m", "digitlab.embedding", "0" * 32], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith(f"digitlab: error: no run {'0' * 32}")
