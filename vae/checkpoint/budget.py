"""What reading a checkpoint may cost, whatever its size on disk.

The unpickled structure is walked once, before any other check. Every container is counted each time it is
reached (pickle's memo lets a small file reference one large record many thousand times, so shared references
count every time, while each distinct container is looked inside only once), and every tensor is checked to
be dense (its storage holds each element once, as torch.save writes parameters) and then copied into fresh
contiguous storage: nothing the file chose about memory layout (a zero stride, an offset past the end)
reaches torch's kernels.
"""
from __future__ import annotations

from typing import Any

import torch

from vae.checkpoint.format import MAX_EXTRAS_ITEMS, MAX_HISTORY, CheckpointError, HISTORY_FIELDS

MAX_DEPTH = 24  # containers within containers: the format nests five deep, extras a few more
# Objects a checkpoint's structure may hold, each container's entries counted at every reach: the largest
# history the loader takes (MAX_HISTORY records of at most every known field, a key and a value each), the
# extras, and ample room for the rest (configs, a few hundred tensors, a thousand class names).
MAX_VISITS = MAX_HISTORY * (1 + 2 * len(HISTORY_FIELDS)) + MAX_EXTRAS_ITEMS + 100_000
MAX_ELEMENTS = 100 * 1024 * 1024  # tensor elements in all: every tensor of a file under its byte limit
TENSOR_DTYPES = (torch.float32, torch.float16, torch.float64, torch.int64, torch.int32, torch.int16, torch.uint8,
                 torch.bool)


def fresh_copy(payload: Any, label: str) -> Any:
    """The payload with every tensor checked and replaced by a fresh contiguous copy (dicts and lists are
    changed in place); CheckpointError, one sentence, when the structure or a tensor is out of bounds."""
    _walk(payload, label, _counted(label))
    return _copy_tensors(payload, label) if isinstance(payload, (dict, list)) else payload


def _counted(label: str):
    """A counter of visits and tensor elements that refuses past the budgets."""
    totals = {"visits": 0, "elements": 0}

    def count(visits: int = 0, elements: int = 0) -> None:
        totals["visits"] += visits
        totals["elements"] += elements
        if totals["visits"] > MAX_VISITS:
            raise CheckpointError(f"{label} holds far more entries than any checkpoint this app writes (a record "
                                  f"repeated many times over), so it was refused before its entries were read; load "
                                  f"a file saved by Latent Explorer.")
        if totals["elements"] > MAX_ELEMENTS:
            raise CheckpointError(f"{label} holds tensors of more numbers in all than a checkpoint can, so it was "
                                  f"refused before they were read; load a file saved by Latent Explorer.")

    return count


def _walk(payload: Any, label: str, count) -> None:
    """Counts every container at every reach and checks every tensor, without recursion."""
    stack, opened = [(payload, 1)], set()
    while stack:
        node, depth = stack.pop()
        if isinstance(node, torch.Tensor):
            _check_tensor(node, label)
            count(1, node.numel())
            continue
        if not isinstance(node, (dict, list, tuple)):
            count(1)
            continue
        if depth > MAX_DEPTH:
            raise CheckpointError(f"{label} is nested deeper than any checkpoint this app writes; it may be damaged.")
        count(1 + len(node) * (2 if isinstance(node, dict) else 1))
        if id(node) in opened:  # reached again through the memo: counted above, looked inside once
            continue
        opened.add(id(node))
        values = node.values() if isinstance(node, dict) else node
        stack.extend((v, depth + 1) for v in values if isinstance(v, (dict, list, tuple, torch.Tensor)))


def _check_tensor(t: torch.Tensor, label: str) -> None:
    """A plain dense CPU tensor of a dtype checkpoints use, whose storage holds every element it claims."""
    plain = (t.layout == torch.strided and not t.is_quantized and t.device.type == "cpu" and t.dtype in TENSOR_DTYPES
             and not t.requires_grad)
    if not plain:
        raise CheckpointError(f"{label} holds a tensor of a kind checkpoints never contain; it may be damaged.")
    if t.numel() and not _own_places(t):
        raise CheckpointError(f"{label} holds a tensor whose memory does not hold its values (elements that share "
                              f"one place, as a zero stride makes, or lie past its storage); it was refused before use: "
                              f"load a file saved by Latent Explorer.")


def _own_places(t: torch.Tensor) -> bool:
    """Every element at a place of its own inside the storage: strides, smallest first, each past the reach
    of the ones below it (a view torch.save kept, such as a slice, passes; a zero stride does not)."""
    reach = 0  # the largest offset the dimensions so far address, in elements
    for stride, size in sorted((st, sz) for st, sz in zip(t.stride(), t.shape) if sz > 1):
        if stride <= reach:
            return False
        reach += stride * (size - 1)
    return t.storage_offset() + reach < t.untyped_storage().nbytes() // t.element_size()


def _copy_tensors(node: dict | list, label: str, memo: dict | None = None) -> dict | list:
    """Replaces each tensor under node by a fresh contiguous copy, once per distinct tensor (iteratively)."""
    memo = {} if memo is None else memo
    stack, done = [node], set()
    while stack:
        container = stack.pop()
        if id(container) in done:
            continue
        done.add(id(container))
        keys = list(container) if isinstance(container, dict) else range(len(container))
        for key in keys:
            value = container[key]
            if isinstance(value, torch.Tensor):
                if id(value) not in memo:
                    memo[id(value)] = (value, value.detach().clone(memory_format=torch.contiguous_format))
                container[key] = memo[id(value)][1]
            elif isinstance(value, (dict, list)):
                stack.append(value)
            elif isinstance(value, tuple) and any(isinstance(v, (torch.Tensor, dict, list, tuple)) for v in value):
                raise CheckpointError(f"{label} holds tensors or containers where a checkpoint holds plain values; "
                                      f"it may be damaged.")
    return node
