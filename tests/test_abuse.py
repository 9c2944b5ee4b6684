"""What a stranger can try on the public demo, each case a test (the browser-side cases are in
tests/test_browser_demo.py): configs that pass the parameter cap but not the memory or work caps, a flooded queue,
racing submitters, a killed worker, and eviction that leaves nothing behind."""

import dataclasses
import multiprocessing
import os
import signal
import sqlite3
import time
from urllib.parse import unquote, urlparse

import pytest

from digitlab import costs, jobs
from digitlab.config import RunConfig
from digitlab.limits import LOCAL, PUBLIC
from digitlab.pipeline import run_training
from digitlab.runs import RunStore
from tests.test_jobs import TINY, wait_for

SLOW = RunConfig(model="cnn", num_epochs=5, batch_size=32, train_limit=20000, early_stopping=None)
WIDE = RunConfig(model="cnn", filters=(512, 8), num_epochs=1, batch_size=512, train_limit=2000)  # 69k parameters


def no_workers_started():
    return not (jobs.jobs_dir() / "jobs.db").exists() or jobs.list_jobs() == []


def test_a_config_under_the_parameter_cap_but_over_the_memory_cap_is_refused_and_starts_nothing(home):
    assert WIDE.num_parameters < PUBLIC.max_parameters  # the parameter cap alone lets it through ...
    assert costs.training_memory_bytes(WIDE) > 2 * PUBLIC.max_memory  # ... yet its first convolution alone is huge
    with pytest.raises(ValueError, match=r"estimated training memory must be at most 1\.2 GB in the public demo, "
                                         r"got \d+\.\d GB\. Lower the batch size or the first block's filters"):
        jobs.submit_job(WIDE, owner="mallory", limits=PUBLIC)
    assert no_workers_started()


def test_too_much_training_work_is_refused_in_the_demo(home):
    heavy = RunConfig(model="cnn", filters=(64, 128), convs_per_block=2, hidden_units=64, num_epochs=5,
                      batch_size=256, train_limit=20000)
    assert costs.training_memory_bytes(heavy) < PUBLIC.max_memory
    with pytest.raises(ValueError, match=r"training work must be at most 5\.0 TFLOP in the public demo"):
        jobs.submit_job(heavy, owner="mallory", limits=PUBLIC)
    assert no_workers_started()


def test_a_run_that_cannot_fit_this_machine_is_refused_locally_too(home):
    huge = RunConfig(model="cnn", filters=(512, 512, 512), num_epochs=1, batch_size=4096)
    assert costs.training_memory_bytes(huge) > costs.available_memory_bytes()
    with pytest.raises(ValueError, match="estimated training memory must be at most .* GB on this machine"):
        LOCAL.check(huge)


def test_the_ninth_queued_job_is_told_the_demo_is_busy(home):
    submitted = [jobs.submit_job(SLOW, owner="visitor-0", limits=PUBLIC)]
    try:
        wait_for(submitted[0].job_id, lambda j: j.status == "running", timeout=30)  # one training ...
        submitted += [jobs.submit_job(SLOW, owner=f"visitor-{i}", limits=PUBLIC) for i in range(1, 9)]  # ... 8 wait
        with pytest.raises(ValueError, match=r"the demo is busy: 8 trainings are waiting .* Try again in about "
                                             r"\d+ min"):
            jobs.submit_job(TINY, owner="visitor-9", limits=PUBLIC)
        assert len(jobs.list_jobs(active=True)) == 9
    finally:
        for job in submitted:
            jobs.cancel_job(job.job_id)


def _submit(owner, home, results):
    os.environ["DIGITLAB_HOME"] = home
    try:
        results.put(jobs.submit_job(SLOW, owner=owner, limits=PUBLIC).job_id)
    except ValueError as error:
        results.put(f"refused: {error}")


