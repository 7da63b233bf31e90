"""Presentation mode, for a projector: a toggle in the sidebar, kept in the URL (?present=1) so a reload or a
shared link keeps it. It makes the type larger (text, captions, the charts' ticks, legends and hover labels,
the latent pad's labels: at least 16 px at 1024 px wide), hides the pages' explanatory captions, and leaves
each chart's full-screen button in view."""
from __future__ import annotations

import streamlit as st

PARAM = "present"
KEY = "presentation_mode"

# Streamlit sizes text in rem: the root at 18 px scales the app's text, and captions go from 0.875 rem to 1 rem
# (18 px). Plotly writes its font sizes inline, so its ticks, legend and hover text are raised with !important
# (the charts place them for their own size: 16 px stays within the room a 12-13 px label had plus its padding).
# The latent pad draws on canvases and reads --lp-font-scale. Captions in the page (not the sidebar's, not an
# image's) are hidden: the room is listening to the teacher. Each chart's toolbar (its full-screen button) shows
# without a hover, as a projector's audience never hovers.
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
[data-testid='stElementToolbar'] { opacity: 1 !important; }
</style>"""


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
        st.html(STYLE)
    elif PARAM in st.query_params:
        del st.query_params[PARAM]
