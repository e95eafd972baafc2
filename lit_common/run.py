"""The pieces of a Hydra training run that ``train.py`` and tests share: compose a config, turn
it into datamodule, model and trainer, and answer bad input in one line.

Models are reached only through the configs' ``_target_`` entries, so this module imports no
model package, and a new model needs no edit here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from callbacks import CallbackConfigError, NonFiniteLossError
from lit_common.errors import InputError
from lit_common.precision import fast_precision
from lit_common.ranges import check_config
from lit_common.reporting import ScheduleFigure
from lit_common.wandb_logger import RememberWandbRun, WandbBestSummary

log = logging.getLogger(__name__)

# `trainer.precision: ${fast_precision:${trainer.accelerator}}`: bf16 where the hardware has it.
OmegaConf.register_new_resolver("fast_precision", fast_precision, replace=True)


class ConfigError(InputError):
    """A configuration that cannot run here; the message says which key and how to fix it."""


# Bad input (a file, a setting): one `error: ...` line, never a traceback. Every package's input
# error derives from InputError; the callbacks (Lightning only) have their own two.
INPUT_ERRORS: tuple[type[BaseException], ...] = (
    InputError,
    CallbackConfigError,
    NonFiniteLossError,
)


# What Lightning's constructors raise for a setting they refuse (see ``constructing``).
_REFUSED: tuple[type[BaseException], ...] = (MisconfigurationException, ValueError, TypeError)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn bad-input errors, also when Hydra wraps them (raised in a ``_target_``'s
    constructor), into ``SystemExit("error: <message>")``: exit status 1 and one line."""
    try:
        yield
    except InstantiationException as err:
        if isinstance(err.__cause__, INPUT_ERRORS):
            raise SystemExit(f"error: {err.__cause__}") from None
        raise
    except INPUT_ERRORS as err:
        raise SystemExit(f"error: {err}") from None


@contextmanager
def constructing(group: str) -> Iterator[None]:
    """Name ``group`` in one line when building it fails on a setting: Lightning refuses some
    (``trainer.devices=0``, an unknown ``trainer.precision``, ``ModelCheckpoint`` arguments
    that exclude each other) with ``MisconfigurationException``, ``ValueError`` or
    ``TypeError`` from the constructor, which would otherwise end in a traceback."""
    try:
        yield
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, INPUT_ERRORS) or not isinstance(cause, _REFUSED):
            raise
        raise ConfigError(f"{group}: {_first_line(cause)}") from None
    except _REFUSED as err:
        if isinstance(err, INPUT_ERRORS):
            raise
        raise ConfigError(f"{group}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


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


def compose(config_dir: str, overrides: Sequence[str], output_dir: str | Path) -> DictConfig:
    """The config ``python train.py <overrides>`` would run, for scripts and tests.

    Interpolations of Hydra's runtime (``paths.output_dir``) point at ``output_dir``; the
    ``gpus`` shortcut is resolved as in a real run.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir, version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        del cfg.hydra
    resolve_gpus(cfg.trainer)
    return cfg


def check_numbers(cfg: DictConfig) -> None:
    """Every number of ``cfg`` against its range (``lit_common/ranges.py``), before anything is
    built: ``data.max_vocab=0`` fails here, in one line naming the key, not in spaCy later."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:  # e.g. ${data.synthetic.root} after synthetic=null
        first = str(err).strip().splitlines()[0]
        key = getattr(err, "full_key", None)
        raise ConfigError(f"{key}: {first}" if key else first) from None
    check_config(resolved)  # type: ignore[arg-type]


@rank_zero_only
def print_config(cfg: DictConfig) -> None:
    from rich.console import Console
    from rich.syntax import Syntax

    Console().print(Syntax(OmegaConf.to_yaml(cfg, resolve=True), "yaml", theme="ansi_dark"))


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


def config_choices(config_dir: str, group: str) -> str:
    """The choices of a config group for ``--help`` (configs/hydra/default.yaml), without the
    abstract ones: ``base``/``*_base`` files with a mandatory ``???`` value, which only hold the
    settings their real choices share (``data/base.yaml``)."""

    def abstract(path: Path) -> bool:
        named = path.stem == "base" or path.stem.endswith("_base")
        return named and "???" in path.read_text(encoding="utf-8")

    paths = sorted((Path(config_dir) / group).glob("*.yaml"))
    return ", ".join(p.stem for p in paths if not abstract(p))
