"""Run costs from the config alone: the layer table matches the Keras model, FLOPs match a hand count, and the
estimates grow with what they claim to measure."""

import numpy as np
import pytest

from digitlab import costs
from digitlab.config import RunConfig, preset
from digitlab.models import build_model


@pytest.mark.parametrize("config", [
    preset("reference", model="cnn"), preset("reference", model="ann"), preset("best", model="cnn"),
    RunConfig(model="cnn", filters=(8, 16, 32), batch_norm=True, dropout_rate=0.0, augment=True),
])
def test_the_layer_table_matches_the_keras_model(config):
    table = costs.layers(config)
    assert sum(layer.parameters for layer in table) == build_model(config).count_params() == config.num_parameters
    plain = build_model(config.replace(augment=False))  # augmentation is training-only: not in the table
    kinds = ("Conv2D", "BatchNormalization", "MaxPooling2D", "Dense")
    assert [(layer.type, layer.output_shape, layer.parameters) for layer in table if layer.type in kinds] == [
        (type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params())
        for layer in plain.layers if type(layer).__name__ in kinds]


def test_forward_flops_of_the_reference_cnn_by_hand():
    # conv 3×3 1→32 on 26×26, conv 3×3 32→64 on 11×11, dense 1600→128, dense 128→10; a multiply-add is 2 FLOPs
    by_hand = 2 * (26 * 26 * 9 * 1 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 128 + 128 * 10)
    assert costs.forward_flops(preset("reference", model="cnn")) == by_hand == 5_262_080
    config = preset("reference", model="cnn")
    assert costs.training_flops(config) == 3 * by_hand * 54_000 * 10


def test_memory_grows_with_batch_and_width_and_catches_wide_first_convolutions():
    base = RunConfig(model="cnn", batch_size=32, train_limit=2000)
    assert costs.training_memory_bytes(base.replace(batch_size=512)) > costs.training_memory_bytes(base)
    wide = base.replace(filters=(512, 8), batch_size=512)
    assert wide.num_parameters < base.num_parameters  # fewer weights ...
    assert costs.training_memory_bytes(wide) > 3 * 1024**3  # ... far more memory (3.5 GB measured)
    assert costs.training_memory_bytes(RunConfig(model="ann")) < 1.3 * 1024**3


def test_the_estimate_covers_start_up_training_and_finishing():
    config = preset("reference", model="cnn")
    total = costs.estimate_seconds(config)
    assert total == pytest.approx(costs.STARTUP_SECONDS + costs.training_seconds(config)
                                  + costs.finishing_seconds(config))
    assert costs.training_seconds(config.replace(num_epochs=20)) == pytest.approx(
        2 * costs.training_seconds(config))
    assert np.isfinite(total) and total > costs.STARTUP_SECONDS
