"""The drawing canvas: a black 280×280 square (smaller where its column is narrower) that takes mouse, pen and finger
strokes in white ink, with Undo in its corner, and sends the drawing (a PNG) the moment a stroke ends.

Written here, ~65 lines of script, instead of streamlit-drawable-canvas: for a fresh visitor that component cost
about a second of the first answer (issue 16: ≤ 4 s from server start), and a digit needs none of its shape tools.
It boots a 413 KB Fabric.js bundle before the canvas shows, its first value (a dict) makes Streamlit import pandas and
pyarrow (~0.9 CPU-s on a fresh server, before the canvas is sent), and it waits 200 ms after every stroke before
sending. This one is a components-v2 element: plain DOM in the page, no bundle, no wait.
"""

from __future__ import annotations

import logging

import streamlit as st

from digitlab.preprocessing import read_canvas

_log = logging.getLogger("digitlab")
SIZE = 280  # canvas pixels: 10× MNIST, comfortable for a finger on a 390-px-wide phone
INK_WIDTH = 22  # px: after scaling to 20 px a stroke is ~1.6 px wide, like MNIST's pen

_HTML = f"""<div class="pad">
<canvas class="digit-pad" width="{SIZE}" height="{SIZE}" role="img"
  aria-label="Drawing canvas: draw one digit"></canvas>
<button class="undo" type="button" aria-label="Undo" title="Undo the last stroke" disabled>↶</button>
</div>"""
_CSS = f"""
.pad {{ position: relative; width: 100%; max-width: {SIZE}px; aspect-ratio: 1; }}
.digit-pad {{ display: block; width: 100%; height: 100%; touch-action: none; cursor: crosshair;
  border-radius: 0.5rem; background: #000; }}
.undo {{ position: absolute; top: 0.3rem; right: 0.3rem; width: 2.2rem; height: 2.2rem; font-size: 1.2rem;
  border: 1px solid rgba(255, 255, 255, 0.4); border-radius: 0.5rem; background: rgba(255, 255, 255, 0.15);
  color: #fff; cursor: pointer; }}
.undo:disabled {{ display: none; }}
"""
_JS = """
export default function ({ parentElement, setStateValue }) {
  const canvas = parentElement.querySelector('canvas');
  const undo = parentElement.querySelector('.undo');
  const pen = canvas.getContext('2d');
  const strokes = canvas.strokes || (canvas.strokes = []);  // on the element: it outlives a second call (theme)
  if (canvas.listening) canvas.listening.abort();  // Streamlit calls this again when the theme changes
  const listening = canvas.listening = new AbortController();
  const on = (target, type, handler) => target.addEventListener(type, handler, { signal: listening.signal });
  let stroke = null, pointer = null;

  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  };
  const segment = (from, to) => {
    pen.beginPath(); pen.moveTo(from[0], from[1]); pen.lineTo(to[0], to[1]); pen.stroke();
  };
  const paint = () => {
    pen.clearRect(0, 0, canvas.width, canvas.height);  // transparent: the page shows black, the PNG's alpha is the ink
    pen.strokeStyle = '#fff'; pen.lineWidth = %d; pen.lineCap = 'round'; pen.lineJoin = 'round';
    for (const points of strokes) points.forEach((point, i) => segment(points[Math.max(i - 1, 0)], point));
    undo.disabled = !strokes.length;
  };
  const send = () => setStateValue('drawing', strokes.length ? canvas.toDataURL('image/png') : null);

  on(canvas, 'pointerdown', (event) => {  // one pointer draws: a second finger or a palm is ignored
    if (stroke || !event.isPrimary || event.button > 0) return;
    event.preventDefault();
    try { canvas.setPointerCapture(event.pointerId); } catch (error) { /* a synthetic pointer: no capture */ }
    pointer = event.pointerId;
    stroke = [at(event)];
    strokes.push(stroke);
    segment(stroke[0], stroke[0]);  // a dot, if the pointer goes no further
    undo.disabled = false;
  });
  on(canvas, 'pointermove', (event) => {
    if (!stroke || event.pointerId !== pointer) return;
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of (coalesced.length ? coalesced : [event])) {
      const point = at(each);
      segment(stroke[stroke.length - 1], point);
      stroke.push(point);
    }
  });
  const end = (event) => {
    if (!stroke || event.pointerId !== pointer) return;
    stroke = pointer = null;
    send();
  };
  on(canvas, 'pointerup', end);
  on(canvas, 'pointercancel', end);
  on(undo, 'click', () => {
    if (stroke) return;  // not while a stroke is being drawn
    strokes.pop(); paint(); send();
  });

  paint();
  canvas.dataset.ready = 'true';  // takes strokes from now on (tests and benchmarks wait for it)
  return () => { listening.abort(); delete canvas.dataset.ready; };
}
""" % INK_WIDTH
_pad = st.components.v2.component("digitlab.digit_pad", html=_HTML, css=_CSS, js=_JS)


def digit_canvas(*, key: str):
    """The canvas; returns the drawing as uint8 RGBA (280, 280, 4), white ink on a transparent background (the ink is
    the alpha channel, which spares the preparation a luminance conversion: 0.14 ms of a stroke), or None while it is
    empty.

    A value that is not this canvas's PNG (only a hand-made request sends one) reads as empty.
    """
    value = _pad(key=key, default={"drawing": None}, on_drawing_change=lambda: None, width="stretch",
                 height="content").get("drawing")
    try:
        return read_canvas(value, size=SIZE) if value else None
    except ValueError as error:
        _log.warning("canvas value refused (%s): read as an empty canvas", error)
        return None


def clearable_canvas(*, key: str, on_clear=None):
    """A digit canvas, a container right under it (a phone shows what is put there next to the drawing) and a
    Clear button that swaps in a fresh canvas. Call it inside an `st.fragment`: Clear reruns only that.

    Returns (the drawing or None, the container).
    """
    version = st.session_state.setdefault(f"{key}_version", 0)
    drawing = digit_canvas(key=f"{key}-{version}")
    below = st.container()
    if st.button("Clear", key=f"{key}-clear", icon=":material/ink_eraser:"):
        st.session_state[f"{key}_version"] += 1
        if on_clear:
            on_clear()
        st.rerun(scope="fragment")
    return drawing, below
