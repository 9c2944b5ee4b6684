"""Chart builders on real data: the figures hold the numbers they were given, with labelled axes."""

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
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
    assert fig.layout.xaxis.showgrid is False and fig.layout.yaxis.showgrid is False  # no lines beside the picture
    axes = (fig.layout.xaxis, fig.layout.yaxis)  # both hug the picture: names beside it, no stray tick marks
    assert {a.constrain for a in axes} == {"domain"} and {a.ticks for a in axes} == {""}
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
    assert live.data[0].name == "train (running mean)" and list(live.data[0].x) == [0.5, 1.0]
    stopped = charts.training_curves({"loss": [0.5, 0.3, 0.35], "epoch": [1.0, 2.0, 2.1135]})  # Stop in epoch 3
    assert list(stopped.data[0].x) == [1.0, 2.0, 2.1135]  # the last point part-way, not a whole third epoch
    assert list(charts.compare_curves({"a": {"val_accuracy": [0.9, 0.95]}}).data[0].x) == [1, 2]  # older runs
    assert _axis_titles(fig)["yaxis2"] == "accuracy"
    assert len(charts.training_curves({}).data) == 0  # nothing yet: an empty figure, not an error


def test_confusion_table_raw_and_normalised_and_its_mistakes_show(report):
    raw = charts.confusion_table(report.confusion)
    np.testing.assert_array_equal(raw.data.to_numpy(), report.confusion)
    assert list(raw.data.columns) == [str(d) for d in range(10)] and raw.data.index[4] == "true 4"
    norm = charts.confusion_table(report.confusion, normalize=True)
    np.testing.assert_allclose(norm.data.to_numpy().sum(axis=1), 1)
    assert f">{report.confusion[0, 0] / report.confusion[0].sum():.1%}<" in norm.to_html()
    # Counts as everywhere else (1,135); the diagonal no darker than the largest mistake, which is then as dark as
    # a correct cell, and darker than a smaller one.
    confusion = np.eye(10, dtype=int) * 900
    confusion[1, 1], confusion[4, 9], confusion[7, 2] = 1135, 6, 3
    table = charts.confusion_table(confusion)
    assert ">1,135<" in table.to_html()
    shade = {cell: dict(styles)["background-color"] for cell, styles in table._compute().ctx.items()}
    assert shade[4, 9] == shade[0, 0] == shade[1, 1] != shade[7, 2] != shade[0, 1]


def test_roc_curves_have_auc_in_legend(report):
    fig = charts.roc_curves(report.roc, report.auc)
    names = [t.name for t in fig.data]
    assert len(names) == 13 and names[-1] == "chance"
    assert names[0] == f"digit 0 (AUC {report.auc['0']:.4f})"
    assert names[11] == f"macro (AUC {report.auc['macro']:.4f})"
    # Its 13 entries stack on a phone: placed in the figure's own height, they never reach the axis title.
    assert fig.layout.legend.yref == "container" and fig.layout.legend.yanchor == "bottom"


def test_probability_bars_mark_the_predicted_digit():
    probs = np.full(10, 0.02, np.float32)
    probs[7] = 0.82
    bars = charts.probability_bars(probs)
    assert list(bars.data[0].y) == pytest.approx(probs.tolist())
    assert bars.data[0].marker.color[7] != bars.data[0].marker.color[0]


def test_figures_redrawn_on_every_stroke_skip_plotlys_check_and_equal_the_checked_figure():
    rng = np.random.default_rng(0)
    positions, labels = rng.normal(size=(200, 2)).astype(np.float32), rng.integers(0, 10, 200)
    for fig in (charts.probability_bars(rng.dirichlet(np.ones(10)).astype(np.float32), height=180),
                charts.embedding_map(positions, labels, predicted=(labels + 1) % 10, drawing=positions[0],
                                     neighbours=np.arange(5), revision="a")):
        assert not fig._validate  # built without Plotly's check of every property
        assert json.loads(pio.to_json(fig)) == json.loads(pio.to_json(go.Figure(fig.to_dict())))  # as if checked


def test_compare_curves_keep_each_runs_colour_and_parallel_coordinates_drop_constant_axes():
    histories = {"a": {"val_accuracy": [0.9, 0.95]}, "b": {"val_accuracy": [0.8, 0.85, 0.9]}}
    colours = {"a": charts.run_colour(0), "b": charts.run_colour(1)}
    assert len({charts.run_colour(age) for age in range(10)}) == 10  # ten runs in a row: ten colours
    fig = charts.compare_curves(histories, colours=colours)
    assert [t.name for t in fig.data] == ["a", "b"] and list(fig.data[1].y) == [0.8, 0.85, 0.9]
    alone = charts.compare_curves({"b": histories["b"]}, colours={"b": colours["b"]})
    assert alone.data[0].line.color == fig.data[1].line.color == charts.run_colour(1)  # whatever is selected
    rows = [{"learning_rate": 0.001, "batch_size": 32, "epochs": 5, "val_accuracy": 0.98},
            {"learning_rate": 0.003, "batch_size": 128, "epochs": 5, "val_accuracy": 0.97}]
    par = charts.parallel_coordinates(rows, ["learning_rate", "batch_size", "epochs"])
    assert isinstance(par.data[0], go.Parcoords)
    assert [d.label for d in par.data[0].dimensions] == ["learning rate", "batch size", "validation accuracy"]
    for dimension in par.data[0].dimensions:  # two runs: neither line may run along an edge of the axes
        low, high = dimension.range
        assert low < min(dimension.values) and max(dimension.values) < high
        assert sorted(dimension.tickvals) == sorted(dimension.values)  # ticks where runs are, not at -0.0006
    assert par.data[0].dimensions[-1].tickformat == ".2%"
    losses = charts.parallel_coordinates([{**r, "val_loss": 0.1 + i} for i, r in enumerate(rows)], ["batch_size"],
                                         color="val_loss")
    assert losses.data[0].dimensions[-1].tickformat == "~g"  # a loss is no share: 1.1, not 110.00%
    assert charts.compare_curves(histories, metric="val_loss").layout.yaxis.title.text == "validation loss"
    # A one-epoch run is one point, whose axis Plotly would pad to 1.5: accuracy axes end at 1, loss axes do not.
    one_epoch = {"val_accuracy": [0.98], "accuracy": [0.9], "loss": [0.3], "val_loss": [0.1]}
    assert charts.compare_curves({"a": one_epoch}).layout.yaxis.autorangeoptions.maxallowed == 1
    assert charts.compare_curves({"a": one_epoch}, metric="val_loss").layout.yaxis.autorangeoptions.maxallowed is None
    curves = charts.training_curves(one_epoch).layout
    assert curves.yaxis2.autorangeoptions.maxallowed == 1 and curves.yaxis.autorangeoptions.maxallowed is None
    assert curves.yaxis.title.text == "categorical cross-entropy"
    smoothed = charts.training_curves(one_epoch, label_smoothing=0.1).layout.yaxis.title.text
    assert smoothed == "cross-entropy, targets smoothed by 0.1"  # not the test loss's kind: the axis says so
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.range == (0, 3.5)  # whole epochs, not 1.2, 1.4, ...


