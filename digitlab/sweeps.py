"""Hyperparameter sweeps: Optuna studies whose trials are DigitLab trainings, each an MLflow run nested under the
sweep's parent run, each a model you can pick on Results, Draw and Compare.

A study lives in Optuna's RDB storage: a SQLite file in DigitLab's data folder by default, PostgreSQL when workers
on several machines join (`--storage postgresql://…`). Any number of workers (`python -m digitlab sweep`, or the
Sweep page's background process) share one study's trials:
- creating the storage, the study and the parent run happens under a lock (a PostgreSQL advisory lock, a file lock
  beside a SQLite file): workers started at the same moment on a new database otherwise race in table creation;
- a worker that dies stops its heartbeat; the next worker to look fails its trial and queues it again
  (Optuna's `RetryHeartbeatStaleTrialCallback`), and every worker waits for the running trials before it leaves;
- a sampled parameter set that another live trial already has is skipped (the trial is marked FAIL with the user
  attribute `skipped`) and asked again, so completed trials never repeat one.

The objective is the validation accuracy of the kept model: the last epoch's `val_accuracy` (early stopping is off
in trials; the pruner stops bad trials instead, reporting each epoch's value). Trials are scored on the test set as
every DigitLab model is, for the Results page, but nothing here reads those scores except, once the sweep ends, the
best trial's, reported as "best_trial_test_accuracy".
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import itertools
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from . import config as cfg
from .data import PROJECT_DIR, home_dir
from .runs import file_lock, process_alive

PRUNERS = ("median", "hyperband", "none")
# What a sweep may search: default range (".." = a range, "," = choices), log scale, type. The bounds that are
# allowed come from RunConfig's validation: every range end is checked by building a RunConfig with it.
SEARCHABLE = {
    "learning_rate": ("0.0001..0.01", True, float),
    "dropout_rate": ("0..0.5", False, float),
    "batch_size": ("32,64,128,256", False, int),
    "hidden_units": ("32..256", True, int),
    "filters": ("8..64", True, int),  # the first block's filters; each later block doubles them (CNN only)
    "augment": ("false,true", False, bool),
    "num_epochs": ("1..{max_epochs}", False, int),  # epochs up to the sweep's cap
}
DEFAULT_PARAMS = ("learning_rate", "dropout_rate", "batch_size", "hidden_units")
_STUDY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LOCK_KEY = 0x6469676974  # PostgreSQL advisory lock id ("digit")
WORKER = f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------------------------------------------------------
# The search space and the sweep's settings
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dimension:
    name: str  # a RunConfig field
    low: float | None = None  # a range low..high, or
    high: float | None = None
    choices: tuple = ()  # a list of values
    log: bool = False

    def suggest(self, trial):
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if SEARCHABLE[self.name][2] is int:
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def values(self) -> tuple | None:
        """Every value it can take, or None for a continuous range."""
        if self.choices:
            return self.choices
        return tuple(range(self.low, self.high + 1)) if SEARCHABLE[self.name][2] is int else None

    def describe(self) -> str:
        if self.choices:
            return ",".join(str(c).lower() for c in self.choices)
        return f"{self.low:g}..{self.high:g}" + (" (log)" if self.log else "")


def parse_param(spec: str, *, max_epochs: int) -> Dimension:
    """'NAME' (its default range), 'NAME=LOW..HIGH' or 'NAME=A,B,C' → a Dimension (types checked, not bounds)."""
    name, _, text = spec.partition("=")
    name = name.strip()
    if name not in SEARCHABLE:
        raise ValueError(f"cannot search {name!r}; searchable: {', '.join(SEARCHABLE)}")
    default, log, kind = SEARCHABLE[name]
    text = (text.strip() or default).format(max_epochs=max_epochs)
    try:
        if ".." in text:
            low, high = (_value(kind, part) for part in text.split("..", 1))
            if not low < high:
                raise ValueError("the low end must be below the high end")
            if log and low <= 0:
                raise ValueError("a log-scale range must start above 0")
            return Dimension(name, low, high, log=log)
        choices = tuple(dict.fromkeys(_value(kind, part) for part in text.split(",")))
        return Dimension(name, choices=choices)
    except ValueError as error:
        raise ValueError(f"{name} must be a range like {default.format(max_epochs=max_epochs)} or choices like "
                         f"a,b,c of {kind.__name__} values, got {text!r} ({error})") from None


def _value(kind, text: str):
    text = text.strip().lower()
    if kind is bool:
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text == "true"
    return kind(text)


@dataclass(frozen=True)
class SweepConfig:
    """What every worker of a study shares. Stored in the study, so a worker joins with `--study` alone."""

    model: str = "cnn"
    preset: str = "reference"  # values for everything not searched
    params: tuple[str, ...] = DEFAULT_PARAMS  # 'NAME', 'NAME=LOW..HIGH' or 'NAME=A,B,C'
    num_trials: int = 20  # finished (completed or pruned) trials the study is done at
    max_epochs: int = 5  # epochs of every trial, or the cap when num_epochs is searched
    train_limit: int | None = None  # first N training images (None = all 60,000)
    seed: int = 0  # training seed, the same in every trial: trials differ only by their hyperparameters
    pruner: str = "median"  # "median", "hyperband" or "none"

    def __post_init__(self):
        cfg._integer("num_trials", self.num_trials, 1, 10_000)
        cfg._choice("pruner", self.pruner, PRUNERS)
        if not self.params or not isinstance(self.params, tuple):
            raise ValueError(f"params must name at least one hyperparameter to search, got {self.params!r}")
        base = self.base  # RunConfig checks model, preset, max_epochs, train_limit and seed
        if base.validation_split == 0:
            raise ValueError("a sweep chooses on validation accuracy: the preset needs a validation split > 0")
        names = [d.name for d in self.space]
        if len(set(names)) < len(names):
            raise ValueError(f"each hyperparameter may be searched once, got {', '.join(names)}")
        for dimension in self.space:
            if dimension.name == "filters" and self.model != "cnn":
                raise ValueError("filters is a CNN hyperparameter; search it with model 'cnn'")
            for value in dimension.choices or (dimension.low, dimension.high):
                try:
                    self.trial_config({dimension.name: value})
                except ValueError as error:
                    raise ValueError(f"search range {dimension.name}={dimension.describe()}: {error}") from None

    @property
    def base(self) -> cfg.RunConfig:
        """The RunConfig of a trial before its searched values: the preset, this sweep's data and epochs."""
        return cfg.preset(self.preset, model=self.model, num_epochs=self.max_epochs, train_limit=self.train_limit,
                          seed=self.seed).replace(early_stopping=None)

    @property
    def space(self) -> tuple[Dimension, ...]:
        return tuple(parse_param(spec, max_epochs=self.max_epochs) for spec in self.params)

    def trial_config(self, values: dict) -> cfg.RunConfig:
        """The RunConfig a trial trains: the base with the sampled `values` (raises ValueError naming a field)."""
        base = self.base
        if "filters" in values:
            values = {**values, "filters": tuple(int(values["filters"]) * 2 ** i for i in range(len(base.filters)))}
        return base.replace(**values)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "params": list(self.params)}

    @classmethod
    def from_options(cls, options: dict, *, stored: dict | None = None) -> SweepConfig:
        """Explicit `options` (None = not given) on top of a study's stored settings, which they must not change."""
        given = {k: tuple(v) if k == "params" else v for k, v in options.items() if v is not None}
        if stored is None:
            return cls(**given)
        stored = {**stored, "params": tuple(stored["params"])}
        changed = [f"{k}={stored[k]!r}" for k, v in given.items() if stored.get(k) != v]
        if changed:
            raise ValueError(f"this study already exists with {', '.join(changed)}; leave those options out to "
                             "join it, or start a new study under another name")
        return cls(**stored)


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not _STUDY.match(name):
        raise ValueError(f"study must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit), "
                         f"got {str(name)[:70]!r}")
    return name


