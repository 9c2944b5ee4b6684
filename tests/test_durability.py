"""Nothing finished is lost: SIGKILL a training process, or the server, in the middle of a run, then start again."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitlab import jobs
from digitlab.config import RunConfig
from digitlab.catalog import model_entries
from digitlab.modelfiles import ModelLoadError, load_model, load_model_file
from digitlab.runs import RunStore
from tests.test_jobs import TINY, wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_sigkill_mid_training_leaves_a_consistent_store_and_the_run_interrupted(home, tmp_path):
    finished = jobs.submit_job(TINY, owner="alice")
    finished = wait_for(finished.job_id, lambda j: not j.active)
    cli = subprocess.Popen([sys.executable, "-m", "digitlab", "train", "--model", "cnn", "--epochs", "20",
                            "--batch-size", "16", "--train-limit", "20000"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = RunStore()
    deadline = time.time() + 120
    while not [r for r in store.list_runs() if r.status == "RUNNING" and store.history(r.run_id).get("loss")]:
        assert time.time() < deadline and cli.poll() is None, cli.stderr.read()[-2000:]
        time.sleep(0.5)  # until the first epoch is on record
    cli.send_signal(signal.SIGKILL)
    cli.wait()

    store = RunStore()  # "restart": a new process opens the store
    [killed] = [r for r in store.list_runs() if r.run_id != finished.run_id]
    assert killed.status == "RUNNING"
    assert store.recover() == [killed.run_id]
    assert (store.get_run(killed.run_id).status, store.get_run(killed.run_id).stopped) == ("FAILED", "interrupted")
    with pytest.raises(ModelLoadError, match="did not finish"):
        load_model(killed.run_id, store=store)
    assert store.get_run(finished.run_id).status == "FINISHED"  # the finished run is intact and usable
    assert load_model(finished.run_id, store=store).count_params() > 0
    assert [e["id"] for e in model_entries(store)] == ["cnn", "ann", finished.run_id]


def test_sigkill_during_export_leaves_no_half_written_file(home, tmp_path):
    """Killed while the model's files are being written (their temporary folder exists): every file that exists
    under its final name is whole, and nothing half-written is ever loaded."""
    export = tmp_path / "out" / "model.keras"
    cli = subprocess.Popen([sys.executable, "-m", "digitlab", "train", "--model", "ann", "--hidden-units", "32",
                            "--epochs", "1", "--train-limit", "2000", "--no-track", "--export", str(export)],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not [p for p in export.parent.glob("tmp*") if p.is_dir()] if export.parent.exists() else True:
        assert time.time() < deadline and cli.poll() is None, cli.stderr.read()[-2000:]
        time.sleep(0.02)  # until the export has begun writing
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    finals = {p.name for p in export.parent.iterdir() if not p.name.startswith(("tmp", "."))}
    assert finals <= {"model.keras", "model.onnx", "model.report.npz", "model.json"}
    if "model.keras" in finals:  # renamed into place whole, or not at all
        assert load_model_file(export).count_params() > 0
    assert "model.json" not in finals or finals == {"model.keras", "model.onnx", "model.report.npz", "model.json"}


def test_sigkill_of_the_server_does_not_lose_its_training(home):
    """The worker runs in its own session: a killed server neither kills it nor loses its run."""
    script = ("from digitlab import jobs, config; import sys, time; "
              "job = jobs.submit_job(config.RunConfig(model='ann', hidden_units=32, num_epochs=3, "
              "train_limit=5000)); print(job.job_id, flush=True); time.sleep(600)")
    server = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "DIGITLAB_HOME": str(home)})
    job_id = server.stdout.readline().strip()
    wait_for(job_id, lambda j: j.status == "running")
    server.send_signal(signal.SIGKILL)
    server.wait()
    done = wait_for(job_id, lambda j: not j.active)
    assert done.status == "finished" and RunStore().get_run(done.run_id).status == "FINISHED"
    assert RunStore().recover() == []  # nothing left dangling
    assert RunConfig.from_params(RunStore().get_run(done.run_id).config.to_params()).num_epochs == 3
