"""Train a model from the Hydra configs in ``configs/``: compose, instantiate, fit, test.

``python train.py model=<name> [group=choice ...] [key=value ...]``; see README.md. Models are
reached only through the configs' ``_target_`` entries; the shared plumbing is in ``lit_common``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from lit_common import run, sweeper
from lit_common.checkpoint import best_checkpoint, read_checkpoint, resolve_ckpt_path
from lit_common.wandb_logger import finish_wandb
from lit_common.wandb_logger import make_wandb_logger as make_wandb_logger  # old configs' target

# An absolute path: the `lit-train` console script imports this file as the module `train`, for
# which Hydra would look for an importable `configs` package instead of the folder beside it. A
# wheel installs configs/ as lit_common/configs (setup.cfg); a checkout (and an editable install)
# has it beside this file.
_SHIPPED = Path(run.__file__).resolve().parent / "configs"
_SHIPPED = _SHIPPED if (_SHIPPED / "train.yaml").is_file() else Path(__file__).parent / "configs"
CONFIG_DIR = str(_SHIPPED.resolve())
# Files lit_common's Optuna sweeper among Hydra's plugins (hparams_search=...: trials as jobs);
# done at import so `python train.py -m` and `lit-train -m` both find it.
sweeper.register()
OmegaConf.register_new_resolver(
    "config_choices", lambda group: run.config_choices(CONFIG_DIR, group), replace=True
)


def compose(overrides: Sequence[str], output_dir: str | Path) -> DictConfig:
    """The config ``python train.py <overrides>`` would run, writing into ``output_dir``."""
    return run.compose(CONFIG_DIR, overrides, output_dir)


def build(
    cfg: DictConfig,
    extra_callbacks: Sequence[Any] = (),
    wandb_id: str | None = None,
    checked: bool = False,
) -> tuple[Any, Any, pl.Trainer]:
    """Seed, then instantiate the trainer with its callbacks and loggers, then the datamodule
    (or None) and the model of ``cfg``; ``wandb_id`` continues that W&B run.

    The numbers are checked first (unless ``checked``: the caller did), and the callbacks and
    the trainer are built before the datamodule, so a setting only their constructors judge (an
    unknown ``trainer.precision``, a callback's own argument) ends in one line before any data is
    read or tokenised.
    """
    if not checked:
        run.check_numbers(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    with run.constructing("logger"):
        loggers = run.instantiate_loggers(cfg.get("logger"), wandb_id)
    with run.constructing("callbacks"):
        configured = run.instantiate_each(cfg.get("callbacks"))
    callbacks = [*configured, *extra_callbacks, *run.run_callbacks(loggers)]
    with run.constructing("trainer"):
        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    datamodule = hydra.utils.instantiate(cfg.data) if cfg.get("data") else None
    model = hydra.utils.instantiate(cfg.model)
    return datamodule, model, trainer


def train(cfg: DictConfig, checked: bool = False) -> dict[str, float]:
    """Fit, then test the best checkpoint when ``cfg.test``; returns the final metrics and each
    monitored checkpoint's best score as ``<monitor>_best``. ``checked``: the caller has run
    ``run.check_numbers`` on ``cfg`` (``main`` does, to print the config)."""
    runs_root = Path(cfg.paths.log_dir) / cfg.task_name
    ckpt_path = resolve_ckpt_path(
        cfg.get("ckpt_path"), runs_root, cfg.paths.output_dir, cfg.model.get("_target_")
    )
    wandb_id = None
    if ckpt_path:  # refused in one line before Lightning reads it; its W&B run continues
        checkpoint = read_checkpoint(ckpt_path, "state_dict", "Lightning checkpoint", "train.py")
        wandb_id = checkpoint.get("wandb_run_id")
    datamodule, model, trainer = build(cfg, wandb_id=wandb_id, checked=checked)
    config = OmegaConf.to_container(cfg, resolve=True)
    for logger in trainer.loggers:  # the whole run's config beside the model's hyperparameters
        logger.log_hyperparams({"config": config})
    # weights_only: a resumed checkpoint cannot run code (tensors, numbers, strings, lists only).
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()} | run.best_scores(trainer)
    best = best_checkpoint(trainer)
    if cfg.get("test"):
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics |= {k: float(v) for k, v in trainer.callback_metrics.items()}
    finish_wandb(trainer.loggers)
    if trainer.is_global_zero and best:
        print(f"checkpoint: {best}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """``python train.py``: train, and return ``optimized_metric`` (Hydra sweepers optimise it).
    Bad input (a setting, a file) ends in one ``error: ...`` line and exit status 1."""
    with run.one_line_errors():
        run.resolve_gpus(cfg.trainer)
        run.check_numbers(cfg)  # also resolves every interpolation: one line if one cannot
        run.print_config(cfg)
        metrics = train(cfg, checked=True)
    return run.optimized_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
