"""The pieces of a Hydra training run that ``train.py`` and tests share: compose a config
(``lit_common.config``), turn it into datamodule, model and trainer, and answer bad input in one
line (``lit_common.one_line``); this module builds the groups and reads the results.

Models are reached only through the configs' ``_target_`` entries, so this module imports no
model package, and a new model needs no edit here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig

from lit_common.config import check_numbers, compose, config_choices, print_config, resolve_gpus
from lit_common.one_line import INPUT_ERRORS, ConfigError, constructing, one_line_errors
from lit_common.reporting import ScheduleFigure
from lit_common.wandb_logger import RememberWandbRun, WandbBestSummary

__all__ = [
    "INPUT_ERRORS",
    "ConfigError",
    "best_scores",
    "check_numbers",
    "compose",
    "config_choices",
    "constructing",
    "instantiate_each",
    "instantiate_loggers",
    "one_line_errors",
    "optimized_value",
    "print_config",
    "resolve_gpus",
    "run_callbacks",
]

log = logging.getLogger(__name__)


def instantiate_each(group: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a group such as ``callbacks`` or ``logger``."""
    if not group:
        return []
    return [hydra.utils.instantiate(c) for c in group.values() if c and "_target_" in c]


def instantiate_loggers(group: DictConfig | None, wandb_id: str | None = None) -> list[Any]:
    """The ``logger`` group's loggers; ``wandb_id`` continues that W&B run."""
    loggers = []
    for c in (group or {}).values():
        if c and "_target_" in c:
            resume = {"id": wandb_id} if wandb_id and c._target_.endswith("wandb_logger") else {}
            loggers.append(hydra.utils.instantiate(c, **resume))
    return loggers


def run_callbacks(loggers: Sequence[Any]) -> list[pl.Callback]:
    """Callbacks every logged run gets: the schedules figure, and for W&B the best-value summary
    and the run id in checkpoints."""
    callbacks: list[pl.Callback] = [ScheduleFigure()] if loggers else []
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        callbacks += [RememberWandbRun(), WandbBestSummary()]
    return callbacks


def best_scores(trainer: pl.Trainer) -> dict[str, float]:
    """``<monitor>_best`` of each checkpoint callback that monitors a metric (``val/bleu_best``)."""
    scores = {}
    for callback in trainer.checkpoint_callbacks:
        score = getattr(callback, "best_model_score", None)
        if getattr(callback, "monitor", None) and score is not None:
            scores[f"{callback.monitor}_best"] = float(score)
    return scores


def optimized_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The value of ``optimized_metric`` for a sweeper: ``<name>_best`` when a checkpoint
    monitored it, else the final ``name``; None when no metric is named."""
    if not name:
        return None
    for key in (f"{name}_best", name):
        if key in metrics:
            return metrics[key]
    raise SystemExit(
        f"error: optimized_metric={name!r} was not logged; logged: {', '.join(sorted(metrics))}"
    )
