"""Attention heatmaps: which source words each output word attended to."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from lit_common.cli import save_figure


def attention_figure(
    items: Sequence[tuple[Sequence[str], Sequence[str], torch.Tensor]], title: str = ""
) -> object:
    """A matplotlib figure with one heatmap per ``(source tokens, output tokens, weights)``.

    ``weights`` is (len(output), len(source)); rows are output words, columns source words.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(items))
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 4.5), squeeze=False, constrained_layout=True)
    for ax, (src, out, weights) in zip(axes[0], items, strict=False):
        ax.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), src, rotation=90, fontsize=8)
        ax.set_yticks(range(len(out)), out, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def save_attention_png(
    items: Sequence[tuple[Sequence[str], Sequence[str], torch.Tensor]], path: Path, title: str = ""
) -> Path:
    return save_figure(attention_figure(items, title), path, dpi=90)
