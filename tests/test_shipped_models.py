"""The models in models/ reach the promised accuracy and match their cards."""

import json
from pathlib import Path

import pytest

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
    assert abs(report.accuracy - card["test_accuracy"]) <= 0.001
    assert card["model"] == name and card["command"].startswith("python -m digitlab train")
    assert {"tensorflow", "keras", "python"} <= set(card["versions"]) and card["train_seconds"] > 0


def test_shipped_models_load_by_id(tracking_uri):
    assert load_model("cnn").name == "cnn" and load_model("ann").name == "ann"
