import time

import streamlit as st

from digitlab import charts, config as cfg, jobs, studies, sweeps
from views import ui
from views.sweep_live import sweep_view

SWEEP_LABELS = {"study": "Study", "num_trials": "Trials"}  # names in SweepConfig's errors, as this page labels them

st.title("Sweep hyperparameters")
if ui.limits().public:
    st.info("Sweeps are off in the public demo: every trial is a full training. Run DigitLab on your own machine "
            "to let Optuna search hyperparameters (README, \"Sweeps\").", icon=":material/cloud_off:")
    st.stop()
st.caption("Optuna tries settings one trial after another, keeps what works and stops unpromising trials early. "
           "It chooses on validation accuracy; every trial is a model you can pick on Results, Draw and Compare.")

# The form. Ranges are text ("low..high" or "a,b,c"); digitlab.sweeps checks them against RunConfig's bounds.
top = st.columns([2, 1, 1])
name = top[0].text_input("Study", f"sweep-{time.strftime('%m%d-%H%M')}", key="study",
                         help="Workers on any machine started with this name (and the same storage) share its "
                              "trials: `python -m digitlab sweep --study NAME`.")
kind = top[1].segmented_control("Model", cfg.MODELS, default="cnn", key="sweep-kind", format_func=str.upper)
preset = top[2].selectbox("Preset", cfg.PRESETS, key="sweep-preset", help="Values for everything not searched.")
row = st.columns(5, vertical_alignment="bottom")  # labels that wrap at 1,000 px keep the boxes in line
num_trials = row[0].number_input("Trials", value=20, step=1, key="trials")
max_epochs = row[1].number_input("Epochs per trial", value=5, step=1, key="max-epochs",
                                 help="Every trial's epochs, or the cap when epochs are searched.")
limit = row[2].number_input("Training images", value=20_000, step=1000, key="sweep-limit",
                            help="The first N of the 60,000 training images; the last 10% validate.")
budget = row[3].number_input("Time budget (min)", value=15, step=1, key="budget",
                             help="No trial starts after it and the running one stops; 0 = none.")
pruner = row[4].selectbox("Pruner", sweeps.PRUNERS, key="pruner",
                          help="median: stop a trial below the median of earlier ones at the same epoch. "
                               "hyperband: successive halving over epochs.")
chosen = st.multiselect("Hyperparameters to search", list(sweeps.SEARCHABLE), default=list(sweeps.DEFAULT_PARAMS),
                        key="params", format_func=charts.words)
ranges, columns = {}, st.columns(4)
for i, param in enumerate(chosen):
    default, log = sweeps.SEARCHABLE[param], cfg.FIELDS[param].log
    ranges[param] = columns[i % 4].text_input(
        charts.words(param), default.format(max_epochs=int(max_epochs)), key=f"range-{param}",
        help=("low..high, searched on a log scale" if log else "low..high") + ", or choices a,b,c")

try:
    sweep = sweeps.SweepConfig(model=kind or "cnn", preset=preset, params=tuple(f"{p}={r}" for p, r in ranges.items()),
                               num_trials=int(num_trials), max_epochs=int(max_epochs), pruner=pruner,
                               train_limit=None if limit in (0, cfg.TRAIN_SIZE) else int(limit))  # 0: all, as it says
    sweeps.check_study_name(name)
    if budget < 0:
        raise ValueError(f"the time budget must be 0 (none) or more minutes, got {budget}")
except ValueError as error:
    sweep = None
    st.error(ui.plain(f"Cannot sweep with these settings: {cfg.in_words(str(error), labels=SWEEP_LABELS)}"),
             icon=":material/block:")

running = st.session_state.get("sweep") and studies.background_alive(st.session_state.sweep)
existing = studies.study_names()
if sweep is not None:
    if name in existing:
        st.caption(f"Study {name} exists: Start adds a worker to it (the settings must match); pick a new name "
                   "for a new sweep.")
    longest = jobs.estimate_seconds(sweep.trial_config({}))
    st.caption(f"A trial of {ui.count(sweep.max_epochs, 'epoch')} takes about {ui.seconds(longest)} here; "
               f"{ui.count(sweep.num_trials, 'trial')} at most {ui.seconds(longest * sweep.num_trials)} (pruning "
               "ends many sooner).")
    if st.button("Start the sweep", type="primary", key="start-sweep", disabled=bool(running)):
        try:
            studies.start_background(name, sweep, timeout=budget * 60 or None, limits=ui.limits())
            st.session_state.sweep = name
            st.rerun()
        except ValueError as error:
            st.error(ui.plain(f"Cannot start this sweep: {error}"), icon=":material/block:")

# The live view of a study: progress, charts, trials; Stop; the best trial as the selected model.
watched = st.session_state.get("sweep")
if watched and watched not in existing and not running:
    st.error(ui.plain(f"The sweep {watched} ended before it began: {studies.worker_log(watched)}"),
             icon=":material/error:")
if existing and (watched in existing or not running):  # a sweep just started is watched before its study exists
    watched = st.selectbox("Watch study", existing, index=existing.index(watched) if watched in existing else 0,
                           key=f"watch-{len(existing)}")  # a new study resets the choice to the one just started
elif not running:
    st.info("No sweeps yet: start one above, or from a terminal with `python -m digitlab sweep`.",
            icon=":material/search:")
    st.stop()
sweep_view(watched)
