"""Training that lives beside the UI: a TrainingJob runs a Trainer in a daemon thread and
publishes copies (status, progress, history, a weights snapshot with a version) under a
lock; a JobRegistry holds every job of the process. Nothing here calls streamlit: the app
creates one registry with st.cache_resource and only reads from it."""
from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoint as ckpt_io
from .checkpoint import Checkpoint, CheckpointError
from .config import ModelConfig, TrainConfig
from .data import DatasetUnavailable, load_dataset
from .model import VAE
from .train import Trainer, TrainingDiverged

SNAPSHOT_SECONDS = 3.0  # also publish weights mid-epoch, so long epochs still animate the explore pages
FINISHED_JOBS_KEPT = 10


@dataclass
class ModelView:
    """What a page needs to draw a model, whether a loaded checkpoint or a live job's snapshot.

    `key` changes whenever the weights do, so caches keyed on it re-encode exactly then.
    """

    key: str
    name: str
    model: VAE
    model_config: ModelConfig
    train_config: TrainConfig | None
    dataset: str
    class_names: list[str]
    history: list[dict]
    test_metrics: dict[str, float]
    epochs: int
    live: bool = False
    path: str = ""
    notes: str = ""
    extras: dict = field(default_factory=dict)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, key: str | None = None) -> "ModelView":
        return cls(
            key=key or f"ckpt:{ckpt.path or id(ckpt)}:{ckpt.created}",
            name=ckpt.name, model=ckpt.model, model_config=ckpt.model_config, train_config=ckpt.train_config,
            dataset=ckpt.dataset, class_names=ckpt.class_names, history=ckpt.history,
            test_metrics=ckpt.test_metrics, epochs=ckpt.epoch, path=ckpt.path, notes=ckpt.notes,
            extras=ckpt.extras,
        )


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

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "stopping")

    @property
    def fraction(self) -> float:
        return min(self.step / self.total_steps, 1.0) if self.total_steps else 0.0


