"""A dataset held in memory: one split as uint8 (N, C, H, W) images, labels and known factors, and
the batches a trainer draws from it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch


@dataclass(eq=False, repr=False)
class InMemoryDataset:
    """One split of one dataset, entirely in memory. Shared between callers: do not mutate."""

    name: str
    split: str
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]
    factors: dict[str, torch.Tensor]  # float32 (N,) each; {} when unknown
    source: str
    summary: str = ""  # what reading it found, in a sentence (a folder: images read and skipped)
    _float: torch.Tensor | None = field(default=None, init=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"InMemoryDataset({self.name!r}, {self.split!r}, n={len(self)}, source={self.source!r})"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of each image."""
        return tuple(int(v) for v in self.images.shape[1:])

    def float_images(self) -> torch.Tensor:
        """float32 (N, C, H, W) in [0, 1], computed once and kept."""
        if self._float is None:
            self._float = self.images.to(torch.float32).div_(255.0)
        return self._float

    def subset(self, n: int) -> InMemoryDataset:
        """The first n items (all of them when n >= len); shares memory with this dataset."""
        if n < 0:
            raise ValueError(f"A subset needs a size of 0 or more, not {n}.")
        sub = InMemoryDataset(
            self.name, self.split, self.images[:n], self.labels[:n], list(self.class_names),
            {key: value[:n] for key, value in self.factors.items()}, self.source, self.summary,
        )
        if self._float is not None:
            sub._float = self._float[:n]
        return sub


def describe_shape(shape: tuple[int, int, int]) -> str:
    """(C, H, W) as people say it: '28x20 grey', '64x64 colour' (width x height)."""
    c, h, w = shape
    return f"{w}x{h} {'colour' if c == 3 else 'grey'}"


def class_counts(train: InMemoryDataset, test: InMemoryDataset) -> dict[str, list]:
    """{"class": names, "train": counts, "test": counts}: the images of each class in each split."""
    k = len(train.class_names)
    return {"class": list(train.class_names),
            "train": torch.bincount(train.labels, minlength=k)[:k].tolist(),
            "test": torch.bincount(test.labels, minlength=k)[:k].tolist()}

def batch_iterator(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One shuffled epoch of int64 index tensors; the last, smaller batch is kept."""
    if n < 0 or batch_size < 1:
        raise ValueError(f"Batches need n >= 0 and batch_size >= 1; got n={n}, batch_size={batch_size}.")
    order = torch.randperm(n, generator=generator)  # drawn now, so the generator advances at the call
    return (order[start:start + batch_size] for start in range(0, n, batch_size))
