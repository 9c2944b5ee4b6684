"""Time to accuracy of the presets: training seconds and MNIST test accuracy, as the Train page shows them.

    python -m benchmarks.presets [--seeds 0 1 2] [--presets reference fast] [--models ann cnn] [--merge]
    python -m benchmarks.presets --select --presets fast --models cnn --set num_epochs=1 filters=24,48

Measuring: each preset × model trains on the full training set (DigitLab's `train`, as the dashboard runs it) once
per seed and is scored once on the 10k test images; mean ± std and the median training time go to
`benchmarks/presets.json` (with the CPU, whether it has native bfloat16, /proc/loadavg and the recipe measured), which
the Train page reads while the recipe is today's. `--merge` counts a recipe's recorded runs of other seeds too (the
`best` CNN's seed 0 is the shipped model's card).

Choosing (`--select`): the same training with `--set FIELD=VALUE` changes, scored on the validation split only
(the last 10% of the training images); the test images are not loaded. Presets are chosen this way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from digitlab.config import RunConfig, made_with, preset, recipe
from digitlab.data import load_mnist

OUT = Path(__file__).resolve().parent / "presets.json"


def measure(name: str, model: str, seeds: list[int], data, *, earlier: list[dict] = ()) -> dict:
    """Train preset `name` for `model` once per seed; test accuracy once per seed. `earlier` runs (other seeds,
    same recipe) are counted with the new ones."""
    from digitlab.evaluation import evaluate_model  # noqa: PLC0415
    from digitlab.export import machine_description  # noqa: PLC0415
    from digitlab.preprocessing import scale_images  # noqa: PLC0415
    from digitlab.training import train  # noqa: PLC0415

    rows = []
    for seed in seeds:
        result = train(preset(name, model=model, seed=seed), data)
        accuracy = evaluate_model(result.model, scale_images(data.x_test), data.y_test).accuracy
        rows.append({"seed": seed, "train_seconds": round(result.train_seconds, 2), "test_accuracy": accuracy,
                     "val_accuracy": result.history["val_accuracy"][-1], "epochs_run": result.epochs_run,
                     "precision": result.precision, "load": _load()})
        print(f"{name} {model} seed {seed}: test {accuracy:.2%} (validation {rows[-1]['val_accuracy']:.2%}) in "
              f"{result.train_seconds:.1f} s ({result.epochs_run} epochs, {result.precision}, load {_load()})",
              flush=True)
    rows = sorted([r for r in earlier if r["seed"] not in seeds] + rows, key=lambda r: r["seed"])
    accuracies = [r["test_accuracy"] for r in rows]
    return {
        "test_accuracy": float(np.mean(accuracies)), "test_accuracy_std": float(np.std(accuracies)),
        "min_test_accuracy": min(accuracies),
        "train_seconds": statistics.median(r["train_seconds"] for r in rows),
        "runs": rows, "date": time.strftime("%Y-%m-%d"), "machine": machine_description(),
        "config": recipe(name, model=model),
        "command": f"python -m benchmarks.presets --presets {name} --models {model} --seeds "
                   + " ".join(map(str, seeds)) + (" --merge" if len(rows) > len(seeds) else ""),
    }


def select(name: str, model: str, seeds: list[int], changes: dict[str, str], data) -> None:
    """Validation accuracy of preset `name` with `changes`, per seed and as a mean; never touches the test set."""
    from digitlab.training import train  # noqa: PLC0415

    scores = []
    for seed in seeds:
        config = RunConfig.from_params({**preset(name, model=model, seed=seed).to_params(), **changes})
        result = train(config, data)
        scores.append(result.history["val_accuracy"][-1])
        print(json.dumps({"preset": name, "model": model, "changes": changes, "seed": seed,
                          "val_accuracy": scores[-1], "train_seconds": round(result.train_seconds, 2),
                          "epoch_seconds": [round(s, 2) for s in result.history["seconds"]], "load": _load()}),
              flush=True)
    print(f"{name} {model} {changes}: validation accuracy {np.mean(scores):.3%} ± {np.std(scores):.3%} "
          f"(min {min(scores):.2%}) over seeds {seeds}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=["fast", "reference"])
    parser.add_argument("--models", nargs="+", default=["cnn", "ann"])
    parser.add_argument("--select", action="store_true", help="score on the validation split only; write nothing")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="with --select: changes")
    parser.add_argument("--merge", action="store_true", help="keep the recorded runs of seeds not given")
    args = parser.parse_args()
    data = load_mnist()
    if args.select:
        changes = dict(item.split("=", 1) for item in args.set)
        for name in args.presets:
            for model in args.models:
                select(name, model, args.seeds, changes, data)
        return
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    pairs = [(name, model) for name in args.presets for model in args.models]
    earlier = {pair: results.get("/".join(pair), {}) if args.merge else {} for pair in pairs}
    for (name, model), stored in earlier.items():  # before any training: refusing late would waste hours
        if "config" in stored and not made_with(stored["config"], name, model=model):
            raise SystemExit(f"--merge: the recorded {name}/{model} runs used another recipe; run every seed")
    for name, model in pairs:
        runs = earlier[name, model].get("runs", [])
        results[f"{name}/{model}"] = measure(name, model, args.seeds, data, earlier=runs)
        OUT.write_text(json.dumps(results, indent=1) + "\n")
    print("\n| preset | model | test accuracy, mean ± std (min) | training time, median | seeds | CPU |\n"
          "|---|---|---|---|---|---|")
    for key, r in results.items():
        name, model = key.split("/")
        machine = r.get("machine", {})
        print(f"| `{name}` | {model.upper()} | {r['test_accuracy']:.2%} ± {r.get('test_accuracy_std', 0):.2%} "
              f"({r['min_test_accuracy']:.2%}) | {r['train_seconds']:.1f} s | {len(r['runs'])} | "
              f"{machine.get('cpu', '?') if isinstance(machine, dict) else machine} |")


if __name__ == "__main__":
    main()
