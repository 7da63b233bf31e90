"""The sidebar's model card: the tab's current model on every page, refreshing itself while a job trains; below
it the server's running jobs and the teacher key (pages/ui/job_access.py). (The links to the pages above it are
the shell's, pages/ui/shell.py.)"""
from __future__ import annotations

import math

import streamlit as st

from pages.ui.current_model import current_view, following_job, starting_job
from pages.ui.downloads import model_download
from pages.ui.job_access import running_jobs, teacher_key_box
from pages.ui.job_controls import card_controls
from vae.data import describe_shape
from vae.training.view import ModelView

# The card refreshes this often while a job trains: its epoch count and test ELBO change once an epoch,
# and each fragment rerun costs the browser CPU that, on a 2-core laptop, training loses.
CARD_SECONDS = 5.0


def describe_view(view: ModelView) -> dict[str, str]:
    """The card's rows."""
    elbo = view.test_metrics.get("elbo", math.nan)
    return {
        "Dataset": view.dataset,
        "Images": describe_shape(view.model_config.image_shape),
        "Latent dim": str(view.model_config.latent_dim),
        "Architecture": f"{view.model_config.arch} {'-'.join(map(str, view.model_config.hidden))}",
        "Epochs": str(view.epochs),
        "Test −ELBO": "—" if math.isnan(elbo) else f"{elbo:.1f} {view.model_config.elbo_unit}",
    }


def sidebar_card() -> None:
    """The current model, on every page (it refreshes itself while a job trains), the jobs the server trains now,
    and on a server with a teacher key, the box to enter it (pages/ui/job_access.py)."""
    view = current_view()
    with st.sidebar:
        if (view is not None and view.live) or starting_job() is not None:
            st.fragment(run_every=CARD_SECONDS)(_card_body)()
        else:
            _card_body()
        running_jobs()
        teacher_key_box()


def _card_body() -> None:
    view = current_view()
    with st.container(border=True, key="model_card"):
        starting = starting_job() if view is None else None
        if starting is not None:
            st.markdown(f"**{starting.name}** :green-badge[● starting]")
            st.caption("Loading data and building the model…")
            return
        if view is None:
            st.markdown("**No model loaded**")
            st.caption("Load or train one on the Home page.")
            return
        badge = ":green-badge[● training live]" if view.live else ":gray-badge[checkpoint]"
        st.markdown(f"**{view.name}** {badge}")
        rows = describe_view(view)
        if view.train_config is not None and (view.train_config.beta != 1 or view.train_config.recon_weight != 1):
            rows["β / recon weight"] = f"{view.train_config.beta:g} / {view.train_config.recon_weight:g}"
        if view.train_config is not None and view.train_config.warmup_epochs > 0:
            rows["β warm-up"] = f"{view.train_config.warmup_epochs:g} epochs"
        st.markdown("\n".join(f"- {k}: **{v}**" for k, v in rows.items()))
        model_download(view, key="card_download")
        if view.live:
            job = following_job()
            if job is not None:
                card_controls(job)
