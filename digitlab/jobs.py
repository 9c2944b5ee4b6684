"""Background training jobs: a queue of job records, a worker process per running job, time estimates."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import shlex
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np

from .config import RunConfig, resolve_precision
from .limits import LOCAL, Limits
from .data import MNIST, PROJECT_DIR, home_dir, load_mnist
from .runs import file_lock, process_alive


# ---------------------------------------------------------------------------------------------------------------
# Background jobs: one folder per job under <home>/jobs/<id>/ holding job.json (the record), progress.json (written
# by the worker at most every 0.25 s, atomically) and a `cancel` flag file. A worker is a separate, niced process
# (`python -m digitlab.jobs <folder>`): Keras in a thread of the Streamlit server starves the server.
# ---------------------------------------------------------------------------------------------------------------

ACTIVE, DONE = ("queued", "running"), ("finished", "failed", "cancelled", "interrupted")
_JOB_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{16}$")  # the random part makes a job's link unguessable


@dataclass
class Job:
    job_id: str
    config: RunConfig
    preset: str
    owner: str  # who submitted it (a browser session in the dashboard, "cli" otherwise)
    status: str  # queued, running, finished, failed, cancelled, interrupted
    created: float
    started: float | None = None
    ended: float | None = None
    pid: int | None = None
    run_id: str | None = None
    error: str | None = None
    stopped: str | None = None  # why training ended early, if it did
    summary: dict | None = None  # Outcome.summary() once finished
    progress: dict | None = None  # the latest progress snapshot (see _progress_dict)
    queue_position: int | None = None  # 1 = next to start
    wait_seconds: float | None = None  # estimated wait before a queued job starts
    max_seconds: float | None = None  # the wall-time cap it runs under (public demo)
    max_running: int = 1
    max_runs_kept: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def jobs_dir() -> Path:
    return home_dir() / "jobs"


def submit_job(config: RunConfig, *, preset: str = "", owner: str = "", limits: Limits = LOCAL) -> Job:
    """Queue a training job and start it if one of the host's `limits.max_running` slots is free.

    The caps are enforced here, on the server: a config over them, or a visitor who already has
    `limits.max_jobs_per_visitor` jobs queued or running, gets a ValueError saying what to do.
    """
    limits.check(config)
    job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(8)}"
    record = {"job_id": job_id, "config": config.to_params(), "preset": preset, "owner": owner,
              "status": "queued", "created": time.time(), "max_seconds": limits.max_seconds,
              "max_running": limits.max_running, "max_runs_kept": limits.max_runs_kept}
    with _lock():
        if limits.max_jobs_per_visitor is not None:
            mine = [r["job_id"] for r in _records() if r.get("owner") == owner and r["status"] in ACTIVE
                    and (r["status"] == "queued" or _worker_alive(r))]
            if len(mine) >= limits.max_jobs_per_visitor:
                raise ValueError(f"you already have a training queued or running (job {mine[-1]}); wait for it "
                                 "to finish or stop it, then start the next one")
        (jobs_dir() / job_id).mkdir(parents=True)
        write_json(jobs_dir() / job_id / "job.json", record)
    schedule(max_running=limits.max_running)
    return get_job(job_id)


def get_job(job_id: str) -> Job:
    """The job's record with its latest progress. Raises ValueError for a malformed or unknown id."""
    folder = _job_folder(job_id)
    record = read_json(folder / "job.json")
    if record["status"] == "running" and not _worker_alive(record):
        record["status"], record["error"] = "interrupted", "the training process ended unexpectedly"
    job = Job(**{k: v for k, v in record.items() if k != "config"}, config=RunConfig.from_params(record["config"]))
    progress = folder / "progress.json"
    if progress.exists():
        with contextlib.suppress(OSError, ValueError):
            job.progress = read_json(progress)
    if job.status == "queued":
        records = _records()
        queued = [r["job_id"] for r in records if r["status"] == "queued"]
        job.queue_position = 1 + queued.index(job_id)
        job.wait_seconds = _wait_seconds(records, queued[: job.queue_position - 1], record.get("max_running", 1))
    return job


