"""DigitLab dashboard: `streamlit run app.py`. Pages lay out widgets; the digitlab package does the work.

The page scripts live in views/, not pages/: Streamlit runs a server's first session through its legacy
folder-navigation mode whenever a folder named pages/ exists, listing every file there as a page.
"""

import streamlit as st

from views import ui
from views.visitor import keep_cookie

st.set_page_config(page_title="DigitLab", page_icon="✍️", layout="wide")

pages = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/results.py", title="Results", icon=":material/insights:"),
    st.Page("views/draw.py", title="Draw", icon=":material/draw:"),
    st.Page("views/inside.py", title="Inside the model", icon=":material/neurology:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/sweep.py", title="Sweep", icon=":material/tune:"),  # says it is off in the public demo
]
page = st.navigation(pages)
keep_cookie()
try:
    page.run()
except Exception as error:  # st.rerun/st.stop are BaseExceptions and pass through; anything else is a bug
    ui.show_failure(page.title, error)
