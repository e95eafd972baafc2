"""The schedules figure: a real PNG with the three panels drawn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

from tests.conftest import REPO_ROOT


def test_plot_cli_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "figs" / "schedules.png"
    cmd = [sys.executable, "-m", "callbacks.plot", "--out", str(out), "--total-steps", "300"]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (320, 1200)
    assert image[..., :3].std() > 0.05, "not a blank canvas"


def test_plot_cli_refuses_bad_numbers_and_paths_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from callbacks.plot import main

    for flags, message in [
        (["--total-steps", "0"], "'0': expected an integer in [1, 10000000]"),
        (["--total-steps", "-5"], "'-5': expected an integer"),
        (["--max-lr", "nan"], "'nan': expected a finite number > 0"),
        (["--max-lr", "inf"], "'inf': expected a finite number > 0"),
        (["--out", str(tmp_path)], "expected a file name ending in .png, .pdf or .svg"),
        (["--out", str(tmp_path / "noext")], "expected a file name ending in"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(flags)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []
