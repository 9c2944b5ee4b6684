"""The training queue: job records in SQLite, submitted, read, listed, cancelled and pruned from any process.

Every change is one SQLite transaction (`BEGIN IMMEDIATE`), so four processes submitting at once keep the counts
right and a job read while the queue changes is always whole. A job's live progress is a small JSON file in its
folder (<home>/jobs/<id>/progress.json, written by its worker several times a second), beside the worker's log and
the `cancel` flag. Workers are started by the queue runner (`worker.py`): a job never waits for somebody to submit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path

from .config import RunConfig
from .costs import estimate_seconds
from .data import home_dir
from .limits import LOCAL, Limits

ACTIVE, DONE = ("queued", "running"), ("finished", "failed", "cancelled", "interrupted")
_JOB_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{16}$")  # the random part makes a job's link unguessable
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, preset TEXT NOT NULL, config TEXT NOT NULL,
    created REAL NOT NULL, started REAL, ended REAL, pid INTEGER, run_id TEXT, error TEXT, stopped TEXT,
    summary TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0, max_seconds REAL, max_running INTEGER NOT NULL,
    max_runs_kept INTEGER, network TEXT NOT NULL DEFAULT '', max_runs_per_network INTEGER);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, status);
"""
# Columns a jobs.db made before them gets on first use.
_ADDED = {"network": "TEXT NOT NULL DEFAULT ''", "max_runs_per_network": "INTEGER"}


@dataclass
class Job:
    job_id: str
    config: RunConfig
    preset: str
    owner: str  # who submitted it: a visitor's id in the dashboard, "cli" otherwise
    status: str  # queued, running, finished, failed, cancelled, interrupted
    created: float
    started: float | None = None
    ended: float | None = None
    pid: int | None = None
    run_id: str | None = None
    error: str | None = None
    stopped: str | None = None  # why training ended early, if it did
    summary: dict | None = None  # pipeline.Outcome.summary() once finished
    cancel_requested: bool = False  # Stop was pressed; the worker is stopping
    max_seconds: float | None = None  # the wall-time cap it runs under (public demo)
    max_running: int = 1  # trainings at once on the host, when it was submitted
    max_runs_kept: int | None = None  # runs the store keeps (public demo)
    network: str = ""  # the submitting visitor's network, keyed (`identity.network_of`); "" when unknown
    max_runs_per_network: int | None = None  # ... of which one network's may be (public demo)
    progress: dict | None = None  # the latest progress snapshot written by the worker
    queue_position: int | None = None  # 1 = next to start
    wait_seconds: float | None = None  # estimated wait before a queued job starts

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def jobs_dir() -> Path:
    return home_dir() / "jobs"


