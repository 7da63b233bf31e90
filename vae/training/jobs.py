"""Training that lives beside the UI: a TrainingJob runs a Trainer in a daemon thread and publishes
copies (status, progress, history, a weights snapshot with a version) under a lock; a VariantsJob trains
several models side by side; registry.py holds every job of the process. A job holds its checkpoint's
reservation (vae/checkpoint/reservation.py) from its start to its end, so no other job, server or CLI run
writes that file meanwhile. Nothing here calls streamlit: the app creates one registry with
st.cache_resource and only reads from it."""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vae import checkpoint as ckpt_io
from vae.checkpoint.format import Checkpoint, CheckpointError
from vae.checkpoint.replay import REPLAY_KEY
from vae.config import ModelConfig, TrainConfig
from vae.data import DatasetUnavailable, load_for
from vae.nets.model import VAE
from vae.training.replay import ReplayRecorder
from vae.training.threads import become_a_training_thread
from vae.training.control import Control, check_change
from vae.training.trainer import Trainer, TrainingDiverged
from vae.training.view import ModelView

SNAPSHOT_SECONDS = 3.0  # also publish weights mid-epoch, so long epochs still animate the explore pages
STEP_WAIT_SECONDS = 2.0  # Step waits this long at most for its batch's weights, so the rerun after it shows them
ENDED = ("finished", "stopped", "failed")


@dataclass(frozen=True)
class JobState:
    """One consistent reading of a job, for the UI."""

    job_id: str
    name: str
    status: str  # starting | running | stopping | finished | stopped | failed
    message: str
    epoch: float  # epochs done, fractional while one is under way
    epochs: int
    step: int
    total_steps: int
    samples_per_sec: float
    eta_seconds: float
    version: int  # bumps with every weights snapshot
    checkpoint_path: str
    started: float
    paused: bool = False  # held by its Control (vae/training/control.py)
    slow_ms: int = 0  # slow motion's pace, 0 at full speed

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "stopping")

    @property
    def fraction(self) -> float:
        return min(self.step / self.total_steps, 1.0) if self.total_steps else 0.0


