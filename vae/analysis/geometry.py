"""The latent plane's geometry: PCA to two dimensions, projections, axis ranges that hold the codes, and
a k-nearest-neighbour label map. Pure numpy."""
from __future__ import annotations

import numpy as np
import torch


def pca_2d(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Projects codes (N, D) on their top two principal axes.

    Returns (projected (N, 2), components (2, D), mean (D,), explained variance ratio (2,)).
    The components are orthonormal, so the prior N(0, I) projects to N(0, I) in the plane.
    """
    mean = codes.mean(axis=0)
    centred = codes - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]
    if components.shape[0] < 2:  # latent_dim 1: pad with a zero axis
        components = np.vstack([components, np.zeros_like(components)])
        s = np.append(s, 0.0)
    var = s**2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return (centred @ components.T).astype(np.float32), components, mean, ratio


def pca_prior_centre(components: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(2,): where the prior's centre z = 0 lands in the PCA plane of pca_2d (its codes are centred)."""
    return (-(np.asarray(components) @ np.asarray(mean))).astype(np.float32)


def plane_of(codes: np.ndarray) -> np.ndarray:
    """(N, 2) codes in the plane (z1, z2); a 1-D space is drawn on z2 = 0."""
    codes = np.asarray(codes)
    return codes[:, :2] if codes.shape[1] >= 2 else np.concatenate([codes, np.zeros_like(codes)], axis=1)


def project_codes(codes: np.ndarray, dims: tuple[int, int] | None) -> np.ndarray:
    """(N, 2): two chosen latent dimensions, or the PCA plane when dims is None."""
    if dims is None:
        return pca_2d(codes)[0]
    return codes[:, list(dims)]


def project_like(codes: np.ndarray, reference: np.ndarray, dims: tuple[int, int] | None) -> np.ndarray:
    """(N, 2): codes placed on the plane that project_codes(reference, dims) draws: the same two
    dimensions, or the reference's own PCA plane (its axes and centre)."""
    if dims is not None:
        return np.asarray(codes)[:, list(dims)]
    _, components, mean, _ = pca_2d(reference)
    return ((np.asarray(codes) - mean) @ components.T).astype(np.float32)


def square_extent(*points: np.ndarray, margin: float = 0.05, min_half: float = 0.0) -> tuple[float, float]:
    """(lo, hi) one range for both axes that holds every (N, 2) array given, plus a margin on each side."""
    xy = np.concatenate([np.asarray(p, np.float32).reshape(-1, 2) for p in points])
    lo, hi = (float(xy.min()), float(xy.max())) if len(xy) else (-1.0, 1.0)
    centre, half = (lo + hi) / 2, max((hi - lo) / 2 * (1 + 2 * margin), min_half, 1e-3)
    return centre - half, centre + half


def robust_extent(*points: np.ndarray, coverage: float = 0.98, margin: float = 0.05,
                  min_half: float = 1.0) -> tuple[float, float]:
    """(lo, hi) one range for both axes whose square holds at least `coverage` of every (N, 2) array's
    points (in the plane, not axis by axis): a few far-flung codes of one model do not shrink everyone
    else's to a dot, yet no model loses more than 1 - coverage of its codes off the plot."""
    tail = (1 - coverage) / 2
    boxes = [np.quantile(np.asarray(p, np.float32).reshape(-1, 2), [tail, 1 - tail], axis=0)
             for p in points if len(p)]  # each (2 quantiles, 2 axes): where the square is centred
    lo, hi = square_extent(*boxes, margin=0.0)
    centre = (lo + hi) / 2
    # Each model's points by their distance from the centre in the max norm: the square of half-side h holds
    # exactly those within h, so the smallest h with at least `coverage` of the distances at or below it (the
    # inverted-CDF quantile) is the half-side that model needs.
    needed = [np.quantile(np.abs(np.asarray(p, np.float32).reshape(-1, 2) - centre).max(axis=1), coverage,
                          method="inverted_cdf") for p in points if len(p)]
    half = max(max(needed, default=0.0) * (1 + 2 * margin), min_half, 1e-3)
    return centre - half, centre + half


def share_outside(xy: np.ndarray, extent: tuple[float, float]) -> float:
    """The fraction of (N, 2) points outside the square extent x extent (0 for no points)."""
    xy = np.asarray(xy).reshape(-1, 2)
    if not len(xy):
        return 0.0
    return float((((xy < extent[0]) | (xy > extent[1])).any(axis=1)).mean())


@torch.no_grad()
def knn_label_map(codes: np.ndarray, labels: np.ndarray, xs: np.ndarray, ys: np.ndarray, k: int = 15,
                  n_classes: int | None = None, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The majority label of the k nearest codes at every point of a grid over the plane.

    codes: (N, 2) e.g. training codes in the plotted plane; labels: (N,) ints; xs, ys: grid axes.
    Returns (labels (len(ys), len(xs)) int64, confidence = share of the k votes won, same shape),
    row 0 at the smallest y (as a heatmap draws it). Distances in batches of grid points
    (torch.cdist), so a 200 x 200 grid over 20,000 codes stays near 300 MB at most. A tie goes to
    the label whose neighbours are nearer.
    """
    codes_t = torch.as_tensor(np.asarray(codes, np.float32)).reshape(-1, 2)
    labels_t = torch.as_tensor(np.asarray(labels)).long()
    if len(codes_t) == 0:
        raise ValueError("A label map needs at least one labelled code.")
    k = min(k, len(codes_t))
    n_classes = n_classes or int(labels_t.max()) + 1
    gx, gy = np.meshgrid(np.asarray(xs, np.float32), np.asarray(ys, np.float32))  # (ny, nx)
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1))  # (ny * nx, 2)
    # Votes weigh 1, plus a tie-breaker for the nearer neighbours that sums to under half a vote.
    weights = 1.0 + 0.5 * (k - torch.arange(k, dtype=torch.float32)) / k**2  # (k,)
    winners, shares = [], []
    for start in range(0, len(grid), batch):
        dist = torch.cdist(grid[start:start + batch], codes_t)  # (B, N)
        nearest = dist.topk(k, dim=1, largest=False).indices  # (B, k), nearest first
        votes = torch.zeros(len(nearest), n_classes).scatter_add_(1, labels_t[nearest], weights.expand(len(nearest), k))
        best = votes.argmax(dim=1)
        winners.append(best)
        shares.append(votes.gather(1, best[:, None])[:, 0].floor() / k)  # whole votes won
    shape = gx.shape
    return torch.cat(winners).reshape(shape).numpy(), torch.cat(shares).reshape(shape).numpy()
