"""The public demo's caps, enforced on the server side: at job submission, at run time, in the stores."""

import dataclasses
import errno
import os
import sqlite3
import time

import numpy as np
import pytest

from digitlab import jobs
from digitlab.config import RunConfig, preset
from digitlab.drawings import DrawingSet, expire_drawing_sets
from digitlab.limits import LOCAL, PUBLIC, current_limits
from digitlab.models import count_parameters
from digitlab.runs import RunStore
from tests.test_drawings import canvas_of
from tests.test_jobs import TINY, wait_for

SLOW = RunConfig(model="cnn", num_epochs=5, batch_size=32, train_limit=20000, early_stopping=None)


@pytest.mark.parametrize("overrides, message", [
    (dict(num_epochs=6), "num_epochs must be at most 5 in the public demo, got 6"),
    (dict(train_limit=None), "train_limit must be at most 20,000 images in the public demo, got 60,000"),
    (dict(batch_size=16), "batch_size must be between 32 and 512 in the public demo, got 16"),
    (dict(batch_size=1024), "batch_size must be between 32 and 512"),
    (dict(filters=(256, 512)), "parameters must be at most 500,000"),
    (dict(model="ann", hidden_units=4096), "parameters must be at most 500,000"),
])
def test_a_crafted_config_over_a_cap_is_refused_by_the_server(home, overrides, message):
    config = RunConfig(**{**dict(num_epochs=2, train_limit=5000, batch_size=64), **overrides})
    with pytest.raises(ValueError, match=message):
        jobs.submit_job(config, owner="mallory", limits=PUBLIC)
    assert jobs.list_jobs() == []  # nothing was queued
    LOCAL.check(config)  # the same config is fine on your own machine


def test_every_preset_fits_locally_and_parameter_count_matches_keras():
    for name in ("reference", "fast", "best"):
        for model in ("ann", "cnn"):
            config = preset(name, model=model)
            LOCAL.check(config)
            assert config.num_parameters == count_parameters(config), (name, model)


def test_demo_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    assert current_limits() is PUBLIC
    monkeypatch.setenv("DIGITLAB_PUBLIC", "0")
    assert current_limits() is LOCAL


def test_one_job_per_visitor_and_the_host_limit_queues_the_third_with_a_wait(home):
    limits = dataclasses.replace(PUBLIC, max_running=2)
    alice = jobs.submit_job(SLOW, owner="alice", limits=limits)
    with pytest.raises(ValueError, match="you already have a training queued or running"):
        jobs.submit_job(TINY, owner="alice", limits=limits)
    bob = jobs.submit_job(SLOW, owner="bob", limits=limits)
    carol = jobs.submit_job(TINY, owner="carol", limits=limits)
    alice, bob = (wait_for(job.job_id, lambda j: j.status == "running", timeout=10) for job in (alice, bob))
    carol = jobs.get_job(carol.job_id)
    assert (carol.status, carol.queue_position) == ("queued", 1)
    assert carol.wait_seconds > 10  # what is left of two 5-epoch CNN runs, shared over 2 slots
    with pytest.raises(ValueError, match="belongs to another visitor"):
        jobs.cancel_job(carol.job_id, owner="alice")
    jobs.cancel_job(carol.job_id, owner="carol")
    assert jobs.get_job(carol.job_id).status == "cancelled"
    for job in (alice, bob):
        jobs.cancel_job(job.job_id, owner=job.owner)
    for job in (alice, bob):
        assert wait_for(job.job_id, lambda j: not j.active).status == "cancelled"


def test_a_run_past_the_wall_time_cap_is_stopped_and_kept(home):
    limits = dataclasses.replace(PUBLIC, max_seconds=12.0)
    job = jobs.submit_job(SLOW, owner="alice", limits=limits)
    done = wait_for(job.job_id, lambda j: not j.active)
    assert (done.status, done.stopped) == ("finished", "time limit")
    assert done.summary["epochs_run"] < SLOW.num_epochs and done.progress["elapsed"] < 12
    run = RunStore().get_run(done.run_id)
    assert run.status == "FINISHED" and run.stopped == "time limit" and run.test_accuracy > 0.5


def test_runs_are_private_to_their_owner_and_the_store_is_bounded(tracking_uri):
    store = RunStore()
    ids = {}
    for owner in ("alice", "bob", "alice"):
        run_id = store.start_run(TINY, tags={"digitlab.owner": owner})
        store.client.log_text(run_id, "x", "note.txt")
        store.fail_run(run_id, "failed")
        ids.setdefault(owner, []).append(run_id)
        time.sleep(0.01)
    assert {r.run_id for r in store.list_runs(owner="alice")} == set(ids["alice"])
    assert [r.run_id for r in store.list_runs(owner="bob")] == ids["bob"]
    with pytest.raises(ValueError, match="owner must be"):
        store.list_runs(owner="x' OR '1'='1")
    oldest = store.artifact_path(ids["alice"][0], "note.txt")
    assert oldest.exists()
    assert store.evict(keep=2) == [ids["alice"][0]]
    assert len(store.list_runs()) == 2 and not oldest.exists()


