"""Model files: a run's .keras reloads exactly; bad ids, .h5 files, broken archives and code-carrying models are
refused before Keras parses anything."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from digitlab.evaluation import load_report
from digitlab.modelfiles import ModelLoadError, load_model, load_model_file


def test_reloaded_model_gives_identical_predictions(tiny_outcome, small):
    store, outcome = tiny_outcome
    x = small[2][:200]
    reloaded = load_model(outcome.run_id, store=store)
    np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(outcome.result.model(x)), atol=1e-6)
    saved = load_report(store.artifact_path(outcome.run_id, "evaluation/report.npz"))
    assert saved.probabilities.shape == (10_000, 10) and saved.accuracy == outcome.report.accuracy
    np.testing.assert_array_equal(saved.confusion, outcome.report.confusion)


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "0" * 31, "A" * 32, "cnn/../../x", "", "models/cnn.keras"])
def test_ids_are_validated(tiny_outcome, bad_id):
    store, _ = tiny_outcome
    with pytest.raises(ModelLoadError, match="run id must be 32 lowercase hex digits"):
        load_model(bad_id, store=store)


def test_h5_and_missing_files_are_refused(tmp_path):
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "m.h5")
    with pytest.raises(ModelLoadError, match="only .keras model files are loaded"):
        load_model_file(tmp_path / "m.h5")
    with pytest.raises(ModelLoadError, match="no such model file"):
        load_model_file(tmp_path / "missing.keras")
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelLoadError, match="not a valid .keras archive"):
        load_model_file(tmp_path / "broken.keras")


@pytest.mark.parametrize("function", ["side_effect", "lambda x: side_effect(x)"])
def test_lambda_model_is_refused_and_its_code_never_runs(tmp_path, function):
    marker = tmp_path / "ran"
    script = f"""
import keras, pathlib
def side_effect(x):
    pathlib.Path({str(marker)!r}).write_text("ran")
    return x
model = keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda({function})])
model.save({str(tmp_path / 'evil.keras')!r})
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    marker.unlink()  # building the model ran it once; loading must not
    with pytest.raises(ModelLoadError, match="carries code"):
        load_model_file(tmp_path / "evil.keras")
    assert not marker.exists()
