"""What every benchmark script shares: the machine line, medians, and replacing one section
of docs/benchmarks.md (or docs/reliability.md) while keeping the others."""
from __future__ import annotations

import os
import platform
import re
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else (platform.processor() or "unknown CPU")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def machine_line() -> str:
    """One line naming the date, CPU, cores, torch and thread count of this run."""
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{date}; {os.cpu_count()} cores ({cpu_model()}), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; load average at the end {load_average()}")


def median(values) -> float:
    return float(statistics.median(values))


def replace_section(section: str, path: Path = BENCHMARKS_MD) -> None:
    """Writes `section` (its first line is its '## ' heading) into path, replacing only the old one."""
    heading = section.splitlines()[0].rstrip()
    title = "# Benchmarks\n" if path.name == "benchmarks.md" else f"# {path.stem.title()}\n"
    text = path.read_text() if path.exists() else title
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
