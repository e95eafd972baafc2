"""The W&B side of a run: a logger that never waits on the network, best-value summaries, and a
run id kept in checkpoints so a resumed run continues the same W&B run.

``configs/logger/wandb.yaml`` targets ``make_wandb_logger``; ``lit_common.run.run_callbacks``
(called by ``train.build``) adds the two callbacks whenever a run has a ``WandbLogger``.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only


def wandb_api_key_available() -> bool:
    """An API key in the environment or in ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def make_wandb_logger(
    project: str,
    save_dir: str,
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    offline: bool | None = None,
    log_model: bool = False,
    id: str | None = None,
) -> Any:
    """A ``WandbLogger`` that never waits on the network: offline unless a key is configured.

    ``id`` continues that W&B run (``train`` passes the id a resumed checkpoint recorded).
    """
    from pytorch_lightning.loggers import WandbLogger

    if offline is None:
        offline = (
            os.environ.get("WANDB_MODE") in ("offline", "dryrun") or not wandb_api_key_available()
        )
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project,
        name=name,
        group=group,
        tags=tags,
        save_dir=save_dir,
        offline=offline,
        log_model=log_model and not offline,
        id=id,
        resume="allow" if id else None,
    )


# Metrics whose W&B summary is their best value rather than the last one logged (glob patterns),
# besides every metric a ModelCheckpoint monitors (with its mode), whatever the model.
WANDB_BEST = {
    "val/bleu": "max",
    "val/loss": "min",
    "val/lesson_loss": "min",
    "val/hit_at_*": "max",
    "zeroshot/hit_at_*": "max",
    "zeroshot/gen_hit_at_*": "max",
}


class WandbBestSummary(pl.Callback):
    """Make the W&B run summary (the runs table, sweeps) show each metric's best value: a run's
    last validation is rarely its best, and the best checkpoint is the one people use."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        best = dict(WANDB_BEST)
        for callback in trainer.checkpoint_callbacks:
            monitor = getattr(callback, "monitor", None)
            if monitor:
                best[monitor] = "max" if getattr(callback, "mode", "min") == "max" else "min"
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                for name, summary in best.items():
                    logger.experiment.define_metric(name, summary=summary)


class RememberWandbRun(pl.Callback):
    """Record the W&B run id in every checkpoint, so resuming continues the same W&B run."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                checkpoint["wandb_run_id"] = logger.version


def finish_wandb(loggers: list[Any]) -> None:
    """Close the W&B run: several runs in one process need it, and W&B prints its sync command."""
    if rank_zero_only.rank == 0 and any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        wandb.finish()
