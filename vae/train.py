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
from torch import nn

from .checkpoint import Checkpoint, build_payload
from .config import ModelConfig, TrainConfig
from .data import InMemoryDataset, batch_iterator
from .loss import elbo_terms
from .model import VAE, pick_device

EVENTS = ("on_step", "on_epoch_end", "on_train_end")
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


def _relu_backward(grad: torch.Tensor, relu_out: torch.Tensor) -> torch.Tensor:
    """grad where the ReLU's output is positive, else 0: autograd's own ReLU backward, one pass."""
    return torch.ops.aten.threshold_backward(grad, relu_out, 0)


def _bce_with_logits_sum(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sum(BCE-with-logits) = sum(softplus(a) - x * a), with softplus(a) = relu(a) - log(sigmoid(|a|))
    (sigmoid(|a|) lies in [0.5, 1], so the log is well conditioned). The same value as
    F.binary_cross_entropy_with_logits(..., reduction="sum") to float32 rounding, in about 40% of its
    time on a CPU, whose log-sigmoid and log1p kernels are not vectorised: ~0.15 against ~0.39 ms for a
    128 x 784 batch on 2 threads (the op alone; a whole step is 4.6-7 ms on this machine, and the
    difference was lost in its noise when timed step by step)."""
    softplus = torch.sigmoid(logits.abs()).log_().neg_().add_(logits.clamp_min(0))
    return softplus.sum() - torch.dot(logits.reshape(-1), target.reshape(-1))


class _MLPBernoulliStep:
    """Loss sums and gradients of one training step of an MLP VAE with a Bernoulli likelihood, by hand.

    The same computation as `elbo_terms(model, x, model(x, generator), beta, recon_weight).total.mean()`
    followed by `backward()`, with the same noise draw and the same matmuls, but each gradient is
    written out once (a matmul per weight, a column sum per bias, one masking pass per ReLU) instead of
    being recorded and replayed by autograd, which saves its bookkeeping and a dozen small elementwise
    ops per step (5-10% of a batch-128 step on a 2-core CPU). Gradients equal autograd's to rounding
    (float64: relative differences ~1e-16). Used only where `applies` recognises the exact layer
    sequence `VAE` builds for arch "mlp"; any other model trains through autograd.
    """

    def __init__(self, model: VAE):
        self.model = model
        self.encoder = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]
        self.decoder = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]

    @staticmethod
    def applies(model: VAE, device: torch.device) -> bool:
        """True for the MLP + Bernoulli VAE on the CPU, checked layer by layer, so that a change to the
        architecture falls back to autograd instead of training with the wrong gradients."""
        cfg = model.config
        if cfg.arch != "mlp" or cfg.likelihood != "bernoulli" or device.type != "cpu":
            return False

        def leaves(module: nn.Module) -> list[type]:
            return [type(m) for m in module.modules() if not list(m.children())]

        n = len(cfg.hidden)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        expected = {id(p) for m in linears if m.bias is not None for p in (m.weight, m.bias)}
        return (
            leaves(model.encoder) == [nn.Flatten] + [nn.Linear, nn.ReLU] * n
            and leaves(model.decoder) == [nn.Linear, nn.ReLU] * n + [nn.Linear, nn.Unflatten]
            and type(model.to_mu) is nn.Linear and type(model.to_logvar) is nn.Linear
            and {id(p) for p in model.parameters()} == expected and len(expected) == 2 * len(linears)
            and all(p.requires_grad for p in model.parameters())
        )

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, beta: float, recon_weight: float, generator: torch.Generator | None):
        """((recon, kl, total) batch sums as floats, [(parameter, gradient), ...])."""
        model, n = self.model, x.shape[0]
        target = x.reshape(n, -1)
        # Forward, keeping each Linear's input (post-ReLU activations: their sign is the ReLU mask).
        enc_in, h = [], target
        for lin in self.encoder:  # every encoder Linear is followed by a ReLU
            enc_in.append(h)
            h = torch.addmm(lin.bias, h, lin.weight.t()).relu_()
        mu = torch.addmm(model.to_mu.bias, h, model.to_mu.weight.t())
        logvar = torch.addmm(model.to_logvar.bias, h, model.to_logvar.weight.t())
        std = logvar.mul(0.5).exp_()
        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
        a = torch.addcmul(mu, std, eps)  # z = mu + sigma * eps
        dec_in = []
        for k, lin in enumerate(self.decoder):  # ReLU between the decoder's Linears, none after the last
            dec_in.append(a)
            a = torch.addmm(lin.bias, a, lin.weight.t())
            if k < len(self.decoder) - 1:
                a.relu_()
        var = logvar.exp()
        # One read of both sums (KL = 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1)); the rest is float arithmetic.
        recon, kl = torch.stack([_bce_with_logits_sum(a, target), torch.sum(mu * mu + var - logvar)]).tolist()
        kl = 0.5 * (kl - mu.numel())
        sums = (recon, kl, recon_weight * recon + beta * kl)

        # Backward of total / n.
        grads = []
        d = torch.sigmoid(a).sub_(target).mul_(recon_weight / n)  # d loss / d logits
        for k in range(len(self.decoder) - 1, -1, -1):
            lin, inp = self.decoder[k], dec_in[k]
            grads += [(lin.weight, d.t().mm(inp)), (lin.bias, d.sum(0))]
            d = d.mm(lin.weight)
            if k > 0:
                d = _relu_backward(d, inp)
        # d is now d loss / dz; add the KL terms: d kl / d mu = mu, d kl / d logvar = (var - 1) / 2.
        k_scale = beta / n
        d_logvar = (d * eps).mul_(std).add_(var.sub_(1.0), alpha=k_scale).mul_(0.5)
        d_mu = d.add_(mu, alpha=k_scale)
        grads += [
            (model.to_mu.weight, d_mu.t().mm(h)), (model.to_mu.bias, d_mu.sum(0)),
            (model.to_logvar.weight, d_logvar.t().mm(h)), (model.to_logvar.bias, d_logvar.sum(0)),
        ]
        d = _relu_backward(d_mu.mm(model.to_mu.weight).addmm_(d_logvar, model.to_logvar.weight), h)
        for k in range(len(self.encoder) - 1, -1, -1):
            lin, inp = self.encoder[k], enc_in[k]
            grads += [(lin.weight, d.t().mm(inp)), (lin.bias, d.sum(0))]
            if k > 0:
                d = _relu_backward(d.mm(lin.weight), inp)
        return sums, grads


class _FusedAdamCall:
    """`optimizer.step()` for a CPU Adam with fused=True, as the one kernel call it makes, without the
    Optimizer machinery around it: regrouping the tensors by device and dtype, re-reading every
    parameter's state and converting its hyper-parameters, each step. That bookkeeping cost ~0.3-0.4 ms
    of a ~4.5-7 ms batch-128 step on a 2-core CPU (torch.profiler: `Optimizer.step#Adam.step` self time
    next to `aten::_fused_adam_`). The update is the same kernel on the same state tensors (bit-identical
    weights, tested), so `optimizer.state_dict()` and resuming are unchanged. Falls back to
    `optimizer.step()` for anything but the plain case (one group, no amsgrad/maximize/differentiable)."""

    def __init__(self, optimizer: torch.optim.Adam):
        self.optimizer = optimizer
        self.lists = None  # (params, exp_avgs, exp_avg_sqs, steps), built after the state exists
        (group,) = optimizer.param_groups if len(optimizer.param_groups) == 1 else (None,)
        self.usable = (
            group is not None and hasattr(torch, "_fused_adam_") and group.get("fused") and not group["amsgrad"]
            and not group["maximize"] and not group.get("differentiable") and not group.get("capturable")
            and not group.get("decoupled_weight_decay") and all(p.device.type == "cpu" for p in group["params"])
        )

    def reset(self) -> None:
        """The optimizer's state tensors were replaced (load_state_dict): look them up again."""
        self.lists = None

    def __call__(self, grads: list[torch.Tensor] | None = None) -> None:
        """One Adam step; grads in the group's parameter order (default: each parameter's .grad; a
        parameter without one is skipped by optimizer.step(), so then it takes that path)."""
        if grads is None and self.lists is not None and any(p.grad is None for p in self.lists[0]):
            self.optimizer.step()
            return
        if not self.usable or self.lists is None:
            if grads is not None:
                for param, grad in zip(self.optimizer.param_groups[0]["params"], grads):
                    param.grad = grad
            self.optimizer.step()
            if self.usable:
                params = self.optimizer.param_groups[0]["params"]
                if grads is not None:  # the next steps pass theirs straight to the kernel: hold no stale ones
                    for param in params:
                        param.grad = None
                states = [self.optimizer.state[p] for p in params]
                self.lists = (params, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                              [s["step"] for s in states])
            return
        group = self.optimizer.param_groups[0]
        params, exp_avgs, exp_avg_sqs, steps = self.lists
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params, grads if grads is not None else [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps,
            amsgrad=False, lr=float(group["lr"]), beta1=float(beta1), beta2=float(beta2),
            weight_decay=float(group["weight_decay"]), eps=float(group["eps"]), maximize=False,
            grad_scale=None, found_inf=None,
        )


class Trainer:
    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        train_data: InMemoryDataset,
        test_data: InMemoryDataset | None = None,
        stop_event: threading.Event | None = None,
    ):
        self.model_cfg = model_cfg.validate()
        self.cfg = train_cfg.validate()
        self.device = pick_device(self.cfg.device)
        self.generator = set_seed(self.cfg.seed)
        self.model = VAE(self.model_cfg, generator=self.generator).to(self.device)
        self._hand_step = _MLPBernoulliStep(self.model) if _MLPBernoulliStep.applies(self.model, self.device) else None
        # The fused kernel updates every parameter in one pass (about 3x faster than the default on a CPU).
        self._fused_adam = self.device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr, fused=self._fused_adam or None)
        self._adam_step = _FusedAdamCall(self.optimizer)
        if self.cfg.train_limit is not None:
            train_data = train_data.subset(self.cfg.train_limit)
        self.train_data, self.test_data = train_data, test_data
        self.x_train = train_data.float_images().to(self.device)  # (N, 1, 28, 28) float32 in [0, 1]
        self._x_rows = self.x_train.view(len(self.x_train), -1)  # (N, 784): index_select on rows is the cheap gather
        self.x_test = None if test_data is None else test_data.float_images().to(self.device)
        self.stop_event = stop_event or threading.Event()
        self.callbacks: dict[str, list[Callable]] = defaultdict(list)
        self.history: list[dict] = []
        self.extras: dict = {}  # saved with every checkpoint (e.g. the training replay, vae/replay.py)
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
            x = torch.bernoulli(x, generator=self.generator) if self.device.type == "cpu" else torch.bernoulli(x)
        if self._hand_step is not None:
            sums, grads = self._hand_step(x, beta, self.cfg.recon_weight, self._noise_generator())
        else:
            terms = elbo_terms(self.model, x, self.model(x, self._noise_generator()), beta, self.cfg.recon_weight)
            loss = terms.total.mean()
            sums = tuple(torch.stack([t.detach().sum() for t in terms]).tolist())  # (recon, kl, total)
        total = sums[2]
        if not math.isfinite(total):
            raise TrainingDiverged(
                f"loss became {total / len(x)} at step {self.step + 1}; try a smaller learning rate "
                f"(now {self.cfg.lr:g})."
            )
        if self._hand_step is not None:
            order = {id(param): grad for param, grad in grads}
            self._adam_step([order[id(p)] for p in self.optimizer.param_groups[0]["params"]])
        else:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._adam_step()
        return sums

    def _noise_generator(self) -> torch.Generator | None:
        # The CPU generator keeps a CPU run repeatable; other devices draw from their own RNG.
        return self.generator if self.device.type == "cpu" else None

    def train_epoch(self) -> dict | None:
        """One pass over the training set; returns the epoch record, or None if stopped early."""
        self.model.train()
        sums = [0.0, 0.0, 0.0]  # running (recon, kl, total) sums since the last log
        count, t_log = 0, time.perf_counter()
        epoch_sums, epoch_count, t_epoch = [0.0, 0.0, 0.0], 0, time.perf_counter()
        for i, idx in enumerate(batch_iterator(len(self.x_train), self.cfg.batch_size, self.generator)):
            if self.stop_event.is_set():
                self.train_seconds += time.perf_counter() - t_epoch
                return None
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
            if self.step % self.cfg.log_every == 0 or i == self.steps_per_epoch - 1:
                now = time.perf_counter()
                self._log_step([v / count for v in sums], beta, count / max(now - t_log, 1e-9))
                epoch_sums = [e + v for e, v in zip(epoch_sums, sums)]
                sums = [0.0, 0.0, 0.0]
                count, t_log = 0, now
        self.train_seconds += time.perf_counter() - t_epoch
        self.epoch += 1
        return self._epoch_record([v / epoch_count for v in epoch_sums], time.perf_counter() - t_epoch, epoch_count)

    def _log_step(self, means: list[float], beta: float, samples_per_sec: float) -> None:
        recon, kl, total = means
        record = {
            "kind": "step", "step": self.step, "epoch": self.step / self.steps_per_epoch,
            "recon": recon, "kl": kl, "total": total, "beta": beta, "samples_per_sec": samples_per_sec,
        }
        self.history.append(record)
        self._fire("on_step", record)

    def _epoch_record(self, means: list[float], seconds: float, n: int) -> dict:
        recon, kl, total = means
        record = {
            "kind": "epoch", "epoch": self.epoch, "step": self.step,
            "train_recon": recon, "train_kl": kl, "train_total": total,
            "seconds": seconds, "samples_per_sec": n / max(seconds, 1e-9),
        }
        if self.x_test is not None:
            record.update({f"test_{k}": v for k, v in self.evaluate(self.x_test).items()})
        self.history.append(record)
        return record

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
            # Saved param_groups carry the implementation flags; keep this trainer's (fused where it can).
            state = dict(ckpt.optimizer_state)
            state["param_groups"] = [
                {**group, "fused": self._fused_adam or None, "foreach": None} for group in state.get("param_groups", [])
            ]
            self.optimizer.load_state_dict(state)
            self._adam_step.reset()
        if ckpt.rng_state is not None:
            self.generator.set_state(ckpt.rng_state)
        self.epoch, self.step = ckpt.epoch, ckpt.step
        self.history = [dict(r) for r in ckpt.history]
        self.extras = dict(ckpt.extras)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> dict:
        """Mean recon, kl and elbo (negative ELBO, beta = 1) in nats per image over x, one z sample each."""
        return evaluate_model(self.model, x)

    def run_epoch(self) -> dict | None:
        """One epoch, then its on_epoch_end event; None when stopped first. Lets a caller interleave
        the epochs of several trainers (vae/jobs.py trains the lecture's variants side by side)."""
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
def evaluate_model(model: VAE, x: torch.Tensor, batch_size: int = EVAL_BATCH, seed: int = 1234) -> dict:
    """Mean test metrics in nats per image: recon, kl, and elbo = recon + kl (the negative ELBO)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)  # fixed noise: the same model scores the same
    sums = torch.zeros(2, device=device)
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        terms = elbo_terms(model, xb, model(xb, g))
        sums += torch.stack([terms.recon.sum(), terms.kl.sum()])
    model.train(was_training)
    recon, kl = (sums / max(len(x), 1)).tolist()
    return {"recon": recon, "kl": kl, "elbo": recon + kl}