# ---------------------------------------------------------------------------------------------------------------
# Storage: opening a study safely from many workers at once
# ---------------------------------------------------------------------------------------------------------------

def storage_url() -> str:
    """`$DIGITLAB_SWEEP_STORAGE`, else a SQLite file in DigitLab's data folder."""
    return os.environ.get("DIGITLAB_SWEEP_STORAGE") or f"sqlite:///{home_dir() / 'sweeps.db'}"


def shown_url(url: str) -> str:
    """The storage URL with any password hidden, for logs, MLflow params and JSON."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    return make_url(url).render_as_string(hide_password=True)


def _backend(url: str) -> str:
    """"sqlite", "postgresql", ... of a database URL; ValueError when it is not one."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        raise ValueError(f"storage must be a database URL like sqlite:///path/sweeps.db or "
                         f"postgresql://user@host/database, got {url[:100]!r}") from None


def open_storage(url: str, *, heartbeat: int | None = None) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at `url` (tables created if needed: call it under `creation_lock`)."""
    from sqlalchemy.exc import NoSuchModuleError  # noqa: PLC0415

    _backend(url)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback() if heartbeat
                else None)
    except NoSuchModuleError:
        raise ValueError(f"storage {shown_url(url)}: SQLAlchemy has no driver for it; use sqlite:/// or "
                         "postgresql://") from None


@contextlib.contextmanager
def creation_lock(url: str):
    """Serialise creating tables, studies and parent runs across workers: the first creates, the others load."""
    from sqlalchemy import create_engine, pool, text  # noqa: PLC0415

    if url.startswith("sqlite:///"):
        with file_lock(Path(url.removeprefix("sqlite:///") + ".lock")):
            yield
    elif _backend(url) == "postgresql":
        engine = create_engine(url, poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:  # the lock belongs to this session; closing it releases the lock
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
                yield
        finally:
            engine.dispose()
    else:  # other databases: start workers a few seconds apart
        yield


def stored_sweep(name: str, url: str | None = None) -> SweepConfig | None:
    """The settings of study `name`, or None when it does not exist (nothing is created)."""
    names = study_names(url)
    if name not in names:
        return None
    with creation_lock(url or storage_url()):  # not while a worker is creating it
        stored = load_study(name, url).user_attrs.get("sweep")
    return SweepConfig.from_options({}, stored=stored) if stored else None


def study_names(url: str | None = None) -> list[str]:
    """The studies in a storage, newest first ([] for a SQLite file that does not exist yet)."""
    url = url or storage_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    summaries = optuna.get_all_study_summaries(open_storage(url), include_best_trial=False)
    return [s.study_name for s in sorted(summaries, key=lambda s: s._study_id, reverse=True)]


def open_study(name: str, options: dict, *, url: str, heartbeat: int | None = None, store=None):
    """Create or join study `name` under the lock: returns (study, SweepConfig, parent run id, run store).

    options : explicit SweepConfig values (None = not given); a new study takes them, an existing one must match.
    """
    from .runs import RunStore  # noqa: PLC0415

    check_study_name(name)
    with creation_lock(url):
        study = optuna.create_study(study_name=name, storage=open_storage(url, heartbeat=heartbeat),
                                    direction="maximize", load_if_exists=True)
        sweep = SweepConfig.from_options(options, stored=study.user_attrs.get("sweep"))
        store = store or RunStore()  # opened under the lock too: a new PostgreSQL MLflow store races in its migrations
        here = shown_url(store.uri)
        if "sweep" not in study.user_attrs:
            study.set_user_attr("sweep", sweep.to_dict())
            study.set_user_attr("tracking_uri", here)
            study.set_user_attr("parent_run_id", _start_parent_run(store, name, sweep, url))
        elif study.user_attrs.get("tracking_uri") != here:
            raise ValueError(f"study {name} tracks its runs in {study.user_attrs.get('tracking_uri')}, but this "
                             f"worker's MLflow store is {here}; set MLFLOW_TRACKING_URI to the study's store")
    study.sampler = optuna.samplers.TPESampler(constant_liar=True)  # parallel workers: propose away from running
    study.pruner = _pruner(sweep)
    return study, sweep, study.user_attrs["parent_run_id"], store


def _pruner(sweep: SweepConfig):
    if sweep.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3)
    if sweep.pruner == "hyperband":
        epochs = max([d.high or max(d.choices) for d in sweep.space if d.name == "num_epochs"], default=sweep.max_epochs)
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def _start_parent_run(store, name: str, sweep: SweepConfig, url: str) -> str:
    from mlflow.entities import Param  # noqa: PLC0415

    run = store.client.create_run(store.experiment_id, run_name=f"sweep {name}",
                                  tags={"digitlab.role": "sweep", "digitlab.sweep": name})
    params = {"sweep.study": name, "sweep.storage": shown_url(url)}
    params.update({f"sweep.{k}": str(v) for k, v in sweep.to_dict().items() if k != "params"})
    params.update({f"search.{d.name}": d.describe() for d in sweep.space})
    store.client.log_batch(run.info.run_id, params=[Param(k, v[:6000]) for k, v in params.items()])
    return run.info.run_id


# ---------------------------------------------------------------------------------------------------------------
# A worker: trials until the study has its trials, this worker's time budget is spent, or someone stops the sweep
# ---------------------------------------------------------------------------------------------------------------

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
        twins = [t.number for t in others if _params(t) == values]
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


def _params(trial) -> dict:
    """A trial's parameters, also for a queued one (enqueue_trial keeps them aside until the trial starts)."""
    return trial.params or trial.system_attrs.get("fixed_params", {})


