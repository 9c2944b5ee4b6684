import numpy as np

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
