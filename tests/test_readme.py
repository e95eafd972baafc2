"""The README's callback example runs as printed, in a folder outside the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_readme_callback_example_runs(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S)
    assert example, "README has a python example"
    script = tmp_path / "example.py"
    script.write_text(example.group(1) + "\nprint('global_step', trainer.global_step)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "global_step 96" in proc.stdout  # 16 batches / 2 accumulated x 12 epochs
