"""The commands that turn a checkpoint into something to look at: `replay` (the training replay as a GIF), `share`
(the model's explorer as one HTML file) and `direction` (an attribute vector and the walk along it, as a PNG)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vae import checkpoint as ckpt_io
from vae.analysis.directions import (DirectionError, attribute_vector, class_groups, class_index, compare_directions,
                                     decode_walk, factor_groups, factor_vectors)
from vae.analysis.encoding import encode_dataset
from vae.browser.share import SHARED_CODES, NotShareable, explorer_html
from vae.checkpoint.codes import stored_codes_from_extras
from vae.checkpoint.replay import replay_from_extras
from vae.cli.args import UsageError, data_dir_of, int_arg, test_split, write_file
from vae.data import DatasetUnavailable, load_for
from vae.render.images import png_bytes, tile_images, to_uint8, upscale_nearest
from vae.training.replay import replay_gif


def cmd_replay(args) -> dict:
    ckpt = ckpt_io.load(args.path)
    replay = replay_from_extras(ckpt.extras)
    if replay is None:
        raise UsageError(f"{args.path} holds no training replay; train the model again (without --no-replay).")
    data = replay_gif(replay, ckpt.class_names, title=ckpt.name, frame_ms=int_arg("--frame-ms", args.frame_ms, 20, 60_000))
    out = Path(args.gif)
    write_file(out, data, "--gif", ".gif")
    return {"command": "replay", "checkpoint": args.path, "gif": str(out), "frames": len(replay),
            "epochs": [int(e) for e in replay.epochs], "bytes": len(data)}


def _shared_images(args, ckpt) -> np.ndarray:
    """--with-images: the first test images, uint8 (N, C, H, W), in the order the checkpoint stored their codes."""
    if ckpt.train_config is None or stored_codes_from_extras(ckpt.extras) is None:
        raise UsageError(f"{args.path} stores no test codes to show images for; share it without --with-images.")
    test = load_for(ckpt.train_config, "test", data_dir_of(args, ckpt.train_config),
                    image_shape=ckpt.model_config.image_shape)
    return to_uint8(test.float_images()[:SHARED_CODES].numpy())


def cmd_share(args) -> dict:
    ckpt = ckpt_io.load(args.path)
    images = _shared_images(args, ckpt) if args.with_images else None
    try:
        page = explorer_html(ckpt, images)
    except NotShareable as e:
        raise UsageError(str(e)) from None
    out = Path(args.out)
    write_file(out, page.encode("utf-8"), "--out", ".html")
    return {"command": "share", "checkpoint": args.path, "html": str(out), "bytes": len(page.encode()),
            "images": 0 if images is None else min(len(images), SHARED_CODES)}


def add_direction_parser(sub) -> None:
    d = sub.add_parser("direction", help="an attribute vector between two groups of codes, and the walk along it",
                       description="v = mean code of group B - mean code of group A, over the test set encoded here, "
                                   "else over the codes the checkpoint stores.")
    d.add_argument("path")
    groups = d.add_mutually_exclusive_group(required=True)
    groups.add_argument("--classes", nargs=2, metavar=("A", "B"), help="from class A to class B (names or numbers)")
    groups.add_argument("--factor", metavar="NAME", help="from a known factor's low third to its high third "
                        "(shapes: shape, scale, rotation, x, y, and hue in colour; CelebA: smiling, male, ...)")
    d.add_argument("--steps", default="8", help="pictures in the walk, from A's mean code (alpha 0) to B's (alpha 1); "
                                                "2-64, default 8")
    d.add_argument("--png", default=None, help="write the decoded walk as one strip of pictures")
    d.add_argument("--data-dir", default=None)
    d.add_argument("--json", action="store_true")


def _direction_codes(args, ckpt) -> tuple[np.ndarray, np.ndarray, dict, str]:
    """Posterior means (N, D), labels and factors of the test set encoded here, else of the codes the checkpoint
    stores, and which of the two it was ("encoded" or "stored")."""
    try:
        test = test_split(args, ckpt)
    except DatasetUnavailable:
        stored = stored_codes_from_extras(ckpt.extras)
        if stored is None:
            raise
        return stored.mu, stored.labels, stored.factors, "stored"
    mu, _ = encode_dataset(ckpt.model, test.float_images())
    return mu, test.labels.numpy(), {k: v.numpy() for k, v in test.factors.items()}, "encoded"


def _direction_groups(args, ckpt, labels, factors) -> tuple[str, str, np.ndarray, np.ndarray]:
    """The names of groups A and B and their (N,) masks, from --classes or --factor."""
    if args.classes:
        a, b = (class_index(ckpt.class_names, c) for c in args.classes)
        return ckpt.class_names[a], ckpt.class_names[b], *class_groups(labels, a, b)
    return f"low {args.factor}", f"high {args.factor}", *factor_groups(factors, args.factor)


def cmd_direction(args) -> dict:
    steps = int_arg("--steps", args.steps, 2, 64)
    ckpt = ckpt_io.load(args.path)
    mu, labels, factors, source = _direction_codes(args, ckpt)
    try:
        name_a, name_b, in_a, in_b = _direction_groups(args, ckpt, labels, factors)
        v = attribute_vector(mu, in_a, in_b)
        cosines = _factor_cosines(mu, factors, args.factor, v) if args.factor else None
    except DirectionError as e:
        raise UsageError(str(e)) from None
    alphas = np.linspace(0.0, 1.0, steps)
    if args.png:
        _write_walk(Path(args.png), decode_walk(ckpt.model, mu[in_a].mean(axis=0), v, alphas))
    result = {"command": "direction", "checkpoint": args.path, "codes": source, "from": name_a, "to": name_b,
              "group_sizes": [int(in_a.sum()), int(in_b.sum())], "vector": v.tolist(), "norm": float(np.linalg.norm(v)),
              "alphas": alphas.tolist(), "png": args.png}
    if cosines is not None:
        result["cosines"] = cosines
    return result


def _factor_cosines(mu: np.ndarray, factors: dict, name: str, v: np.ndarray) -> dict[str, float]:
    """The cosine of factor `name`'s vector v with every other varying factor's vector (near 0 when the model
    keeps the factors apart)."""
    others = {k: w for k, w in factor_vectors(mu, factors).items() if k.lower() != name.lower()}
    if not others:
        return {}
    return dict(zip(others, map(float, compare_directions({**others, name: v}).cosines[-1, :-1])))


def _write_walk(out: Path, pictures: np.ndarray) -> None:
    """The walk's pictures (S, H, W[, 3]) side by side, enlarged to at least 84 px tall, as a PNG file."""
    strip = tile_images(pictures[None], gap=2)
    write_file(out, png_bytes(upscale_nearest(strip, max(1, -(-84 // pictures.shape[1])))), "--png", ".png")


def print_direction(result: dict) -> None:
    where = "the test set encoded here" if result["codes"] == "encoded" else "the codes stored with the checkpoint"
    a, b = result["group_sizes"]
    print(f"v({result['from']} -> {result['to']}): length {result['norm']:.3f}, from {a:,} codes of {result['from']} "
          f"and {b:,} of {result['to']} ({where}).")
    if "cosines" in result:
        print("Cosine with the other factors' vectors: "
              + "; ".join(f"{k} {c:+.2f}" for k, c in result["cosines"].items()) + ".")
    if result["png"]:
        print(f"Wrote {result['png']}: {len(result['alphas'])} steps from {result['from']}'s mean code to "
              f"{result['to']}'s.")
