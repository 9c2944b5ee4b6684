"""The Train page's form in AppTest: it keeps what the user set, explains every bad value in the user's words,
fills from links (clamped to the public demo's caps), and never offers CNN-only fields for the ANN."""

import pytest
from streamlit.testing.v1 import AppTest

from digitlab import jobs
from tests.test_app import APP, app, assert_healthy, shown


def from_link(params: dict, **env):
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(params)
    at.run().switch_page("views/train.py").run()
    assert_healthy(at)
    return at


def start_button(at):
    return next(b for b in at.button if b.key == "start")


def test_a_bad_value_is_explained_as_typed_and_start_is_disabled(home):
    at = app("views/train.py")
    at.text_input(key="form-filters").set_value("32,x").run()
    message = "filters must be 1 to 3 comma-separated integers from 1 to 512, e.g. 32,64, got '32,x'"
    assert message in shown(at.error[0].value)
    assert start_button(at).disabled


@pytest.mark.parametrize("typed", ["32 64", ""])
def test_a_bad_value_stays_explained_while_the_form_changes_and_after_another_page(home, typed):
    at = app("views/train.py")
    at.text_input(key="form-filters").set_value(typed).run()
    at.number_input(key="form-num_epochs").set_value(3).run()  # any later change reruns the form with the bad text
    assert_healthy(at)
    assert "filters must be" in at.error[0].value and start_button(at).disabled
    at.switch_page("views/home.py").run()
    at.switch_page("views/train.py").run()  # its widgets come back from the form, bad text included
    assert_healthy(at)
    assert at.text_input(key="form-filters").value == typed and "filters must be" in at.error[0].value
    assert shown(at.error[0].value).endswith(f"got {typed!r}" if typed else "got nothing")


def test_a_value_outside_the_range_is_refused_not_ignored(home):
    """Issue 15, defect 5: typing 100000 epochs was silently ignored and Start trained with the old value."""
    at = app("views/train.py")
    at.number_input(key="form-num_epochs").set_value(100000).run()
    assert "Epochs must be an integer from 1 to 200, got 100000" in shown(at.error[0].value)  # as labelled
    assert start_button(at).disabled
    at.number_input(key="form-num_epochs").set_value(3).run()
    assert not at.error and not start_button(at).disabled
    for key, value, message in (("num_epochs", -3, "Epochs must be an integer from 1 to 200, got -3"),
                                ("seed", -1, "Seed must be an integer from 0")):  # below the range, as above it
        at.number_input(key=f"form-{key}").set_value(value).run()
        assert message in shown(at.error[0].value) and start_button(at).disabled
        at.number_input(key=f"form-{key}").set_value(3).run()


def test_the_ann_has_no_cnn_only_fields_and_is_not_blocked_by_them(home):
    at = app("views/train.py")
    at.text_input(key="form-filters").set_value("abc").run()
    assert at.error  # wrong for the CNN ...
    at.segmented_control(key="form-model").set_value("ann").run()
    keys = {w.key for w in list(at.text_input) + list(at.number_input) + list(at.checkbox)}
    assert not keys & {"form-filters", "form-convs_per_block", "form-batch_norm"}
    assert not at.error and not start_button(at).disabled  # ... and meaningless for the ANN


def test_the_form_is_kept_after_visiting_another_page(home):
    """Issue 15, defect 4: set `fast` and 10,000 images, go to Home and back: the form is as it was."""
    at = app("views/train.py")
    at.selectbox(key="form-preset").set_value("fast").run()
    at.slider(key="form-train_limit").set_value(10000).run()
    at.switch_page("views/home.py").run()
    at.switch_page("views/train.py").run()
    assert at.selectbox(key="form-preset").value == "fast"
    assert at.slider(key="form-train_limit").value == 10000
    assert at.query_params["train_limit"] == "10000" and at.query_params["preset"] == "fast"


def test_bad_link_values_are_named_in_the_users_words_and_ignored(home):
    at = from_link({"learning_rate": "5", "num_epochs": "ten", "model": "rnn", "train_limit": "abc"})
    warnings = " ".join(shown(w.value) for w in at.warning)
    assert "Learning rate must be a number above 0, at most 1, got 5.0" in warnings
    assert "Epochs must be an integer from 1 to 200, got 'ten'" in warnings
    assert "Model must be one of ann, cnn, got 'rnn'" in warnings
    assert "Training images must be an integer from 100 to 60000, or 0 for all 60,000, got 'abc'" in warnings
    assert at.number_input(key="form-num_epochs").value == 10  # the preset's value stands


def test_a_link_reproduces_the_form(home):
    at = from_link({"model": "ann", "preset": "fast", "num_epochs": "4", "learning_rate": "0.002"})
    assert at.segmented_control(key="form-model").value == "ann" and at.selectbox(key="form-preset").value == "fast"
    assert at.number_input(key="form-num_epochs").value == 4
    assert at.number_input(key="form-learning_rate").value == pytest.approx(0.002)


