"""The class colours, one list for every figure, picture and GIF: distinct on a washed-out projector."""
from __future__ import annotations

# Colours that stay distinct on a washed-out projector (Okabe-Ito + Tableau extras).
PALETTE = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7",
    "#56B4E9", "#F0E442", "#000000", "#8C564B", "#7F7F7F",
]


CONTINUOUS_SCALE = "Viridis"


def class_color(label: int) -> str:
    return PALETTE[int(label) % len(PALETTE)]
