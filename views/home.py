import pandas as pd
import streamlit as st

from digitlab import charts
from views import ui

st.title("DigitLab")
st.markdown(
    "Train **ANN** and **CNN** models on MNIST's 70,000 handwritten digits and watch them learn live.  \n"
    "Study what they get right and wrong: curves, confusion matrix, ROC, per-class metrics, the digits they miss.  \n"
    "Compare runs side by side, and draw your own digits for instant predictions."
)

data = ui.mnist()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Training images", f"{len(data.y_train):,}")
c2.metric("Test images", f"{len(data.x_test):,}")
models_metric, best_metric = c3.empty(), c4.empty()  # filled once the run store has answered (below)

st.subheader("The dataset at a glance")
samples, balance, means = st.tabs(["Sample digits", "Class balance", "Mean digit"])
samples.plotly_chart(charts.samples_by_class(data.samples, data.sample_labels, per_class=12), key="samples")
balance.plotly_chart(charts.class_distribution(data.y_train, data.y_test), key="balance")
means.plotly_chart(charts.mean_images(data.means), key="means")

st.subheader("Models")
entries = ui.model_entries()
models_metric.metric("Models available", len(entries))
best_metric.metric("Best test accuracy", f"{max(e['test_accuracy'] for e in entries):.2%}")
st.table(pd.DataFrame([{"model": e["name"], "kind": e["model"].upper(), "test accuracy": f"{e['test_accuracy']:.2%}",
                        "training time": ui.seconds(e["train_seconds"]), "parameters": f"{int(e['num_parameters']):,}"}
                       for e in entries]).set_index("model"))

st.subheader("Where to next")
l1, l2, l3, l4 = st.columns(4)
l1.page_link("views/train.py", label="Train a model", icon="🏋️")
l2.page_link("views/results.py", label="Study the results", icon="📊")
l3.page_link("views/draw.py", label="Draw a digit", icon="✍️")
l4.page_link("views/compare.py", label="Compare runs", icon="⚖️")
