"""Serving graphs answer like Keras: probabilities, saliency for several digits and activations, for the shipped
models and for freshly trained runs; a refused export keeps the run's .keras; an old run gets its graph on first use,
made in another process."""

import shutil
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import onnx
import pytest

from digitlab import export, serving, serving_graph
from digitlab.config import RunConfig
from digitlab.modelfiles import ModelLoadError, load_model, model_file
from digitlab.models import saliency
from digitlab.pipeline import run_training
from digitlab.preprocessing import scale_images
from digitlab.runs import RunStore


@pytest.fixture(scope="module")
def images(mnist):
    """200 test digits, the second one blank (no ink: the ANN's graph gathers no kernel row)."""
    images = scale_images(mnist.x_test[:200])
    images[1] = 0
    return images


@pytest.fixture(scope="module")
def fresh_runs(mnist, tmp_path_factory):
    """A tiny ANN run and a tiny CNN run with augmentation and batch normalisation, in their own store."""
    store = RunStore(f"sqlite:///{tmp_path_factory.mktemp('serving') / 'mlflow.db'}")
    configs = [RunConfig(model="ann", hidden_units=32, num_epochs=1, train_limit=1000, seed=2),
               RunConfig(model="cnn", filters=(8, 16), hidden_units=32, num_epochs=1, train_limit=1000, augment=True,
                         batch_norm=True, seed=3)]
    return store, [run_training(c, preset="test", data=mnist, store=store).run_id for c in configs]


def assert_serves_like_keras(served: serving.ServingModel, model: keras.Model, images):
    """Every output against an independent Keras computation (eager GradientTape for saliency)."""
    out = served.run(images)
    np.testing.assert_allclose(out["probabilities"], np.asarray(model(images, training=False)), atol=1e-5)
    for target in (None, 0, 4, 9):
        got = served.run(images[:5], target=target, outputs=["probabilities", "saliency"])
        for i, image in enumerate(images[:5]):
            digit = int(got["probabilities"][i].argmax()) if target is None else target
            np.testing.assert_allclose(got["saliency"][i], saliency(model, image, target=digit), atol=1e-5)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert served.convolutions == [f"conv{i + 1}" for i in range(len(convs))]
    probe = keras.Model(model.inputs, [layer.output for layer in convs] + [model.get_layer("probabilities").input])
    expected = probe(images, training=False)
    expected = expected if isinstance(expected, list) else [expected]
    for name, want in zip(served.convolutions + ["hidden"], expected):
        want = np.asarray(want)
        np.testing.assert_allclose(out[name], want, atol=1e-4 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("model_id", ["cnn", "ann"])
def test_shipped_serving_graphs_equal_keras(model_id, images):
    assert_serves_like_keras(serving.load_serving(model_id), load_model(model_id), images)


def test_fresh_runs_serve_like_keras_with_augmentation_and_batch_norm(fresh_runs, images):
    store, run_ids = fresh_runs
    for run_id in run_ids:
        assert_serves_like_keras(serving.load_serving(run_id, store=store), load_model(run_id, store=store), images)


def test_graphs_hold_the_lean_gradients(fresh_runs):
    """CNN: each convolution's gradient is a Conv (serving_graph._convolve), but the first's (one input channel), a
    ConvTranspose with explicit padding; none has shape nodes around it (tf2onnx's Sub/Div pads). ANN: its first
    kernel is stored once (not again transposed for the gradient), gathered by inked pixel."""
    store, run_ids = fresh_runs
    for model_id, kwargs in (("cnn", {}), (run_ids[1], {"store": store}), ("ann", {}), (run_ids[0], {"store": store})):
        model = load_model(model_id, **kwargs)
        graph = onnx.load(model_file(model_id, kind="onnx", **kwargs)).graph
        ops = [node.op_type for node in graph.node]
        convs = sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)
        if convs:
            assert convs >= 2 and ops.count("ConvTranspose") == 1 and ops.count("Conv") == 2 * convs - 1
            transposed = next(node for node in graph.node if node.op_type == "ConvTranspose")
            assert "pads" in [a.name for a in transposed.attribute] and not {"Sub", "Div"} & set(ops)
        else:
            first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense)).kernel.shape
            assert [tuple(i.dims) for i in graph.initializer].count(tuple(first)) == 1
            assert sum(tuple(i.dims) == tuple(first)[::-1] for i in graph.initializer) == 0
            assert {"NonZero", "Gather", "ScatterND"} <= set(ops)
            blank = np.zeros((1, 28, 28), np.float32)  # no inked pixel at all: no row gathered
            out = serving.load_serving(model_id, **kwargs).run(blank)
            np.testing.assert_allclose(out["probabilities"], np.asarray(model(blank, training=False)), atol=1e-5)
            assert not out["saliency"].any()


def test_predict_batches_and_rejects_a_bad_target(images):
    served = serving.load_serving("ann")
    np.testing.assert_allclose(served.predict(np.concatenate([images] * 6))[-200:], served.predict(images),
                               atol=1e-6)
    assert served.predict(images[:0]).shape == (0, 10)
    with pytest.raises(ValueError, match="target must be a digit 0-9 or None, got 12"):
        served.run(images[:1], target=12)


