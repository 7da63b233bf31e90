"""Links that reopen a view: the URL's query parameters record what the tab shows, so a copied link opens the same
view for anyone on the same server.

    model  a checkpoint in the checkpoints folder, by its name (default-mnist-20d), or a running job (job:3); an
           upload is not on the server, so its link leaves the model out
    plane  the pad's two dimensions, as the page numbers them (3,7 for z3 across, z7 up); latent spaces over 2-D
    point  the pad's released point on that plane (1.25,-0.5), to 4 decimals
    hold   the test image whose code the pad holds the other dimensions at (absent: the prior's centre)
    dot    the scatter's picked test image
    start  the traversals' start: a test image, or prior

The parameters are listed once, in PARAMS, with the session entries a link sets. The pages report what they show
(show), the shell puts it in the URL on every run (a page switch empties the URL) and reads a link once, when a
session opens with one. A link's values are untrusted text: what does not fit the model is left out, in one
sentence, and a model is only ever a plain checkpoint name inside the folder (vae.checkpoint.checkpoint_path) or a
job id of this server."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from pages.ui.current_model import ModelRef, ModelUnavailable, current_view, open_model, use_source
from pages.ui.encodings import test_set_size
from pages.ui.explore import EXPLORE_CODES, PAD_LIMIT
from pages.ui.places import checkpoint_dir, registry
from vae import checkpoint as ckpt_io

MODEL = "model"
JOB_PREFIX = "job:"
JOB_ID = re.compile(r"[0-9]{1,9}(\.[0-9]{1,4})?")  # the registry's ids: "3", a group's member "3.2"
PRIOR = "prior"
DECIMALS = 4  # a point to 1e-4 of a prior standard deviation: the picture does not change, the URL stays short
MAX_TEXT = 200  # a longer value is not read at all
INT_TEXT = re.compile(r"\s*-?[0-9]{1,9}\s*")
# The radios' options a link picks (their pages show them as they are).
HOLD_IMAGE = "the code of a test image"
START_IMAGE, START_PRIOR = "a test image", "the prior's centre"

RECORD = "view_link"  # {"source": the model_source the values belong to, "values": {name: URL text}}
OPENED = "view_link_opened"  # (the page the session opened at, the sentences about its link)


# --- the values as URL text -----------------------------------------------------------------------------

def number_text(value: float) -> str:
    """A coordinate to DECIMALS places, without trailing zeros or a negative zero: 1.25, -0.5, 0."""
    text = f"{float(value):.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse_numbers(text: str, count: int, kind: type) -> list | None:
    """count comma-separated ints or finite floats, or None when the text is anything else."""
    parts = text.split(",") if len(text) <= MAX_TEXT else []
    if len(parts) != count:
        return None
    if kind is int:
        return [int(p) for p in parts] if all(INT_TEXT.fullmatch(p) for p in parts) else None
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def parse_plane(text: str | None, latent_dim: int) -> tuple[int, int] | None:
    """A plane's two distinct dimensions, 0-based, from "3,7" (1-based, as z3, z7); None where it does not fit."""
    dims = None if text is None or latent_dim <= 2 else parse_numbers(text, 2, int)
    if dims is None or dims[0] == dims[1] or not all(1 <= d <= latent_dim for d in dims):
        return None
    return dims[0] - 1, dims[1] - 1


def parse_point(text: str, plane: tuple[int, ...]) -> list[float] | None:
    """The point's coordinates on the plane, each within the pad's +/- PAD_LIMIT; None where they do not fit."""
    z = parse_numbers(text, len(plane), float)
    return None if z is None or any(abs(v) > PAD_LIMIT for v in z) else [round(v, DECIMALS) for v in z]


def parse_index(text: str, images: int) -> int | None:
    """A test image's number, below images; None where it is not one."""
    index = parse_numbers(text, 1, int)
    return index[0] if index is not None and 0 <= index[0] < images else None


