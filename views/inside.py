import numpy as np
import streamlit as st

from digitlab import charts, embedding as maps, pictures
from digitlab.preprocessing import BlankImageError, prepare_image
from views import ui
from views.canvas import clearable_canvas
from views.digit_hover import digit_hover

st.title("Inside the model")
st.caption("What each layer computes on your drawing, where the model puts it among 5,000 MNIST test digits, and "
           "what the model is made of.")
ui.crisp_images()
entries = ui.model_entries()
names = {e["id"]: e["name"] for e in entries}
model_id = ui.pick_model("Model", key="model_id", entries=entries)  # the same choice as on Results
digit_hover(ui.map_sprite(), chart="inside-map", columns=100)  # the sprite travels once per page run, not per stroke
VIEWS = ["Layer by layer", "Where your digit sits", "Anatomy"]


@st.fragment
def board(model_id: str) -> None:
    """The canvas and the views: a stroke, a tab or an option reruns only this fragment, and only the open tab."""
    left, right = st.columns([2, 3])
    with left:
        canvas_image, answer = clearable_canvas(key="inside-canvas",
                                                on_clear=lambda: st.session_state.pop("last_drawing", None))
    image = drawing(canvas_image, answer)
    model = ui.model(model_id)
    out = model.run(image[None]) if image is not None else None
    if out is not None:
        digit = int(out["probabilities"][0].argmax())
        name = ui.plain(names.get(model_id, "The model"))
        answer.markdown(f"**{name}: {digit}** ({out['probabilities'][0][digit]:.0%})")
    with right:
        layers, where, anatomy = st.tabs(VIEWS, key="inside-view", on_change="rerun")
    if layers.open:
        with layers:
            layer_by_layer(model, out)
    if where.open:
        with where:
            where_it_sits(out)
    if anatomy.open:
        with anatomy:
            anatomy_table()


def drawing(canvas_image, answer):
    """The drawing on this canvas, else the last one made on Draw, as the model's (28, 28) input; None if neither."""
    try:
        if canvas_image is not None:
            return prepare_image(canvas_image).image
    except BlankImageError:
        pass
    last = st.session_state.get("last_drawing")
    if last is not None:  # shown, or the empty canvas beside the pictures would seem to be what they show
        row = answer.container(horizontal=True, vertical_alignment="center")
        row.image((last * 255).astype(np.uint8), width=84, output_format="PNG")
        row.caption("Your last drawing from the Draw page, as the model sees it (28×28). Draw here to use a new one.")
        return last
    answer.info("Draw a digit", icon=":material/draw:")
    return None


def layer_by_layer(model, out) -> None:
    if out is None:
        st.caption("Draw a digit to see what each layer makes of it.")
        return
    kind, kernel = ui.first_kernel(model_id)
    hidden = out["hidden"][0]
    pictures_ = []  # (picture, caption), laid out two to a row (one on a phone)
    if kind == "Conv2D":
        pictures_.append((pictures.filter_grid(kernel), f"The first layer's {kernel.shape[-1]} filters "
                          f"({kernel.shape[0]}×{kernel.shape[1]}): red weights respond to ink, blue ones to its "
                          "absence."))
        for i, name in enumerate(model.convolutions):
            maps_ = out[name][0]  # (h, w, filters)
            pictures_.append((pictures.activation_grid(maps_), f"Convolution {i + 1}: {maps_.shape[2]} maps of "
                              f"{maps_.shape[0]}×{maps_.shape[1]}, one colour scale (brightest {maps_.max():.2f})."))
    pictures_.append((pictures.unit_grid(hidden), f"The last hidden layer: {len(hidden)} units, "
                      f"{int((hidden > 0).sum())} active on this drawing (brighter = stronger)."))
    for pair in range(0, len(pictures_), 2):  # row by row: they read left to right, then down (stacked on a phone)
        for column, (picture, caption) in zip(st.columns(2), pictures_[pair:pair + 2]):
            column.image(picture, caption=caption, width="stretch", output_format="PNG")
    if kind == "Dense":
        top = np.argsort(hidden)[::-1][:8]
        st.markdown("**What the units that fired most look for**: each one's 784 input weights as a 28×28 "
                    "template (red: ink there raises the unit; blue: lowers it).")
        st.image([pictures.signed(kernel[:, unit].reshape(28, 28)) for unit in top], width=80, output_format="PNG",
                 caption=[f"unit {unit}: {hidden[unit]:.2f}" for unit in top])
    st.markdown("**The output layer**: one probability per digit, from the hidden layer above.")
    # Also the page's first Plotly chart: the browser loads Plotly here, not when the map is first asked for.
    st.plotly_chart(charts.probability_bars(out["probabilities"][0], height=180), key="inside-output",
                    config=ui.NO_TOOLBAR)


