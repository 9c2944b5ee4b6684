"""The models a user can pick: the shipped ones (cards in models/) and the finished runs, and what they measured.

Nothing here imports TensorFlow: the dashboard builds its model lists, tables and reports from cards, MLflow metrics
and the test-set probabilities saved with each model.
"""

from __future__ import annotations

import json

import numpy as np

from .config import RunConfig
from .data import PROJECT_DIR
from .modelfiles import SHIPPED, SHIPPED_DIR, ModelLoadError
from .evaluation import EvaluationReport, load_report as read_report
from .runs import PROBABILITIES_ARTIFACT, REPORT_ARTIFACT, RunStore


def load_card(model_id: str) -> dict:
    """The card of a shipped model (models/<id>.json)."""
    if model_id not in SHIPPED:
        raise ModelLoadError(f"shipped models are {', '.join(SHIPPED)}, got {model_id!r}")
    return json.loads((SHIPPED_DIR / f"{model_id}.json").read_text())


def load_preset_result(name: str, model: str) -> dict | None:
    """What preset `name` measured for `model` here: {"test_accuracy", "train_seconds", "source"}, or None.

    `best` is what the shipped model (trained with it) measured; the others come from benchmarks/presets.json,
    written by `python -m benchmarks.presets`.
    """
    if name == "best" and model in SHIPPED:
        card = load_card(model)
        if card.get("preset") == "best":
            return {"test_accuracy": card["test_accuracy"], "train_seconds": card["train_seconds"],
                    "source": f"the shipped {model.upper()} (models/{model}.json)"}
    path = PROJECT_DIR / "benchmarks" / "presets.json"
    try:
        result = json.loads(path.read_text())[f"{name}/{model}"]
    except (OSError, ValueError, KeyError):
        return None
    return {"test_accuracy": result["test_accuracy"], "train_seconds": result["train_seconds"],
            "source": f"median of {len(result['runs'])} seeds, benchmarks/presets.json"}


def load_report(model_id: str, *, store: RunStore | None = None, y_test: np.ndarray | None = None
                ) -> EvaluationReport:
    """The model's evaluation on the MNIST test images, saved when it was made (no scoring, no scikit-learn).

    A run made before reports were saved whole is scored from its saved probabilities (y_test: the test labels).
    """
    if model_id in SHIPPED:
        return read_report(SHIPPED_DIR / f"{model_id}.report.npz")
    store = store or RunStore()
    try:
        return read_report(store.artifact_path(model_id, REPORT_ARTIFACT))
    except ModelLoadError:
        from .evaluation import evaluate_probabilities  # noqa: PLC0415

        if y_test is None:
            raise
        return evaluate_probabilities(y_test, np.load(store.artifact_path(model_id, PROBABILITIES_ARTIFACT)))


def kind_comparison(entries: list[dict]) -> list[dict]:
    """The product brief's ANN-vs-CNN table, filled with measured numbers.

    entries : dicts with model ("ann"/"cnn"), name, test_accuracy, train_seconds, num_parameters, filters,
        hidden_units: shipped cards and finished runs. The most accurate entry of each kind is used.
    Returns one row per aspect: {"aspect", "ANN", "CNN"}.
    """
    best = {}
    for entry in entries:
        kind = entry["model"]
        if entry.get("test_accuracy") is not None and (
                kind not in best or entry["test_accuracy"] > best[kind]["test_accuracy"]):
            best[kind] = entry
    ann, cnn = best.get("ann"), best.get("cnn")

    def cell(entry, text):
        return text(entry) if entry else "no finished run yet"

    return [
        {"aspect": "measured on", "ANN": cell(ann, lambda e: e["name"]), "CNN": cell(cnn, lambda e: e["name"])},
        {"aspect": "input handling", "ANN": "28×28 flattened to a 784-vector: pixel neighbourhoods are lost",
         "CNN": "28×28×1 image: 2-D neighbourhoods kept"},
        {"aspect": "feature extraction",
         "ANN": cell(ann, lambda e: f"none: one dense layer of {e['hidden_units']} units on raw pixels"),
         "CNN": cell(cnn, lambda e: f"{len(e['filters'])} learned 3×3 conv + max-pool blocks "
                                    f"({', '.join(map(str, e['filters']))} filters)")},
        {"aspect": "test accuracy", "ANN": cell(ann, lambda e: f"{e['test_accuracy']:.2%}"),
         "CNN": cell(cnn, lambda e: f"{e['test_accuracy']:.2%}")},
        {"aspect": "training time", "ANN": cell(ann, lambda e: f"{e['train_seconds']:.0f} s"),
         "CNN": cell(cnn, lambda e: f"{e['train_seconds']:.0f} s")},
        {"aspect": "parameters", "ANN": cell(ann, lambda e: f"{int(e['num_parameters']):,}"),
         "CNN": cell(cnn, lambda e: f"{int(e['num_parameters']):,}")},
    ]


def model_entries(store: RunStore | None, *, owner: str | None = None) -> list[dict]:
    """Every model a user can pick: the shipped ones, then finished runs newest first (none when store is None;
    only `owner`'s runs when given).

    Each entry: id, label, model, name, test_accuracy, train_seconds, num_parameters, filters, hidden_units, source.
    """
    entries = []
    for model_id in SHIPPED:
        card = load_card(model_id)
        config = RunConfig.from_params(card["config"])
        entries.append({"id": model_id, "source": "shipped", "name": f"shipped {model_id.upper()}",
                        "model": model_id, "test_accuracy": card["test_accuracy"],
                        "train_seconds": card["train_seconds"], "num_parameters": card["num_parameters"],
                        "filters": config.filters, "hidden_units": config.hidden_units})
    for run in store.list_runs(owner=owner) if store else []:
        if run.status == "FINISHED" and run.config and "test_accuracy" in run.metrics:
            entries.append({"id": run.run_id, "source": "run", "name": run.name, "model": run.config.model,
                            "test_accuracy": run.metrics["test_accuracy"],
                            "train_seconds": run.metrics.get("train_seconds", 0),
                            "num_parameters": run.metrics.get("num_parameters", 0),
                            "filters": run.config.filters, "hidden_units": run.config.hidden_units})
    for entry in entries:
        entry["label"] = f"{entry['name']} · {entry['model'].upper()} · {entry['test_accuracy']:.2%}"
    return entries
