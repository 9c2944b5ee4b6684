import keras
import numpy as np
import pytest

from digitlab.config import RunConfig, preset
from digitlab.models import build_model


def test_reference_ann_is_784_128_dropout_10():
    model = build_model(preset("reference", model="ann"))
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert [layer.units for layer in dense] == [128, 10]
    assert any(layer.__class__.__name__ == "Dropout" for layer in model.layers)
    assert model.count_params() == (784 * 128 + 128) + (128 * 10 + 10)  # 101,770


def test_reference_cnn_parameter_count_by_hand():
    model = build_model(preset("reference", model="cnn"))
    conv1 = 3 * 3 * 1 * 32 + 32
    conv2 = 3 * 3 * 32 * 64 + 64
    dense = 5 * 5 * 64 * 128 + 128  # 28 → conv 26 → pool 13 → conv 11 → pool 5
    assert model.count_params() == conv1 + conv2 + dense + 128 * 10 + 10  # 225,034


def test_output_is_a_probability_distribution():
    for config in (RunConfig(model="ann"), RunConfig(model="cnn", batch_norm=True, filters=(8, 16, 16)),
                   RunConfig(model="cnn", augment=True)):
        model = build_model(config)
        out = np.asarray(model(np.random.default_rng(0).random((4, 28, 28), np.float32), training=False))
        assert out.shape == (4, 10)
        np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


def test_augmentation_is_identity_at_inference():
    model = build_model(RunConfig(model="cnn", augment=True, seed=3))
    aug = model.get_layer("augmentation")
    x = np.random.default_rng(0).random((2, 28, 28, 1), np.float32)
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)
    assert not np.allclose(np.asarray(aug(x, training=True)), x)


def test_stroke_width_augmentation_thickens_and_thins_in_training_only(mnist, tmp_path):
    from digitlab.models import random_stroke_width

    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, random_stroke_width(inputs, seed=0, spread=1.0))
    x = np.repeat(mnist.x_test[:1, :, :, None] / 255.0, 64, axis=0).astype(np.float32)  # one digit, 64 times
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), x)
    ink = np.asarray(model(x, training=True)).sum(axis=(1, 2, 3)) / x[0].sum()
    assert ink.min() < 0.6 and ink.max() > 1.6  # some copies thinned, some thickened, by up to a full 3×3 step
    model.save(tmp_path / "stroke.keras")  # stock layers only: saved and reloaded in safe mode, no custom code
    from digitlab.modelfiles import load_model_file

    saved = load_model_file(tmp_path / "stroke.keras")
    assert saved.count_params() == 0
    np.testing.assert_array_equal(np.asarray(saved(x, training=False)), x)


def test_saliency_has_the_input_shape_is_deterministic_and_zero_off_ink(mnist):
    from digitlab.models import saliency
    from digitlab.modelfiles import SHIPPED_DIR, load_model_file

    model = load_model_file(SHIPPED_DIR / "cnn.keras")
    image = mnist.x_test[0] / 255.0  # a 7
    s7 = saliency(model, image, target=7)
    assert s7.shape == (28, 28) and s7.dtype == np.float32
    np.testing.assert_array_equal(s7, saliency(model, image, target=7))
    assert np.all(s7[image == 0] == 0)  # gradient × input: no ink, no effect
    assert s7.sum() != 0 and not np.allclose(s7, saliency(model, image, target=1))
    with pytest.raises(ValueError, match="target must be a digit 0-9, got 10"):
        saliency(model, image, target=10)
