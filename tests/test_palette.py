"""The class palette under colour blindness and on white: every pair of the ten colours stays at least
MIN_DELTA_E apart (CIEDE2000) for normal vision and under simulated deuteranopia, protanopia and tritanopia
(Machado, Oliveira & Fernandes 2009, severity 1.0), every colour has at least 3:1 contrast on white (WCAG 2),
the label map's tints stay apart too, and from the eleventh class on the marker changes. The colour science
is plain numpy here; its CIEDE2000 is checked against Sharma, Wu & Dalal's (2005) published test pairs.
docs/palette.md gives the figures."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from vae.render.figures import LABEL_MAP_OPACITY
from vae.render.palette import MARKERS, PALETTE, class_color, class_marker

MIN_DELTA_E = 18.5  # the least CIEDE2000 between any two colours, in any of the four visions (docs/palette.md)
MIN_CONTRAST = 3.0  # WCAG 2's ratio for large text and graphics, against white
MIN_TINT_DELTA_E = 4.5  # the label map's tints over white: large patches, where a few units show

# Machado et al. 2009, "A Physiologically-based Model for Simulation of Color Vision Deficiency" (IEEE TVCG
# 15(6)), the severity-1.0 matrices of their table; they act on linear RGB.
MACHADO_2009 = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
VISIONS = (None, *MACHADO_2009)  # None: normal vision
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],  # IEC 61966-2-1, D65
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])


def srgb(hex_colours: list[str]) -> np.ndarray:
    """(N, 3) in [0, 1] from '#RRGGBB' strings."""
    return np.array([[int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)] for h in hex_colours])


def linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB's transfer function undone: values proportional to light."""
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def simulate(rgb: np.ndarray, vision: str | None) -> np.ndarray:
    """Linear RGB (N, 3) as a dichromat sees it, clipped to the display's gamut."""
    lin = linear(rgb)
    return lin if vision is None else np.clip(lin @ MACHADO_2009[vision].T, 0, 1)


def lab(lin: np.ndarray) -> np.ndarray:
    """CIELAB (N, 3) of linear sRGB, D65 white."""
    xyz = lin @ SRGB_TO_XYZ.T / SRGB_TO_XYZ.sum(axis=1)
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 between rows of (N, 3) CIELAB arrays (Sharma, Wu & Dalal 2005, equations 1-22)."""
    (l1, a1, b1), (l2, a2, b2) = lab1.T, lab2.T
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    grey = c1 * c2 == 0
    dh = np.where(grey, 0, (h2 - h1 + 180) % 360 - 180)
    d_l, d_c, d_h = l2 - l1, c2 - c1, 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh) / 2)
    h_mean = np.where(grey, h1 + h2, np.where(np.abs(h1 - h2) <= 180, (h1 + h2) / 2, (h1 + h2 + 360) / 2 % 360))
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    r_t = (-2 * np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7))
           * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2)))))
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def min_pairwise_delta_e(rgb: np.ndarray, vision: str | None) -> tuple[float, tuple[int, int]]:
    """The least CIEDE2000 between two of the colours as `vision` sees them, and which two."""
    colours = lab(simulate(rgb, vision))
    i, j = np.array(list(itertools.combinations(range(len(rgb)), 2))).T
    d = delta_e_2000(colours[i], colours[j])
    return float(d.min()), (int(i[d.argmin()]), int(j[d.argmin()]))


def contrast_on_white(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2's contrast ratio of each colour against white: (1 + 0.05) / (relative luminance + 0.05)."""
    return 1.05 / (linear(rgb) @ SRGB_TO_XYZ[1] + 0.05)


# Sharma, Wu & Dalal 2005, table 1: (L*a*b* 1, L*a*b* 2, CIEDE2000), pairs 1, 2, 7, 17-20 and 25.
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


def test_delta_e_2000_matches_sharmas_test_data():
    first, second, expected = (np.array(column, float) for column in zip(*SHARMA_PAIRS))
    np.testing.assert_allclose(delta_e_2000(first, second), expected, atol=1e-4)
    np.testing.assert_allclose(delta_e_2000(second, first), expected, atol=1e-4)  # symmetric


def test_white_is_l_100_and_the_simulations_keep_greys_grey():
    np.testing.assert_allclose(lab(linear(srgb(["#FFFFFF"]))), [[100, 0, 0]], atol=1e-3)
    for vision in MACHADO_2009:
        grey = simulate(srgb(["#808080"]), vision)
        np.testing.assert_allclose(grey, linear(srgb(["#808080"])), atol=2e-3)


@pytest.mark.parametrize("vision", VISIONS, ids=lambda v: v or "normal")
def test_every_pair_of_colours_stays_apart(vision):
    least, (i, j) = min_pairwise_delta_e(srgb(PALETTE), vision)
    assert least >= MIN_DELTA_E, f"{PALETTE[i]} and {PALETTE[j]} are only ΔE2000 {least:.1f} apart ({vision})"


def test_every_colour_has_3_to_1_contrast_on_white():
    ratios = contrast_on_white(srgb(PALETTE))
    assert ratios.min() >= MIN_CONTRAST, dict(zip(PALETTE, ratios.round(2)))


def test_the_old_palette_fails_the_test():
    """Okabe-Ito's eight plus brown and grey: the issue's 2, 4 and 9 merged under deuteranopia."""
    old = srgb(["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7",
                "#56B4E9", "#F0E442", "#000000", "#8C564B", "#7F7F7F"])
    assert min_pairwise_delta_e(old, "deuteranopia")[0] < MIN_DELTA_E
    assert contrast_on_white(old).min() < MIN_CONTRAST


@pytest.mark.parametrize("vision", VISIONS, ids=lambda v: v or "normal")
def test_the_label_maps_tints_stay_apart(vision):
    tints = LABEL_MAP_OPACITY * srgb(PALETTE) + (1 - LABEL_MAP_OPACITY)  # the heatmap over the white plot
    least, (i, j) = min_pairwise_delta_e(tints, vision)
    assert least >= MIN_TINT_DELTA_E, f"the tints of {PALETTE[i]} and {PALETTE[j]}: ΔE2000 {least:.1f} ({vision})"


def test_past_ten_classes_the_colours_repeat_with_the_next_marker():
    n = len(PALETTE)
    assert [class_color(k) for k in range(n)] == PALETTE and len(set(PALETTE)) == n
    assert {class_marker(k) for k in range(n)} == {MARKERS[0]}
    pairs = {(class_color(k), class_marker(k)) for k in range(n * len(MARKERS))}
    assert len(pairs) == n * len(MARKERS)  # forty classes, forty looks
    assert class_color(13) == class_color(3) and class_marker(13) == MARKERS[1]