def test_roc_zoom_and_auc_digits_that_tell_models_apart(report):
    corner = charts.roc_curves(report.roc, report.auc, corner=True)
    assert corner.layout.xaxis.type == "log" and corner.layout.yaxis.range == (0.9, 1.002)
    assert corner.layout.xaxis.exponentformat == "power"  # 10⁻⁴, not Plotly's "100μ"
    assert all(min(t.x) > 0 for t in corner.data)  # a log axis cannot show 0
    assert charts.auc_digits([0.99991, 0.99994]) == 5 and charts.auc_digits([0.97, 0.98]) == 4
    assert charts.auc_digits([0.999996, 1.0]) == 6  # 0.99999|6 must not read as 1.00000


def test_optunas_figures_in_our_words_show_every_trial():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for value in (0.90, 0.95, 0.97):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        study.tell(trial, value)
    history = charts.in_our_words(optuna.visualization.plot_optimization_history(study, target_name="v"))
    assert history.layout.xaxis.dtick == 1  # trials 0, 1, 2: no 0.5
    lines = charts.in_our_words(optuna.visualization.plot_parallel_coordinate(study, target_name="v"))
    assert "learning rate" in lines.layout.xaxis.ticktext
    colours = [t.line.color for t in lines.data if t.mode == "lines"]
    assert len(colours) == 3 and "rgb(247, 251, 255)" not in colours  # the worst is light blue, not white
    assert colours[0] == "rgb(116, 173, 209)" and colours[-1] == "rgb(215, 48, 39)"


def test_the_zoomed_macro_roc_curve_stays_between_the_digits_curves():
    from digitlab.evaluation import load_report
    from digitlab.modelfiles import SHIPPED_DIR

    report = load_report(SHIPPED_DIR / "cnn.report.npz")  # saved with a coarse macro curve: made again on loading
    for corner in (True, False):
        fig = charts.roc_curves(report.roc, report.auc, corner=corner)
        macro = next(t for t in fig.data if t.name.startswith("macro"))
        digits = np.array([np.interp(macro.x, t.x, t.y) for t in fig.data if t.name.startswith("digit")])
        assert (digits.min(axis=0) - 1e-9 <= macro.y).all() and (macro.y <= digits.max(axis=0) + 1e-9).all()
        np.testing.assert_allclose(macro.y, digits.mean(axis=0), atol=1e-3)  # their mean (a step is ambiguous)


def test_epoch_axis_starts_at_zero_and_stays_readable_for_long_runs():
    history = {"loss": list(np.linspace(1, 0.1, 35)), "val_loss": list(np.linspace(1, 0.2, 35))}
    fig = charts.training_curves(history)
    assert fig.layout.xaxis.range == (0, 35.5) and fig.layout.xaxis.dtick is None  # not 37 crammed labels
    assert charts.training_curves({"loss": [1, 0.5]}).layout.xaxis.dtick == 1


def test_charts_are_pure_and_serialisable(report):
    y = np.arange(10).repeat(5)
    perfect = evaluate_probabilities(y, np.eye(10)[y])
    assert charts.roc_curves(perfect.roc, perfect.auc).to_json()
    assert charts.confusion_table(perfect.confusion).to_html()  # no mistakes at all: every cell still shaded


def test_the_map_draws_the_star_last_and_names_the_digits_above_every_point_but_the_star():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    positions = rng.normal(size=(200, 2)) + labels[:, None] * 3
    fig = charts.embedding_map(positions, labels, predicted=(labels + (rng.random(200) < 0.1)) % 10,
                               drawing=np.array([1.0, 2.0]), neighbours=np.arange(8))
    # One rendering layer for every trace (WebGL, drawn in order), the star last: nothing can cover it.
    assert {trace.type for trace in fig.data} == {"scattergl"} and fig.data[-1].name == "your drawing"
    names = {a.text: (a.x, a.y) for a in fig.layout.annotations}  # annotations: above every trace
    assert sorted(names) == [str(d) for d in range(10)] + ["★"]
    assert fig.layout.annotations[-1].text == "★" and names["★"] == (1.0, 2.0)  # and the star above the names
    assert "★" not in [a.text for a in charts.embedding_map(positions, labels).layout.annotations]  # no drawing
    assert names["3"] == pytest.approx(tuple(np.median(positions[labels == 3], axis=0)))
