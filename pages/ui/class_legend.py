"""A plot's classes as a line of coloured dots and names, for pages that draw several plots of the same
classes and would rather say which colour is which once than beside every plot."""
from __future__ import annotations

import html

import numpy as np

from vae.render.palette import class_color


def class_legend(labels: np.ndarray, class_names: list[str]) -> str:
    """One coloured dot and name per class present, as HTML (names escaped) for st.markdown."""
    present = sorted(set(int(v) for v in np.unique(labels)))
    return " &nbsp; ".join(
        f'<span style="color:{class_color(i)};font-size:1.3em">●</span> '
        f'{html.escape(class_names[i] if i < len(class_names) else str(i))}' for i in present)