def _wait_seconds(records: list[dict], ahead: list[str], slots: int) -> float:
    """Estimated seconds before a queued job starts: what is left of the running jobs (their ETA, else the
    estimate minus the time spent) and of the queued jobs `ahead` of it, shared over the host's `slots`."""
    left = 0.0
    for record in records:
        if record["status"] == "running":
            progress = {}
            with contextlib.suppress(OSError, ValueError):
                progress = read_json(jobs_dir() / record["job_id"] / "progress.json")
            spent = time.time() - (record.get("started") or time.time())
            left += progress.get("eta") or max(0.0, estimate_seconds(RunConfig.from_params(record["config"])) - spent)
        elif record["job_id"] in ahead:
            left += estimate_seconds(RunConfig.from_params(record["config"]))
    return left / max(1, slots)


def list_jobs(*, owner: str | None = None) -> list[Job]:
    """Jobs newest first, only `owner`'s when given."""
    ids = [r["job_id"] for r in _records() if owner is None or r.get("owner") == owner]
    return [get_job(i) for i in reversed(ids)]


def cancel_job(job_id: str, *, owner: str | None = None) -> None:
    """Cancel a queued job now, or ask a running one to stop within a fraction of a second.

    owner : when given, only that visitor's job may be cancelled (the public demo).
    """
    folder = _job_folder(job_id)
    with _lock():
        record = read_json(folder / "job.json")
        if owner is not None and record.get("owner") != owner:
            raise ValueError(f"job {job_id} belongs to another visitor; you can only stop your own jobs")
        if record["status"] == "queued":
            record.update(status="cancelled", ended=time.time(), stopped="cancelled")
            write_json(folder / "job.json", record)
        elif record["status"] == "running":
            (folder / "cancel").touch()


def schedule(*, max_running: int = 1) -> None:
    """Start queued jobs, oldest first, while fewer than `max_running` are running; mark dead workers."""
    with _lock():
        records = _records()
        running = 0
        for record in records:
            if record["status"] == "running":
                if _worker_alive(record):
                    running += 1
                else:
                    record.update(status="interrupted", ended=time.time(),
                                  error="the training process ended unexpectedly")
                    write_json(jobs_dir() / record["job_id"] / "job.json", record)
        for record in records:
            if record["status"] == "queued" and running < max_running:
                folder = jobs_dir() / record["job_id"]
                with open(folder / "worker.log", "ab") as log:
                    worker = subprocess.Popen([sys.executable, "-m", "digitlab.jobs", str(folder)],
                                              stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                              start_new_session=True, cwd=PROJECT_DIR)
                record.update(status="running", pid=worker.pid, started=time.time())
                write_json(folder / "job.json", record)
                running += 1


def run_job(folder: Path) -> None:
    """The worker's body: train the job in `folder`, reporting progress to files, then start the next job."""
    with contextlib.suppress(OSError):
        os.nice(10)  # the dashboard stays responsive while training
    record = read_json(folder / "job.json")
    config = RunConfig.from_params(record["config"])
    cancel_flag = folder / "cancel"

    trace = {"epoch": [], "loss": [], "accuracy": []}  # running train metrics within epochs, for live curves

    def on_progress(progress):
        if "loss" in progress.logs:
            trace["epoch"].append(round(progress.epoch - 1 + progress.batch / progress.batches_per_epoch, 4))
            trace["loss"].append(progress.logs["loss"])
            trace["accuracy"].append(progress.logs.get("accuracy"))
        write_json(folder / "progress.json", {**_progress_dict(progress), "trace": trace})

    started, max_seconds = time.monotonic(), record.get("max_seconds")

    def should_stop():
        if cancel_flag.exists():
            return "cancelled"
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            return "time limit"
        return None

    update = {}
    try:
        from .pipeline import run_training  # noqa: PLC0415

        outcome = run_training(config, preset=record["preset"], on_progress=on_progress, should_stop=should_stop,
                               tags={"digitlab.job": record["job_id"], "digitlab.owner": record.get("owner", "")})
        stopped = outcome.result.stopped
        update = dict(status="cancelled" if stopped == "cancelled" else "finished", run_id=outcome.run_id,
                      stopped=stopped, summary=outcome.summary())
    except Exception as error:  # the record says what went wrong; the worker log keeps the traceback
        traceback.print_exc()
        update = dict(status="failed", error=f"{type(error).__name__}: {error}")
    finally:
        with _lock():
            record = read_json(folder / "job.json")
            record.update(ended=time.time(), **update)
            if not update:
                record.update(status="failed", error="the worker stopped before finishing")
            write_json(folder / "job.json", record)
        if record.get("max_runs_kept") is not None and update.get("run_id"):
            from .runs import RunStore  # noqa: PLC0415

            with contextlib.suppress(Exception):  # a failed eviction must not fail the finished run
                RunStore().evict(keep=record["max_runs_kept"])
        schedule(max_running=record.get("max_running", 1))