def pad_plane(latent_dim: int, text: str | None) -> tuple[int, ...]:
    """The pad's plane for a link: its plane where it fits, else z1, z2 (z1 alone in a 1-D space)."""
    return parse_plane(text, latent_dim) or ((0, 1) if latent_dim >= 2 else (0,))


# --- the parameters ---------------------------------------------------------------------------------------

class LinkFit:
    """What a link's values must fit: the model's latent size, the pad's plane, and the test images the pages
    number (counted when first asked: that may load the dataset)."""

    def __init__(self, view, plane_text: str | None):
        self.view, self.latent_dim = view, view.model_config.latent_dim
        self.plane = pad_plane(self.latent_dim, plane_text)

    @cached_property
    def images(self) -> int:
        return min(EXPLORE_CODES, test_set_size(self.view) or 0)


@dataclass(frozen=True)
class LinkParam:
    """One thing the URL records: its name there, the session entries a link sets, a page's value as URL text,
    and the session entries of a link's text (None: it does not fit the model)."""

    name: str
    keys: tuple[str, ...]
    text: Callable[[Any], str]
    entries: Callable[[str, LinkFit], dict | None]


def _plane_entries(text: str, fit: LinkFit) -> dict | None:
    dims = parse_plane(text, fit.latent_dim)
    return None if dims is None else {"sl_dim_x": dims[0], "sl_dim_y": dims[1]}


def _point_entries(text: str, fit: LinkFit) -> dict | None:
    z = parse_point(text, fit.plane)
    # The full code comes with the pad's next release; until then the pad starts at z on its plane.
    return None if z is None else {"latent_point": {"dims": list(fit.plane), "z": z, "code": None}}


def _hold_entries(text: str, fit: LinkFit) -> dict | None:
    index = parse_index(text, fit.images) if fit.latent_dim > 2 else None
    return None if index is None else {"sl_hold": HOLD_IMAGE, "sl_base_index": index}


def _dot_entries(text: str, fit: LinkFit) -> dict | None:
    index = parse_index(text, fit.images)
    return None if index is None else {"sc_index": index}


def _start_entries(text: str, fit: LinkFit) -> dict | None:
    if text.strip() == PRIOR:
        return {"tv_start": START_PRIOR}
    index = parse_index(text, fit.images)
    return None if index is None else {"tv_start": START_IMAGE, "tv_index": index}


PARAMS = {p.name: p for p in (
    LinkParam("plane", ("sl_dim_x", "sl_dim_y"), lambda dims: f"{dims[0] + 1},{dims[1] + 1}", _plane_entries),
    LinkParam("point", ("latent_point",), lambda z: ",".join(map(number_text, z)), _point_entries),
    LinkParam("hold", ("sl_hold", "sl_base_index"), str, _hold_entries),
    LinkParam("dot", ("sc_index",), str, _dot_entries),
    LinkParam("start", ("tv_start", "tv_index"), str, _start_entries),
)}
NAMES = (MODEL, *PARAMS)


# --- the model ----------------------------------------------------------------------------------------------

def model_text(source) -> str | None:
    """The model's URL text: a checkpoint's name when it is a plain name in the checkpoints folder, a job's
    "job:<id>"; None for anything else (an upload, a file elsewhere)."""
    if not source:
        return None
    kind, ref = source
    if kind == "job":
        return JOB_PREFIX + ref
    if kind != "path":
        return None
    try:
        same = ckpt_io.checkpoint_path(Path(ref).stem, checkpoint_dir(), overwrite=True) == Path(ref).resolve()
    except (ckpt_io.CheckpointError, OSError):
        return None
    return Path(ref).stem if same else None


