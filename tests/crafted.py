"""Checkpoints crafted as an attacker would: each starts from a real resumable run's payload (a small MLP,
one epoch of three, with Adam's state and the RNG's) and changes one thing the loader accepted before."""
from __future__ import annotations

import math
import zlib

import torch

from tests.conftest import tiny_dataset
from vae.checkpoint.codes import CODES_KEY, MAX_FACTORS, MAX_STORED
from vae.checkpoint.format import MAX_HISTORY
from vae.checkpoint.replay import MAX_FRAMES, REPLAY_CODES, REPLAY_GRID, REPLAY_KEY, manifold_shape, pack_replay
from vae.config import ModelConfig, TrainConfig
from vae.training.replay import ReplayRecorder
from vae.training.trainer import Trainer


def resumable_payload(replay: bool = False) -> dict:
    """A real payload: epoch 1 of 3, optimizer and RNG state included (what Resume reads)."""
    model_cfg = ModelConfig(arch="mlp", latent_dim=2, hidden=(32,))
    train_cfg = TrainConfig(dataset="shapes", epochs=3, batch_size=16, seed=0, device="cpu")
    trainer = Trainer(model_cfg, train_cfg, tiny_dataset(64, "train", 0), tiny_dataset(32, "test", 1))
    if replay:
        ReplayRecorder().attach(trainer)
    trainer.train_epoch()
    return trainer.checkpoint_payload()


def stride_zero_moments(payload: dict) -> dict:
    """Adam's moments of the right shape and dtype, but one float seen through a zero stride each."""
    for state in payload["optimizer_state"]["state"].values():
        for key in ("exp_avg", "exp_avg_sq"):
            state[key] = torch.zeros(1).expand(state[key].shape)
    return payload


def amsgrad_short_max(payload: dict) -> dict:
    """amsgrad switched on, with a 3-element max_exp_avg_sq: torch's fused Adam reads past its end."""
    for group in payload["optimizer_state"]["param_groups"]:
        group["amsgrad"] = True
    for state in payload["optimizer_state"]["state"].values():
        state["max_exp_avg_sq"] = torch.zeros(3)
    return payload


def maximize(payload: dict) -> dict:
    """Adam told to climb the loss: training runs, and the ELBO heads to -2e9."""
    for group in payload["optimizer_state"]["param_groups"]:
        group["maximize"] = True
    return payload


def stride_zero_rng(payload: dict) -> dict:
    payload["rng_state"] = torch.zeros(1, dtype=torch.uint8).expand(payload["rng_state"].shape)
    return payload


def memo_history(payload: dict, references: int = 200_000, keys: int = 1_006) -> dict:
    """One history record of `keys` numbers, referenced `references` times: pickle's memo keeps the file
    small (one copy) while every reference is a whole record to check, copy and draw."""
    record = {"kind": "epoch", "epoch": 1, "step": 4, **{f"k{i}": float(i) for i in range(keys - 3)}}
    payload["history"] = [record] * references
    return payload


def many_epoch_records(payload: dict, n: int = 200_000) -> dict:
    """n distinct epoch records: far more than the run's epochs allow."""
    payload["history"] = [{"kind": "epoch", "epoch": 1, "step": 4, "test_recon": 1.0, "test_kl": 1.0,
                           "test_elbo": 2.0} for _ in range(n)]
    return payload


def many_replay_frames(payload: dict, frames: int = 500) -> dict:
    """A replay of `frames` frames (the recorder keeps at most 50), each frame repeated from the real one."""
    raw = dict(payload["extras"][REPLAY_KEY])
    if raw["version"] == 1:
        raw = pack_replay(raw)
    epochs = torch.arange(frames, dtype=torch.int64)
    grid = raw["grid"]
    one = zlib.decompress(raw["manifolds"].numpy().tobytes())
    frame_bytes = len(one) // len(raw["epochs"])
    stream = zlib.compress(one[:frame_bytes] * frames, 6)
    codes = raw["codes"][:1].expand(frames, *raw["codes"].shape[1:]).contiguous()
    payload["extras"][REPLAY_KEY] = {**raw, "epochs": epochs, "codes": codes, "grid": grid,
                                     "metrics": torch.full((frames, 2), math.nan),
                                     "manifolds": torch.frombuffer(bytearray(stream), dtype=torch.uint8)}
    return payload


