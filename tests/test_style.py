"""Plain ruff (settings: pyproject.toml's [tool.ruff]) lints and checks formatting in CI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff(command: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *command], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_callbacks_import_nothing_from_this_repository() -> None:
    sources = "\n".join(p.read_text() for p in (REPO_ROOT / "callbacks").glob("*.py"))
    for package in ("lit_seq2seq", "lit_devise", "train", "tests"):
        assert f"import {package}" not in sources and f"from {package}" not in sources


def test_license_and_typing_markers_ship() -> None:
    """The README invites copying callbacks/: the Apache-2.0 text setup.cfg declares is there,
    and each package carries py.typed (PEP 561) as package data."""
    assert (
        "Apache License\n                           Version 2.0"
        in (REPO_ROOT / "LICENSE").read_text()
    )
    setup = (REPO_ROOT / "setup.cfg").read_text()
    assert "license_files = LICENSE" in setup and "* = py.typed" in setup
    for package in ("callbacks", "lit_common", "lit_seq2seq", "lit_devise"):
        assert (REPO_ROOT / package / "py.typed").is_file(), package


def test_shared_package_imports_no_model() -> None:
    """lit_common sits below both models: it may use callbacks, never lit_seq2seq, lit_devise or
    train: the shared core sits below both models."""
    import ast

    for path in (REPO_ROOT / "lit_common").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in {"lit_seq2seq", "lit_devise", "train", "tests"}, (path, name)


def test_plain_install_brings_only_torch_and_lightning() -> None:
    """`pip install <project>` without extras needs only the callbacks' packages: torch,
    Lightning, NumPy and what they require, none of the models'. Resolved offline from setup.cfg
    and the installed packages' own metadata (each requirement without an extra, followed
    recursively), so it needs no package index."""
    import configparser
    import re
    from importlib import metadata

    from packaging.requirements import Requirement

    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    direct = [line for line in config["options"]["install_requires"].splitlines() if line.strip()]
    names: set[str] = set()
    todo = [Requirement(line).name for line in direct]
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop().lower())
        if name in names:
            continue
        names.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an optional platform package this machine did not install
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    assert {"torch", "pytorch-lightning", "numpy"} <= names
    models_only = {"fasttext", "faiss-cpu", "spacy", "wandb", "hydra-core", "sacrebleu",
                   "torchvision", "matplotlib", "tensorboardx", "optuna"}  # fmt: skip
    assert not names & models_only, names & models_only
