"""Every page renders in AppTest with real data, models and store; a run started on Train reaches Results/Compare."""

import re
import subprocess
import sys
import textwrap
import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from digitlab import catalog, jobs

APP = __import__("pathlib").Path(__file__).resolve().parent.parent / "app.py"
PAGES = ["views/home.py", "views/train.py", "views/results.py", "views/draw.py", "views/compare.py"]


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()  # cached resources outlive an AppTest: drop the previous test's run store


def shown(value: str) -> str:
    """A message as a person reads it: views.ui.plain's markdown escapes and zero-width spaces removed."""
    return re.sub(r"\\(.)", r"\1", value).replace("\u200b", "")


def assert_healthy(at):
    """No exception, and no page-failure message from app.py's last-resort handler (it hides exceptions)."""
    assert not at.exception, [e.value for e in at.exception]
    failures = [e.value for e in at.error if "hit a problem it did not expect" in e.value]
    assert not failures, failures


def app(page=None):
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    assert_healthy(at)
    return at


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(home, page):
    at = app(page)
    assert at.title[0].value in ("DigitLab", "Train a model", "Results", "Draw a digit", "Compare runs")


def test_every_table_shows_a_dash_where_a_value_is_missing(home):
    from views import ui

    tables = [table for page in ("views/home.py", "views/results.py") for table in app(page).dataframe]
    assert len(tables) == 3 and {table.proto.placeholder for table in tables} == {ui.MISSING}  # not a grey "None"


def test_wide_tables_keep_their_names_in_view_as_they_scroll_sideways(home):
    import json

    from digitlab.runs import RunStore

    finished_run(RunStore(), "", 0.9)
    pinned = {}
    for page in ("views/home.py", "views/compare.py"):  # each page's first table: the models, the runs
        table = visitor_session("", page).dataframe[0]
        pinned[page] = [name for name, config in json.loads(table.proto.columns).items() if config.get("pinned")]
    assert pinned == {"views/home.py": ["model"], "views/compare.py": ["run"]}


