"""The notebook widget (vae/browser/notebook.py) in a real JupyterLab: a server started headless on 127.0.0.1 in a
temporary folder, a notebook whose first cell creates LatentPad for the shipped MNIST default, the widget rendered in
Chromium, a drag on the pad and a stroke on the input panel read back in the kernel (the point, mu and sigma traits),
then the model trained a few steps in the kernel and assigned again: the same widget swaps the weights. Writes
docs/screenshots/notebook-widget.png.

Skips with the reason without jupyterlab or anywidget (requirements-dev.txt), as without Chromium; with CI=true
that is a failure, as for every browser test."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench.harness import free_port, stop
from tests.conftest import ROOT
from tests.e2e.conftest import chromium, require_browser, wait_until
from tests.e2e.test_encoder_panel import SEVEN, _stroke

pytestmark = pytest.mark.e2e

PAD = "document.querySelector('.lp-root').latentPad"
VIEWPORT = {"width": 1400, "height": 900}
SCREENSHOT = ROOT / "docs" / "screenshots" / "notebook-widget.png"
START_TIMEOUT_S = 60.0
# Backstops should teardown never run: the server culls an idle kernel, then stops once it has none.
IDLE_KERNEL_S, IDLE_SERVER_S = 120, 60
JUPYTER_DIRS = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
                "IPYTHONDIR": "ipython", "JUPYTERLAB_SETTINGS_DIR": "settings",
                "JUPYTERLAB_WORKSPACES_DIR": "workspaces"}
# No news toast over the screenshot, and no request to the internet for it.
QUIET_SETTINGS = ("@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                  {"fetchNews": "false", "checkForUpdates": False})

CELLS = [
    'from vae.browser.notebook import LatentPad\n\nw = LatentPad("checkpoints/default-mnist-2d.pt")\nw',
    "import json\n\nprint('TRAITS', json.dumps({'point': w.point, 'mu': w.mu, 'sigma': w.sigma}))",
    # More training in the notebook, then the same checkpoint assigned again: the pad swaps the weights.
    ("import numpy as np\nimport torch\nfrom vae import decode_codes\nfrom vae.nets.loss import elbo_terms\n\n"
     "model = w.model.model\nopt = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
     "x = (torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.15).float()\n"
     "for _ in range(5):\n"
     "    opt.zero_grad()\n    elbo_terms(model, x, model(x)).total.mean().backward()\n    opt.step()\n"
     "w.model = w.model\n"
     "print('DECODED', json.dumps(decode_codes(model, np.array([[0.5, -0.5]], np.float32)).ravel().tolist()))"),
]


def notebook_json(cells: list[str]) -> str:
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                  "source": source} for source in cells],
                       "metadata": {"kernelspec": kernel, "language_info": {"name": "python"}},
                       "nbformat": 4, "nbformat_minor": 4})


def require_notebook() -> None:
    """Skips with the reason (fails with CI=true) without jupyterlab or anywidget; then require_browser."""
    missing = [name for name in ("jupyterlab", "anywidget") if importlib.util.find_spec(name) is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed (pip install -r requirements-dev.txt)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the notebook test cannot run in CI: {reason}", pytrace=False)
        pytest.skip(f"notebook e2e test skipped: {reason}")
    require_browser()


@dataclass
class Lab:
    url: str
    process: subprocess.Popen
    log_path: Path
    start_s: float  # from launch to the server answering /api/status

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def prepare_folder(folder: Path) -> dict:
    """folder/notebooks: the notebook and the shipped checkpoints beside it; folder/jupyter: Jupyter's own folders.
    Returns the environment for the server (its kernel inherits it, and imports vae from the repository)."""
    (folder / "notebooks").mkdir()
    (folder / "notebooks" / "pad.ipynb").write_text(notebook_json(CELLS))
    (folder / "notebooks" / "checkpoints").symlink_to(ROOT / "checkpoints")
    jupyter = folder / "jupyter"
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{k: str(jupyter / v) for k, v in JUPYTER_DIRS.items()})
    settings = jupyter / JUPYTER_DIRS["JUPYTERLAB_SETTINGS_DIR"] / QUIET_SETTINGS[0]
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(QUIET_SETTINGS[1]))
    return env


def start_lab(folder: Path) -> Lab:
    """JupyterLab on a free 127.0.0.1 port with no token, serving folder/notebooks; returns once it answers."""
    env, port = prepare_folder(folder), free_port()
    args = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
            "--IdentityProvider.token=", f"--ServerApp.root_dir={folder / 'notebooks'}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: its commands run cells, its models hold outputs
            f"--MappingKernelManager.cull_idle_timeout={IDLE_KERNEL_S}", "--MappingKernelManager.cull_interval=30",
            f"--ServerApp.shutdown_no_activity_timeout={IDLE_SERVER_S}"]
    log_path = folder / "lab.log"
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=folder / "notebooks", env=env, stdout=log, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", process, log_path, 0.0)
    wait_until(lambda: answers(lab), START_TIMEOUT_S, lambda: f"JupyterLab did not start:\n{lab.log()[-3000:]}")
    lab.start_s = time.monotonic() - t0
    return lab


def answers(lab: Lab) -> bool:
    if lab.process.poll() is not None:
        pytest.fail(f"JupyterLab exited with code {lab.process.returncode}:\n{lab.log()[-3000:]}", pytrace=False)
    try:
        with urllib.request.urlopen(f"{lab.url}/api/status", timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_notebook()
    lab = start_lab(tmp_path_factory.mktemp("notebook"))
    print(f"\nJupyterLab answered {lab.start_s:.1f} s after launch")
    yield lab
    stop(lab.process)  # SIGTERM: the server shuts its kernel down first


@pytest.fixture(scope="module")
def page_errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def page(lab, page_errors):
    with chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        t0 = time.monotonic()
        page.goto(f"{lab.url}/lab/tree/pad.ipynb")
        page.wait_for_function("() => window.jupyterapp && jupyterapp.shell.currentWidget"
                               " && jupyterapp.shell.currentWidget.sessionContext")
        kernel = page.evaluate("async () => { const s = jupyterapp.shell.currentWidget.sessionContext; await s.ready;"
                               " return s.session && s.session.kernel && s.session.kernel.name; }")
        assert kernel == "python3", kernel
        page.evaluate("() => jupyterapp.shell.leftCollapsed"
                      " || jupyterapp.commands.execute('application:toggle-left-area')")  # the file browser
        print(f"JupyterLab's page and kernel ready {time.monotonic() - t0:.1f} s after opening")
        yield page
        context.close()


def run_cell(page, index: int) -> None:
    page.evaluate("async (i) => { const panel = jupyterapp.shell.currentWidget; panel.content.activeCellIndex = i;"
                  " await jupyterapp.commands.execute('notebook:run-cell'); }", index)


def printed(page, index: int, tag: str, timeout: float = 60.0):
    """The JSON a cell printed after `tag`, once the cell has printed it (an error output fails at once)."""
    def look():
        outputs = page.evaluate("(i) => jupyterapp.shell.currentWidget.content.widgets[i].model.outputs.toJSON()",
                                index)
        for out in outputs:
            if out["output_type"] == "error":
                pytest.fail(f"cell {index} raised {out['ename']}: {out['evalue']}", pytrace=False)
            text = "".join(out.get("text", ""))
            if text.startswith(tag):
                return [json.loads(text[len(tag):])]
        return None
    return wait_until(look, timeout, f"cell {index} printed no {tag} line", page=page)[0]


def kernel_traits(page) -> dict:
    run_cell(page, 1)
    return printed(page, 1, "TRAITS ")


def drag(page, to: tuple[float, float]) -> None:
    """A drag across the pad from its middle to `to` (fractions of its width and height)."""
    pad = page.locator(".latent-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    at = lambda fx, fy: (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    page.mouse.move(*at(0.5, 0.5))
    page.mouse.down()
    for t in np.linspace(0, 1, 12)[1:]:
        page.mouse.move(*at(0.5 + t * (to[0] - 0.5), 0.5 + t * (to[1] - 0.5)))
    page.mouse.up()


def test_the_widget_renders_in_jupyterlab_and_its_point_and_posterior_reach_the_kernel(page, page_errors):
    t0 = time.monotonic()
    run_cell(page, 0)
    page.wait_for_function(f"() => document.querySelector('.lp-root') && {PAD}.header && {PAD}.size")
    assert page.evaluate(f"() => {PAD}.versions") == 1 and page.locator(".lp-root").count() == 1
    drag(page, (0.78, 0.2))
    js_point = page.evaluate(f"() => {PAD}.point")
    assert js_point[0] > 1.5 and js_point[1] > 1.5, js_point  # right and up of the middle
    back = wait_until(lambda: (t := kernel_traits(page))["point"] and t, 20, "the point never reached the kernel",
                      page=page)
    assert back["point"]["dims"] == [0, 1]
    np.testing.assert_allclose(back["point"]["z"], js_point, atol=1e-4)  # the pad rounds to 1e-4
    np.testing.assert_allclose(back["point"]["code"], js_point, atol=1e-4)  # 2-D: the code is the point
    assert back["mu"] == [] and back["sigma"] == []
    page.locator(".latent-draw").scroll_into_view_if_needed()  # running cell 1 scrolled the notebook to it
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    q = page.evaluate(f"() => ({{mu: Array.from({PAD}.post.q.mu), sigma: Array.from({PAD}.post.q.sigma)}})")
    back = wait_until(lambda: (t := kernel_traits(page))["mu"] and t, 20, "mu never reached the kernel", page=page)
    np.testing.assert_allclose(back["mu"], q["mu"], rtol=1e-6)
    np.testing.assert_allclose(back["sigma"], q["sigma"], rtol=1e-6)
    page.evaluate(f"() => {{ {PAD}.post.strip.flush(); {PAD}.post.grid.flush(); {PAD}.post.showNumbers(); }}")
    page.locator(".jp-Notebook .jp-Cell").first.evaluate("(cell) => cell.scrollIntoView({block: 'start'})")
    page.mouse.move(5, VIEWPORT["height"] - 5)  # no hover mark on the pad
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    print(f"run, drag and read back in {time.monotonic() - t0:.1f} s")
    assert not page_errors, page_errors


def test_assigning_the_trained_model_again_swaps_the_weights_in_the_same_widget(page, page_errors):
    root = page.evaluate(f"() => {{ document.querySelector('.lp-root').dataset.probe = 'kept'; return {PAD}.point; }}")
    run_cell(page, 2)
    decoded = np.asarray(printed(page, 2, "DECODED "), np.float32)
    page.wait_for_function(f"() => {PAD}.versions === 2")
    assert page.locator(".lp-root").count() == 1
    assert page.evaluate("() => document.querySelector('.lp-root').dataset.probe") == "kept"
    assert page.evaluate(f"() => {PAD}.point") == root  # the point stays where the drag left it
    js = np.asarray(page.evaluate(f"() => {PAD}.decodeAt([0.5, -0.5])"), np.float32)
    assert np.abs(js - decoded).mean() < 1e-3  # the pad decodes with the weights trained in the kernel
    assert not page_errors, page_errors