class TrainingJob:
    def __init__(self, job_id: str, name: str, model_cfg: ModelConfig, train_cfg: TrainConfig, checkpoint_path: Path,
                 resume_from: Checkpoint | None = None, reservation: ckpt_io.Reservation | None = None,
                 owner: str | None = None):
        """resume_from: a checkpoint whose run this job continues (its weights, Adam's state, history, RNG);
        reservation: the checkpoint's, released when the job ends; owner: the session that started it, the one
        that may stop it (vae/training/ownership.py), None for anyone."""
        self.job_id, self.name, self.owner = job_id, name, owner
        self.model_cfg, self.train_cfg = model_cfg, train_cfg
        self.checkpoint_path = Path(checkpoint_path)
        self.resume_from = resume_from
        self._reservation = reservation
        self.stop_event = threading.Event()
        self.control = Control(self.stop_event)  # pause, step, slow motion, changes (the trainer holds to it)
        self._lock = threading.Lock()
        self._status, self._message = "starting", ""
        self._progress = {"epoch": 0.0, "step": 0, "total_steps": 0, "samples_per_sec": 0.0, "eta_seconds": float("nan")}
        self._history: list[dict] = []
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._version = 0
        self._class_names: list[str] = []
        self._replay: dict | None = None  # the trainer's latest replay frames (vae/training/replay.py), replaced whole
        self._view_cache: ModelView | None = None
        self._last_snapshot_time = 0.0
        self._started = time.time()
        # A finished run's last save leaves the optimizer out (a third of the size) when set: the lecture's
        # variants are for looking at, not for training on. Autosaves and a stopped run keep it, to resume.
        self.slim_when_finished = False
        self._thread = threading.Thread(target=self._run, name=f"train-{job_id}", daemon=True)

    # ---- control (any thread) ----
    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Asks the trainer to stop between two steps (a paused one too); what was learned is saved."""
        with self._lock:
            if self._status in ("starting", "running"):
                self._status = "stopping"
        self.stop_event.set()
        self.control.wake()

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def step(self, batches: int = 1, wait: float = STEP_WAIT_SECONDS) -> None:
        """Lets `batches` batches through, then holds; waits (up to `wait` s) for the weights they made, so a
        page that reruns next shows them."""
        version = self.state().version
        self.control.step(batches)
        self._wait_for_version(version, wait)

    def step_epoch(self, wait: float = STEP_WAIT_SECONDS) -> None:
        version = self.state().version
        self.control.step_epoch()
        self._wait_for_version(version, wait)

    def set_slow(self, ms: int) -> None:
        self.control.set_slow(ms)

    def change(self, setting: str, value) -> bool:
        """Changes a live setting from the next batch (ConfigError out of its range); False when it already has
        that value."""
        value = check_change(setting, value)
        if float(getattr(self.train_config, setting)) == value:
            return False
        self.control.change(setting, value)
        return True

    @property
    def train_config(self) -> TrainConfig:
        """The run's settings as they are now (a change replaces them)."""
        with self._lock:
            return self.train_cfg

    def _wait_for_version(self, version: int, wait: float) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            state = self.state()
            if state.version != version or not state.active:
                return
            time.sleep(0.005)

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:  # a job that failed before it started has no thread to wait for
            self._thread.join(timeout)

    # ---- readings (any thread) ----
    def state(self) -> JobState:
        with self._lock:
            p = self._progress
            return JobState(
                self.job_id, self.name, self._status, self._message, p["epoch"], self.train_cfg.epochs,
                p["step"], p["total_steps"], p["samples_per_sec"], p["eta_seconds"], self._version,
                str(self.checkpoint_path), self._started, paused=self.control.paused, slow_ms=self.control.slow_ms,
            )

    def history(self) -> list[dict]:
        with self._lock:
            return list(self._history)

    def view(self) -> ModelView | None:
        """The latest weights as a ready eval-mode model, rebuilt only when the version changes."""
        with self._lock:
            if self._snapshot is None:
                return None
            if self._view_cache is None or self._view_cache.key != self._key():
                model = VAE(self.model_cfg)
                model.load_state_dict(self._snapshot)
                self._view_cache = ModelView(
                    key=self._key(), name=self.name, model=model.eval(), model_config=self.model_cfg,
                    train_config=self.train_cfg, dataset=self.train_cfg.dataset, class_names=self._class_names,
                    history=self._history, test_metrics=_latest_test(self._history),
                    epochs=int(self._progress["epoch"]), live=self._status in ("starting", "running", "stopping"),
                    path=str(self.checkpoint_path), extras={REPLAY_KEY: self._replay} if self._replay else {},
                )
            view = self._view_cache
            view.live = self._status in ("starting", "running", "stopping")
            return view

    def _key(self) -> str:
        return f"job:{self.job_id}:{self._version}"

    # ---- the training thread: never touches streamlit ----
    def _run(self) -> None:
        become_a_training_thread()
        try:
            trainer = self.build_trainer()
            trainer.run()
            self.finish(trainer, "stopped" if self.stop_event.is_set() else "finished")
        except Exception as e:  # the thread must never die silently: the UI shows the sentence
            self.fail(e)
        finally:
            self.release()

    def release(self) -> None:
        """Gives up the checkpoint's reservation (ending the job does; a second call does nothing)."""
        if self._reservation is not None:
            self._reservation.release()

    def fail(self, e: Exception) -> None:
        """Ends the job as failed, with the error as one sentence (a diverged run names the epoch kept)."""
        if isinstance(e, TrainingDiverged):
            self._set_status("failed", f"failed: {e} The last good epoch is kept in {self.checkpoint_path.name}."
                             if self.checkpoint_path.exists() else f"failed: {e}")
        elif isinstance(e, (DatasetUnavailable, CheckpointError)):
            self._set_status("failed", f"failed: {e}")
        else:
            self._set_status("failed", f"failed: {type(e).__name__}: {e}")

    def _load_data(self):
        return tuple(load_for(self.train_cfg, split, image_shape=self.model_cfg.image_shape) for split in ("train", "test"))

    def build_trainer(self, data=None) -> Trainer:
        """A trainer wired to this job (its events publish snapshots and autosave); data: the (train, test)
        sets when the caller already holds them. The job's own thread calls it, or a VariantsJob's."""
        train, test = data or self._load_data()
        trainer = Trainer(self.model_cfg, self.train_cfg, train, test, stop_event=self.stop_event, control=self.control)
        if self.resume_from is not None:
            trainer.restore(self.resume_from)
            with self._lock:
                self._history = list(trainer.history)
                self._progress.update(epoch=float(trainer.epoch), step=trainer.step)
        ReplayRecorder(seed=self.train_cfg.seed).attach(trainer)  # first: autosave then holds the epoch's frame
        trainer.add_callback("on_step", self._on_step)
        trainer.add_callback("on_epoch_end", self._on_epoch_end)
        trainer.add_callback("on_change", self._on_change)
        with self._lock:
            self._class_names = list(train.class_names)
            self._replay = trainer.extras.get(REPLAY_KEY)
            self._progress["total_steps"] = trainer.steps_per_epoch * self.train_cfg.epochs
            if self._status == "starting":
                self._status = "running"
        self._publish_weights(trainer)
        return trainer

    def _on_step(self, trainer: Trainer, record: dict) -> None:
        with self._lock:
            self._history.append(record)
            remaining = self._progress["total_steps"] - trainer.step
            sps = record["samples_per_sec"]
            self._progress.update(
                epoch=record["epoch"], step=trainer.step, samples_per_sec=sps,
                eta_seconds=remaining * trainer.cfg.batch_size / sps if sps > 0 else float("nan"),
            )
        # Paused, stepping or in slow motion, each batch's weights go out: the pages show the model at that step.
        if trainer.control.stepping or time.monotonic() - self._last_snapshot_time > SNAPSHOT_SECONDS:
            self._publish_weights(trainer)

    def _on_change(self, trainer: Trainer, record: dict) -> None:
        with self._lock:
            self._history.append(record)
            self.train_cfg = trainer.cfg  # a save, a resume and the pages see the new value

    def _on_epoch_end(self, trainer: Trainer, record: dict) -> None:
        with self._lock:
            self._history.append(record)
            self._replay = trainer.extras.get(REPLAY_KEY)
            self._progress["epoch"] = float(trainer.epoch)
        self._publish_weights(trainer)
        self._save(trainer)  # autosave every epoch, atomically

    def _publish_weights(self, trainer: Trainer) -> None:
        snapshot = {k: v.detach().to("cpu", copy=True) for k, v in trainer.model.state_dict().items()}
        with self._lock:
            self._snapshot, self._version = snapshot, self._version + 1
        self._last_snapshot_time = time.monotonic()

    def _save(self, trainer: Trainer, slim: bool = False) -> str:
        """Autosave; returns '' or why it failed. A failure is kept as the job's message and training goes on
        (the weights are in memory and the next epoch tries again); a later save that works clears it."""
        try:
            ckpt_io.save(trainer.checkpoint_payload(include_optimizer=not slim, notes=trainer.train_data.source),
                         self.checkpoint_path)
        except CheckpointError as e:
            with self._lock:
                self._message = f"Autosave failed, training goes on and tries again next epoch: {e}"
            return str(e)
        with self._lock:
            self._message = ""
        return ""

    def finish(self, trainer: Trainer, status: str) -> None:
        """Ends the job as finished or stopped: the last snapshot, a score for a mid-epoch stop, the save."""
        with self._lock:  # step records come every log_every steps: make the final count exact
            self._progress.update(step=trainer.step, epoch=trainer.step / trainer.steps_per_epoch)
        self._publish_weights(trainer)
        if status == "stopped" and trainer.step > 0:
            record = _stop_record(trainer)  # a mid-epoch stop: score what was learned, for the checkpoint
            trainer.history.append(record)
            with self._lock:
                self._history.append(record)
        failed = self._save(trainer, slim=self.slim_when_finished and status == "finished")
        self._set_status(status, f"{status}: saved {self.checkpoint_path.name}" if not failed else
                         f"{status}, but the model could not be saved: {failed}")

    def _set_status(self, status: str, message: str) -> None:
        if status in ENDED:  # first: a tab that sees the job ended may resume its file at once
            self.release()
        with self._lock:
            self._status, self._message = status, message
            if status in ("finished",):
                self._progress["epoch"] = float(self.train_cfg.epochs)


