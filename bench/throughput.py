"""How fast does the project train? Three loops on the same MNIST images and the same 784-400-20-400-784
MLP VAE (Bernoulli, Adam 1e-3, batch 128), alternating over rounds, in one process: the project's Trainer
as the CLI and the app run it, the same Trainer through autograd alone (fast_step=False: what the fast
step, vae/nets/mlp_step.py, pays), and the loop pytorch/examples vae/main.py writes (torchvision + DataLoader).

    .venv/bin/python -m bench.throughput                  # 5 rounds of one epoch each
    .venv/bin/python -m bench.throughput --rounds 3 --steps 60 --no-write
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.harness import ROOT, OtherLoad, machine_line, median, replace_section
from vae.config import ModelConfig, TrainConfig
from vae.data import DATA_DIR_ENV, load_dataset
from vae.training.trainer import Trainer

SECTION = "## Training throughput"
BATCH, HIDDEN, LATENT, LR = 128, 400, 20, 1e-3
SPEED_TARGET, FAST_STEP_TARGET = 2.5, 1.10  # the project over the tutorial; the fast step stays while it pays 10%


class TutorialVAE(nn.Module):
    """pytorch/examples vae/main.py's model, with the project's layer sizes."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


class Tutorial:
    """The tutorial's training loop over torchvision's MNIST, as it is written there."""

    def __init__(self, data_dir: Path, limit: int | None):
        from torch.utils.data import DataLoader, Subset
        from torchvision import datasets, transforms

        dataset = datasets.MNIST(str(data_dir), train=True, download=False, transform=transforms.ToTensor())
        dataset = Subset(dataset, range(limit)) if limit and limit < len(dataset) else dataset
        self.loader = DataLoader(dataset, batch_size=BATCH, shuffle=True)
        self.model = TutorialVAE()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)

    def epoch(self) -> float:
        """One pass; samples per second."""
        n, t0 = 0, time.perf_counter()
        for data, _ in self.loader:
            self.optimizer.zero_grad()
            recon, mu, logvar = self.model(data)
            bce = F.binary_cross_entropy(recon, data.view(-1, 784), reduction="sum")
            loss = bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss.backward()
            loss.item()
            self.optimizer.step()
            n += len(data)
        return n / (time.perf_counter() - t0)


def trainer_epoch(trainer: Trainer) -> float:
    """One Trainer.train_epoch(), the loop the CLI and the app run; samples per second."""
    t0 = time.perf_counter()
    assert trainer.train_epoch() is not None
    return len(trainer.x_train) / (time.perf_counter() - t0)


def main() -> None:
    default_data = os.environ.get(DATA_DIR_ENV) or str(ROOT.parent / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_data, help="the folder holding MNIST/raw")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (default: every image)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    data_dir = Path(args.data_dir).expanduser().resolve()
    limit = None if args.steps is None else args.steps * BATCH
    train = load_dataset("mnist", "train", data_dir)
    model_cfg = ModelConfig(hidden=(HIDDEN,), latent_dim=LATENT)
    train_cfg = TrainConfig(dataset="mnist", epochs=1000, batch_size=BATCH, lr=LR, device="cpu", train_limit=limit)
    runs = {"project": Trainer(model_cfg, train_cfg, train), "autograd": Trainer(model_cfg, train_cfg, train, fast_step=False)}
    assert runs["project"].fast_step is not None and runs["autograd"].fast_step is None
    tutorial = Tutorial(data_dir, limit)
    epochs = {"project": lambda: trainer_epoch(runs["project"]), "autograd": lambda: trainer_epoch(runs["autograd"]),
              "tutorial": tutorial.epoch}
    for run in epochs.values():  # warm-up: first-touch allocations, MKL start-up
        run()
    rates, others = {name: [] for name in epochs}, []
    for r in range(args.rounds):
        with OtherLoad() as other:
            for name, run in epochs.items():
                rates[name].append(run())
        others.append(other.cores)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items())
              + f"; other work {other.cores:.2f} cores", flush=True)
    med = {name: median(v) for name, v in rates.items()}
    verdicts = []
    for a, b, target in (("project", "tutorial", SPEED_TARGET), ("project", "autograd", FAST_STEP_TARGET)):
        per_round = [x / y for x, y in zip(rates[a], rates[b])]
        ratio, ok = med[a] / med[b], min(med[a] / med[b], median(per_round)) >= target
        verdicts.append(f"{a} / {b}: **{ratio:.2f}x** (per round {', '.join(f'{v:.2f}' for v in per_round)}); "
                        f"target >= {target:g}x: **{'met' if ok else 'not met'}**")
    command = "`.venv/bin/python -m bench.throughput" + (f" --rounds {args.rounds}" if args.rounds != 5 else "") + \
        (f" --steps {args.steps}" if args.steps else "") + "`"
    section = "\n".join([
        SECTION, "",
        f"Reproduce: {command}. {machine_line()}; other work took a median {median(others):.2f} cores during the rounds.",
        f"MNIST, first 24,345 training images ({len(runs['project'].x_train):,} per epoch), batch {BATCH}, "
        f"784-{HIDDEN}-{LATENT}-{HIDDEN}-784 MLP VAE, Bernoulli likelihood, Adam lr {LR:g}, CPU, float32; "
        f"{args.rounds} rounds of one epoch each, alternating, after one warm-up epoch each.", "",
        "| loop | median samples/s | range |", "| --- | --- | --- |",
        *(f"| {label} | {med[k]:,.0f} | {min(rates[k]):,.0f} - {max(rates[k]):,.0f} |" for k, label in (
            ("project", "project: `Trainer.train_epoch()` (the fast step for this model)"),
            ("autograd", "the same Trainer, `fast_step=False` (autograd)"),
            ("tutorial", "tutorial: pytorch/examples vae/main.py's loop"))), "",
        *(f"- {v}." for v in verdicts), ""])
    print(section)
    if not args.no_write:
        replace_section(section)


if __name__ == "__main__":
    main()
