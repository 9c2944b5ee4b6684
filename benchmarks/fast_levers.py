"""Levers tried on the `fast` CNN that DigitLab does not ship (benchmarks/RESULTS.md, "Presets on the AVX2 EPYC").

    python -m benchmarks.fast_levers betas    # one epoch with other Adam betas: validation accuracy, seeds 0-2
    python -m benchmarks.fast_levers ema      # one epoch with an EMA of the weights, label smoothing or a 5×5 first
                                              # convolution (the train_mnist_fast anchor's): the same
    python -m benchmarks.fast_levers im2col   # seconds per epoch: stock first convolution against im2col
    python -m benchmarks.fast_levers layout   # seconds per epoch: channels last (Keras's default) against first

`betas` and `ema` score on the validation split only (the test set is never loaded): DigitLab's `train` with Keras's
Adam given other arguments (`use_ema=True`: the weights it ends with are the average), the loss label smoothing or
the first convolution another kernel size, scored by the model `train` returns. `im2col` times plain `fit` (batch
128, 54,000 images) of the `fast` CNN's layers with the first 3×3 convolution as is, or as a fixed one-hot 3×3
convolution to 9 channels followed by a trainable 1×1 convolution (the same function and parameters, its weight
gradient one matrix product), the two alternating.
"""

import argparse
import functools
import json
import time

import numpy as np

from digitlab.data import load_mnist

BETAS = {  # candidate: (changes to the one-epoch `fast` CNN, Adam keyword arguments)
    "base 1 epoch": ({}, {}),
    "betas 0.7/0.9": ({}, {"beta_1": 0.7, "beta_2": 0.9}),
    "betas 0.7/0.9 lr 0.01": ({"learning_rate": "0.01"}, {"beta_1": 0.7, "beta_2": 0.9}),
    "betas 0.7/0.9 dropout 0": ({"dropout_rate": "0.0"}, {"beta_1": 0.7, "beta_2": 0.9}),
    "betas 0.9/0.99": ({}, {"beta_2": 0.99}),
}
EMA = {  # candidate: (changes to the one-epoch `fast` CNN, Adam keyword arguments, label smoothing[, first kernel])
    "base 1 epoch": ({}, {}, 0.0),
    "use_ema (momentum 0.99)": ({}, {"use_ema": True}, 0.0),
    "label smoothing 0.1": ({}, {}, 0.1),
    "use_ema + label smoothing 0.1": ({}, {"use_ema": True}, 0.1),
    "label smoothing 0.2": ({}, {}, 0.2),
    "label smoothing 0.1, lr 0.01": ({"learning_rate": "0.01"}, {}, 0.1),
    "label smoothing 0.1, dropout 0": ({"dropout_rate": "0.0"}, {}, 0.1),
    "label smoothing 0.1, betas 0.7/0.9": ({}, {"beta_1": 0.7, "beta_2": 0.9}, 0.1),
    "first kernel 5×5": ({}, {}, 0.0, 5),
    "label smoothing 0.1, first kernel 5×5": ({}, {}, 0.1, 5),
}


def one_epoch(data, candidates: dict) -> None:
    """Each candidate on the one-epoch `fast` CNN, seeds 0-2: validation accuracy of the model `train` returns."""
    import keras  # noqa: PLC0415

    from digitlab.config import RunConfig, preset  # noqa: PLC0415
    from digitlab.training import split_data, train  # noqa: PLC0415

    stock_adam, stock_compile, stock_conv = keras.optimizers.Adam, keras.Model.compile, keras.layers.Conv2D
    try:
        for name, (changes, adam, smoothing, *kernel) in candidates.items():
            first_kernel = kernel[0] if kernel else 3
            keras.optimizers.Adam = functools.partial(stock_adam, **adam)
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
            keras.Model.compile = lambda model, *args, _loss=loss, **kwargs: stock_compile(
                model, *args, **{**kwargs, "loss": _loss})
            scores, seconds = [], []
            for seed in (0, 1, 2):
                built = []  # the first Conv2D of a build gets `first_kernel`

                def convolution(filters, kernel_size, *args, _built=built, _first=first_kernel, **kwargs):
                    _built.append(filters)
                    return stock_conv(filters, _first if len(_built) == 1 else kernel_size, *args, **kwargs)

                keras.layers.Conv2D = convolution
                config = RunConfig.from_params({**preset("fast", model="cnn", seed=seed).to_params(),
                                                "num_epochs": "1", **changes})
                result = train(config, data)
                _, _, x_val, y_val = split_data(config, data)
                predicted = result.model.predict(x_val, batch_size=1000, verbose=0).argmax(axis=1)
                scores.append(float(np.mean(predicted == y_val.argmax(axis=1))))
                seconds.append(round(result.train_seconds, 1))
            print(json.dumps({"candidate": name, "val_accuracy": [round(s, 4) for s in scores],
                              "mean": round(float(np.mean(scores)), 5), "std": round(float(np.std(scores)), 5),
                              "seconds": seconds}), flush=True)
    finally:
        keras.optimizers.Adam, keras.Model.compile, keras.layers.Conv2D = stock_adam, stock_compile, stock_conv


