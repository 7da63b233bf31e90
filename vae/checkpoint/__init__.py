"""Checkpoints a user can trust: a plain dict written atomically, read back with
`torch.load(weights_only=True)` and checked key by key, so no file can run code and any fault is one
readable sentence in a CheckpointError.

format.py: what a checkpoint holds and the checks on it; files.py: writing and reading a file; listing.py:
names and the folder's listing; reservation.py: one run writing a file at a time; replay.py and codes.py: the
training replay and the stored codes it may carry.
"""
from vae.checkpoint.files import (MAX_ARCHIVE_ENTRIES, MAX_CHECKPOINT_BYTES, TEMP_SUFFIX, build_payload, load,
                                  payload_bytes, remove_stale_temp_files, save)
from vae.checkpoint.format import FORMAT, FORMAT_VERSION, Checkpoint, CheckpointError
from vae.checkpoint.listing import (CheckpointInfo, checkpoint_path, describe, list_checkpoints, reserve_checkpoint,
                                    unique_checkpoint_path)
from vae.checkpoint.reservation import (CheckpointExists, CheckpointInUse, Reservation, UnwritableFolder, in_use,
                                        reserve)

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_ARCHIVE_ENTRIES", "MAX_CHECKPOINT_BYTES", "TEMP_SUFFIX", "Checkpoint",
           "CheckpointError", "CheckpointExists", "CheckpointInUse", "CheckpointInfo", "Reservation", "UnwritableFolder",
           "build_payload", "checkpoint_path", "describe", "in_use", "list_checkpoints", "load", "payload_bytes",
           "remove_stale_temp_files",
           "reserve", "reserve_checkpoint", "save", "unique_checkpoint_path"]
