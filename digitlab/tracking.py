"""Tracked runs (MLflow) and the one place that loads a model.

A run is created when training starts (status RUNNING), gets per-epoch metrics as they come, and at the end its
test metrics, evaluation report, test-set probabilities and `.keras` model as artifacts (status FINISHED). A run
whose process died stays RUNNING in MLflow; `RunStore.recover` marks it FAILED with the tag
`digitlab.stopped=interrupted`.

Models load only by id: "ann"/"cnn" (the shipped models in models/) or a run id (32 hex digits), always `.keras`
with `safe_mode=True`. `load_model_file` applies the same rules to a path given on the command line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from .config import RunConfig
from .data import PROJECT_DIR, home_dir

EXPERIMENT = "digitlab"
SHIPPED_DIR = PROJECT_DIR / "models"
SHIPPED = ("cnn", "ann")
MODEL_ARTIFACT = "model/model.keras"
REPORT_ARTIFACT = "evaluation/report.json"
PROBABILITIES_ARTIFACT = "evaluation/test_probabilities.npy"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}


class ModelLoadError(ValueError):
    """A model id or file was refused or could not be read; the message says why and what to do."""


def tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else a SQLite file in DigitLab's data folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home_dir() / 'mlflow.db'}"


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    name: str
    status: str  # RUNNING, FINISHED, FAILED, KILLED
    stopped: str  # "" or why it ended early: early_stopping, cancelled, interrupted, ...
    start_time: float  # seconds since the epoch
    config: RunConfig | None  # None when the params do not form a valid config (a run not made by DigitLab)
    preset: str
    metrics: dict  # final values: test_accuracy, test_loss, train_seconds, val_accuracy, ...
    tags: dict

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("test_accuracy")


class RunStore:
    """MLflow runs of the `digitlab` experiment in one tracking store."""

    def __init__(self, uri: str | None = None):
        from mlflow import MlflowClient  # noqa: PLC0415 - MLflow takes ~1.5 s to import

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # after the import, which sets up its logging

        self.uri = uri or tracking_uri()
        with _store_lock(self.uri):  # two processes creating a new SQLite store at once race in its migrations
            self.client = MlflowClient(tracking_uri=self.uri)
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            if experiment is None:
                location = None
                if self.uri.startswith("sqlite:///"):  # keep artifacts beside the database, not in the CWD
                    location = (Path(self.uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
                self.experiment_id = self.client.create_experiment(EXPERIMENT, artifact_location=location)
            else:
                self.experiment_id = experiment.experiment_id

    # --- writing -----------------------------------------------------------------------------------------------

    def start_run(self, config: RunConfig, *, preset: str = "", tags: dict | None = None) -> str:
        from mlflow.entities import Param  # noqa: PLC0415

        all_tags = {"digitlab.model": config.model, "digitlab.preset": preset, "digitlab.pid": str(os.getpid()),
                    **(tags or {})}
        run = self.client.create_run(self.experiment_id, run_name=_run_name(config, preset), tags=all_tags)
        params = {**config.to_params(), "preset": preset}
        self.client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
        return run.info.run_id

    def log_epoch(self, run_id: str, epoch: int, values: dict) -> None:
        """Per-epoch metrics (loss, accuracy, val_loss, val_accuracy, seconds) at step `epoch` (0-based)."""
        from mlflow.entities import Metric  # noqa: PLC0415

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[
            Metric("epoch_seconds" if k == "seconds" else k, float(v), now, epoch) for k, v in values.items()])

    def finish_run(self, run_id: str, *, model, report, train_seconds: float, num_parameters: int,
                   stopped: str | None, precision: str = "float32") -> None:
        """Log the final metrics and artifacts, then mark the run FINISHED."""
        from mlflow.entities import Metric  # noqa: PLC0415

        now = int(time.time() * 1000)
        final = {"test_accuracy": report.accuracy, "test_loss": report.loss, "test_auc_macro": report.auc["macro"],
                 "train_seconds": train_seconds, "num_parameters": num_parameters}
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in final.items()])
        with tempfile.TemporaryDirectory() as tmp:
            model_path = Path(tmp) / "model.keras"
            model.save(model_path)
            self.client.log_artifact(run_id, str(model_path), "model")
            (Path(tmp) / "report.json").write_text(json.dumps(report.to_dict(), indent=1))
            np.save(Path(tmp) / "test_probabilities.npy", report.probabilities.astype(np.float32))
            self.client.log_artifact(run_id, str(Path(tmp) / "report.json"), "evaluation")
            self.client.log_artifact(run_id, str(Path(tmp) / "test_probabilities.npy"), "evaluation")
        self.client.set_tag(run_id, "digitlab.stopped", stopped or "")
        self.client.set_tag(run_id, "digitlab.precision", precision)  # "auto" in the params, resolved here
        self.client.set_terminated(run_id, "FINISHED")  # last: a FINISHED run always has its artifacts

    def fail_run(self, run_id: str, reason: str) -> None:
        self.client.set_tag(run_id, "digitlab.stopped", reason)
        self.client.set_terminated(run_id, "KILLED" if reason == "cancelled" else "FAILED")

    def recover(self) -> list[str]:
        """Mark RUNNING runs whose process is gone as FAILED/interrupted; returns their ids."""
        fixed = []
        for run in self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'"):
            pid = int(run.data.tags.get("digitlab.pid", "0") or 0)
            if not process_alive(pid):
                self.fail_run(run.info.run_id, "interrupted")
                fixed.append(run.info.run_id)
        return fixed

    # --- reading -----------------------------------------------------------------------------------------------

    def list_runs(self, *, max_results: int = 500, owner: str | None = None) -> list[RunSummary]:
        """Runs newest first; only those `owner` (a dashboard visitor) started, when given."""
        query = "" if owner is None else f"tags.`digitlab.owner` = '{_quote(owner)}'"
        runs = self.client.search_runs([self.experiment_id], query, max_results=max_results,
                                       order_by=["attributes.start_time DESC"])
        return [_summary(run) for run in runs]

    def evict(self, *, keep: int) -> list[str]:
        """Delete all but the newest `keep` finished or failed runs, artifacts included; returns the deleted ids.

        Bounds the store of a public demo. Shipped models are files in models/, not runs: never touched.
        """
        import shutil  # noqa: PLC0415

        done = [run for run in self.list_runs(max_results=50_000) if run.status != "RUNNING"]
        deleted = []
        for run in done[keep:]:
            folder = urlparse(self._mlflow_run(run.run_id).info.artifact_uri)
            self.client.delete_run(run.run_id)
            if folder.scheme == "file":
                shutil.rmtree(unquote(folder.path), ignore_errors=True)
            deleted.append(run.run_id)
        return deleted

    def get_run(self, run_id: str) -> RunSummary:
        return _summary(self._mlflow_run(run_id))

    def _mlflow_run(self, run_id: str):
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        try:
            return self.client.get_run(check_run_id(run_id))
        except MlflowException:
            raise ModelLoadError(f"no run {run_id} in the run store {self.uri}; "
                                 "list the runs with `python -m digitlab runs`") from None

    def history(self, run_id: str) -> dict[str, list[float]]:
        """Per-epoch metrics of a run: {"loss": [...], "val_accuracy": [...], ...} ordered by epoch."""
        out = {}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
            points = sorted(self.client.get_metric_history(check_run_id(run_id), key), key=lambda m: m.step)
            if points:
                out[key] = [m.value for m in points]
        return out

    def artifact_path(self, run_id: str, artifact: str) -> Path:
        """Local path of a run's artifact (downloaded first when the store is remote)."""
        uri = self._mlflow_run(run_id).info.artifact_uri
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            path = Path(unquote(parsed.path)) / artifact
        else:
            path = Path(self.client.download_artifacts(run_id, artifact, tempfile.mkdtemp()))
        if not path.exists():
            raise ModelLoadError(f"run {run_id} has no {artifact}; it did not finish. Pick a finished run.")
        return path

    def load_model(self, model_id: str):
        """Load a model by id: "ann"/"cnn" (shipped) or a run id."""
        return load_model(model_id, store=self)


