import streamlit as st

from digitlab import catalog, config as cfg, jobs
from views import ui

st.title("Train a model")
if "job" in st.query_params and "job_id" not in st.session_state:  # a reload or a shared link: follow that job
    st.session_state.job_id = st.query_params["job"]

# The form: preset and model kind set the defaults; the URL carries every value, so a link reproduces the form.
url, url_errors = ui.config_from_url()
top = st.columns([1, 1, 2])
kind = top[0].segmented_control("Model", cfg.MODELS, default=url.get("model", "cnn"), key="kind",
                                format_func=str.upper, help="ANN: dense layers on raw pixels. CNN: convolutions.")
preset = top[1].selectbox("Preset", cfg.PRESETS, index=cfg.PRESETS.index(url.get("preset", "reference")),
                          key="preset", help="Sets every value below; change any of them afterwards.")
base = cfg.preset(preset, model=kind or "cnn")
measured = catalog.load_preset_result(preset, kind or "cnn")
if measured:
    st.caption(f"Preset `{preset}` for the {(kind or 'cnn').upper()}, measured on this machine: "
               f"**{measured['test_accuracy']:.2%}** test accuracy in **{ui.seconds(measured['train_seconds'])}** "
               f"of training ({measured['source']}).")
from_link = url.get("preset", "reference") == preset and url.get("model", "cnn") == (kind or "cnn")
values = {**base.to_params(), **({k: v for k, v in url.items() if k not in ("model", "preset")} if from_link else {})}
defaults = ui.safe_config(values, base)
form = ui.hyperparameter_widgets(defaults, key=f"{kind}-{preset}")
for message in url_errors:
    st.warning(f"Ignored a link parameter: {message}", icon="🔗")

try:
    config = cfg.RunConfig(**{**form, "model": kind or "cnn"})
except ValueError as error:
    config = None
    st.error(f"Cannot train with these settings: {error}", icon="🚫")

limits = ui.limits()
if limits.public:
    st.info(f"Public demo: at most {limits.max_epochs} epochs, {limits.max_train_images:,} training images, "
            f"{limits.max_parameters:,} parameters and {ui.seconds(limits.max_seconds)} per run, one run per "
            "visitor at a time. Your runs are visible to you only, for this browser session.", icon="🌐")

if config is not None:
    ui.set_url({**config.to_params(), "preset": preset})
    st.caption(f"Estimated time: about {ui.seconds(jobs.estimate_seconds(config))} on this machine "
               f"({config.num_train_images:,} training images × {config.num_epochs} epochs).")
    if st.button("Start training", type="primary", key="start", disabled=ui.active_job() is not None):
        try:  # the caps are checked again on the server side, whatever the widgets allowed
            st.session_state.job_id = jobs.submit_job(config, preset=preset, owner=ui.owner(),
                                                      limits=ui.limits()).job_id
            st.query_params["job"] = st.session_state.job_id
            st.rerun()
        except ValueError as error:
            st.error(f"Cannot start this training: {error}", icon="🚫")

# The live view of this visitor's latest job: progress, ETA, curves, Stop.
if st.session_state.get("job_id"):
    ui.job_view(st.session_state.job_id)
