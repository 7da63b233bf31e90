"""Headless command line: `python -m vae train | eval | replay | share | direction | list`. Training, evaluation and
the listing are here; the commands that make something to look at (replay, share, direction) are pictures.py's, and
what every command reads from its arguments is args.py's.

With --json the last line of stdout is exactly one JSON object; progress goes to stderr.
User mistakes (bad settings, unreadable checkpoints, missing data) exit 2 with one sentence.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

import torch

from vae import checkpoint as ckpt_io
from vae.analysis.disentangle import mutual_info_gap, probe_scores
from vae.analysis.encoding import encode_dataset
from vae.checkpoint.format import changes_of, describe_change
from vae.checkpoint.replay import MAX_FRAMES
from vae.cli.args import UsageError, data_dir_of, int_arg, test_split
from vae.cli.pictures import add_direction_parser, cmd_direction, cmd_replay, cmd_share, print_direction
from vae.config import LIKELIHOOD_NAMES, ConfigError, ModelConfig, Setting, TrainConfig, configs_from, settings_of
from vae.data import DatasetUnavailable, load_for
from vae.nets.loss import iw_log_likelihood
from vae.nets.model import pick_device
from vae.training.distributed import World, digests, leave, world_from_env
from vae.training.replay import ReplayRecorder
from vae.training.trainer import Trainer, TrainingDiverged, evaluate_model

DEFAULT_CHECKPOINT_DIR = Path("checkpoints")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: usage + one line, exit 2
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vae", description="Train, evaluate and list Latent Explorer VAEs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a VAE and save a checkpoint",
                       description="Every setting is checked before any data loads.")
    t.add_argument("--data-dir", default=None, help="folder with torchvision datasets (else $VAE_DATA_DIR, else ./data); "
                                                     "with --dataset folder, the folder of images, one subfolder per class")
    t.add_argument("--download", action="store_true", help="let torchvision download missing files")
    for name, setting in setting_options().items():
        if setting.kind == "switch":
            t.add_argument(setting.flag, dest=name, action="store_true", help=setting.describe())
        else:
            t.add_argument(setting.flag, dest=name, default=None, metavar=setting.example or name.upper(),
                           help=f"{setting.describe()} Default: {_default_text(name)}.")
    t.add_argument("--out", default=None, help="checkpoint path (default checkpoints/<dataset>-<dim>d.pt, never overwriting)")
    t.add_argument("--resume", default=None, help="continue training from this checkpoint")
    t.add_argument("--notes", default="", help="a line stored in the checkpoint, e.g. where the data came from")
    t.add_argument("--force", action="store_true", help="let --out or --resume overwrite a shipped default model")
    t.add_argument("--slim", action="store_true", help="leave the optimizer state out of the final checkpoint")
    t.add_argument("--no-replay", action="store_true",
                   help="record no training replay (by default each epoch keeps 500 test codes and an 8x8 manifold)")
    t.add_argument("--replay-frames", default=None, metavar="N",
                   help=f"keep at most N replay frames, spread evenly in log(1 + epoch), the first and last included (2-{MAX_FRAMES}, "
                        f"default {MAX_FRAMES}): a smaller file")
    t.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a checkpoint on its dataset's test split")
    e.add_argument("path")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--iw-samples", default="0", help="k for the importance-weighted log-likelihood (0: skip)")
    e.add_argument("--limit", default=None, help="evaluate only the first N test images")
    e.add_argument("--factors", action="store_true",
                   help="also score the codes against the data's known factors (the built-in shapes): the Mutual "
                        "Information Gap (Chen et al. 2018), overall and per factor, and a linear probe's R^2 per factor")
    e.add_argument("--json", action="store_true")

    r = sub.add_parser("replay", help="export a checkpoint's training replay as an animated GIF")
    r.add_argument("path")
    r.add_argument("--gif", required=True, help="the GIF to write: decoded manifold and test codes, one frame per epoch")
    r.add_argument("--frame-ms", default="700", help="milliseconds per frame (the last one stays longer)")
    r.add_argument("--json", action="store_true")

    sh = sub.add_parser("share", help="write a model's explorer as one HTML file that opens from disk, offline")
    sh.add_argument("path")
    sh.add_argument("--out", required=True, help="the HTML file to write (the pad, the input panel, the manifold "
                    "and a model card; the codes the checkpoint stores, and no image of the dataset unless asked)")
    sh.add_argument("--with-images", action="store_true", help="also put the thumbnails of the test images whose "
                    "codes it holds in the file (hovering a dot shows its image); needs the dataset on this machine")
    sh.add_argument("--data-dir", default=None, help="with --with-images: the folder of the test images")
    sh.add_argument("--json", action="store_true")

    add_direction_parser(sub)
    ls = sub.add_parser("list", help="list the checkpoints in a folder")
    ls.add_argument("directory", nargs="?", default=str(DEFAULT_CHECKPOINT_DIR))
    ls.add_argument("--json", action="store_true")
    return parser


def setting_options() -> dict[str, Setting]:
    """The model's and the training's settings, each one a `train` option (vae/config.py declares them)."""
    return {**settings_of(ModelConfig), **settings_of(TrainConfig)}


def _default_text(name: str) -> str:
    config = ModelConfig if name in settings_of(ModelConfig) else TrainConfig
    value = next(f.default for f in dataclasses.fields(config) if f.name == name)
    return "all" if value is None else str(value)


def configs_from_args(args) -> tuple[ModelConfig, TrainConfig]:
    """Both configs from the options given (the others keep their declared defaults); a bad value raises
    ConfigError with the readable message."""
    given = {name: getattr(args, name) for name in setting_options() if getattr(args, name) not in (None, False)}
    return configs_from(given, data_dir=args.data_dir)


class ProgressBar:
    """One stderr line redrawn in place: epoch, bar, recon, KL, samples/s."""

    def __init__(self, total_steps: int, enabled: bool):
        self.total, self.enabled = max(total_steps, 1), enabled
        self.redraw = enabled and sys.stderr.isatty()  # a log file gets only the per-epoch lines

    def on_step(self, trainer: Trainer, record: dict) -> None:
        if not self.redraw:
            return
        frac = min(trainer.step / self.total, 1.0)
        bar = "#" * int(frac * 24) + "." * (24 - int(frac * 24))
        sys.stderr.write(
            f"\repoch {trainer.epoch + 1}/{trainer.cfg.epochs} [{bar}] recon {record['recon']:7.2f}  "
            f"KL {record['kl']:6.2f}  {record['samples_per_sec']:8,.0f} samples/s"
        )
        sys.stderr.flush()

    def on_epoch_end(self, trainer: Trainer, record: dict) -> None:
        if self.enabled:
            test = f"  test -ELBO {record['test_elbo']:.2f}" if "test_elbo" in record else ""
            sys.stderr.write(
                f"\repoch {record['epoch']}/{trainer.cfg.epochs} done in {record['seconds']:.1f}s: "
                f"recon {record['train_recon']:.2f} KL {record['train_kl']:.2f}{test}{' ' * 20}\n"
            )


def _reserve_output(args, train_cfg: TrainConfig, model_cfg: ModelConfig) -> ckpt_io.Reservation:
    """The checkpoint this run writes, reserved until it ends: --out, else the resumed file, else the next free
    checkpoints/<dataset>-<dim>d.pt. Another run writing it, or a folder that cannot take it, is one sentence."""
    if args.out or args.resume:
        return ckpt_io.reserve(args.out or args.resume)
    return ckpt_io.unique_checkpoint_path(f"{train_cfg.dataset}-{model_cfg.latent_dim}d", DEFAULT_CHECKPOINT_DIR)


def _prepare_trainer(args) -> tuple[Trainer, Path, ckpt_io.Reservation | None]:
    """The trainer, its checkpoint's path and, in the process that saves it, the checkpoint's reservation,
    taken before any data loads."""
    resumed = ckpt_io.load(args.resume) if args.resume else None
    if resumed is not None:
        if resumed.train_config is None:
            raise UsageError(f"{args.resume} has no training settings to resume from; train a new model instead.")
        model_cfg = resumed.model_config
        epochs = args.epochs if args.epochs is not None else TrainConfig().epochs
        data_dir = data_dir_of(args, resumed.train_config)
        train_cfg = TrainConfig(**{**resumed.train_config.to_dict(), "epochs": epochs, "data_dir": data_dir})
    else:
        model_cfg, train_cfg = configs_from_args(args)
        if train_cfg.dataset == "folder" and not args.data_dir:
            raise UsageError("--dataset folder needs --data-dir: the folder of your images, one subfolder per class.")
    world = world_from_env(pick_device(train_cfg.device))  # one process, or torchrun's N
    reservation = _reserve_output(args, train_cfg, model_cfg) if world.main else None  # rank 0 alone saves
    try:
        if reservation is not None and args.resume and reservation.path == Path(args.resume).resolve():
            resumed = ckpt_io.load(reservation.path)  # its latest epoch: another run may have written it meanwhile
        # Under torchrun only rank 0 may download: the others wait for it, then read the same files.
        train, test = _load_splits(args, train_cfg, model_cfg, world)
        trainer = Trainer(model_cfg, train_cfg, train, test, world=world)
        if resumed is not None:
            trainer.restore(resumed)
    except BaseException:
        if reservation is not None:
            reservation.release()
        raise
    out = reservation.path if reservation is not None else Path(args.out or args.resume or DEFAULT_CHECKPOINT_DIR)
    return trainer, out, reservation


def _load_splits(args, train_cfg: TrainConfig, model_cfg: ModelConfig, world: World):
    import torch.distributed as dist

    if world.distributed and not world.main:
        dist.barrier()
    splits = tuple(load_for(train_cfg, split, download=args.download, image_shape=model_cfg.image_shape)
                   for split in ("train", "test"))
    if world.distributed and world.main:
        dist.barrier()
    return splits


def cmd_train(args) -> dict:
    frames = int_arg("--replay-frames", args.replay_frames, 2, MAX_FRAMES) or MAX_FRAMES
    trainer, out, reservation = _prepare_trainer(args)
    world = trainer.world
    lost = (f"another training process ended or the launcher stopped the run, so rank {world.rank} stopped too; "
            f"the last finished epoch is saved in {out}.")
    if world.distributed:
        def stop(*_):  # torchrun stops the other processes with SIGTERM when one of them dies
            raise PeerLost(lost)

        signal.signal(signal.SIGTERM, stop)
    try:
        if not world.main:  # the other ranks train, and only train: rank 0 reports and saves
            trainer.run()
            return {"command": "train", "rank": world.rank, "rank_weights": digests(trainer.model, world)}
        return _train_and_report(args, trainer, out, frames)
    except RuntimeError as e:  # a collective whose peer is gone (gloo, NCCL)
        if not world.distributed:
            raise
        detail = re.sub(r"^\[[^\]]*\]\s*", "", str(e).strip().splitlines()[0] if str(e).strip() else "").split(". ")[0]
        raise PeerLost(f"{lost[:-1]} ({detail[:120].rstrip('.')}).") from None
    finally:
        leave(world)
        if reservation is not None:
            reservation.release()


class PeerLost(Exception):
    """A distributed run lost one of its processes; the message is one sentence."""


def _train_and_report(args, trainer: Trainer, out: Path, frames: int) -> dict:
    notes = args.notes or trainer.train_data.source
    # The replay first: the autosave below then writes each epoch's frame with it.
    replay = None if args.no_replay else ReplayRecorder(seed=trainer.cfg.seed, max_frames=frames).attach(trainer)
    bar = ProgressBar(trainer.steps_per_epoch * trainer.cfg.epochs, enabled=not args.quiet)
    trainer.add_callback("on_step", bar.on_step)
    trainer.add_callback("on_epoch_end", bar.on_epoch_end)
    # Autosave after every epoch, atomically: a crash loses at most one epoch; a failed save is one line
    # and training goes on (the next epoch tries again; the final save must work).
    trainer.add_callback("on_epoch_end", lambda tr, rec: _autosave(tr, notes, out))
    try:
        trainer.run()
    except KeyboardInterrupt:
        ckpt_io.save(trainer.checkpoint_payload(notes=notes), out)
        raise
    ckpt_io.save(trainer.checkpoint_payload(include_optimizer=not args.slim, notes=notes), out)
    test = trainer.latest_test_metrics()
    return {
        "command": "train", "checkpoint": str(out), "dataset": trainer.cfg.dataset,
        "image_shape": list(trainer.model_cfg.image_shape), "likelihood": trainer.model_cfg.likelihood,
        "latent_dim": trainer.model_cfg.latent_dim, "arch": trainer.model_cfg.arch,
        "hidden": list(trainer.model_cfg.hidden), "epochs": trainer.epoch, "steps": trainer.step,
        "test_elbo": test.get("elbo"), "test_recon": test.get("recon"), "test_kl": test.get("kl"),
        "train_seconds": trainer.train_seconds,
        "samples_per_sec": trainer.step and _samples_per_sec(trainer),
        "device": str(trainer.device),
        "replay_seconds": replay.seconds if replay else None,
        "world_size": trainer.world.size, "rank_weights": digests(trainer.model, trainer.world),
    }


def _autosave(trainer: Trainer, notes: str, out: Path) -> None:
    try:
        ckpt_io.save(trainer.checkpoint_payload(notes=notes), out)
    except ckpt_io.CheckpointError as e:
        print(f"warning: epoch {trainer.epoch} was not saved, training goes on: {e}", file=sys.stderr)


def _samples_per_sec(trainer: Trainer) -> float:
    epochs = [r for r in trainer.history if r["kind"] == "epoch"]
    seconds = sum(r.get("seconds", 0.0) for r in epochs)  # a stopped run's last record has none
    return len(trainer.x_train) * len(epochs) / seconds if seconds > 0 else math.nan


def cmd_eval(args) -> dict:
    ckpt = ckpt_io.load(args.path)
    test = test_split(args, ckpt)
    limit = int_arg("--limit", args.limit, 1, 10**7)
    x = test.float_images()[:limit] if limit else test.float_images()
    metrics = evaluate_model(ckpt.model, x)
    k = int_arg("--iw-samples", args.iw_samples, 0, 100_000)
    iw = None
    if k:
        g = torch.Generator().manual_seed(0)
        iw = float(torch.cat([iw_log_likelihood(ckpt.model, x[i:i + 500], k, g) for i in range(0, len(x), 500)]).mean())
    result = {
        "command": "eval", "checkpoint": args.path, "dataset": ckpt.dataset,
        "image_shape": list(ckpt.model_config.image_shape), "likelihood": ckpt.model_config.likelihood,
        "latent_dim": ckpt.model_config.latent_dim, "epochs": ckpt.epoch, "test_images": len(x),
        "test_elbo": metrics["elbo"], "test_recon": metrics["recon"], "test_kl": metrics["kl"],
        "iw_samples": k, "iw_ll": iw, "changes": changes_of(ckpt.history),
    }
    if args.factors:
        result.update(_factor_scores(ckpt, test, x))
    return result


def _factor_scores(ckpt, test, x: torch.Tensor) -> dict:
    """MIG (overall, per factor, the best dimension of each) and the linear probe's R^2 of the test codes."""
    factors = {k: v.numpy()[:len(x)] for k, v in test.factors.items()}
    if not factors:
        raise UsageError(f"{ckpt.dataset} has no known generative factors; --factors needs the built-in shapes "
                         "(shapes or shapes-color).")
    mu, _ = encode_dataset(ckpt.model, x)
    mig = mutual_info_gap(mu, factors)
    return {"mig": mig.mig, "mig_per_factor": dict(zip(mig.factors, map(float, mig.gaps))),
            "best_dimension": {f: int(d) + 1 for f, d in zip(mig.factors, mig.best_dims)},
            "probe_r2": probe_scores(mu, factors)}


