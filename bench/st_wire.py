"""A student's tab as the server sees it, without a browser: Streamlit's own protocol over its websocket
(each student's browser draws on their own laptop). A WireSession opens the app as a new tab does (GET /
and its scripts, the websocket, a rerun of its page), fetches every image it is sent, follows `run_every` fragments, sends the reruns a tab sends (a slider step or a pad release in
its fragment, a page change) and records what a browser would show as an error. Its coroutines run on
a WireLoop, an asyncio loop in a thread of its own."""
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

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

MAIN = 0  # delta_path[0]: the main area (1 is the sidebar)
PAD_COMPONENT = "latent_explorer.latent_pad"  # pages/ui/latent_pad.py
ASSET_RE = re.compile(r'(?:src|href)="(\./static/[^"]+\.(?:js|css))"')


def http_get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """(status, body) of one GET, gzip accepted as a browser asks for it."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept-Encoding": "gzip"}), timeout=timeout) as r:
            body = r.read()
            return r.status, gzip.decompress(body) if r.headers.get("Content-Encoding") == "gzip" else body
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


@dataclass
class Slider:  # a slider, or the latent pad (its value the point (z1, z2), sent as the component's JSON state)
    widget_id: str
    value: list[float]
    low: float
    high: float
    step: float
    fragment_id: str
    pad: bool = False


@dataclass
class WireErrors:
    exceptions: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failed_static: list[str] = field(default_factory=list)  # the page's scripts


class WireSession:
    def __init__(self, base_url: str, page: str, index: int, errors: WireErrors, explore: list[str]):
        self.base, self.index, self.errors, self.explore = base_url.rstrip("/"), index, errors, explore
        self.at, self.ws, self.reader, self.closing = explore.index(page), None, None, False
        self.page_hash, self.pages = "", {}  # pages: url_pathname -> page_script_hash
        self.sliders: dict[tuple, Slider] = {}  # by delta path, the main area's only
        self.images: dict[tuple, str] = {}  # delta path -> the image URL it shows now
        self.texts: dict[tuple, str] = {}  # delta path -> the markdown (captions too) it shows now
        self.timers: dict[str, asyncio.Task] = {}  # fragment id -> its auto-rerun task
        self.fetches: set[asyncio.Task] = set()
        self.runs_finished = self.images_fetched = self.actions = self.page_assets = 0
        self.moves, self.direction = 0, 1
        self.assets: list[str] = []  # the page's scripts and style sheets, fetched on opening

    def where(self) -> str:
        return f"session {self.index + 1} /{self.explore[self.at]}"

    def _error(self, kind: str, text: str) -> None:
        getattr(self.errors, kind).append(f"{self.where()}: {text}")

    async def open(self, moves_per_page: int) -> None:
        status, html = await asyncio.to_thread(http_get, self.base + "/")
        if status != 200:
            self._error("failed_static", f"/ ({status})")
        self.assets = ASSET_RE.findall(html.decode(errors="replace"))
        self.page_assets = len(self.assets)
        for asset in self.assets:
            await self._get(asset[2:])
        self.ws = await websockets.connect(self.base.replace("http://", "ws://") + "/_stcore/stream",
                                           subprotocols=["streamlit"], max_size=None, ping_interval=None)
        self.reader = asyncio.create_task(self._read())
        self.moves = moves_per_page
        await self._send_rerun(page_name=self.explore[self.at])

    async def close(self) -> None:
        self.closing = True
        for task in self.timers.values():
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        await asyncio.gather(*([self.reader] if self.reader else []), *self.fetches, return_exceptions=True)

    async def _send_rerun(self, page_name: str = "", page_hash: str = "", fragment_id: str = "",
                          auto: bool = False, with_widgets: bool = True) -> None:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_name, state.is_auto_rerun = "", page_name, auto
        state.page_script_hash = page_hash or (self.page_hash if not page_name else "")
        if fragment_id:
            state.fragment_id = fragment_id
        for slider in self.sliders.values() if with_widgets else ():
            widget = state.widget_states.widgets.add()
            widget.id = slider.widget_id
            if slider.pad:
                widget.json_value = json.dumps({"point": {"dims": [0, 1], "z": slider.value, "code": slider.value}})
            else:
                widget.double_array_value.data.extend(slider.value)
        await self.ws.send(msg.SerializeToString())

    async def act(self, moves_per_page: int) -> None:
        """One student action: a step of one of the page's sliders (a pad release counts as one), or, when
        done with them, the sidebar link to the next Explore page."""
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
        await self._send_rerun(page_name="" if target else self.explore[self.at], page_hash=target, with_widgets=False)

    def _leave_page(self) -> None:
        for task in self.timers.values():
            task.cancel()
        for held in (self.timers, self.sliders, self.images, self.texts):
            held.clear()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._handle(ForwardMsg.FromString(raw))
        except websockets.ConnectionClosed:
            pass
        if not self.closing:
            self._error("dropped", "the websocket closed")

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session" and msg.new_session.page_script_hash not in ("", self.page_hash):
            if self.page_hash:
                self._leave_page()
            self.page_hash = msg.new_session.page_script_hash
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(tuple(msg.metadata.delta_path), msg.delta.new_element, msg.delta.fragment_id)
        elif kind == "auto_rerun" and msg.auto_rerun.fragment_id not in self.timers:
            self.timers[msg.auto_rerun.fragment_id] = asyncio.get_running_loop().create_task(self._every(
                max(msg.auto_rerun.interval, 0.1), self._send_rerun, fragment_id=msg.auto_rerun.fragment_id, auto=True))
        elif kind == "stop_auto_rerun" and (task := self.timers.pop(msg.stop_auto_rerun.fragment_id, None)):
            task.cancel()
        elif kind == "page_not_found":
            self._error("exceptions", f"page not found ({msg.page_not_found.page_name!r})")
        elif kind == "script_finished":
            self.runs_finished += 1

    def _element(self, path: tuple, element, fragment_id: str) -> None:
        kind, known = element.WhichOneof("type"), self.sliders.get(path)
        if kind == "exception" and not element.exception.is_warning:
            self._error("exceptions", f"{element.exception.type}: {element.exception.message[:300]}")
        elif kind == "slider" and path and path[0] == MAIN and not element.slider.disabled:
            s = element.slider
            value = list(s.value) if s.set_value else (known.value if known and known.widget_id == s.id else list(s.default))
            self.sliders[path] = Slider(s.id, value, s.min, s.max, s.step or 1.0, fragment_id)
        elif kind == "bidi_component" and path and path[0] == MAIN and element.bidi_component.component_name == PAD_COMPONENT:
            pad = element.bidi_component
            value = known.value if known and known.widget_id == pad.id else [0.0, 0.0]
            self.sliders[path] = Slider(pad.id, value, -4.0, 4.0, 0.5, fragment_id, pad=True)
        elif kind == "markdown":
            self.texts[path] = element.markdown.body
        elif kind == "imgs":
            for i, img in enumerate(element.imgs.imgs):
                if img.url.startswith("/media/"):
                    self.images[path + (i,)] = img.url
                    self._spawn(self._fetch(path + (i,), img.url))

    @staticmethod
    async def _every(interval: float, send, **kwargs) -> None:
        while True:
            await asyncio.sleep(interval)
            await send(**kwargs)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.fetches.add(task)
        task.add_done_callback(self.fetches.discard)

    async def _get(self, path: str) -> None:
        status, _ = await asyncio.to_thread(http_get, f"{self.base}/{path}")
        if status != 200:
            self._error("failed_static", f"/{path} ({status})")

    async def _fetch(self, key: tuple, url: str) -> None:
        status, _ = await asyncio.to_thread(http_get, self.base + url)
        self.images_fetched += status == 200
        if status != 200 and self.images.get(key) == url:  # else a newer rerun replaced it: a browser's 404 too
            self._error("broken_images", f"{url} ({status})")

    async def browse(self, duration: float, think: float, rng: random.Random, moves_per_page: int) -> None:
        """duration seconds at a student's pace: a pause (exponential, mean think seconds), then one action."""
        end = time.monotonic() + duration
        while (pause := rng.expovariate(1.0 / think)) + time.monotonic() < end:
            await asyncio.sleep(pause)
            await self.act(moves_per_page)
        await asyncio.sleep(max(end - time.monotonic(), 0))

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
