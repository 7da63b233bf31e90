"""A plotly chart that takes new data in place: the Train page's live loss curves.

st.plotly_chart gives a chart whose figure changed a new element id (Streamlit hashes the figure into
it), so the browser tears the chart down and builds a new one: the zoom a student set and the value
under the pointer are gone every time the curves move. This component keeps one plot per key and
hands each new figure to `Plotly.react`, which updates traces and axes in place and keeps what the
user set (the figure's `uirevision`). plotly.js is the copy inside the installed plotly package,
served by the app's own server (no network needed) and loaded once per tab.
"""
from __future__ import annotations

from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components_v1
from streamlit import config as st_config

# Streamlit serves a declared component's folder, read-only, at /component/<name>/<file>. This one is
# declared only for that: the folder is the plotly package's own, holding plotly.min.js; it is never
# mounted.
_PLOTLY_FOLDER = components_v1.declare_component("plotlyjs", path=str(Path(plotly.__file__).parent / "package_data"))

# What st.plotly_chart's theme does in the browser, as a plotly layout: the page's font and text
# colour, no backgrounds, light horizontal grid lines. Fixed margins: automatic ones cost plotly a
# second layout pass on every update.
_FONT = '"Source Sans", "Source Sans Pro", sans-serif'
_LAYOUT = dict(template="none", font=dict(family=_FONT, color="#31333F"), hoverlabel=dict(font=dict(family=_FONT)),
               paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", margin=dict(l=50, b=95))
_AXIS = dict(automargin=False, gridcolor="#E6EAF1", zerolinecolor="#E6EAF1", linecolor="#E6EAF1",
             tickcolor="#E6EAF1", color="#808495")

_JS = r"""
function loadPlotly(src) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__latentExplorerPlotly) {
    window.__latentExplorerPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { window.__latentExplorerPlotly = null; reject(new Error(src)); };
      document.head.appendChild(script);
    });
  }
  return window.__latentExplorerPlotly;
}

export default function ({ data, parentElement }) {
  let gd = parentElement.querySelector(".le-live-plot");
  if (!gd) {
    gd = document.createElement("div");
    gd.className = "le-live-plot";
    parentElement.appendChild(gd);
    // The page's width changes without the window's when the sidebar opens or closes.
    let width = 0;
    gd.leResize = new ResizeObserver((entries) => {
      const w = Math.round(entries[0].contentRect.width);
      // Width 0: hidden (a page change, a rerun's stale element); the observer fires again when shown.
      // Plots.resize rejects if the plot is hidden before its deferred layout runs: nothing to redraw then.
      if (w > 0 && w !== width && window.Plotly && gd._fullLayout && gd.isConnected) {
        const done = window.Plotly.Plots.resize(gd);
        if (done && done.catch) done.catch(() => {});
      }
      width = w;
    });
    gd.leResize.observe(gd);
  }
  gd.style.height = data.height + "px";
  gd.leLatest = data;
  loadPlotly(data.src).then((Plotly) => {
    if (gd.leLatest !== data) return;  // a newer figure came while plotly.js loaded
    const fig = JSON.parse(data.figure);
    return Plotly.react(gd, fig.data, fig.layout, { displayModeBar: false });
  }).catch(() => {
    gd.textContent = "The chart could not be drawn: reload the page to try again.";
  });
  return () => {
    gd.leResize.disconnect();
    if (window.Plotly) window.Plotly.purge(gd);
  };
}
"""

_component = st.components.v2.component("latent_explorer.live_plot", js=_JS, isolate_styles=False)


def plotly_src() -> str:
    """plotly.min.js's address on this server, under its base URL path if it has one."""
    base = st_config.get_option("server.baseUrlPath").strip("/")
    return f"/{base + '/' if base else ''}component/{_PLOTLY_FOLDER.name}/plotly.min.js"


def themed(fig: go.Figure) -> go.Figure:
    """`fig` in the look st.plotly_chart gives charts (Plotly.react draws it as it is). The legend goes
    under the panels, below the x-axis titles."""
    fig.update_layout(**_LAYOUT)
    if fig.layout.legend.orientation == "h":
        fig.update_layout(legend=dict(yanchor="top", y=-0.3))
    fig.update_xaxes(**_AXIS, showgrid=False)
    return fig.update_yaxes(**_AXIS)


def live_plotly_chart(height: int, figure_json: str, key: str) -> None:
    """Draws a plotly figure (its JSON, `height` px tall) under `key`; a later call with the same key
    updates that chart in place, and one with the same JSON costs the browser nothing."""
    _component(key=key, data={"figure": figure_json, "height": int(height), "src": plotly_src()}, height=int(height))
