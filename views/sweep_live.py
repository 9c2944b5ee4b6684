"""The Sweep page's live view of a study: progress with ETA, Optuna's charts, the trials, Stop, and the best trial
as the selected model. It reads the study's storage every 2 s while a worker is at work; workers are separate
processes (this server never imports TensorFlow or scikit-learn: importances come computed from the workers)."""

from __future__ import annotations

import optuna
import pandas as pd
import streamlit as st

from digitlab import charts, studies
from views import ui


@st.cache_resource(show_spinner=False)
def _storage(url: str):
    return studies.open_storage(url)


def _study(name: str):
    try:
        study = optuna.load_study(study_name=name, storage=_storage(studies.storage_url()))
    except KeyError:  # its worker has not created it yet
        return None
    return study if "sweep" in study.user_attrs else None  # or is creating it right now


def sweep_view(name: str) -> None:
    study = _study(name)
    started_active = studies.background_alive(name) or study is not None and any(
        r["state"] == "running" for r in studies.trial_rows(study))

    @st.fragment(run_every=2.0 if started_active else None)
    def live():
        study = _study(name)
        if study is None and studies.background_alive(name):
            st.info("Starting the sweep's worker…", icon=":material/hourglass_top:")
            return
        if study is None:
            st.error(ui.plain(f"The sweep's worker ended before its study began: {studies.worker_log(name)}"),
                     icon=":material/error:")
            return
        settings, rows = study.user_attrs["sweep"], studies.trial_rows(study)
        active = studies.background_alive(name) or any(r["state"] == "running" for r in rows)
        finished = [r for r in rows if r["state"] in ("complete", "pruned")]
        complete = [r for r in finished if r["state"] == "complete"]
        best = max(complete, key=lambda r: r["value"]) if complete else None
        st.subheader(f"Study {name}: {settings['model'].upper()}, {len(settings['params'])} hyperparameters")
        text = f"{len(finished)} of {settings['num_trials']} trials finished"
        text += f" · {sum(r['state'] == 'pruned' for r in finished)} pruned"
        text += f" · best validation accuracy {best['value']:.2%} (#{best['number']})" if best else ""
        if active:
            text += f" · ETA {ui.seconds(studies.eta_seconds(rows, settings['num_trials']))}"
        st.progress(min(1.0, len(finished) / settings["num_trials"]), text=text)
        if active and st.button("Stop the sweep", key="stop-sweep",
                                help="Every worker of this study stops; running trials end within seconds and "
                                     "keep their model."):
            studies.request_stop(name)
            st.toast("Stopping: running trials end within seconds.")

        if complete:
            st.plotly_chart(charts.in_our_words(optuna.visualization.plot_optimization_history(
                study, target_name="validation accuracy")), key="history")
        curves = [{"number": r["number"], "values": r["values"], "state": r["state"]} for r in rows if r["values"]]
        if curves:
            st.plotly_chart(charts.trial_curves(curves), key="trial-curves")
        if len(complete) >= 2:
            st.plotly_chart(charts.in_our_words(optuna.visualization.plot_parallel_coordinate(
                study, target_name="validation accuracy")), key="parallel")
        if study.user_attrs.get("importances"):
            st.plotly_chart(charts.importances(study.user_attrs["importances"]), key="importances")
        st.dataframe(pd.DataFrame([{
            "trial": r["number"], "state": r["state"],
            "validation accuracy": None if r["value"] is None else 100 * r["value"],  # as the line above: 69.00%
            **{charts.words(k): v for k, v in r["params"].items()}, "epochs": r["epochs"],
            "seconds": r["seconds"] and round(r["seconds"]), "note": r["note"], "worker": r["worker"]}
            for r in rows]), hide_index=True, key="trials", placeholder=ui.MISSING,
            column_config={"validation accuracy": st.column_config.NumberColumn(format="%.2f%%")})

        if best and best["run_id"]:
            if not active and ui.store():  # chosen on validation; its test accuracy is read once, at the end
                test = ui.store().get_run(best["run_id"]).test_accuracy
                st.metric(f"Test accuracy of the best trial (#{best['number']}, chosen on validation accuracy)",
                          f"{test:.2%}")
            if st.button("Use the best trial on Results and Draw", key="use-best"):
                ui.select(best["run_id"], settings["model"])
                st.success(f"Trial #{best['number']} is now the selected model.", icon=":material/check_circle:")
        if started_active and not active:
            st.rerun()  # once, to stop polling

    live()
