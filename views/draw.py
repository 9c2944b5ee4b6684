import numpy as np
import streamlit as st

from digitlab import charts, pictures, serving
from digitlab.preprocessing import BlankImageError, prepare_image
from views import ui
from views.canvas import clearable_canvas

REPLAY_SHOWN = 50  # drawings pictured under "Replay my drawings" (a set holds up to 10,000)

st.title("Draw a digit")
st.caption("Draw one digit, large or small, anywhere on the square: it is cropped, scaled to 20 px and centred the "
           "way MNIST digits were, and both models answer on every stroke.")
ui.crisp_images()
# Once per page run (a stroke reruns only the board below). Your runs join the shipped models once the run store has
# opened; on a fresh server Draw opens it only after its first answer: MLflow's import (seconds of CPU) would
# otherwise compete with the browser's start-up and the first drawing.
entries = ui.model_entries(wait=False, start=False)
names = {e["id"]: e["name"] for e in entries}
chosen = [names.get(st.session_state.get(f"pick-draw-{kind}", st.session_state.get(f"draw-{kind}")),
                   f"shipped {kind.upper()}") for kind in ("ann", "cnn")]  # the pickers below run after the label
with st.popover(ui.plain(f"Models: {chosen[0]} and {chosen[1]}"), icon=":material/tune:"):
    model_ids = {kind: ui.pick_model(f"{kind.upper()} model", kind=kind, key=f"draw-{kind}", entries=entries)
                 for kind in ("ann", "cnn")}


@st.fragment
def board(model_ids: dict) -> None:
    """The canvas and everything that depends on the drawing: a stroke reruns only this fragment."""
    left, details = st.columns([2, 3])
    with left:  # both answers right under the canvas, where a phone shows them
        drawing, answers = clearable_canvas(key="canvas", on_clear=lambda: st.session_state.update(picked_label=None))
    explain = st.container()

    try:
        prepared = prepare_image(drawing) if drawing is not None else None
    except BlankImageError:
        prepared = None
    with explain:
        target = None
        if prepared is not None:
            st.subheader("Which pixels decided it")
            target = st.segmented_control("Explain the score of digit (none picked: each model's own answer)",
                                          list(range(10)), key="target",
                                          help="Empty: each model's own prediction. Gradient × input: red pixels "
                                               "pushed the score up, blue ones pushed it down.")

    # Both models answer (at once) before anything is shown, so the two answers always belong to the same drawing.
    outputs = serving.run_each({kind: ui.model(model_id) for kind, model_id in model_ids.items() if model_id},
                               prepared.image[None], target=target) if prepared is not None else {}

    if prepared is None:
        answers.info("Draw a digit", icon=":material/draw:")
        return
    st.session_state.last_drawing = prepared.image  # the Inside page starts from it
    guesses = {kind: int(out["probabilities"][0].argmax()) for kind, out in outputs.items()}
    answers.markdown(" · ".join(f"**{kind.upper()}: {digit}** ({outputs[kind]['probabilities'][0][digit]:.0%})"
                                  for kind, digit in guesses.items()))
    with details:
        for column, (kind, out) in zip(st.columns(2), outputs.items()):
            probabilities = out["probabilities"][0]
            column.metric(f"Prediction ({kind.upper()})", guesses[kind],
                          help=ui.plain(f"{names.get(model_ids[kind])}: the digit with the highest probability"))
            column.caption(f"Confidence {probabilities[guesses[kind]]:.1%}")
            column.plotly_chart(charts.probability_bars(probabilities, height=200), key=f"bars-{kind}",
                                config=ui.NO_TOOLBAR)
    with explain:
        for column, (kind, out) in zip(st.columns(2), outputs.items()):
            shown = guesses[kind] if target is None else int(target)
            column.image(pictures.saliency_rgb(prepared.image, out["saliency"][0]),
                         caption=f"{kind.upper()}: digit {shown}", width=224, output_format="PNG")
        st.subheader("What the models see")
        st.columns([3, 1])[0].image(  # full width on a phone, where the columns stack
            pictures.preparation_strip(prepared.cropped, prepared.resized, prepared.image), width="stretch",
            output_format="PNG", caption="cropped to the ink → longer side 20 px → centred 28×28 by its centre of "
                                         "mass: the models' input")
        add_to_my_drawings(drawing, guesses.get("cnn", guesses.get("ann", 0)))
    ui.store(wait=False)  # all shown: now the run store may open, in the background (see `entries` above)


