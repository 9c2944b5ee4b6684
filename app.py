"""DigitLab dashboard: `streamlit run app.py`. Pages lay out widgets; the digitlab package does the work."""

import streamlit as st

from pages import ui

st.set_page_config(page_title="DigitLab", page_icon="✍️", layout="wide")
ui.warm_tensorflow()  # TensorFlow takes 3-10 s to import: start now, off the page's path

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/train.py", title="Train", icon="🏋️"),
    st.Page("pages/results.py", title="Results", icon="📊"),
    st.Page("pages/draw.py", title="Draw", icon="✍️"),
    st.Page("pages/compare.py", title="Compare", icon="⚖️"),
]
st.navigation(pages).run()