def where_it_sits(out) -> None:
    made = ui.embedding(model_id)
    options = st.container(horizontal=True, gap="medium")  # wraps on a narrow page: no label is cut
    method = options.segmented_control("Map", maps.METHODS, default="pca", key="inside-method",
                                       format_func={"pca": "PCA", "tsne": "t-SNE"}.get,
                                       help="PCA: the two directions of largest spread, a straight projection. "
                                            "t-SNE: keeps each digit's neighbours close; distances between "
                                            "clusters mean little.") or "pca"
    mistakes = options.toggle("Ring the model's mistakes", key="inside-mistakes", width="content")
    if made is None or (method == "tsne" and made.tsne is None):
        wait_for_map(method)
        if made is None:
            return
        method = "pca"
    position, near = maps.place(made, out["hidden"][0], method=method) if out is not None else (None, None)
    variance = made.pca_variance
    titles = (f"PC 1 ({variance[0]:.0%} of the spread)", f"PC 2 ({variance[1]:.0%})") if method == "pca" else ("", "")
    st.plotly_chart(charts.embedding_map(made.positions(method), made.labels, drawing=position, neighbours=near,
                                         predicted=made.predicted if mistakes else None, axis_titles=titles,
                                         revision=f"{model_id}-{method}"),
                    key="inside-map", config={"displayModeBar": False, "scrollZoom": True})
    where = "; draw a digit to see where it goes" if position is None else "; ★ is your drawing" + (
        ", placed by its nearest digits (t-SNE cannot project new points)" if method == "tsne" else "")
    st.caption(f"The last hidden layer of {len(made.labels):,} MNIST test digits, coloured by their true digit "
               f"(point at one to see it){where}")
    if near is not None:
        st.markdown("**Its 8 nearest test digits** (in the hidden layer itself)")
        digits = ui.mnist().x_test[made.indices[near]]
        st.image(list(digits), width=56, output_format="PNG", caption=[
            f"{made.labels[i]}" + ("" if made.labels[i] == made.predicted[i] else f" (read {made.predicted[i]})")
            for i in near])


@st.fragment(run_every=2)
def wait_for_map(method: str) -> None:
    """Have the map made in a separate process (once per model), say so, and show it as soon as it is there."""
    made = ui.embedding(model_id)
    if made is not None and (method == "pca" or made.tsne is not None):
        st.rerun()
    why = maps.failure(model_id)
    if why:
        st.error(ui.plain(f"This model's map could not be made: {why}"), icon=":material/error:")
        if st.button("Try again", key="inside-map-retry"):
            maps.start_making(model_id, at_most=ui.limits().max_map_makers)
        return
    meanwhile = " PCA is shown meanwhile." if made is not None else ""
    if maps.start_making(model_id, at_most=ui.limits().max_map_makers):  # unless one is already at it
        st.info("Making this model's map: its last hidden layer for 5,000 test digits, then t-SNE (about a minute, "
                f"once).{meanwhile}", icon=":material/hourglass_top:")
    else:
        st.info("This model's map is next: the demo makes one model's map at a time, and another's is being made "
                f"(about a minute each).{meanwhile}", icon=":material/hourglass_top:")


def anatomy_table() -> None:
    anatomy = ui.anatomy(model_id)
    shown = [layer for layer in anatomy.layers if not layer.training_only]
    hidden = len(anatomy.layers) - len(shown)
    if hidden and st.toggle(f"Show the {hidden} layers that act only in training", key="inside-training-only"):
        shown = anatomy.layers
    st.dataframe([{"layer": layer.name, "type": layer.type + (" (training only)" if layer.training_only else ""),
                   "output shape": "×".join(map(str, layer.output_shape)), "parameters": layer.parameters,
                   "FLOPs": layer.flops} for layer in shown], hide_index=True, key="inside-anatomy",
                 placeholder=ui.MISSING, height="content",  # every layer at once: a model has a few dozen at most
                 column_config={"layer": ui.NAME_COLUMN, "type": st.column_config.TextColumn(width="medium"),
                                "parameters": st.column_config.NumberColumn(format="localized"),
                                "FLOPs": st.column_config.NumberColumn(format="localized")})
    st.markdown(f"**{anatomy.parameters:,} parameters · {anatomy.flops / 1e6:.2f} million FLOPs per image** "
                "(a multiply-add counts 2, a bias add 1" + ("" if ui.limits().public else
                                                           "; also `python -m digitlab inspect MODEL`") + ").")


board(model_id)
ui.warm_up_drawing((model_id,) if model_id else ())  # while the person draws
