"""Lint and format with the [tool:ruff] settings of setup.cfg, so CI holds the style."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff(command: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, ".ci/ruff.py", *command], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_callbacks_import_nothing_from_this_repository() -> None:
    sources = "\n".join(p.read_text() for p in (REPO_ROOT / "callbacks").glob("*.py"))
    for package in ("lit_seq2seq", "lit_devise", "train", "tests"):
        assert f"import {package}" not in sources and f"from {package}" not in sources
