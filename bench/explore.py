"""How closely do the Explore pages follow the hand? The latent pad in headless Chromium against a bare
page that redraws a 28 x 28 canvas on every pointer move (the browser's own ceiling), in one run:

    .venv/bin/python -m bench.explore              # 5 drags of 2 s on each page, alternating
    .venv/bin/python -m bench.explore --strokes    # and 5 pen strokes of 2 s on the input panel, per model

(a) distinct pictures per second during a scripted drag (playwright's moves one after another along a
    Lissajous path) on the Latent sliders page (shipped shapes model) and the bare page; (b) pointer event
    to picture drawn (event.timeStamp to after putImageData), p50 and p90; (c) the JS decode alone, for the
    shipped MNIST MLP and the default conv model. Written into docs/benchmarks.md ("## Latent pad
    (browser)"), with the pad mid-drag in docs/screenshots/latent-pad.png.
(d) with --strokes: a pen stroke on the pad's input panel (the pad alone in a bare page, no Streamlit), each
    move re-encoding the drawing and redrawing the posterior and the reconstruction in the move's event,
    against the same bare page, in the same run: distinct reconstructions per second and stroke event to
    picture, for the shipped MNIST MLP, the default conv and a (3, 64, 64) conv. Written into
    docs/benchmarks.md ("## Input panel (browser encoder)").
"""
from __future__ import annotations

import argparse
import base64
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.harness import (PAD_JS_STATE, ROOT, VIEWPORT, chromium, machine_line, median, mount_pad, open_app,
                           replace_section, serve_app, wait_for_app_idle)
from vae import checkpoint as ckpt_io
from vae.config import ModelConfig
from vae.nets.model import VAE
from vae.browser.pad import pad_js, pad_payload
from vae.browser.programs import decoder_program, encoder_program

SECTION = "## Latent pad (browser)"
STROKE_SECTION = "## Input panel (browser encoder)"
STROKE_STATS_JS = f"() => {{ const s = {PAD_JS_STATE}.strokes; return {{draws: s.encodes, distinct: s.distinct, " \
                  "latencies: s.latencies.slice()}; }"
SCREENSHOT = ROOT / "docs" / "screenshots" / "latent-pad.png"
DRAG_S, DECODES = 2.0, 500
RATE_TARGET, LATENCY_TARGET_MS = 0.8, 1000 / 60  # the bare page's pictures/s share; one display frame
STATS = "{draws: s.draws, distinct: s.distinct, latencies: s.latencies.slice()}"
PAD_STATS_JS = f"() => {{ const s = document.querySelector('.lp-root').latentPad.stats; return {STATS}; }}"
# The ceiling: the canvas redrawn from the pointer's position (a bright disc there) on every move.
REFERENCE_HTML = """<body style="margin: 40px"><canvas id="c" width="28" height="28" style="width: 560px;
height: 560px; image-rendering: pixelated; touch-action: none"></canvas><script>
const c = document.getElementById('c'), ctx = c.getContext('2d'), im = ctx.createImageData(28, 28);
const s = window.stats = {draws: 0, distinct: 0, latencies: [], last: null};
c.addEventListener('pointerdown', (e) => c.setPointerCapture(e.pointerId));
c.addEventListener('pointermove', (e) => {
    if (!e.buttons) return;
    const r = c.getBoundingClientRect(), px = (e.clientX - r.left) / r.width * 28, py = (e.clientY - r.top) / r.height * 28;
    let sum = 0;
    for (let i = 0; i < 784; i++) {
        const v = Math.round(255 * Math.exp(-((i % 28 + 0.5 - px) ** 2 + (Math.floor(i / 28) + 0.5 - py) ** 2) / 18));
        im.data.fill(v, 4 * i, 4 * i + 3); im.data[4 * i + 3] = 255; sum = (sum * 31 + v) | 0;
    }
    ctx.putImageData(im, 0, 0);
    s.latencies.push(performance.now() - e.timeStamp); s.draws += 1; s.distinct += sum !== s.last; s.last = sum;
});</script></body>"""
# The pad's module in a bare page, its decoder compiled from a payload (base64), then n decodes timed.
DECODE_TIMES_JS = """async ([src, b64, n]) => {
    const pad = await import(URL.createObjectURL(new Blob([src], {type: 'text/javascript'})));
    const {header, section} = pad.parsePayload(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    const decode = pad.compileDecoder(header.model, pad.weightsOf(header.model, section('weights'))), out = [];
    const z = () => new Float32Array([Math.random() * 8 - 4, Math.random() * 8 - 4]);
    for (let i = 0; i < 20; i++) decode(z());
    for (let i = 0; i < n; i++) { const c = z(), t = performance.now(); decode(c); out.push(performance.now() - t); }
    return out;
}"""


