"""Pure functions over a model's latent space: encode a dataset, decode a grid in one
forward pass, tile it, interpolate, prior contours, PCA. Pages call these; they hold no state."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from .disentangle import traversal_codes
from .loss import kl_per_dim
from .model import VAE

ENCODE_BATCH = 2048


@torch.no_grad()
def encode_dataset(model: VAE, x: torch.Tensor, batch_size: int = ENCODE_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """x: (N, C, H, W) float in [0, 1] -> posterior mu, logvar as float32 arrays (N, D)."""
    device = next(model.parameters()).device
    mus, logvars = [], []
    for start in range(0, len(x), batch_size):
        mu, logvar = model.encode(x[start:start + batch_size].to(device))
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    if not mus:
        d = model.config.latent_dim
        return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()


def to_pictures(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(B, C, H, W) images -> pictures as they are drawn: (B, H, W) grey or (B, H, W, 3) colour, float32
    (uint8 stays uint8). Every picture function here takes and gives these."""
    images = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if images.shape[1] == 1:
        return images[:, 0]
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))


@torch.no_grad()
def decode_codes(model: VAE, z: np.ndarray | torch.Tensor) -> np.ndarray:
    """z: (B, D) -> decoded image means as pictures (B, H, W[, 3]) float32 in [0, 1], one forward pass."""
    device = next(model.parameters()).device
    z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
    return to_pictures(model.decode(z))


@torch.no_grad()
def reconstruct(model: VAE, x: torch.Tensor) -> np.ndarray:
    """x: (B, C, H, W) -> decode(mu(x)) as pictures (B, H, W[, 3]): the deterministic reconstruction."""
    mu, _ = encode_dataset(model, x)
    return decode_codes(model, mu)


def grid_axis(n: int, radius: float = 3.0, spacing: str = "linear") -> np.ndarray:
    """n latent values along one axis, ascending.

    linear: evenly over [-radius, radius]. gaussian: inverse-CDF of evenly spaced
    probabilities, so each cell holds equal prior mass (Kingma & Welling 2013, Fig. 4).
    """
    if n < 1:
        raise ValueError("A grid needs at least one point per side.")
    if spacing == "linear":
        return np.linspace(-radius, radius, n, dtype=np.float32)
    if spacing == "gaussian":
        p = (np.arange(n, dtype=np.float64) + 0.5) / n  # cell centres in probability
        return torch.special.ndtri(torch.from_numpy(p)).numpy().astype(np.float32)
    raise ValueError(f"Unknown spacing {spacing!r}; use linear or gaussian.")


def grid_codes(xs: np.ndarray, ys: np.ndarray, latent_dim: int, dims: tuple[int, int] = (0, 1),
               base: np.ndarray | None = None) -> np.ndarray:
    """(len(ys) * len(xs), D) codes, row-major with the top row at the largest y (as on a plot).

    Dimensions other than `dims` are held at `base` (default 0).
    """
    base = np.zeros(latent_dim, np.float32) if base is None else np.asarray(base, np.float32)
    gx, gy = np.meshgrid(xs, ys[::-1])  # (ny, nx) each; row 0 is the top of the picture
    z = np.tile(base, (gx.size, 1))
    z[:, dims[0]] = gx.ravel()
    z[:, dims[1]] = gy.ravel()
    return z


def decode_grid(model: VAE, xs: np.ndarray, ys: np.ndarray, dims: tuple[int, int] = (0, 1),
                base: np.ndarray | None = None) -> np.ndarray:
    """(ny, nx, H, W[, 3]) decoded pictures over the grid, in one batched forward pass."""
    z = grid_codes(xs, ys, model.config.latent_dim, dims, base)
    pictures = decode_codes(model, z)
    return pictures.reshape(len(ys), len(xs), *pictures.shape[1:])


