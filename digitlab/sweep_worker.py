"""A sweep worker: trials of one study until it has its trials, this worker's time budget is spent, or someone stops
the sweep. Any number of workers, on one machine or many, share a study (`studies.py` opens it safely).

A trial samples a parameter set nobody else has (a set another live trial has is skipped: the trial is marked FAIL
with the user attribute `skipped`, and in a finite space an untried set is queued), trains it with
`pipeline.run_training` as an MLflow run nested under the sweep's parent run, and reports each epoch's
`val_accuracy` to the pruner, which stops bad trials through `train`'s `should_stop` (the model is kept).

The objective is the validation accuracy of the kept model: the last epoch's `val_accuracy` (early stopping is off
in trials). Trials are scored on the test set as every DigitLab model is, for the Results page, but nothing here
reads those scores except, once the sweep ends, the best trial's, reported as `best_trial_test_accuracy`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import socket
import time
import warnings

import optuna
from optuna.trial import TrialState

from .studies import open_study, stop_requested, storage_url, trial_params
from .sweeps import Dimension, SweepConfig

WORKER = f"{socket.gethostname()}:{os.getpid()}"

LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


class TrialSkipped(Exception):
    """A trial that did not train: its parameter set is taken, or the study already has its trials."""


def run_worker(name: str, options: dict | None = None, *, url: str | None = None, timeout: float | None = None,
               heartbeat: int = 10, data=None, store=None, on_event=lambda text: None) -> dict:
    """Work on study `name` (created with `options` if new) until it is done; returns `summary(...)` and why it
    ended ("ended").

    timeout : seconds; after it this worker starts no trial and stops its running one (kept, marked pruned).
    heartbeat : seconds between this worker's heartbeats; a trial whose heartbeat is 2× older is failed and queued
        again by the next worker that looks.
    on_event : called with one line of text per epoch and per trial (the CLI prints them).
    """
    from .data import load_mnist  # noqa: PLC0415

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials speak through on_event; a skipped one is no error
    url = url or storage_url()
    study, sweep, parent, store = open_study(name, options or {}, url=url, heartbeat=heartbeat, store=store)
    store.client.update_run(parent, status="RUNNING")  # again, when a finished sweep is resumed
    objective = _Objective(study, sweep, parent, store, data or load_mnist(), timeout=timeout, on_event=on_event)
    while (reason := _wait_for_work(study, sweep, objective, heartbeat=heartbeat)) is None:
        study.optimize(objective, n_trials=1, catch=(TrialSkipped,), callbacks=[_save_importances])
    on_event(f"worker {WORKER} ends: {reason}")
    return {**_finish(study, parent, store), "ended": reason}


class _Objective:
    """One trial: sample a parameter set nobody else has, train it, report each epoch, return its val_accuracy."""

    def __init__(self, study, sweep, parent, store, data, *, timeout, on_event):
        self.study, self.sweep, self.parent, self.store, self.data = study, sweep, parent, store, data
        self.started = time.time()
        self.deadline = self.started + timeout if timeout else None
        self.on_event, self.exhausted = on_event, False
        self.reason, self.last_look, self.last_progress = None, 0.0, 0.0

    def __call__(self, trial) -> float:
        from .pipeline import run_training  # noqa: PLC0415 - TensorFlow

        trial.set_user_attr("worker", WORKER)
        earlier = [t for t in self.study.get_trials(deepcopy=False, states=LIVE) if t.number < trial.number]
        if len(earlier) >= self.sweep.num_trials:  # two workers started the last trial at the same moment
            raise self._skip(trial, f"the study already has its {self.sweep.num_trials} trials")
        values = {d.name: d.suggest(trial) for d in self.sweep.space}
        self._check_unique(trial, values)
        self.reason, started = None, time.time()
        tags = {"mlflow.parentRunId": self.parent, "digitlab.sweep": self.study.study_name,
                "digitlab.trial": str(trial.number)}
        outcome = run_training(self.sweep.trial_config(values), preset="sweep", data=self.data, store=self.store,
                               tags=tags, on_progress=lambda p: self._progress(trial, p), should_stop=self._stop)
        self.store.client.update_run(outcome.run_id, name=f"{self.study.study_name} #{trial.number}")
        history = outcome.result.history
        trial.set_user_attr("run_id", outcome.run_id)
        trial.set_user_attr("epochs_run", outcome.result.epochs_run)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
        if self.reason:
            trial.set_user_attr("stopped", self.reason)
            self.on_event(f"trial {trial.number} ({shown}): {self.reason} after {len(history['val_accuracy'])} "
                          f"epochs, {time.time() - started:.0f} s")
            raise optuna.TrialPruned(self.reason)
        value = history["val_accuracy"][-1]
        self.on_event(f"trial {trial.number} ({shown}): val_accuracy {value:.4f}, {time.time() - started:.0f} s")
        return value

    def _check_unique(self, trial, values: dict) -> None:
        """Skip a parameter set another live trial has; in a finite space, queue one nobody has tried."""
        others = [t for t in self.study.get_trials(deepcopy=False, states=LIVE) if t.number != trial.number]
        twins = [t.number for t in others if trial_params(t) == values]
        if not twins:
            return
        untried = _untried(self.sweep.space, others + [trial])
        if untried == []:
            self.exhausted = True
        elif untried:
            self.study.enqueue_trial(random.choice(untried), skip_if_exists=True)
        raise self._skip(trial, f"the same settings as trial {twins[0]}")

    def _skip(self, trial, why: str) -> TrialSkipped:
        trial.set_user_attr("skipped", why)
        self.on_event(f"trial {trial.number} skipped: {why}")
        return TrialSkipped(why)

    def _progress(self, trial, p) -> None:
        if p.epoch_end and self.reason is None and "val_accuracy" in p.logs:
            trial.report(p.logs["val_accuracy"], p.epoch)
            self.on_event(f"trial {trial.number} epoch {p.epoch}/{p.num_epochs}: "
                          f"val_accuracy {p.logs['val_accuracy']:.4f}")
            if trial.should_prune():
                self.reason = "pruned"
        if p.epoch_end or time.time() - self.last_progress > 2:  # for the Sweep page's progress bar
            self.last_progress = time.time()
            trial.set_user_attr("progress", {"epoch": p.epoch, "num_epochs": p.num_epochs,
                                             "fraction": round(p.fraction, 4), "eta": p.eta})

    def _stop(self) -> str | None:
        """Polled every few batches: pruned, past the time budget, or stopped by someone (looked up every 2 s)."""
        if self.reason is None and self.deadline is not None and time.time() > self.deadline:
            self.reason = "time budget"
        if self.reason is None and time.time() - self.last_look > 2:
            self.last_look = time.time()
            if stop_requested(self.study, since=self.started):
                self.reason = "stopped"
        return self.reason


def _wait_for_work(study, sweep: SweepConfig, objective: _Objective, *, heartbeat: int) -> str | None:
    """None when a trial should start, else why this worker ends. While the others' trials would finish the study,
    wait: one of them may die, and its trial is then queued again."""
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # trials of dead workers → FAIL, and queued again
        if objective.exhausted:
            return "every combination of the search space has been tried"
        if stop_requested(study, since=objective.started):
            return "stopped"
        if objective.deadline is not None and time.time() >= objective.deadline:
            return "time budget spent"
        states = [t.state for t in study.get_trials(deepcopy=False)]
        finished = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
        if finished >= sweep.num_trials:
            return f"the study has its {sweep.num_trials} trials"
        if finished + states.count(TrialState.RUNNING) < sweep.num_trials:
            return None
        time.sleep(heartbeat)


def _untried(space: tuple[Dimension, ...], trials) -> list[dict] | None:
    """The parameter sets of a finite space no trial has (None: continuous or over 10,000 sets)."""
    values = [d.values() for d in space]
    if any(v is None for v in values) or math.prod(len(v) for v in values) > 10_000:
        return None
    taken = {tuple(trial_params(t).get(d.name) for d in space) for t in trials}
    return [dict(zip([d.name for d in space], combo)) for combo in itertools.product(*values) if combo not in taken]


def _save_importances(study, trial) -> None:
    """Parameter importances (fANOVA, in the worker: it needs scikit-learn, which the dashboard never imports)."""
    if sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)) < 3:
        return
    with contextlib.suppress(ValueError, RuntimeError):  # e.g. every trial scored the same
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
        study.set_user_attr("importances", {k: round(float(v), 4) for k, v in importances.items()})


def _finish(study, parent: str, store) -> dict:
    """Record the best trial in the parent run; the last worker out also reports its test accuracy, once."""
    out = summary(study)
    if out["best_run_id"]:
        store.client.log_metric(parent, "best_val_accuracy", out["best_value"])
        store.client.set_tag(parent, "digitlab.best_run_id", out["best_run_id"])
    if not any(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False)):
        if out["best_run_id"]:
            out["best_trial_test_accuracy"] = store.get_run(out["best_run_id"]).test_accuracy
            store.client.log_metric(parent, "best_trial_test_accuracy", out["best_trial_test_accuracy"])
        store.client.set_terminated(parent, "FINISHED")
    return out


def summary(study) -> dict:
    """study, trials finished (completed or pruned), best value (validation accuracy), parameters, trial, run id."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return {"study": study.study_name, "trials_finished": sum(t.state in LIVE[:2] for t in trials),
            "num_trials": study.user_attrs["sweep"]["num_trials"],
            "best_value": best.value if best else None, "best_params": best.params if best else None,
            "best_trial": best.number if best else None,
            "best_run_id": best.user_attrs.get("run_id") if best else None, "best_trial_test_accuracy": None}
def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value).lower()