def add_to_my_drawings(image, guess: int) -> None:
    """Label the drawing (the latest guess until the user picks) and keep it in "my drawings"."""
    st.subheader("Keep it")
    if st.session_state.get("picked_label") is None:
        st.session_state.label = guess
    row = st.container(horizontal=True, vertical_alignment="bottom")  # wraps on a narrow page: no label is cut
    label = row.selectbox("This drawing is a", range(10), key="label", width=160,
                          on_change=lambda: st.session_state.update(picked_label=st.session_state.label))
    if row.button("Add to my drawings", key="add", icon=":material/add:"):
        try:
            ui.drawing_set().add(image, int(label))
        except (ValueError, OSError) as error:
            st.error(ui.plain(f"Not added: {error}"), icon=":material/block:")
            return
        st.session_state.picked_label = None
        st.toast(f"Added as a {label}.")
        st.rerun()  # the whole page: the scores below include it


board(model_ids)
ui.warm_up_drawing(tuple(model_id for model_id in model_ids.values() if model_id))  # while the person draws

st.subheader("My drawings")
drawings = ui.drawing_set()
drawn = drawings.list()
images, labels = drawings.arrays(drawn)
if len(labels):
    st.caption("Accuracy of every model on your drawings, beside its accuracy on MNIST's test digits.")
    percent = st.column_config.NumberColumn(format="%.1f%%", width="small")  # three columns fit a phone
    st.dataframe(ui.drawing_scores(entries, images, labels), hide_index=True, key="my-scores", placeholder=ui.MISSING,
                 column_config={"model": st.column_config.TextColumn(width="medium"), "MNIST test": percent,
                                "my drawings": st.column_config.NumberColumn(  # "my drawings" was cut on a phone
                                    "yours", format="%.1f%%", width="small", help="Accuracy on your drawings")})
    replay_id = ui.pick_model("Replay my drawings through", key="replay", entries=entries)
    guesses = ui.model(replay_id).predict(images).argmax(axis=1)
    shown = np.argsort(guesses == labels, kind="stable")[:REPLAY_SHOWN]  # misread ones first, oldest first
    if len(labels) > REPLAY_SHOWN:
        st.caption(f"{REPLAY_SHOWN} of your {len(labels):,} drawings, the misread ones first.")
    ui.digit_gallery(images[shown], [f"{labels[i]}→{guesses[i]}" + ("" if labels[i] == guesses[i] else " ✗")
                                     for i in shown])
    newest = drawn[-1]
    if st.button(f"Remove the newest drawing (labelled {newest.label})", key="remove-newest", icon=":material/undo:",
                 help="Added one with the wrong label, or by mistake? This takes it out of your set."):
        drawings.remove(newest.drawing_id)
        st.rerun()
else:
    st.caption("None yet: draw a digit, say what it is, and add it. Every model is then scored on your set.")
io_cols = st.columns(2)
io_cols[0].download_button("Export my drawings", drawings.export_bytes, "digitlab-drawings.npz", key="export",
                           disabled=not len(labels))
if ui.limits().uploads:  # the public demo accepts no files
    io_cols[1].file_uploader("Import drawings (.npz)", type=["npz"], key="import", on_change=ui.import_drawings,
                             args=(drawings,))
if "import_error" in st.session_state:
    st.error(ui.plain(st.session_state.pop("import_error")), icon=":material/error:")
