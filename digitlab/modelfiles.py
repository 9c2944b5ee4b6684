"""Model files DigitLab writes and reads: where they are, and how a `.keras` file is loaded safely.

Every model has two files: `model.keras` (Keras, for training-side work: the CLI, exports) and `model.onnx`, its
serving graph (`serving.py` runs it without TensorFlow). Shipped models live in models/<id>.{keras,onnx,json};
a run keeps them as its MLflow artifacts `model/model.keras` and `model/model.onnx`.

Models load only by id: "ann"/"cnn" (shipped) or a run id (32 hex digits) of a FINISHED run, so a half-copied file
of a run that died is never read. `.keras` files load with `safe_mode=True`, after their config has been checked
for code (Lambda layers) and non-Keras classes. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from .data import PROJECT_DIR

SHIPPED_DIR = PROJECT_DIR / "models"
SHIPPED = ("cnn", "ann")
MODEL_ARTIFACT = "model/model.keras"
SERVING_ARTIFACT = "model/model.onnx"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}


class ModelLoadError(ValueError):
    """A model id or file was refused or could not be read; the message says why and what to do."""


def is_model_id(text: str) -> bool:
    """True for a shipped id or something shaped like a run id."""
    return text in SHIPPED or bool(_RUN_ID.match(text))


def model_file(model_id: str, *, store=None, kind: str = "keras") -> Path:
    """The local path of a model's `.keras` (kind="keras") or serving graph (kind="onnx").

    store : a runs.RunStore, needed for run ids (a new one is opened when None).
    Raises ModelLoadError for an unknown id, a run that did not finish, or a missing file.
    """
    if kind not in ("keras", "onnx"):
        raise ValueError(f"kind must be 'keras' or 'onnx', got {kind!r}")
    if model_id in SHIPPED:
        path = SHIPPED_DIR / f"{model_id}.{kind}"
        if not path.is_file():
            raise ModelLoadError(f"the shipped model file {path} is missing; restore it from the repository")
        return path
    from .runs import RunStore  # noqa: PLC0415

    store = store or RunStore()
    status = store.get_run(check_run_id(model_id)).status
    if status != "FINISHED":  # a run that died may hold a half-copied file: never load it
        raise ModelLoadError(f"run {model_id} did not finish (it is {status.lower()}), so it has no model; "
                             "pick a finished run")
    return store.artifact_path(model_id, MODEL_ARTIFACT if kind == "keras" else SERVING_ARTIFACT)


def load_model(model_id: str, *, store=None):
    """Load a Keras model by id: "ann"/"cnn" from models/ (no run store needed), else a finished run's."""
    return load_model_file(model_file(model_id, store=store))


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ModelLoadError(f"run id must be 32 lowercase hex digits (see `python -m digitlab runs`), "
                             f"got {str(run_id)[:80]!r}")
    return run_id


def load_model_file(path) -> object:
    """Load a `.keras` file with safe_mode=True. Refuses `.h5`/other formats and models that carry code."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelLoadError(f"{path.name}: only .keras model files are loaded (got {path.suffix or 'no suffix'}); "
                             "legacy .h5 files can run arbitrary code. Re-save the model as .keras.")
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file. Check the path, or use a shipped id: ann, cnn.")
    _check_archive(path)
    import keras  # noqa: PLC0415

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # missing weights, truncated files, safe-mode refusals, ...
        raise ModelLoadError(f"{path.name}: could not be read as a Keras model ({_first_line(error)}). "
                             "The file may be corrupt or incomplete; re-export it.") from None


def _check_archive(path: Path) -> None:
    """Refuse, before Keras parses anything, a `.keras` archive whose config names code or non-Keras classes."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path.name}: not a valid .keras archive ({_first_line(error)}). "
                             "The file may be corrupt or incomplete; re-export it.") from None
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            name, module = node.get("class_name"), node.get("module")
            if name in _CODE_LAYERS or name == "__lambda__" or (module == "builtins" and name == "function"):
                raise ModelLoadError(f"{path.name}: refused, the model carries code ({name}) that DigitLab "
                                     "never runs. Use a model built from standard Keras layers.")
            if isinstance(module, str) and module.split(".")[0] != "keras":
                raise ModelLoadError(f"{path.name}: refused, the model uses a non-Keras component "
                                     f"{module}.{name}. Use a model built from standard Keras layers.")
            stack.extend(node.values())


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
