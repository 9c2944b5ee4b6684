"""Training speed: DigitLab's `train` against plain Keras `model.fit`, same network, data, epochs, batch and seed.

    python -m benchmarks.training_speed --seeds 0              # the reference CNN: 10 epochs, batch 32, one run
    python -m benchmarks.training_speed --levers               # each lever alone: 6 epochs of 17,920 images

Every side trains in its own process (TensorFlow's thread and oneDNN settings are per process) and the processes
take turns, one epoch each, in alternating order, so load on a shared machine hits every side alike.
"Plain" is what a Keras tutorial does in a fresh Python with TensorFlow's own defaults for this CPU:
`model.fit(x, y, batch_size=32, validation_data=...)` on float32 numpy, early stopping as the config says.
"DigitLab" is `digitlab.training.train`, as the CLI and the dashboard run it.
Reported: each side's median epoch time without epoch 1 (it traces the graph), the median of the per-round
ratios, test accuracy per side, /proc/loadavg, and per epoch the CPU seconds the hypervisor stole. Some epochs
stall (3-6x longer, nothing stolen, load falling; benchmarks/RESULTS.md): run 5 or more epochs and read the epoch lines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

LEVERS = {  # name → (environment of the training process, options of the plain fit)
    "plain fit, TensorFlow's defaults": ({}, {}),
    "steps_per_execution=16": ({}, dict(steps_per_execution=16)),
    "uint8 input, scaled in the graph": ({}, dict(uint8=True)),
    "tf.data from uint8 (scaled on the fly, prefetch)": ({}, dict(dataset=True)),
    "TensorFlow threads: intra-op 2, inter-op 1": ({}, dict(threads=(2, 1))),
    "TensorFlow threads: intra-op 1, inter-op 1": ({}, dict(threads=(1, 1))),
    "oneDNN on (TF_ENABLE_ONEDNN_OPTS=1)": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, {}),
    "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {}),
    "XLA (jit_compile=True)": ({}, dict(jit_compile=True)),
    "mixed bfloat16": ({}, dict(precision="bfloat16")),
    "DigitLab's train (everything kept)": ({}, dict(digitlab=True)),
    # Bisecting DigitLab's `train` against the oneDNN-on plain fit it should beat:
    "oneDNN on + steps_per_execution=16": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, dict(steps_per_execution=16)),
    "oneDNN on + DigitLab's progress callback": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, dict(reporter=True)),
    "DigitLab's train, steps_per_execution=1": ({}, dict(digitlab=True, steps_per_execution=1)),
    "DigitLab's train, threads: intra-op 1, inter-op 1": ({}, dict(digitlab=True, threads=(1, 1))),
    "DigitLab's train, threads: intra-op 2, inter-op 1": ({}, dict(digitlab=True, threads=(2, 1))),
    "DigitLab's train, threads: intra-op 1, inter-op 2": ({}, dict(digitlab=True, threads=(1, 2))),
}
DEFAULT_LEVERS = [name for name in LEVERS if name not in ("XLA (jit_compile=True)", "mixed bfloat16")]


# ---------------------------------------------------------------------------------------------------------------
# One side: a training process that runs one epoch each time the parent writes "go"
# ---------------------------------------------------------------------------------------------------------------

def side(spec: dict) -> None:
    """Train as `spec` says, pacing epochs by stdin; print one JSON line per epoch, then a final one."""
    import tensorflow as tf  # noqa: PLC0415 - before digitlab, so TensorFlow keeps its own defaults

    if spec.get("threads"):
        tf.config.threading.set_intra_op_parallelism_threads(spec["threads"][0])
        tf.config.threading.set_inter_op_parallelism_threads(spec["threads"][1])
    import keras  # noqa: PLC0415
    from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415

    from digitlab.config import RunConfig  # noqa: PLC0415
    from digitlab.data import load_mnist  # noqa: PLC0415
    from digitlab.evaluation import evaluate_model  # noqa: PLC0415
    from digitlab.models import build_model  # noqa: PLC0415
    from digitlab.preprocessing import scale_images  # noqa: PLC0415
    from digitlab.training import compile_model, split_data, train  # noqa: PLC0415

    def report(**values):
        print(json.dumps(values), flush=True)

    def wait():
        if sys.stdin.readline().strip() != "go":
            sys.exit(0)

    config = RunConfig.from_params(spec["config"])
    data = load_mnist()
    started = {}

    class Paced(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started["t"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            report(epoch=epoch + 1, seconds=time.perf_counter() - started["t"])
            wait()

    wait()
    if spec["digitlab"]:
        def on_progress(progress):
            if progress.epoch_end:
                report(epoch=progress.epoch, seconds=progress.history["seconds"][-1])
                wait()

        result = train(config, data, on_progress=on_progress, should_stop=lambda: None,
                       steps_per_execution=spec.get("steps_per_execution", 16))
        model, precision = result.model, result.precision
    else:
        keras.utils.set_random_seed(config.seed)
        x_fit, y_fit, x_val, y_val = split_data(config, data)
        precision = spec.get("precision", "float32")
        model = build_model(config, precision=precision)
        compile_model(model, config, steps=1, steps_per_execution=spec.get("steps_per_execution", 1))
        if spec.get("jit_compile"):
            model.jit_compile = True
        callbacks = [Paced()]
        if spec.get("reporter"):  # what `train` adds: per-execution progress and a stop poll
            from digitlab.training import _Reporter  # noqa: PLC0415

            callbacks.append(_Reporter(config, 1, lambda progress: None, lambda: None, 0.25))
        if config.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.early_stopping,
                                                           restore_best_weights=True))
        fit = dict(epochs=config.num_epochs, callbacks=callbacks, verbose=0)
        validation = (x_val, y_val) if len(x_val) else None
        if spec.get("uint8") or spec.get("dataset"):  # no float32 copy of the images: the graph scales them
            n = len(x_fit)
            x_fit = data.x_train[:n]
            validation = (data.x_train[n:n + len(x_val)], y_val) if validation else None
        if spec.get("dataset"):
            import tensorflow as tf  # noqa: PLC0415

            def batches(x, y, *, shuffle):
                ds = tf.data.Dataset.from_tensor_slices((x, y))
                ds = ds.shuffle(len(x), seed=config.seed) if shuffle else ds
                return (ds.batch(config.batch_size).map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b),
                                                        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))

            model.fit(batches(x_fit, y_fit, shuffle=True),
                      validation_data=batches(*validation, shuffle=False) if validation else None, **fit)
        elif spec.get("uint8"):
            inner = model
            model = keras.Sequential([keras.Input((28, 28), dtype="uint8"), keras.layers.Rescaling(1 / 255), inner])
            model.compile(optimizer=inner.optimizer, loss=inner.loss, metrics=["accuracy"],
                          steps_per_execution=spec.get("steps_per_execution", 1))
            model.fit(x_fit, y_fit, validation_data=validation, batch_size=config.batch_size, shuffle=True, **fit)
            model = inner
        else:
            model.fit(x_fit, y_fit, validation_data=validation, batch_size=config.batch_size, shuffle=True, **fit)
    accuracy = evaluate_model(model, scale_images(data.x_test), data.y_test).accuracy
    report(done=True, test_accuracy=accuracy, precision=precision, onednn=bool(_pywrap_util_port.IsMklEnabled()))


# ---------------------------------------------------------------------------------------------------------------
# The parent: start the sides, hand out epochs in turn, summarise
# ---------------------------------------------------------------------------------------------------------------

def tensorflow_default_onednn() -> str:
    """"1" or "0": whether TensorFlow turns oneDNN on by itself on this CPU (asked in a clean process)."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    out = subprocess.run([sys.executable, "-c", "import tensorflow\nfrom tensorflow.python.util import "
                          "_pywrap_util_port as p\nprint(int(p.IsMklEnabled()))"],
                         env=environment, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def race(sides: dict[str, dict]) -> dict[str, dict]:
    """Run every side in its own process, one epoch at a time in turn; returns per side its epoch times etc."""
    plain_onednn = tensorflow_default_onednn()
    processes, results = {}, {}
    for name, spec in sides.items():
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        if not spec["digitlab"]:  # a tutorial's Python: TensorFlow's own oneDNN choice unless the lever says
            environment["TF_ENABLE_ONEDNN_OPTS"] = plain_onednn
        environment.update(spec.get("environment", {}))
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.training_speed", "--side", json.dumps(spec)], env=environment,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
        results[name] = {"seconds": [], "loads": []}
    active, round_number = list(sides), 0
    while active:
        order = active if round_number % 2 == 0 else active[::-1]
        for name in list(order):
            process = processes[name]
            stolen = _steal()
            process.stdin.write("go\n")
            process.stdin.flush()
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"{name}: the training process ended without a result")
            values = json.loads(line)
            if values.get("done"):
                results[name].update(values)
                active.remove(name)
                process.wait()
            else:
                results[name]["seconds"].append(values["seconds"])
                results[name]["loads"].append(_load())
                stolen = _steal() - stolen
                print(f"{name}: epoch {values['epoch']} {values['seconds']:.2f} s (load {_load()}, "
                      f"stolen {stolen:.1f} s)", flush=True)
        round_number += 1
    return results


