"""The load benchmark's browserless sessions (bench/st_wire.py) against a real `streamlit run app.py`:
if Streamlit's protocol changes under them, this fails here rather than the benchmark measuring a
class that does nothing."""
from __future__ import annotations

import random
import time

import pytest

from bench.st_wire import WireErrors, WireLoop, WireSession

pytestmark = pytest.mark.e2e

EXPLORE = ["sliders", "manifold", "scatter", "reconstructions"]


def _until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_wire_session_opens_moves_its_sliders_and_changes_page(app_server):
    loop, errors = WireLoop(), WireErrors()
    session = WireSession(app_server.url, "sliders", 0, errors, EXPLORE)
    try:
        loop.run(session.open(moves_per_page=2), 60)
        assert session.assets, "the page named no scripts"
        assert _until(lambda: len(session.sliders) == 2 and len(session.images) == 2 and session.images_fetched >= 2), \
            (session.sliders, session.images, session.images_fetched)
        assert set(session.pages) >= set(EXPLORE), session.pages
        sliders_hash = session.page_hash

        before = dict(session.images)
        z1 = sorted(session.sliders.items())[0][1]
        runs = session.runs_finished
        loop.run(session.act(moves_per_page=2), 10)  # a slider step: a fragment rerun with a new image
        assert _until(lambda: session.runs_finished > runs and session.images != before), session.images
        assert z1.fragment_id, "the sliders sit in an st.fragment"
        moved = [s.value[0] for s in session.sliders.values()]
        assert sorted(moved) == [0.0, 0.05], moved

        loop.run(session.act(moves_per_page=2), 10)
        loop.run(session.act(moves_per_page=2), 10)  # its sliders done: on to the next Explore page
        # Both of the manifold's sliders: the page's elements arrive one message each, so wait for the second.
        assert _until(lambda: session.page_hash == session.pages["manifold"] and len(session.sliders) == 2), \
            (session.page_hash, session.pages, session.sliders)
        assert session.page_hash != sliders_hash
        assert {s.value[0] for s in session.sliders.values()} == {20.0, 3.0}  # the manifold's n and r
        assert _until(lambda: any("/PlotlyChart." in a for a in session.assets)), session.assets[session.page_assets:]

        loop.run(session.browse(3.0, 0.5, random.Random(0), 2), 30)  # a few seconds at a quick student's pace
        loop.run(session.settle(30), 40)
    finally:
        loop.run(session.close(), 30)
        loop.close()
    assert session.actions >= 4
    assert not (errors.exceptions or errors.broken_images or errors.dropped or errors.failed_static), errors
    assert not app_server.tracebacks()
