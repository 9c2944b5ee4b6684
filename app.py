"""DigitLab dashboard: `streamlit run app.py`. Pages lay out widgets; the digitlab package does the work.

The page scripts live in views/, not pages/: Streamlit runs a server's first session through its legacy
folder-navigation mode whenever a folder named pages/ exists, listing every file there as a page.
"""

import streamlit as st
import streamlit.delta_generator

from views import ui
from views.visitor import keep_cookie

# A fresh server's first visitor waits for these two (measured: 0.15 s of the 0.5 s before the canvas is sent):
# Streamlit checks, on the first element a process sends, whether it runs in a Python REPL (inspect.stack() over
# every loaded module, 80 ms); `streamlit run` is not one, so the check is marked done. An emoji page icon loads
# Streamlit's emoji catalogue (70 ms); a Material icon does not.
streamlit.delta_generator._use_warning_has_been_displayed = True
st.set_page_config(page_title="DigitLab", page_icon=":material/draw:", layout="wide")

pages = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/results.py", title="Results", icon=":material/insights:"),
    st.Page("views/draw.py", title="Draw", icon=":material/draw:"),
    st.Page("views/inside.py", title="Inside the model", icon=":material/neurology:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/sweep.py", title="Sweep", icon=":material/tune:"),  # says it is off in the public demo
]
if ui.limits().public:  # a stranger's crafted request that fails inside Streamlit itself shows no traceback
    st.set_option("client.showErrorDetails", "none")
page = st.navigation(pages)
keep_cookie()
try:
    page.run()
except Exception as error:  # st.rerun/st.stop are BaseExceptions and pass through; anything else is a bug
    ui.show_failure(page.title, error)