def paired_speedup(base: list[float], other: list[float]) -> float:
    """Median over rounds (epoch 1 left out) of base epoch time / other epoch time."""
    pairs = list(zip(base[1:], other[1:])) or list(zip(base, other))
    return statistics.median(b / o for b, o in pairs)


def compare(seeds, num_epochs):
    from digitlab.config import preset  # noqa: PLC0415

    print(f"CPU: {_cpu()}; load at start {_load()}")
    rows = []
    for seed in seeds:
        config = preset("reference", model="cnn", seed=seed, num_epochs=num_epochs)
        spec = {"config": config.to_params()}
        result = race({"plain": {**spec, "digitlab": False}, "digitlab": {**spec, "digitlab": True}})
        rows.append((seed, result))
    print("\n| seed | plain: s/epoch (epochs run) | DigitLab: s/epoch (epochs run) | speed-up (median of paired "
          "epochs) | plain test acc | DigitLab test acc | load (1 min) |\n|---|---|---|---|---|---|---|")
    for seed, r in rows:
        p, d = r["plain"], r["digitlab"]
        loads = [float(x.split()[0]) for x in p["loads"] + d["loads"]]
        print(f"| {seed} | {statistics.median(p['seconds'][1:]):.2f} ({len(p['seconds'])}) | "
              f"{statistics.median(d['seconds'][1:]):.2f} ({len(d['seconds'])}) | "
              f"**{paired_speedup(p['seconds'], d['seconds']):.2f}×** | {p['test_accuracy']:.2%} | "
              f"{d['test_accuracy']:.2%} ({d['precision']}) | {min(loads):.1f}–{max(loads):.1f} |")
    print(f"\nCPU: {_cpu()}; load at end {_load()}")


