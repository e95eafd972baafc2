"""Train a model from the Hydra configs in ``configs/``: compose, instantiate, fit, test.

``python train.py model=<name> [group=choice ...] [key=value ...]``; see README.md.
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only
from rich.console import Console
from rich.syntax import Syntax

log = logging.getLogger("train")


class ConfigError(ValueError):
    """A configuration that cannot run here; the message says which key and how to fix it."""


def resolve_gpus(trainer_cfg: DictConfig) -> None:
    """Turn the ``gpus: N`` shortcut into Lightning 2's accelerator/devices/strategy, in place."""
    with open_dict(trainer_cfg):
        gpus = trainer_cfg.pop("gpus", None)
    if gpus is None:
        return
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ConfigError(f"trainer.gpus={gpus!r}: expected an int >= 1, or null for CPU/auto")
    available = torch.cuda.device_count()
    if available < gpus:
        raise ConfigError(
            f"trainer.gpus={gpus} but CUDA sees {available} GPU(s); use trainer.gpus=null to run "
            "on the CPU, or trainer=ddp_cpu to try DDP on CPU processes"
        )
    trainer_cfg.accelerator, trainer_cfg.devices = "gpu", gpus
    if gpus > 1 and trainer_cfg.get("strategy", "auto") == "auto":
        trainer_cfg.strategy = "ddp"


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
) -> Any:
    """A ``WandbLogger`` that never waits on the network: offline unless a key is configured."""
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
    )


def finish_wandb(loggers: list[Any]) -> None:
    """Close the W&B run: several runs in one process need it, and W&B prints its sync command."""
    if rank_zero_only.rank == 0 and any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        wandb.finish()


def instantiate_each(group: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a group such as ``callbacks`` or ``logger``."""
    if not group:
        return []
    return [hydra.utils.instantiate(c) for c in group.values() if c and "_target_" in c]


def compose(overrides: list[str], output_dir: str | Path) -> DictConfig:
    """The config ``python train.py <overrides>`` would run, for scripts and tests.

    Interpolations of Hydra's runtime (``paths.output_dir``) point at ``output_dir``; the
    ``gpus`` shortcut is resolved as in ``main``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    config_dir = Path(__file__).resolve().parent / "configs"
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        del cfg.hydra
    resolve_gpus(cfg.trainer)
    return cfg


@rank_zero_only
def print_config(cfg: DictConfig) -> None:
    Console().print(Syntax(OmegaConf.to_yaml(cfg, resolve=True), "yaml", theme="ansi_dark"))


def build(cfg: DictConfig, extra_callbacks: Sequence[Any] = ()) -> tuple[Any, Any, pl.Trainer]:
    """Seed, then instantiate the datamodule (or None), the model and the trainer of ``cfg``."""
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data) if cfg.get("data") else None
    model = hydra.utils.instantiate(cfg.model)
    callbacks = [*instantiate_each(cfg.get("callbacks")), *extra_callbacks]
    loggers = instantiate_each(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and optionally test) the configured model; returns the final callback metrics."""
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path or checkpoint.last_model_path if checkpoint else ""
    if cfg.get("test"):
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics |= {k: float(v) for k, v in trainer.callback_metrics.items()}
    finish_wandb(trainer.loggers)
    if trainer.is_global_zero and best:
        print(f"checkpoint: {best}")
    return metrics


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        resolve_gpus(cfg.trainer)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    print_config(cfg)
    train(cfg)


if __name__ == "__main__":
    main()
