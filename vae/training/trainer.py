"""A trainer that knows no UI: it slices shuffled batches from in-memory tensors, steps
Adam, and fires named events that callers subscribe to (the CLI's progress bar, the app's
live charts, autosave)."""
from __future__ import annotations

import math
import random
import threading
import time
from collections import defaultdict
from typing import Callable

import numpy as np
import torch

from vae.analysis.encoding import encode_dataset
from vae.checkpoint.codes import CODES_KEY, STORED_TEST, STORED_TRAIN, stored_codes_payload
from vae.checkpoint.format import Checkpoint
from vae.checkpoint.files import build_payload
from vae.config import ModelConfig, TrainConfig
from vae.data import InMemoryDataset, batch_iterator
from vae.nets.loss import elbo_terms
from vae.nets.mlp_step import MLPStep
from vae.nets.model import VAE, pick_device
from vae.training.control import Control, apply_change, change_record
from vae.training.distributed import SINGLE, World, device_for, shard, sum_over_processes

EVENTS = ("on_step", "on_epoch_end", "on_train_end", "on_change")
EVAL_BATCH = 1000


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and what to try."""


def set_seed(seed: int) -> torch.Generator:
    """Seeds python, numpy and torch together; returns a CPU generator for the trainer's own draws."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def beta_at(train_cfg: TrainConfig, epoch_progress: float) -> float:
    """beta, rising linearly from 0 to train_cfg.beta over warmup_epochs (epoch_progress counts from 0)."""
    if train_cfg.warmup_epochs <= 0:
        return train_cfg.beta
    return train_cfg.beta * min(1.0, epoch_progress / train_cfg.warmup_epochs)


def lr_at(train_cfg: TrainConfig, progress: float) -> float:
    """Learning rate at a fraction of the whole run (0 at the start, 1 at the end)."""
    if train_cfg.lr_schedule == "cosine":
        return train_cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return train_cfg.lr