def levers(names, *, images, epochs):
    """Each lever alone on the reference CNN (batch 32, no validation), every one in its own process, in turn."""
    from digitlab.config import preset  # noqa: PLC0415

    config = preset("reference", model="cnn", num_epochs=epochs, train_limit=images).replace(
        early_stopping=None, validation_split=0.0)
    sides = {}
    for name in names:
        environment, options = LEVERS[name]
        sides[name] = {"config": config.to_params(), "digitlab": bool(options.get("digitlab")),
                       "environment": environment, **options}
    print(f"CPU: {_cpu()}; load at start {_load()}")
    result = race(sides)
    base = result[names[0]]["seconds"]
    print(f"\n| lever (reference CNN, batch 32, {images:,} images per epoch) | s per 54k images (median of epochs "
          f"2–{epochs}) | speed-up (paired) | test accuracy |\n|---|---|---|---|")
    for name in names:
        seconds = result[name]["seconds"]
        print(f"| {name} | {statistics.median(seconds[1:]) / images * 54_000:.2f} | "
              f"{paired_speedup(base, seconds):.2f}× | {result[name]['test_accuracy']:.2%} |")
    print(f"\nCPU: {_cpu()}; load at end {_load()}")


def _load():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _steal() -> float:
    """CPU seconds the hypervisor has taken from this VM since boot (all cores)."""
    return int(Path("/proc/stat").read_text().split()[8]) / os.sysconf("SC_CLK_TCK")


def _cpu():
    from digitlab.export import machine_description  # noqa: PLC0415 - the parent imports TensorFlow, never trains

    m = machine_description()
    return f"{m['cpu']}, {m['cores']} cores, native bfloat16: {m['native_bfloat16']}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--levers", nargs="*", metavar="NAME", help="time these levers (default: all but XLA "
                        "and bfloat16) instead; names as in LEVERS")
    parser.add_argument("--images", type=int, default=17_920, help="with --levers: training images per epoch")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(json.loads(args.side))
    elif args.levers is not None:
        levers(args.levers or DEFAULT_LEVERS, images=args.images, epochs=args.epochs if args.epochs != 10 else 6)
    else:
        compare(args.seeds, args.epochs)
