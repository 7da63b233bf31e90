"""What a page draws a model from, whether a loaded checkpoint or a live job's latest snapshot."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vae.checkpoint.files import build_payload, payload_bytes
from vae.checkpoint.format import Checkpoint
from vae.config import ModelConfig, TrainConfig
from vae.nets.model import VAE


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

    def as_checkpoint(self) -> Checkpoint:
        """This model as a Checkpoint (no optimizer state: a snapshot to explore or share, not to resume), named as
        the view is."""
        return Checkpoint(model=self.model, model_config=self.model_config, train_config=self.train_config,
                          dataset=self.dataset, class_names=self.class_names, history=self.history,
                          test_metrics=self.test_metrics, epoch=self.epochs, notes=self.notes,
                          path=self.path or f"{self.name}.pt", extras=self.extras)

    def file_bytes(self) -> bytes:
        """The model as a checkpoint file: a loaded checkpoint's own file (which can resume its training), else
        this snapshot written as one (a live job's latest weights, an upload)."""
        if self.path and not self.live and Path(self.path).is_file():
            return Path(self.path).read_bytes()
        return payload_bytes(build_payload(
            self.model, train_config=self.train_config, dataset=self.dataset, class_names=self.class_names,
            history=self.history, test_metrics=self.test_metrics, epoch=self.epochs, notes=self.notes,
            extras=self.extras))

    @property
    def file_stem(self) -> str:
        """The name a downloaded file starts with: the view's name in letters, digits, '.', '_' and '-'."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.name).strip("-.") or "model"
