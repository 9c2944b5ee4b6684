"""Tracked runs in MLflow: start, log epochs, finish with artifacts, fail, recover, list, evict.

A run is created when training starts (status RUNNING), gets per-epoch metrics as they come, and at the end its
test metrics, evaluation report, test-set probabilities, `.keras` model and serving graph as artifacts (status
FINISHED). A run whose process died stays RUNNING in MLflow; `RunStore.recover` marks it FAILED with the tag
`digitlab.stopped=interrupted`. Nothing here imports TensorFlow: the server lists runs with it.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .config import RunConfig
from .data import home_dir
from .evaluation import save_report
from .modelfiles import ModelLoadError, check_run_id

EXPERIMENT = "digitlab"
REPORT_ARTIFACT = "evaluation/report.npz"  # the whole EvaluationReport (evaluation.save_report)
PROBABILITIES_ARTIFACT = "evaluation/test_probabilities.npy"  # what runs made before report.npz kept


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
                    "digitlab.host": socket.gethostname(), **(tags or {})}
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

    def finish_run(self, run_id: str, *, model_dir: Path, report, train_seconds: float, num_parameters: int,
                   stopped: str | None, precision: str = "float32", serving_error: str | None = None) -> None:
        """Log the final metrics and artifacts, then mark the run FINISHED.

        model_dir : a folder holding model.keras and, unless its export failed (`serving_error` says why),
            model.onnx; logged as the run's `model/` artifacts.
        """
        from mlflow.entities import Metric  # noqa: PLC0415

        now = int(time.time() * 1000)
        final = {"test_accuracy": report.accuracy, "test_loss": report.loss, "test_auc_macro": report.auc["macro"],
                 "train_seconds": train_seconds, "num_parameters": num_parameters}
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in final.items()])
        self.client.log_artifacts(run_id, str(model_dir), "model")
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "report.json").write_text(json.dumps(report.to_dict(), indent=1))  # for people
            save_report(report, Path(tmp) / "report.npz")  # for the dashboard
            self.client.log_artifacts(run_id, tmp, "evaluation")
        self.client.set_tag(run_id, "digitlab.stopped", stopped or "")
        self.client.set_tag(run_id, "digitlab.precision", precision)  # "auto" in the params, resolved here
        if serving_error:
            self.client.set_tag(run_id, "digitlab.serving_error", serving_error[:4000])
        self.client.set_terminated(run_id, "FINISHED")  # last: a FINISHED run always has its artifacts

    def fail_run(self, run_id: str, reason: str) -> None:
        self.client.set_tag(run_id, "digitlab.stopped", reason)
        self.client.set_terminated(run_id, "KILLED" if reason == "cancelled" else "FAILED")

    def recover(self) -> list[str]:
        """Mark RUNNING runs whose process is gone as FAILED/interrupted; returns their ids.

        Only runs a process on this host started: another machine's worker (a sweep sharing a PostgreSQL store)
        is not ours to judge, nor is a run with no process of its own (a sweep's parent run).
        """
        fixed = []
        for run in self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'"):
            tags = run.data.tags
            if "digitlab.pid" not in tags or tags.get("digitlab.host", socket.gethostname()) != socket.gethostname():
                continue
            if not process_alive(int(tags["digitlab.pid"] or 0)):
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

    def evict(self, *, keep: int, per_network: int | None = None) -> list[str]:
        """Delete for good all but the newest `keep` finished or failed runs (rows and artifacts), and first all but
        the newest `per_network` of each network's (tag `digitlab.network`); returns their ids.

        Bounds the store of a public demo, so that one network's many runs push out its own oldest, not everyone's.
        Shipped models are files in models/, not runs: never touched.
        """
        done = [run for run in self.list_runs(max_results=50_000) if run.status != "RUNNING"]  # newest first
        seen, crowded, rest = collections.Counter(), [], []
        for run in done:
            network = run.tags.get("digitlab.network", "")
            seen[network] += 1
            past_share = network and per_network is not None and seen[network] > per_network
            (crowded if past_share else rest).append(run.run_id)
        gone = crowded + rest[keep:]
        for run_id in gone:
            self.purge(run_id)
        return gone

    def purge(self, run_id: str) -> None:
        """Delete a run for good: its artifacts, then its rows (params, metrics, tags, the run).

        MLflow's `delete_run` only marks a run deleted, so the database grows forever; `mlflow gc` purges such runs
        with the store's `_hard_delete_run`, and so does this (MLflow has no public call for one run).
        """
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository  # noqa: PLC0415

        folder = urlparse(self._mlflow_run(run_id).info.artifact_uri)
        if folder.scheme in ("", "file"):
            shutil.rmtree(unquote(folder.path), ignore_errors=True)
        else:
            get_artifact_repository(self._mlflow_run(run_id).info.artifact_uri).delete_artifacts()
        self.client.delete_run(run_id)
        self.client._tracking_client.store._hard_delete_run(run_id)

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
        """Per-epoch metrics of a run: {"loss": [...], "val_accuracy": [...], ..., "epoch": [1.0, 2.0, 2.11]} ordered
        by epoch ("epoch": where each ended, a stopped one part-way; runs made before it was logged have none)."""
        out = {}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds", "epoch"):
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


# ---------------------------------------------------------------------------------------------------------------

def _summary(run) -> RunSummary:
    params = dict(run.data.params)
    try:  # a sweep's parent run holds the search space, not a model
        config = None if run.data.tags.get("digitlab.role") == "sweep" else RunConfig.from_params(params)
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

