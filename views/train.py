import streamlit as st

from digitlab import catalog, config as cfg, costs, jobs
from views import live_job, train_form, ui
from views.augmentation import augmentation_preview
from views.visitor import visitor_id

st.title("Train a model")
limits = ui.limits()
notes = train_form.load_form()

# The followed run comes first: after Start its progress, Stop and curves are where the eye is.
job_id = live_job.followed_job(visitor_id())
running = live_job.job_view(job_id) if job_id else False

# While a run is going, the form folds away so the run stays in the first screen.
with st.expander("Settings for the next run", expanded=False) if running else st.container():
    train_form.show_notes(notes)
    if limits.public:
        st.info(f"Public demo: at most {limits.max_epochs} epochs, {limits.max_train_images:,} training images, "
                f"{limits.max_parameters:,} parameters, {limits.max_memory / costs.MB / 1024:.2g} GB of training "
                f"memory and {ui.seconds(limits.max_seconds)} per run, one run per visitor at a time. Your runs stay "
                "yours (this browser keeps your visitor id for 30 days).", icon=":material/public:")
    config, preset, problem = train_form.widgets()

    measured = catalog.load_preset_result(preset, st.session_state.train_form["model"])
    if measured:
        st.caption(f"Preset `{preset}`, {st.session_state.train_form['model'].upper()}: "
                   f"{measured['test_accuracy']:.2%} test accuracy in {ui.seconds(measured['train_seconds'])} of "
                   f"training, measured on {measured['machine']} ({measured['source']}).")
    elif preset:
        st.caption(f"Preset `{preset}`, {st.session_state.train_form['model'].upper()}: no measured figure for this "
                   "exact recipe yet (no model trained with it was scored); the estimate below is for this machine.")
    elif not problem and (capped := train_form.capped_preset(config, st.session_state.train_form["preset"])):
        st.caption(f"Preset `{st.session_state.train_form['preset']}`, brought within the public demo's caps: "
                   + "; ".join(capped) + ". So the run is named `custom`, and the preset's measured figure (made "
                   "without the caps) does not apply; the estimate below is for this machine.")
    elif not problem:
        st.caption(f"Your own recipe: it differs from preset `{st.session_state.train_form['preset']}`, so the run "
                   "is named `custom` and no measured figure applies; the estimate below is for this machine.")
    if problem:
        st.error(ui.plain(f"Cannot train with these settings: {cfg.in_words(problem)}"), icon=":material/block:")
    else:
        st.caption(f"About {ui.seconds(costs.estimate_seconds(config))} from Start to Finished on this machine: "
                   f"start-up ~{ui.seconds(costs.STARTUP_SECONDS)}, "
                   f"training ~{ui.seconds(costs.training_seconds(config))} "
                   f"({config.num_train_images:,} images × {ui.count(config.num_epochs, 'epoch')}), testing and saving "
                   f"~{ui.seconds(costs.finishing_seconds(config))}.")
    with st.expander("What augmentation shows the model", icon=":material/transform:"):
        augmentation_preview(config.augment if config is not None else False)
    train_form.mirror_in_url(job_id)
    if st.button("Start training", type="primary", key="start", icon=":material/play_arrow:",
                 disabled=problem is not None or running):
        try:  # the caps are checked again on the server side, whatever the widgets allowed
            st.session_state.job_id = jobs.submit_job(config, preset=preset, owner=visitor_id(), network=ui.network(),
                                                        limits=limits).job_id
            st.session_state.pop("eta", None)
            st.rerun()
        except ValueError as error:
            st.error(ui.plain(f"Cannot start this training: {error}"), icon=":material/block:")
