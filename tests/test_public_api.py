"""The library's short public API (vae/__init__.py) works as README.md shows it: README's "From Python"
block is run as a script, from a fresh folder, and every name vae exports appears in it."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import vae
from tests.conftest import ROOT

MARKER = "<!-- api-example -->"


def readme_example() -> str:
    """The python block after README's api-example marker."""
    text = (ROOT / "README.md").read_text()
    found = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", text, re.S)
    assert found, f"README.md has no ```python block after {MARKER}"
    return found.group(1)


def test_every_exported_name_is_shown_in_readme():
    code = readme_example()
    missing = [name for name in vae.__all__ if not re.search(rf"\bvae\.{name}\b", code)]
    assert not missing, f"README's example does not show {missing}"
    assert sorted(vae.__all__) == sorted(n for n in dir(vae) if not n.startswith("_") and n in vae.__all__)


def test_readme_example_runs(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(ROOT / "checkpoints" / "default-shapes-2d.pt", tmp_path / "checkpoints")
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAE_DATA_DIR": str(tmp_path / "data")}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "codes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = vae.load_checkpoint(tmp_path / "checkpoints" / "notebook-shapes.pt")
    assert saved.epoch == 1 and saved.model_config.latent_dim == 2
    said = run.stdout.strip().splitlines()
    assert len(said) == 3 and all(line.endswith(".") and "Traceback" not in line for line in said), said
