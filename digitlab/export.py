"""Write a trained model's files: the `.keras`, its serving graph (`serving_graph.py`), and for shipped models a
card, the test-set report and the map; `python -m digitlab.export ID` makes a serving graph a model lacks.

This module imports TensorFlow: only training workers, the CLI and `python -m digitlab.export` use it.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .config import RunConfig
from .evaluation import save_report
from .serving_graph import CHECK_IMAGES, ServingExportError, write_serving_graph

# ---------------------------------------------------------------------------------------------------------------
# A model's files
# ---------------------------------------------------------------------------------------------------------------

def write_model_files(model: keras.Model, config: RunConfig, folder, *, check_images: np.ndarray) -> str | None:
    """Write folder/model.keras and folder/model.onnx; returns None, or why the serving graph was refused
    (the `.keras` is written either way)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    try:
        write_serving_graph(model, config, folder / "model.onnx", check_images=check_images)
    except ServingExportError as error:
        return str(error)
    return None


def save_model_with_card(outcome, path, *, preset: str = "") -> Path:
    """Write PATH.keras, PATH.onnx, PATH.report.npz (the test-set evaluation) and the card PATH.json, atomically.

    Raises ServingExportError (after writing nothing) when the serving graph cannot be made: a shipped model must
    be servable.
    """
    from .data import load_mnist  # noqa: PLC0415
    from .embedding import write_embedding  # noqa: PLC0415
    from .preprocessing import scale_images  # noqa: PLC0415

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"export path must end in .keras, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    r = outcome.result
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        check = scale_images(load_mnist().x_test[:CHECK_IMAGES])
        write_serving_graph(r.model, r.config, Path(tmp) / "model.onnx", check_images=check)
        r.model.save(Path(tmp) / "model.keras")
        save_report(outcome.report, Path(tmp) / "report.npz")
        for made in write_embedding(tmp):  # PATH.embedding.npz: the Inside page's map
            os.replace(made, path.with_suffix(".embedding.npz"))
        os.replace(Path(tmp) / "model.onnx", path.with_suffix(".onnx"))
        os.replace(Path(tmp) / "report.npz", path.with_suffix(".report.npz"))
        os.replace(Path(tmp) / "model.keras", path)
    card = {
        "model": r.config.model, "preset": preset, "config": r.config.to_params(),
        "test_accuracy": outcome.report.accuracy, "test_loss": outcome.report.loss,
        "test_auc_macro": outcome.report.auc.get("macro"), "train_seconds": round(r.train_seconds, 2),
        "epochs_run": r.epochs_run, "stopped": r.stopped, "num_parameters": r.num_parameters,
        "precision": r.precision, "seed": r.config.seed, "history": r.history, "run_id": outcome.run_id,
        # How the settings were chosen: presets on the validation split only; the test set scored this model once.
        "selected_on": "validation" if preset else "", "test_set_used": "once, for test_accuracy",
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
        "machine": {**machine_description(), "onednn": _onednn_enabled()},
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python -m digitlab " + shlex.join(sys.argv[1:]) if sys.argv[0].endswith("__main__.py") else "",
    }
    card_path = path.with_suffix(".json")
    tmp_card = card_path.with_name(f".{card_path.name}.{os.getpid()}.tmp")
    tmp_card.write_text(json.dumps(card, indent=1) + "\n")
    os.replace(tmp_card, card_path)
    return path


def machine_description() -> dict:
    """The CPU a figure was measured on: model name, cores, and whether it has native bfloat16."""
    from .config import cpu_has_bfloat16  # noqa: PLC0415

    name = ""
    try:
        name = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor()
    return {"cpu": name, "cores": os.cpu_count(), "native_bfloat16": cpu_has_bfloat16(),
            "arch": platform.machine()}


def _onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels in this process (TF_ENABLE_ONEDNN_OPTS, read at import)."""
    from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415

    return bool(_pywrap_util_port.IsMklEnabled())


# ---------------------------------------------------------------------------------------------------------------
# Serving graphs for models made before serving graphs existed: `python -m digitlab.export RUN_ID | ann | cnn`
# ---------------------------------------------------------------------------------------------------------------

def make_serving_graph(model_id: str) -> Path:
    """Write the serving graph of a shipped model or a finished run that lacks one; returns its path."""
    from .catalog import load_card  # noqa: PLC0415
    from .data import load_mnist  # noqa: PLC0415
    from .modelfiles import SERVING_ARTIFACT, SHIPPED, SHIPPED_DIR, load_model, model_file  # noqa: PLC0415
    from .preprocessing import scale_images  # noqa: PLC0415
    from .runs import RunStore  # noqa: PLC0415

    check = scale_images(load_mnist().x_test[:CHECK_IMAGES])
    if model_id in SHIPPED:  # the graph and the test-set evaluation the dashboard reads
        from .evaluation import evaluate_model  # noqa: PLC0415

        config, model, data = RunConfig.from_params(load_card(model_id)["config"]), load_model(model_id), load_mnist()
        report = evaluate_model(model, scale_images(data.x_test), data.y_test)
        save_report(report, SHIPPED_DIR / f"{model_id}.report.npz")
        return write_serving_graph(model, config, SHIPPED_DIR / f"{model_id}.onnx", check_images=check)
    store = RunStore()
    config = store.get_run(model_id).config
    model = load_model(model_id, store=store)
    with tempfile.TemporaryDirectory() as tmp:
        write_serving_graph(model, config, Path(tmp) / "model.onnx", check_images=check)
        store.client.log_artifact(model_id, str(Path(tmp) / "model.onnx"), SERVING_ARTIFACT.rsplit("/", 1)[0])
    return model_file(model_id, store=store, kind="onnx")


if __name__ == "__main__":
    try:
        print(make_serving_graph(sys.argv[1]))
    except ValueError as error:  # ServingExportError, ModelLoadError: say why on one line
        print(f"digitlab: error: {error}", file=sys.stderr)
        sys.exit(2)