def test_one_networks_many_runs_push_out_its_own_oldest_not_everyones(tracking_uri):
    store = RunStore()
    made = []
    for owner, network in (("alice", ""), ("bob", "0123456789abcdef"), ("mallory1", "fedcba9876543210"),
                           ("mallory2", "fedcba9876543210"), ("mallory3", "fedcba9876543210")):
        run_id = store.start_run(TINY, tags={"digitlab.owner": owner, **({"digitlab.network": network} if network
                                                                         else {})})
        store.fail_run(run_id, "failed")
        made.append(run_id)
        time.sleep(0.01)
    alice, bob, *mallory = made
    assert store.evict(keep=4, per_network=2) == [mallory[0]]  # mallory's network holds 2; alice and bob stay
    assert store.evict(keep=2, per_network=2) == [bob, alice]  # then the oldest of everyone's, past the bound
    assert {run.run_id for run in store.list_runs()} == set(mallory[1:])


def test_drawing_sets_are_capped_and_a_full_demo_keeps_a_new_set_out_rather_than_delete_one(tmp_path, mnist):
    capped = DrawingSet("alice", folder=tmp_path / "alice", max_drawings=2)
    for digit in mnist.x_test[:2]:
        capped.add(canvas_of(digit), 7)
    with pytest.raises(ValueError, match="holds at most 2 drawings"):
        capped.add(canvas_of(mnist.x_test[2]), 7)
    DrawingSet("bob", folder=tmp_path / "bob").add(canvas_of(mnist.x_test[3]), 7)
    # A script arriving as many new visitors once pushed out everyone's sets; now the newcomer waits.
    with pytest.raises(ValueError, match="keeps drawings for 2 visitors and all of those places are taken"):
        DrawingSet("carol", folder=tmp_path / "carol", max_sets=2).add(canvas_of(mnist.x_test[4]), 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice", "bob"]
    DrawingSet("bob", folder=tmp_path / "bob", max_sets=2).add(canvas_of(mnist.x_test[5]), 7)  # a kept set grows


def test_one_network_holds_at_most_its_share_of_drawing_sets(tmp_path, mnist):
    def new_set(owner, network):
        DrawingSet(owner, folder=tmp_path / owner, network=network, max_sets=10, max_sets_per_network=2).add(
            canvas_of(mnist.x_test[0]), 7)

    new_set("dave", "0123456789abcdef")
    new_set("erin", "0123456789abcdef")
    with pytest.raises(ValueError, match="for 2 visitors from one network and yours has that many"):
        new_set("frank", "0123456789abcdef")
    new_set("grace", "fedcba9876543210")  # another network
    new_set("heidi", "")  # no known network: only the demo's total bounds it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dave", "erin", "grace", "heidi"]


def test_only_sets_no_cookie_can_reach_any_more_expire(tmp_path, mnist):
    for owner in ("alice", "bob"):
        DrawingSet(owner, folder=tmp_path / owner).add(canvas_of(mnist.x_test[0]), 7)
    month = 30 * 24 * 3600
    os.utime(tmp_path / "alice", (time.time() - month - 60,) * 2)  # last changed a month and a minute ago
    assert expire_drawing_sets(max_age=month, folder=tmp_path) == ["alice"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bob"]


def test_new_cookies_do_not_multiply_one_networks_trainings(home):
    network, other = "0123456789abcdef", "fedcba9876543210"
    submitted = [jobs.submit_job(SLOW, owner=f"visitor{i}", network=network, limits=PUBLIC) for i in range(3)]
    with pytest.raises(ValueError, match="3 trainings from your network are already queued or running"):
        jobs.submit_job(SLOW, owner="visitor3", network=network, limits=PUBLIC)
    submitted.append(jobs.submit_job(SLOW, owner="visitor4", network=other, limits=PUBLIC))
    assert [j.network for j in jobs.list_jobs()] == [other] + [network] * 3
    for job in submitted:
        jobs.cancel_job(job.job_id, owner=job.owner)
    for job in submitted:
        assert wait_for(job.job_id, lambda j: not j.active).status == "cancelled"
    turn = jobs.submit_job(TINY, owner="visitor3", network=network, limits=PUBLIC)  # their turn has come
    jobs.cancel_job(turn.job_id, owner="visitor3")
    assert wait_for(turn.job_id, lambda j: not j.active).status == "cancelled"


def test_a_jobs_database_from_before_networks_gets_the_column(home):
    jobs.jobs_dir().mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(jobs.jobs_dir() / "jobs.db") as db:
        db.executescript(jobs._SCHEMA.replace(", network TEXT NOT NULL DEFAULT '', max_runs_per_network INTEGER", ""))
        db.execute("INSERT INTO jobs (job_id, owner, status, preset, config, created, max_running) VALUES "
                   "('20260101-120000-0123456789abcdef', 'alice', 'finished', '', ?, 0, 1)",
                   (__import__("json").dumps(TINY.to_params()),))
    assert [(j.owner, j.network, j.max_runs_per_network) for j in jobs.list_jobs()] == [("alice", "", None)]


def test_a_full_disk_while_saving_a_drawing_says_so_and_leaves_nothing_half_written(tmp_path, mnist, monkeypatch):
    def disk_full(file, **arrays):
        open(file, "wb").write(b"\0" * 10)  # part of the file made it before the disk filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    drawings = DrawingSet("alice", folder=tmp_path)
    drawings.add(canvas_of(mnist.x_test[0]), 7)
    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="could not save the drawing .*No space left on device.*free some disk space"):
        drawings.add(canvas_of(mnist.x_test[1]), 2)
    monkeypatch.undo()
    assert [d.label for d in drawings.list()] == [7] and sorted(p.name for p in tmp_path.iterdir()) == [
        f"{drawings.list()[0].drawing_id}.npz"]
