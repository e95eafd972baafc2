"""Dotted paths (``_target_``) resolve to their object or fail in one line that says why."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from lit_common.dotted import TargetError, locate


def test_objects_and_typos(tmp_path: Path) -> None:
    import torch

    assert locate("torch.optim.Adam") is torch.optim.Adam
    for target, why in [
        ("torch.optim.Adamm", "torch.optim has no 'Adamm'"),
        ("no_such_package.X", "no module named 'no_such_package'"),
        ("torch..Adam", "'torch..Adam' is not a dotted path"),
        ("", "'' is not a dotted path"),
    ]:
        with pytest.raises(TargetError, match=f"^{re.escape(why)}"):
            locate(target)


def test_a_missing_dependency_is_named_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that exists but imports an uninstalled package (a model whose extra is not
    installed) names that package, instead of "has no 'datamodule'"."""
    package = tmp_path / "needs_extra"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "datamodule.py").write_text("import not_installed_xyz\nclass DM: pass\n")
    (package / "broken.py").write_text("raise ImportError('cannot import name x from y')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    needs = "No module named 'not_installed_xyz' (a package it needs is not installed)"
    with pytest.raises(TargetError, match=re.escape(needs)):
        locate("needs_extra.datamodule.DM")
    with pytest.raises(TargetError, match=r"^importing needs_extra\.broken.* failed: ImportError"):
        locate("needs_extra.broken.X")
    for name in [m for m in sys.modules if m.startswith("needs_extra")]:
        monkeypatch.delitem(sys.modules, name)