def job_folder(job_id: str) -> Path:
    """<home>/jobs/<id>: progress, cancel flag and worker log. Raises ValueError for a malformed id."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ValueError(f"job id must look like 20260101-120000-0123456789abcdef, got {str(job_id)[:60]!r}")
    return jobs_dir() / job_id


# ---------------------------------------------------------------------------------------------------------------
# Submitting, reading, cancelling
# ---------------------------------------------------------------------------------------------------------------

def submit_job(config: RunConfig, *, preset: str = "", owner: str = "", network: str = "",
               limits: Limits = LOCAL) -> Job:
    """Queue a training job; the queue runner starts it when one of the host's `limits.max_running` slots is free.

    The caps are enforced here, on the server: a config over them, a visitor who already has
    `limits.max_jobs_per_visitor` jobs queued or running, a network with `limits.max_jobs_per_network` (a script
    that drops its cookie is a new visitor each time, never a new network), or a host with `limits.max_queued` jobs
    waiting gets a ValueError saying what to do.
    """
    from .worker import ensure_runner  # noqa: PLC0415 - the runner module imports this one

    limits.check(config)
    job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(8)}"
    with _transaction() as db:
        if limits.max_jobs_per_visitor is not None:
            mine = db.execute("SELECT job_id FROM jobs WHERE owner = ? AND status IN ('queued', 'running') "
                              "ORDER BY created", (owner,)).fetchall()
            if len(mine) >= limits.max_jobs_per_visitor:
                raise ValueError(f"you already have a training queued or running (job {mine[-1][0]}); wait for it "
                                 "to finish or stop it, then start the next one")
        if network and limits.max_jobs_per_network is not None:
            near = db.execute("SELECT COUNT(*) FROM jobs WHERE network = ? AND status IN ('queued', 'running')",
                              (network,)).fetchone()[0]
            if near >= limits.max_jobs_per_network:
                raise ValueError(f"{near} trainings from your network are already queued or running, the most the "
                                 "public demo takes from one network so that others get their turn; start yours "
                                 "when one of them has finished")
        if limits.max_queued is not None:
            waiting = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
            if waiting >= limits.max_queued:
                minutes = max(1, round(_wait_seconds(db, before=time.time() + 1) / 60))
                raise ValueError(f"the demo is busy: {waiting} trainings are waiting for the host's "
                                 f"{limits.max_running} training slot(s). Try again in about {minutes} min.")
        db.execute("INSERT INTO jobs (job_id, owner, network, status, preset, config, created, max_seconds, "
                   "max_running, max_runs_kept, max_runs_per_network) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                   (job_id, owner, network, preset, json.dumps(config.to_params()), time.time(), limits.max_seconds,
                    limits.max_running, limits.max_runs_kept, limits.max_runs_per_network))
    job_folder(job_id).mkdir(parents=True, exist_ok=True)
    ensure_runner()
    return get_job(job_id)


def get_job(job_id: str) -> Job:
    """The job with its latest progress (and queue position and wait, when queued). Raises ValueError for a
    malformed or unknown id."""
    folder = job_folder(job_id)
    with _transaction(write=False) as db:  # one snapshot: the row and the queue ahead of it agree
        row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise ValueError(f"no job {job_id}: it may have been removed. Start a new run.")
        job = _job(row)
        if job.status == "queued":
            job.queue_position = 1 + db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND created < ?",
                                                (job.created,)).fetchone()[0]
            job.wait_seconds = _wait_seconds(db, before=job.created)
    with contextlib.suppress(OSError, ValueError):
        job.progress = json.loads((folder / "progress.json").read_text())
    return job


def list_jobs(*, owner: str | None = None, active: bool = False) -> list[Job]:
    """Jobs newest first; only `owner`'s when given; only queued or running ones when `active`."""
    query, args = "SELECT job_id FROM jobs WHERE 1 = 1", []
    if owner is not None:
        query, args = query + " AND owner = ?", [owner]
    if active:
        query += " AND status IN ('queued', 'running')"
    with _transaction(write=False) as db:
        ids = [row[0] for row in db.execute(query + " ORDER BY created DESC", args)]
    return [get_job(i) for i in ids]


