"""Import layering, read from the source (``ast``), so a wrong import fails here, not in a user's
install: ``callbacks`` -> Lightning only; ``lit_common`` -> ``callbacks``; each model package ->
``lit_common`` and ``callbacks``, never another model; ``train.py`` -> ``lit_common`` only (models
through the configs' ``_target_``); ``app.py`` (the demo page) composes the models' tabs, so it
may import them all. Gradio only in the models' ``demo.py`` and in ``app.py``. Tests and bench may
import anything."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = {"lit_common"}
# Project packages: `callbacks`, the shared package and every model package (lit_* with an
# __init__.py), found on disk so a third model is checked without editing this file.
PACKAGES = sorted(
    p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"
)
MODELS = sorted(set(PACKAGES) - SHARED - {"callbacks"})


def allowed(package: str) -> set[str]:
    """The project packages ``package`` may import (itself included)."""
    if package == "callbacks":
        return {"callbacks"}
    if package in SHARED:
        return {package, "callbacks"}
    if package == "train":
        return set(SHARED)
    if package == "app":
        return {*SHARED, *MODELS}
    return {package, "callbacks", *SHARED}


def project_imports(path: Path) -> set[tuple[int, str]]:
    """(line, top-level package) of every import of a project package in ``path``, including
    imports inside functions (a lazy import still ties the packages together)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES or top in ("train", "app"):
                found.add((node.lineno, top))
    return found


def sources() -> list[tuple[str, Path]]:
    files = [("train", ROOT / "train.py"), ("app", ROOT / "app.py")]
    for package in PACKAGES:
        files += [(package, p) for p in sorted((ROOT / package).rglob("*.py"))]
    return files


def test_the_project_has_the_expected_packages() -> None:
    """Guards the test itself: if discovery found nothing, every check below would pass."""
    assert {"callbacks", "lit_common", "lit_seq2seq", "lit_devise"} <= set(PACKAGES)
    assert {"lit_seq2seq", "lit_devise"} <= set(MODELS)


@pytest.mark.parametrize(("package", "path"), sources(), ids=lambda v: str(v))
def test_imports_follow_the_layers(package: str, path: Path) -> None:
    wrong = sorted(
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for line, top in project_imports(path)
        if top not in allowed(package)
    )
    assert not wrong, f"{package} may import only {sorted(allowed(package))}: {wrong}"


def test_the_checker_sees_lazy_and_dotted_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nimport lit_seq2seq.vocab\ndef f():\n    from lit_devise import knn\n"
        "from . import sibling\n"
    )
    assert project_imports(source) == {(2, "lit_seq2seq"), (4, "lit_devise")}


# What `pip install lit-translate-devise` (no extras) brings: torch, Lightning (with its own
# lightning_utilities and typing_extensions) and NumPy; matplotlib only for `callbacks.plot`.
CALLBACK_DEPENDENCIES = {"torch", "pytorch_lightning", "lightning", "lightning_utilities",
                         "typing_extensions", "numpy", "matplotlib"}  # fmt: skip


def test_callbacks_need_only_torch_lightning_and_numpy() -> None:
    found = set()
    for path in sorted((ROOT / "callbacks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {(path.name, a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add((path.name, node.module.split(".")[0]))
    other = sorted(
        (name, top)
        for name, top in found
        if top not in sys.stdlib_module_names and top not in {"callbacks", *CALLBACK_DEPENDENCIES}
    )
    assert not other, f"callbacks/ imports beyond torch, Lightning and NumPy: {other}"
    assert ("plot.py", "matplotlib") in found and ("one_cycle.py", "torch") in found


def imported_tops(path: Path) -> set[str]:
    """Top-level names of every import in ``path`` (lazy ones included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_gradio_only_in_the_demo_modules() -> None:
    """The page is an optional extra: the core, the callbacks and the models' other modules must
    import without Gradio; each model's tab lives in its own ``demo.py``."""
    users = sorted(
        str(path.relative_to(ROOT))
        for _, path in sources()
        if {"gradio", "gradio_client"} & imported_tops(path)
    )
    assert users == ["app.py", "lit_devise/demo.py", "lit_seq2seq/demo.py"]
