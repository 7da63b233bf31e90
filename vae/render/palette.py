"""The class colours and markers, one list for every figure, picture and GIF.

Ten colours that stay apart under deuteranopia, protanopia and tritanopia as well as normal vision, each at
least 3:1 against white so a dot or a name still reads on a washed-out projector (tests/test_palette.py
measures both; docs/palette.md gives the figures and how the colours were found).

More than ten classes: the colours repeat, and each round of ten takes the next marker, so class 3 is a
blue circle and class 13 a blue square (MARKERS). The Plotly scatter, the latent pad and their legends
draw these shapes; the label map and the PIL pictures (replay, the sliders' panel) repeat colours only,
and the class names written at each cluster's centre tell a repeated colour apart there.
"""
from __future__ import annotations

# Found by a search that kept every colour at 3:1 on white, with chroma C* >= 22 (no greys, so the label map's
# tints differ) and at most one darker than L* 18 (dots darker than that all look black); ordered so that
# the first k colours, for a dataset of k classes, are as far apart as the ten allow.
PALETTE = [
    "#947EFF",  # lavender
    "#600200",  # maroon
    "#221A7C",  # indigo
    "#A39704",  # mustard
    "#EF3A80",  # pink
    "#14A59F",  # teal
    "#7500F1",  # violet
    "#786307",  # olive
    "#055C4B",  # dark green
    "#26001A",  # aubergine black
]
# Plotly symbol names, one per round of len(PALETTE) classes; vae/browser/latent_pad.js draws the same four.
MARKERS = ("circle", "square", "diamond", "triangle-up")

CONTINUOUS_SCALE = "Viridis"


def class_color(label: int) -> str:
    return PALETTE[int(label) % len(PALETTE)]


def class_marker(label: int) -> str:
    """Circle for classes 0-9, square for 10-19, diamond for 20-29, triangle for 30-39, then round again."""
    return MARKERS[int(label) // len(PALETTE) % len(MARKERS)]
