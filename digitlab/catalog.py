"""The models a user can pick: the shipped ones (cards in models/) and the finished runs, and what they measured.

Nothing here imports TensorFlow: the dashboard builds its model lists, tables and reports from cards, MLflow metrics
and the test-set probabilities saved with each model.
"""

from __future__ import annotations

import json

import numpy as np

from .config import RunConfig, made_with
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
    """What preset `name` measured for `model`: {"test_accuracy", "train_seconds", "machine", "source"}, or None.

    From benchmarks/presets.json (written by `python -m benchmarks.presets`), else for `best` from the shipped
    model's card (trained with it). A figure speaks for the preset only if it was made with today's recipe (the
    recorded config; `best` entries must record one). "machine" says which CPU: figures differ 2× between CPUs.
    """
    try:
        result = json.loads((PROJECT_DIR / "benchmarks" / "presets.json").read_text())[f"{name}/{model}"]
    except (OSError, ValueError, KeyError):
        result = None
    if result and (made_with(result["config"], name, model=model) if "config" in result else name != "best"):
        seeds = len(result["runs"])
        return {"test_accuracy": result["test_accuracy"], "train_seconds": result["train_seconds"],
                "machine": describe_machine(result.get("machine")),
                "source": ("one seed" if seeds == 1 else f"mean of {seeds} seeds, median time")
                + ", benchmarks/presets.json"}
    if name == "best" and model in SHIPPED:
        card = load_card(model)
        if card.get("preset") == "best" and made_with(card.get("config", {}), name, model=model):
            return {"test_accuracy": card["test_accuracy"], "train_seconds": card["train_seconds"],
                    "machine": describe_machine(card.get("machine")),
                    "source": f"the shipped {model.upper()}, models/{model}.json"}
    return None


def describe_machine(machine) -> str:
    """A card's or benchmark's machine record in words: the CPU, and whether it has native bfloat16."""
    if isinstance(machine, dict):
        bf16 = "native bfloat16" if machine.get("native_bfloat16") else "no native bfloat16"
        return f"{machine.get('cpu') or 'an unnamed CPU'}, {machine.get('cores', '?')} cores, {bf16}"
    return f"{machine or 'an unrecorded machine'} (CPU model not recorded)"


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

    entries : dicts with model ("ann"/"cnn"), name, val_accuracy, test_accuracy, train_seconds, num_parameters,
        filters, hidden_units: shipped cards and finished runs. Each kind's entry is the best by validation
        accuracy (`best_by_validation`): the test set reports, it never chooses.
    Returns one row per aspect: {"aspect", "ANN", "CNN"}.
    """
    ann, cnn = (best_by_validation([e for e in entries if e["model"] == kind]) for kind in ("ann", "cnn"))

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
        {"aspect": "validation accuracy (chose it)", "ANN": cell(ann, lambda e: f"{e['val_accuracy']:.2%}"),
         "CNN": cell(cnn, lambda e: f"{e['val_accuracy']:.2%}")},
        {"aspect": "test accuracy", "ANN": cell(ann, lambda e: f"{e['test_accuracy']:.2%}"),
         "CNN": cell(cnn, lambda e: f"{e['test_accuracy']:.2%}")},
        {"aspect": "training time", "ANN": cell(ann, lambda e: duration(e["train_seconds"])),
         "CNN": cell(cnn, lambda e: duration(e["train_seconds"]))},
        {"aspect": "parameters", "ANN": cell(ann, lambda e: f"{int(e['num_parameters']):,}"),
         "CNN": cell(cnn, lambda e: f"{int(e['num_parameters']):,}")},
    ]


def duration(value: float | None) -> str:
    """Seconds as people say them: 12.3 → '12 s', 75 → '1 min 15 s', 180 → '3 min', None → '…'."""
    if value is None:
        return "…"
    value = int(round(value))
    return f"{value} s" if value < 60 else f"{value // 60} min" + (f" {value % 60:02d} s" if value % 60 else "")


def best_by_validation(entries: list[dict]) -> dict | None:
    """The entry with the highest validation accuracy (entries without one are never chosen), or None."""
    scored = [e for e in entries if e.get("val_accuracy") is not None]
    return max(scored, key=lambda e: e["val_accuracy"]) if scored else None


def model_entries(store: RunStore | None, *, owner: str | None = None) -> list[dict]:
    """Every model a user can pick: the shipped ones, then finished runs newest first (none when store is None;
    only `owner`'s runs when given).

    Each entry: id, label, model, name, val_accuracy (last epoch; None without a validation split), test_accuracy,
    train_seconds, num_parameters, filters, hidden_units, label_smoothing, source.
    """
    entries = []
    for model_id in SHIPPED:
        card = load_card(model_id)
        config = RunConfig.from_params(card["config"])
        entries.append({"id": model_id, "source": "shipped", "name": f"shipped {model_id.upper()}",
                        "model": model_id, "test_accuracy": card["test_accuracy"],
                        "val_accuracy": (card["history"].get("val_accuracy") or [None])[-1],
                        "train_seconds": card["train_seconds"], "num_parameters": card["num_parameters"],
                        "filters": config.filters, "hidden_units": config.hidden_units,
                        "label_smoothing": config.label_smoothing})
    for run in store.list_runs(owner=owner) if store else []:
        if run.status == "FINISHED" and run.config and "test_accuracy" in run.metrics:
            entries.append({"id": run.run_id, "source": "run", "name": run.name, "model": run.config.model,
                            "test_accuracy": run.metrics["test_accuracy"],
                            "val_accuracy": run.metrics.get("val_accuracy"),
                            "train_seconds": run.metrics.get("train_seconds", 0),
                            "num_parameters": run.metrics.get("num_parameters", 0),
                            "filters": run.config.filters, "hidden_units": run.config.hidden_units,
                            "label_smoothing": run.config.label_smoothing})
    for entry in entries:
        entry["label"] = f"{entry['name']} · {entry['model'].upper()} · {entry['test_accuracy']:.2%}"
    return entries
