import pandas as pd
import streamlit as st

from digitlab import catalog, charts
from views import ui

st.title("Compare runs")
store = ui.store()
runs = [r for r in ui.runs() if r.config is not None]
if not runs:
    st.info("No runs yet. Train one on the Train page; the shipped models are compared below.",
            icon=":material/model_training:")

STOPPED = {"cancelled": "stopped by you", "early_stopping": "finished (early stopping)",
           "time limit": "stopped at the time limit"}

if runs:
    # Outcomes first, so they stay on screen; the hyperparameters follow (the table scrolls sideways on a phone).
    table = pd.DataFrame([{
        "run": r.name, "model": r.config.model.upper(),
        "validation accuracy": r.metrics.get("val_accuracy"), "test accuracy": r.metrics.get("test_accuracy"),
        "training time (s)": r.metrics.get("train_seconds"), "parameters": r.metrics.get("num_parameters"),
        "status": STOPPED.get(r.stopped) or r.status.lower() + (f" ({r.stopped})" if r.stopped else ""),
        "epochs": r.config.num_epochs, "batch": r.config.batch_size, "learning rate": r.config.learning_rate,
        "dropout": r.config.dropout_rate, "images": r.config.num_train_images,
    } for r in runs])
    st.caption("Select rows to overlay their curves; each run keeps its colour.")
    percent = st.column_config.NumberColumn(format="%.2f%%")
    picked = st.dataframe(table.assign(**{c: table[c] * 100 for c in ("validation accuracy", "test accuracy")}),
                          hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs",
                          placeholder=ui.MISSING, column_config={
                              "run": ui.NAME_COLUMN, "validation accuracy": percent, "test accuracy": percent,
                              "training time (s)": st.column_config.NumberColumn(format="%.0f"),
                              "parameters": st.column_config.NumberColumn(format="localized"),
                              "images": st.column_config.NumberColumn(format="localized")})
    rows = ui.picked_rows(picked.selection.rows, len(runs)) or list(range(min(5, len(runs))))
    histories = {runs[i].name: store.history(runs[i].run_id) for i in rows}
    colours = {runs[i].name: charts.run_colour(len(runs) - 1 - i) for i in rows}  # runs: newest first
    metric = st.radio("Curve", ["val_accuracy", "val_loss", "accuracy", "loss"], horizontal=True, key="metric",
                      format_func=charts.words)
    st.plotly_chart(charts.compare_curves(histories, metric=metric, colours=colours), key="overlay")

    finished = [r for r in runs if "val_accuracy" in r.metrics]
    if len(finished) >= 2:
        st.subheader("Hyperparameters against validation accuracy")
        st.caption("Axes whose value is the same in every run are left out.")
        st.plotly_chart(charts.parallel_coordinates(
            [{"epochs": r.config.num_epochs, "batch_size": r.config.batch_size,
              "learning_rate": r.config.learning_rate, "dropout_rate": r.config.dropout_rate,
              "hidden_units": r.config.hidden_units, "train_images": r.config.num_train_images,
              "val_accuracy": r.metrics["val_accuracy"]} for r in finished],
            ["epochs", "batch_size", "learning_rate", "dropout_rate", "hidden_units", "train_images"]),
            key="parallel")

st.subheader("ANN vs CNN, measured")
st.caption("For each kind, the model with the best validation accuracy among the shipped models and your finished "
           "runs; its test accuracy is reported, never used to choose.")
# st.table wraps its sentences, and renders markdown: every cell shown as written (run names included)
st.table(pd.DataFrame(catalog.kind_comparison(ui.model_entries())).set_index("aspect").map(ui.plain))
