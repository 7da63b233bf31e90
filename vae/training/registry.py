"""Every training job of one server process, and the rules for starting one: at most VAE_MAX_JOBS running at\nonce, a file reserved before any data loads (a name in use refused, a free one found for an unnamed run), a\nresumed run only on a data folder the server allows, and the last few finished jobs kept for their pages."""
from __future__ import annotations

import dataclasses
import itertools
import os
import threading
from pathlib import Path

import torch

from vae import checkpoint as ckpt_io
from vae.checkpoint.format import Checkpoint, CheckpointError
from vae.config import ModelConfig, TrainConfig
from vae.data import ALLOWED_DATA_DIRS_ENV, DataFolderRefused, check_data_dir
from vae.training.jobs import TrainingJob, VariantsJob

FINISHED_JOBS_KEPT = 10


def _group(group_id: str, base: str, model_cfg: ModelConfig, variants: list[tuple[str, TrainConfig]], paths: list[Path],
           reservations: list[ckpt_io.Reservation | None], owner: str | None = None) -> VariantsJob:
    """A group of variants, each member writing its path under its reservation."""
    members = [TrainingJob(f"{group_id}.{i}", path.stem, model_cfg, cfg, path, reservation=reservation)
               for i, ((_, cfg), path, reservation) in enumerate(zip(variants, paths, reservations), start=1)]
    return VariantsJob(group_id, base, members, owner=owner)


def _reserve_all(reserve_one, items: list) -> list[ckpt_io.Reservation]:
    """reserve_one(item) for every item, or none reserved: the first refusal is raised."""
    taken = []
    try:
        for item in items:
            taken.append(reserve_one(item))
    except BaseException:
        for reservation in taken:
            reservation.release()
        raise
    return taken


def _same_run_settings(ckpts: list[Checkpoint]) -> bool:
    """Whether checkpoints can train as one group: one model and the same data, seed and schedule (the loss's
    weights are what variants differ in)."""
    def settings(ckpt: Checkpoint):
        return ckpt.model_config, dataclasses.replace(ckpt.train_config, beta=1.0, recon_weight=1.0, warmup_epochs=0.0)

    return all(settings(ckpt) == settings(ckpts[0]) for ckpt in ckpts[1:])


