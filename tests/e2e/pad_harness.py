"""The latent pad's JavaScript (vae/browser/*.js, joined by pad_js) in a bare Chromium page, without Streamlit:
the module is imported from a blob URL and mounted as Streamlit mounts a v2 component (data,
parentElement, setStateValue), with a payload made in Python by vae/browser/pad.py. Used by the pad's
JS tests."""
from __future__ import annotations

import base64
import contextlib

import numpy as np

from bench.harness import PAD_JS_STATE, mount_pad
from vae.browser.pad import pad_js

HOST_WIDTH = 1100  # CSS px: room for the input, the pad and the picture, as in the app's wide layout

PAD = PAD_JS_STATE  # the pad's state object (root.latentPad): its point, stats, versions and decodeAt


def mount(page, payload: bytes) -> None:
    """A fresh bare page holding the pad, mounted with `payload`."""
    mount_pad(page, payload, HOST_WIDTH)


def import_module(page) -> None:
    """The pad's module as window.__pad in a blank page, nothing mounted: its exports (OPS, compileDecoder)
    for tests of single ops."""
    page.set_content("<div id='host'></div>")
    page.evaluate("""async (src) => {
        const url = URL.createObjectURL(new Blob([src], {type: 'text/javascript'}));
        window.__pad = await import(url);
    }""", pad_js())


@contextlib.contextmanager
def module_page():
    """A Chromium page holding the pad's module (import_module), its page errors kept in page.errors."""
    from tests.e2e.conftest import chromium, require_browser

    require_browser()
    with chromium() as browser:
        page = browser.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        import_module(page)
        yield page


def send(page, payload: bytes) -> None:
    """The pad gets a new payload in place, as a rerun with a new model version gives it."""
    page.evaluate("(b64) => window.__mount(b64)", base64.b64encode(payload).decode())


def decode(page, codes: np.ndarray) -> np.ndarray:
    """(B, C*H*W): the page's decoder at each code of (B, D)."""
    rows = page.evaluate(f"(codes) => codes.map((z) => {PAD}.decodeAt(z))", np.asarray(codes, np.float64).tolist())
    return np.asarray(rows, np.float32)


def stats(page) -> dict:
    return page.evaluate(f"() => {{ const p = {PAD}; return {{point: p.point, draws: p.stats.draws, "
                         f"distinct: p.stats.distinct, versions: p.versions, hovered: p.hovered, "
                         f"latencies: p.stats.latencies.slice(), decodeMs: p.stats.decodeMs.slice()}}; }}")


def states(page) -> list:
    """What the pad has sent to 'Python' (setStateValue calls), in order."""
    return page.evaluate("() => window.__states")


def to_page(page, z: tuple[float, float]) -> tuple[float, float]:
    """The page coordinates of a point of the plane."""
    return tuple(page.evaluate(f"""(z) => {{ const p = {PAD}, r = p.el.pad.getBoundingClientRect();
        const [x, y] = p.toPixels(z[0], z[1] ?? 0); return [r.left + x, r.top + y]; }}""", [float(v) for v in z]))
