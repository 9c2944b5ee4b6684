"""Build the ANN and the CNN from a RunConfig. Both take float32 (n, 28, 28) in [0, 1] and return (n, 10) softmax."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from .config import RunConfig
from .preprocessing import augmentation_layers


def build_model(config: RunConfig) -> keras.Model:
    """The network the config describes, uncompiled. Augmentation layers (if any) are no-ops at inference."""
    inputs = keras.Input(shape=(28, 28), name="image")  # (n, 28, 28)
    x = inputs
    if config.augment:
        x = layers.Reshape((28, 28, 1))(x)
        x = augmentation_layers(seed=config.seed)(x)
    if config.model == "ann":
        x = layers.Flatten()(x)  # (n, 784)
        x = layers.Dense(config.hidden_units, activation="relu")(x)
    else:
        x = layers.Reshape((28, 28, 1))(x)  # (n, 28, 28, 1)
        for filters in config.filters:
            x = layers.Conv2D(filters, 3, use_bias=not config.batch_norm,
                              activation=None if config.batch_norm else "relu")(x)
            if config.batch_norm:
                x = layers.BatchNormalization()(x)
                x = layers.Activation("relu")(x)
            x = layers.MaxPooling2D(2)(x)
        x = layers.Flatten()(x)
        x = layers.Dense(config.hidden_units, activation="relu")(x)
    if config.dropout_rate > 0:
        x = layers.Dropout(config.dropout_rate)(x)
    outputs = layers.Dense(10, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=config.model)


def count_parameters(config: RunConfig) -> int:
    """Trainable + non-trainable parameters of the network `config` describes."""
    return build_model(config).count_params()


def make_predictor(model: keras.Model):
    """A fast callable for live prediction: float32 (n, 28, 28) → (n, 10) numpy probabilities.

    A compiled `tf.function` costs ~0.7 ms per image here, against ~43 ms for `model.predict`.
    """
    import tensorflow as tf  # noqa: PLC0415

    compiled = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                           input_signature=[tf.TensorSpec((None, 28, 28), tf.float32)])

    def predict(images):
        return compiled(np.asarray(images, np.float32).reshape(-1, 28, 28)).numpy()

    return predict


def saliency(model: keras.Model, image: np.ndarray, *, target: int) -> np.ndarray:
    """Gradient × input of digit `target`'s score (its pre-softmax logit): how much each pixel pushed it.

    The logit, not the probability: at 100% confidence the softmax saturates and its gradient vanishes.
    image : float32 (28, 28) in [0, 1]. Returns float32 (28, 28): positive where the ink supports `target`,
    negative where it argues against it, exactly 0 where there is no ink. Deterministic (no sampling).
    """
    import tensorflow as tf  # noqa: PLC0415

    if not 0 <= int(target) <= 9:
        raise ValueError(f"target must be a digit 0-9, got {target!r}")
    output = model.get_layer("probabilities")  # every DigitLab model ends in this Dense softmax layer
    features = keras.Model(model.inputs, output.input)
    x = tf.convert_to_tensor(np.asarray(image, np.float32).reshape(1, 28, 28))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logit = tf.matmul(features(x, training=False), output.kernel)[0, int(target)] + output.bias[int(target)]
    return (tape.gradient(logit, x)[0] * x[0]).numpy()
