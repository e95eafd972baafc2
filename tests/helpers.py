"""Helpers several test files use: files in the formats the code reads, running `train.py`, and
running a command-line module's ``main`` in this process."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from PIL import Image

from tests.conftest import REPO_ROOT


def photo(path: Path, colour: tuple[int, int, int] = (200, 30, 30), size: int = 20) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size + 3), colour).save(path)
    return path


def make_kaggle(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "LOC_synset_mapping.txt").write_text("n01 tench, Tinca tinca\nn02 goldfish\n")
    data = root / "ILSVRC" / "Data" / "CLS-LOC"
    for wnid in ("n01", "n02"):
        for i in range(2):
            photo(data / "train" / wnid / f"{wnid}_{i}.JPEG")
    for i in range(3):
        photo(data / "val" / f"ILSVRC2012_val_{i:08d}.JPEG")
    (root / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000000,n02 1 2 3 4 n02 5 6 7 8\n"
        "ILSVRC2012_val_00000001,n01 1 2 3 4\n"
        "ILSVRC2012_val_00000002,n02 1 2 3 4\n"
    )


def write_unreadable(folder: Path) -> list[Path]:
    """A truncated JPEG, a 0-byte file and text named .jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    good = photo(folder / "good.jpg", size=64)
    data = good.read_bytes()
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    text = folder / "text.jpg"
    text.write_text("<html>not found</html>")
    return [truncated, empty, text]


def write_vec(path: Path, table: dict[str, list[float]], header: bool = True) -> Path:
    dim = len(next(iter(table.values())))
    lines = [f"{len(table)} {dim}"] if header else []
    lines += [f"{w} " + " ".join(str(x) for x in v) for w, v in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO_ROOT / "train.py"), f"hydra.run.dir={cwd / 'run'}", *overrides]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def run_module(module: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """``python -m module args`` run in this process: ``main(argv)``'s exit status, stdout and
    stderr as the interpreter gives them (a ``SystemExit`` message goes to stderr with status
    1), with ``stdin`` as standard input. A new interpreter costs seconds of importing torch per
    call; each CLI keeps one test through a real process for what only a process shows."""
    main = importlib.import_module(module).main
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:
                code = exit_.code
                if code is None:
                    code = 0
                elif not isinstance(code, int):
                    print(code, file=sys.stderr)
                    code = 1
    finally:
        sys.stdin = saved_stdin
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())
