"""Background training processes: the queue runner, and the worker that trains one job.

The runner (`python -m digitlab.worker --runner`) is one process per host, held by an exclusive lock on
<home>/jobs/runner.lock. Twice a second it marks workers that died (killed, out of memory) as interrupted and starts
queued jobs, oldest first, while fewer than the host's `max_running` train; it leaves when nothing is queued or
running. So a dead worker's slot frees and the next job starts within a second or two, with nobody submitting.

A worker (`python -m digitlab.worker JOB_ID`) is a separate, niced process: Keras `fit` in a thread of the
Streamlit server froze its UI for 12 s and ran ~20× slower. It reports progress, phase (starting, training,
testing, saving) and an ETA for the whole run to its job folder several times a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .config import RunConfig
from .costs import estimate_seconds, finishing_seconds
from .data import PROJECT_DIR
from .jobs import _transaction, get_job, job_folder, jobs_dir, prune_jobs, update_job, write_json
from .runs import process_alive

POLL_SECONDS = 0.5


# ---------------------------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------------------------

def ensure_runner() -> None:
    """Start the queue runner unless one is alive (a second one started in a race leaves at once)."""
    lock = _runner_lock_path()
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a runner holds it
        fcntl.flock(handle, fcntl.LOCK_UN)
    with open(jobs_dir() / "runner.log", "ab") as log:
        subprocess.Popen([sys.executable, "-m", "digitlab.worker", "--runner"], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=PROJECT_DIR)


def run_queue() -> None:
    """The runner's loop (see the module docstring); returns at once if another runner holds the lock."""
    with open(_runner_lock_path(), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        children: dict[str, subprocess.Popen] = {}
        idle_since = None
        while True:
            for job_id, child in list(children.items()):
                if child.poll() is not None:  # reaped: no zombies, and a dead worker is seen at once
                    del children[job_id]
            busy = _schedule(children)
            if busy:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 2:
                return
            time.sleep(POLL_SECONDS)


def _schedule(children: dict) -> bool:
    """Mark dead workers interrupted, start queued jobs into free slots; True while anything is queued or running."""
    with _transaction() as db:
        running = db.execute("SELECT job_id, pid, started FROM jobs WHERE status = 'running'").fetchall()
        alive = 0
        for row in running:
            if row["job_id"] in children or _worker_alive(row["pid"], row["started"]):
                alive += 1
            else:
                db.execute("UPDATE jobs SET status = 'interrupted', ended = ?, error = ? WHERE job_id = ?",
                           (time.time(), "the training process ended unexpectedly (killed or out of memory)",
                            row["job_id"]))
        queued = db.execute("SELECT job_id, max_running FROM jobs WHERE status = 'queued' ORDER BY created")
        queued = queued.fetchall()
        for row in queued:
            if alive >= row["max_running"]:
                break
            folder = job_folder(row["job_id"])
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "worker.log", "ab") as log:
                child = subprocess.Popen([sys.executable, "-m", "digitlab.worker", row["job_id"]], stdout=log,
                                         stderr=log, stdin=subprocess.DEVNULL, cwd=PROJECT_DIR)
            children[row["job_id"]] = child
            db.execute("UPDATE jobs SET status = 'running', pid = ?, started = ? WHERE job_id = ?",
                       (child.pid, time.time(), row["job_id"]))
            alive += 1
        return bool(alive or len(queued))


def _worker_alive(pid, started) -> bool:
    """True when `pid` is a live DigitLab worker (not dead, not a zombie, not a reused pid)."""
    if not process_alive(pid):
        return False
    with contextlib.suppress(OSError):
        if b"digitlab.worker" in Path(f"/proc/{int(pid)}/cmdline").read_bytes():
            return True
    return time.time() - (started or 0) < 10  # between fork and exec the child still shows its parent's command


def _runner_lock_path() -> Path:
    return jobs_dir() / "runner.lock"


# ---------------------------------------------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------------------------------------------

