"""Every kind of bad input gets a message saying what was wrong and how to fix it, never a traceback.

The table lists them; each row runs the real code path (config, URL parsing, canvas preparation, model loading,
MNIST cache, run store, disk). The dashboard shows these same messages (see also test_app.py and test_limits.py).
"""

import time

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from digitlab.config import RunConfig
from digitlab.data import load_mnist
from digitlab.preprocessing import BlankImageError, prepare_image
from digitlab.modelfiles import ModelLoadError, load_model, load_model_file
from tests.test_app import APP


def corrupt(path, content=b"PK\x03\x04 cut short"):
    path.write_bytes(content)
    return path


BAD_INPUT = [
    # what the visitor sent, how it is used, the message (a regular expression)
    ("epochs out of range", lambda tmp: RunConfig(num_epochs=0), r"num_epochs must be an integer from 1 to 200, got 0"),
    ("batch size of the wrong type", lambda tmp: RunConfig(batch_size=32.5),
     r"batch_size must be an integer from 1 to 4096, got 32.5"),
    ("learning rate out of range", lambda tmp: RunConfig(learning_rate=0), r"learning_rate must be a number above 0, at most 1"),
    ("dropout out of range", lambda tmp: RunConfig(dropout_rate=0.95), r"dropout_rate must be a number from 0 to 0.9"),
    ("filters not a list of integers", lambda tmp: RunConfig(filters=(32, -1)), r"filters must be 1 to 3 comma-separated integers"),
    ("unknown optimizer", lambda tmp: RunConfig(optimizer="adamw"), r"optimizer must be one of adam, sgd"),
    ("too many blocks for 28×28", lambda tmp: RunConfig(filters=(8, 16, 32), convs_per_block=2),
     r"shrink the 28×28 image to nothing; use fewer blocks"),
    ("URL parameter of the wrong type", lambda tmp: RunConfig.from_params({"num_epochs": "ten"}),
     r"num_epochs must be an integer from 1 to 200, got 'ten'"),
    ("URL parameter out of range", lambda tmp: RunConfig.from_params({"validation_split": "0.9"}),
     r"validation_split must be a number from 0 to 0.5, got 0.9"),
    ("blank canvas", lambda tmp: prepare_image(np.zeros((280, 280, 4), np.uint8)), r"no digit found.*Draw a digit"),
    ("specks of noise", lambda tmp: prepare_image(_specks()), r"no digit found.*Draw a digit"),
    ("missing model file", lambda tmp: load_model_file(tmp / "gone.keras"), r"no such model file"),
    ("corrupt model file", lambda tmp: load_model_file(corrupt(tmp / "bad.keras")), r"not a valid .keras archive"),
    ("HDF5 model file", lambda tmp: load_model_file(corrupt(tmp / "old.h5")), r"only .keras model files are loaded"),
    ("path traversal as a model id", lambda tmp: load_model("../../etc/passwd"), r"run id must be 32 lowercase hex"),
    ("unknown run id", lambda tmp: load_model("0" * 32), r"no run 0{32} in the run store"),
]


def _specks():
    image = np.zeros((280, 280, 4), np.uint8)
    rng = np.random.default_rng(0)
    image[rng.integers(0, 280, 300), rng.integers(0, 280, 300), 3] = 255
    return image


@pytest.mark.parametrize("what, action, message", BAD_INPUT, ids=[row[0] for row in BAD_INPUT])
def test_bad_input_gets_a_message(what, action, message, tmp_path, tracking_uri):
    with pytest.raises((ValueError, BlankImageError, ModelLoadError), match=message):
        action(tmp_path)


def test_a_corrupt_mnist_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path))
    corrupt(tmp_path / "mnist.npz", b"not an npz at all")
    data = load_mnist()
    assert data.x_train.shape == (60_000, 28, 28)
    assert np.load(tmp_path / "mnist.npz")["y_test"].shape == (10_000,)  # rewritten, good this time


def test_an_unreachable_run_store_still_draws_with_the_shipped_models(home, monkeypatch):
    st.cache_resource.clear()
    blocker = home / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker / 'mlflow.db'}")
    at = AppTest.from_file(str(APP), default_timeout=120).run().switch_page("views/draw.py").run()
    for _ in range(60):  # Draw does not wait for the store: the message comes once opening it has failed
        if at.warning:
            break
        time.sleep(0.5)
        at.run()
    assert not at.exception
    assert "The run store" in at.warning[0].value and "cannot be opened" in at.warning[0].value
    assert at.selectbox(key="pick-draw-cnn").value == "cnn" and at.selectbox(key="pick-draw-ann").value == "ann"
    st.cache_resource.clear()
