"""Hyperparameter sweeps: the search space, real Optuna studies of real (tiny) trainings tracked in MLflow, workers
started at once on a fresh PostgreSQL database, a worker killed mid-trial, pruning, the CLI's contract.

The PostgreSQL tests start a server of their own on loopback (`initdb` + `pg_ctl`, as the postgres user when run
as root). Without PostgreSQL they skip, except when CI=true: then they fail.
"""

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from digitlab import studies, sweep_worker, sweeps
from digitlab.cli import main
from digitlab.runs import RunStore

PROJECT = Path(__file__).resolve().parent.parent
TINY = dict(model="ann", train_limit=1000, max_epochs=1, pruner="none")  # a trial: ~5 s on 2 cores


# ---------------------------------------------------------------------------------------------------------------
# The search space and the settings: checked at the edge, with messages naming the field
# ---------------------------------------------------------------------------------------------------------------

def test_default_space_and_ranges():
    sweep = sweeps.SweepConfig(model="cnn", max_epochs=4, params=("learning_rate", "filters", "num_epochs",
                                                                  "augment", "batch_size=64,128"))
    lr, filters, epochs, augment, batch = sweep.space
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-2, True) and lr.describe() == "0.0001..0.01 (log)"
    assert (epochs.low, epochs.high) == (1, 4) and epochs.values() == (1, 2, 3, 4)
    assert augment.choices == (False, True) and batch.choices == (64, 128) and lr.values() is None
    config = sweep.trial_config({"filters": 16, "learning_rate": 0.003, "augment": True})
    assert config.filters == (16, 32) and config.learning_rate == 0.003 and config.augment
    assert config.num_epochs == 4 and config.early_stopping is None and config.dropout_rate == 0.5  # reference CNN


@pytest.mark.parametrize("changes, message", [
    (dict(params=("dropout_rate=0..0.95",)),
     "dropout_rate=0..0.95: dropout_rate must be a number from 0 to 0.9, got 0.95"),
    (dict(params=("learning_rate=0..0.1",)), "a log-scale range must start above 0"),
    (dict(params=("hidden_units=a..b",)), r"hidden_units must be a range like 32..256 or choices like a,b,c \(whole "
                                          r"numbers\), got 'a..b': 'a' is not a whole number$"),
    (dict(params=("learning_rate=abc",)), r"learning_rate must be a range like 0.0001..0.01 or choices like a,b,c "
                                          r"\(numbers\), got 'abc': 'abc' is not a number$"),
    (dict(params=("batch_size=32.5,64",)), r"batch_size must be choices like 32,64,128,256 or a range like low..high "
                                           r"\(whole numbers\), got '32.5,64': '32.5' is not a whole number$"),
    (dict(params=("batch_size=64,0",)), "batch_size must be an integer from 1 to 4096, got 0"),
    (dict(params=("augment=yes",)), r"augment must be choices like false,true \(true or false\), got 'yes': 'yes' is "
                                    "not true or false"),
    (dict(params=("momentum",)), "cannot search 'momentum'; searchable: learning_rate"),
    (dict(params=("learning_rate", "learning_rate=0.001..0.1")), "each hyperparameter may be searched once"),
    (dict(params=("filters",), model="ann"), "filters is a CNN hyperparameter"),
    (dict(params=("filters=8..300",)), r"filters=8..300 \(log\): the first block\'s filters can be at most 256 "
                                       r"\(2 blocks, each doubling the last: 300 gives 600"),
    (dict(params=()), "params must name at least one hyperparameter"),
    (dict(max_epochs=0), "num_epochs must be an integer from 1 to 200, got 0"),
    (dict(train_limit=10), "train_limit must be an integer from 100 to 60000, or 0 for all 60,000, got 10"),
    (dict(num_trials=0), "num_trials must be an integer from 1 to 10000, got 0"),
    (dict(pruner="asha"), "pruner must be one of median, hyperband, none, got 'asha'"),
])
def test_bad_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        sweeps.SweepConfig(**changes)


