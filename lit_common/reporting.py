"""Figures and tables sent to whichever logger a run has, for every model.

W&B gets its tables and images; without W&B the same go to files under the logger's directory
(``<key>/step<N>.png``, ``<key>/step<N>.tsv``), and a TensorBoard logger also gets them inside
TensorBoard (tables as markdown text, figures as images), so no run loses anything. These run on
rank 0 only, so nothing here may call a collective.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


def wandb_logger_of(trainer: Any) -> Any | None:
    """The run's ``WandbLogger``, or None."""
    for logger in trainer.loggers:
        if type(logger).__name__ == "WandbLogger":
            return logger
    return None


def tensorboard_of(trainer: Any) -> Any | None:
    """The ``SummaryWriter`` of the run's ``TensorBoardLogger``, or None."""
    for logger in trainer.loggers:
        if type(logger).__name__ == "TensorBoardLogger":
            return logger.experiment
    return None


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as a markdown table (TensorBoard renders text summaries as markdown)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows])


def log_dir_of(trainer: Any) -> Path:
    """Where file output goes: the first logger's directory, else the trainer's root."""
    # Not trainer.log_dir: under DDP it broadcasts, and this runs on rank 0 only (a deadlock).
    for logger in trainer.loggers:
        log_dir = getattr(logger, "log_dir", None)
        if log_dir:
            return Path(log_dir)
    return Path(trainer.default_root_dir)


def log_table(
    trainer: Any,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    step: int,
    folder: str | None = None,
) -> None:
    """A table as a W&B table, else as ``<log dir>/<folder>/step<N>.tsv`` (``folder`` defaults
    to ``key`` with ``/`` as ``_``) and, with TensorBoard, as markdown text there too."""
    if not rows:
        return
    wandb_logger = wandb_logger_of(trainer)
    if wandb_logger is not None:
        data = [list(r) for r in rows]
        wandb_logger.log_table(key=key, columns=list(columns), data=data, step=step)
        return
    tensorboard = tensorboard_of(trainer)
    if tensorboard is not None:
        tensorboard.add_text(key, markdown_table(columns, rows), global_step=step)
    path = log_dir_of(trainer) / (folder or key.replace("/", "_")) / f"step{step:07d}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in [tuple(columns), *rows]) + "\n")


def log_figure(trainer: Any, key: str, figure: Any, step: int, folder: str | None = None) -> None:
    """A matplotlib figure as a W&B image, else as ``<log dir>/<folder>/step<N>.png`` (``folder``
    defaults to ``key`` with ``/`` as ``_``) and, with TensorBoard, there too; closes it."""
    import matplotlib.pyplot as plt

    wandb_logger = wandb_logger_of(trainer)
    if wandb_logger is not None:
        wandb_logger.log_image(key=key, images=[figure], step=step)
    else:
        tensorboard = tensorboard_of(trainer)
        if tensorboard is not None:
            tensorboard.add_figure(key, figure, global_step=step, close=False)
        path = log_dir_of(trainer) / (folder or key.replace("/", "_")) / f"step{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


class ScheduleFigure(pl.Callback):
    """The run's own schedules (LR and momentum of the one-cycle, teacher forcing) as one figure,
    drawn once when training starts from the callbacks' pure functions and logged like the other
    figures (``train/schedules``). Rank 0 only; nothing when the run has no schedule callback."""

    def __init__(self) -> None:
        self._done = False

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._done:
            return
        self._done = True  # after the schedules' on_train_start: their lengths are resolved
        if not trainer.is_global_zero or not trainer.loggers:
            return
        curves: dict[str, list[float]] = {}
        for callback in trainer.callbacks:
            total = getattr(callback, "_resolved_total_steps", None)
            if total is None:
                continue
            if hasattr(callback, "values_at"):  # the last param group: the head when fine-tuning
                groups = len(trainer.optimizers[0].param_groups)
                values = [callback.values_at(s, groups)[-1] for s in range(total)]
                curves["lr"] = [lr for lr, _ in values]
                curves["momentum"] = [m for _, m in values]
            elif hasattr(callback, "value_at"):
                curves[callback.attr] = [callback.value_at(s) for s in range(total)]
        if curves:
            log_figure(trainer, "train/schedules", schedule_figure(curves), trainer.global_step)


def schedule_figure(curves: dict[str, list[float]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 2.6), squeeze=False)
    for ax, (name, values) in zip(axes[0], curves.items(), strict=True):
        ax.plot(values)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
    fig.tight_layout()
    return fig
