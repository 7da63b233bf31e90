"""A Streamlit session without a browser: a student's tab as the server sees it.

The load benchmark (bench/load_sessions.py) needs ten students on one server. In a classroom each
student's browser draws on that student's own laptop; the server only sees their websocket sessions,
the reruns they ask for and the images they fetch. `WireSession` is exactly that much of a tab,
speaking Streamlit's own protocol (the protobufs in `streamlit.proto`) over the same websocket:

- it opens the app as a new tab does: GET / and the scripts and style sheets that page names, then
  the websocket (`/_stcore/stream`) and a first rerun of the page it was given;
- it keeps what the page shows that a student acts on: the main area's sliders (their ids, values,
  bounds and the fragment each sits in) and the latent pad (whose point moves in the browser and
  reaches the server when the pointer is released, as the component's state), the sidebar's page
  links (from the `navigation` message),
  the images (each fetched from `/media/...` as soon as its element arrives, as a browser does);
- moving a slider, or releasing the pad's point, sends the rerun a browser sends (every slider's value
  and the pad's point, and the fragment id, so a control in an `st.fragment` reruns only that
  fragment); a page link sends the page's
  script hash; an `auto_rerun` message (an `st.fragment(run_every=...)`) starts the timer the
  frontend starts, and `stop_auto_rerun` or a new page stops it;
- it records what a browser would show as an error: an exception element, a page that was not
  found, an image that cannot be fetched and is still the one on the page, a websocket that drops.

Everything runs on one asyncio loop in a thread of its own (`WireLoop`), so the main thread stays free
to drive the browser that times the probe.
"""
from __future__ import annotations

import asyncio
import gzip
import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import streamlit
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

MAIN = 0  # delta_path[0]: the main area (1 is the sidebar)
PAD_COMPONENT = "latent_explorer.latent_pad"  # pages/ui/latent_pad.py
ASSET_RE = re.compile(r'(?:src|href)="(\./static/[^"]+\.(?:js|css))"')
# The frontend loads an element's code the first time a page shows one (plotly.js, 4.7 MB, with the first
# chart): its chunk is named after the element, e.g. PlotlyChart.<hash>.js, in Streamlit's own static folder.
STATIC_JS = Path(streamlit.__file__).parent / "static" / "static" / "js"
CHUNK_NAMES = {"imgs": "ImageList", "markdown": "StreamlitMarkdown", "plotly_chart": "PlotlyChart"}


def element_chunk(kind: str) -> str | None:
    """The static path of the chunk the frontend loads to draw an element of this kind, if there is one."""
    name = CHUNK_NAMES.get(kind) or "".join(part.title() for part in kind.split("_"))
    found = sorted(STATIC_JS.glob(f"{name}.*.js"))
    return f"static/js/{found[0].name}" if found else None