def test_a_joining_worker_takes_the_stored_settings_and_may_not_change_them():
    stored = sweeps.SweepConfig(model="ann", num_trials=6, params=("learning_rate",)).to_dict()
    assert sweeps.SweepConfig.from_options({"model": None, "num_trials": 6}, stored=stored).model == "ann"
    with pytest.raises(ValueError, match="already exists with model='ann', num_trials=6; leave those options out"):
        sweeps.SweepConfig.from_options({"model": "cnn", "num_trials": 8}, stored=stored)


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--study", "my study"], "study must be 1-64 letters, digits"),
    (["sweep", "--study", "s", "--param", "dropout_rate=0..2"], "dropout_rate must be a number from 0 to 0.9"),
    (["sweep", "--study", "s", "--storage", "postgres//nowhere"], "storage must be a database URL like"),
    (["sweep", "--study", "s", "--storage", "postgresql://me@127.0.0.1:1/db"], "cannot open the storage postgresql://"),
    (["sweep", "--study", "s", "--timeout", "0"], "--timeout must be above 0 minutes"),
    (["sweep"], "the following arguments are required: --study"),
])
def test_bad_sweep_input_exits_2_with_one_line(argv, message, capsys, home):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("digitlab: error:") and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL of our own, on loopback
# ---------------------------------------------------------------------------------------------------------------

