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
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only
from rich.console import Console
from rich.syntax import Syntax

from callbacks import NonFiniteLossError
from lit_common.errors import InputError
from lit_seq2seq.checkpoint import read_checkpoint

log = logging.getLogger("train")


class ConfigError(InputError):
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


# Metrics whose W&B summary is their best value rather than the last one logged (glob patterns).
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
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                for name, summary in WANDB_BEST.items():
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
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
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


def build(
    cfg: DictConfig, extra_callbacks: Sequence[Any] = (), wandb_id: str | None = None
) -> tuple[Any, Any, pl.Trainer]:
    """Seed, then instantiate the datamodule (or None), the model and the trainer of ``cfg``;
    ``wandb_id`` continues that W&B run."""
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data) if cfg.get("data") else None
    model = hydra.utils.instantiate(cfg.model)
    callbacks = [*instantiate_each(cfg.get("callbacks")), *extra_callbacks]
    loggers = []
    for c in (cfg.get("logger") or {}).values():
        if c and "_target_" in c:
            resume = {"id": wandb_id} if wandb_id and c._target_.endswith("wandb_logger") else {}
            loggers.append(hydra.utils.instantiate(c, **resume))
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        callbacks += [RememberWandbRun(), WandbBestSummary()]
    if loggers:
        from lit_seq2seq.reporting import ScheduleFigure

        callbacks.append(ScheduleFigure())
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def best_checkpoint(trainer: pl.Trainer) -> str:
    """The checkpoint to test and to use: the best of a monitored ``ModelCheckpoint``
    (``callbacks.best_checkpoint``), else the latest one; "" when none was written."""
    callbacks = trainer.checkpoint_callbacks
    monitored = [c for c in callbacks if getattr(c, "monitor", None) and c.best_model_path]
    for callback in [*monitored, *callbacks]:
        path = getattr(callback, "best_model_path", "") or getattr(callback, "last_model_path", "")
        if path:
            return str(path)
    return ""


RESUMABLE = ("last.ckpt", "on_exception.ckpt")


def resolve_ckpt_path(
    ckpt_path: str | None, runs_root: str | Path, output_dir: str | Path
) -> str | None:
    """``ckpt_path`` as a file: ``last`` is the newest ``last.ckpt`` or ``on_exception.ckpt`` of
    an earlier run under ``runs_root`` (each run writes into its own directory, so Lightning's own
    ``"last"`` would look in this run's empty one)."""
    if ckpt_path is None:
        return None
    if str(ckpt_path) != "last":
        if not Path(ckpt_path).is_file():
            raise ConfigError(f"ckpt_path={ckpt_path!r} does not exist")
        return str(ckpt_path)
    output = Path(output_dir).resolve()
    found = [
        p
        for p in Path(runs_root).glob("**/checkpoints/*.ckpt")
        if p.name in RESUMABLE and output not in p.resolve().parents
    ]
    if not found:
        raise ConfigError(
            f"ckpt_path=last: no {' or '.join(RESUMABLE)} under {runs_root}; give a path instead"
        )
    newest = max(found, key=lambda p: p.stat().st_mtime)
    log.info("resuming from %s", newest)
    return str(newest)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and optionally test) the configured model; returns the final callback metrics and,
    for each checkpoint callback with a ``monitor``, its best score as ``<monitor>_best``."""
    ckpt_path = resolve_ckpt_path(
        cfg.get("ckpt_path"), Path(cfg.paths.log_dir) / cfg.task_name, cfg.paths.output_dir
    )
    wandb_id = None
    if ckpt_path:
        # Refuse a truncated or unsafe file in one line before Lightning reads it (a traceback),
        # with the same weights_only load; a W&B run id in it continues that run.
        wandb_id = read_checkpoint(ckpt_path, "state_dict", "Lightning checkpoint", "train.py").get(
            "wandb_run_id"
        )
    datamodule, model, trainer = build(cfg, wandb_id=wandb_id)
    config = OmegaConf.to_container(cfg, resolve=True)
    for logger in trainer.loggers:  # the whole run's config beside the model's hyperparameters
        logger.log_hyperparams({"config": config})
    # weights_only: a resumed checkpoint cannot run code (tensors, numbers, strings, lists only).
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for callback in trainer.checkpoint_callbacks:  # best scores, e.g. val/bleu_best
        score = getattr(callback, "best_model_score", None)
        if getattr(callback, "monitor", None) and score is not None:
            metrics[f"{callback.monitor}_best"] = float(score)
    best = best_checkpoint(trainer)
    if cfg.get("test"):
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics |= {k: float(v) for k, v in trainer.callback_metrics.items()}
    finish_wandb(trainer.loggers)
    if trainer.is_global_zero and best:
        print(f"checkpoint: {best}")
    return metrics


def input_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input (a file, a setting): reported in one line, not a traceback.
    Every package's input error derives from ``lit_common.errors.InputError``; the callbacks'
    ``NonFiniteLossError`` (they depend on Lightning only) is the one other."""
    return (InputError, NonFiniteLossError)


def run(cfg: DictConfig) -> dict[str, float]:
    """``train`` for the command line: bad input ends in one ``error: ...`` line (SystemExit)."""
    errors = input_errors()
    try:
        resolve_gpus(cfg.trainer)
        print_config(cfg)
        return train(cfg)
    except InstantiationException as err:  # raised in a constructor, wrapped by Hydra
        if isinstance(err.__cause__, errors):
            raise SystemExit(f"error: {err.__cause__}") from None
        raise
    except errors as err:
        raise SystemExit(f"error: {err}") from None


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


# An absolute path: the `lit-train` console script imports this file as the module `train`, for
# which Hydra would look for an importable `configs` package instead of the folder beside it.
CONFIG_DIR = str(Path(__file__).resolve().parent / "configs")


def config_choices(group: str) -> str:
    """The choices of a config group for ``--help`` (configs/hydra/default.yaml), without the
    abstract ones: ``base``/``*_base`` files with a mandatory ``???`` value, which only hold the
    settings their real choices share (``data/base.yaml``)."""

    def abstract(path: Path) -> bool:
        named = path.stem == "base" or path.stem.endswith("_base")
        return named and "???" in path.read_text(encoding="utf-8")

    paths = sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))
    return ", ".join(p.stem for p in paths if not abstract(p))


OmegaConf.register_new_resolver("config_choices", config_choices, replace=True)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """``python train.py``: train, and return ``optimized_metric`` (Hydra sweepers optimise it)."""
    return optimized_value(run(cfg), cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
