"""Run costs from the config alone: the layer table and its FLOPs are the saved model's anatomy, and the estimates
grow with what they claim to measure and reproduce the timings they were fitted to."""

import numpy as np
import pytest

from digitlab import costs
from digitlab.anatomy import load_anatomy
from digitlab.config import RunConfig, preset
from digitlab.models import build_model


@pytest.mark.parametrize("config", [
    preset("reference", model="ann"), preset("reference", model="cnn"), preset("best", model="cnn"),
    RunConfig(model="cnn", filters=(32, 64), convs_per_block=2, batch_norm=True, hidden_units=256, augment=True),
    RunConfig(model="cnn", filters=(8, 16, 32), batch_norm=True, dropout_rate=0.0),
], ids=["ann", "reference-cnn", "vgg-cnn-augmented", "vgg-cnn-batchnorm-augmented", "cnn-3-blocks-batchnorm"])
def test_the_layer_table_is_the_saved_models_anatomy(config, tmp_path):
    model = build_model(config)
    model.save(tmp_path / "model.keras")
    saved = load_anatomy(tmp_path / "model.keras")  # checked against Keras and a hand count in test_anatomy.py
    table = costs.layers(config)
    assert sum(layer.parameters for layer in table) == model.count_params() == config.num_parameters
    assert costs.forward_flops(config) == saved.flops > 0  # the Inside page's total is the demo's forward pass

    # Layer by layer, the layers that hold weights or compute are the same (augmentation, training-only, is not).
    def work(rows):
        return [(layer.type, layer.output_shape, layer.parameters, layer.flops) for layer in rows
                if layer.parameters or layer.flops]

    assert work(table) == work(saved.layers)


def test_training_flops_are_three_forward_passes_per_training_image_and_epoch():
    config = preset("reference", model="cnn")  # 10 epochs on 54,000 images (60,000 less the validation split)
    assert costs.training_flops(config) == 3 * 5_291_594 * 54_000 * 10  # forward pass counted by hand: test_anatomy


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
    more = config.replace(num_epochs=20)
    for native in (True, False):
        assert costs.training_seconds(more, native_bfloat16=native) > 1.9 * costs.training_seconds(
            config, native_bfloat16=native)
    assert np.isfinite(total) and total > costs.STARTUP_SECONDS


# Training seconds measured on the AVX2 EPYC (no native bfloat16), DigitLab's train: benchmarks/presets.json (median
# of the seeds), the shipped models' cards and `benchmarks.presets --select` (benchmarks/RESULTS.md).
AVX2_TIMINGS = [
    (dict(model="cnn", filters=(16, 32), hidden_units=256, dropout_rate=0.1, num_epochs=2, batch_size=128), 20.95),
    (dict(model="ann", hidden_units=256, dropout_rate=0.2, num_epochs=5, batch_size=128), 11.49),
    (dict(model="cnn", filters=(32, 64), hidden_units=128, num_epochs=10, batch_size=32), 176.48),
    (dict(model="ann", hidden_units=128, num_epochs=10, batch_size=32), 22.98),
    (dict(model="ann", hidden_units=512, num_epochs=30, batch_size=64), 140.15),
    (dict(model="cnn", filters=(32, 64), convs_per_block=2, hidden_units=256, num_epochs=20, batch_size=128,
          augment=True), 1434.5),
    (dict(model="ann", hidden_units=1024, num_epochs=40, batch_size=128, augment=True), 445.85),
]


@pytest.mark.parametrize("settings, measured", AVX2_TIMINGS)
def test_the_time_model_is_within_25_percent_of_the_avx2_timings(settings, measured):
    estimate = costs.training_seconds(RunConfig(**settings), native_bfloat16=False)
    assert estimate == pytest.approx(measured, rel=0.25)


# Training seconds measured on the AMX Xeon (native bfloat16, so "auto" trains in mixed bfloat16), DigitLab's train on
# MNIST's 54,000 training images, every preset with fewer epochs and four variants (benchmarks/RESULTS.md).
BF16_TIMINGS = [
    (dict(model="cnn", filters=(16, 32), hidden_units=256, dropout_rate=0.1, num_epochs=1, batch_size=128), 7.59),
    (dict(model="ann", hidden_units=256, dropout_rate=0.2, num_epochs=5, batch_size=128), 9.87),
    (dict(model="ann", hidden_units=128, num_epochs=3, batch_size=32), 10.23),
    (dict(model="cnn", filters=(32, 64), hidden_units=128, num_epochs=3, batch_size=32), 32.78),
    (dict(model="ann", hidden_units=1024, num_epochs=3, batch_size=128, augment=True), 30.92),
    (dict(model="cnn", filters=(32, 64), convs_per_block=2, hidden_units=256, num_epochs=2, batch_size=128,
          augment=True), 41.63),
    (dict(model="cnn", filters=(32, 64), hidden_units=128, num_epochs=3, batch_size=128), 23.92),
    (dict(model="cnn", filters=(32, 64), convs_per_block=2, hidden_units=256, num_epochs=2, batch_size=128), 35.95),
    (dict(model="ann", hidden_units=1024, num_epochs=2, batch_size=32, augment=True), 38.93),
    (dict(model="ann", hidden_units=4096, num_epochs=3, batch_size=512), 19.98),
]


@pytest.mark.parametrize("settings, measured", BF16_TIMINGS)
def test_the_time_model_is_within_25_percent_of_the_bfloat16_timings(settings, measured):
    estimate = costs.training_seconds(RunConfig(**settings), native_bfloat16=True)
    assert estimate == pytest.approx(measured, rel=0.25)


def test_float32_on_a_bfloat16_cpu_takes_longer_per_epoch():
    # The reference CNN at batch 32 in float32 there: 2 epochs in 28.56 s (1.5× the bfloat16 epochs).
    config = RunConfig(model="cnn", filters=(32, 64), hidden_units=128, num_epochs=2, batch_size=32)
    estimate = costs.training_seconds(config.replace(precision="float32"), native_bfloat16=True)
    assert estimate == pytest.approx(28.56, rel=0.25)
    per_run = costs.BFLOAT16_TIME[0]  # the same start-up either way; only the epochs take 1.5× as long
    assert estimate - per_run == pytest.approx(1.5 * (costs.training_seconds(config, native_bfloat16=True) - per_run))
