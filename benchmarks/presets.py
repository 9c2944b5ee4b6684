"""Time to accuracy of the presets: training seconds and MNIST test accuracy, as the Train page shows them.

    python -m benchmarks.presets [--seeds 0 1 2] [--presets reference fast] [--models ann cnn]

Each preset × model trains on the full training set (DigitLab's `train`, as the dashboard runs it) once per seed,
is scored on the 10k test images, and the medians are written to `benchmarks/presets.json`, which the Train page
reads to show each preset's measured accuracy and time. The `best` preset's numbers come from the shipped models'
cards (`models/*.json`), which were trained with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from digitlab.config import preset
from digitlab.data import load_mnist
from digitlab.evaluation import evaluate_model
from digitlab.preprocessing import scale_images
from digitlab.training import train

OUT = Path(__file__).resolve().parent / "presets.json"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=["fast", "reference"])
    parser.add_argument("--models", nargs="+", default=["cnn", "ann"])
    args = parser.parse_args()
    data = load_mnist()
    x_test = scale_images(data.x_test)
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in args.presets:
        for model in args.models:
            rows = []
            for seed in args.seeds:
                result = train(preset(name, model=model, seed=seed), data)
                accuracy = evaluate_model(result.model, x_test, data.y_test).accuracy
                rows.append({"seed": seed, "train_seconds": round(result.train_seconds, 2),
                             "test_accuracy": accuracy, "epochs_run": result.epochs_run,
                             "precision": result.precision})
                print(f"{name} {model} seed {seed}: {accuracy:.2%} in {result.train_seconds:.1f} s "
                      f"({result.epochs_run} epochs, {result.precision})", flush=True)
            results[f"{name}/{model}"] = {
                "test_accuracy": statistics.median(r["test_accuracy"] for r in rows),
                "train_seconds": statistics.median(r["train_seconds"] for r in rows),
                "min_test_accuracy": min(r["test_accuracy"] for r in rows),
                "runs": rows, "date": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "command": f"python -m benchmarks.presets --presets {name} --models {model} --seeds "
                           + " ".join(map(str, args.seeds)),
            }
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print("\n| preset | model | test accuracy (median, min) | training time (median) | seeds |\n|---|---|---|---|---|")
    for key, r in results.items():
        name, model = key.split("/")
        print(f"| `{name}` | {model.upper()} | {r['test_accuracy']:.2%} ({r['min_test_accuracy']:.2%}) | "
              f"{r['train_seconds']:.1f} s | {len(r['runs'])} |")


if __name__ == "__main__":
    main()