def layout(data, rounds: int = 2) -> None:
    """Plain `fit` of the `fast` CNN's layers (batch 128, 54,000 images) with channels last or first, alternating."""
    import keras  # noqa: PLC0415
    from keras import layers  # noqa: PLC0415

    x, y = data.x_train[:54_000].astype(np.float32) / 255.0, data.y_train[:54_000]

    def build(order: str) -> keras.Model:
        inputs = keras.Input((28, 28))
        h = layers.Reshape((28, 28, 1) if order == "channels_last" else (1, 28, 28))(inputs)
        for filters in (16, 32):
            h = layers.Conv2D(filters, 3, activation="relu", data_format=order)(h)
            h = layers.MaxPooling2D(2, data_format=order)(h)
        h = layers.Dropout(0.1)(layers.Dense(256, activation="relu")(layers.Flatten()(h)))
        model = keras.Model(inputs, layers.Dense(10, activation="softmax")(h))
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", steps_per_execution=16)
        return model

    for _ in range(rounds):
        for order in ("channels_last", "channels_first"):
            keras.utils.set_random_seed(0)
            model = build(order)
            try:
                model.fit(x[:2048], y[:2048], batch_size=128, epochs=1, verbose=0)  # traces
            except Exception as error:  # noqa: BLE001 - TensorFlow's CPU kernels may refuse a layout: say so
                print(f"{order}: {type(error).__name__}: {str(error).strip().splitlines()[0][:200]}", flush=True)
                continue
            start = time.perf_counter()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            print(f"{order}: {time.perf_counter() - start:.2f} s per epoch", flush=True)


def im2col(data, rounds: int = 2) -> None:
    import keras  # noqa: PLC0415
    from keras import layers  # noqa: PLC0415

    x, y = data.x_train[:54_000].astype(np.float32) / 255.0, data.y_train[:54_000]

    def build(patches: bool) -> keras.Model:
        inputs = keras.Input((28, 28))
        h = layers.Reshape((28, 28, 1))(inputs)
        if patches:
            one_hot = np.eye(9, dtype=np.float32).reshape(3, 3, 1, 9)  # output channel k = pixel k of the 3×3 patch
            h = layers.Conv2D(9, 3, use_bias=False, trainable=False, kernel_initializer=keras.initializers.Constant(
                one_hot))(h)
            h = layers.Conv2D(16, 1, activation="relu")(h)
        else:
            h = layers.Conv2D(16, 3, activation="relu")(h)
        h = layers.MaxPooling2D(2)(layers.Conv2D(32, 3, activation="relu")(layers.MaxPooling2D(2)(h)))
        h = layers.Dropout(0.1)(layers.Dense(256, activation="relu")(layers.Flatten()(h)))
        model = keras.Model(inputs, layers.Dense(10, activation="softmax")(h))
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", steps_per_execution=16)
        return model

    for _ in range(rounds):
        for patches in (False, True):
            keras.utils.set_random_seed(0)
            model = build(patches)
            model.fit(x[:2048], y[:2048], batch_size=128, epochs=1, verbose=0)  # traces
            start = time.perf_counter()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            print(f"{'im2col' if patches else 'stock '} first layer: {time.perf_counter() - start:.2f} s per epoch",
                  flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lever", choices=["betas", "ema", "im2col", "layout"])
    parser.add_argument("--only", nargs="*", help="candidates to run (default: all of the lever's)")
    args = parser.parse_args()
    data = load_mnist()
    if args.lever == "im2col":
        im2col(data)
    elif args.lever == "layout":
        layout(data)
    else:
        candidates = BETAS if args.lever == "betas" else EMA
        one_epoch(data, {k: v for k, v in candidates.items() if not args.only or k in args.only})


if __name__ == "__main__":
    main()