def load_model(model_id: str, *, store: RunStore | None = None):
    """Load a model by id: "ann"/"cnn" from models/ (no run store needed), else a run id from `store`."""
    if model_id in SHIPPED:
        return load_model_file(SHIPPED_DIR / f"{model_id}.keras")
    store = store or RunStore()
    status = store.get_run(check_run_id(model_id)).status
    if status != "FINISHED":  # a run that died may hold a half-copied file: never load it
        raise ModelLoadError(f"run {model_id} did not finish (it is {status.lower()}), so it has no model; "
                             "pick a finished run")
    return load_model_file(store.artifact_path(model_id, MODEL_ARTIFACT))


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



# ---------------------------------------------------------------------------------------------------------------

def _summary(run) -> RunSummary:
    params = dict(run.data.params)
    try:
        config = RunConfig.from_params(params)
    except (ValueError, TypeError):
        config = None
    return RunSummary(
        run_id=run.info.run_id, name=run.info.run_name or "", status=run.info.status,
        stopped=run.data.tags.get("digitlab.stopped", ""), start_time=run.info.start_time / 1000,
        config=config, preset=params.get("preset", ""), metrics=dict(run.data.metrics), tags=dict(run.data.tags))


@contextlib.contextmanager
def file_lock(path: Path):
    """Hold an exclusive lock on `path` (created if needed) across processes on this host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _store_lock(uri: str):
    """A lock beside a SQLite store while it is opened (and maybe created); nothing for other stores."""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    database = Path(uri.removeprefix("sqlite:///"))
    return file_lock(database.with_name(database.name + ".lock"))


def _quote(text: str) -> str:
    """A value safe inside a single-quoted MLflow filter string."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        raise ValueError(f"owner must be 1-64 letters, digits, '.', '_' or '-', got {text[:64]!r}")
    return text