def _untried(space: tuple[Dimension, ...], trials) -> list[dict] | None:
    """The parameter sets of a finite space no trial has (None: continuous or over 10,000 sets)."""
    values = [d.values() for d in space]
    if any(v is None for v in values) or _product(len(v) for v in values) > 10_000:
        return None
    taken = {tuple(_params(t).get(d.name) for d in space) for t in trials}
    return [dict(zip([d.name for d in space], combo)) for combo in itertools.product(*values) if combo not in taken]


def _product(numbers) -> int:
    out = 1
    for n in numbers:
        out *= n
    return out


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


# ---------------------------------------------------------------------------------------------------------------
# Reading and steering a study (the CLI's summary, the Sweep page)
# ---------------------------------------------------------------------------------------------------------------

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


def trial_rows(study) -> list[dict]:
    """Each trial as the Sweep page shows it: number, state, value (validation accuracy), params, values (per
    epoch), epochs, seconds, progress (of a running one), run_id, worker and a note saying why it ended so."""
    states = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.RUNNING: "running",
              TrialState.WAITING: "queued", TrialState.FAIL: "failed"}
    rows = []
    for t in study.get_trials(deepcopy=False):
        state, attrs = states[t.state], t.user_attrs
        note = attrs.get("stopped") or attrs.get("skipped") or ""
        if t.state == TrialState.FAIL:
            state = "skipped" if "skipped" in attrs else "failed"
            note = note or "its worker stopped (no heartbeat) or hit an error; queued again"
        if "failed_trial" in t.system_attrs:
            note = f"retry of #{t.system_attrs['failed_trial']}" + (f"; {note}" if note else "")
        end = t.datetime_complete or (t.datetime_start and datetime.datetime.now())
        rows.append({"number": t.number, "state": state, "value": t.value, "params": _params(t),
                     "values": [v for _, v in sorted(t.intermediate_values.items())],
                     "epochs": attrs.get("epochs_run"), "progress": attrs.get("progress"),
                     "seconds": (end - t.datetime_start).total_seconds() if t.datetime_start else None,
                     "run_id": attrs.get("run_id"), "worker": attrs.get("worker", ""), "note": note})
    return rows


