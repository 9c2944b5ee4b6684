"""One training run from start to finish: train → evaluate on the test set → write the model's files → track.

`run_training` is what the CLI calls in the foreground and what the dashboard's worker process calls in the
background; the observer (progress bar, progress file) plugs in through `on_progress`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

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
        last = {k: v[-1] for k, v in r.history.items() if k not in ("seconds", "epoch") and v}
        return {
            "run_id": self.run_id, "model": r.config.model, "epochs_run": r.epochs_run, "stopped": r.stopped,
            "test_accuracy": self.report.accuracy, "test_loss": self.report.loss,
            "test_auc_macro": self.report.auc.get("macro"), **last,
            "train_seconds": round(r.train_seconds, 3), "num_parameters": r.num_parameters, "precision": r.precision,
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
    on_phase: Callable[[str], None] | None = None,
    should_stop: Callable | None = None,
    export: str | os.PathLike | None = None,
) -> Outcome:
    """Train, evaluate on the test set, and record the run. A failure marks the tracked run FAILED and re-raises.

    on_progress : gets training.Progress events; on_phase : gets "testing", then "saving", after training.
    """
    from .embedding import write_embedding  # noqa: PLC0415
    from .evaluation import evaluate_model  # noqa: PLC0415 - TensorFlow-heavy imports happen only when training
    from .export import CHECK_IMAGES, save_model_with_card, write_model_files  # noqa: PLC0415
    from .preprocessing import scale_images  # noqa: PLC0415
    from .runs import RunStore  # noqa: PLC0415
    from .training import train  # noqa: PLC0415

    data = data or load_mnist()
    store = store or (RunStore() if track else None)
    run_id = store.start_run(config, preset=preset, tags=tags) if store else None

    def phase(name):
        if on_phase:
            on_phase(name)

    def observe(progress):
        if store and progress.epoch_end:
            store.log_epoch(run_id, progress.epoch - 1, {k: v[-1] for k, v in progress.history.items()})
        if on_progress:
            on_progress(progress)

    try:
        result = train(config, data, on_progress=observe, should_stop=should_stop)
        phase("testing")
        report = evaluate_model(result.model, scale_images(data.x_test), data.y_test)
        phase("saving")
        if store:
            with tempfile.TemporaryDirectory() as folder:
                serving_error = write_model_files(result.model, config, folder,
                                                  check_images=scale_images(data.x_test[:CHECK_IMAGES]))
                if not serving_error:  # the Inside page's map: hidden layer + PCA of 5,000 test digits, ~1 s
                    write_embedding(folder, data=data)
                store.finish_run(run_id, model_dir=folder, report=report, train_seconds=result.train_seconds,
                                 num_parameters=result.num_parameters, stopped=result.stopped,
                                 precision=result.precision, serving_error=serving_error)
    except BaseException as error:
        if store:
            store.fail_run(run_id, "cancelled" if isinstance(error, KeyboardInterrupt) else "failed")
        raise
    outcome = Outcome(run_id, result, report)
    if export:
        save_model_with_card(outcome, export, preset=preset)
    return outcome