class DragTarget:
    """A page with a square to drag across (inside its plot area), and its counters."""

    def __init__(self, page, selector: str, stats_js: str, label: str):
        self.page, self.stats_js, self.label, self.drags = page, stats_js, label, []
        page.locator(selector).scroll_into_view_if_needed()
        box = page.locator(selector).bounding_box()
        inset = 0.12 * box["width"]
        self.box = (box["x"] + inset, box["y"] + inset, box["width"] - 2 * inset, box["height"] - 2 * inset)

    def at(self, t: float) -> tuple[float, float]:
        x0, y0, w, h = self.box
        return x0 + w * (0.5 + 0.5 * math.sin(2.1 * t)), y0 + h * (0.5 + 0.5 * math.sin(3.3 * t + 0.7))

    def drag(self, seconds: float) -> dict:
        before = self.page.evaluate(self.stats_js)
        self.page.mouse.move(*self.at(0.0))
        self.page.mouse.down()
        t0, moves = time.perf_counter(), 0
        while (t := time.perf_counter() - t0) < seconds:
            self.page.mouse.move(*self.at(t))
            moves += 1
        elapsed = time.perf_counter() - t0
        self.page.mouse.up()
        after = self.page.evaluate(self.stats_js)
        self.drags.append({"rate": (after["distinct"] - before["distinct"]) / elapsed, "moves": moves / elapsed,
                           "latencies": after["latencies"][len(before["latencies"]):]})
        return self.drags[-1]

    def summary(self) -> dict:
        lat, rates = [v for d in self.drags for v in d["latencies"]], [d["rate"] for d in self.drags]
        return {"rate": median(rates), "moves": median([d["moves"] for d in self.drags]), "per_drag": rates,
                "p50": float(np.percentile(lat, 50)), "p90": float(np.percentile(lat, 90)), "n": len(lat)}


def decode_times(browser, model: VAE) -> dict:
    payload = pad_payload(model, decoder_program(model), model_key="bench", dims=(0, 1), base=None, point=(0.0, 0.0),
                          limit=4.0, classes=[], codes=None)
    src = pad_js()
    times = browser.new_page().evaluate(DECODE_TIMES_JS, [src, base64.b64encode(payload).decode(), DECODES])
    return {"median": median(times), "p90": float(np.percentile(times, 90)), "params": decoder_program(model).n_params,
            "bytes": len(payload)}


def screenshot_mid_drag(target: DragTarget) -> None:
    """The pad's page with the pointer held down partway through a drag."""
    x0, y0, w, h = target.box
    target.page.mouse.move(x0 + 0.2 * w, y0 + 0.8 * h)
    target.page.mouse.down()
    for i in range(1, 31):
        target.page.mouse.move(x0 + w * (0.2 + 0.018 * i), y0 + h * (0.8 - 0.021 * i))
    target.page.screenshot(path=str(SCREENSHOT))
    target.page.mouse.up()
    wait_for_app_idle(target.page)


