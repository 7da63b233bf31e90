"""Training replay's Play button in a real browser: the frames' fragment reruns on its own timer (st.fragment
run_every, nested in the page's live fragment), so the epochs follow one another with no click, and it stops
on the last. The fresh session's model is the shipped shapes default (9 frames: 0, 1, 2, 3, 4, 7, 10, 14, 20)."""
from __future__ import annotations

import re

from tests.e2e.conftest import assert_clean, wait_until

SHOWN = re.compile(r"What the decoder drew at epoch (\d+) over")


def shown_epoch(page) -> int | None:
    found = SHOWN.search(page.locator('[data-testid="stMain"]').inner_text())
    return int(found.group(1)) if found else None


def test_play_steps_through_every_epoch_and_stops_on_the_last(open_page, app_server, console_errors):
    page = open_page("replay")
    wait_until(lambda: shown_epoch(page) == 20, 60, "the replay did not open on its last epoch", page=page)
    page.get_by_role("button", name="Play").click()
    wait_until(lambda: shown_epoch(page) == 0, 20, "Play did not start from the first epoch", interval=0.1, page=page)
    seen = [0]

    def finished() -> bool:
        epoch = shown_epoch(page)
        if epoch is not None and (not seen or seen[-1] != epoch):
            seen.append(epoch)
        return len(seen) > 1 and epoch == 20 and page.get_by_role("button", name="Play").count() == 1

    wait_until(finished, 60, lambda: f"Play did not reach the last epoch: saw {seen}", interval=0.1, page=page)
    assert seen == sorted(seen), seen  # in order, with no click
    assert len(seen) >= 7, f"most of the 9 frames were shown on their own: {seen}"
    page.wait_for_timeout(2000)
    assert shown_epoch(page) == 20, "stopped: the last epoch stays"
    assert_clean(page, "the replay after Play", app_server, console_errors)