def decode_traversals(model: VAE, base: np.ndarray, dims: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(R, S, H, W[, 3]) pictures: row r sweeps dimension dims[r] over values (S,), the others held at base (D,);
    one batched forward pass."""
    pictures = decode_codes(model, traversal_codes(base, dims, values))
    return pictures.reshape(len(dims), len(values), *pictures.shape[1:])


def manifold_picture(model: VAE, n: int, radius: float = 3.0) -> np.ndarray:
    """The decoder over an n x n grid of (z1, z2) in [-radius, radius], the other dimensions at 0 (one row
    over z1 for a 1-D space), as one uint8 picture (n * H, n * W[, 3]): the manifold at a glance."""
    xs = grid_axis(n, radius)
    if model.config.latent_dim == 1:
        return tile_images(decode_codes(model, xs[:, None])[None])
    return tile_images(decode_grid(model, xs, xs))


def tile_images(images: np.ndarray, gap: int = 0, gap_value: float = 1.0) -> np.ndarray:
    """(ny, nx, h, w[, 3]) float in [0, 1] -> one uint8 picture of (ny*h + (ny-1)*gap, nx*w + (nx-1)*gap[, 3]).

    gap: pixels of `gap_value` between neighbouring tiles (0 for the manifold, whose cells must
    stay exactly h x w so axis positions map to cells).
    """
    ny, nx, h, w = images.shape[:4]
    colour = images.shape[4:]  # () grey, (3,) RGB
    if gap <= 0:
        return to_uint8(np.swapaxes(images, 1, 2).reshape(ny * h, nx * w, *colour))
    out = np.full((ny * h + (ny - 1) * gap, nx * w + (nx - 1) * gap, *colour), gap_value, np.float32)
    for row in range(ny):
        for col in range(nx):
            top, left = row * (h + gap), col * (w + gap)
            out[top:top + h, left:left + w] = images[row, col]
    return to_uint8(out)


def tile_rows(rows: list[np.ndarray] | tuple[np.ndarray, ...], gap: int = 0, gap_value: float = 1.0) -> np.ndarray:
    """Equal-length rows of (B, h, w[, 3]) pictures, stacked top to bottom -> one uint8 picture (see tile_images)."""
    return tile_images(np.stack([np.asarray(r, np.float32) for r in rows]), gap, gap_value)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 [0, 255], rounding."""
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def upscale_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """(H, W[, 3]) -> (H * factor, W * factor[, 3]): blocky nearest-neighbour enlargement, so a small
    picture stays crisp on a projector."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def upscale_factor(width_px: int, target_px: int, max_factor: int = 12) -> int:
    """The largest whole enlargement (1..max_factor) that keeps width_px * factor within target_px."""
    return int(max(1, min(max_factor, target_px // max(width_px, 1))))


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W) grayscale or (H, W, 3) RGB -> PNG file bytes (lossless)."""
    from PIL import Image  # PIL ships with torchvision and streamlit; imported here to keep import light

    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"PNG encoding wants uint8 pixels, got {image.dtype}; convert with to_uint8 first.")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def grid_plot_coords(z: np.ndarray, spacing: str = "linear") -> np.ndarray:
    """Where latent values sit on a manifold plot's axis.

    linear: z itself. gaussian: the prior CDF Phi(z), in which the quantile grid of grid_axis is
    evenly spaced (cell i is centred at (i + 0.5) / n), so codes overlay the tiles truthfully.
    """
    z = np.asarray(z, np.float64)
    if spacing == "linear":
        return z.astype(np.float32)
    if spacing == "gaussian":
        return torch.special.ndtr(torch.from_numpy(z)).numpy().astype(np.float32)
    raise ValueError(f"Unknown spacing {spacing!r}; use linear or gaussian.")


def grid_cell_edges(centres: np.ndarray) -> tuple[float, float]:
    """(low, high) outer edges of evenly spaced cells given their centres, on the plot's axis."""
    centres = np.asarray(centres, np.float64)
    width = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
    return float(centres[0] - width / 2), float(centres[-1] + width / 2)


def round_ticks(lo: float, hi: float, max_ticks: int = 9) -> np.ndarray:
    """Round values of z to label an axis over [lo, hi]: the multiples of the smallest step in
    1, 2, 2.5, 5 x 10^k that gives at most max_ticks of them (0 among them whenever it is in range),
    as a scatter plot's axis would have them."""
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    span = max(hi - lo, 1e-9)
    for exponent in range(int(np.floor(np.log10(span / max(max_ticks, 1)))) - 1, 12):
        for mantissa in (1.0, 2.0, 2.5, 5.0):
            step = mantissa * 10.0 ** exponent
            first, last = np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9)
            if last - first + 1 <= max_ticks:
                return (np.arange(first, last + 1) * step).astype(np.float64)
    return np.array([lo, hi])


