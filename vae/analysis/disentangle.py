"""How well a model's codes line up with the known generative factors of its data.

The Mutual Information Gap (MIG) of Chen et al. 2018, "Isolating Sources of Disentanglement in Variational
Autoencoders": for each factor, the gap between the two code dimensions that share the most information with
it, divided by the factor's entropy, averaged over factors. It is 1 when every factor lives in exactly one
dimension and 0 when no dimension singles a factor out. The estimator follows disentanglement_lib
(Locatello et al. 2019): histogram-discretised codes and an exact plug-in mutual information.
A linear probe (held-out R^2) completes the picture (traversals.py sweeps each dimension, as in Higgins et
al. 2017). Pure numpy: pages call these; they hold no state.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _discretize_column(column: np.ndarray, bins: int) -> np.ndarray:
    """(N,) values -> (N,) int64 codes in 0..bins-1."""
    distinct, inverse = np.unique(column, return_inverse=True)
    if len(distinct) <= bins:
        return inverse.reshape(-1).astype(np.int64)  # a class index or a constant stays exact
    edges = np.histogram(column, bins)[1]
    # As disentanglement_lib's _histogram_discretize: digitize on the left edges, so the maximum lands in
    # the last bin rather than one past it.
    return np.digitize(column, edges[:-1]).astype(np.int64) - 1


def discretize(values: np.ndarray, bins: int = 20) -> np.ndarray:
    """(N,) or (N, D) values -> int64 codes of the same shape, 0..bins-1 per column.

    Equal-width histogram bins over each column's range; a column with at most `bins` distinct values keeps
    one code per distinct value (in ascending order), so a class index is not split or merged. A constant
    column is all zeros.
    """
    if bins < 1:
        raise ValueError("Discretising needs at least one bin.")
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        return _discretize_column(values, bins)
    if values.ndim != 2:
        raise ValueError(f"Discretising takes an (N,) or (N, D) array, got shape {values.shape}.")
    out = np.empty(values.shape, np.int64)
    for d in range(values.shape[1]):
        out[:, d] = _discretize_column(values[:, d], bins)
    return out


def _as_codes(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) or (a.size and a.min() < 0):
        raise ValueError("Mutual information takes (N,) arrays of non-negative integer codes; discretize first.")
    return a.astype(np.int64)


def entropy(a: np.ndarray) -> float:
    """Entropy in nats of the empirical distribution of (N,) non-negative integer codes (0 for N = 0)."""
    a = _as_codes(a)
    if a.size == 0:
        return 0.0
    p = np.bincount(a) / a.size
    p = p[p > 0]
    return float(max(-(p * np.log(p)).sum(), 0.0))


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information in nats between two (N,) integer code arrays, the exact plug-in estimate from their
    joint histogram. Never negative; biased upwards by about (|a| - 1)(|b| - 1) / 2N nats for finite N."""
    a, b = _as_codes(a), _as_codes(b)
    if a.size != b.size:
        raise ValueError(f"Mutual information needs arrays of one length, got {a.size} and {b.size}.")
    if a.size == 0:
        return 0.0
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb) / a.size
    pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    mi = (joint[nonzero] * np.log(joint[nonzero] / (pa * pb)[nonzero])).sum()
    return float(max(mi, 0.0))  # rounding can leave -1e-17 for independent codes


@dataclass(frozen=True)
class MIGResult:
    """MIG over K factors and D code dimensions.

    factors: the K factor names scored (constant factors are left out).
    mi: (K, D) mutual information of each factor with each dimension, divided by the factor's entropy, in [0, 1].
    gaps: (K,) top minus second-highest normalised MI per factor (the top itself when D = 1).
    mig: the mean of gaps.
    """
    factors: list[str]
    mi: np.ndarray
    gaps: np.ndarray
    mig: float

    @property
    def best_dims(self) -> np.ndarray:
        """(K,) the code dimension that shares the most information with each factor."""
        return np.argmax(self.mi, axis=1)


def mutual_info_gap(codes: np.ndarray, factors: dict[str, np.ndarray], bins: int = 20) -> MIGResult:
    """MIG (Chen et al. 2018, Eq. 6) of (N, D) codes, usually posterior means, against named (N,) factors.

    Codes and factors are discretised with `bins` histogram bins each (class-like factors exactly, see
    discretize), as disentanglement_lib does.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] < 1:
        raise ValueError(f"MIG takes codes as an (N, D) array, got shape {codes.shape}.")
    n = codes.shape[0]
    if n < 2:
        raise ValueError("MIG needs at least two codes to estimate mutual information.")
    for name, values in factors.items():
        if np.shape(values) != (n,):
            raise ValueError(f"Factor {name!r} has shape {np.shape(values)} but there are {n} codes.")
    code_bins = discretize(codes, bins)
    names, rows = [], []
    for name, values in factors.items():
        factor = discretize(values, bins)
        h = entropy(factor)
        if h <= 0:
            continue  # a constant factor has nothing to disentangle
        names.append(name)
        rows.append([mutual_information(factor, code_bins[:, d]) / h for d in range(code_bins.shape[1])])
    if not names:
        raise ValueError("MIG needs at least one factor that varies across the codes.")
    mi = np.clip(np.array(rows, np.float64), 0.0, 1.0)
    ranked = -np.sort(-mi, axis=1)
    gaps = ranked[:, 0] - ranked[:, 1] if mi.shape[1] > 1 else ranked[:, 0]
    return MIGResult(names, mi, gaps, float(gaps.mean()))


def linear_probe_r2(codes: np.ndarray, target: np.ndarray, seed: int = 0) -> float:
    """Held-out R^2 = 1 - SS_res / SS_tot of a least-squares linear fit (with intercept) of (N,) target on
    (N, D) codes, fitted on a seeded random half of the rows and scored on the other half.

    About 1 when the factor is a linear function of the code, about 0 (or below: a useless fit is penalised
    on unseen rows) when it is unrelated; nan for a target that is constant on the scored half.
    """
    codes = np.asarray(codes, np.float64)
    codes = codes[:, None] if codes.ndim == 1 else codes
    target = np.asarray(target, np.float64).reshape(-1)
    if len(codes) != len(target):
        raise ValueError(f"The probe needs one target per code, got {len(target)} targets for {len(codes)} codes.")
    if len(codes) < 4:
        raise ValueError("The probe needs at least four codes: half to fit and half to score.")
    order = np.random.default_rng(seed).permutation(len(codes))
    fit, score = order[:len(order) // 2], order[len(order) // 2:]
    design = np.column_stack([codes, np.ones(len(codes))])
    weights = np.linalg.lstsq(design[fit], target[fit], rcond=None)[0]
    residual = target[score] - design[score] @ weights
    ss_tot = float(((target[score] - target[score].mean()) ** 2).sum())
    if ss_tot == 0.0:
        return float("nan")
    return float(1.0 - (residual ** 2).sum() / ss_tot)


def probe_scores(codes: np.ndarray, factors: dict[str, np.ndarray], seed: int = 0) -> dict[str, float]:
    """Held-out linear-probe R^2 (see linear_probe_r2) for each factor that is not constant, in factor order."""
    return {name: linear_probe_r2(codes, values, seed) for name, values in factors.items()
            if np.ptp(np.asarray(values)) > 0}
