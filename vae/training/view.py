"""What a page draws a model from, whether a loaded checkpoint or a live job's latest snapshot."""
from __future__ import annotations

from dataclasses import dataclass, field

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
