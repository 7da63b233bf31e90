"""The datasets this project knows, one DatasetSpec each, by name.

Adding a dataset is one module (its loader) and one entry in vae/data/catalog.py: the CLI's --dataset
choices, the Train form's options, the checks on a config and `load_dataset` all read this registry. A name
that is not here is an error naming the known ones, never a fallback to another dataset.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

if TYPE_CHECKING:
    from vae.data.memory import InMemoryDataset

    Loaded = Union[InMemoryDataset, tuple[InMemoryDataset, ...]]


class DatasetUnavailable(RuntimeError):
    """The dataset's files are not on disk and could not be fetched; the message says what to do."""


class UnknownDataset(DatasetUnavailable, ValueError):
    """A dataset name that is not one of ours (a checkpoint may carry any as a label): never a path."""


@dataclass(frozen=True)
class LoadRequest:
    """What a loader is asked for: one split, read from root (the data folder, resolved); image_size and
    channels are what a dataset without a fixed shape (a folder) makes its images to."""

    split: str
    root: Path
    download: bool = False
    image_size: int = 32
    channels: int = 3


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: how people meet it and how it is read.

    files(root) and folders(root): what it is read from under the data folder ([] for a built-in one);
    load(request): the split asked for, or a tuple of every split it read at once (a folder decodes both).
    """

    name: str  # as typed: --dataset NAME
    label: str  # the Train form's option
    title: str  # as a sentence names it
    credit: str  # where the images come from
    load: Callable[[LoadRequest], "Loaded"]
    shape: tuple[int, int, int] | None  # (C, H, W); None: made to image_size and channels
    files: Callable[[Path], list[Path]] = field(default=lambda root: [])
    folders: Callable[[Path], list[Path]] = field(default=lambda root: [])
    built_in: bool = False  # made here from a seed: no files, no download, the same whatever the folder

    def image_shape(self, image_size: int = 32, channels: int = 3) -> tuple[int, int, int]:
        return self.shape or (int(channels), int(image_size), int(image_size))

    def expected(self, root: Path) -> list[Path]:
        """Every folder then every file it is read from."""
        return [*self.folders(root), *self.files(root)]

    def on_disk(self, root: Path) -> bool:
        return all(p.is_dir() for p in self.folders(root)) and all(p.is_file() for p in self.files(root))


_SPECS: dict[str, DatasetSpec] = {}


def lazy(module: str, name: str) -> Callable:
    """A loader that imports its module when first called (a folder's reader brings torchvision: about a
    second that the CLI's --help and the app's first page need not wait for)."""

    def call(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = f"{module}.{name}"
    return call


def register(spec: DatasetSpec) -> DatasetSpec:
    """Adds a dataset (its name must be new); returns it."""
    if spec.name in _SPECS:
        raise ValueError(f"A dataset named {spec.name!r} is registered already.")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Removes a dataset (for tests that register one of their own)."""
    _SPECS.pop(name, None)


def dataset_names() -> tuple[str, ...]:
    """Every known dataset's name, in the order they were registered."""
    return tuple(_SPECS)


def dataset_options() -> tuple[tuple[str, str], ...]:
    """(name, label) of every known dataset: the CLI's choices and the Train form's options."""
    return tuple((s.name, s.label) for s in _SPECS.values())


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a known dataset, else UnknownDataset naming the known ones."""
    spec = _SPECS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UnknownDataset(f"Unknown dataset {str(name)[:64]!r}: its images cannot be loaded here; the datasets this "
                             f"app knows are {', '.join(_SPECS)}.")
    return spec
