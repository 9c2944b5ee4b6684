"""What a run costs before it starts: the network layer by layer, its training FLOPs, peak memory and wall time.

Everything is computed from the RunConfig alone (no TensorFlow), so the server can check a crafted request against
the public demo's caps, and the Train page can say how long a run will take, before any worker starts.
"""

from __future__ import annotations

import math
from pathlib import Path

from .anatomy import Layer, anatomy
from .config import RunConfig, cpu_has_bfloat16
from .evaluation import EVALUATION_BATCH

MB = 1024**2


# ---------------------------------------------------------------------------------------------------------------
# The network, layer by layer, and its FLOPs
# ---------------------------------------------------------------------------------------------------------------

def layers(config: RunConfig) -> list[Layer]:
    """The inference network `config` describes, in order, counted by `anatomy` (shapes, parameters, FLOPs) as if
    read from the saved model. Augmentation, active in training only, is left out: it costs 0 FLOPs there too."""
    return anatomy({"class_name": "Sequential", "config": {"layers": _keras_layers(config)}}).layers


def _keras_layers(config: RunConfig) -> list[dict]:
    """The layers `models.build_model(config)` makes, as the entries of a Keras Sequential config."""
    out = [_layer("InputLayer", "image", batch_shape=[None, 28, 28])]
    if config.model == "ann":
        out.append(_layer("Flatten", "flatten"))
    else:
        out.append(_layer("Reshape", "reshape", target_shape=[28, 28, 1]))
        index = 0
        for block, filters in enumerate(config.filters, start=1):
            for _ in range(config.convs_per_block):
                index += 1
                out.append(_layer("Conv2D", f"conv{index}", filters=filters, kernel_size=[3, 3], strides=[1, 1],
                                  use_bias=not config.batch_norm))
                if config.batch_norm:
                    out.append(_layer("BatchNormalization", f"batch_norm{index}"))
                    out.append(_layer("Activation", f"relu{index}", activation="relu"))
            out.append(_layer("MaxPooling2D", f"pool{block}", pool_size=[2, 2]))
        out.append(_layer("Flatten", "flatten"))
    out.append(_layer("Dense", "hidden", units=config.hidden_units))
    if config.dropout_rate > 0:
        out.append(_layer("Dropout", "dropout", rate=config.dropout_rate))
    out.append(_layer("Dense", "probabilities", units=10))
    return out


def _layer(kind: str, name: str, **settings) -> dict:
    return {"class_name": kind, "config": {"name": name, **settings}}


def forward_flops(config: RunConfig) -> int:
    """FLOPs of one forward pass for one image (`anatomy.layer_flops`' convention: biases and batch norm count)."""
    return sum(layer.flops for layer in layers(config))


def training_flops(config: RunConfig) -> float:
    """FLOPs of the whole training: forward + backward (≈ 3 forward passes) per image per epoch."""
    return 3.0 * forward_flops(config) * config.num_train_images * config.num_epochs


# ---------------------------------------------------------------------------------------------------------------
# Peak memory of a training process
# ---------------------------------------------------------------------------------------------------------------

RUNTIME_BYTES = 850 * MB  # a worker with TensorFlow imported, MNIST loaded and a small model trained (measured)
_OPTIMIZER_SLOTS = {"adam": 2, "sgd": 1, "rmsprop": 1}  # state kept per weight besides the weight and its gradient


def training_memory_bytes(config: RunConfig) -> int:
    """Estimated peak resident memory of the worker that trains and scores `config`.

    The runtime (TensorFlow, MNIST, Python) + the float32 copy of the training images and labels + weights with
    their gradients and optimizer state + every layer's outputs for the larger of: a training step (forward
    outputs, their gradients and the backward pass's temporaries: ~3 × batch) and scoring (~2 × 256 images).
    Fitted to measured peaks within about 20% (benchmarks/RESULTS.md, "Run costs"); wide first convolutions with big
    batches are what it exists to catch (filters 512,8 at batch 512: ~3.5 GB measured, for 69k parameters).
    """
    images = config.train_limit or 60_000
    data = images * (784 + 10) * 4
    weights = sum(layer.parameters for layer in layers(config)) * 4 * (2 + _OPTIMIZER_SLOTS[config.optimizer])
    outputs = sum(math.prod(layer.output_shape) for layer in layers(config))
    activations = outputs * 4 * max(3 * config.batch_size, 2 * EVALUATION_BATCH)
    return RUNTIME_BYTES + data + weights + activations