def cancel_job(job_id: str, *, owner: str | None = None) -> None:
    """Take a queued job out of the queue now, or ask a running one to stop (it does within a fraction of a
    second, then tests and keeps what it learned).

    owner : when given, only that visitor's job may be cancelled (the public demo).
    """
    folder = job_folder(job_id)
    with _transaction() as db:
        row = db.execute("SELECT owner, status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise ValueError(f"no job {job_id}: it may have been removed. Start a new run.")
        if owner is not None and row["owner"] != owner:
            raise ValueError(f"job {job_id} belongs to another visitor; you can only stop your own jobs")
        if row["status"] == "queued":
            db.execute("UPDATE jobs SET status = 'cancelled', stopped = 'cancelled', ended = ? WHERE job_id = ?",
                       (time.time(), job_id))
        elif row["status"] == "running":
            db.execute("UPDATE jobs SET cancel_requested = 1 WHERE job_id = ?", (job_id,))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cancel").touch()  # what the worker polls between batches


def update_job(job_id: str, **values) -> None:
    """Set columns of a job's record (the worker and the runner report through this)."""
    for key in ("summary",):
        if key in values and values[key] is not None:
            values[key] = json.dumps(values[key])
    columns = ", ".join(f"{name} = ?" for name in values)
    with _transaction() as db:
        db.execute(f"UPDATE jobs SET {columns} WHERE job_id = ?", (*values.values(), job_id))


def prune_jobs(*, keep_run_ids: set[str], older_than: float = 3600) -> list[str]:
    """Delete finished jobs (records and folders) whose run is gone or that made no run, once `older_than` seconds
    old; returns their ids. Bounds the public demo's disk together with RunStore.evict."""
    cutoff = time.time() - older_than
    with _transaction() as db:
        rows = db.execute("SELECT job_id, run_id FROM jobs WHERE status NOT IN ('queued', 'running') AND "
                          "COALESCE(ended, created) < ?", (cutoff,)).fetchall()
        gone = [r["job_id"] for r in rows if r["run_id"] is None or r["run_id"] not in keep_run_ids]
        db.executemany("DELETE FROM jobs WHERE job_id = ?", [(job_id,) for job_id in gone])
    for job_id in gone:
        shutil.rmtree(jobs_dir() / job_id, ignore_errors=True)
    return gone


def steady_eta(eta: float, *, shown: tuple[float, float] | None, now: float) -> float:
    """The seconds left to show, given the worker's latest `eta` and what was `shown` (value, time) before.

    It counts down with the clock and moves a third of the way toward `eta`, by at most a tenth of itself (or 1 s)
    per second: a worker's ETA jumps when its host is busy for a moment, and a number that jumps reads as a guess.
    """
    if shown is None:
        return eta
    counted_down = max(0.0, shown[0] - (now - shown[1]))
    most = max(1.0, 0.1 * counted_down) * max(0.0, now - shown[1])
    return counted_down + min(most, max(-most, 0.3 * (eta - counted_down)))


# ---------------------------------------------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _transaction(*, write: bool = True):
    """One transaction on <home>/jobs/jobs.db (BEGIN IMMEDIATE when writing: writers queue, never interleave)."""
    jobs_dir().mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(jobs_dir() / "jobs.db", timeout=30, isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(_SCHEMA)
        present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        for column, kind in _ADDED.items():
            if column not in present:
                with contextlib.suppress(sqlite3.OperationalError):  # another process added it just now
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()


def _job(row: sqlite3.Row) -> Job:
    values = {f.name: row[f.name] for f in fields(Job) if f.name in row.keys()}
    values["config"] = RunConfig.from_params(json.loads(row["config"]))
    values["summary"] = json.loads(row["summary"]) if row["summary"] else None
    values["cancel_requested"] = bool(row["cancel_requested"])
    return Job(**values)


def _wait_seconds(db: sqlite3.Connection, *, before: float) -> float:
    """Estimated seconds before a job queued at `before` starts: what is left of the running jobs (their ETA, else
    the estimate minus the time spent) and the estimates of the jobs queued ahead of it, over the host's slots."""
    left, slots = 0.0, 1
    for row in db.execute("SELECT job_id, config, started, max_running FROM jobs WHERE status = 'running'"):
        slots = max(slots, row["max_running"])
        progress = {}
        with contextlib.suppress(OSError, ValueError):
            progress = json.loads((jobs_dir() / row["job_id"] / "progress.json").read_text())
        spent = time.time() - (row["started"] or time.time())
        estimate = estimate_seconds(RunConfig.from_params(json.loads(row["config"])))
        left += progress.get("eta") or max(0.0, estimate - spent)
    for row in db.execute("SELECT config FROM jobs WHERE status = 'queued' AND created < ?", (before,)):
        left += estimate_seconds(RunConfig.from_params(json.loads(row["config"])))
    return left / slots


def write_json(path: Path, value) -> None:
    """Write JSON atomically: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)
