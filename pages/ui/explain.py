"""Shared by the teaching views (not a page of its own): "The math" expander, filled in with a
model's own numbers. The numbers and equations come from vae/analysis/teaching.py; this only lays them out."""
from __future__ import annotations

import streamlit as st

from vae.config import TrainConfig
from vae.analysis.teaching import LossNumbers, loss_numbers, math_lines


def math_expander(history: list[dict], test_metrics: dict[str, float], train_cfg: TrainConfig | None,
                  latent_dim: int, expanded: bool = False) -> None:
    """The ELBO, the closed-form KL and the reparameterization trick, with this model's recon, KL,
    beta, reconstruction weight and -ELBO."""
    numbers = loss_numbers(history, test_metrics, train_cfg)
    with st.expander("The math", expanded=expanded, icon=":material/functions:"):
        for text, latex in math_lines(numbers, latent_dim):
            st.markdown(text)
            st.latex(latex)
        if numbers is None:
            st.caption("The numbers appear once the model has trained for a few steps.")


def usage_note(usage, quiet=st.caption) -> None:
    """A latent_usage result in words: a warning when the posterior collapsed, else `quiet`."""
    if usage.collapsed:
        st.warning(usage.sentence(), icon=":material/compress:")
    else:
        quiet(usage.sentence())


def numbers_rows(numbers: dict[str, LossNumbers | None]) -> list[dict]:
    """One table row per model for the Compare page: the terms, the weights, what was minimised."""
    rows = []
    for name, n in numbers.items():
        if n is None:
            rows.append({"model": name})
            continue
        rows.append({"model": name, "recon R": round(n.recon, 2), "KL": round(n.kl, 2), "β": n.beta,
                     "w": n.recon_weight, "w·R + β·KL": round(n.objective, 2), "−ELBO = R + KL": round(n.neg_elbo, 2),
                     "from": n.source})
    return rows
