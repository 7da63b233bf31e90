"""Latent Explorer: the app's shell (pages/ui/shell.py: page config, the navigation over pages/*.py, the
sidebar card) and nothing else."""
from pages.ui.shell import run_app

run_app()