def _run_name(config: RunConfig, preset: str) -> str:
    shape = f"{config.hidden_units}" if config.model == "ann" else "-".join(map(str, config.filters))
    return f"{config.model}-{shape}-{preset or 'custom'}-{time.strftime('%m%d-%H%M%S')}"


def process_alive(pid) -> bool:
    """True when process `pid` exists and is not a zombie (a killed child its parent has not reaped yet)."""
    try:
        return Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, TypeError, ValueError, IndexError):
        return False


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


# ---------------------------------------------------------------------------------------------------------------
# Shipped models and the ANN-vs-CNN comparison
# ---------------------------------------------------------------------------------------------------------------

def load_card(model_id: str) -> dict:
    """The card of a shipped model (models/<id>.json)."""
    if model_id not in SHIPPED:
        raise ModelLoadError(f"shipped models are {', '.join(SHIPPED)}, got {model_id!r}")
    return json.loads((SHIPPED_DIR / f"{model_id}.json").read_text())


def load_preset_result(name: str, model: str) -> dict | None:
    """What preset `name` measured for `model` here: {"test_accuracy", "train_seconds", "source"}, or None.

    `best` is what the shipped model (trained with it) measured; the others come from benchmarks/presets.json,
    written by `python -m benchmarks.presets`.
    """
    if name == "best" and model in SHIPPED:
        card = load_card(model)
        if card.get("preset") == "best":
            return {"test_accuracy": card["test_accuracy"], "train_seconds": card["train_seconds"],
                    "source": f"the shipped {model.upper()} (models/{model}.json)"}
    path = PROJECT_DIR / "benchmarks" / "presets.json"
    try:
        result = json.loads(path.read_text())[f"{name}/{model}"]
    except (OSError, ValueError, KeyError):
        return None
    return {"test_accuracy": result["test_accuracy"], "train_seconds": result["train_seconds"],
            "source": f"median of {len(result['runs'])} seeds, benchmarks/presets.json"}


