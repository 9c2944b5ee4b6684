"""Shared fixtures: real MNIST (loaded once per session) and a fresh MLflow store per test that needs one."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def mnist():
    from digitlab.data import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def small(mnist):
    """The first 2,000 training and 1,000 test images, scaled to [0, 1]."""
    from digitlab.preprocessing import scale_images

    return (scale_images(mnist.x_train[:2000]), mnist.y_train[:2000],
            scale_images(mnist.x_test[:1000]), mnist.y_test[:1000])


def seed_home(path, mnist):
    """Put the MNIST cache into a fresh DigitLab home, so nothing there reloads the wheel."""
    np.savez(path / "mnist.npz", x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test,
             y_test=mnist.y_test)
    return path


@pytest.fixture
def home(tmp_path, monkeypatch, mnist):
    """A private DigitLab home (jobs, run store) for this test, with the MNIST cache already in it. Jobs the test
    left queued or running are stopped afterwards, so no worker outlives it."""
    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield seed_home(tmp_path, mnist)
    stop_jobs(tmp_path)


def stop_jobs(home) -> None:
    """Cancel every queued or running job of a DigitLab home (its runner then leaves by itself)."""
    from digitlab import jobs

    saved = os.environ.get("DIGITLAB_HOME")
    os.environ["DIGITLAB_HOME"] = str(home)
    try:
        if (jobs.jobs_dir() / "jobs.db").exists():
            for job in jobs.list_jobs(active=True):
                jobs.cancel_job(job.job_id)
    finally:
        if saved is None:
            os.environ.pop("DIGITLAB_HOME")
        else:
            os.environ["DIGITLAB_HOME"] = saved


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A throw-away SQLite run store; the environment points DigitLab (and subprocesses) at it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def tiny_outcome(mnist, tmp_path_factory):
    """One tracked 1-epoch CNN run on 2,000 images, shared by the tracking and evaluation tests."""
    from digitlab.config import RunConfig
    from digitlab.pipeline import run_training
    from digitlab.runs import RunStore

    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    store = RunStore(uri)
    config = RunConfig(model="cnn", filters=(8, 16), hidden_units=32, num_epochs=1, batch_size=32, learning_rate=3e-3,
                       train_limit=2000, seed=1)
    outcome = run_training(config, preset="test", data=mnist, store=store)
    return store, outcome


def digit_images(mnist, n=10):
    """The first test image of each digit 0..n-1, uint8 (n, 28, 28), with labels."""
    idx = [int(np.flatnonzero(mnist.y_test == d)[0]) for d in range(n)]
    return mnist.x_test[idx], mnist.y_test[idx]