def _stop_record(trainer: Trainer) -> dict:
    record = {"kind": "epoch", "epoch": trainer.step / trainer.steps_per_epoch, "step": trainer.step, "partial": 1}
    if trainer.x_test is not None:
        record.update({f"test_{k}": v for k, v in trainer.evaluate_test().items()})
    return record


def _latest_test(history: list[dict]) -> dict[str, float]:
    for record in reversed(history):
        if record.get("kind") == "epoch" and "test_elbo" in record:
            return {k: record[f"test_{k}"] for k in ("recon", "kl", "elbo")}
    return {}


class VariantsJob(TrainingJob):
    """Several models trained in one thread on the same data and seed, one epoch of each in turn, so
    their latent spaces form side by side (the lecture's reconstruction-only, KL-only and full-ELBO
    models, vae/analysis/teaching.py). It counts as one job against the registry's cap. Each member is a
    TrainingJob driven by this thread instead of its own: it publishes its snapshots and replay,
    autosaves to its own checkpoint, and can be looked at (id '<group id>.<n>') like any job.
    The group's history and view are those of its last member.
    """

    def __init__(self, job_id: str, name: str, members: list[TrainingJob], owner: str | None = None):
        if not members:
            raise ValueError("A group of variants needs at least one model.")
        last = members[-1]
        super().__init__(job_id, name, last.model_cfg, last.train_cfg, last.checkpoint_path, owner=owner)
        self.members = list(members)
        for member in self.members:
            member.stop_event = self.stop_event  # one Stop ends them all
            member.control = self.control  # and one Pause, Step or speed holds them all
            member.owner = owner  # a member looked at on its own is steered as its group
            member.slim_when_finished = True

    def stop(self) -> None:
        super().stop()
        for member in self.members:
            member.stop()

    def state(self) -> JobState:
        """The group's status, with progress summed over its members (epoch: the slowest member's)."""
        own, states = super().state(), [m.state() for m in self.members]
        step, total = sum(s.step for s in states), sum(s.total_steps for s in states)
        current = next((s for s in states if s.status == "running" and s.samples_per_sec > 0), None)
        sps = current.samples_per_sec if current else 0.0
        eta = (total - step) * self.train_cfg.batch_size / sps if sps > 0 and total else float("nan")
        return dataclasses.replace(
            own, epoch=min(s.epoch for s in states), step=step, total_steps=total, samples_per_sec=sps,
            eta_seconds=eta, version=sum(s.version for s in states),
        )

    def history(self) -> list[dict]:
        return self.members[-1].history()

    def view(self) -> ModelView | None:
        return self.members[-1].view()

    def _run(self) -> None:
        become_a_training_thread()
        try:
            data = self._load_data()  # once: every member trains on the very same tensors
            lanes = [(member, member.build_trainer(data)) for member in self.members]
            with self._lock:
                if self._status == "starting":
                    self._status = "running"
            while lanes:
                for lane in list(lanes):
                    member, trainer = lane
                    try:
                        record = trainer.run_epoch() if trainer.epoch < trainer.cfg.epochs else None
                    except TrainingDiverged as e:  # one variant diverging does not stop the others
                        member.fail(e)
                        lanes.remove(lane)
                        continue
                    if record is None:
                        member.finish(trainer, "stopped" if self.stop_event.is_set() else "finished")
                        lanes.remove(lane)
        except Exception as e:  # never die silently: the group and every unfinished member say why
            for member in self.members:
                if member.state().active:
                    member.fail(e)
            self.fail(e)
            return
        finally:
            for member in self.members:
                member.release()
        status = "stopped" if self.stop_event.is_set() else "finished"
        failed = [f"{m.name} {m.state().message}" for m in self.members if m.state().status == "failed"]
        saved = ", ".join(Path(m.checkpoint_path).name for m in self.members if m.state().status != "failed")
        self._set_status(status, f"{status}: saved {saved}" + "".join(f"; {f}" for f in failed))