def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server in a temporary folder; yields a function that creates a database and returns its URL."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed but CI=true: apt-get install postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="digitlab-pg-"))
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = "postgres" if as_user else getpass.getuser()

    def run(*command):
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    try:
        run(bin_dir / "initdb", "-D", folder / "data", "-A", "trust", "-U", user)
        run(bin_dir / "pg_ctl", "-D", folder / "data", "-l", folder / "server.log", "-w", "start",
            "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off")
    except (OSError, subprocess.CalledProcessError) as error:
        why = f"PostgreSQL did not start: {error} {getattr(error, 'stderr', b'')[-800:]!r}"
        pytest.fail(why) if os.environ.get("CI") == "true" else pytest.skip(why)

    def database(name):
        run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", user, name)
        return f"postgresql://{user}@127.0.0.1:{port}/{name}"

    yield database
    subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", folder / "data", "-m", "immediate", "stop"],
                   capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def start_worker(study, storage, *options, env):
    """`python -m digitlab sweep` as a separate process, as people start workers."""
    return subprocess.Popen([sys.executable, "-m", "digitlab", "sweep", "--study", study, "--storage", storage,
                             *options, "--json"], cwd=env["DIGITLAB_HOME"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def worker_env(home, **extra):
    return {**os.environ, "DIGITLAB_HOME": str(home), "PYTHONPATH": str(PROJECT), **extra}


def test_two_workers_started_at_once_on_a_fresh_postgresql_database_share_one_study(postgres, home):
    storage, tracking = postgres("optuna_pair"), postgres("mlflow_pair")  # MLflow's store too: a fresh database
    env = worker_env(home, MLFLOW_TRACKING_URI=tracking)
    options = ["--trials", "6", "--param", "batch_size=32,64", "--param", "hidden_units=16,32,64",
               *(f"--{k.replace('_', '-')}={v}" for k, v in TINY.items())]
    workers = [start_worker("pair", storage, *options, env=env) for _ in range(2)]  # the same moment
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]

    study = optuna.load_study(study_name="pair", storage=storage)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 6 and {r["trials_finished"] for r in results} == {6}
    assert len({t.number for t in done}) == 6  # distinct trial numbers
    assert len({t.user_attrs["worker"] for t in done}) == 2  # both workers trained
    # Only 6 parameter sets exist: random proposals from two workers collide, and none may be trained twice.
    assert len({tuple(sorted(t.params.items())) for t in done}) == 6
    best = max(done, key=lambda t: t.value)
    last = [r for r in results if r["best_trial_test_accuracy"] is not None]
    assert last and last[-1]["best_run_id"] == best.user_attrs["run_id"] and last[-1]["best_value"] == best.value

    store = RunStore(tracking)
    run = store.get_run(best.user_attrs["run_id"])
    parent = store.client.get_run(run.tags["mlflow.parentRunId"])
    assert run.status == "FINISHED" and run.config.batch_size == best.params["batch_size"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["best_val_accuracy"] == best.value
    assert parent.data.metrics["best_trial_test_accuracy"] == run.test_accuracy == last[-1]["best_trial_test_accuracy"]
    children = store.client.search_runs([store.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(int(c.data.tags["digitlab.trial"]) for c in children) == sorted(t.number for t in done)
    assert "sweep" not in [r.name.split()[0] for r in store.list_runs() if r.config is not None]  # parent: no model

    from digitlab.modelfiles import load_model

    model = load_model(best.user_attrs["run_id"], store=store)  # the best trial's model loads (safe mode)
    assert model.count_params() == run.metrics["num_parameters"]


def test_a_worker_killed_mid_trial_has_its_trial_failed_by_the_heartbeat_and_another_finishes(home):
    storage = studies.storage_url()  # SQLite in the home: two workers on one machine
    options = ["--trials", "3", "--heartbeat", "1", "--param", "hidden_units=16..64", "--model", "ann",
               "--train-limit", "2000", "--max-epochs", "3", "--pruner", "none"]
    doomed, survivor = (start_worker("crash", storage, *options, env=worker_env(home)) for _ in range(2))
    deadline, victim = time.time() + 300, None
    while victim is None and time.time() < deadline:  # wait until the doomed worker is training a trial
        time.sleep(0.5)
        with contextlib.suppress(KeyError):
            victim = next((t for t in studies.load_study("crash").get_trials(states=(TrialState.RUNNING,))
                           if t.user_attrs.get("worker", "").endswith(f":{doomed.pid}")
                           and t.user_attrs.get("progress")), None)
    assert victim is not None, doomed.communicate(timeout=60)[1][-3000:]
    doomed.send_signal(signal.SIGKILL)
    out, err = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["trials_finished"] == 3

    trials = {t.number: t for t in studies.load_study("crash").get_trials()}
    assert trials[victim.number].state == TrialState.FAIL  # failed by the heartbeat, not by the worker
    retry = [t for t in trials.values() if t.system_attrs.get("failed_trial") == victim.number]
    assert [t.state for t in retry] == [TrialState.COMPLETE] and retry[0].params == victim.params
    assert retry[0].user_attrs["worker"].endswith(f":{survivor.pid}")
    assert sum(t.state == TrialState.COMPLETE for t in trials.values()) == 3


def test_pruning_stops_a_clearly_bad_trial_early(home, mnist):
    options = dict(model="ann", train_limit=2000, max_epochs=3, num_trials=4, pruner="median",
                   params=("learning_rate=0.00001..0.01",))
    study = studies.open_study("prune", options, url=studies.storage_url())[0]
    for rate in (0.003, 0.002, 0.004, 0.00001):  # three sensible rates, then one far too small
        study.enqueue_trial({"learning_rate": rate})
    result = sweep_worker.run_worker("prune", {}, data=mnist)

    *good, bad = study.get_trials()
    assert [t.state for t in good] == [TrialState.COMPLETE] * 3 and bad.state == TrialState.PRUNED
    assert len(bad.intermediate_values) == 1 and all(len(t.intermediate_values) == 3 for t in good)
    assert bad.intermediate_values[1] < min(t.intermediate_values[1] for t in good) - 0.2  # clearly bad
    run = RunStore().get_run(bad.user_attrs["run_id"])  # kept, like every trial
    assert run.status == "FINISHED" and run.stopped == "pruned" and bad.user_attrs["epochs_run"] < 3
    assert result["trials_finished"] == 4 and result["best_trial"] in (0, 1, 2)
    assert result["best_value"] == max(t.value for t in good)


def test_the_time_budget_stops_the_running_trial_and_ends_the_worker(home, mnist):
    options = dict(model="ann", train_limit=20_000, max_epochs=50, num_trials=5, params=("hidden_units",))
    started = time.time()
    result = sweep_worker.run_worker("budget", options, timeout=10, data=mnist)
    [trial] = studies.load_study("budget").get_trials()  # 50 epochs of 18,000 images: far beyond 10 s
    assert trial.state == TrialState.PRUNED and trial.user_attrs["stopped"] == "time budget"
    assert result["ended"] == "time budget spent" and result["trials_finished"] == 1
    assert trial.user_attrs["epochs_run"] < 50 and time.time() - started < 120  # evaluation and export included


def test_hyperband_runs_over_the_epochs_a_trial_may_train():
    searched = sweeps.SweepConfig(pruner="hyperband", max_epochs=6, params=("num_epochs=2..4",))
    assert studies._pruner(searched)._max_resource == 4
    assert studies._pruner(sweeps.SweepConfig(pruner="hyperband", max_epochs=6))._max_resource == 6


def test_a_queued_trial_shows_its_settings_and_when_it_will_run():
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"hidden_units": 64})
    (row,) = studies.trial_rows(study)
    assert row["state"] == "queued" and row["params"] == {"hidden_units": 64}
    assert "when the sweep is started again" in row["note"]


# ---------------------------------------------------------------------------------------------------------------
# The Sweep page
# ---------------------------------------------------------------------------------------------------------------

def history_points(at) -> int:
    """Trials plotted in the page's optimisation-history chart (0 before it appears)."""
    for chart in at.get("plotly_chart"):
        figure = json.loads(chart.proto.spec)
        if "Optimization History" in json.dumps(figure["layout"].get("title", "")):
            return len(figure["data"][0]["x"])
    return 0


def test_the_sweep_page_starts_a_sweep_shows_it_grow_and_stops_it(home):
    from streamlit.testing.v1 import AppTest

    from tests.test_app import APP, assert_healthy

    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("views/sweep.py").run()
    at.text_input(key="study").set_value("page")
    at.segmented_control(key="sweep-kind").set_value("ann")
    for key, value in (("trials", 8), ("max-epochs", 3), ("sweep-limit", 2000)):
        at.number_input(key=key).set_value(value)
    at.multiselect(key="params").set_value(["hidden_units"]).run()
    assert_healthy(at) and not at.error
    at.button(key="start-sweep").click().run()
    seen, deadline = [], time.time() + 300
    while (not seen or seen[-1] < 2) and time.time() < deadline:
        time.sleep(1)
        seen.append(history_points(at.run()))
        assert_healthy(at)
    # the history grew while the sweep ran (two trials may finish between two looks, so 1 need not be seen)
    assert seen[-1] >= 2 and len(set(seen)) >= 2, seen
    at.button(key="stop-sweep").click().run()
    while studies.background_alive("page") and time.time() < deadline:
        time.sleep(1)
    at.run()
    assert_healthy(at)
    assert not [b for b in at.button if b.key == "stop-sweep"]  # nothing left to stop
    rows = studies.trial_rows(studies.load_study("page"))
    states = [r["state"] for r in rows]
    finished = states.count("complete") + states.count("pruned")  # a fast trial may finish before Stop lands
    assert states.count("complete") >= 2 and finished < 8  # stopped before its 8 trials
    # a trial that drew another's settings is skipped and an untried set queued for a later worker (as designed)
    assert set(states) <= {"complete", "pruned", "skipped", "queued"}, states
    assert all(r["note"] == "stopped" for r in rows if r["state"] == "pruned")  # Stop's trial is kept, marked so
    assert json.loads((home / "sweeps" / "page.log").read_text().splitlines()[-1])["ended"] == "stopped"
    at.button(key="use-best").click().run()
    best = max((r for r in rows if r["state"] == "complete"), key=lambda r: r["value"])
    assert at.session_state.model_id == best["run_id"] == at.session_state["draw-ann"]
    assert any("Test accuracy of the best trial" in m.label for m in at.metric)


def test_sweeps_are_off_in_the_public_demo(home, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from digitlab.limits import PUBLIC

    monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120).run()
    at.switch_page("views/sweep.py").run()
    assert not at.exception and "Sweeps are off in the public demo" in at.info[0].value
    assert not [b for b in at.button if b.key == "start-sweep"]
    with pytest.raises(ValueError, match="sweeps are off in the public demo"):  # and on the server side
        studies.start_background("crafted", sweeps.SweepConfig(), limits=PUBLIC)
