import pandas as pd
import streamlit as st

from digitlab import catalog, charts
from views import ui

st.title("Compare runs")
store = ui.store()
runs = [r for r in ui.runs() if r.config is not None]
if not runs:
    st.info("No runs yet. Train one on the Train page; the shipped models are compared below.", icon="🏋️")

table = pd.DataFrame([{
    "run": r.name, "model": r.config.model.upper(), "status": r.status.lower() + (f" ({r.stopped})" if r.stopped
                                                                                     else ""),
    "epochs": r.config.num_epochs, "batch size": r.config.batch_size, "learning rate": r.config.learning_rate,
    "optimizer": r.config.optimizer, "dropout": r.config.dropout_rate, "augment": r.config.augment,
    "training images": r.config.num_train_images, "test accuracy": r.metrics.get("test_accuracy"),
    "training time (s)": r.metrics.get("train_seconds"), "parameters": r.metrics.get("num_parameters"),
} for r in runs])
if runs:
    st.caption("Select rows to overlay their validation curves.")
    picked = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs",
                          column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    rows = picked.selection.rows or list(range(min(5, len(runs))))
    histories = {runs[i].name: store.history(runs[i].run_id) for i in rows}
    metric = st.radio("Curve", ["val_accuracy", "val_loss", "accuracy", "loss"], horizontal=True, key="metric")
    st.plotly_chart(charts.compare_curves(histories, metric=metric), key="overlay")

    finished = [r for r in runs if "test_accuracy" in r.metrics]
    if len(finished) >= 2:
        st.subheader("Hyperparameters against test accuracy")
        st.plotly_chart(charts.parallel_coordinates(
            [{"epochs": r.config.num_epochs, "batch_size": r.config.batch_size,
              "learning_rate": r.config.learning_rate, "dropout_rate": r.config.dropout_rate,
              "train_images": r.config.num_train_images, "test_accuracy": r.metrics["test_accuracy"]}
             for r in finished], ["epochs", "batch_size", "learning_rate", "dropout_rate", "train_images"]),
            key="parallel")

st.subheader("ANN vs CNN, measured")
st.caption("The most accurate model of each kind among the shipped models and your finished runs.")
st.dataframe(pd.DataFrame(catalog.kind_comparison(ui.model_entries())), hide_index=True, key="kinds")
