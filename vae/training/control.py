"""Teaching with the training itself: pause, step one batch or one epoch, slow motion, and β, the
reconstruction weight or the learning rate changed mid-run. A Control is shared by a job's training thread,
which the trainer holds at every batch boundary (Control.gate), and the pages that press its buttons; a
paused thread waits on a condition variable, so it uses no CPU and keeps all its state.

A change applies from the next batch and is recorded in the history at its step, as
{"kind": "change", "epoch", "step", "setting", "old", "new"} (vae/checkpoint/format.py checks the records a
file holds)."""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

from vae.config import ConfigError, TrainConfig, live_settings

MAX_SLOW_MS = 5000  # slow motion: at most one batch every 5 s


def check_change(setting: str, value) -> float:
    """The value as the Train form would take it (the same declared range), or ConfigError in one sentence."""
    live = live_settings()
    if setting not in live:
        raise ConfigError(f"{setting!r} cannot be changed while a job trains; the settings that can are "
                          f"{', '.join(s.label for s in live.values())}.")
    return float(live[setting].check(value))


class Control:
    """Pause, step, pace and changes for one training thread. Every method may be called from any thread."""

    def __init__(self, stop_event: threading.Event | None = None):
        self.stop_event = stop_event or threading.Event()
        self._cond = threading.Condition()
        self.paused = False
        self._steps = 0  # batches allowed through while paused
        self._to_epoch_end = False  # while paused: the rest of the current epoch is allowed through
        self.slow_ms = 0  # 0: full speed; else at least this many ms from one batch's start to the next's
        self._pending: list[tuple[str, float]] = []
        self._last_batch = 0.0
        self.thread_id: int | None = None  # the native id of the thread that trains (for CPU accounting)
        self.waiting = False  # the training thread is held at the gate now

    # --- the pages' side ---

    def pause(self) -> None:
        with self._cond:
            self.paused, self._steps, self._to_epoch_end = True, 0, False
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self.paused, self._steps, self._to_epoch_end = False, 0, False
            self._cond.notify_all()

    def step(self, batches: int = 1) -> None:
        """While paused: let `batches` more batches through, then hold again."""
        with self._cond:
            self.paused = True
            self._steps += max(0, int(batches))
            self._cond.notify_all()

    def step_epoch(self) -> None:
        """While paused: let the rest of the current epoch through (a whole epoch at an epoch's start)."""
        with self._cond:
            self.paused, self._to_epoch_end = True, True
            self._cond.notify_all()

    def set_slow(self, ms: int) -> None:
        """Slow motion: one batch every `ms` milliseconds (0: full speed)."""
        with self._cond:
            self.slow_ms = max(0, min(MAX_SLOW_MS, int(ms)))
            self._cond.notify_all()

    def change(self, setting: str, value) -> float:
        """Queues a change for the next batch; returns the checked value (ConfigError when out of range)."""
        value = check_change(setting, value)
        with self._cond:
            self._pending.append((setting, value))
            self._cond.notify_all()
        return value

    def wake(self) -> None:
        """A stop was asked: a held thread looks at its stop event now."""
        with self._cond:
            self._cond.notify_all()

    @property
    def stepping(self) -> bool:
        """Paused or in slow motion: every batch is a moment worth showing (the trainer logs each one)."""
        return self.paused or self.slow_ms > 0

    # --- the training thread's side ---

    def gate(self, apply: Callable[[str, float], None]) -> bool:
        """Before each batch: applies queued changes (apply(setting, value)), waits while paused (until a step,
        a resume or a stop) and for slow motion's pace. Returns False when the run should stop."""
        if self.thread_id is None:
            self.thread_id = threading.get_native_id()
        with self._cond:
            while True:
                for setting, value in self._pending:
                    apply(setting, value)
                self._pending.clear()
                if self.stop_event.is_set():
                    return False
                if not self.paused or self._steps > 0 or self._to_epoch_end:
                    break
                self.waiting = True
                self._cond.wait()  # no timeout: a held thread costs nothing until notified
                self.waiting = False
            if self._steps > 0 and self.paused:
                self._steps -= 1
            while self.slow_ms and not self.stop_event.is_set():
                left = self._last_batch + self.slow_ms / 1000 - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._last_batch = time.perf_counter()
        return not self.stop_event.is_set()

    def epoch_ended(self) -> None:
        """The trainer finished an epoch: a Step-one-epoch is done."""
        with self._cond:
            self._to_epoch_end = False


def apply_change(cfg: TrainConfig, setting: str, value: float) -> TrainConfig:
    """The config with one changeable setting replaced (frozen dataclasses: a new one)."""
    return dataclasses.replace(cfg, **{setting: value})


def change_record(epoch: float, step: int, setting: str, old: float, new: float) -> dict:
    return {"kind": "change", "epoch": float(epoch), "step": int(step), "setting": setting, "old": float(old),
            "new": float(new)}
