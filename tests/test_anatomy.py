"""The anatomy read from a .keras file without TensorFlow: parameters equal Keras' own count, shapes equal Keras'
output shapes, FLOPs equal a hand count, and layers that act only in training cost nothing."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from digitlab.anatomy import anatomy, load_anatomy, load_first_kernel
from digitlab.catalog import load_card
from digitlab.cli import main
from digitlab.config import RunConfig, preset
from digitlab.modelfiles import ModelLoadError
from digitlab.models import build_model

ROOT = Path(__file__).resolve().parent.parent


def saved(config: RunConfig, tmp_path, name: str = "model"):
    model = build_model(config)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return model, load_anatomy(path)


def test_the_reference_cnn_against_keras_and_a_hand_count(tmp_path):
    model, table = saved(preset("reference", model="cnn"), tmp_path)
    assert table.parameters == model.count_params() == 225_034
    for layer in table.layers:
        assert layer.parameters == model.get_layer(layer.name).count_params(), layer.name
        assert layer.output_shape == tuple(model.get_layer(layer.name).output.shape[1:]), layer.name
    # By hand, per image, in anatomy.layer_flops' convention: each output value of a convolution or dense layer
    # costs 2 FLOPs per multiply-add plus 1 for its bias; pooling, activations and dropout cost nothing.
    conv1 = 26 * 26 * 32 * (2 * 3 * 3 * 1 + 1)  # 28×28×1 → 26×26×32: 411,008
    conv2 = 11 * 11 * 64 * (2 * 3 * 3 * 32 + 1)  # after pooling 13×13×32 → 11×11×64: 4,468,288
    dense = 128 * (2 * 5 * 5 * 64 + 1)  # after pooling 5×5×64 = 1,600 → 128: 409,728
    output = 10 * (2 * 128 + 1)  # 128 → 10: 2,570
    assert table.flops == conv1 + conv2 + dense + output == 5_291_594
    assert [layer.flops for layer in table.layers if layer.flops] == [conv1, conv2, dense, output]
    assert [layer.type for layer in table.layers if layer.training_only] == ["Dropout"]  # names depend on what ran before


@pytest.mark.parametrize("config", [
    RunConfig(model="cnn", filters=(8, 16), convs_per_block=2, batch_norm=True, augment=True, hidden_units=32),
    RunConfig(model="ann", hidden_units=64, augment=True),
], ids=["cnn-batchnorm-augmented", "ann-augmented"])
def test_training_only_layers_cost_nothing_and_everything_else_matches_keras(config, tmp_path):
    model, table = saved(config, tmp_path)
    _, plain = saved(config.replace(augment=False), tmp_path, "plain")
    assert table.parameters == model.count_params() == config.num_parameters
    for layer in table.layers:
        keras_layer = model.get_layer(layer.name)
        assert layer.parameters == keras_layer.count_params(), layer.name
        if len(keras_layer._inbound_nodes) == 1:  # a layer called twice (the stroke-width pooling) has two outputs
            assert layer.output_shape == tuple(keras_layer.output.shape[1:]), layer.name
    # At inference the augmented network computes exactly what the same network without augmentation does.
    def work(rows):
        return [(layer.type, layer.output_shape, layer.parameters, layer.flops) for layer in rows if layer.flops]

    assert work(table.layers) == work(plain.layers) and table.flops == plain.flops > 0
    assert {layer.type for layer in table.layers if layer.training_only} >= {"Sequential", "GaussianNoise",
                                                                             "Multiply", "Dropout"}


def test_shipped_models_match_their_cards():
    for model_id in ("ann", "cnn"):
        table = load_anatomy(ROOT / "models" / f"{model_id}.keras")
        assert table.parameters == load_card(model_id)["num_parameters"]
    assert load_anatomy(ROOT / "models" / "cnn.keras").flops == 19_991_434  # the VGG-style CNN: ≈20 MFLOP per image


def test_an_unknown_layer_is_named_and_a_broken_file_refused(tmp_path):
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.LSTM(8), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="layer 'lstm.*': cannot count a LSTM layer; inspect knows Dense, Conv2D"):
        anatomy(json.loads(json.dumps(keras.saving.serialize_keras_object(model))))
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="broken.keras: not a readable .keras archive"):
        load_anatomy(broken)


def test_first_kernel_is_read_without_tensorflow_and_equals_keras(tmp_path):
    model, _ = saved(RunConfig(model="cnn", filters=(4, 8), hidden_units=16), tmp_path)
    kind, kernel = load_first_kernel(tmp_path / "model.keras")
    assert kind == "Conv2D"
    np.testing.assert_array_equal(kernel, model.layers[2].kernel.numpy())  # image, reshape, then the convolution
    kind, kernel = load_first_kernel(ROOT / "models" / "ann.keras")
    assert kind == "Dense" and kernel.shape == (784, 1024)


def test_inspect_on_the_command_line(capsys, tmp_path):
    assert main(["inspect", "cnn", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["parameters"] == 329_962 and result["flops"] == 19_991_434
    assert result["layers"][0] == {"name": "image", "type": "InputLayer", "output_shape": [28, 28], "parameters": 0,
                                   "flops": 0, "training_only": False}
    assert set(result["layers"][-1]) >= {"name", "type", "output_shape", "parameters", "flops"}
    assert main(["inspect", "ann"]) == 0
    text = capsys.readouterr().out
    assert "Dense" in text and "803,840" in text and text.splitlines()[-2].split()[-2:] == ["814,090", "1,627,146"]
    assert main(["inspect", str(tmp_path / "missing.keras")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert main(["inspect", "model.h5"]) == 2
    assert "give a .keras file, a shipped model (ann, cnn) or a run id" in capsys.readouterr().err


def test_anatomy_and_weights_are_read_without_tensorflow():
    script = ("import sys; from digitlab.anatomy import load_anatomy, load_first_kernel; "
              "load_anatomy('models/cnn.keras'); load_first_kernel('models/cnn.keras'); "
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
