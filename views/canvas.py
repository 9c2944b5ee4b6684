"""The drawing canvas: streamlit-drawable-canvas, with only the tool a digit needs (Undo) pinned inside it.

The canvas's own toolbar appears above the canvas on hover, over the text there, and offers shape tools that mean
nothing for a digit (Edit, Bring forward, Send backward, Delete selected, Redo, Send). Its styles live in a shadow
root that page CSS cannot reach, so a tiny script (a components-v2 element, which runs in the page) adds a style
there: Undo only, always visible in the canvas's top-right corner (phones have no hover). Clearing is the page's
Clear button, which also resets the offered label.
"""

from __future__ import annotations

import streamlit as st
from streamlit_drawable_canvas import st_canvas

SIZE = 280  # canvas pixels: 10× MNIST, comfortable for a finger on a 390-px-wide phone

_STYLE = """
.dc-toolbar, .dc-root:hover > .dc-toolbar { opacity: 1 !important; top: 0.3rem !important;
  right: 0.3rem !important; transition: none !important; padding: 0 !important; }
.dc-toolbar-separator, .dc-toolbar-contextual, .dc-icon-button:not([aria-label="Undo"]) { display: none !important; }
"""
_SCRIPT = """
export default function () {
  const css = %s;
  const apply = () => document.querySelectorAll('[data-testid="stBidiComponentIsolated"]').forEach((host) => {
    const root = host.shadowRoot;
    if (root && root.querySelector('.dc-toolbar') && !root.querySelector('style[data-digitlab]')) {
      const style = document.createElement('style');
      style.dataset.digitlab = 'toolbar';
      style.textContent = css;
      root.appendChild(style);
    }
  });
  apply();
  const observer = new MutationObserver(apply);  // a cleared canvas is a new element
  observer.observe(document.body, { childList: true, subtree: true });
  const timer = setInterval(apply, 1000);  // its shadow root fills after the element appears
  return () => { observer.disconnect(); clearInterval(timer); };
}
"""
_toolbar = st.components.v2.component("digitlab.canvas_toolbar", js=_SCRIPT % repr(_STYLE),
                                      isolate_styles=False)


def canvas_toolbar() -> None:
    """Put once on a page (outside any fragment): it restyles the toolbar of every canvas on the page."""
    _toolbar(key="canvas-toolbar")


def digit_canvas(*, key: str):
    """White ink on black, freehand; returns streamlit-drawable-canvas's result (image_data: RGBA (280, 280, 4))."""
    return st_canvas(stroke_width=22, stroke_color="#FFFFFF", background_color="#000000", height=SIZE, width=SIZE,
                     drawing_mode="freedraw", return_image_data=True, key=key)


def clearable_canvas(*, key: str, on_clear=None):
    """A digit canvas, a container right under it (a phone shows what is put there next to the drawing) and a
    Clear button that swaps in a fresh canvas. Call it inside an `st.fragment`: Clear reruns only that.

    Returns (the canvas result, the container).
    """
    version = st.session_state.setdefault(f"{key}_version", 0)
    canvas = digit_canvas(key=f"{key}-{version}")
    below = st.container()
    if st.button("Clear", key=f"{key}-clear", icon=":material/ink_eraser:"):
        st.session_state[f"{key}_version"] += 1
        if on_clear:
            on_clear()
        st.rerun(scope="fragment")
    return canvas, below
