"""The digit under the pointer on the Inside page's map: a picture beside Plotly's hover label.

Plotly's hover labels hold text only. The map's points carry their row as customdata; a tiny script (a components-v2
element, which runs in the page) listens to the chart's `plotly_hover` events and draws that row's digit from one
sprite of all the map's test digits, sent once per page run (not per stroke): 5,000 digits in a 0.85 MB PNG.
"""

from __future__ import annotations

import streamlit as st

_SCRIPT = """
export default function (component) {
  const { data } = component;
  const size = data.size, zoom = 3;
  const sprite = new Image();
  sprite.src = data.sprite;
  let tip = document.getElementById('digitlab-digit-tip');
  if (!tip) {
    tip = document.createElement('canvas');
    tip.id = 'digitlab-digit-tip';
    tip.width = tip.height = size * zoom;
    tip.style.cssText = 'position:fixed;display:none;pointer-events:none;z-index:100000;' +
      'border:2px solid #888;border-radius:4px;background:#000;image-rendering:pixelated;';
    document.body.appendChild(tip);
  }
  const context = tip.getContext('2d');
  const show = (event) => {
    const point = event.points && event.points[0];
    const data_ = point && point.customdata;  // [row, …], or {"0": row, …} when Plotly sent a typed array
    const row = data_ !== null && typeof data_ === 'object' ? Number(data_[0]) : data_;
    if (typeof row !== 'number' || Number.isNaN(row) || !sprite.complete) return;
    context.imageSmoothingEnabled = false;
    context.drawImage(sprite, (row % data.columns) * size, Math.floor(row / data.columns) * size, size, size,
                      0, 0, size * zoom, size * zoom);
    const mouse = event.event || {};
    const x = (mouse.clientX || 0) - size * zoom - 16, y = (mouse.clientY || 0) - size * zoom / 2;
    tip.style.left = Math.max(4, x < 4 ? (mouse.clientX || 0) + 16 : x) + 'px';
    tip.style.top = Math.max(4, Math.min(window.innerHeight - size * zoom - 4, y)) + 'px';
    tip.style.display = 'block';
  };
  const hide = () => { tip.style.display = 'none'; };
  // Plotly drops a chart's listeners whenever it redraws it from scratch: attach again after every change.
  const attach = () => document.querySelectorAll('.st-key-' + data.chart + ' .js-plotly-plot').forEach((chart) => {
    if (typeof chart.on !== 'function') return;
    if (typeof chart.removeListener === 'function') {
      chart.removeListener('plotly_hover', show);
      chart.removeListener('plotly_unhover', hide);
    }
    chart.on('plotly_hover', show);
    chart.on('plotly_unhover', hide);
  });
  attach();
  const observer = new MutationObserver(attach);  // the chart is drawn after this element, and redrawn
  observer.observe(document.body, { childList: true, subtree: true });
  return () => { observer.disconnect(); hide(); };
}
"""
_hover = st.components.v2.component("digitlab.digit_hover", js=_SCRIPT, isolate_styles=False)


def digit_hover(sprite_url: str, *, chart: str, columns: int, size: int = 28) -> None:
    """Show the digit under the pointer for the Plotly chart with key `chart`, whose points carry their row in the
    sprite (a data URL of digits `size` px square, `columns` to a row) as their first customdata. Put it outside
    any fragment, so the sprite is sent once per page run."""
    _hover(key=f"digit-hover-{chart}", data={"sprite": sprite_url, "chart": chart, "columns": columns,
                                             "size": size})
