import numpy as np
import pandas as pd
import streamlit as st

from digitlab import charts
from views import ui

CELL_WIDTH = 54  # px: "1,135" fits; the ten columns and the row names fit a desktop page without scrolling

st.title("Results")
entries = ui.model_entries()
model_id = ui.pick_model("Model to study", entries=entries)
try:
    report = ui.report(model_id)
except Exception as error:  # a missing artifact or unreadable file: say so, keep the page alive
    st.error(ui.plain(f"Cannot score this model: {error}. Pick another model or retrain it."), icon=":material/error:")
    st.stop()
data = ui.mnist()

numbers = ui.figures_row()
numbers.metric("Test accuracy", f"{report.accuracy:.2%}", width="content")
numbers.metric("Test loss", f"{report.loss:.4f}", width="content")
numbers.metric("ROC AUC (macro)", f"{report.auc['macro']:.5f}", width="content")
numbers.metric("Mistakes", f"{len(report.mistakes)} of {len(report.y_true):,}", width="content")

st.subheader("Training curves")
smoothing = next((e["label_smoothing"] for e in entries if e["id"] == model_id), 0.0)
st.plotly_chart(charts.training_curves(ui.history(model_id), label_smoothing=smoothing), key="curves")
st.caption(ui.curves_note(smoothing))

st.subheader("Confusion matrix")
normalize = st.toggle("Normalise rows (recall per digit)", key="normalize")
st.caption("Rows: the true digit; columns: the digit predicted. Click or tap a cell to see those test digits.")
picked = st.dataframe(charts.confusion_table(report.confusion, normalize=normalize), key="confusion",
                      on_select="rerun", selection_mode="single-cell", placeholder=ui.MISSING, width="content",
                      column_config={str(d): st.column_config.Column(width=CELL_WIDTH) for d in range(10)})
cell = ui.picked_cell(picked.selection.cells if picked and picked.selection else [], size=10)
if cell:
    true, pred = cell
    idx = np.flatnonzero((report.y_true == true) & (report.y_pred == pred))
    idx = idx[np.argsort(-report.confidence[idx])][:30]
    count = int(report.confusion[true, pred])
    st.markdown(f"**True {true}, predicted {pred}: {count} image{'' if count == 1 else 's'}** "
                f"(most confident first, up to 30)")
    if len(idx):
        ui.digit_gallery(data.x_test[idx], [f"{report.confidence[i]:.0%}" for i in idx])

st.subheader("ROC curves (one digit vs the rest)")
corner = st.toggle("Zoom on the top-left corner (log false-positive rate)", key="roc-corner",
                   help="Good models hug the corner: zoomed, their differences show.")
st.plotly_chart(charts.roc_curves(report.roc, report.auc, corner=corner), key="roc")

st.subheader("Per-digit precision, recall and F1")
st.dataframe(pd.DataFrame({"digit": range(10), "precision": report.precision, "recall": report.recall,
                           "F1": report.f1, "test images": report.support}).style.format(
    {"precision": "{:.4f}", "recall": "{:.4f}", "F1": "{:.4f}", "test images": "{:,}"}).background_gradient(
    subset=["F1"], cmap="RdYlGn", vmin=0.95, vmax=1.0), hide_index=True, placeholder=ui.MISSING)

st.subheader("The most confident mistakes")
worst = report.mistakes[:20]
ui.digit_gallery(data.x_test[worst], [f"{report.y_true[i]}→{report.y_pred[i]} ({report.confidence[i]:.0%})"
                                      for i in worst])
pairs = ", ".join(f"{t}→{p} ×{n}" for t, p, n in report.confused_pairs(top=5))
st.caption(f"Captions read true→predicted (confidence). Most confused pairs: {pairs}.")

st.download_button("Download the model (.keras)", ui.model_bytes(model_id), file_name=f"digitlab-{model_id}.keras",
                   mime="application/octet-stream", key="download")
