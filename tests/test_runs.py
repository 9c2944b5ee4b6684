"""MLflow runs: listed with params, metrics and history; dead runs recovered; the store lives in DigitLab's home."""

import os
import subprocess
import sys

import pytest

from digitlab.config import RunConfig
from digitlab.modelfiles import ModelLoadError, load_model
from digitlab.runs import RunStore


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
        load_model(run_id, store=store)


def test_default_store_lives_in_digitlab_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path / "home"))
    store = RunStore()
    assert store.uri == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert (tmp_path / "home" / "mlflow.db").exists()
    assert sorted(os.listdir(tmp_path / "home")) == ["mlflow.db", "mlflow.db.lock"]