class TrainingJob:
    def __init__(self, job_id: str, name: str, model_cfg: ModelConfig, train_cfg: TrainConfig, checkpoint_path: Path):
        self.job_id, self.name = job_id, name
        self.model_cfg, self.train_cfg = model_cfg.validate(), train_cfg.validate()
        self.checkpoint_path = Path(checkpoint_path)
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._status, self._message = "starting", ""
        self._progress = {"epoch": 0.0, "step": 0, "total_steps": 0, "samples_per_sec": 0.0, "eta_seconds": float("nan")}
        self._history: list[dict] = []
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._version = 0
        self._class_names: list[str] = []
        self._view_cache: ModelView | None = None
        self._last_snapshot_time = 0.0
        self._started = time.time()
        self._thread = threading.Thread(target=self._run, name=f"train-{job_id}", daemon=True)

    # ---- control (any thread) ----
    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Asks the trainer to stop between two steps; what was learned is saved."""
        with self._lock:
            if self._status in ("starting", "running"):
                self._status = "stopping"
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # ---- readings (any thread) ----
    def state(self) -> JobState:
        with self._lock:
            p = self._progress
            return JobState(
                self.job_id, self.name, self._status, self._message, p["epoch"], self.train_cfg.epochs,
                p["step"], p["total_steps"], p["samples_per_sec"], p["eta_seconds"], self._version,
                str(self.checkpoint_path), self._started,
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
                    path=str(self.checkpoint_path),
                )
            view = self._view_cache
            view.live = self._status in ("starting", "running", "stopping")
            return view

    def _key(self) -> str:
        return f"job:{self.job_id}:{self._version}"

    # ---- the training thread: never touches streamlit ----
    def _run(self) -> None:
        trainer = None
        try:
            trainer = self._build_trainer()
            trainer.run()
            self._finish(trainer, "stopped" if self.stop_event.is_set() else "finished")
        except TrainingDiverged as e:
            self._set_status("failed", f"failed: {e} The last good epoch is kept in {self.checkpoint_path.name}."
                             if self.checkpoint_path.exists() else f"failed: {e}")
        except (DatasetUnavailable, CheckpointError) as e:
            self._set_status("failed", f"failed: {e}")
        except Exception as e:  # the thread must never die silently: the UI shows this sentence
            self._set_status("failed", f"failed: {type(e).__name__}: {e}")

    def _build_trainer(self) -> Trainer:
        train = load_dataset(self.train_cfg.dataset, "train", self.train_cfg.data_dir)
        test = load_dataset(self.train_cfg.dataset, "test", self.train_cfg.data_dir)
        trainer = Trainer(self.model_cfg, self.train_cfg, train, test, stop_event=self.stop_event)
        trainer.add_callback("on_step", self._on_step)
        trainer.add_callback("on_epoch_end", self._on_epoch_end)
        with self._lock:
            self._class_names = list(train.class_names)
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
        if time.monotonic() - self._last_snapshot_time > SNAPSHOT_SECONDS:
            self._publish_weights(trainer)

    def _on_epoch_end(self, trainer: Trainer, record: dict) -> None:
        with self._lock:
            self._history.append(record)
            self._progress["epoch"] = float(trainer.epoch)
        self._publish_weights(trainer)
        self._save(trainer)  # autosave every epoch, atomically

    def _publish_weights(self, trainer: Trainer) -> None:
        snapshot = {k: v.detach().to("cpu", copy=True) for k, v in trainer.model.state_dict().items()}
        with self._lock:
            self._snapshot, self._version = snapshot, self._version + 1
        self._last_snapshot_time = time.monotonic()

    def _save(self, trainer: Trainer) -> None:
        try:
            ckpt_io.save(trainer.checkpoint_payload(notes=trainer.train_data.source), self.checkpoint_path)
        except CheckpointError as e:  # keep training: the weights are still in memory
            with self._lock:
                self._message = f"Autosave failed: {e}"

    def _finish(self, trainer: Trainer, status: str) -> None:
        with self._lock:  # step records come every log_every steps: make the final count exact
            self._progress.update(step=trainer.step, epoch=trainer.step / trainer.steps_per_epoch)
        self._publish_weights(trainer)
        if status == "stopped" and trainer.step > 0:
            record = _stop_record(trainer)  # a mid-epoch stop: score what was learned, for the checkpoint
            trainer.history.append(record)
            with self._lock:
                self._history.append(record)
        self._save(trainer)
        with self._lock:
            message = self._message
        done = f"{status}: saved {self.checkpoint_path.name}" if not message else f"{status}: {message}"
        self._set_status(status, done)

    def _set_status(self, status: str, message: str) -> None:
        with self._lock:
            self._status, self._message = status, message
            if status in ("finished",):
                self._progress["epoch"] = float(self.train_cfg.epochs)


def _stop_record(trainer: Trainer) -> dict:
    record = {"kind": "epoch", "epoch": trainer.step / trainer.steps_per_epoch, "step": trainer.step, "partial": 1}
    if trainer.x_test is not None:
        record.update({f"test_{k}": v for k, v in trainer.evaluate(trainer.x_test).items()})
    return record


def _latest_test(history: list[dict]) -> dict[str, float]:
    for record in reversed(history):
        if record.get("kind") == "epoch" and "test_elbo" in record:
            return {k: record[f"test_{k}"] for k in ("recon", "kl", "elbo")}
    return {}


class JobLimitReached(RuntimeError):
    """Starting one more job would exceed the cap; the message names the running job."""


def default_max_jobs() -> int:
    """VAE_MAX_JOBS, else 1 on a CPU-only machine (training already uses every core), else 2."""
    env = os.environ.get("VAE_MAX_JOBS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return 2 if torch.cuda.is_available() else 1


class JobRegistry:
    """Every training job of this process, shared by all pages and browser tabs."""

    def __init__(self, checkpoint_dir: str | os.PathLike = "checkpoints", max_running: int | None = None):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.max_running = max_running or default_max_jobs()
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, model_cfg: ModelConfig, train_cfg: TrainConfig, name: str | None = None) -> TrainingJob:
        """Validates, names the checkpoint (never overwriting) and starts the thread."""
        model_cfg, train_cfg = model_cfg.validate(), train_cfg.validate()
        with self._lock:
            running = [j for j in self._jobs.values() if j.state().active]
            if len(running) >= self.max_running:
                names = ", ".join(j.name for j in running)
                raise JobLimitReached(
                    f"{len(running)} training job{'s are' if len(running) > 1 else ' is'} already running ({names}) "
                    f"and this machine allows {self.max_running}; stop it or wait for it to finish."
                )
            base = name or f"{train_cfg.dataset}-{model_cfg.latent_dim}d"
            path = (ckpt_io.checkpoint_path(base, self.checkpoint_dir) if name
                    else ckpt_io.unique_checkpoint_path(base, self.checkpoint_dir))
            path.parent.mkdir(parents=True, exist_ok=True)
            job = TrainingJob(str(next(self._ids)), path.stem, model_cfg, train_cfg, path)
            self._jobs[job.job_id] = job
            self._forget_old()
        return job.start()

    def get(self, job_id: str | None) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(job_id) if job_id else None

    def jobs(self) -> list[TrainingJob]:
        with self._lock:
            return list(self._jobs.values())

    def running(self) -> list[TrainingJob]:
        return [j for j in self.jobs() if j.state().active]

    def stop_all(self, timeout: float = 5.0) -> None:
        for job in self.jobs():
            job.stop()
        for job in self.jobs():
            job.join(timeout)

    def _forget_old(self) -> None:
        """Keeps memory bounded: only the newest finished jobs stay (their checkpoints stay on disk)."""
        finished = [j for j in self._jobs.values() if not j.state().active]
        for job in finished[:-FINISHED_JOBS_KEPT]:
            del self._jobs[job.job_id]