def estimate_seconds(config: RunConfig) -> float:
    """Rough wall time of a run on this kind of machine (2 cores): start-up + epochs × per-epoch cost.

    Per epoch: 2.9 ms per batch of overhead + training FLOPs at ~119 GFLOP/s, fitted to plain-Keras timings of the
    reference CNN (12 s at batch 32, 8 s at batch 128 on 54k images), divided by DigitLab's measured speed-up over
    plain Keras (1.6× with bfloat16, 1.19× without; benchmarks/RESULTS.md); augmentation adds ~30%.
    """
    images = config.num_train_images
    batches = int(np.ceil(images / config.batch_size))
    per_epoch = batches * 2.9e-3 + images * 3 * forward_flops(config) / 119e9
    per_epoch /= 1.6 if resolve_precision(config.precision) == "bfloat16" else 1.19
    per_epoch *= 1.3 if config.augment else 1.0
    return 8.0 + config.num_epochs * per_epoch


def forward_flops(config: RunConfig) -> float:
    """Multiply-adds × 2 of one forward pass for one image."""
    if config.model == "ann":
        return 2 * (784 * config.hidden_units + config.hidden_units * 10)
    flops = sum(2 * size * size * 9 * channels * filters for size, channels, filters in config.convolutions())
    return flops + 2 * (config.flat_features * config.hidden_units + config.hidden_units * 10)


def write_json(path: Path, value) -> None:
    """Write JSON atomically: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def read_json(path: Path):
    return json.loads(path.read_text())


def _progress_dict(p) -> dict:
    return {"epoch": p.epoch, "num_epochs": p.num_epochs, "batch": p.batch, "batches_per_epoch": p.batches_per_epoch,
            "fraction": p.fraction, "elapsed": p.elapsed, "eta": p.eta, "logs": p.logs, "history": p.history,
            "time": time.time()}


def _job_folder(job_id: str) -> Path:
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ValueError(f"job id must look like 20260101-120000-0123456789abcdef, got {str(job_id)[:60]!r}")
    folder = jobs_dir() / job_id
    if not (folder / "job.json").exists():
        raise ValueError(f"no job {job_id}: it may have been removed. Start a new run.")
    return folder


def _records() -> list[dict]:
    """All job records, oldest first."""
    out = []
    if jobs_dir().exists():
        for folder in sorted(jobs_dir().iterdir()):
            with contextlib.suppress(OSError, ValueError):
                if _JOB_ID.match(folder.name):
                    out.append(read_json(folder / "job.json"))
    return sorted(out, key=lambda record: record["created"])


def _worker_alive(record: dict) -> bool:
    """True when the record's pid is a live DigitLab worker (not dead, not a zombie, not a reused pid)."""
    if not process_alive(record.get("pid")):
        return False
    with contextlib.suppress(OSError):
        if b"digitlab.jobs" in Path(f"/proc/{int(record['pid'])}/cmdline").read_bytes():
            return True
    # Between fork and exec the child still shows the parent's command line: give it a few seconds.
    return time.time() - record.get("started", 0) < 10


def _lock():
    return file_lock(jobs_dir() / ".lock")


if __name__ == "__main__":
    run_job(Path(sys.argv[1]))