def test_switching_preset_loads_its_values_and_says_where_they_were_measured(home):
    at = app("views/train.py")
    assert at.number_input(key="form-num_epochs").value == 10
    at.selectbox(key="form-preset").set_value("fast").run()
    assert at.number_input(key="form-num_epochs").value == 1 and at.query_params["num_epochs"] == "1"
    assert at.number_input(key="form-hidden_units").value == 256
    assert at.slider(key="form-label_smoothing").value == 0.1 and at.query_params["label_smoothing"] == "0.1"
    caption = next(c.value for c in at.caption if c.value.startswith("Preset `fast`"))
    assert "measured on" in caption and "cores" in caption  # which machine, not "this machine"
    assert any("from Start to Finished on this machine" in c.value for c in at.caption)  # this machine: estimated
    at.selectbox(key="form-preset").set_value("best").run()
    assert at.number_input(key="form-convs_per_block").value == 2 and at.number_input(key="form-num_epochs").value == 20
    caption = next(c.value for c in at.caption if c.value.startswith("Preset `best`"))
    assert "mean of 3 seeds" in caption and "measured on" in caption  # benchmarks/presets.json, this recipe exactly


def test_a_changed_value_makes_the_recipe_custom_and_its_run_says_so(home):
    at = app("views/train.py")
    at.segmented_control(key="form-model").set_value("ann").run()
    at.number_input(key="form-hidden_units").set_value(64).run()
    assert at.selectbox(key="form-preset").value == "reference"  # where the recipe started
    assert not [c for c in at.caption if c.value.startswith("Preset `reference`")]  # its figure is not this run's
    assert any("Your own recipe: it differs from preset `reference`" in c.value for c in at.caption)
    start_button(at).click().run()
    job = jobs.get_job(at.session_state.job_id)
    jobs.cancel_job(job.job_id)
    assert job.preset == ""  # the run is named ann-64-custom-…, its live view "Run: ANN · custom"


def test_the_public_form_starts_inside_the_caps_and_clamps_links_with_a_note(home, monkeypatch):
    monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    at = app("views/train.py")
    assert at.selectbox(key="form-preset").value == "fast" and not at.error  # a default Start never refuses
    assert not at.warning  # the preset was brought within the caps, but no link was followed: no "From the link"
    assert not start_button(at).disabled
    # The caps lower the preset's training images, so the run is `custom`: said as such, not as the user's own recipe.
    said = next(c.value for c in at.caption if c.value.startswith("Preset `fast`, brought within the public demo's"))
    assert "Training images 60,000 → 20,000" in said and "named `custom`" in said
    assert not [c for c in at.caption if "Your own recipe" in c.value or "test accuracy in" in c.value]
    linked = from_link({"model": "cnn", "num_epochs": "50", "train_limit": "60000"})
    notes = " ".join(shown(w.value) for w in linked.warning)
    assert "Epochs 50 → 5" in notes and "Training images 60,000 → 20,000" in notes
    assert linked.slider(key="form-num_epochs").value == 5 and linked.slider(key="form-train_limit").value == 20000
    linked.button(key="start").click().run()
    assert not linked.error and linked.session_state.job_id  # Start works on clamped values
    jobs.cancel_job(linked.session_state.job_id)
    linked.switch_page("views/draw.py").run()
    assert_healthy(linked) and not linked.get("file_uploader")
    beyond = from_link({"model": "cnn", "num_epochs": "999", "batch_size": "0"})  # past RunConfig's own ranges too
    notes = " ".join(shown(w.value) for w in beyond.warning)
    assert "Epochs 999 → 5 (the public demo range is 1–5)" in notes and "Batch size 0 → 32" in notes, notes
    assert "1 to 200" not in notes and beyond.slider(key="form-num_epochs").value == 5


def test_the_augmentation_preview_shows_training_copies_and_redraws(home):
    at = app("views/train.py")
    [preview] = at.get("image")  # the only picture on the form: digits × copies
    first = preview.proto.imgs[0].url
    next(b for b in at.button if b.key == "augment-redraw").click().run()
    assert_healthy(at)
    [again] = at.get("image")
    assert again.proto.imgs[0].url != first  # other random copies
    assert any("Augmentation is off" in c.value for c in at.caption)  # the reference preset trains without it


def test_stop_says_which_epoch_it_stopped_in_and_of_how_many():
    def page():
        import time

        from digitlab.config import RunConfig
        from digitlab.jobs import Job
        from views.live_job import _status

        for progress in ({"phase": "training", "epoch": 4, "num_epochs": 4, "batch": 10, "batches_per_epoch": 100,
                          "eta": 95.0},  # the whole run's ETA: not the stop's
                         {"phase": "testing"}, {"phase": "starting"}):
            _status(Job("20260101-120000-0123456789abcdef", RunConfig(), "", "cli", "running", time.time(),
                        cancel_requested=True, progress=progress))

    at = AppTest.from_function(page).run()
    assert not at.exception
    assert [w.value.split(".")[0] for w in at.warning] == [
        "Stopped during epoch 4 of 4", "Stopped after training", "Stopped before its first epoch"]
    assert "left" not in at.warning[0].value  # finishing the last batch takes seconds, not the run's 1 min 35 s


def test_the_live_eta_is_kept_per_phase_so_a_new_phase_shows_its_own_at_once():
    def page():
        import streamlit as st

        from views.live_job import _steady_eta

        st.session_state.training = _steady_eta("job/training", 80.0, None)
        st.session_state.later = _steady_eta("job/training", 20.0, None)  # a jump within a phase: moved toward
        st.session_state.testing = _steady_eta("job/testing", 5.0, None)  # Stop, then testing: its own ETA

    at = AppTest.from_function(page).run()
    assert not at.exception
    assert at.session_state.training == 80.0 and 60.0 < at.session_state.later <= 80.0
    assert at.session_state.testing == 5.0
