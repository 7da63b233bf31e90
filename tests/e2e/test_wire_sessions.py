"""The load benchmark's browserless sessions (bench/st_wire.py) against a real `streamlit run app.py`:
if Streamlit's protocol changes under them, this fails here rather than the benchmark measuring a
class that does nothing."""
from __future__ import annotations

import random
import time

import pytest

from bench.st_wire import WireErrors, WireLoop, WireSession
from pages.ui.sitemap import PAGES

pytestmark = pytest.mark.e2e

EXPLORE = [p.path for p in PAGES if p.tour]  # sliders first: the test starts there


def _until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_wire_session_opens_moves_its_pad_and_sliders_and_changes_page(app_server):
    loop, errors = WireLoop(), WireErrors()
    session = WireSession(app_server.url, "sliders", 0, errors, EXPLORE)
    try:
        loop.run(session.open(moves_per_page=2), 60)
        assert session.assets, "the page named no scripts"
        # The sliders page is the latent pad: its point moves in the browser and reaches the server on release.
        assert _until(lambda: len(session.sliders) == 1), session.sliders
        pad = next(iter(session.sliders.values()))
        assert pad.pad and pad.fragment_id, "the pad sits in an st.fragment"
        sliders_hash = session.page_hash

        runs = session.runs_finished
        loop.run(session.act(moves_per_page=2), 10)  # a release: a fragment rerun that reads the point
        assert _until(lambda: session.runs_finished > runs and any(
            "Released at z = (0.50, 0.00)" in t for t in session.texts.values())), session.texts
        assert [s.value for s in session.sliders.values()] == [[0.5, 0.0]]

        loop.run(session.act(moves_per_page=2), 10)
        loop.run(session.act(moves_per_page=2), 10)  # its sliders done: on to the next Explore page
        # Both of the manifold's sliders: the page's elements arrive one message each, so wait for the second.
        assert _until(lambda: session.page_hash == session.pages["manifold"] and len(session.sliders) == 2), \
            (session.page_hash, session.pages, session.sliders)
        assert session.page_hash != sliders_hash
        assert {s.value[0] for s in session.sliders.values()} == {20.0, 3.0}  # the manifold's n and r

        loop.run(session.browse(3.0, 0.5, random.Random(0), 2), 30)  # a few seconds at a quick student's pace
        loop.run(session.settle(30), 40)
    finally:
        loop.run(session.close(), 30)
        loop.close()
    assert session.actions >= 4
    assert not (errors.exceptions or errors.broken_images or errors.dropped or errors.failed_static), errors
    assert not app_server.tracebacks()