def _resume_config(ckpt: Checkpoint, data_dir: str | None) -> TrainConfig:
    """The run's settings, its data read from data_dir (the tab's data folder), or, for the user's own images,
    from the folder the file names when the server allows it as Home allows a typed one: a file may name any."""
    cfg = ckpt.train_config
    if cfg.dataset != "folder":
        return dataclasses.replace(cfg, data_dir=data_dir)
    try:
        folder = check_data_dir(cfg.data_dir or "")
    except DataFolderRefused:
        where = cfg.data_dir or "a folder it does not name"
        raise DataFolderRefused(f"{Path(ckpt.path).name} cannot be resumed here: its images were in {where}, which is "
                                "not a data folder this server allows; the server's operator can allow it with "
                                f"${ALLOWED_DATA_DIRS_ENV}.") from None
    return dataclasses.replace(cfg, data_dir=str(folder))


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

    def start(self, model_cfg: ModelConfig, train_cfg: TrainConfig, name: str | None = None,
              owner: str | None = None) -> TrainingJob:
        """Reserves the checkpoint (a name in use or on disk is refused; without a name, the next free one) and
        starts the thread. A folder that cannot take the file gives a failed job, before any data loads.
        owner: the session that may stop it (vae/training/ownership.py)."""
        with self._lock:
            self._check_capacity()
            base = name or f"{train_cfg.dataset}-{model_cfg.latent_dim}d"
            try:
                reservation = (ckpt_io.reserve_checkpoint(base, self.checkpoint_dir) if name
                               else ckpt_io.unique_checkpoint_path(base, self.checkpoint_dir))
            except ckpt_io.UnwritableFolder as e:
                job = TrainingJob(str(next(self._ids)), base, model_cfg, train_cfg, self.checkpoint_dir / f"{base}.pt",
                                  owner=owner)
                return self._keep_failed(job, e)
            job = TrainingJob(str(next(self._ids)), reservation.path.stem, model_cfg, train_cfg, reservation.path,
                              reservation=reservation, owner=owner)
            self._keep(job)
        return job.start()

    def resume(self, path: str | os.PathLike, data_dir: str | None = None, owner: str | None = None) -> TrainingJob:
        """Continues an interrupted run from its checkpoint, to its planned epochs, holding its reservation (a
        second Resume, in this server or another process, is refused in one sentence); data_dir: where to read
        its data now, the tab's data folder (see _resume_config)."""
        reservation = ckpt_io.reserve(path)
        try:
            ckpt = ckpt_io.load(reservation.path)
            if not ckpt.resumable:
                raise CheckpointError(f"{reservation.path.name} cannot be resumed: it has no optimizer state, or it "
                                      "finished.")
            train_cfg = _resume_config(ckpt, data_dir)
            with self._lock:
                self._check_capacity()
                job = TrainingJob(str(next(self._ids)), reservation.path.stem, ckpt.model_config, train_cfg,
                                  reservation.path, ckpt, reservation=reservation, owner=owner)
                self._keep(job)
        except BaseException:
            reservation.release()
            raise
        return job.start()

    def start_variants(self, model_cfg: ModelConfig, variants: list[tuple[str, TrainConfig]], name: str,
                       owner: str | None = None) -> VariantsJob:
        """One job training every (suffix, train config) variant in turn, epoch by epoch, each to its reserved
        checkpoints/<name>-<suffix>.pt (with the same number after name when one is taken or in use)."""
        suffixes = [suffix for suffix, _ in variants]
        with self._lock:
            self._check_capacity()
            group_id = str(next(self._ids))
            try:
                base, reservations = self._reserve_group(name, suffixes)
            except ckpt_io.UnwritableFolder as e:
                paths = [self.checkpoint_dir / f"{name}-{suffix}.pt" for suffix in suffixes]
                return self._keep_failed(_group(group_id, name, model_cfg, variants, paths, [None] * len(paths),
                                                owner), e)
            job = _group(group_id, base, model_cfg, variants, [r.path for r in reservations], reservations, owner)
            self._keep(job)
        return job.start()

    def resume_group(self, name: str, paths: list[str | os.PathLike], data_dir: str | None = None,
                     owner: str | None = None) -> VariantsJob:
        """Continues an interrupted group of variants (a Compare preset) as one job again, each member from its own
        checkpoint to its planned epochs, every file reserved first as resume() reserves one."""
        reservations = _reserve_all(ckpt_io.reserve, list(paths))
        try:
            ckpts = [ckpt_io.load(r.path) for r in reservations]
            stale = [r.path.name for r, ckpt in zip(reservations, ckpts) if not ckpt.resumable]
            if stale:
                raise CheckpointError(f"{', '.join(stale)} cannot be resumed: no optimizer state, or finished.")
            if not _same_run_settings(ckpts):
                raise CheckpointError(f"{', '.join(r.path.name for r in reservations)} were not trained together "
                                      "(their model or data differ); resume them one at a time.")
            with self._lock:
                self._check_capacity()
                group_id = str(next(self._ids))
                members = [TrainingJob(f"{group_id}.{i}", r.path.stem, ckpt.model_config,
                                       _resume_config(ckpt, data_dir), r.path, ckpt, reservation=r)
                           for i, (r, ckpt) in enumerate(zip(reservations, ckpts), start=1)]
                job = VariantsJob(group_id, name, members, owner=owner)
                self._keep(job)
        except BaseException:
            for reservation in reservations:
                reservation.release()
            raise
        return job.start()

    def _check_capacity(self) -> None:
        """Raises JobLimitReached when max_running jobs already run (call holding the lock)."""
        running = [j for j in self._jobs.values() if j.state().active]
        if len(running) >= self.max_running:
            names = ", ".join(j.name for j in running)
            raise JobLimitReached(
                f"{len(running)} training job{'s are' if len(running) > 1 else ' is'} already running ({names}) "
                f"and this machine allows {self.max_running}; stop it or wait for it to finish."
            )

    def _reserve_group(self, name: str, suffixes: list[str]) -> tuple[str, list[ckpt_io.Reservation]]:
        """name, or name-2, name-3 ...: the first base whose every <base>-<suffix>.pt is free, all reserved."""
        for i in range(1, 10_000):
            base = name if i == 1 else f"{name}-{i}"
            try:
                return base, _reserve_all(lambda stem: ckpt_io.reserve_checkpoint(stem, self.checkpoint_dir),
                                          [f"{base}-{suffix}" for suffix in suffixes])
            except (ckpt_io.CheckpointExists, ckpt_io.CheckpointInUse):
                continue
        raise CheckpointError(f"Too many checkpoints named {name!r}; delete some old ones from {self.checkpoint_dir}.")

    def _keep(self, job: TrainingJob) -> None:
        """Adds a job (call holding the lock)."""
        self._jobs[job.job_id] = job
        self._forget_old()

    def _keep_failed(self, job: TrainingJob, error: Exception) -> TrainingJob:
        """A job that failed before it began, kept so that the page shows why (call holding the lock)."""
        for member in getattr(job, "members", ()):
            member.fail(error)
        job.fail(error)
        self._keep(job)
        return job

    def get(self, job_id: str | None) -> TrainingJob | None:
        """A job by id, or a member of a group of variants by its '<group id>.<n>' id."""
        if not job_id:
            return None
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None and "." in job_id:
                group = self._jobs.get(job_id.split(".", 1)[0])
                job = next((m for m in getattr(group, "members", ()) if m.job_id == job_id), None)
            return job

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
