"""Chart builders on real data: the figures hold the numbers they were given, with labelled axes."""

import numpy as np
import plotly.graph_objects as go
import pytest

from digitlab import charts
from digitlab.evaluation import evaluate_probabilities


@pytest.fixture(scope="module")
def report(tiny_outcome):
    return tiny_outcome[1].report


def _axis_titles(fig):
    layout = fig.to_dict()["layout"]
    return {k: v.get("title", {}).get("text") for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))}


def test_montage_places_images_row_major():
    images = np.arange(6 * 4).reshape(6, 2, 2).astype(np.float32)
    grid = charts.montage(images, columns=4, gap=1)
    assert grid.shape == (2 * 3 - 1, 4 * 3 - 1)
    np.testing.assert_array_equal(grid[0:2, 3:5], images[1])
    np.testing.assert_array_equal(grid[3:5, 3:5], images[5])
    assert np.isnan(grid[2, 0]) and np.isnan(grid[3, 6])


def test_samples_and_means_and_distribution_on_real_mnist(mnist):
    fig = charts.samples_by_class(mnist.x_train, mnist.y_train, per_class=5)
    z = np.asarray(fig.data[0].z, dtype=float)
    np.testing.assert_array_equal(z[:28, :28], mnist.x_train[np.flatnonzero(mnist.y_train == 0)[0]])
    means = charts.mean_images(np.stack([mnist.x_test[mnist.y_test == d].mean(0) for d in range(10)]))
    mz = np.asarray(means.data[0].z, dtype=float)
    np.testing.assert_allclose(mz[:28, 30:58], mnist.x_test[mnist.y_test == 1].mean(0) / 255, atol=1e-5)
    dist = charts.class_distribution(mnist.y_train, mnist.y_test)
    assert [t.name for t in dist.data] == ["train (60,000)", "test (10,000)"]
    assert sum(dist.data[0].y) == pytest.approx(100)
    assert dist.data[1].customdata[1] == 1135  # test images of digit 1
    assert _axis_titles(dist) == {"xaxis": "digit", "yaxis": "share of images (%)"}


def test_training_curves_show_train_and_validation(tiny_outcome):
    history = tiny_outcome[1].result.history
    fig = charts.training_curves(history, num_epochs=5)
    names = [(t.name, t.xaxis) for t in fig.data]
    assert names == [("train", "x"), ("validation", "x"), ("train", "x2"), ("validation", "x2")]
    assert list(fig.data[3].y) == history["val_accuracy"]
    assert fig.layout.xaxis.range == (0, 5.5)
    live = charts.training_curves(history, running={"epoch": [0.5, 1.0], "loss": [1.2, 0.9], "accuracy": [.5, .7]})
    assert live.data[0].name == "train (running)" and list(live.data[0].x) == [0.5, 1.0]
    assert _axis_titles(fig)["yaxis2"] == "accuracy"
    assert len(charts.training_curves({}).data) == 0  # nothing yet: an empty figure, not an error


def test_confusion_matrix_raw_and_normalised(report):
    raw = charts.confusion_matrix(report.confusion)
    np.testing.assert_array_equal(np.asarray(raw.data[0].z), report.confusion)
    norm = charts.confusion_matrix(report.confusion, normalize=True)
    np.testing.assert_allclose(np.asarray(norm.data[0].z).sum(axis=1), 1)
    clicks = raw.data[1].customdata
    assert len(clicks) == 100 and list(clicks[23]) == [2, 3, report.confusion[2, 3]]
    assert _axis_titles(raw) == {"xaxis": "predicted digit", "yaxis": "true digit"}


@pytest.mark.parametrize("point, cell", [
    ({"customdata": [4, 9, 12], "x": "9", "y": "4"}, (4, 9)),
    ({"customdata": {"0": 4, "1": 9, "2": 12}, "x": "9", "y": "4"}, (4, 9)),  # what Chromium sent (issue 15)
    ({"customdata": {"2": 12, "1": 9, "0": 4}}, (4, 9)),
    ({"x": "9", "y": "4"}, (4, 9)),
    ({"x": 3, "y": 11}, None),
    ({"curveNumber": 0}, None),
])
def test_clicked_cell_reads_every_shape_a_browser_sends(point, cell):
    assert charts.clicked_cell(point) == cell


def test_roc_curves_have_auc_in_legend(report):
    fig = charts.roc_curves(report.roc, report.auc)
    names = [t.name for t in fig.data]
    assert len(names) == 13 and names[-1] == "chance"
    assert names[0] == f"digit 0 (AUC {report.auc['0']:.4f})"
    assert names[11] == f"macro (AUC {report.auc['macro']:.4f})"


def test_probability_bars_and_digit_views():
    probs = np.full(10, 0.02, np.float32)
    probs[7] = 0.82
    bars = charts.probability_bars(probs)
    assert list(bars.data[0].y) == pytest.approx(probs.tolist())
    assert bars.data[0].marker.color[7] != bars.data[0].marker.color[0]
    image = np.random.default_rng(0).random((28, 28))
    grid = charts.digit_grid(np.stack([image] * 12), [f"#{i}" for i in range(12)], columns=5)
    assert len(grid.data) == 12 and grid.layout.annotations[11].text == "#11"


def test_compare_and_parallel_coordinates():
    histories = {"a": {"val_accuracy": [0.9, 0.95]}, "b": {"val_accuracy": [0.8, 0.85, 0.9]}}
    fig = charts.compare_curves(histories)
    assert [t.name for t in fig.data] == ["a", "b"] and list(fig.data[1].y) == [0.8, 0.85, 0.9]
    rows = [{"learning_rate": 0.001, "batch_size": 32, "test_accuracy": 0.98},
            {"learning_rate": 0.003, "batch_size": 128, "test_accuracy": 0.97}]
    par = charts.parallel_coordinates(rows, ["learning_rate", "batch_size"])
    assert isinstance(par.data[0], go.Parcoords)
    assert [d.label for d in par.data[0].dimensions] == ["learning rate", "batch size", "test accuracy"]


def test_charts_are_pure_and_serialisable(report):
    y = np.arange(10).repeat(5)
    perfect = evaluate_probabilities(y, np.eye(10)[y])
    for fig in (charts.roc_curves(perfect.roc, perfect.auc), charts.confusion_matrix(perfect.confusion)):
        assert fig.to_json()