def test_four_processes_submitting_at_once_keep_the_counts_right(home):
    results = multiprocessing.get_context("spawn").Queue()
    racers = [multiprocessing.get_context("spawn").Process(target=_submit, args=("same-visitor", str(home), results))
              for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
    answers = [results.get(timeout=5) for _ in racers]
    accepted = [a for a in answers if not a.startswith("refused")]
    try:
        assert len(accepted) == 1, answers  # one job per visitor, however many tabs press Start at once
        assert all("already have a training queued or running" in a for a in answers if a.startswith("refused"))
        assert [j.job_id for j in jobs.list_jobs(owner="same-visitor")] == accepted
    finally:
        for job_id in accepted:
            jobs.cancel_job(job_id)


def test_a_killed_worker_frees_its_slot_and_the_next_job_starts_with_nobody_submitting(home):
    first = jobs.submit_job(SLOW, owner="alice", limits=PUBLIC)
    second = jobs.submit_job(TINY, owner="bob", limits=PUBLIC)
    first = wait_for(first.job_id, lambda j: (j.progress or {}).get("phase") == "training")
    assert jobs.get_job(second.job_id).status == "queued"
    os.kill(first.pid, signal.SIGKILL)  # out of memory, or killed by the host
    killed = time.time()
    started = wait_for(second.job_id, lambda j: j.status == "running", timeout=5)
    assert started.started - killed < 5
    assert jobs.get_job(first.job_id).status == "interrupted"
    assert wait_for(second.job_id, lambda j: not j.active).status == "finished"


def test_reading_jobs_while_the_queue_changes_never_raises(home):
    job = jobs.submit_job(TINY, owner="alice")
    seen = set()
    while True:  # read as fast as possible through queued → running → finished
        current = jobs.get_job(job.job_id)
        seen.add(current.status)
        if not current.active:
            break
    assert current.status == "finished" and {"running", "finished"} <= seen


def test_an_evicted_run_leaves_no_rows_files_or_job_behind(home, mnist):
    store = RunStore()
    config = RunConfig(model="ann", hidden_units=16, num_epochs=1, train_limit=1000)
    kept, evicted = (run_training(config, data=mnist, store=store).run_id for _ in range(2))
    folder = unquote(urlparse(store._mlflow_run(kept).info.artifact_uri).path)
    job = jobs.submit_job(TINY, owner="alice")  # a finished job whose run will be gone
    job = wait_for(job.job_id, lambda j: not j.active)
    assert store.evict(keep=1) != []  # the newest (the job's run) stays; the older two go
    assert kept not in {r.run_id for r in RunStore().list_runs()}
    database = sqlite3.connect(store.uri.removeprefix("sqlite:///"))
    for table in ("runs", "params", "metrics", "latest_metrics", "tags"):
        rows = database.execute(f"SELECT COUNT(*) FROM {table} WHERE run_uuid IN (?, ?)", (kept, evicted))
        assert rows.fetchone()[0] == 0, table  # purged, not marked deleted
    assert not os.path.exists(folder)
    store.purge(job.run_id)
    assert jobs.prune_jobs(keep_run_ids=set(), older_than=0) == [job.job_id]
    assert not (jobs.jobs_dir() / job.job_id).exists() and jobs.list_jobs() == []


def test_limits_clamp_link_values_and_say_so():
    values, notes = PUBLIC.clamp({"num_epochs": 50, "batch_size": 16, "train_limit": None})
    assert values == {"num_epochs": 5, "batch_size": 32, "train_limit": 20000}
    assert notes == ["Epochs 50 → 5 (the public demo range is 1–5)",
                     "Batch size 16 → 32 (the public demo range is 32–512)",
                     "Training images 60,000 → 20,000 (the public demo range is 100–20,000)"]
    assert LOCAL.clamp({"num_epochs": 50}) == ({"num_epochs": 50}, [])
    assert dataclasses.replace(PUBLIC, max_epochs=10).clamp({"num_epochs": 7})[1] == []