def cmd_list(args) -> dict:
    infos = ckpt_io.list_checkpoints(args.directory)
    if not args.json:
        for i in infos:
            if i.error:
                print(f"{i.name:28s}  unreadable: {i.error}")
            else:
                print(f"{i.name:28s}  {i.dataset:13s}  z={i.latent_dim:<3d} {i.arch:4s}  epochs={i.epochs:<4d} "
                      f"test -ELBO={i.test_elbo:8.2f}  {i.created}"
                      + (f"  changed: {'; '.join(map(describe_change, i.changes))}" if i.changes else ""))
        if not infos:
            print(f"No checkpoints in {args.directory}.")
    return {"command": "list", "directory": args.directory, "checkpoints": [vars(i) for i in infos]}


def _unit(result: dict) -> str:
    return f"nats per image ({LIKELIHOOD_NAMES[result['likelihood']]})"


def _print_human(result: dict) -> None:
    if result["command"] == "train":
        print(f"Saved {result['checkpoint']}: test -ELBO {result['test_elbo']:.2f} {_unit(result)} "
              f"(recon {result['test_recon']:.2f}, KL {result['test_kl']:.2f}) after {result['epochs']} epochs, "
              f"{result['train_seconds']:.1f}s, {result['samples_per_sec']:,.0f} samples/s.")
    elif result["command"] == "replay":
        print(f"Wrote {result['gif']}: {result['frames']} frames (epochs {result['epochs'][0]}-{result['epochs'][-1]}), "
              f"{result['bytes'] / 1024:.0f} kB.")
    elif result["command"] == "share":
        print(f"Wrote {result['html']} ({result['bytes'] / 1e6:.1f} MB): open it in any browser, from disk, offline.")
    elif result["command"] == "direction":
        print_direction(result)
    elif result["command"] == "eval":
        iw = f", IW log-likelihood ({result['iw_samples']} samples) {result['iw_ll']:.2f}" if result["iw_ll"] is not None else ""
        print(f"{result['checkpoint']}: test -ELBO {result['test_elbo']:.2f} {_unit(result)} "
              f"(recon {result['test_recon']:.2f}, KL {result['test_kl']:.2f}){iw}.")
        if result["changes"]:
            print("Changed while it trained: " + "; ".join(map(describe_change, result["changes"])) + ".")
        if "mig" in result:
            print(f"MIG {result['mig']:.3f} over {result['test_images']:,} test codes. Per factor: "
                  + "; ".join(f"{f} gap {g:.3f} (z{result['best_dimension'][f]}), probe R^2 {result['probe_r2'][f]:.3f}"
                              for f, g in result["mig_per_factor"].items()) + ".")


