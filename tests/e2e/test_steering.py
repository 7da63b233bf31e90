"""Teaching with the training itself, in a real browser: a shapes job started from the Train page is paused; five
Steps from the sidebar's card, on the latent pad's page, give the pad five new weight versions and the step
counter five steps; β changed from 1 to 8 on the Train page draws its marker on the curves and, within two
epochs, the KL term falls (read from the job's autosaved history); after Resume the checkpoint holds the change.
Writes docs/screenshots/steer.png (the paused job's controls and the curves with the change marked)."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

from vae import checkpoint as ckpt_io

from .conftest import assert_clean, wait_for_app_idle, wait_until
from .test_colour import doc_screenshot
from .test_latent_pad import pad_state
from .test_teacher_loop import go, main_text

pytestmark = pytest.mark.e2e

JOB = "steer"
STEP_COUNTER = re.compile(r"Paused at step (\d+)\.")


def _fill(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    if not field.is_visible():
        page.get_by_text("More settings", exact=True).first.click()
    field.fill(value)
    field.press("Tab")


def _card_step(page) -> int:
    text = page.locator(".st-key-model_card").inner_text()
    found = STEP_COUNTER.search(text)
    return int(found.group(1)) if found else -1


def _kl_around(history: list[dict], change: dict) -> tuple[float, float]:
    """Mean training KL (nats) of the step records in the epoch before the change, and in the two epochs after
    the one it happened in."""
    steps = [r for r in history if r["kind"] == "step"]
    at = change["epoch"]
    before = [r["kl"] for r in steps if at - 1 <= r["epoch"] <= at]
    after = [r["kl"] for r in steps if np.ceil(at) < r["epoch"] <= np.ceil(at) + 2]
    return float(np.mean(before)), float(np.mean(after)) if after else float("nan")


@pytest.mark.timeout(300)
def test_pause_step_change_beta_and_resume(page, app_server, console_errors):
    go(page, "train", "Train a VAE")
    for label, value in (("Epochs", "40"), ("Batch size", "32"), ("Checkpoint name (optional)", JOB),
                         ("Training images (0: all)", "2000")):
        _fill(page, label, value)
    page.get_by_role("button", name=re.compile("Start training")).click()
    wait_until(lambda: f"{JOB}: running" in main_text(page), 120, "the job did not start", page=page)
    path = app_server.checkpoint_dir / f"{JOB}.pt"
    try:
        wait_until(lambda: path.exists(), 60, "no autosave after the first epoch", page=page)  # one epoch at beta 1
        page.locator(".st-key-train_pause button:visible").click()
        wait_until(lambda: "paused" in main_text(page), 30, "the job did not pause", page=page)

        # Five Steps from the sidebar's card, on the pad's page: five new weight versions, five more steps.
        go(page, "sliders", "Latent sliders")
        wait_until(lambda: (pad_state(page) or {}).get("key", "").startswith("job:"), 30, "no live pad", page=page)
        first, step0 = pad_state(page), _card_step(page)
        assert step0 > 0, page.locator(".st-key-model_card").inner_text()
        for k in range(1, 6):
            before = pad_state(page)["versions"]
            page.locator(".st-key-card_step button:visible").click()
            wait_until(lambda: pad_state(page)["versions"] >= before + 1 and _card_step(page) == step0 + k, 30,
                       lambda: f"step {k}: pad versions {pad_state(page)['versions']} (was {before}), card step "
                               f"{_card_step(page)} (want {step0 + k})", page=page)
        assert pad_state(page)["versions"] == first["versions"] + 5
        assert pad_state(page)["point"] == first["point"]

        # beta 1 -> 8 from the Train page's controls, then Resume.
        go(page, "train", "Train a VAE")
        beta = page.locator(".st-key-train_beta input:visible")
        beta.fill("8")
        beta.press("Tab")
        page.get_by_role("button", name="Apply").locator("visible=true").click()
        page.locator(".st-key-train_step button:visible").click()  # one batch at the new beta, so the change is recorded
        wait_until(lambda: page.locator(".st-key-curves").inner_text().count("β 1 → 8") >= 1 or
                   "β 1 → 8" in page.evaluate("() => document.querySelector('.st-key-curves').innerHTML"), 30,
                   "the curves show no marker for the change", page=page)
        doc_screenshot(page, "steer")  # paused: the controls, and the curves with the change marked
        changed_at = time.monotonic()
        page.locator(".st-key-train_resume button:visible").click()
        wait_until(lambda: "paused" not in main_text(page), 30, "Resume did not resume", page=page)
        # Within two epochs the KL term falls: the epoch before the change against the two after it, as saved.
        def two_epochs_after():
            history = ckpt_io.load(path).history
            change = next((r for r in history if r["kind"] == "change"), None)
            return change is not None and max(r["epoch"] for r in history) >= np.ceil(change["epoch"]) + 2
        wait_until(two_epochs_after, 120, "two epochs after the change were not saved", page=page)
        saved = ckpt_io.load(path)
        change = next(r for r in saved.history if r["kind"] == "change")
        assert (change["setting"], change["old"], change["new"]) == ("beta", 1.0, 8.0)
        assert saved.train_config.beta == 8.0
        before, after = _kl_around(saved.history, change)
        assert after < before, f"the KL did not fall after beta 1 -> 8: {before:.2f} -> {after:.2f} nats"
        print(f"KL {before:.2f} nats in the epoch before beta 1 -> 8 at step {change['step']}, {after:.2f} in the two "
              f"after; {time.monotonic() - changed_at:.0f} s after the change")
        assert_clean(page, "/train (steered)", app_server, console_errors)
    finally:
        go(page, "train", "Train a VAE")
        page.get_by_role("button", name="Stop").click()
        wait_until(lambda: f"{JOB}: stopped" in main_text(page), 60, "the job did not stop", page=page)
        wait_for_app_idle(page)
