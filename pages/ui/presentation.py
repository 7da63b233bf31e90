"""Presentation mode, for a projector: a toggle in the sidebar, kept in the URL (?present=1) so a reload or a
shared link keeps it. It makes the type larger (text, captions, the charts' ticks, legends and hover labels,
the latent pad's labels: at least 16 px at 1024 px wide), hides the pages' explanatory captions, and gives each
chart a full-screen button."""
from __future__ import annotations

import streamlit as st

PARAM = "present"
KEY = "presentation_mode"

# Streamlit sizes text in rem: the root at 18 px scales the app's text, and captions go from 0.875 rem to 1 rem
# (18 px). Plotly writes its font sizes inline, so its ticks, legend and hover text are raised with !important
# (the charts place them for their own size: 16 px stays within the room a 12-13 px label had plus its padding).
# The latent pad draws on canvases and reads --lp-font-scale. Captions in the page (not the sidebar's, not an
# image's) are hidden: the room is listening to the teacher. Streamlit gives st.image a full-screen button but
# not a plotly chart: FULLSCREEN_JS adds one to each chart, which shows the chart's element on the whole screen
# (the Fullscreen API), the plot zoomed to fit it (CSS zoom keeps plotly's hover and clicks in place).
STYLE = """<style>
html { font-size: 18px; }
[data-testid='stCaptionContainer'], [data-testid='stCaptionContainer'] p { font-size: 1rem !important; }
[data-testid='stMain'] [data-testid='stCaptionContainer'] { display: none; }
.js-plotly-plot .xtick text, .js-plotly-plot .ytick text, .js-plotly-plot .legendtext,
.js-plotly-plot .g-xtitle text, .js-plotly-plot .g-ytitle text { font-size: 16px !important; }
.js-plotly-plot .hoverlayer text { font-size: 17px !important; }
.lp-root { --lp-font-scale: 1.25; }
.lp-root .lp-slider, .lp-root .lp-legend, .lp-root .lp-caption, .lp-root .lp-hover-text, .lp-root .lp-numbers,
.lp-root .lp-tools, .lp-root .lp-strip-head, .lp-root .lp-head, .lp-root .lp-input-note { font-size: 17px; }
.lx-full { position: absolute; top: 4px; right: 4px; z-index: 5; font: 600 15px sans-serif; padding: 4px 10px;
  border: 1px solid #D5DAE1; border-radius: 6px; background: rgba(255, 255, 255, 0.92); cursor: pointer; }
[data-testid='stPlotlyChart']:fullscreen { background: #FFF; padding: 24px; display: flex; align-items: center;
  justify-content: center; }
</style>"""

FULLSCREEN_JS = """<script>
(() => {
  const add = () => document.querySelectorAll('[data-testid=stPlotlyChart]').forEach((chart) => {
    if (chart.querySelector(':scope > .lx-full')) return;
    chart.style.position = 'relative';
    const button = document.createElement('button');
    button.className = 'lx-full';
    button.type = 'button';
    button.textContent = 'Full screen';
    button.onclick = () => (document.fullscreenElement ? document.exitFullscreen() : chart.requestFullscreen());
    chart.appendChild(button);
  });
  add();
  if (!window.__lxFull) {
    window.__lxFull = new MutationObserver(add);
    window.__lxFull.observe(document.body, {childList: true, subtree: true});
    document.addEventListener('fullscreenchange', () => {
      const chart = document.fullscreenElement, plot = chart && chart.querySelector('.js-plotly-plot');
      document.querySelectorAll('.lx-full').forEach((b) => { b.textContent = b.parentElement === chart ? 'Exit full screen' : 'Full screen'; });
      document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot').forEach((p) => { p.style.zoom = ''; });
      if (plot) plot.style.zoom = String(Math.min((innerWidth - 48) / plot.offsetWidth, (innerHeight - 48) / plot.offsetHeight));
    });
  }
})();
</script>"""


def presentation_mode() -> bool:
    """Whether this tab presents: its toggle, or ?present=1 in the URL it opened with."""
    if KEY not in st.session_state:
        st.session_state[KEY] = st.query_params.get(PARAM) == "1"
    return bool(st.session_state[KEY])


def presentation_toggle() -> None:
    """The sidebar's toggle; the URL follows it (a page switch drops query parameters, so every run sets it)."""
    on = st.sidebar.toggle("Presentation mode", value=presentation_mode(), key="presentation_toggle",
                           help="Larger type for a projector, fewer captions, charts with their full-screen button.")
    st.session_state[KEY] = on
    if on:
        st.query_params[PARAM] = "1"
        st.html(STYLE + FULLSCREEN_JS, unsafe_allow_javascript=True)
    elif PARAM in st.query_params:
        del st.query_params[PARAM]
