"""Interrupted runs: checkpoints that stopped before their planned epochs and kept Adam's state (a server restart,
a Stop), which no run is training now. A group of variants that one job trained together (a Compare preset,
vae/analysis/teaching.py) is one interrupted run, so that one Resume continues them together again."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vae import checkpoint as ckpt_io
from vae.analysis.teaching import variant_suffixes
from vae.checkpoint.listing import CheckpointInfo


@dataclass(frozen=True)
class InterruptedRun:
    """One run to resume: a single checkpoint (name: its stem), or a group's members (name: their common stem)."""

    name: str
    members: tuple[CheckpointInfo, ...]

    @property
    def is_group(self) -> bool:
        return len(self.members) > 1

    @property
    def paths(self) -> list[str]:
        return [m.path for m in self.members]

    @property
    def epochs(self) -> tuple[int, int]:
        """(fewest, most) epochs done among the members."""
        done = [m.epochs for m in self.members]
        return min(done), max(done)


def _resolved(path: str | os.PathLike) -> str:
    return str(Path(path).resolve())


def interrupted_runs(infos: list[CheckpointInfo], training: set[str] = frozenset()) -> list[InterruptedRun]:
    """The resumable checkpoints of a listing that neither a path in training (what this server's jobs write) nor
    any run's reservation (another server, the CLI) holds, in the listing's order, each group of variants
    gathered at its first member."""
    training = {_resolved(p) for p in training}
    free = [i for i in infos if i.resumable and not i.error and _resolved(i.path) not in training
            and not ckpt_io.in_use(i.path)]
    group_of = {m.path: (base, members) for base, members in _groups(free).items() for m in members}
    runs, placed = [], set()
    for info in free:
        if info.path not in placed:
            base, members = group_of.get(info.path, (info.name, (info,)))
            placed.update(m.path for m in members)
            runs.append(InterruptedRun(base, members))
    return runs


def _groups(infos: list[CheckpointInfo]) -> dict[str, tuple[CheckpointInfo, ...]]:
    """{common stem: members} of every set of two or more checkpoints in one folder named <stem>-<suffix> for the
    suffixes of one group of variants, on the same data and schedule."""
    found = {}
    for suffixes in variant_suffixes():
        candidates: dict[tuple, list[CheckpointInfo]] = {}
        for info in infos:
            for suffix in suffixes:
                if info.name.endswith(f"-{suffix}"):
                    key = (str(Path(info.path).parent), info.name[: -len(suffix) - 1], suffixes)
                    candidates.setdefault(key, []).append(info)
        for (_, base, _), members in candidates.items():
            alike = {(m.dataset, m.latent_dim, m.arch, m.planned_epochs) for m in members}
            if len(members) > 1 and len(alike) == 1 and base not in found:
                found[base] = tuple(sorted(members, key=lambda m: suffixes.index(m.name[len(base) + 1:])))
    return found
