"""Where sweeps live: Optuna studies in RDB storage (a SQLite file in DigitLab's data folder by default, PostgreSQL
when workers on several machines join), opened safely by many workers at once, read and steered by the Sweep page.

- Creating the storage's tables, a study and the sweep's parent MLflow run happens under a lock (a PostgreSQL
  advisory lock, a file lock beside a SQLite file): workers started at the same moment on a new database otherwise
  race in table creation. The first worker stores the study's settings; the others join with its name alone.
- Heartbeats: a worker that dies stops beating, and the next worker that looks fails its trial and queues it again
  (Optuna's `RetryHeartbeatStaleTrialCallback`).
- Stop: a time stamp in the study's user attributes; every worker, on any machine, polls it.
Nothing here imports TensorFlow or scikit-learn: the dashboard's server uses it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from .data import PROJECT_DIR, home_dir
from .runs import file_lock, process_alive
from .sweeps import SweepConfig, check_study_name

_LOCK_KEY = 0x6469676974  # PostgreSQL advisory lock id ("digit")


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
    """Optuna's RDB storage at `url`, tables created if needed, under `creation_lock`: a page or a reader opening a
    new storage while a worker creates it would otherwise race it (SQLite: UNIQUE constraint on alembic_version)."""
    with creation_lock(url):
        return _rdb_storage(url, heartbeat=heartbeat)


def _rdb_storage(url: str, *, heartbeat: int | None = None) -> optuna.storages.RDBStorage:
    """open_storage without the lock, for callers that already hold it."""
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
    url = url or storage_url()
    with creation_lock(url):  # not while a worker is creating it
        stored = optuna.load_study(study_name=name, storage=_rdb_storage(url)).user_attrs.get("sweep")
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

    from sqlalchemy.exc import OperationalError  # noqa: PLC0415

    check_study_name(name)
    try:
        with creation_lock(url):
            study = optuna.create_study(study_name=name, storage=_rdb_storage(url, heartbeat=heartbeat),
                                        direction="maximize", load_if_exists=True)
            sweep = SweepConfig.from_options(options, stored=study.user_attrs.get("sweep"))
            store = store or RunStore()  # under the lock too: a new PostgreSQL MLflow store races in its migrations
            here = shown_url(store.uri)
            if "sweep" not in study.user_attrs:
                study.set_user_attr("sweep", sweep.to_dict())
                study.set_user_attr("tracking_uri", here)
                study.set_user_attr("parent_run_id", _start_parent_run(store, name, sweep, url))
            elif study.user_attrs.get("tracking_uri") != here:
                raise ValueError(f"study {name} tracks its runs in {study.user_attrs.get('tracking_uri')}, but this "
                                 f"worker's MLflow store is {here}; set MLFLOW_TRACKING_URI to the study's store")
    except OperationalError as error:  # no such host or database, refused, wrong password
        raise ValueError(f"cannot open the storage {shown_url(url)}: {str(error.orig).strip().splitlines()[0]}; "
                         "check the URL and that the database exists") from None
    study.sampler = optuna.samplers.TPESampler(constant_liar=True)  # parallel workers: propose away from running
    study.pruner = _pruner(sweep)
    return study, sweep, study.user_attrs["parent_run_id"], store


def _pruner(sweep: SweepConfig):
    if sweep.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3)
    if sweep.pruner == "hyperband":
        epochs = [max(d.values()) for d in sweep.space if d.name == "num_epochs"]
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs[0] if epochs else sweep.max_epochs)
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
# Reading and steering a study (the Sweep page)
# ---------------------------------------------------------------------------------------------------------------

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
        elif t.state == TrialState.WAITING:  # a retry, or an untried set queued in place of a skipped twin
            note = "runs when a worker is free (after a Stop: when the sweep is started again)"
        if "failed_trial" in t.system_attrs:
            note = f"retry of #{t.system_attrs['failed_trial']}" + (f"; {note}" if note else "")
        end = t.datetime_complete or (t.datetime_start and datetime.datetime.now())
        rows.append({"number": t.number, "state": state, "value": t.value, "params": trial_params(t),
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


def worker_log(name: str) -> str:
    """The last line the Sweep page's worker for study `name` wrote (its error, when it failed)."""
    with contextlib.suppress(OSError):
        lines = (home_dir() / "sweeps" / f"{check_study_name(name)}.log").read_text().strip().splitlines()
        return lines[-1] if lines else "it wrote nothing"
    return "it left no log"


def trial_params(trial) -> dict:
    """A trial's parameters, also for a queued one (enqueue_trial keeps them aside until the trial starts)."""
    return trial.params or trial.system_attrs.get("fixed_params", {})