def report(pad: dict, ref: dict, decodes: dict[str, dict], drags: int) -> str:
    ratio, per_drag = pad["rate"] / ref["rate"], median([p / r for p, r in zip(pad["per_drag"], ref["per_drag"])])
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    return "\n".join([
        SECTION, "",
        f"Reproduce: `.venv/bin/python -m bench.explore --drags {drags}`. {machine_line()}. Headless Chromium (Debian's, "
        "software rendering), 1600 x 1000 window.", "",
        f"**(a) Distinct decoded pictures per second during a {DRAG_S:g} s drag** ({drags} drags on each page, alternating; "
        f"medians): the pad **{pad['rate']:.1f}**, the bare canvas page **{ref['rate']:.1f}**; ratio **{ratio:.2f}** (per "
        f"drag {per_drag:.2f}), target >= {RATE_TARGET:g}: {met(min(ratio, per_drag) >= RATE_TARGET)}. The script sent "
        f"{pad['moves']:.0f} and {ref['moves']:.0f} pointer moves/s (playwright's mouse.move, one after another).", "",
        f"**(b) Pointer event to picture drawn**: pad p50 **{pad['p50']:.1f} ms**, p90 {pad['p90']:.1f} ms over {pad['n']} "
        f"moves; bare page p50 {ref['p50']:.1f}, p90 {ref['p90']:.1f} ms. Target p50 <= {LATENCY_TARGET_MS:.1f} ms: "
        f"{met(pad['p50'] <= LATENCY_TARGET_MS)}. Both include Chromium's wait before it dispatches a move (moves are "
        "aligned to animation frames).", "",
        f"**(c) The JS decode alone**, {DECODES} random points in [-4, 4]^2, ms per decode:", "",
        "| model | decoder weights | payload (float16 weights) | median | p90 |", "| --- | --- | --- | --- | --- |",
        *(f"| {name} | {d['params'] / 1e6:.2f} M | {d['bytes'] / 1e6:.2f} MB | {d['median']:.2f} | {d['p90']:.2f} |"
          for name, d in decodes.items()), ""])


def stroke_models() -> dict[str, VAE]:
    """The models the stroke bench draws for: the shipped MNIST MLP, the default conv and a 64x64 colour conv
    (untrained: the arithmetic is the same)."""
    def conv(shape):
        return VAE(ModelConfig(arch="conv", latent_dim=2, hidden=(512,), image_shape=shape),
                   torch.Generator().manual_seed(0)).eval()
    return {"MLP, shipped MNIST default (784-256-256-512-4 / 2-512-256-256-784)":
            ckpt_io.load(ROOT / "checkpoints" / "default-mnist-2d.pt").model.eval(),
            "conv, default (1, 28, 28)": conv((1, 28, 28)), "conv, (3, 64, 64)": conv((3, 64, 64))}


def strokes(browser, ref: DragTarget, drags: int) -> dict[str, tuple[dict, dict]]:
    """For each model: (the input panel's summary, the bare page's in the same alternation)."""
    results = {}
    for name, model in stroke_models().items():
        payload = pad_payload(model, decoder_program(model), model_key="bench", dims=(0, 1), base=None,
                              point=(0.0, 0.0), limit=4.0, classes=[], codes=None, encoder=encoder_program(model))
        page = browser.new_page(viewport=VIEWPORT)
        mount_pad(page, payload, 1100)
        panel = DragTarget(page, ".latent-draw", STROKE_STATS_JS, "input panel")
        clear = f"() => {{ {PAD_JS_STATE}.input.blank(); }}"
        page.evaluate(clear), panel.drag(0.5), ref.drag(0.5)  # warm-up
        panel.drags.clear(), ref.drags.clear()
        for i in range(drags):
            for target in (panel, ref) if i % 2 == 0 else (ref, panel):
                if target is panel:
                    page.evaluate(clear)  # a blank input: the stroke draws on black, as a student starts
                r = target.drag(DRAG_S)
                print(f"{name} / {target.label}: {r['rate']:.1f} pictures/s, {r['moves']:.0f} moves/s", flush=True)
        results[name] = (panel.summary(), ref.summary())
        page.close()
    return results


