"""A training job: train → evaluate on the test set → track in MLflow → optionally export a model card.

`run_training` is what the CLI calls in the foreground and what the dashboard's worker process calls in the
background; the observer (progress bar, progress file) plugs in through `on_progress`.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import RunConfig
from .data import MNIST, load_mnist


@dataclass
class Outcome:
    run_id: str | None  # None when not tracked
    result: object  # training.TrainResult
    report: object  # evaluation.EvaluationReport on the 10k test images

    def summary(self) -> dict:
        """The JSON line `train --json` ends with."""
        r = self.result
        last = {k: v[-1] for k, v in r.history.items() if k != "seconds" and v}
        return {
            "run_id": self.run_id, "model": r.config.model, "epochs_run": r.epochs_run, "stopped": r.stopped,
            "test_accuracy": self.report.accuracy, "test_loss": self.report.loss,
            "test_auc_macro": self.report.auc.get("macro"), **last,
            "train_seconds": round(r.train_seconds, 3), "num_parameters": r.num_parameters,
        }


def run_training(
    config: RunConfig,
    *,
    preset: str = "",
    data: MNIST | None = None,
    track: bool = True,
    store=None,
    tags: dict | None = None,
    on_progress: Callable | None = None,
    should_stop: Callable | None = None,
    export: str | os.PathLike | None = None,
) -> Outcome:
    """Train, evaluate on the test set, and record the run. A failure marks the tracked run FAILED and re-raises."""
    from .evaluation import evaluate_model  # noqa: PLC0415 - TensorFlow-heavy imports happen only when training
    from .preprocessing import scale_images  # noqa: PLC0415
    from .tracking import RunStore  # noqa: PLC0415
    from .training import train  # noqa: PLC0415

    data = data or load_mnist()
    store = store or (RunStore() if track else None)
    run_id = store.start_run(config, preset=preset, tags=tags) if store else None

    def observe(progress):
        if store and progress.epoch_end:
            store.log_epoch(run_id, progress.epoch - 1, {k: v[-1] for k, v in progress.history.items()})
        if on_progress:
            on_progress(progress)

    try:
        result = train(config, data, on_progress=observe, should_stop=should_stop)
        report = evaluate_model(result.model, scale_images(data.x_test), data.y_test)
        if store:
            store.finish_run(run_id, model=result.model, report=report, train_seconds=result.train_seconds,
                             num_parameters=result.num_parameters, stopped=result.stopped)
    except BaseException as error:
        if store:
            store.fail_run(run_id, "cancelled" if isinstance(error, KeyboardInterrupt) else "failed")
        raise
    outcome = Outcome(run_id, result, report)
    if export:
        save_model_with_card(outcome, export, preset=preset)
    return outcome


def save_model_with_card(outcome: Outcome, path, *, preset: str = "") -> Path:
    """Write PATH.keras and its card PATH.json atomically (temporary file, then rename)."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"export path must end in .keras, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    outcome.result.model.save(tmp)
    os.replace(tmp, path)
    r = outcome.result
    card = {
        "model": r.config.model, "preset": preset, "config": r.config.to_params(),
        "test_accuracy": outcome.report.accuracy, "test_loss": outcome.report.loss,
        "test_auc_macro": outcome.report.auc.get("macro"), "train_seconds": round(r.train_seconds, 2),
        "epochs_run": r.epochs_run, "stopped": r.stopped, "num_parameters": r.num_parameters,
        "history": r.history, "run_id": outcome.run_id,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python -m digitlab " + shlex.join(sys.argv[1:]) if sys.argv[0].endswith("__main__.py") else "",
    }
    card_path = path.with_suffix(".json")
    tmp_card = card_path.with_name(f".{card_path.name}.{os.getpid()}.tmp")
    tmp_card.write_text(json.dumps(card, indent=1) + "\n")
    os.replace(tmp_card, card_path)
    return path