def test_run_each_answers_as_one_by_one_with_the_models_running_at_once(images):
    models = {kind: serving.load_serving(kind) for kind in ("ann", "cnn")}
    together = serving.run_each(models, images[:1], target=7)
    assert list(together) == ["ann", "cnn"]
    for kind, model in models.items():
        alone = model.run(images[:1], target=7)
        assert alone.keys() == together[kind].keys()
        for name, value in alone.items():
            np.testing.assert_array_equal(together[kind][name], value)

    class Slow:  # a model taking 0.3 s, releasing the GIL as ONNX Runtime does
        def run(self, images, *, target=None):
            time.sleep(0.3)
            return {"target": target}

    started = time.perf_counter()
    assert serving.run_each({"a": Slow(), "b": Slow()}, images[:1], target=3) == {"a": {"target": 3},
                                                                                  "b": {"target": 3}}
    assert time.perf_counter() - started < 0.5  # one after the other: 0.6 s
    assert serving.run_each({}, images[:1]) == {}

    release = threading.Event()  # every helper busy: the caller runs the other model itself, without waiting
    busy = [serving._HELPERS.submit(release.wait, 10) for _ in range(serving._HELPERS._max_workers)]
    try:
        started = time.perf_counter()
        assert serving.run_each({"a": Slow(), "b": Slow()}, images[:1]) == {"a": {"target": None},
                                                                          "b": {"target": None}}
        assert time.perf_counter() - started < 1.0
    finally:
        release.set()
    assert all(future.result() for future in busy)


@pytest.mark.parametrize("differing, refused", [(2, False), (3, True)])
def test_the_check_spares_one_percent_of_saliency_maps_and_no_more(images, differing, refused):
    """Max-pooling near-ties may route one map's gradient elsewhere (both right); a fault differs on many more."""
    model = load_model("cnn")
    autodiff = serving_graph.serving_function(model, gradients="autodiff")

    calls = []

    def reference(batch, target):  # TensorFlow's outputs, with `differing` saliency maps of the 200 moved by 1e-3
        out = dict(autodiff(batch, target))
        if not calls:  # the first batch, target -1
            out["saliency"] = out["saliency"] + np.pad(np.full((differing, 28, 28), 1e-3, np.float32),
                                                       [(0, batch.shape[0] - differing), (0, 0), (0, 0)])
        calls.append(target)
        return out

    check = lambda: serving_graph._check(model_file("cnn", kind="onnx"), model, reference, images)  # noqa: E731
    if refused:
        with pytest.raises(serving_graph.ServingExportError, match=r"saliency \(target -1\) differs by 1.00e-03"):
            check()
    else:
        check()


def test_an_export_that_cannot_match_is_refused_and_the_run_keeps_its_keras(mnist, images, tmp_path, tracking_uri):
    # Overlapping max-pooling (pool 3, stride 1): its gradient is not converted, so saliency cannot be served.
    model = keras.Sequential([keras.Input((28, 28), name="image"), keras.layers.Reshape((28, 28, 1)),
                              keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.MaxPooling2D(3, strides=1),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax",
                                                                         name="probabilities")])
    with pytest.raises(serving_graph.ServingExportError, match="serving graph could not be made.*MaxPoolGrad"):
        serving_graph.write_serving_graph(model, RunConfig(), tmp_path / "model.onnx", check_images=images)
    assert not list(tmp_path.iterdir())  # nothing half-written

    error = export.write_model_files(model, RunConfig(), tmp_path / "files", check_images=images)
    assert "MaxPoolGrad" in error and sorted(p.name for p in (tmp_path / "files").iterdir()) == ["model.keras"]
    store = RunStore()
    config = RunConfig(model="cnn", num_epochs=1)
    run_id = store.start_run(config, preset="test")
    from digitlab.evaluation import evaluate_model

    report = evaluate_model(model, scale_images(mnist.x_test), mnist.y_test)
    store.finish_run(run_id, model_dir=tmp_path / "files", report=report, train_seconds=1.0, num_parameters=1,
                     stopped=None, serving_error=error)
    with pytest.raises(ModelLoadError, match="has no serving graph: .*MaxPoolGrad.*Its .keras file is kept"):
        serving.load_serving(run_id, store=store)
    assert model_file(run_id, store=store).stat().st_size > 0  # the .keras is still offered


def test_an_old_run_gets_its_serving_graph_on_first_use_in_another_process(tiny_outcome, images, tmp_path):
    store, outcome = tiny_outcome
    onnx_path = model_file(outcome.run_id, store=store, kind="onnx")
    saved = shutil.copy(onnx_path, tmp_path / "saved.onnx")
    onnx_path.unlink()  # as if the run had been made before serving graphs existed
    try:
        script = f"""
import sys
from digitlab import serving
try:
    serving.load_serving({outcome.run_id!r})
    raise SystemExit("expected ServingGraphMissing")
except serving.ServingGraphMissing:
    pass
serving.ensure_serving_graph({outcome.run_id!r})
served = serving.load_serving({outcome.run_id!r})
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "this process must not import TensorFlow"
print(served.path)
"""
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, "MLFLOW_TRACKING_URI": store.uri})
        assert done.returncode == 0, done.stderr[-2000:]
        assert onnx_path.exists()
        assert_serves_like_keras(serving.load_serving(outcome.run_id, store=store), outcome.result.model, images)
    finally:
        if not onnx_path.exists():
            shutil.copy(saved, onnx_path)