# --- the largest files the loader accepts, field by field ------------------------------------------------

def largest_history(payload: dict) -> dict:
    """MAX_HISTORY distinct records, each kind within what the file's counters allow: a run of 1,000 epochs
    that logged every step, stopped at its last epoch so that it can still be resumed."""
    epochs = payload["train_config"]["epochs"] = 1000
    payload["train_config"]["log_every"] = 1
    payload["epoch"], payload["step"] = epochs - 1, MAX_HISTORY
    steps = [{"kind": "step", "step": i, "epoch": i / MAX_HISTORY * epochs, "recon": 200.0 - i * 1e-3, "kl": 5.0,
              "total": 205.0 - i * 1e-3, "beta": 1.0, "samples_per_sec": 5e3} for i in range(MAX_HISTORY - epochs)]
    ends = [{"kind": "epoch", "epoch": e, "step": (e + 1) * 199, "train_recon": 150.0, "train_kl": 5.0,
             "train_total": 155.0, "seconds": 1.0, "samples_per_sec": 5e3, "world_size": 1, "test_recon": 150.0,
             "test_kl": 5.0, "test_elbo": 155.0} for e in range(epochs)]
    payload["history"] = steps + ends
    return payload


def largest_replay(payload: dict, seed: int = 0) -> dict:
    """MAX_FRAMES frames of REPLAY_GRID x REPLAY_GRID tiles following REPLAY_CODES test images, the manifolds
    noise (so zlib cannot shrink them), labels among the model's classes."""
    g = torch.Generator().manual_seed(seed)
    latent, shape = payload["model_config"]["latent_dim"], tuple(payload["model_config"]["image_shape"])
    n_classes = len(payload["class_names"])
    pixels = torch.randint(0, 256, manifold_shape(MAX_FRAMES, REPLAY_GRID, latent, shape), generator=g, dtype=torch.uint8)
    grid = torch.linspace(-3, 3, REPLAY_GRID)
    payload["extras"][REPLAY_KEY] = {
        "version": 2, "epochs": torch.arange(MAX_FRAMES, dtype=torch.int64),
        "indices": torch.arange(REPLAY_CODES, dtype=torch.int64),
        "labels": torch.randint(0, n_classes, (REPLAY_CODES,), generator=g),
        "codes": torch.randn(MAX_FRAMES, REPLAY_CODES, min(latent, 2), generator=g).half(),
        "manifolds": torch.frombuffer(bytearray(zlib.compress(pixels.numpy().tobytes(), 1)), dtype=torch.uint8),
        "grid": grid, "metrics": torch.rand(MAX_FRAMES, 2, generator=g) * 100}
    return payload


def largest_codes(payload: dict, seed: int = 1) -> dict:
    """MAX_STORED test and training codes with MAX_FACTORS known factors."""
    g = torch.Generator().manual_seed(seed)
    latent, n_classes = payload["model_config"]["latent_dim"], len(payload["class_names"])
    payload["extras"][CODES_KEY] = {
        "version": 1, "mu": torch.randn(MAX_STORED, latent, generator=g).half(),
        "logvar": (torch.randn(MAX_STORED, latent, generator=g) - 2).half(),
        "labels": torch.randint(0, n_classes, (MAX_STORED,), generator=g).to(torch.int16),
        "factors": {f"f{i}": torch.rand(MAX_STORED, generator=g) for i in range(MAX_FACTORS)},
        "train_mu": torch.randn(MAX_STORED, latent, generator=g).half(),
        "train_labels": torch.randint(0, n_classes, (MAX_STORED,), generator=g).to(torch.int16),
        "test_size": MAX_STORED}
    return payload


LARGEST = {"history": largest_history, "replay": largest_replay, "codes": largest_codes}