def available_memory_bytes() -> int | None:
    """MemAvailable of this machine (Linux), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------------------------------------------
# Wall time, as the visitor waits for it: start-up, training, testing and saving
# ---------------------------------------------------------------------------------------------------------------

STARTUP_SECONDS = 12.0  # a worker's start: Python, TensorFlow, MNIST, building the model (measured here)


def training_seconds(config: RunConfig, *, native_bfloat16: bool | None = None) -> float:
    """Rough training time on a 2-core machine of this machine's kind (with or without native bfloat16).

    Without native bfloat16 (the AVX2 EPYC), fitted to the training times of every preset and one candidate measured
    there (benchmarks/RESULTS.md, "The Train page's time estimate"): 4.1 s per run (tracing, the first epoch's
    warm-up) + per epoch 0.73 ms per batch + the training FLOPs at 46.6 GFLOP/s + 92.6 µs per augmented image (the
    rotation, zoom and shift are per image, whatever the model). With native bfloat16 (the AMX Xeon, training in
    mixed bfloat16), fitted the same way to ten runs there (every preset, fewer epochs, and four variants): 5.5 s per
    run + per epoch 0.22 ms per batch and layer + the training FLOPs at 223 GFLOP/s + 62.7 µs per augmented image
    + 6.1 ms per augmented batch; float32 on such a CPU (precision="float32") 1.5× per epoch (one run measured).
    """
    if not (cpu_has_bfloat16() if native_bfloat16 is None else native_bfloat16):
        images = config.num_train_images
        per_epoch = math.ceil(images / config.batch_size) * 0.73e-3 + (images * 92.6e-6 if config.augment else 0.0)
        return 4.1 + config.num_epochs * per_epoch + training_flops(config) / 46.6e9
    run, *epochs = (constant * term for constant, term in zip(BFLOAT16_TIME, bfloat16_time_terms(config)))
    return run + sum(epochs) * (1.5 if config.precision == "float32" else 1.0)  # "auto" is bfloat16 on such a CPU


# The time model with native bfloat16: seconds per run, then per batch and layer, per training FLOP, per augmented
# image and per augmented batch (fitted by `python -m benchmarks.time_estimate` on the AMX Xeon).
BFLOAT16_TIME = (5.5, 0.22e-3, 1 / 223e9, 62.7e-6, 6.1e-3)


def bfloat16_time_terms(config: RunConfig) -> list[float]:
    """What that model counts, one term per BFLOAT16_TIME constant: 1 per run, then over all epochs batches × layers,
    training FLOPs, augmented images and augmented batches."""
    images = config.num_train_images
    batches = math.ceil(images / config.batch_size)
    epochs, augmented = config.num_epochs, float(config.augment)
    return [1.0, epochs * batches * len(layers(config)), training_flops(config), epochs * images * augmented,
            epochs * batches * augmented]


SAVING_SECONDS = 5.0  # converting and checking the serving graph, logging the run (measured here)


def testing_seconds(config: RunConfig) -> float:
    """Scoring the 10,000 test images: 1 s + their forward passes at ~40.2 GFLOP/s (40 before biases counted)."""
    return 1.0 + 10_000 * forward_flops(config) / 40.2e9


def finishing_seconds(config: RunConfig) -> float:
    """What follows training: testing, then writing the serving graph (converted and checked) and tracking."""
    return testing_seconds(config) + SAVING_SECONDS


def estimate_seconds(config: RunConfig) -> float:
    """The whole wall time from Start to Finished: start-up + training + testing and saving."""
    return STARTUP_SECONDS + training_seconds(config) + finishing_seconds(config)

