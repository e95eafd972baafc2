"""Word-vector text files (word2vec/fastText ``.vec``), read for the words a run asks for.

Both models initialise or target word vectors from such files (the translator its embeddings,
DeViSE its label vectors); a ``.vec`` of 2M x 300 floats is streamed once and only the wanted rows
are kept. A malformed file is refused with its line number; rows that are NaN, infinite or all
zero (no direction: cosine is undefined, and an embedding would start dead) are skipped and
counted in a warning; a kept word that appears again is counted in a warning too (its first row
is used, as fastText's own reader would).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from lit_common.errors import InputError

log = logging.getLogger(__name__)


class VectorsError(InputError):
    """A vector source that cannot be used; the message names the file, line or setting."""


def read_vec(path: Path, wanted: set[str], dim: int, first: int = 0) -> dict[str, np.ndarray]:
    """Rows of a ``.vec`` text file for the ``wanted`` words and for its ``first`` words (files
    from fastText and word2vec list the most frequent words first), streaming the file.

    Raises:
        VectorsError: a missing file, a malformed line or a dimension other than ``dim`` (with the
            line number).
    """
    if not path.is_file():
        raise VectorsError(f"vector file {str(path)!r} does not exist")
    found: dict[str, np.ndarray] = {}
    rows = 0
    useless: list[str] = []
    repeated: dict[str, list[int]] = {}  # kept word -> line numbers of its later rows
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                if int(parts[1]) != dim:
                    raise VectorsError(
                        f"{path}: vectors have dimension {parts[1]} but the embedding has {dim}; "
                        "make sure the model's embedding size matches the vectors"
                    )
                continue
            if len(parts) != dim + 1:
                raise VectorsError(
                    f"{path}:{line_no}: expected a word and {dim} numbers, got {len(parts) - 1} "
                    "values (malformed line or wrong dimension)"
                )
            rows += 1
            if parts[0] in first_line:
                repeated.setdefault(parts[0], []).append(line_no)
                continue
            if (rows <= first or parts[0] in wanted) and parts[0] not in found:
                try:
                    row = np.asarray(parts[1:], dtype=np.float32)
                except ValueError as err:
                    raise VectorsError(f"{path}:{line_no}: not a number ({err})") from None
                if not np.isfinite(row).all() or not row.any():
                    useless.append(f"{parts[0]!r} (line {line_no})")
                    continue
                found[parts[0]] = row
                first_line[parts[0]] = line_no
    if repeated:
        log.warning(
            "%s: %d kept words appear more than once (%d extra rows); the first row of each is "
            "used, e.g. %s",
            path,
            len(repeated),
            sum(len(lines) for lines in repeated.values()),
            ", ".join(
                f"{w!r} (lines {first_line[w]}, {repeated[w][0]})" for w in list(repeated)[:5]
            ),
        )
    if useless:
        log.warning(
            "%s: %d wanted rows skipped as NaN, infinite or all zero, e.g. %s",
            path,
            len(useless),
            ", ".join(useless[:5]),
        )
    return found


def vec_dimension(path: Path) -> int:
    """The dimension of a ``.vec`` file: its ``count dim`` header, else its first row's length."""
    if not path.is_file():
        raise VectorsError(f"vector file {str(path)!r} does not exist")
    with path.open(encoding="utf-8", errors="replace") as f:
        first = f.readline().rstrip("\n").rstrip(" ").split(" ")
    if len(first) == 2 and all(p.isdigit() for p in first):
        return int(first[1])
    if len(first) < 2:
        raise VectorsError(f"{path}:1: not a word-vector line (expected `word v1 v2 ...`)")
    return len(first) - 1
