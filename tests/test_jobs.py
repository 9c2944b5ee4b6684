"""Background training jobs in real worker processes: progress, finish, cancel, queue, crash."""

import os
import signal
import time

import pytest

from digitlab import jobs
from digitlab.config import RunConfig
from digitlab.runs import RunStore

TINY = RunConfig(model="ann", hidden_units=32, num_epochs=2, batch_size=32, train_limit=1000, seed=0)
SLOW = RunConfig(model="cnn", num_epochs=20, batch_size=16, train_limit=20000, early_stopping=None)


def wait_for(job_id, condition, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.get_job(job_id)
        if condition(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"timed out; last state {job.status} {job.progress and job.progress['fraction']}")


def test_job_runs_in_a_worker_reports_progress_and_is_tracked(home):
    job = jobs.submit_job(TINY, preset="test", owner="alice")
    job = wait_for(job.job_id, lambda j: j.status == "running", timeout=10)  # the queue runner starts it at once
    assert job.pid != os.getpid()
    phases = set()
    while job.active:
        phases.add((job.progress or {}).get("phase"))
        time.sleep(0.05)
        job = jobs.get_job(job.job_id)
    assert {"starting", "training", "testing", "saving"} <= phases, phases
    done = jobs.get_job(job.job_id)
    assert done.status == "finished", done.error
    assert done.progress["fraction"] == 1 and len(done.progress["history"]["val_accuracy"]) == 2
    assert done.summary["test_accuracy"] > 0.7
    run = RunStore().get_run(done.run_id)
    assert run.status == "FINISHED" and run.tags["digitlab.owner"] == "alice" and run.config == TINY
    assert [j.job_id for j in jobs.list_jobs(owner="alice")] == [job.job_id] and jobs.list_jobs(owner="bob") == []


def test_cancel_stops_a_running_job_and_keeps_what_it_learned(home):
    job = jobs.submit_job(SLOW)
    wait_for(job.job_id, lambda j: j.progress and j.progress.get("batch", 0) > 5)
    asked = time.time()
    jobs.cancel_job(job.job_id)
    done = wait_for(job.job_id, lambda j: not j.active, timeout=120)
    assert done.status == "cancelled" and done.stopped == "cancelled"
    assert done.progress["epoch"] == 1 and done.progress["fraction"] < 0.05  # stopped early in epoch 1 of 20
    assert RunStore().get_run(done.run_id).stopped == "cancelled"
    assert done.ended - asked < 60


def test_second_job_queues_behind_the_first_and_can_be_cancelled(home):
    first = jobs.submit_job(SLOW)
    second = jobs.submit_job(TINY)
    third = jobs.submit_job(TINY)
    wait_for(first.job_id, lambda j: j.status == "running", timeout=10)
    second, third = jobs.get_job(second.job_id), jobs.get_job(third.job_id)
    assert (second.status, second.queue_position) == ("queued", 1)
    assert (third.status, third.queue_position) == ("queued", 2)
    jobs.cancel_job(second.job_id)
    assert jobs.get_job(second.job_id).status == "cancelled"
    assert jobs.get_job(third.job_id).queue_position == 1
    jobs.cancel_job(first.job_id)
    done = wait_for(third.job_id, lambda j: j.status == "finished")  # started by the runner when the first ended
    assert done.run_id


def test_killed_worker_shows_interrupted_and_its_run_is_recovered(home):
    job = jobs.submit_job(SLOW)
    job = wait_for(job.job_id, lambda j: (j.progress or {}).get("phase") == "training")
    os.kill(job.pid, signal.SIGKILL)
    done = wait_for(job.job_id, lambda j: j.status != "running", timeout=30)
    assert done.status == "interrupted"
    store = RunStore()
    [run] = store.list_runs()
    assert run.status == "RUNNING"  # MLflow cannot know by itself ...
    store.recover()
    assert store.get_run(run.run_id).stopped == "interrupted"  # ... until DigitLab recovers it


def test_bad_job_ids_are_refused(home):
    with pytest.raises(ValueError, match="job id must look like"):
        jobs.get_job("../../etc")
    with pytest.raises(ValueError, match="no job 20200101-000000-0000000000000000"):
        jobs.get_job("20200101-000000-0000000000000000")




def test_the_shown_eta_counts_down_with_the_clock_and_moves_at_most_a_tenth_per_second():
    assert jobs.steady_eta(80.0, shown=None, now=0.0) == 80.0
    assert jobs.steady_eta(79.0, shown=(80.0, 0.0), now=1.0) == pytest.approx(79.0)  # agrees: just counts down
    shown, now, readings = (80.0, 0.0), 0.0, []
    for _ in range(120):  # the worker's ETA jumps from 80 s to 134 s (a busy moment), then counts down from there
        now += 0.5
        shown = (jobs.steady_eta(134.0 - now, shown=shown, now=now), now)
        readings.append(shown[0])
    steps = [abs(b - a) / a for a, b in zip([80.0, *readings], readings)]
    assert max(steps) <= 0.06, max(steps)  # 0.5 s apart: 0.5 s of countdown and at most 5% toward the worker's
    assert readings[-1] == pytest.approx(134.0 - now, abs=1.0)  # and it gets there
