"""The Train page's time estimate against measured training times, on this CPU, and the constants fitted to them.

    python -m benchmarks.time_estimate

Trains every preset (fewer epochs) and four variants with DigitLab's `train` on MNIST's 54,000 training images, one
after another in this process, and prints each run's training seconds beside `costs.training_seconds`. Then fits
the model used for CPUs with native bfloat16 to the runs trained in bfloat16 (least squares on relative error,
non-negative): per run + per epoch (batches × layers, training FLOPs, augmented images, augmented batches).
Machine-specific: say which CPU. About 5 minutes on the AMX Xeon.
"""

from __future__ import annotations

import numpy as np

from digitlab import costs, training
from digitlab.costs import bfloat16_time_terms
from digitlab.config import preset
from digitlab.data import load_mnist

RUNS = [  # (preset, model, overrides): every preset, fewer epochs, and variants the presets leave out
    ("fast", "cnn", {}),
    ("fast", "ann", {}),
    ("reference", "ann", {"num_epochs": 3}),
    ("reference", "cnn", {"num_epochs": 3}),
    ("best", "ann", {"num_epochs": 3}),
    ("best", "cnn", {"num_epochs": 2}),
    ("reference", "cnn", {"num_epochs": 3, "batch_size": 128}),
    ("best", "cnn", {"num_epochs": 2, "augment": False}),
    ("reference", "ann", {"num_epochs": 2, "hidden_units": 1024, "augment": True}),
    ("fast", "ann", {"num_epochs": 3, "batch_size": 512, "hidden_units": 4096}),
    ("reference", "cnn", {"num_epochs": 2, "precision": "float32"}),  # printed, not fitted: float32's factor
]


def main() -> None:
    from scipy.optimize import nnls  # noqa: PLC0415

    data, rows, measured = load_mnist(), [], []
    for name, model, overrides in RUNS:
        config = preset(name, model=model, **({"early_stopping": None} if name == "reference" else {}), **overrides)
        result = training.train(config, data)
        estimate = costs.training_seconds(config)
        print(f"{name:9s} {model} {overrides}: {result.train_seconds:7.2f} s measured ({result.precision}), "
              f"{estimate:7.2f} s estimated, ratio {estimate / result.train_seconds:.2f}", flush=True)
        if result.precision == "bfloat16":
            rows.append(bfloat16_time_terms(config))
            measured.append(result.train_seconds)
    if not rows:  # a CPU without native bfloat16 trains in float32: its constants are fitted elsewhere (RESULTS.md)
        print("no run trained in bfloat16 on this CPU: nothing to fit")
        return
    a, y = np.array(rows), np.array(measured)
    fitted, _ = nnls(a / y[:, None], np.ones_like(y))  # relative error: each row divided by its measurement
    print(f"fit: {fitted[0]:.1f} s per run + per epoch {fitted[1] * 1e3:.2f} ms per batch and layer + FLOPs at "
          f"{1 / fitted[2] / 1e9 if fitted[2] else float('inf'):.0f} GFLOP/s + {fitted[3] * 1e6:.1f} µs per augmented "
          f"image + {fitted[4] * 1e3:.1f} ms per augmented batch; ratios "
          + " ".join(f"{r:.2f}" for r in a @ fitted / y))


if __name__ == "__main__":
    main()
