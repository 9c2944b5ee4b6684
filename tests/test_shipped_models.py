"""The models in models/ reach the promised accuracy and match their cards."""

import json
from pathlib import Path

import pytest

from digitlab.config import made_with
from digitlab.evaluation import evaluate_model
from digitlab.preprocessing import scale_images
from digitlab.modelfiles import load_model, load_model_file

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.mark.parametrize("name, floor", [("cnn", 0.995), ("ann", 0.978)])
def test_shipped_model_accuracy_matches_its_card(name, floor, mnist):
    card = json.loads((MODELS / f"{name}.json").read_text())
    model = load_model_file(MODELS / f"{name}.keras")
    report = evaluate_model(model, scale_images(mnist.x_test), mnist.y_test)
    assert report.accuracy >= floor
    # Evaluation is deterministic: the same digits right as when the card was written, not "about the same".
    assert round(report.accuracy * len(mnist.y_test)) == round(card["test_accuracy"] * len(mnist.y_test))
    assert card["model"] == name and card["command"].startswith("python -m digitlab train --preset best")
    assert {"tensorflow", "keras", "python"} <= set(card["versions"]) and card["train_seconds"] > 0


@pytest.mark.parametrize("name", ["cnn", "ann"])
def test_shipped_model_card_says_how_it_was_made(name):
    card = json.loads((MODELS / f"{name}.json").read_text())
    # the preset, exactly (fields added since the card was written count at their defaults, which it trained with)
    assert made_with(card["config"], "best", model=name) and card["config"]["seed"] == str(card["seed"])
    assert card["selected_on"] == "validation" and card["precision"] in ("float32", "bfloat16")
    assert card["machine"]["cpu"] and isinstance(card["machine"]["native_bfloat16"], bool)


def test_shipped_models_load_by_id(tracking_uri):
    assert load_model("cnn").name == "cnn" and load_model("ann").name == "ann"