def link_source(text: str) -> tuple[ModelRef | None, str]:
    """The model a link names and, when it names none this server has, how to say so (completed by the caller
    with what is shown instead)."""
    if text.startswith(JOB_PREFIX):
        job_id = text[len(JOB_PREFIX):]
        if JOB_ID.fullmatch(job_id) and registry().get(job_id) is not None:
            return ModelRef("job", job_id), ""
        return None, ("The link names a training job this server no longer runs" if JOB_ID.fullmatch(job_id)
                      else "The link's model is not a job of this server")
    try:
        path = ckpt_io.checkpoint_path(text, checkpoint_dir(), overwrite=True)
    except ckpt_io.CheckpointError:
        return None, "The link's model is not a checkpoint name"
    if not path.is_file():
        return None, f"The link names model `{path.stem}`, which is not on this server"
    try:
        open_model(ModelRef("path", str(path)))
    except (ModelUnavailable, ckpt_io.CheckpointError):
        return None, f"The link names model `{path.stem}`, which could not be opened"
    return ModelRef("path", str(path)), ""


def open_link_model(text: str) -> str | None:
    """Opens the model a link names; else the sentence saying so, and the tab keeps its model."""
    source, why = link_source(text.strip()[:MAX_TEXT])
    if source is not None:
        use_source(source)
        return None
    view = current_view()
    return why + (f"; showing {view.name} instead." if view is not None else "; load or train one on the Home page.")


# --- reading a link, keeping the URL ----------------------------------------------------------------------

def link_values() -> dict[str, str]:
    """The URL's values of the parameters this module knows (the last of each, as text)."""
    return {name: st.query_params.get(name) for name in NAMES if st.query_params.get(name) is not None}


def read_link(given: dict[str, str]) -> list[str]:
    """Sets the session entries of a link's values (the model first, the others checked against it); returns
    the sentences about what was left out."""
    notes = [note] if MODEL in given and (note := open_link_model(given[MODEL])) else []
    view = current_view()
    if view is None:
        return notes
    fit, values, left_out = LinkFit(view, given.get("plane")), _record(), []
    for name, param in PARAMS.items():
        if name not in given:
            continue
        entries = param.entries(given[name], fit)
        if entries is None:
            left_out.append(name)
            continue
        st.session_state.update(entries)
        values[name] = given[name].strip()
    if left_out:
        notes.append(f"This link's {' and '.join(left_out)} do{'es' if len(left_out) == 1 else ''} not fit {view.name}, "
                     "so the page shows its own instead.")
    return notes


def open_link(page_path: str) -> None:
    """Once per session: the view its URL records (the link it opened); while the tab stays on that page, the
    sentences saying what of it could not be shown."""
    if OPENED not in st.session_state:
        given = link_values()
        st.session_state[OPENED] = (page_path, read_link(given) if given else [])
    opened_at, notes = st.session_state[OPENED]
    if opened_at == page_path:
        for note in notes:
            st.info(note, icon=":material/link:")


def _record() -> dict[str, str]:
    """The values the pages reported for the tab's model (a new model starts afresh)."""
    source = st.session_state.get("model_source")
    record = st.session_state.get(RECORD)
    if record is None or record["source"] != source:
        record = st.session_state[RECORD] = {"source": source, "values": {}}
    return record["values"]


def keep_url() -> None:
    """The URL says what the tab shows: its model and what the pages reported, beside parameters that are not
    ours (?present=1). Sent only when it differs: a browser rewrite costs a history entry, not a rerun."""
    current = st.query_params.to_dict()
    wanted = {k: v for k, v in current.items() if k not in NAMES}
    model = model_text(st.session_state.get("model_source"))
    wanted.update(({MODEL: model} if model else {}) | _record())
    if wanted != current:
        st.query_params.from_dict(wanted)


def show(name: str, value) -> None:
    """A page reports what it shows of one parameter now (None: nothing of that kind); the URL follows."""
    values = _record()
    text = None if value is None else PARAMS[name].text(value)
    if values.get(name) != text:
        if text is None:
            values.pop(name, None)
        else:
            values[name] = text
        keep_url()
