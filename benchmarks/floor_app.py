"""The floor under DigitLab's first answer: Streamlit and DigitLab's drawing canvas alone, with a fixed one-line answer
(no model, no preparation, no other element; the canvas's module loads numpy and PIL, as DigitLab's pages do), so
`benchmarks.startup` can time what Streamlit and Chromium take before DigitLab's own pages add anything.

    python -m benchmarks.startup --app benchmarks/floor_app.py --runs 8
"""

import streamlit as st

from views.canvas import digit_canvas


def home():
    st.write("Home")


def draw():
    st.title("Draw a digit")
    if digit_canvas(key="canvas") is not None:
        st.markdown("**ANN: 7** (98%) · **CNN: 7** (99%)")
        st.metric("Prediction", 7)


st.navigation([st.Page(home, title="Home", default=True), st.Page(draw, title="Draw", url_path="draw")]).run()
