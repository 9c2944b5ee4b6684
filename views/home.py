import pandas as pd
import streamlit as st

from digitlab import catalog, charts
from views import ui

st.title("DigitLab")
st.markdown(
    "Train **ANN** and **CNN** models on MNIST's 70,000 handwritten digits and watch them learn live.  \n"
    "Study what they get right and wrong: curves, confusion matrix, ROC, per-class metrics, the digits they miss.  \n"
    "Compare runs side by side, and draw your own digits for instant predictions."
)

st.page_link("views/draw.py", label="Draw a digit: both models answer as you draw", icon=":material/draw:")
links = st.container(horizontal=True)  # a row that wraps where the page is narrow: no label is cut
links.page_link("views/train.py", label="Train a model", icon=":material/model_training:")
links.page_link("views/results.py", label="Study the results", icon=":material/insights:")
links.page_link("views/compare.py", label="Compare runs", icon=":material/compare:")
links.page_link("views/inside.py", label="Look inside a model", icon=":material/neurology:")
if not ui.limits().public:  # sweeps are off in the public demo: no link to a page that says so
    links.page_link("views/sweep.py", label="Search hyperparameters", icon=":material/tune:")

data = ui.mnist()
numbers = ui.figures_row()
numbers.metric("Training images", f"{len(data.y_train):,}", width="content")
numbers.metric("Test images", f"{len(data.x_test):,}", width="content")
models_metric, best_metric = numbers.empty(), numbers.empty()  # filled once the run store has answered (below)

st.subheader("The dataset at a glance")
samples, balance, means = st.tabs(["Sample digits", "Class balance", "Mean digit"])
samples.plotly_chart(charts.samples_by_class(data.samples, data.sample_labels, per_class=12), key="samples",
                     config=ui.NO_TOOLBAR)
balance.plotly_chart(charts.class_distribution(data.y_train, data.y_test), key="balance")
means.plotly_chart(charts.mean_images(data.means), key="means", config=ui.NO_TOOLBAR)

st.subheader("Models")
entries = ui.model_entries(wait=False, start=False)  # at once: the shipped models, and runs once the store is open
best = catalog.best_by_validation(entries)
models_metric.metric("Models available", len(entries), width="content")
best_metric.metric("Best model's test accuracy", f"{best['test_accuracy']:.2%}" if best else "–",
                   width="content", help=f"{ui.plain(best['name'])}, chosen by its validation accuracy "
                   f"({best['val_accuracy']:.2%}), the highest; its test accuracy chose nothing." if best else None)
st.dataframe(pd.DataFrame([{
    "model": e["name"], "kind": e["model"].upper(), "validation accuracy": e["val_accuracy"],
    "test accuracy": e["test_accuracy"], "training time": ui.seconds(e["train_seconds"]),
    "parameters": int(e["num_parameters"])} for e in entries]).assign(
    **{"validation accuracy": lambda t: t["validation accuracy"] * 100,
       "test accuracy": lambda t: t["test accuracy"] * 100}),
    hide_index=True, key="models", placeholder=ui.MISSING, column_config={"model": ui.NAME_COLUMN,
        "validation accuracy": st.column_config.NumberColumn(format="%.2f%%"),
        "test accuracy": st.column_config.NumberColumn(format="%.2f%%"),
        "parameters": st.column_config.NumberColumn(format="localized")})  # 329,962 as everywhere else
ui.store(wait=False)  # the table is out: the run store may open now (MLflow's import would slow the table's own)
if ui.store_opening():  # a fresh server: MLflow's import and a new store take seconds
    st.caption("Your runs join this table in a moment: the run store is still opening.")
    ui.rerun_when_store_opens()