def test_a_servers_first_page_run_skips_streamlits_slow_first_time_checks(home):
    """The first visitor of a fresh server waits for them: a REPL check (inspect.stack() over every loaded module,
    80 ms) and an emoji page icon's catalogue (70 ms). Run in a new process, as a server's first page run is."""
    script = textwrap.dedent(f"""
        import sys
        from streamlit import env_util
        from streamlit.testing.v1 import AppTest
        checks = []
        env_util.is_repl = lambda: checks.append(1) or False
        at = AppTest.from_file({str(APP)!r}, default_timeout=120).run()
        assert not at.exception, at.exception
        print(len(checks), "streamlit.emojis" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.stdout.split()[-2:] == ["0", "False"], out.stdout + out.stderr


def test_home_shows_dataset_and_models(home):
    at = app()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training images"] == "60,000" and metrics["Models available"] == "2"
    chosen = max(("ann", "cnn"), key=lambda m: catalog.load_card(m)["history"]["val_accuracy"][-1])
    assert metrics["Best model's test accuracy"] == f"{catalog.load_card(chosen)['test_accuracy']:.2%}"


@pytest.mark.parametrize("public", [False, True])
def test_home_links_to_sweeps_only_where_they_run(home, monkeypatch, public):
    if public:
        monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    labels = [link.proto.label for link in app().get("page_link")]
    assert "Look inside a model" in labels and ("Search hyperparameters" in labels) is not public


def test_results_of_a_shipped_model(home):
    at = app("views/results.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{catalog.load_card('cnn')['test_accuracy']:.2%}"
    assert len(at.get("plotly_chart")) == 2  # curves, ROC; the confusion matrix is a table a tap can pick cells of
    notes = [c.value for c in at.caption if c.value.startswith("Training figures average each epoch")]
    assert len(notes) == 1 and "label smoothing" not in notes[0]  # the shipped CNN trained without it
    mistakes = at.get("image")[0].proto.imgs  # the most confident mistakes, as pictures with captions
    assert len(mistakes) == 20 and re.fullmatch(r"\d→\d \(\d+%\)", mistakes[0].caption)


def test_draw_page_waits_for_a_drawing(home):
    at = app("views/draw.py")
    assert at.info[0].value == "Draw a digit"
    assert not at.metric  # no guess on a blank canvas


def test_inside_shows_the_last_drawing_from_draw_that_it_analyses(home, mnist):
    from digitlab.preprocessing import scale_images

    at = app()
    at.session_state["last_drawing"] = scale_images(mnist.x_test[:1])[0]  # a 7, as Draw leaves it
    at.switch_page("views/inside.py").run()
    assert_healthy(at)
    assert any(c.value.startswith("Your last drawing from the Draw page") for c in at.caption)
    layers = 1 + 4 + 1  # the shipped CNN's first filters, its 4 convolutions' maps, its hidden units
    assert len(at.get("image")) == 1 + layers  # and the drawing itself, first
    # Row by row, so they read in the layers' order, left to right, then down (and stacked on a phone).
    captions = [image.proto.imgs[0].caption for image in at.get("image")[1:]]
    assert [c.split(":")[0].split(" (")[0] for c in captions] == ["The first layer's 32 filters", "Convolution 1",
                                                                  "Convolution 2", "Convolution 3", "Convolution 4",
                                                                  "The last hidden layer"]
    assert any(re.search(r"\*\*.+: 7\*\* \(\d+%\)", m.value) for m in at.markdown)


def test_replay_shows_the_misread_drawings_first_and_at_most_fifty(home, mnist):
    from digitlab.drawings import DrawingSet
    from views.draw import REPLAY_SHOWN

    drawings = DrawingSet("local")
    for i in range(60):  # the last five labelled one more than they are: every model misreads those
        drawings.add(mnist.x_test[i], (int(mnist.y_test[i]) + (i >= 55)) % 10)
    at = app("views/draw.py")
    assert any(c.value == f"{REPLAY_SHOWN} of your 60 drawings, the misread ones first." for c in at.caption)
    gallery = [img.caption for img in at.get("image")[-1].proto.imgs]
    misread = [caption.endswith(" ✗") for caption in gallery]
    assert len(gallery) == REPLAY_SHOWN == 50 and sum(misread) >= 5
    assert misread == sorted(misread, reverse=True), gallery  # every misread one before every read one
    assert gallery[sum(misread) - 5:sum(misread)] == [
        f"{(int(mnist.y_test[i]) + 1) % 10}→{int(mnist.y_test[i])} ✗" for i in range(55, 60)]  # oldest first
    at.button(key="remove-newest").click().run()  # the last one added, a 7 labelled 8: out of the set
    assert_healthy(at)
    assert len(drawings.list()) == 59 and drawings.list()[-1].label == (int(mnist.y_test[58]) + 1) % 10


def test_tiny_training_from_the_train_page_reaches_results_and_compare(home):
    at = app("views/train.py")
    at.segmented_control(key="form-model").set_value("ann").run()
    at.number_input(key="form-num_epochs").set_value(1)
    at.slider(key="form-train_limit").set_value(1000)
    at.number_input(key="form-hidden_units").set_value(32)
    at.slider(key="form-label_smoothing").set_value(0.1).run()
    assert any("from Start to Finished on this machine" in c.value for c in at.caption)
    at.button(key="start").click().run()
    job_id = at.session_state.job_id
    deadline = time.time() + 180
    while jobs.get_job(job_id).active and time.time() < deadline:
        time.sleep(0.5)
    job = jobs.get_job(job_id)
    assert job.status == "finished", job.error
    at.run()
    assert any("Finished: test accuracy" in s.value for s in at.success)
    assert at.session_state.model_id == job.run_id  # the new run is the selected model everywhere
    assert at.session_state["draw-ann"] == job.run_id

    at.switch_page("views/results.py").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == f"{job.summary['test_accuracy']:.2%}"
    # Its losses were against smoothed targets, the test loss against the true digits: the page says they differ.
    assert any("trained with label smoothing 0.1" in c.value and "do not compare" in c.value for c in at.caption)
    at.switch_page("views/draw.py").run()
    assert not at.exception and at.selectbox(key="pick-draw-ann").value == job.run_id
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert job.run_id and len(at.dataframe[0].value) == 1


# ---------------------------------------------------------------------------------------------------------------
# The public demo (DIGITLAB_PUBLIC=1)
# ---------------------------------------------------------------------------------------------------------------

def finished_run(store, owner, accuracy):
    from digitlab.config import RunConfig

    run_id = store.start_run(RunConfig(model="ann", num_epochs=1), preset="test", tags={"digitlab.owner": owner})
    store.client.log_metric(run_id, "test_accuracy", accuracy)
    store.client.set_terminated(run_id, "FINISHED")
    return run_id


def visitor_session(owner, page):
    """A visitor's session on `page`, once the run store has opened (Home shows only the shipped models until then,
    and reruns itself when it has: `ui.rerun_when_store_opens`)."""
    from views import ui

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["owner"] = owner
    at.run().switch_page(page).run()
    while ui.store_opening():
        time.sleep(0.05)
    at.run()
    assert_healthy(at)
    return at


def test_two_visitors_of_the_demo_never_see_each_others_runs(home, monkeypatch):
    from digitlab.runs import RunStore

    monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    store = RunStore()
    finished_run(store, "alice", 0.91)
    finished_run(store, "bob", 0.92)
    finished_run(store, "bob", 0.93)
    alice, bob = visitor_session("alice", "views/home.py"), visitor_session("bob", "views/home.py")
    assert {m.label: m.value for m in alice.metric}["Models available"] == "3"  # 2 shipped + her 1 run
    assert {m.label: m.value for m in bob.metric}["Models available"] == "4"
    alice.switch_page("views/compare.py").run()
    assert len(alice.dataframe[0].value) == 1
    monkeypatch.delenv("DIGITLAB_PUBLIC")
    assert {m.label: m.value for m in app().metric}["Models available"] == "5"  # locally, every run is yours


def test_the_demo_does_not_follow_another_visitors_job_link(home, monkeypatch):
    from digitlab.config import RunConfig
    from digitlab.limits import PUBLIC

    monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    job = jobs.submit_job(RunConfig(model="ann", hidden_units=32, num_epochs=1, train_limit=1000), owner="alice",
                          limits=PUBLIC)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["owner"] = "mallory"
    at.query_params["job"] = job.job_id
    at.run().switch_page("views/train.py").run()
    assert "belongs to another visitor" in at.warning[0].value and not [b for b in at.button if b.key == "stop"]
    jobs.cancel_job(job.job_id)


def test_a_sweep_on_0_training_images_uses_all_of_them_as_its_message_says(home):
    at = app("views/sweep.py")
    at.number_input(key="sweep-limit").set_value(0).run()
    assert_healthy(at)
    assert not [e.value for e in at.error if "Cannot sweep" in e.value]  # said "... or 0 for all 60,000, got 0"


def test_a_bad_sweep_range_is_quoted_as_typed_never_as_markdown(home):
    at = app("views/sweep.py")
    typed = "**1**..[there](http://example.com)"
    at.text_input(key="range-learning_rate").set_value(typed).run()
    errors = [e.value for e in at.error if "Cannot sweep" in e.value]
    assert len(errors) == 1 and typed in shown(errors[0]), errors
    assert "**1**" not in errors[0] and "](http" not in errors[0]  # escaped: no bold, no link
    assert shown(errors[0]).startswith("Cannot sweep with these settings: Learning rate must be a range like")


def test_compare_says_a_run_was_stopped_by_you_in_words(home):
    from digitlab.runs import RunStore

    store = RunStore()
    store.client.set_tag(finished_run(store, "", 0.9), "digitlab.stopped", "cancelled")
    at = visitor_session("", "views/compare.py")
    assert list(at.dataframe[0].value["status"]) == ["stopped by you"]  # was "finished (cancelled)"


def test_a_run_name_is_shown_as_written_never_as_markdown(home):
    # Names come from DigitLab, but a shared MLflow store lets anyone rename a run.
    from digitlab.runs import RunStore

    store = RunStore()
    run_id = finished_run(store, "", 0.95)
    store.client.log_metric(run_id, "val_accuracy", 0.9999)  # the best ANN by validation: Compare's table names it
    name = "**bold** [link](http://example.com)"
    store.client.set_tag(run_id, "mlflow.runName", name)
    at = visitor_session("", "views/compare.py")
    cell = at.table[0].value.loc["measured on", "ANN"]
    assert shown(cell) == name and "**bold**" not in cell and "](http" not in cell
    at.session_state["draw-ann"] = run_id
    at.switch_page("views/draw.py").run()
    label = next(p.proto.popover.label for p in at.get("popover"))
    assert name in shown(label) and "**bold**" not in label, label


def test_a_table_selection_keeps_only_rows_and_cells_the_table_has():
    from views import ui

    assert ui.picked_rows([0, 7, "a", -1, True, 1.0, 1], 2) == [0, 1]  # Compare: a crafted row is dropped
    assert ui.picked_cell([[3, "5"]], size=10) == (3, 5)
    for crafted in ([], [[3, "x"]], [[1, "2"], [3, "4"]], [[99, "99"]], [[-1, "2"]], [[None, "1"]], "{{{", None):
        assert ui.picked_cell(crafted, size=10) is None, crafted