def run_job(job_id: str) -> None:
    """Train the job, reporting progress to its folder, then record how it ended (and bound the demo's store)."""
    with contextlib.suppress(OSError):
        os.nice(10)  # the dashboard stays responsive while training
    job, folder, started = get_job(job_id), job_folder(job_id), time.monotonic()
    report = _Report(folder, job.config)
    report.phase("starting")
    cancel_flag = folder / "cancel"

    def should_stop():
        if cancel_flag.exists():
            return "cancelled"
        if job.max_seconds is not None and time.monotonic() - started > job.max_seconds:
            return "time limit"
        return None

    update = {}
    try:
        from .pipeline import run_training  # noqa: PLC0415 - TensorFlow loads here, in the worker only

        outcome = run_training(job.config, preset=job.preset, on_progress=report.progress, on_phase=report.phase,
                               should_stop=should_stop,
                               tags={"digitlab.job": job_id, "digitlab.owner": job.owner,
                                     **({"digitlab.network": job.network} if job.network else {})})
        stopped = outcome.result.stopped
        update = dict(status="cancelled" if stopped == "cancelled" else "finished", run_id=outcome.run_id,
                      stopped=stopped, summary=outcome.summary())
    except Exception as error:  # the record says what went wrong; the worker log keeps the traceback
        traceback.print_exc()
        update = dict(status="failed", error=f"{type(error).__name__}: {error}")
    finally:
        report.phase("done")
        update_job(job_id, ended=time.time(), **(update or dict(status="failed",
                                                                error="the worker stopped before finishing")))
        if job.max_runs_kept is not None and update.get("run_id"):
            _bound_the_store(job.max_runs_kept, per_network=job.max_runs_per_network)


def _bound_the_store(keep: int, *, per_network: int | None) -> None:
    """The public demo: delete the oldest runs for good, and the jobs that made them."""
    from .runs import RunStore  # noqa: PLC0415

    with contextlib.suppress(Exception):  # a failed eviction must not fail the finished run
        store = RunStore()
        store.evict(keep=keep, per_network=per_network)
        prune_jobs(keep_run_ids={run.run_id for run in store.list_runs(max_results=keep + 50)})


PACE_WINDOW = 4.0  # seconds of training after the warm-up that the first pace is measured over


class _Report:
    """The progress file: the latest Progress, the phase, a running trace for live curves, and a steady ETA."""

    def __init__(self, folder: Path, config: RunConfig):
        self.folder, self.config = folder, config
        self.trace = {"epoch": [], "loss": [], "accuracy": []}
        self.last: dict = {}
        self.pace = None  # seconds per batch after the warm-up, exponentially smoothed
        self.first = None  # (epoch, batches done, seconds elapsed) where the pace is measured from
        self.start = self.finishing_from = time.monotonic()

    def phase(self, name: str) -> None:
        """starting → training (see `progress`) → testing → saving → done, each with the ETA of the whole run."""
        now = time.monotonic()
        if name == "testing":
            self.finishing_from = now
        eta = {"starting": estimate_seconds(self.config), "done": 0.0}.get(name, self.last.get("eta"))
        if name in ("testing", "saving"):
            eta = max(1.0, finishing_seconds(self.config) - (now - self.finishing_from))
        self._write(phase=name, phase_started=time.time(), eta=eta)

    def progress(self, p) -> None:
        if "loss" in p.logs:
            self.trace["epoch"].append(round(p.epoch - 1 + p.batch / p.batches_per_epoch, 4))
            self.trace["loss"].append(p.logs["loss"])
            self.trace["accuracy"].append(p.logs.get("accuracy"))
        done = (p.epoch - 1) * p.batches_per_epoch + p.batch
        total = p.num_epochs * p.batches_per_epoch
        self._measure_pace(p, done)
        # No ETA until the pace is measured: the estimate made before the start can be off by 2× on a busy host,
        # and an ETA that starts at 1 min and turns into 3 min is worse than a few seconds without one.
        eta = None if self.pace is None else self.pace * (total - done) + finishing_seconds(self.config)
        self._write(phase="training", epoch=p.epoch, num_epochs=p.num_epochs, batch=p.batch,
                    batches_per_epoch=p.batches_per_epoch, fraction=p.fraction, elapsed=p.elapsed, eta=eta,
                    logs=p.logs, history=p.history, trace=self.trace)

    def _measure_pace(self, p, done: int) -> None:
        """Seconds per batch, from the first report (it follows TensorFlow's warm-up) and again from epoch 2's first:
        epoch 1's end carries one-time costs (tracing the validation step and the smaller last batch) that took
        seconds on a busy host and, counted as pace, raised the ETA by a third or more."""
        if self.first is None or (self.first[0] == 1 < p.epoch):
            self.first = (p.epoch, done, p.elapsed)
        elif not (p.epoch == 1 and p.epoch_end) and done > self.first[1] and p.elapsed - self.first[2] >= PACE_WINDOW:
            pace = (p.elapsed - self.first[2]) / (done - self.first[1])
            self.pace = pace if self.pace is None else 0.8 * self.pace + 0.2 * pace  # no jump with each report

    def _write(self, **values) -> None:
        self.last = {**self.last, **values, "time": time.time(), "since_start": time.monotonic() - self.start}
        write_json(self.folder / "progress.json", self.last)


if __name__ == "__main__":
    if sys.argv[1:] == ["--runner"]:
        run_queue()
    else:
        run_job(sys.argv[1])
