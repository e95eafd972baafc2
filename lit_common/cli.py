"""What every command-line tool shares: errors in one line, checked flags, outputs written exactly
where asked.

argparse prints a usage block before its error and lets any number through; ``ArgumentParser``
here prints one ``<prog>: error: ...`` line (exit status 2), and flags take a ``Range`` from
``lit_common/ranges.py`` as their type. ``output_file`` checks an output path before any work
(a directory, a missing suffix, an unknown picture format are refused) and ``save_figure``
writes exactly that file, atomically, instead of matplotlib's ``DIR`` -> ``DIR.png``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from lit_common.text import one_line

FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``prog: error: --beam: 0 is out of range: expected an
    integer in [1, 256] (see --help)``, exit status 2, no usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def output_file(suffixes: tuple[str, ...] | None = FIGURE_SUFFIXES) -> Callable[[str], Path]:
    """An argparse ``type`` for a file to write: refuses an existing directory, a suffix that is
    not one of ``suffixes`` (None: any), and a parent that exists but is not a directory."""

    def typed(text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            raise argparse.ArgumentTypeError(
                f"{text} is a directory; give a file name, e.g. {path / 'out'}"
                + (suffixes[0] if suffixes else "")
            )
        if suffixes is not None and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{text}: expected a file name ending in one of {', '.join(suffixes)}"
            )
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: {parent} is not a directory")
        return path

    typed.__name__ = "output file"
    return typed


def device(text: str) -> Any:
    """An argparse ``type`` for ``--device``: ``auto`` (CUDA when available, else the CPU),
    ``cpu``, ``cuda``, ``cuda:N``, ``mps``; a device this machine lacks is refused here, not
    mid-run. Returns a ``torch.device``."""
    import torch

    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError) as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device ({err})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: CUDA is not available here; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text}: CUDA sees {torch.cuda.device_count()} device(s)"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(f"{text}: MPS is not available here; use cpu")
    elif dev.type != "cpu":
        raise argparse.ArgumentTypeError(f"{text}: expected auto, cpu, cuda, cuda:N or mps")
    return dev


def output_dir(text: str) -> Path:
    """An argparse ``type`` for a folder to write into: refuses an existing file (or a path
    under one); a folder that does not exist yet is created by the command."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{one_line(text)} exists and is not a folder")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{one_line(text)}: {one_line(str(parent))} is not a folder"
        )
    return path


def save_figure(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """Write a matplotlib figure to exactly ``path`` (its format from the suffix), through a
    temporary file in the same folder, so a failed write leaves no partial picture."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    fmt = "jpeg" if fmt == "jpg" else fmt
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)  # as open() would create it, not mkstemp's owner-only 0600
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=fmt, **savefig)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
