"""The catalogue's figures say where they came from, and a model speaks for a preset only if it was made with it."""

import json

from digitlab import catalog
from digitlab.config import made_with, preset


def test_preset_figures_name_their_cpu_and_seeds():
    fast = catalog.load_preset_result("fast", "cnn")
    stored = json.loads((catalog.PROJECT_DIR / "benchmarks" / "presets.json").read_text())["fast/cnn"]
    assert fast["test_accuracy"] == stored["test_accuracy"] and "cores" in fast["machine"]
    assert fast["source"].startswith(f"mean of {len(stored['runs'])} seeds")


def test_a_shipped_model_speaks_for_the_preset_only_if_made_with_it(monkeypatch, tmp_path):
    monkeypatch.setattr(catalog, "PROJECT_DIR", tmp_path)  # no benchmarks/presets.json: the card speaks
    card = catalog.load_card("cnn")
    assert made_with(card["config"], "best", model="cnn")  # fields newer than the card count at their defaults
    measured = catalog.load_preset_result("best", "cnn")
    assert measured["test_accuracy"] == card["test_accuracy"] and "models/cnn.json" in measured["source"]
    other_recipe = {**card, "config": {**card["config"], "num_epochs": "35"}}  # e.g. the CNN shipped before
    monkeypatch.setattr(catalog, "load_card", lambda model: other_recipe)
    assert catalog.load_preset_result("best", "cnn") is None  # so the Train page shows no figure for it


def test_a_benchmark_figure_speaks_for_the_preset_only_if_made_with_its_recipe(monkeypatch, tmp_path):
    monkeypatch.setattr(catalog, "PROJECT_DIR", tmp_path)
    recipe = {k: v for k, v in preset("best", model="cnn").to_params().items() if k != "seed"}
    runs = [{"seed": seed, "test_accuracy": 0.995, "train_seconds": 1400.0} for seed in range(3)]
    entry = {"test_accuracy": 0.995, "train_seconds": 1400.0, "runs": runs, "machine": {"cpu": "AMD EPYC"}}
    (tmp_path / "benchmarks").mkdir()
    stored = tmp_path / "benchmarks" / "presets.json"
    stored.write_text(json.dumps({"best/cnn": {**entry, "config": recipe}}))
    assert catalog.load_preset_result("best", "cnn")["source"].startswith("mean of 3 seeds")
    stored.write_text(json.dumps({"best/cnn": {**entry, "config": {**recipe, "num_epochs": "35"}}}))
    assert "models/cnn.json" in catalog.load_preset_result("best", "cnn")["source"]  # the card's, not 35 epochs'
    stored.write_text(json.dumps({"best/cnn": entry}))  # a `best` figure must say which recipe it measured
    assert "models/cnn.json" in catalog.load_preset_result("best", "cnn")["source"]


def test_a_machine_without_a_cpu_model_says_so():
    assert catalog.describe_machine("x86_64, 2 cores") == "x86_64, 2 cores (CPU model not recorded)"
    described = catalog.describe_machine({"cpu": "AMD EPYC", "cores": 2, "native_bfloat16": False})
    assert described == "AMD EPYC, 2 cores, no native bfloat16"


def test_durations_read_as_people_say_them():
    assert [catalog.duration(v) for v in (None, 12.3, 75, 180, 1434)] == ["…", "12 s", "1 min 15 s", "3 min",
                                                                           "23 min 54 s"]