class Trainer:
    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        train_data: InMemoryDataset,
        test_data: InMemoryDataset | None = None,
        stop_event: threading.Event | None = None,
        fast_step: bool = True,
        world: World = SINGLE,
        control: Control | None = None,
    ):
        """fast_step=False trains every model through autograd (the throughput bench compares the two).
        world: this process's place among torchrun's processes (vae/training/distributed.py); alone by default.
        control: pause, step, slow motion and mid-run changes (vae/training/control.py); none by default."""
        self.model_cfg, self.cfg, self.world = model_cfg, train_cfg, world
        self.device = device_for(world, pick_device(self.cfg.device))
        self.generator = set_seed(self.cfg.seed)  # the same in every process: the same weights, the same batches
        self.model = VAE(self.model_cfg, generator=self.generator).to(self.device)
        # The one place a faster path is chosen: the MLP's backward written out (vae/nets/mlp_step.py), same loss. It
        # computes gradients outside autograd, which DDP could not average: several processes use autograd.
        use_fast = fast_step and not world.distributed and MLPStep.applies(self.model, self.device)
        self.fast_step = MLPStep(self.model) if use_fast else None
        self.ddp = None
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                                               else None)
        # Several processes draw the same batches but each its own noise (and binarized pixels) for its share.
        self.noise = (torch.Generator().manual_seed(self.cfg.seed + 7919 * world.rank) if world.distributed
                      else self.generator)
        # The fused kernel updates every parameter in one pass (several times faster than the default on a CPU).
        self._fused_adam = self.device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr, fused=self._fused_adam or None)
        if self.cfg.train_limit is not None:
            train_data = train_data.subset(self.cfg.train_limit)
        self.train_data, self.test_data = train_data, test_data
        self.x_train = train_data.float_images().to(self.device)  # (N, 1, 28, 28) float32 in [0, 1]
        self._x_rows = self.x_train.view(len(self.x_train), -1)  # (N, 784): index_select on rows is the cheap gather
        self.x_test = None if test_data is None else test_data.float_images().to(self.device)
        self.stop_event = stop_event or (control.stop_event if control is not None else threading.Event())
        self.control = control or Control(self.stop_event)
        self.control.stop_event = self.stop_event  # one stop, whichever side sets it
        self.callbacks: dict[str, list[Callable]] = defaultdict(list)
        self.history: list[dict] = []
        self.extras: dict = {}  # saved with every checkpoint (e.g. the training replay, vae/training/replay.py)
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.train_seconds = 0.0

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.x_train) / self.cfg.batch_size)

    def add_callback(self, event: str, fn: Callable) -> None:
        if event not in EVENTS:
            raise ValueError(f"Unknown event {event!r}; use one of {', '.join(EVENTS)}.")
        self.callbacks[event].append(fn)

    def _fire(self, event: str, record: dict | None = None) -> None:
        for fn in self.callbacks[event]:
            fn(self, record)

    def _train_step(self, x: torch.Tensor, beta: float) -> tuple[float, float, float]:
        """One optimizer step on batch x; returns the batch's (recon, kl, total) sums."""
        if self.cfg.binarize:
            x = torch.bernoulli(x, generator=self.noise) if self.device.type == "cpu" else torch.bernoulli(x)
        if self.fast_step is not None:
            sums, grads = self.fast_step(x, beta, self.cfg.recon_weight, self._noise_generator())
        else:
            forward = self.ddp or self.model  # DDP averages the gradients over the processes in backward()
            terms = elbo_terms(self.model, x, forward(x, self._noise_generator()), beta, self.cfg.recon_weight)
            loss = terms.total.mean()
            sums = tuple(torch.stack([t.detach().sum() for t in terms]).tolist())  # (recon, kl, total)
        total = sums[2]
        if not math.isfinite(total):
            raise TrainingDiverged(
                f"loss became {total / len(x)} at step {self.step + 1}; try a smaller learning rate "
                f"(now {self.cfg.lr:g})."
            )
        if self.fast_step is not None:
            for param, grad in grads:
                param.grad = grad
        else:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        self.optimizer.step()
        return sums

    def _noise_generator(self) -> torch.Generator | None:
        # The CPU generator keeps a CPU run repeatable; other devices draw from their own RNG.
        return self.noise if self.device.type == "cpu" else None

    def train_epoch(self) -> dict | None:
        """One pass over the training set; returns the epoch record, or None if stopped early."""
        self.model.train()
        sums = [0.0, 0.0, 0.0]  # running (recon, kl, total) sums since the last log
        count, t_log = 0, time.perf_counter()
        epoch_sums, epoch_count, t_epoch = [0.0, 0.0, 0.0], 0, time.perf_counter()
        for i, batch in enumerate(batch_iterator(len(self.x_train), self.cfg.batch_size, self.generator)):
            if not self.control.gate(self._apply_change) or self.stop_event.is_set():
                self.train_seconds += time.perf_counter() - t_epoch
                return None
            idx = shard(batch, self.world)  # this process's share of the global batch
            if len(idx) == 0:  # a last batch smaller than the number of processes
                continue
            beta = beta_at(self.cfg, self.epoch + i / self.steps_per_epoch)
            if self.cfg.lr_schedule != "constant":
                for group in self.optimizer.param_groups:
                    group["lr"] = lr_at(self.cfg, self.step / (self.steps_per_epoch * self.cfg.epochs))
            x = self._x_rows.index_select(0, idx.to(self.device)).view(-1, *self.x_train.shape[1:])
            recon, kl, total = self._train_step(x, beta)
            sums[0] += recon
            sums[1] += kl
            sums[2] += total
            count += len(idx)
            epoch_count += len(idx)
            self.step += 1
            # While paused, stepping or in slow motion every batch is logged: the curves get step-level points.
            if self.step % self.cfg.log_every == 0 or i == self.steps_per_epoch - 1 or self.control.stepping:
                now = time.perf_counter()
                self._log_step([v / count for v in sums], beta, count * self.world.size / max(now - t_log, 1e-9))
                epoch_sums = [e + v for e, v in zip(epoch_sums, sums)]
                sums = [0.0, 0.0, 0.0]
                count, t_log = 0, now
        self.train_seconds += time.perf_counter() - t_epoch
        self.epoch += 1
        self.control.epoch_ended()
        return self._epoch_record([v / epoch_count for v in epoch_sums], time.perf_counter() - t_epoch,
                                  epoch_count * self.world.size)

    def _apply_change(self, setting: str, value: float) -> None:
        """A change from the control, before the next batch: the config (so a save, and a resume, carry the new
        value), Adam's learning rate, and a change record in the history."""
        old = float(getattr(self.cfg, setting))
        if old == value:
            return
        self.cfg = apply_change(self.cfg, setting, value)
        if setting == "lr":
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(self.cfg, self.step / (self.steps_per_epoch * self.cfg.epochs))
        record = change_record(self.step / self.steps_per_epoch, self.step, setting, old, value)
        self.history.append(record)
        self._fire("on_change", record)

    def _log_step(self, means: list[float], beta: float, samples_per_sec: float) -> None:
        recon, kl, total = means
        record = {
            "kind": "step", "step": self.step, "epoch": self.step / self.steps_per_epoch,
            "recon": recon, "kl": kl, "total": total, "beta": beta, "samples_per_sec": samples_per_sec,
        }
        if self.control.stepping:
            record["stepped"] = 1  # logged for the batch alone (vae/checkpoint/format.py bounds these by the steps)
        self.history.append(record)
        self._fire("on_step", record)

    def _epoch_record(self, means: list[float], seconds: float, n: int) -> dict:
        recon, kl, total = means
        record = {
            "kind": "epoch", "epoch": self.epoch, "step": self.step,
            "train_recon": recon, "train_kl": kl, "train_total": total,
            "seconds": seconds, "samples_per_sec": n / max(seconds, 1e-9), "world_size": self.world.size,
        }
        if self.x_test is not None:
            record.update({f"test_{k}": v for k, v in self.evaluate_test().items()})
        self.history.append(record)
        return record

    @torch.no_grad()
    def _store_codes(self, test_codes: tuple | None = None) -> None:
        """The first test images' codes (mu, logvar), as the evaluation computed them or encoded here, and the
        first training images' means, into extras (vae/checkpoint/codes.py): every checkpoint then explores
        without the dataset."""
        was_training = self.model.training
        self.model.eval()
        mu, logvar = test_codes or encode_dataset(self.model, self.x_test[:STORED_TEST])
        train_mu, _ = encode_dataset(self.model, self.x_train[:STORED_TRAIN])
        self.model.train(was_training)
        self.extras[CODES_KEY] = stored_codes_payload(mu, logvar, self.test_data, train_mu, self.train_data)

    def latest_test_metrics(self) -> dict[str, float]:
        """test_recon/kl/elbo of the last finished epoch, as {'recon', 'kl', 'elbo'}; {} before any."""
        for record in reversed(self.history):
            if record["kind"] == "epoch" and "test_elbo" in record:
                return {k: record[f"test_{k}"] for k in ("recon", "kl", "elbo")}
        return {}

    def checkpoint_payload(self, include_optimizer: bool = True, notes: str = "", extras: dict | None = None) -> dict:
        """Everything needed to reload the model, or to resume training exactly where it is."""
        return build_payload(
            self.model,
            train_config=self.cfg,
            dataset=self.cfg.dataset,
            class_names=self.train_data.class_names,
            history=self.history,
            test_metrics=self.latest_test_metrics(),
            epoch=self.epoch,
            step=self.step,
            notes=notes,
            optimizer_state=self.optimizer.state_dict() if include_optimizer else None,
            rng_state=self.generator.get_state() if include_optimizer else None,
            extras={**self.extras, **(extras or {})},
        )

    def restore(self, ckpt: Checkpoint) -> None:
        """Continues from a checkpoint: weights, optimizer moments, counters, history and RNG."""
        if ckpt.model_config != self.model_cfg:
            raise ValueError("The checkpoint's architecture differs from this trainer's; resume with its own settings.")
        self.model.load_state_dict(ckpt.model.state_dict())
        if ckpt.optimizer_state is not None:
            self.optimizer.load_state_dict(self._adam_state_from(ckpt.optimizer_state))
        if ckpt.rng_state is not None:
            try:
                self.generator.set_state(ckpt.rng_state.contiguous().clone())
            except RuntimeError:
                raise ValueError("The checkpoint's random-number state is not one torch can restore; load the model "
                                 "without resuming, or train it again.") from None
        self.epoch, self.step = ckpt.epoch, ckpt.step
        self.history = [dict(r) for r in ckpt.history]
        self.extras = dict(ckpt.extras)

    def _adam_state_from(self, saved: dict) -> dict:
        """Saved Adam moments under this trainer's own param group: its flags (fused where it can, never
        amsgrad or maximize), the saved learning rate, and per parameter only step, exp_avg and exp_avg_sq as
        fresh contiguous float32 tensors of the parameter's shape, so no saved flag or layout reaches the
        fused kernel."""
        own = self.optimizer.state_dict()["param_groups"][0]
        group = {**own, "lr": float(saved["param_groups"][0]["lr"])}
        params = list(self.model.parameters())
        state = {int(i): {k: torch.as_tensor(s[k], dtype=torch.float32).reshape(shape).contiguous().clone()
                          for k, shape in (("step", ()), ("exp_avg", params[int(i)].shape),
                                           ("exp_avg_sq", params[int(i)].shape))}
                 for i, s in saved["state"].items()}
        return {"state": state, "param_groups": [group]}

    @torch.no_grad()
    def evaluate_test(self) -> dict:
        """Mean test recon, kl and elbo (negative ELBO, beta = 1) in nats per image, one z sample each; the
        codes computed on the way go into extras (vae/checkpoint/codes.py), so a save carries this model's."""
        if self.world.distributed:
            return self._evaluate_shared()
        codes: list = []
        metrics = evaluate_model(self.model, self.x_test, codes=codes)
        if codes:
            self._store_codes(tuple(codes))
        return metrics

    @torch.no_grad()
    def _evaluate_shared(self) -> dict:
        """The test set split between the processes, their sums added; rank 0 also encodes the stored codes."""
        part = self.x_test.tensor_split(self.world.size)[self.world.rank]
        m = evaluate_model(self.model, part)
        recon, kl, n = sum_over_processes([m["recon"] * len(part), m["kl"] * len(part), len(part)], self.world,
                                          self.device)
        if self.world.main and len(self.x_test):
            self._store_codes()
        return {"recon": recon / max(n, 1), "kl": kl / max(n, 1), "elbo": (recon + kl) / max(n, 1)}

    def run_epoch(self) -> dict | None:
        """One epoch, then its on_epoch_end event; None when stopped first. Lets a caller interleave
        the epochs of several trainers (vae/training/jobs.py trains the lecture's variants side by side)."""
        record = self.train_epoch()
        if record is not None:
            self._fire("on_epoch_end", record)
        return record

    def run(self) -> list[dict]:
        """Trains for the configured epochs (or until stop_event); returns the history."""
        try:
            while self.epoch < self.cfg.epochs and self.run_epoch() is not None:
                pass
        finally:
            self.model.eval()
        self._fire("on_train_end", None)
        return self.history


@torch.no_grad()
def evaluate_model(model: VAE, x: torch.Tensor, batch_size: int = EVAL_BATCH, seed: int = 1234,
                   codes: list | None = None) -> dict:
    """Mean test metrics in nats per image: recon, kl, and elbo = recon + kl (the negative ELBO).
    codes, when a list, receives the posterior (mu, logvar), each (min(N, STORED_TEST), D), of x's first rows."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)  # fixed noise: the same model scores the same
    sums = torch.zeros(2, device=device)
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        out = model(xb, g)
        terms = elbo_terms(model, xb, out)
        sums += torch.stack([terms.recon.sum(), terms.kl.sum()])
        if codes is not None and start < STORED_TEST:
            kept.append((out.mu[:STORED_TEST - start], out.logvar[:STORED_TEST - start]))
    model.train(was_training)
    if codes is not None:
        codes.extend(torch.cat(part) for part in zip(*kept))
    recon, kl = (sums / max(len(x), 1)).tolist()
    return {"recon": recon, "kl": kl, "elbo": recon + kl}