def format_tick(value: float) -> str:
    """A round tick value as people write it: -3, -2.5, 0, 0.25 (no trailing zeros, a true minus sign)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    text = "0" if text in ("-0", "") else text
    return text.replace("-", "−")


def sample_indices(n: int, k: int, seed: int) -> np.ndarray:
    """k distinct indices into n items (all of them when k >= n), drawn from a seed, ascending."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(k, n), replace=False))


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int) -> np.ndarray:
    """(steps, D) points on the straight line from z0 to z1, both ends included."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return (1 - t) * np.asarray(z0, np.float32) + t * np.asarray(z1, np.float32)


def prior_contour(n_sigma: float, n_points: int = 121) -> tuple[np.ndarray, np.ndarray]:
    """The n-sigma contour of the 2-D standard normal prior: a circle of radius n_sigma."""
    theta = np.linspace(0, 2 * np.pi, n_points)
    return n_sigma * np.cos(theta), n_sigma * np.sin(theta)


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


def kl_per_dimension(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """(D,) mean KL(q(z_d|x) || N(0,1)) over the data, nats."""
    return kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(0).numpy()


def active_units(mu: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Boolean (D,): a dimension is active when Var_x[E_q(z|x)[z_d]] > threshold (Burda et al. 2015)."""
    return mu.var(axis=0) > threshold


# --- teaching: which dimensions are used, and a label map of the plane ----------------------------

COLLAPSE_KL = 0.1  # nats: a model whose codes carry less than this has collapsed to the prior


@dataclass(frozen=True)
class LatentUsage:
    kl: np.ndarray  # (D,) mean KL per dimension over the data, nats
    active: np.ndarray  # (D,) bool, Burda et al. 2015's criterion (see active_units)

    @property
    def n_active(self) -> int:
        return int(self.active.sum())

    @property
    def collapsed(self) -> bool:
        """Posterior collapse: no dimension is used, q(z|x) is the prior whatever x is."""
        return self.n_active == 0 or float(self.kl.sum()) < COLLAPSE_KL

    def sentence(self) -> str:
        d, total = len(self.kl), float(self.kl.sum())
        head = f"{self.n_active} of {d} latent dimension{'s' if d != 1 else ''} active, KL {total:.2f} nats"
        if self.collapsed:
            return (f"{head}: posterior collapse. Every image gets the same code distribution, the prior, "
                    "so the code says nothing about the image and the decoder can only draw an average.")
        if self.n_active < d:
            unused = d - self.n_active
            return (f"{head}: {unused} dimension{'s have' if unused > 1 else ' has'} collapsed to the prior "
                    "and carr" + ("y" if unused > 1 else "ies") + " no information; the others encode the images.")
        return f"{head}: every dimension carries information about the image."


def latent_usage(mu: np.ndarray, logvar: np.ndarray, threshold: float = 0.01) -> LatentUsage:
    """Per-dimension KL and active units of posterior means and log-variances (N, D) over a dataset."""
    return LatentUsage(kl_per_dimension(mu, logvar), active_units(mu, threshold))


def square_extent(*points: np.ndarray, margin: float = 0.05, min_half: float = 0.0) -> tuple[float, float]:
    """(lo, hi) one range for both axes that holds every (N, 2) array given, plus a margin on each side."""
    xy = np.concatenate([np.asarray(p, np.float32).reshape(-1, 2) for p in points])
    lo, hi = (float(xy.min()), float(xy.max())) if len(xy) else (-1.0, 1.0)
    centre, half = (lo + hi) / 2, max((hi - lo) / 2 * (1 + 2 * margin), min_half, 1e-3)
    return centre - half, centre + half


def robust_extent(*points: np.ndarray, coverage: float = 0.98, margin: float = 0.05,
                  min_half: float = 1.0) -> tuple[float, float]:
    """(lo, hi) one range for both axes holding the central `coverage` of every (N, 2) array on each
    axis: a few far-flung codes of one model do not shrink everyone else's to a dot."""
    tail = (1 - coverage) / 2
    boxes = [np.quantile(np.asarray(p, np.float32).reshape(-1, 2), [tail, 1 - tail], axis=0)
             for p in points if len(p)]  # each (2 quantiles, 2 axes)
    return square_extent(*boxes, margin=margin, min_half=min_half)


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