def _check_paths(args) -> None:
    """Every path given is checked before any work: blank, a NUL byte, and for train the file it will write
    (a folder it can write to, never a shipped default without --force)."""
    for attr, what in (("path", "the checkpoint's path"), ("resume", "--resume"), ("out", "--out"), ("gif", "--gif"),
                       ("png", "--png"), ("data_dir", "--data-dir"), ("directory", "the folder")):
        value = getattr(args, attr, None)
        if value is not None and not value.strip():
            raise UsageError(f"{what} is blank; give a file name, e.g. checkpoints/default-shapes-2d.pt.")
        if value is not None and "\0" in value:
            raise UsageError(f"{what} contains a NUL character; type the path again.")
    if args.command == "train" and (args.out or args.resume):
        _check_output(Path(args.out or args.resume), args.force)


def _check_output(out: Path, force: bool) -> None:
    """The checkpoint train will write: its folder must take a file, and a shipped default is kept."""
    shipped = (Path(__file__).resolve().parents[2] / "checkpoints").resolve()
    target = out.expanduser().resolve()
    if target.parent == shipped and target.name.startswith("default-") and not force:
        raise UsageError(f"{out} is a shipped default model; choose another --out, or pass --force to overwrite it.")
    if target.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name ending in .pt.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=target.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"Cannot write a checkpoint into {target.parent} ({e.strerror or e}); choose another --out.") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_paths(args)
        result = {"train": cmd_train, "eval": cmd_eval, "replay": cmd_replay, "share": cmd_share,
                  "list": cmd_list, "direction": cmd_direction}[args.command](args)
    except (ConfigError, UsageError, ckpt_io.CheckpointError, DatasetUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: training failed: {e}", file=sys.stderr)
        return 1
    except PeerLost as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the last epoch's checkpoint was kept.", file=sys.stderr)
        return 130
    if "rank" in result:  # a distributed run's other ranks: rank 0 speaks for the run
        return 0
    if args.json:
        print(json.dumps(result, default=str))
    else:
        _print_human(result)
    return 0
