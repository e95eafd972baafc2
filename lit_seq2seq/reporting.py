"""Sample translations and attention heatmaps, logged like every figure and table
(``lit_common.reporting``): W&B, TensorBoard, and files under the logger's directory
(``samples/step<N>.tsv``, ``attention/step<N>.png``). These run on rank 0 only, so nothing here
may call a collective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lit_common.reporting import log_dir_of, log_table, tensorboard_of, wandb_logger_of
from lit_seq2seq.plots import attention_figure, save_attention_png

SAMPLE_COLUMNS = ["source", "reference", "hypothesis"]


def log_samples(trainer: Any, key: str, rows: Sequence[tuple[str, str, str]], step: int) -> None:
    """Validation translations as a table (W&B), markdown (TensorBoard) or a TSV file."""
    log_table(trainer, key, SAMPLE_COLUMNS, rows, step, folder="samples")


def log_attention(
    trainer: Any,
    key: str,
    items: Sequence[tuple[Sequence[str], Sequence[str], torch.Tensor]],
    step: int,
) -> None:
    if not items:
        return
    wandb_logger = wandb_logger_of(trainer)
    if wandb_logger is not None:
        import matplotlib.pyplot as plt

        fig = attention_figure(items, f"step {step}")
        wandb_logger.log_image(key=key, images=[fig], step=step)
        plt.close(fig)  # type: ignore[arg-type]
        return
    tensorboard = tensorboard_of(trainer)
    if tensorboard is not None:
        tensorboard.add_figure(key, attention_figure(items, f"step {step}"), global_step=step)
    save_attention_png(
        items, log_dir_of(trainer) / "attention" / f"step{step:07d}.png", f"step {step}"
    )