def kind_comparison(entries: list[dict]) -> list[dict]:
    """The product brief's ANN-vs-CNN table, filled with measured numbers.

    entries : dicts with model ("ann"/"cnn"), name, test_accuracy, train_seconds, num_parameters, filters,
        hidden_units: shipped cards and finished runs. The most accurate entry of each kind is used.
    Returns one row per aspect: {"aspect", "ANN", "CNN"}.
    """
    best = {}
    for entry in entries:
        kind = entry["model"]
        if entry.get("test_accuracy") is not None and (
                kind not in best or entry["test_accuracy"] > best[kind]["test_accuracy"]):
            best[kind] = entry
    ann, cnn = best.get("ann"), best.get("cnn")

    def cell(entry, text):
        return text(entry) if entry else "no finished run yet"

    return [
        {"aspect": "measured on", "ANN": cell(ann, lambda e: e["name"]), "CNN": cell(cnn, lambda e: e["name"])},
        {"aspect": "input handling", "ANN": "28×28 flattened to a 784-vector: pixel neighbourhoods are lost",
         "CNN": "28×28×1 image: 2-D neighbourhoods kept"},
        {"aspect": "feature extraction",
         "ANN": cell(ann, lambda e: f"none: one dense layer of {e['hidden_units']} units on raw pixels"),
         "CNN": cell(cnn, lambda e: f"{len(e['filters'])} learned 3×3 conv + max-pool blocks "
                                    f"({', '.join(map(str, e['filters']))} filters)")},
        {"aspect": "test accuracy", "ANN": cell(ann, lambda e: f"{e['test_accuracy']:.2%}"),
         "CNN": cell(cnn, lambda e: f"{e['test_accuracy']:.2%}")},
        {"aspect": "training time", "ANN": cell(ann, lambda e: f"{e['train_seconds']:.0f} s"),
         "CNN": cell(cnn, lambda e: f"{e['train_seconds']:.0f} s")},
        {"aspect": "parameters", "ANN": cell(ann, lambda e: f"{int(e['num_parameters']):,}"),
         "CNN": cell(cnn, lambda e: f"{int(e['num_parameters']):,}")},
    ]


def model_entries(store: RunStore | None, *, owner: str | None = None) -> list[dict]:
    """Every model a user can pick: the shipped ones, then finished runs newest first (none when store is None;
    only `owner`'s runs when given).

    Each entry: id, label, model, name, test_accuracy, train_seconds, num_parameters, filters, hidden_units, source.
    """
    entries = []
    for model_id in SHIPPED:
        card = load_card(model_id)
        config = RunConfig.from_params(card["config"])
        entries.append({"id": model_id, "source": "shipped", "name": f"shipped {model_id.upper()}",
                        "model": model_id, "test_accuracy": card["test_accuracy"],
                        "train_seconds": card["train_seconds"], "num_parameters": card["num_parameters"],
                        "filters": config.filters, "hidden_units": config.hidden_units})
    for run in store.list_runs(owner=owner) if store else []:
        if run.status == "FINISHED" and run.config and "test_accuracy" in run.metrics:
            entries.append({"id": run.run_id, "source": "run", "name": run.name, "model": run.config.model,
                            "test_accuracy": run.metrics["test_accuracy"],
                            "train_seconds": run.metrics.get("train_seconds", 0),
                            "num_parameters": run.metrics.get("num_parameters", 0),
                            "filters": run.config.filters, "hidden_units": run.config.hidden_units})
    for entry in entries:
        entry["label"] = f"{entry['name']} · {entry['model'].upper()} · {entry['test_accuracy']:.2%}"
    return entries