def http_get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """(status, body) of one GET, as a browser asks for it (gzip accepted, so the server compresses)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            return response.status, body
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


@dataclass
class Slider:
    widget_id: str
    value: list[float]
    low: float
    high: float
    step: float
    fragment_id: str
    pad: bool = False  # the latent pad: value is its point (z1, z2), sent as the component's JSON state


@dataclass
class WireErrors:
    exceptions: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failed_static: list[str] = field(default_factory=list)  # the page's scripts, or an element's chunk
    superseded_images: int = 0  # fetched too late: a newer rerun had already replaced it (a browser's 404 too)


class WireSession:
    """One student's tab, without the drawing. All methods run on the WireLoop's event loop."""

    def __init__(self, base_url: str, page: str, index: int, errors: WireErrors, explore: list[str]):
        self.base, self.index, self.errors, self.explore = base_url.rstrip("/"), index, errors, explore
        self.at = explore.index(page)
        self.ws = None
        self.page_hash = ""
        self.pages: dict[str, str] = {}  # url_pathname -> page_script_hash, from the navigation message
        self.sliders: dict[tuple, Slider] = {}  # by delta path, the main area's only
        self.images: dict[tuple, str] = {}  # delta path -> the image URL it shows now
        self.texts: dict[tuple, str] = {}  # delta path -> the markdown (captions too) it shows now
        self.timers: dict[str, asyncio.Task] = {}  # fragment id -> its auto-rerun task
        self.fetches: set[asyncio.Task] = set()
        self.runs_finished = 0
        self.images_fetched = 0
        self.actions = 0
        self.moves, self.direction = 0, 1
        self.reader: asyncio.Task | None = None
        self.closing = False
        self.assets: list[str] = []  # static files fetched: the page's own, then each element kind's chunk
        self.kinds_seen: set[str] = set()
        self.page_assets = 0

    def where(self) -> str:
        return f"session {self.index + 1} /{self.explore[self.at]}"

    # ---- connecting, as a new tab does ----
    async def open(self, moves_per_page: int) -> None:
        status, html = await asyncio.to_thread(http_get, self.base + "/")
        if status != 200:
            self.errors.failed_static.append(f"{self.where()}: / ({status})")
        self.assets = ASSET_RE.findall(html.decode(errors="replace"))
        self.page_assets = len(self.assets)
        for asset in self.assets:
            await self._get(asset[2:])
        ws_url = self.base.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None, ping_interval=None)
        self.reader = asyncio.create_task(self._read())
        self.moves = moves_per_page
        await self._send_rerun(page_name=self.explore[self.at])

    async def close(self) -> None:
        self.closing = True
        for task in self.timers.values():
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        await asyncio.gather(*self.fetches, return_exceptions=True)

    # ---- what the page sends ----
    async def _send_rerun(self, page_name: str = "", page_hash: str = "", fragment_id: str = "",
                          auto: bool = False, with_widgets: bool = True) -> None:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = ""
        state.page_name = page_name
        state.page_script_hash = page_hash or (self.page_hash if not page_name else "")
        if fragment_id:
            state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        if with_widgets:
            for slider in self.sliders.values():
                widget = state.widget_states.widgets.add()
                widget.id = slider.widget_id
                if slider.pad:
                    point = {"dims": [0, 1], "z": slider.value, "code": slider.value}
                    widget.json_value = json.dumps({"point": point})
                else:
                    widget.double_array_value.data.extend(slider.value)
        await self.ws.send(msg.SerializeToString())

    async def act(self, moves_per_page: int) -> None:
        """One student action: a slider step (a rerun) or, when done with the page's sliders, a click on the
        sidebar link to the next Explore page."""
        self.actions += 1
        sliders = [self.sliders[path] for path in sorted(self.sliders)]
        if self.moves > 0 and sliders:
            slider = sliders[self.moves % len(sliders)]
            value = slider.value[0] + self.direction * slider.step
            if not slider.low <= value <= slider.high:  # at an end: back the other way
                self.direction = -self.direction
                value = slider.value[0] + self.direction * slider.step
            slider.value = [min(max(value, slider.low), slider.high)] + slider.value[1:]
            self.moves -= 1
            await self._send_rerun(fragment_id=slider.fragment_id)
            return
        self.at = (self.at + 1) % len(self.explore)
        target = self.pages.get(self.explore[self.at], "")
        self._leave_page()
        self.moves, self.direction = moves_per_page, -self.direction
        await self._send_rerun(page_name="" if target else self.explore[self.at], page_hash=target,
                               with_widgets=False)

    def _leave_page(self) -> None:
        for task in self.timers.values():
            task.cancel()
        self.timers.clear()
        self.sliders.clear()
        self.images.clear()
        self.texts.clear()

    async def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._send_rerun(fragment_id=fragment_id, auto=True)

    # ---- what the server sends ----
    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._handle(ForwardMsg.FromString(raw))
        except websockets.ConnectionClosed:
            pass
        if not self.closing:
            self.errors.dropped.append(f"{self.where()}: the websocket closed")

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            new_hash = msg.new_session.page_script_hash
            if new_hash and new_hash != self.page_hash:
                if self.page_hash:
                    self._leave_page()
                self.page_hash = new_hash
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            if msg.navigation.page_script_hash:
                self.page_hash = msg.navigation.page_script_hash
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(tuple(msg.metadata.delta_path), msg.delta.new_element, msg.delta.fragment_id)
        elif kind == "auto_rerun":
            fid = msg.auto_rerun.fragment_id
            if fid not in self.timers:
                self.timers[fid] = asyncio.get_running_loop().create_task(
                    self._auto_rerun(fid, max(msg.auto_rerun.interval, 0.1)))
        elif kind == "stop_auto_rerun":
            task = self.timers.pop(msg.stop_auto_rerun.fragment_id, None)
            if task is not None:
                task.cancel()
        elif kind == "page_not_found":
            self.errors.exceptions.append(f"{self.where()}: page not found ({msg.page_not_found.page_name!r})")
        elif kind == "script_finished":
            self.runs_finished += 1

    def _element(self, path: tuple, element, fragment_id: str) -> None:
        kind = element.WhichOneof("type")
        if kind not in self.kinds_seen:  # the first of its kind in this tab: its code is loaded once
            self.kinds_seen.add(kind)
            chunk = element_chunk(kind)
            if chunk and f"./{chunk}" not in self.assets:
                self.assets.append(f"./{chunk}")
                self._spawn(self._get(chunk))
        if kind == "exception" and not element.exception.is_warning:
            self.errors.exceptions.append(f"{self.where()}: {element.exception.type}: {element.exception.message[:300]}")
        elif kind == "slider" and path and path[0] == MAIN and not element.slider.disabled:
            s = element.slider
            known = self.sliders.get(path)
            value = list(s.value) if s.set_value else (known.value if known and known.widget_id == s.id
                                                       else list(s.default))
            self.sliders[path] = Slider(s.id, value, s.min, s.max, s.step or 1.0, fragment_id)
        elif kind == "bidi_component" and path and path[0] == MAIN and element.bidi_component.component_name == PAD_COMPONENT:
            pad = element.bidi_component
            known = self.sliders.get(path)
            value = known.value if known and known.widget_id == pad.id else [0.0, 0.0]
            self.sliders[path] = Slider(pad.id, value, -4.0, 4.0, 0.5, fragment_id, pad=True)
        elif kind == "markdown":
            self.texts[path] = element.markdown.body
        elif kind == "imgs":
            for i, img in enumerate(element.imgs.imgs):
                if img.url.startswith("/media/"):
                    key = path + (i,)
                    self.images[key] = img.url
                    self._spawn(self._fetch(key, img.url))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.fetches.add(task)
        task.add_done_callback(self.fetches.discard)

    async def _get(self, path: str) -> None:
        status, _ = await asyncio.to_thread(http_get, f"{self.base}/{path}")
        if status != 200:
            self.errors.failed_static.append(f"{self.where()}: /{path} ({status})")

    async def _fetch(self, key: tuple, url: str) -> None:
        status, _ = await asyncio.to_thread(http_get, self.base + url)
        self.images_fetched += status == 200
        if status != 200:
            if self.images.get(key) == url:
                self.errors.broken_images.append(f"{self.where()}: {url} ({status})")
            else:
                self.errors.superseded_images += 1

    async def browse(self, duration: float, think: float, rng: random.Random, moves_per_page: int) -> None:
        """duration seconds at a student's pace: a pause (exponential, mean think seconds), then one action.
        think 0: back to back, each action as soon as the script run the last one asked for has finished."""
        end = time.monotonic() + duration
        while True:
            pause = rng.expovariate(1.0 / think) if think > 0 else 0.0
            if time.monotonic() + pause >= end:
                await asyncio.sleep(max(end - time.monotonic(), 0))
                return
            await asyncio.sleep(pause)
            finished = self.runs_finished
            await self.act(moves_per_page)
            if think <= 0:
                deadline = min(end, time.monotonic() + 10)
                while self.runs_finished == finished and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)

    async def settle(self, timeout: float) -> None:
        """Waits until the images on the page have been fetched (or timeout)."""
        deadline = time.monotonic() + timeout
        while self.fetches and time.monotonic() < deadline:
            await asyncio.sleep(0.1)


class WireLoop:
    """An asyncio loop in a daemon thread; run(coro) waits for a coroutine from any other thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wire-sessions", daemon=True)
        self.thread.start()

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro, timeout: float | None = None):
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
