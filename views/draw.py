import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from digitlab import charts
from digitlab.preprocessing import BlankImageError, prepare_image
from views import ui

st.title("Draw a digit")
st.caption("Draw one digit, large and centred or not: it is cropped, scaled to 20 px and centred the way MNIST "
           "digits were. Both models predict on every stroke.")

left, right = st.columns([1, 2])
with left:
    version = st.session_state.setdefault("canvas_version", 0)
    canvas = st_canvas(stroke_width=22, stroke_color="#FFFFFF", background_color="#000000", height=280, width=280,
                       drawing_mode="freedraw", return_image_data=True, key=f"canvas-{version}")
    if st.button("Clear", key="clear"):
        st.session_state.canvas_version += 1
        st.session_state.picked_label = None
        st.rerun()

try:
    prepared = prepare_image(canvas.image_data) if canvas.image_data is not None else None
except BlankImageError:
    prepared = None

entries = ui.model_entries()  # once per run: every stroke reruns this page
predicted = {}  # kind → (model id, digit)
with right:
    if prepared is None:
        st.info("Draw a digit", icon="✍️")
    columns = st.columns(2)
    for column, kind in zip(columns, ("ann", "cnn")):
        with column:
            model_id = ui.pick_model(f"{kind.upper()} model", kind=kind, key=f"draw-{kind}", entries=entries)
            if prepared is None:
                continue
            probabilities = ui.model(model_id).predict(prepared.image[None])[0]
            digit = int(np.argmax(probabilities))
            predicted[kind] = (model_id, digit)
            st.metric("Prediction", digit, help=f"{kind.upper()} {model_id}")
            st.caption(f"Confidence {probabilities[digit]:.1%}")
            st.plotly_chart(charts.probability_bars(probabilities, height=220), key=f"bars-{kind}")

if prepared is not None:
    st.subheader("What the models see")
    steps = st.columns(4)
    for col, (title, image) in zip(steps, (("your drawing", prepared.ink), ("cropped to the ink", prepared.cropped),
                                            ("longer side 20 px", prepared.resized),
                                            ("centred 28×28: the input", prepared.image))):
        col.plotly_chart(charts.digit_image(image, title=title, height=230), key=f"step-{title}")

    st.subheader("Which pixels decided it")
    target = st.segmented_control("Explain the score of digit", list(range(10)), key="target",
                                  help="Empty: each model's own prediction. Gradient × input: red pixels pushed the "
                                       "score up, blue ones pushed it down.")
    for col, (kind, (model_id, digit)) in zip(st.columns(2), predicted.items()):
        shown = digit if target is None else int(target)
        heat = ui.model(model_id).run(prepared.image[None], target=shown, outputs=["saliency"])["saliency"][0]
        col.plotly_chart(charts.saliency_overlay(prepared.image, heat, title=f"{kind.upper()}: digit {shown}"),
                         key=f"saliency-{kind}")

st.subheader("My drawings")
drawings = ui.drawing_set()
if prepared is not None:
    add_cols = st.columns([1, 1, 2], vertical_alignment="bottom")
    if st.session_state.get("picked_label") is None:  # the offered label follows the latest guess until picked
        st.session_state.label = predicted.get("cnn", predicted.get("ann", (None, 0)))[1]
    label = add_cols[0].selectbox("This drawing is a", range(10), key="label",
                                  on_change=lambda: st.session_state.update(picked_label=st.session_state.label))
    if add_cols[1].button("Add to my drawings", key="add"):
        try:
            drawings.add(canvas.image_data, int(label))
            st.session_state.picked_label = None
            st.toast(f"Added as a {label}.")
        except (ValueError, OSError) as error:
            st.error(f"Not added: {error}", icon="🚫")
images, labels = drawings.arrays()
if len(labels):
    st.dataframe(ui.drawing_scores(entries, images, labels), hide_index=True, key="my-scores", column_config={
        "accuracy on my drawings": st.column_config.NumberColumn(format="percent"),
        "MNIST test accuracy": st.column_config.NumberColumn(format="percent")})
    replay_id = ui.pick_model("Replay my drawings through", key="replay", entries=entries)
    guesses = ui.model(replay_id).predict(images).argmax(axis=1)
    st.plotly_chart(charts.digit_grid(images, [f"{t}→{g}" + ("" if t == g else " ✗") for t, g in zip(labels, guesses)]),
                    key="replay-grid")
else:
    st.caption("None yet: draw a digit, say what it is, and add it. Every model is then scored on your set.")
io_cols = st.columns(2)
io_cols[0].download_button("Export my drawings", drawings.export_bytes, "digitlab-drawings.npz", key="export",
                           disabled=not len(labels))
if ui.limits().uploads:  # the public demo accepts no files
    io_cols[1].file_uploader("Import drawings (.npz)", type=["npz"], key="import", on_change=ui.import_drawings,
                             args=(drawings,))
if "import_error" in st.session_state:
    st.error(st.session_state.pop("import_error"))
