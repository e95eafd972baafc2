"""Image grids of search results, for W&B, the validation log and ``lit_devise.search --out``."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_common.cli import save_figure
from lit_devise.images import BAD_IMAGE_ERRORS, load_rgb

# One result: (image path or None, caption, whether it is a hit (True/False) or unknown (None)).
Cell = tuple[str | None, str, bool | None]


def search_grid(
    rows: Sequence[tuple[str, Sequence[Cell]]], thumb: float = 1.6, max_cols: int = 8
) -> Any:
    """A matplotlib figure: per query, its results in lines of at most ``max_cols``.

    Image cells show the picture captioned by ``caption``; text cells (path None) show
    ``caption`` wrapped. Hits are framed green, misses red.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widest = max((len(cells) for _, cells in rows), default=1)
    n_cols = max(1, min(max_cols, widest))
    lines = [
        (title if start == 0 else "", cells[start : start + n_cols])
        for title, cells in rows
        for start in range(0, max(1, len(cells)), n_cols)
    ]
    fig, axes = plt.subplots(
        len(lines), n_cols, figsize=(thumb * n_cols, thumb * len(lines) + 0.3), squeeze=False
    )
    for r, (title, cells) in enumerate(lines):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.axis("off")
                continue
            path, caption, hit = cells[c]
            colour = {True: "green", False: "red", None: "black"}[hit]
            if path is not None:
                try:
                    ax.imshow(load_rgb(path))
                except BAD_IMAGE_ERRORS:
                    ax.text(0.5, 0.5, "unreadable", ha="center", va="center")
                ax.set_title(caption[:28], fontsize=7, color=colour)
            else:
                ax.text(0.5, 0.5, textwrap.fill(caption, 16), ha="center", va="center", fontsize=7)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
        axes[r][0].set_ylabel(title[:24], fontsize=8)
    fig.tight_layout()
    return fig


def save_grid(rows: Sequence[tuple[str, Sequence[Cell]]], path: str | Path) -> Path:
    return save_figure(search_grid(rows), path, dpi=100, bbox_inches="tight")
