"""The Train page's augmentation preview: training digits as augmentation shows them to the model."""

import numpy as np
import streamlit as st

from digitlab import augment_preview, pictures

PER_DIGIT = 7


@st.cache_resource(show_spinner=False)
def _stored():
    return augment_preview.load_preview()


@st.fragment
def augmentation_preview(augment: bool) -> None:
    """Each digit as stored in MNIST, then as random training steps see it; Redraw picks other copies."""
    originals, copies = _stored()
    row = st.container(horizontal=True, vertical_alignment="center")  # the button keeps its label on a narrow page
    if not augment:
        row.caption("Augmentation is off: every epoch shows the model the training digits as they are (left "
                    "column). Turned on, each step sees a randomly rotated, zoomed, shifted, thicker or thinner copy:")
    else:
        row.caption("Augmentation is on: left, a training digit as stored; right, copies as random training steps "
                    "see it (rotation up to ±8°, zoom and shift up to 10%, thicker or thinner strokes).")
    if row.button("Redraw", key="augment-redraw", icon=":material/refresh:", help="Show other random copies"):
        st.session_state.augment_seed = st.session_state.get("augment_seed", 0) + 1
    rng = np.random.default_rng(st.session_state.get("augment_seed", 0))
    chosen = augment_preview.pick(copies, per_digit=PER_DIGIT, rng=rng)  # (10, PER_DIGIT, 28, 28)
    rows = np.concatenate([originals[:, None], chosen], axis=1).reshape(-1, 28, 28) / 255.0
    grid = pictures.montage(rows, columns=PER_DIGIT + 1, gap=3)
    st.image(pictures.grey(np.nan_to_num(grid, nan=0.25), scale=3), output_format="PNG", width="stretch")
