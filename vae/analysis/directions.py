"""Directions that mean something: attribute vectors in the full latent space.

An attribute vector is the mean code of group B minus the mean code of group A (Larsen et al. 2016, "Autoencoding
beyond pixels", the smile vector; White 2016, "Sampling Generative Networks"). Groups come from two classes, a
user's selection of indices, or a known factor's low third against its high third. Walking a start code along
it, comparing several of them (lengths, cosines, how close each lies to one axis: a disentangled model's factor
vectors are near-orthogonal and near-axis, which is what MIG, disentangle.py, scores) and the analogy a - b + c
are plain numpy; only the decode_* functions run the model, in one batch each.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae.analysis.encoding import decode_codes
from vae.nets.model import VAE


class DirectionError(ValueError):
    """A group, class or factor a person chose that gives no direction; the message is one sentence saying
    what to choose instead."""


def group_mask(group, n: int, name: str) -> np.ndarray:
    """(n,) bool from a boolean mask (n,) or an array of indices into n codes."""
    group = np.asarray(group)
    if group.dtype == bool:
        if group.shape != (n,):
            raise DirectionError(f"Group {name} is a mask of {group.size} entries for {n} codes; give one per code.")
        return group
    if group.size and not np.issubdtype(group.dtype, np.integer):
        raise DirectionError(f"Group {name} must be whole-number indices or a mask; pick codes by their index.")
    index = group.astype(np.int64).reshape(-1)
    if index.size and (index.min() < 0 or index.max() >= n):
        raise DirectionError(f"Group {name} has indices outside 0..{n - 1}; pick codes that exist.")
    mask = np.zeros(n, bool)
    mask[index] = True
    return mask


def attribute_vector(codes: np.ndarray, in_a, in_b) -> np.ndarray:
    """(D,) float32 mean(codes[in_b]) - mean(codes[in_a]) of (N, D) codes; in_a, in_b: boolean masks (N,) or
    indices. An empty group raises DirectionError."""
    codes = np.asarray(codes, np.float64)
    means = []
    for name, group in (("A", in_a), ("B", in_b)):
        mask = group_mask(group, len(codes), name)
        if not mask.any():
            raise DirectionError(f"Group {name} has no codes; choose a class, factor or selection that has some.")
        means.append(codes[mask].mean(axis=0))
    return (means[1] - means[0]).astype(np.float32)


def class_index(class_names: list[str], given: str) -> int:
    """The class a person named, by its name or by its number (0-based); else DirectionError."""
    if given in class_names:
        return class_names.index(given)
    if given.strip().isdigit() and int(given) < len(class_names):
        return int(given)
    shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
    raise DirectionError(f"There is no class {given!r} in this model; choose one of {shown}.")


def class_groups(labels: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bool masks of the codes labelled a and of those labelled b."""
    labels = np.asarray(labels)
    return labels == a, labels == b


def factor_groups(factors: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bool masks of a factor's low third (at or below its 1/3 quantile) and high third (at or above its
    2/3 quantile), the name matched regardless of case. A factor of few values (a class index, a yes/no
    attribute) whose two quantiles meet splits at that value, which joins the smaller side, so a 70/30
    attribute still gives its two values."""
    key = next((k for k in factors if k.lower() == name.lower()), None)  # CelebA's "Smiling" is stored as smiling
    if key is None and not factors:
        raise DirectionError(f"These codes have no known factors, so no {name!r} (only the built-in shapes and CelebA "
                             "have them); group them by class instead.")
    if key is None:
        raise DirectionError(f"These codes have no factor {name!r}; choose one of {', '.join(factors)}.")
    values = np.asarray(factors[key], np.float64)
    lo, hi = np.quantile(values, [1 / 3, 2 / 3]) if values.size else (0.0, 0.0)
    if lo < hi:
        return values <= lo, values >= hi
    below, above = values < lo, values > lo
    if not below.any() and not above.any():
        raise DirectionError(f"Factor {name!r} takes one value in these codes; choose a factor that varies.")
    return (below | (values == lo), above) if below.sum() <= above.sum() else (below, above | (values == lo))


def factor_vectors(codes: np.ndarray, factors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each varying factor's attribute vector (D,), from its low third to its high third (factor_groups)."""
    vectors = {}
    for name, values in factors.items():
        if np.ptp(np.asarray(values)) > 0:  # a constant factor has no direction
            vectors[name] = attribute_vector(codes, *factor_groups(factors, name))
    return vectors


