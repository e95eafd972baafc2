"""The schedules figure: a real PNG with the three panels drawn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image

from tests.conftest import REPO_ROOT


def test_plot_cli_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "figs" / "schedules.png"
    cmd = [sys.executable, "-m", "callbacks.plot", "--out", str(out), "--total-steps", "300"]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (320, 1200)
    assert image[..., :3].std() > 0.05, "not a blank canvas"
