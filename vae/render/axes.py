"""Where things sit on a latent plot: grid cells in plot coordinates, round tick values and their labels,
the prior's contours."""
from __future__ import annotations

import numpy as np
import torch


def grid_plot_coords(z: np.ndarray, spacing: str = "linear") -> np.ndarray:
    """Where latent values sit on a manifold plot's axis.

    linear: z itself. gaussian: the prior CDF Phi(z), in which the quantile grid of grid_axis is
    evenly spaced (cell i is centred at (i + 0.5) / n), so codes overlay the tiles truthfully.
    """
    z = np.asarray(z, np.float64)
    if spacing == "linear":
        return z.astype(np.float32)
    if spacing == "gaussian":
        return torch.special.ndtr(torch.from_numpy(z)).numpy().astype(np.float32)
    raise ValueError(f"Unknown spacing {spacing!r}; use linear or gaussian.")


def grid_cell_edges(centres: np.ndarray) -> tuple[float, float]:
    """(low, high) outer edges of evenly spaced cells given their centres, on the plot's axis."""
    centres = np.asarray(centres, np.float64)
    width = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
    return float(centres[0] - width / 2), float(centres[-1] + width / 2)


def round_ticks(lo: float, hi: float, max_ticks: int = 9) -> np.ndarray:
    """Round values of z to label an axis over [lo, hi]: the multiples of the smallest step in
    1, 2, 2.5, 5 x 10^k that gives at most max_ticks of them (0 among them whenever it is in range),
    as a scatter plot's axis would have them."""
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    span = max(hi - lo, 1e-9)
    for exponent in range(int(np.floor(np.log10(span / max(max_ticks, 1)))) - 1, 12):
        for mantissa in (1.0, 2.0, 2.5, 5.0):
            step = mantissa * 10.0 ** exponent
            first, last = np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9)
            if last - first + 1 <= max_ticks:
                return (np.arange(first, last + 1) * step).astype(np.float64)
    return np.array([lo, hi])


def format_tick(value: float) -> str:
    """A round tick value as people write it: -3, -2.5, 0, 0.25 (no trailing zeros, a true minus sign)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    text = "0" if text in ("-0", "") else text
    return text.replace("-", "−")


def prior_contour(n_sigma: float, n_points: int = 121) -> tuple[np.ndarray, np.ndarray]:
    """The n-sigma contour of the 2-D standard normal prior: a circle of radius n_sigma."""
    theta = np.linspace(0, 2 * np.pi, n_points)
    return n_sigma * np.cos(theta), n_sigma * np.sin(theta)