def plane_of(v: np.ndarray) -> tuple[int, ...]:
    """The latent pad's plane for a direction (D,): its two largest components' dimensions, largest across (z1,
    z2 for D = 2; z1 alone for D = 1), so its arrow shows as much of it as two dimensions can."""
    v = np.abs(np.asarray(v, np.float64).reshape(-1))
    if v.size <= 2:
        return tuple(range(v.size))
    first, second = np.argsort(-v, kind="stable")[:2]
    return int(first), int(second)


def walk_codes(start: np.ndarray, v: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """(S, D) float32 codes start + alpha * v for each of the S alphas; start and v are (D,)."""
    start, v = np.asarray(start, np.float32).reshape(-1), np.asarray(v, np.float32).reshape(-1)
    if start.shape != v.shape:
        raise DirectionError(f"The start code has {start.size} dimensions and the direction {v.size}; "
                             "use one model's codes.")
    return start[None, :] + np.asarray(alphas, np.float32).reshape(-1, 1) * v[None, :]


def decode_walk(model: VAE, start: np.ndarray, v: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """(S, H, W[, 3]) pictures of the walk start + alpha * v, decoded in one batch."""
    return decode_codes(model, walk_codes(start, v, alphas))


@dataclass(frozen=True)
class DirectionComparison:
    """K directions side by side.

    names: the K names. norms: (K,) lengths. cosines: (K, K) cosine of each pair (1 on the diagonal).
    nearest_axes: (K,) the code dimension each leans on most. axis_alignment: (K,) |cosine| with that axis,
    max_d |v_d| / |v|: 1 for a vector along one dimension, 1/sqrt(D) for one spread evenly over all.
    """
    names: list[str]
    norms: np.ndarray
    cosines: np.ndarray
    nearest_axes: np.ndarray
    axis_alignment: np.ndarray


def compare_directions(vectors: dict[str, np.ndarray]) -> DirectionComparison:
    """Lengths, pairwise cosines and axis alignment of named (D,) vectors; a zero vector raises DirectionError."""
    if not vectors:
        raise DirectionError("There are no directions to compare; build at least one attribute vector first.")
    names = list(vectors)
    m = np.stack([np.asarray(vectors[k], np.float64).reshape(-1) for k in names])  # (K, D)
    norms = np.linalg.norm(m, axis=1)
    if (norms == 0).any():
        zero = names[int(np.argmin(norms))]
        raise DirectionError(f"Direction {zero!r} has length 0; choose groups whose codes differ.")
    unit = m / norms[:, None]
    return DirectionComparison(names, norms, np.clip(unit @ unit.T, -1.0, 1.0), np.argmax(np.abs(unit), axis=1),
                               np.abs(unit).max(axis=1))


def analogy(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(D,) float32 a - b + c: "a is to b as ? is to c" (Mikolov et al. 2013, carried to codes by White 2016)."""
    a, b, c = (np.asarray(z, np.float32).reshape(-1) for z in (a, b, c))
    if not a.shape == b.shape == c.shape:
        raise DirectionError("The three codes of an analogy have different sizes; take all three from one model.")
    return a - b + c


def decode_analogy(model: VAE, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(H, W[, 3]) the picture of a - b + c."""
    return decode_codes(model, analogy(a, b, c)[None])[0]


def nearest_labels(code: np.ndarray, codes: np.ndarray, labels: np.ndarray, k: int = 25) -> np.ndarray:
    """(min(k, N),) labels of the k codes (N, D) nearest to code (D,) in Euclidean distance, nearest first."""
    if k < 1:
        raise DirectionError(f"Asking for the {k} nearest codes finds none; ask for 1 or more.")
    distance = np.linalg.norm(np.asarray(codes, np.float64) - np.asarray(code, np.float64).reshape(1, -1), axis=1)
    return np.asarray(labels)[np.argsort(distance, kind="stable")[:k]]


def majority_label(labels: np.ndarray) -> tuple[int, int]:
    """(label, count) of the commonest of non-negative integer labels; ties go to the smaller label."""
    counts = np.bincount(np.asarray(labels, np.int64))
    return int(np.argmax(counts)), int(counts.max())
