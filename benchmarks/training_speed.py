"""Training speed: DigitLab's `train` against plain Keras `model.fit` on numpy arrays, same model, data and seed.

    python -m benchmarks.training_speed --seeds 0 1 2          # the reference CNN, 10 epochs, batch 32, 3 seeds
    python -m benchmarks.training_speed --levers               # each lever alone, 2 epochs each, 2 rounds

Both sides train the product brief's reference CNN (`preset("reference", model="cnn")`: 10 epochs, batch 32, Adam
1e-3, early stopping patience 3 on the validation split) on the same 54,000 images with the same seed, one after the
other in this process; the order alternates by seed so load drifts hit both. "Plain" is what a Keras tutorial does:
`model.fit(x, y, batch_size=32, validation_data=...)` on float32 numpy. Reported: the median epoch time of each side
(epoch 1, which traces the graph, is left out), their ratio, and test accuracy per seed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np

from digitlab.config import preset
from digitlab.data import load_mnist
from digitlab.evaluation import evaluate_model
from digitlab.models import build_model
from digitlab.preprocessing import scale_images
from digitlab.training import compile_model, split_data, train


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def plain_fit(config, data, *, steps_per_execution=1, precision="float32"):
    """A textbook `model.fit` of the same network: float32 numpy in, Keras callbacks for early stopping only."""
    keras.utils.set_random_seed(config.seed)
    x_fit, y_fit, x_val, y_val = split_data(config, data)
    model = build_model(config, precision=precision)
    compile_model(model, config, steps=1, steps_per_execution=steps_per_execution)
    timer = _EpochTimer()
    callbacks = [timer]
    if config.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.early_stopping,
                                                       restore_best_weights=True))
    model.fit(x_fit, y_fit, validation_data=(x_val, y_val), epochs=config.num_epochs,
              batch_size=config.batch_size, shuffle=True, callbacks=callbacks, verbose=0)
    return model, timer.seconds


def compare(seeds, num_epochs):
    data = load_mnist()
    x_test = scale_images(data.x_test)
    rows = []
    for i, seed in enumerate(seeds):
        config = preset("reference", model="cnn", seed=seed, num_epochs=num_epochs)
        sides = ["plain", "digitlab"] if i % 2 == 0 else ["digitlab", "plain"]
        result = {}
        for side in sides:
            if side == "plain":
                model, seconds = plain_fit(config, data)
            else:
                trained = train(config, data)
                model, seconds = trained.model, trained.history["seconds"]
            accuracy = evaluate_model(model, x_test, data.y_test).accuracy
            result[side] = (statistics.median(seconds[1:] or seconds), len(seconds), accuracy)
            print(f"seed {seed} {side:8s}: median epoch {result[side][0]:.2f} s over {len(seconds)} epochs, "
                  f"test accuracy {accuracy:.2%}", flush=True)
        rows.append((seed, result))
    print("\n| seed | plain: s/epoch (epochs) | DigitLab: s/epoch (epochs) | speed-up | plain test acc | DigitLab test acc |")
    print("|---|---|---|---|---|---|")
    for seed, r in rows:
        (p, pn, pa), (d, dn, da) = r["plain"], r["digitlab"]
        print(f"| {seed} | {p:.2f} ({pn}) | {d:.2f} ({dn}) | **{p / d:.2f}×** | {pa:.2%} | {da:.2%} |")
    plain_acc = np.mean([r["plain"][2] for _, r in rows])
    ours_acc = np.mean([r["digitlab"][2] for _, r in rows])
    speedups = [r["plain"][0] / r["digitlab"][0] for _, r in rows]
    print(f"\nmedian speed-up {statistics.median(speedups):.2f}×; mean test accuracy plain {plain_acc:.2%}, "
          f"DigitLab {ours_acc:.2%} (difference {100 * (ours_acc - plain_acc):+.2f} pt)")


def levers(rounds):
    """Each lever alone on the reference CNN (batch 32): the second of two epochs, median over rounds."""
    import tensorflow as tf  # noqa: PLC0415

    data = load_mnist()
    config = preset("reference", model="cnn", num_epochs=2, early_stopping=None)
    x_fit, y_fit, x_val, y_val = split_data(config, data)
    n = len(x_fit)

    def uint8_dataset():
        images, labels = tf.constant(data.x_train[:n]), tf.constant(data.y_train[:n])
        return (tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(n, seed=0).batch(32)
                .map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, tf.one_hot(y, 10)),
                     num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))

    variants = {
        "plain fit, float32": dict(),
        "steps_per_execution=16": dict(steps_per_execution=16),
        "mixed bfloat16": dict(precision="bfloat16"),
        "bfloat16 + steps_per_execution=16 (DigitLab)": dict(precision="bfloat16", steps_per_execution=16),
        "… + tf.data from uint8 (scale on the fly, prefetch)": dict(precision="bfloat16", steps_per_execution=16,
                                                                    dataset=True),
    }
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, options in variants.items():
            keras.utils.set_random_seed(0)
            model = build_model(config, precision=options.get("precision", "float32"))
            compile_model(model, config, steps=1, steps_per_execution=options.get("steps_per_execution", 1))
            timer = _EpochTimer()
            if options.get("dataset"):
                model.fit(uint8_dataset(), epochs=2, callbacks=[timer], verbose=0)
            else:
                model.fit(x_fit, y_fit, epochs=2, batch_size=32, shuffle=True, callbacks=[timer], verbose=0)
            times[name].append(timer.seconds[-1])
            print(f"{name}: {timer.seconds[-1]:.2f} s", flush=True)
    base = statistics.median(times["plain fit, float32"])
    print("\n| lever (reference CNN, batch 32, 54k images) | s/epoch (median) | speed-up |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.2f} | {base / statistics.median(values):.2f}× |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--levers", action="store_true", help="time each lever alone instead")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    levers(args.rounds) if args.levers else compare(args.seeds, args.epochs)