def stroke_report(results: dict[str, tuple[dict, dict]], drags: int) -> str:
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    rows = []
    for name, (panel, ref) in results.items():
        ratio = panel["rate"] / ref["rate"]
        rows.append(f"| {name} | {panel['rate']:.1f} | {ref['rate']:.1f} | **{ratio:.2f}** | **{panel['p50']:.1f}** | "
                    f"{panel['p90']:.1f} | {ref['p50']:.1f} |")
    mlp_panel, mlp_ref = next(iter(results.values()))
    mlp_ratio = mlp_panel["rate"] / mlp_ref["rate"]
    return "\n".join([
        STROKE_SECTION, "",
        f"Reproduce: `.venv/bin/python -m bench.explore --strokes --drags {drags}`. {machine_line()}. Headless Chromium "
        "(Debian's, software rendering), the pad's module alone in a bare page 1100 px wide.", "",
        f"A pen stroke of {DRAG_S:g} s on the input panel (a Lissajous path over the canvas, from a blank input; {drags} "
        "strokes per model, alternating with drags on the bare canvas page of the section above). Every move draws "
        "the stroke, reads the input back, runs the encoder, and redraws the posterior's ellipses and samples on the "
        "plane and the reconstruction decode(mu), all in the move's event; the 16 samples' decodes follow in the "
        "next frames (8 ms of each frame; 2 ms while the pen is down, and none until it lifts for a decoder slower "
        "than that, here both convs). Medians:", "",
        "| model | reconstructions/s | bare page pictures/s | ratio | event to picture p50 ms | p90 | bare page p50 |",
        "| --- | --- | --- | --- | --- | --- | --- |", *rows, "",
        f"Targets on the shipped MNIST MLP: ratio >= {RATE_TARGET:g}: {met(mlp_ratio >= RATE_TARGET)}; p50 <= "
        f"{LATENCY_TARGET_MS:.1f} ms: {met(mlp_panel['p50'] <= LATENCY_TARGET_MS)}. The conv rows are figures, "
        "not targets.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drags", type=int, default=5, help="drags on each page (default 5)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--strokes", action="store_true", help="also time pen strokes on the input panel")
    parser.add_argument("--only-strokes", action="store_true", help="only the strokes (the pad's drags not rerun)")
    args = parser.parse_args()
    if args.only_strokes:
        with chromium() as browser:
            (ref_page := browser.new_page(viewport=VIEWPORT)).set_content(REFERENCE_HTML)
            ref = DragTarget(ref_page, "#c", f"() => {{ const s = window.stats; return {STATS}; }}", "bare page")
            section = stroke_report(strokes(browser, ref, args.drags), args.drags)
        print(section)
        if not args.no_write:
            replace_section(section)
        return
    with tempfile.TemporaryDirectory() as tmp, serve_app(Path(tmp)) as server, chromium() as browser:
        page = open_app(browser, server.url, "sliders")
        page.wait_for_function("() => document.querySelector('.lp-root')?.latentPad?.header")
        pad = DragTarget(page, ".latent-pad", PAD_STATS_JS, "pad")
        (ref_page := browser.new_page(viewport=VIEWPORT)).set_content(REFERENCE_HTML)
        ref = DragTarget(ref_page, "#c", f"() => {{ const s = window.stats; return {STATS}; }}", "bare page")
        if not args.no_write:
            screenshot_mid_drag(pad)  # first, so the page's caption has not heard of a release yet
        pad.drag(0.5), ref.drag(0.5)  # warm-up: the JIT, the first frames
        pad.drags.clear(), ref.drags.clear()
        for i in range(args.drags):
            for target in (pad, ref) if i % 2 == 0 else (ref, pad):
                r = target.drag(DRAG_S)
                print(f"{target.label}: {r['rate']:.1f} pictures/s, {r['moves']:.0f} moves/s", flush=True)
        conv = VAE(ModelConfig(arch="conv", latent_dim=2, hidden=(512,)), torch.Generator().manual_seed(0)).eval()
        decodes = {"MLP, shipped MNIST default (2-512-256-256-784)": decode_times(
            browser, ckpt_io.load(ROOT / "checkpoints" / "default-mnist-2d.pt").model),
            "conv, default (2-512-3136-convT-convT)": decode_times(browser, conv)}
        section = report(pad.summary(), ref.summary(), decodes, args.drags)
        sections = [section] + ([stroke_report(strokes(browser, ref, args.drags), args.drags)] if args.strokes else [])
    for section in sections:
        print(section)
        if not args.no_write:
            replace_section(section)


if __name__ == "__main__":
    main()