def eta_seconds(rows: list[dict], num_trials: int) -> float | None:
    """Seconds until the study has its trials, from the median trial so far, shared by the running workers."""
    durations = sorted(r["seconds"] for r in rows if r["state"] in ("complete", "pruned") and r["seconds"])
    if not durations:
        return None
    typical = durations[len(durations) // 2]
    running = [r for r in rows if r["state"] == "running"]
    left = max(0, num_trials - len(durations) - len(running)) * typical
    left += sum(typical * (1 - ((r["progress"] or {}).get("fraction") or 0)) for r in running)
    return left / max(1, len(running))


def load_study(name: str, url: str | None = None):
    return optuna.load_study(study_name=check_study_name(name), storage=open_storage(url or storage_url()))


def request_stop(name: str, url: str | None = None) -> None:
    """Ask every worker of the study, on any machine, to stop: running trials end within seconds, kept as pruned."""
    load_study(name, url).set_user_attr("stop_requested", time.time())


def stop_requested(study, *, since: float) -> bool:
    return study.user_attrs.get("stop_requested", 0) > since


def start_background(name: str, sweep: SweepConfig, *, url: str | None = None, timeout: float | None = None,
                     limits=None) -> int:
    """Start a niced worker process on this machine (the Sweep page's); returns its pid. Its output goes to
    <home>/sweeps/<study>.log. Raises ValueError in the public demo, or when the study exists with other settings."""
    if limits is not None and limits.public:
        raise ValueError("sweeps are off in the public demo: each trial is a full training. Run DigitLab on your "
                         "own machine to sweep")
    check_study_name(name)
    url = url or storage_url()
    stored = stored_sweep(name, url)
    if stored is not None and stored != sweep:
        SweepConfig.from_options(sweep.to_dict(), stored=stored.to_dict())  # raises, naming what differs
    folder = home_dir() / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    command = ["nice", "-n", "10", sys.executable, "-m", "digitlab", "sweep", "--study", name, "--storage", url,
               "--model", sweep.model, "--preset", sweep.preset, "--trials", str(sweep.num_trials),
               "--max-epochs", str(sweep.max_epochs), "--seed", str(sweep.seed), "--pruner", sweep.pruner, "--json"]
    command += [f"--param={spec}" for spec in sweep.params]
    command += ["--train-limit", str(sweep.train_limit)] if sweep.train_limit else []
    command += ["--timeout", str(timeout / 60)] if timeout else []
    with open(folder / f"{name}.log", "ab") as log:
        worker = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=PROJECT_DIR,
                                  start_new_session=True)
    (folder / f"{name}.json").write_text(json.dumps({"pid": worker.pid, "started": time.time()}))
    return worker.pid


def background_alive(name: str) -> bool:
    """True while the worker the Sweep page started for study `name` runs."""
    try:
        record = json.loads((home_dir() / "sweeps" / f"{check_study_name(name)}.json").read_text())
    except (OSError, ValueError):
        return False
    with contextlib.suppress(OSError):
        if process_alive(record["pid"]):  # and not a reused pid (between fork and exec it shows `nice`)
            command = Path(f"/proc/{record['pid']}/cmdline").read_bytes()
            return b"digitlab" in command or time.time() - record["started"] < 10
    return False


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value).lower()
