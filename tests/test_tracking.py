import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from digitlab.config import RunConfig
from digitlab.tracking import ModelLoadError, RunStore, load_model_file


def test_tracked_run_is_listed_with_params_metrics_and_history(tiny_outcome):
    store, outcome = tiny_outcome
    runs = store.list_runs()
    assert [r.run_id for r in runs] == [outcome.run_id]
    run = runs[0]
    assert run.status == "FINISHED" and run.config == outcome.result.config and run.preset == "test"
    assert run.test_accuracy == pytest.approx(outcome.report.accuracy)
    assert run.metrics["train_seconds"] == pytest.approx(outcome.result.train_seconds)
    history = store.history(outcome.run_id)
    assert history["val_accuracy"] == pytest.approx(outcome.result.history["val_accuracy"])


def test_reloaded_model_gives_identical_predictions(tiny_outcome, small):
    store, outcome = tiny_outcome
    x = small[2][:200]
    reloaded = store.load_model(outcome.run_id)
    np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(outcome.result.model(x)), atol=1e-6)
    saved = np.load(store.artifact_path(outcome.run_id, "evaluation/test_probabilities.npy"))
    assert saved.shape == (10_000, 10)


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "0" * 31, "A" * 32, "cnn/../../x", "", "models/cnn.keras"])
def test_ids_are_validated(tiny_outcome, bad_id):
    store, _ = tiny_outcome
    with pytest.raises(ModelLoadError, match="run id must be 32 lowercase hex digits"):
        store.load_model(bad_id)


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


def test_dead_running_run_is_marked_interrupted(tracking_uri):
    store = RunStore()
    run_id = store.start_run(RunConfig(), preset="x")
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.client.set_tag(run_id, "digitlab.pid", child.stdout.strip())  # a process that no longer exists
    alive = store.start_run(RunConfig(), preset="y")  # this process: still alive
    assert store.recover() == [run_id]
    run = store.get_run(run_id)
    assert (run.status, run.stopped) == ("FAILED", "interrupted")
    assert store.get_run(alive).status == "RUNNING"
    with pytest.raises(ModelLoadError, match="did not finish"):
        store.load_model(run_id)


def test_default_store_lives_in_digitlab_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path / "home"))
    store = RunStore()
    assert store.uri == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert (tmp_path / "home" / "mlflow.db").exists()
    assert sorted(os.listdir(tmp_path / "home")) == ["mlflow.db", "mlflow.db.lock"]
